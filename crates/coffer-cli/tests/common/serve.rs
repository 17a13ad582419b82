//! `coffer serve` as a real process on a free port, for the suites that
//! talk to it over HTTP.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running server; killed when dropped.
pub struct Served {
    child: Child,
    /// Its base URL (`http://127.0.0.1:PORT`).
    pub url: String,
    /// The S3 endpoint's URL, when it was asked for (`--s3-listen`).
    pub s3_url: Option<String>,
    logs: Arc<Mutex<Vec<String>>>,
}

/// Start `coffer serve --listen 127.0.0.1:0 ARGS` in `dir` with `env`, and
/// wait until it says where it listens.
pub fn serve(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Served {
    let mut command = Command::new(env!("CARGO_BIN_EXE_coffer"));
    command
        .current_dir(dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("COFFER_USER")
        .env_remove("COFFER_CONFIG")
        .env("COFFER_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let logs = Arc::new(Mutex::new(Vec::new()));
    let (found, listening) = std::sync::mpsc::channel();
    let kept = logs.clone();
    let s3_url = Arc::new(Mutex::new(None));
    let s3_found = s3_url.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            // The S3 endpoint's line comes first.
            if let Some(rest) = line.strip_prefix("coffer: the S3 endpoint on ") {
                *s3_found.lock().unwrap() = Some(rest.to_owned());
            }
            if let Some(rest) = line.strip_prefix("coffer: serving on ") {
                let _ = found.send(rest.split(' ').next().unwrap_or_default().to_owned());
            }
            kept.lock().unwrap().push(line);
        }
    });
    let url = match listening.recv_timeout(Duration::from_secs(60)) {
        Ok(url) => url,
        Err(_) => {
            let _ = child.kill();
            panic!("coffer serve did not start: {:?}", logs.lock().unwrap());
        }
    };
    let s3_url = s3_url.lock().unwrap().clone();
    Served {
        child,
        url,
        s3_url,
        logs,
    }
}

impl Served {
    /// `PATH` under the server's URL.
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// Everything it logged so far.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    /// Send SIGTERM.
    pub fn terminate(&self) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
    }

    /// Kill it outright (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Wait (up to `limit`) for it to exit.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(started.elapsed() < limit, "coffer serve did not exit: {}", self.logs());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
