//! Arguments of the managing commands: prune, audit, search, verify, import and catalog.

use std::path::PathBuf;

use clap::{Args, Subcommand};

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["key", "prefix"])))]
pub struct PruneArgs {
    /// The object key.
    pub key: Option<String>,
    /// Prune every key under this prefix instead of one key.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Keep this many of the newest versions (delete markers count); at least 1.
    #[arg(long, value_name = "N")]
    pub keep: usize,
    /// Keep tagged versions too, however old.
    #[arg(long)]
    pub keep_tagged: bool,
    /// Show what would be removed without removing anything.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: Option<AuditCommand>,
    /// Only rows about this key.
    #[arg(long)]
    pub key: Option<String>,
    /// Only rows about keys under this prefix.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Only rows by this actor.
    #[arg(long)]
    pub actor: Option<String>,
    #[arg(long, help = format!("Only rows of this action: {} (get: reads, with audit_reads on)", coffer::AUDIT_ACTIONS.join(", ")))]
    pub action: Option<String>,
    /// Only rows at or after this time (RFC 3339, a date, or a span ago like 7d).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only rows before this time.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Show at most this many rows, the newest [default: 100; with --export, every row].
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Write the matching rows to FILE as JSON Lines, oldest first (FILE appears only once complete).
    #[arg(long, value_name = "FILE")]
    pub export: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Remove audit rows older than the configured audit_retention; the purge is itself audited.
    Purge {
        /// Remove only rows older than this, which must not be later than now minus the retention
        /// (RFC 3339, a date, or a span ago like 8y).
        #[arg(long, value_name = "TIME")]
        before: Option<String>,
        /// Count the rows that would be removed, and remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Which files of a directory `import` stores.
#[derive(Debug, Args)]
pub struct ImportSelection {
    /// Import files whose key's latest version already holds the same content too (skipped by default).
    #[arg(long, conflicts_with = "from_store")]
    pub force: bool,
    /// List what would be imported, and store nothing.
    #[arg(long, conflicts_with = "from_store")]
    pub dry_run: bool,
    /// Leave out files whose path under the directory matches this glob (* matches across /); repeatable.
    #[arg(long, value_name = "GLOB", conflicts_with = "from_store")]
    pub exclude: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Words that must each begin a word of the version (case ignored); none: filters only.
    #[arg(default_value = "")]
    pub text: String,
    /// Only keys starting with this.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Only versions with this tag, repeatable.
    #[arg(long = "tag", short = 't', value_name = "NAME=VALUE")]
    pub tags: Vec<String>,
    /// Only versions with this metadata entry, repeatable.
    #[arg(long = "metadata", short = 'm', value_name = "NAME=VALUE")]
    pub metadata: Vec<String>,
    /// Only versions of this content type.
    #[arg(long, value_name = "TYPE")]
    pub content_type: Option<String>,
    /// Only versions made at or after this time (RFC 3339, a date, or a span ago like 7d).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only versions made before this time.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Search every version, not only the latest of keys that are not deleted.
    #[arg(long)]
    pub all_versions: bool,
    /// Show at most this many hits (1-1000).
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Go on from a previous page (its next cursor), with the same text and filters.
    #[arg(long)]
    pub cursor: Option<String>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Only the versions of keys under this prefix (orphans are looked for only without it).
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// Mark damaged content, rewrite missing manifests and remove orphans.
    #[arg(long)]
    pub repair: bool,
    /// Leave unreferenced objects younger than this alone (a put may still be running).
    #[arg(long, value_name = "AGE", default_value = "1h")]
    pub min_age: String,
    /// Blobs hashed at once.
    #[arg(long, default_value_t = 2)]
    pub jobs: usize,
}

#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Copy a SQLite catalog (versions, tags, comments, blobs, audit log, hooks and events: everything) into
    /// PostgreSQL in one transaction, then check both hold the same rows. Safe to run again; stop writers first.
    Migrate {
        /// The SQLite catalog to copy [default: the configured catalog, or the store's catalog.db when that is PostgreSQL].
        #[arg(long, value_name = "URL")]
        from: Option<String>,
        /// The PostgreSQL catalog to copy into (created and migrated if new).
        #[arg(long, value_name = "URL")]
        to: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum LifecycleCommand {
    /// What the rules would do at a time, changing nothing: expiries, removals, transitions, and what retention holds back.
    Plan {
        /// The time to plan for: RFC 3339, a date, or a span from now (90d looks 90 days ahead). Default: now.
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
    },
    /// Carry the rules out now: each action audited (actor lifecycle:RULE) with its events.
    Apply {
        /// Say what would be done, and change nothing.
        #[arg(long, conflicts_with = "watch")]
        dry_run: bool,
        /// Keep going: apply again every --interval until stopped (SIGINT/SIGTERM).
        #[arg(long)]
        watch: bool,
        /// How often --watch applies the rules (default 1h).
        #[arg(long, value_name = "SPAN", requires = "watch")]
        interval: Option<String>,
    },
}
