//! Wall time and peak RSS of one child process.
//!
//! `getrusage(RUSAGE_CHILDREN)` reports the largest RSS of *any* child a
//! process has waited for, so the bench never asks it about its own children.
//! Instead it re-runs itself as `__measure LIMIT_SECS CMD ARGS...`: that
//! process spawns the command, waits (killing it after LIMIT_SECS), and prints
//! `<exit_code> <max_rss_kib> <wall_secs>`; its only child is the command, so
//! the figure is the command's own.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Seek};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::resource::{UsageWho, getrusage};

use crate::limit;

/// The hidden first argument that runs a command under measurement.
pub const SUBCOMMAND: &str = "__measure";

/// What a measured child cost.
#[derive(Debug, Clone, Copy)]
pub struct ChildRun {
    /// From spawn to exit, process start included.
    pub wall: Duration,
    /// The child's peak resident set, KiB.
    pub peak_rss_kib: u64,
}

impl ChildRun {
    /// Peak RSS in MiB.
    pub fn peak_rss_mib(&self) -> f64 {
        self.peak_rss_kib as f64 / 1024.0
    }
}

/// Run `program args...` under measurement; fails if it does not exit 0
/// within `limit`.
pub fn measure(program: &OsStr, args: &[&OsStr], limit: Duration) -> Result<ChildRun> {
    let exe = std::env::current_exe().context("cannot locate the bench executable")?;
    let output = Command::new(exe)
        .arg(SUBCOMMAND)
        .arg(limit.as_secs().to_string())
        .arg(program)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .context("cannot start the measuring process")?;
    let shown = shown_command(program, args);
    if !output.status.success() {
        bail!("the measuring process for `{shown}` failed ({})", output.status);
    }
    let report = String::from_utf8_lossy(&output.stdout);
    let fields: Vec<&str> = report.split_whitespace().collect();
    let [code, rss, secs] = fields[..] else {
        bail!("unexpected report from the measuring process: {report:?}");
    };
    if code != "0" {
        bail!("`{shown}` exited with status {code}");
    }
    Ok(ChildRun {
        wall: Duration::from_secs_f64(secs.parse().context("bad wall time")?),
        peak_rss_kib: rss.parse().context("bad peak RSS")?,
    })
}

/// The `__measure` side: run the command given, then report on stdout.
///
/// The command's stdout is discarded; its stderr goes to a temporary file and
/// is shown only if it fails (progress output would garble the bench's own).
pub fn run_subcommand(argv: &[OsString]) -> Result<()> {
    let [limit_secs, program, args @ ..] = argv else {
        bail!("usage: {SUBCOMMAND} LIMIT_SECS COMMAND [ARGS...]");
    };
    let limit_secs: u64 = limit_secs
        .to_str()
        .and_then(|s| s.parse().ok())
        .context("bad time limit")?;
    let mut stderr = tempfile::tempfile().context("cannot create a file for the command's stderr")?;
    let start = Instant::now();
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr.try_clone().context("cannot share the stderr file")?)
        .spawn()
        .with_context(|| format!("cannot start {}", program.to_string_lossy()))?;
    let status = limit::wait_child(&mut child, Duration::from_secs(limit_secs))?;
    let wall = start.elapsed();
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN).context("getrusage failed")?;
    let code = status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    if code != 0 {
        let mut text = String::new();
        stderr
            .rewind()
            .and_then(|()| stderr.read_to_string(&mut text))
            .context("cannot read the command's stderr")?;
        eprint!("{text}");
    }
    // Linux reports ru_maxrss in KiB.
    println!("{code} {} {:.6}", usage.max_rss(), wall.as_secs_f64());
    Ok(())
}

fn shown_command(program: &OsStr, args: &[&OsStr]) -> String {
    let name = std::path::Path::new(program).file_name().unwrap_or(program);
    std::iter::once(name)
        .chain(args.iter().copied())
        .map(OsStr::to_string_lossy)
        .collect::<Vec<_>>()
        .join(" ")
}
