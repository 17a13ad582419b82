//! Time limits, so a hung child or call fails the run instead of stalling it forever.
//!
//! The limits are generous: they catch hangs, not slowness.

use std::process::{Child, ExitStatus};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{Id, WaitPidFlag, waitid};
use nix::unistd::Pid;

/// A minute, plus `per_unit` for each of `units` units of work.
pub fn for_work(units: u64, per_unit: Duration) -> Duration {
    Duration::from_secs(60) + per_unit.saturating_mul(u32::try_from(units).unwrap_or(u32::MAX))
}

/// Wait for `child` to exit; kill it and fail if it runs longer than `limit`.
pub fn wait_child(child: &mut Child, limit: Duration) -> Result<ExitStatus> {
    let pid = Pid::from_raw(i32::try_from(child.id()).context("child pid out of range")?);
    let (exited, exited_signal) = mpsc::channel::<()>();
    let watchdog = thread::spawn(move || {
        let expired = matches!(exited_signal.recv_timeout(limit), Err(RecvTimeoutError::Timeout));
        if expired {
            let _ = kill(pid, Signal::SIGKILL);
        }
        expired
    });
    // Wait for the exit without reaping it: until the child is reaped its pid
    // cannot be reused, so the watchdog can never kill anything else.
    let waited = waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT);
    let _ = exited.send(());
    let expired = watchdog.join().map_err(|_| anyhow!("the watchdog thread panicked"))?;
    if let Err(e) = waited {
        let _ = child.kill();
        let _ = child.wait();
        return Err(anyhow!(e).context("waiting for a child process failed"));
    }
    let status = child.wait().context("cannot reap a child process")?;
    if expired {
        bail!("a child process ran longer than {} s and was killed", limit.as_secs());
    }
    Ok(status)
}

/// Run `future`, failing if it takes longer than `limit`.
pub async fn within<T>(limit: Duration, what: &str, future: impl Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout(limit, future)
        .await
        .map_err(|_| anyhow!("{what} took longer than {} s", limit.as_secs()))?
}
