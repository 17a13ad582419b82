//! Helpers shared by the end-to-end tests: run the built `coffer` binary and
//! check its exit code and output.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[allow(dead_code)] // used by the files that run against Garage
pub mod garage;
pub mod sealed;
#[allow(dead_code)] // used by the files that run `coffer serve`
pub mod serve;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// What a run of the binary left: its exit code and its output.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Run `coffer ARGS` in `dir`, with `stdin` piped in and `env` set (no COFFER_USER,
/// COFFER_CONFIG or COFFER_AUDIT_* otherwise).
pub fn coffer_in(dir: &Path, args: &[&str], stdin: Option<&[u8]>, env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_coffer"));
    command
        .current_dir(dir)
        .args(args)
        .env_remove("COFFER_USER")
        .env_remove("COFFER_CONFIG")
        .env_remove("COFFER_AUDIT_RETENTION")
        .env_remove("COFFER_AUDIT_READS");
    for (name, value) in env {
        command.env(name, value);
    }
    command.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    let Output { status, stdout, stderr } = child.wait_with_output().unwrap();
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// Write what the hot store holds to the backend (`coffer hot flush`), for
/// tests that look at the backend's files themselves.
#[allow(dead_code)] // used by the files that look at the backend's files
pub fn flush(dir: &Path) {
    ok(coffer(dir, &["hot", "flush"]));
}

/// Run `coffer ARGS` in `dir` with nothing on standard input.
pub fn coffer(dir: &Path, args: &[&str]) -> Run {
    coffer_in(dir, args, None, &[])
}

/// The run, after checking it succeeded quietly.
pub fn ok(run: Run) -> Run {
    assert_eq!(run.code, 0, "stdout: {}\nstderr: {}", run.stdout, run.stderr);
    assert!(
        run.stderr.is_empty(),
        "no progress bar or noise when piped: {}",
        run.stderr
    );
    run
}

/// The run's standard output as JSON, after checking it succeeded quietly.
pub fn json(run: Run) -> Value {
    serde_json::from_str(&ok(run).stdout).unwrap()
}

/// The exit code and the one line on stderr.
#[allow(dead_code)] // not every file checks a failure
pub fn fails(run: Run, code: i32, message: &str) {
    assert_eq!(run.code, code, "stdout: {}\nstderr: {}", run.stdout, run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "one line: {}", run.stderr);
    assert!(
        run.stderr.starts_with("coffer: ") && run.stderr.contains(message),
        "{}",
        run.stderr
    );
}

/// Where scripts/services install the clients (`COFFER_TOOLS_DIR`, default
/// `~/.cache/coffer-tools`).
#[allow(dead_code)] // used by the files that drive third-party clients
pub fn tools_dir() -> PathBuf {
    std::env::var("COFFER_TOOLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/coffer-tools"))
}

/// The client `name`, or `None` (with a loud line) when it is not installed
/// and services are not required.
#[allow(dead_code)] // used by the files that drive third-party clients
pub fn client(name: &str) -> Option<PathBuf> {
    let tools = tools_dir();
    let candidates = [
        tools.join("clients-venv/bin").join(name),
        tools.join("schemathesis-venv/bin").join(name),
    ];
    let found = candidates.into_iter().find(|p| p.is_file()).or_else(|| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|p| p.is_file())
        })
    });
    if found.is_none() {
        assert!(
            !coffer::testkit::services::services_required(),
            "{name} is required (COFFER_REQUIRE_SERVICES=1) but not installed: run scripts/services/clients.sh"
        );
        eprintln!("SKIPPED: {name} is not installed; scripts/services/clients.sh installs it");
    }
    found
}
