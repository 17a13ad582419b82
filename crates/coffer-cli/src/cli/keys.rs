//! The arguments of `coffer keys` and `coffer init --encrypt`.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Subcommand};

/// `coffer init [--encrypt SOURCE]`.
#[derive(Debug, Args, Default)]
pub struct InitArgs {
    /// Encrypt the new store's content with this key, and write it into the
    /// config's [encryption]: key-file:PATH, key-env:VAR, passphrase-env:VAR or kms:KEY_ID.
    #[arg(long, value_name = "SOURCE")]
    pub encrypt: Option<String>,
}

/// The store's encryption keys.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// The store's key, how many data keys each key wraps, and key rotations.
    Status,
    /// Wrap every data key under a new key (no content is re-encrypted);
    /// run it again with the same new key to resume one cut short.
    #[command(group(ArgGroup::new("new").required(true).args(["new_key_file", "new_key_env", "new_passphrase_env", "new_kms_key_id"])))]
    Rotate {
        /// The new key, in a file (32 bytes: raw, hex or base64).
        #[arg(long, value_name = "FILE")]
        new_key_file: Option<PathBuf>,
        /// The new key, in this environment variable (hex or base64).
        #[arg(long, value_name = "VAR")]
        new_key_env: Option<String>,
        /// A new passphrase, in this environment variable.
        #[arg(long, value_name = "VAR")]
        new_passphrase_env: Option<String>,
        /// A new KMS key.
        #[arg(long, value_name = "ID")]
        new_kms_key_id: Option<String>,
        /// The new KMS key's service, if not AWS's (with --new-kms-key-id).
        #[arg(long, value_name = "URL", requires = "new_kms_key_id")]
        new_kms_endpoint: Option<String>,
    },
    /// Write a new random 256-bit key to FILE (readable by its owner only).
    Generate {
        /// The file to create; an existing one is not overwritten.
        file: PathBuf,
    },
}
