//! Arguments of the everyday object commands: put, get, list, delete, tier,
//! url, retention and legal hold.

use std::path::PathBuf;

use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The object key.
    #[arg(required_unless_present = "prefix", conflicts_with = "prefix")]
    pub key: Option<String>,
    /// Remove this version permanently instead of adding a delete marker.
    #[arg(long, value_name = "ID", conflicts_with = "prefix")]
    pub version: Option<String>,
    /// With --version: remove it although a governance retention holds it (audited).
    #[arg(long, requires = "version")]
    pub bypass_governance: bool,
    /// Delete every live key under this prefix instead (a delete marker each).
    #[arg(long)]
    pub prefix: Option<String>,
    /// With --prefix: list the keys that would be deleted, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
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
    #[arg(long = "metadata", short = 'm', value_name = "NAME=VALUE")]
    pub metadata: Vec<String>,
    /// A tag on the new version, repeatable.
    #[arg(long = "tag", short = 't', value_name = "NAME=VALUE")]
    pub tags: Vec<String>,
    /// Only write if the current version has this ETag.
    #[arg(long, value_name = "ETAG", conflicts_with = "if_none_match")]
    pub if_match: Option<String>,
    /// Only write if the key does not exist; the only accepted value is '*'.
    #[arg(long, value_name = "*")]
    pub if_none_match: Option<String>,
    /// The storage class of the content: S3 (STANDARD_IA, GLACIER, DEEP_ARCHIVE ...) or Azure's access tier (Cool, Archive ...).
    #[arg(long, value_name = "CLASS")]
    pub storage_class: Option<String>,
    /// Commit the bytes uploaded through `coffer url KEY --method put` (its upload id) instead of reading input.
    #[arg(long, value_name = "ID", conflicts_with = "file")]
    pub upload: Option<String>,
    #[command(flatten)]
    pub retention: RetentionArgs,
    /// Put the new version under legal hold: nothing removes it until `coffer legal-hold clear`.
    #[arg(long)]
    pub legal_hold: bool,
}

/// A retention asked for: until a time, or for a span, in a mode.
#[derive(Debug, Args)]
pub struct RetentionArgs {
    /// Keep the version until this time (RFC 3339 or a date, like 2033-01-01).
    #[arg(long, value_name = "TIME", conflicts_with = "retain")]
    pub retain_until: Option<String>,
    /// Keep the version this long from now (10y, 90d).
    #[arg(long, value_name = "SPAN")]
    pub retain: Option<String>,
    /// governance (shortening or removing needs --bypass-governance) or compliance (nobody can); default governance.
    #[arg(long = "retention-mode", alias = "mode", value_name = "MODE")]
    pub mode: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum MetadataCommand {
    /// Change KEY's user metadata or content type without moving its bytes: a new version sharing the content.
    Set {
        /// The object key.
        key: String,
        /// Metadata entries to add or replace.
        #[arg(value_name = "NAME=VALUE")]
        entries: Vec<String>,
        /// A metadata entry to remove, repeatable.
        #[arg(long, value_name = "NAME")]
        remove: Vec<String>,
        /// A new content type.
        #[arg(long, value_name = "TYPE")]
        content_type: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// A version's retention and legal hold, and whether it may be removed now.
    Show {
        /// The object key.
        key: String,
        /// A version other than the latest.
        #[arg(long, value_name = "ID")]
        version: Option<String>,
    },
    /// Give a version a retention, or extend it; shortening or relaxing needs --bypass-governance (governance only).
    Set {
        /// The object key.
        key: String,
        /// The version.
        #[arg(long, value_name = "ID")]
        version: String,
        #[command(flatten)]
        retention: RetentionArgs,
        /// Shorten or relax a governance retention in force (audited).
        #[arg(long)]
        bypass_governance: bool,
    },
    /// Remove a version's retention: free once its date has passed, else governance with --bypass-governance only.
    Clear {
        /// The object key.
        key: String,
        /// The version.
        #[arg(long, value_name = "ID")]
        version: String,
        /// Remove a governance retention in force (audited).
        #[arg(long)]
        bypass_governance: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum LegalHoldCommand {
    /// Put a version under legal hold: nothing removes it until the hold is cleared.
    Set {
        /// The object key.
        key: String,
        /// The version.
        #[arg(long, value_name = "ID")]
        version: String,
    },
    /// Clear a version's legal hold.
    Clear {
        /// The object key.
        key: String,
        /// The version.
        #[arg(long, value_name = "ID")]
        version: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TierCommand {
    /// Move a version's content (and every version sharing it) to the hot or cold tier; its id stays.
    Move {
        /// The object key.
        key: String,
        /// The version.
        #[arg(long, value_name = "ID")]
        version: String,
        /// Where to.
        #[arg(long, value_name = "TIER", value_parser = ["hot", "cold"])]
        to: String,
    },
    /// Which tier holds a version's content.
    Show {
        /// The object key.
        key: String,
        /// A version other than the latest.
        #[arg(long, value_name = "ID")]
        version: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct UrlArgs {
    /// The object key.
    pub key: String,
    /// A version other than the latest (GET only).
    #[arg(long, value_name = "ID")]
    pub version: Option<String>,
    /// Seconds until the URL stops working (1 to 604800).
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    pub expires: u64,
    /// GET reads the version; PUT uploads the bytes of the next one (presigned: committed with `coffer put KEY --upload ID`; a link: stored by the server).
    #[arg(long, value_enum, default_value = "get")]
    pub method: UrlMethod,
}

/// What a presigned URL is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UrlMethod {
    /// Read a version.
    Get,
    /// Upload the next version.
    Put,
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
    /// Write to this file (created or replaced once complete) instead of standard output;
    /// into a directory (one that exists, or a path ending in /) under the key's last segment.
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
    /// Every version of each key (delete markers too, deleted keys included), newest first within a key.
    #[arg(long, conflicts_with_all = ["delimiter", "deleted"])]
    pub versions: bool,
    /// Only keys whose latest version is a delete marker.
    #[arg(long, conflicts_with = "delimiter")]
    pub deleted: bool,
}

/// `coffer restore KEY --version ID` starts a restore; `coffer restore status KEY --version ID` follows it.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct RestoreArgs {
    #[command(subcommand)]
    pub command: Option<RestoreCommand>,
    /// The object key.
    #[arg(required = true)]
    pub key: Option<String>,
    /// The archived version.
    #[arg(long, value_name = "ID", required = true)]
    pub version: Option<String>,
    /// How many days the restored copy stays readable (S3; Azure rehydrates for good).
    #[arg(long, value_name = "N", default_value_t = 7)]
    pub days: u32,
    /// How fast: expedited, standard or bulk (Azure: expedited is high priority).
    #[arg(long, value_name = "TIER", default_value = "standard")]
    pub tier: String,
}

#[derive(Debug, Subcommand)]
pub enum RestoreCommand {
    /// Where a restore stands: archived, in progress, or readable (until when).
    Status {
        /// The object key.
        key: String,
        /// The version.
        #[arg(long, value_name = "ID")]
        version: String,
    },
}
