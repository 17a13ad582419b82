//! Finding (and building) the coffer CLI.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Build the `coffer` binary in this bench's own profile, so it sits next to
/// this executable and is never stale, and return its path.
///
/// Cargo does nothing when the binary is up to date.
pub fn build() -> Result<PathBuf> {
    build_with(&[])
}

/// [`build`] with the cargo `features` of coffer-cli on (`server` ...).
pub fn build_with(features: &[&str]) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot locate the bench executable")?;
    let coffer = exe.with_file_name("coffer");
    let profile = cargo_profile(&exe);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let features = features.join(",");
    eprintln!("building the coffer CLI: cargo build --profile {profile} -p coffer-cli --features '{features}'");
    let status = Command::new(cargo)
        .args([
            "build",
            "--profile",
            &profile,
            "-p",
            "coffer-cli",
            "--features",
            &features,
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .context("cannot run cargo; run `cargo build --release -p coffer-cli` yourself first")?;
    if !status.success() {
        bail!("`cargo build --profile {profile} -p coffer-cli` failed; the bench needs the coffer CLI");
    }
    if !coffer.is_file() {
        bail!(
            "no coffer binary at {}; run `cargo build --release -p coffer-cli` first",
            coffer.display()
        );
    }
    Ok(coffer)
}

/// The cargo profile whose output directory holds `exe` (`target/debug` is "dev").
fn cargo_profile(exe: &Path) -> String {
    match exe.parent().and_then(Path::file_name).and_then(|n| n.to_str()) {
        Some("debug") | None => "dev".to_owned(),
        Some(name) => name.to_owned(),
    }
}
