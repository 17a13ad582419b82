//! What the figures were measured on.

use std::path::{Path, PathBuf};

/// The machine and disk a run used.
#[derive(Debug, Clone)]
pub struct System {
    /// Device and filesystem of the work directory, e.g. "/dev/vda ext4".
    pub disk: String,
    /// CPUs this process may use.
    pub cores: usize,
    /// Physical memory, GiB, when known.
    pub memory_gib: Option<f64>,
}

/// Describe the machine, and the disk holding `work_dir`.
pub fn describe(work_dir: &Path) -> System {
    System {
        disk: disk_of(work_dir).unwrap_or_else(|| "an unknown disk".to_owned()),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory_gib: memory_gib(),
    }
}

/// The mount with the longest mount point containing `path`, from /proc/self/mounts.
fn disk_of(path: &Path) -> Option<String> {
    let path = path.canonicalize().ok()?;
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (device, mount_point, fs_type) = (fields.next()?, fields.next()?, fields.next()?);
            Some((device, PathBuf::from(unescape(mount_point)), fs_type))
        })
        .filter(|(_, mount_point, _)| path.starts_with(mount_point))
        .max_by_key(|(_, mount_point, _)| mount_point.as_os_str().len())
        .map(|(device, _, fs_type)| format!("{device} {fs_type}"))
}

/// /proc/self/mounts writes space, tab, newline and backslash as `\ooo` octal.
fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut rest = field;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 4).and_then(|o| u8::from_str_radix(o, 8).ok());
        match code {
            Some(byte) => {
                out.push(char::from(byte));
                rest = &rest[i + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn memory_gib() -> Option<f64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / (1024.0 * 1024.0))
}
