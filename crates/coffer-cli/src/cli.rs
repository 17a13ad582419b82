//! The command line, declared with clap.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// coffer: versioned, audited objects on local disk or any object store.
#[derive(Debug, Parser)]
#[command(name = "coffer", version, about, after_help = crate::output::EXIT_CODES_HELP)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Config file (TOML); default ./coffer.toml when it exists.
    #[arg(long, global = true, env = "COFFER_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory of the embedded store [default: ./coffer-data].
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Catalog URL, for example sqlite:///srv/coffer/catalog.db.
    #[arg(long, global = true, value_name = "URL")]
    pub catalog: Option<String>,
    /// Who to record as the actor of changes [env: COFFER_USER; default: the OS user].
    #[arg(long, global = true, value_name = "NAME")]
    pub user: Option<String>,
    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the store (the data directory, catalog and blob folder).
    Init,
    /// Store a file or standard input as a new version of KEY.
    Put(PutArgs),
    /// Write a version of KEY to a file or standard output.
    Get(GetArgs),
    /// Exit 0 if KEY exists, else with the not-found code (3).
    Exists {
        /// The object key.
        key: String,
    },
    /// Show a version's key, id, size, hashes, content type, metadata and author.
    Metadata {
        /// The object key.
        key: String,
        /// A specific version instead of the latest.
        #[arg(long, value_name = "ID")]
        version: Option<String>,
    },
    /// List keys, a page at a time, in key order.
    List(ListArgs),
    /// Make DESTINATION a new version with the content of SOURCE (no bytes are copied).
    Copy {
        /// The key to copy from.
        source: String,
        /// The key to copy to.
        destination: String,
        /// Copy this version of SOURCE instead of its latest.
        #[arg(long, value_name = "ID")]
        version: Option<String>,
    },
    /// Delete KEY (a delete marker; its versions stay), or one version for good.
    Delete {
        /// The object key.
        key: String,
        /// Remove this version permanently instead of adding a delete marker.
        #[arg(long, value_name = "ID")]
        version: Option<String>,
    },
    /// Every version and delete marker of KEY, newest first.
    Versions {
        /// The object key.
        key: String,
    },
    /// The backend, catalog and totals of the store.
    Info,
}

#[derive(Debug, Args)]
pub struct PutArgs {
    /// The object key, for example invoices/2024/inv_001.pdf.
    pub key: String,
    /// Read the content from this file instead of standard input.
    #[arg(long, short, value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// MIME type; guessed from the key's extension when absent.
    #[arg(long, value_name = "TYPE")]
    pub content_type: Option<String>,
    /// User metadata, repeatable.
    #[arg(long = "metadata", short = 'm', value_name = "KEY=VALUE")]
    pub metadata: Vec<String>,
    /// Only write if the current version has this ETag.
    #[arg(long, value_name = "ETAG", conflicts_with = "if_none_match")]
    pub if_match: Option<String>,
    /// Only write if the key does not exist; the only accepted value is '*'.
    #[arg(long, value_name = "*")]
    pub if_none_match: Option<String>,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// The object key.
    pub key: String,
    /// Read this version instead of the latest.
    #[arg(long, value_name = "ID")]
    pub version: Option<String>,
    /// Only these bytes: FIRST-LAST (inclusive), FIRST- or -LENGTH.
    #[arg(long, value_name = "RANGE")]
    pub range: Option<String>,
    /// Write to this file (created or replaced once complete) instead of standard output.
    #[arg(long, short, value_name = "PATH")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only keys starting with this.
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// Group keys sharing everything up to this after the prefix (usually '/').
    #[arg(long)]
    pub delimiter: Option<String>,
    /// Largest page (keys and common prefixes together).
    #[arg(long, default_value_t = 1000)]
    pub max_keys: usize,
    /// Start after this key (the previous page's next_start_after).
    #[arg(long, value_name = "KEY")]
    pub start_after: Option<String>,
}
