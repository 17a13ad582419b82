//! `coffer keys` and `coffer init --encrypt`: the store's encryption keys.

use std::io::Write;
use std::path::Path;

use coffer::crypto::{EncryptionConfig, KeySource};
use coffer::{Config, Store};
use serde_json::json;

use crate::cli::KeysCommand;
use crate::commands::invalid_input;
use crate::output::{print_fields, print_json};

/// Run a `keys` command.
pub async fn run(store: &Store, command: KeysCommand, json: bool) -> anyhow::Result<()> {
    match command {
        KeysCommand::Status => status(store, json).await,
        KeysCommand::Rotate {
            new_key_file,
            new_key_env,
            new_passphrase_env,
            new_kms_key_id,
            new_kms_endpoint,
        } => {
            let new = EncryptionConfig {
                key_file: new_key_file,
                key_env: new_key_env,
                passphrase_env: new_passphrase_env,
                kms_key_id: new_kms_key_id,
                kms_endpoint: new_kms_endpoint,
                kms_region: None,
            }
            .source()?
            .ok_or_else(|| invalid_input("keys rotate needs a new key"))?;
            let report = store.rotate_keys(&new).await?;
            if json {
                return print_json(&report);
            }
            println!(
                "rotated {} -> {}: {} data keys wrapped anew, {} manifests rewritten",
                report.from, report.to, report.rewrapped, report.manifests
            );
            println!("the store's key is now {new}: give it in [encryption] (the old key no longer opens the store)");
            Ok(())
        }
        KeysCommand::Generate { .. } => unreachable!("keys generate runs without a store"),
    }
}

async fn status(store: &Store, json: bool) -> anyhow::Result<()> {
    let status = store.key_status().await?;
    if json {
        return print_json(&status);
    }
    if !status.encrypted {
        println!("this store does not encrypt its content");
        return Ok(());
    }
    let mut fields = vec![
        ("key", status.key_id.clone().unwrap_or_default()),
        ("wrapper", status.wrapper.clone().unwrap_or_default()),
        (
            "key given",
            status.key_error.clone().unwrap_or_else(|| "opens the store".to_owned()),
        ),
    ];
    for (kek, count) in &status.data_keys {
        fields.push(("data keys", format!("{count} wrapped by {kek}")));
    }
    if status.data_keys.is_empty() {
        fields.push(("data keys", "none yet".to_owned()));
    }
    if let Some(rotation) = &status.rotation {
        fields.push((
            "rotation",
            format!(
                "under way to {} since {} (run keys rotate again to finish it)",
                rotation.to, rotation.started_at
            ),
        ));
    }
    let last = match &status.last_rotation {
        Some(r) => format!(
            "{} -> {}, finished {} ({} data keys)",
            r.from,
            r.to,
            r.finished_at.map(|t| t.to_string()).unwrap_or_default(),
            r.data_keys
        ),
        None => "never".to_owned(),
    };
    fields.push(("last rotation", last));
    print_fields(&fields);
    Ok(())
}

/// `keys generate FILE`: a new random key, readable by its owner only.
pub fn generate(file: &Path, json: bool) -> anyhow::Result<()> {
    let key = coffer::crypto::generate_key()?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut out = options.open(file).map_err(|e| {
        coffer::Error::new(
            coffer::ErrorKind::Io,
            format!("cannot create the key file {}: {e}", file.display()),
        )
    })?;
    out.write_all(format!("{}\n", key.iter().map(|b| format!("{b:02x}")).collect::<String>()).as_bytes())
        .and_then(|()| out.sync_all())
        .map_err(|e| coffer::Error::new(coffer::ErrorKind::Io, format!("cannot write {}: {e}", file.display())))?;
    if json {
        return print_json(&json!({ "key_file": file }));
    }
    println!(
        "wrote a new 256-bit key to {} (keep a copy: without it the content it protects is lost)",
        file.display()
    );
    Ok(())
}

/// `init --encrypt SOURCE`: the `[encryption]` table it stands for.
pub fn encryption_from_spec(spec: &str) -> anyhow::Result<EncryptionConfig> {
    let (kind, value) = spec.split_once(':').unwrap_or((spec, ""));
    let mut config = EncryptionConfig::default();
    match (kind, value) {
        (_, "") => return Err(bad_spec(spec)),
        ("key-file", path) => config.key_file = Some(path.into()),
        ("key-env", var) => config.key_env = Some(var.to_owned()),
        ("passphrase-env", var) => config.passphrase_env = Some(var.to_owned()),
        ("kms", key_id) => config.kms_key_id = Some(key_id.to_owned()),
        _ => return Err(bad_spec(spec)),
    }
    Ok(config)
}

fn bad_spec(spec: &str) -> anyhow::Error {
    invalid_input(&format!(
        "--encrypt {spec:?}: expected key-file:PATH, key-env:VAR, passphrase-env:VAR or kms:KEY_ID"
    ))
}

/// After `init --encrypt`: the key now in use, and the config file that names it.
pub fn record_encryption(config: &Config, file: &Path, source: &KeySource, json: bool) -> anyhow::Result<()> {
    coffer::config::add_encryption_table(file, &config.encryption)?;
    if !json {
        println!("encryption: on, with {source}; [encryption] in {}", file.display());
    }
    Ok(())
}
