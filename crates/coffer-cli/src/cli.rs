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
    /// Catalog URL: sqlite://PATH or postgres://USER@HOST/DB [env: COFFER_CATALOG_URL, else DATABASE_URL].
    #[arg(long, global = true, value_name = "URL")]
    pub catalog: Option<String>,
    /// Who to record as the actor of changes [env: COFFER_USER; default: the OS user].
    #[arg(long, global = true, value_name = "NAME")]
    pub user: Option<String>,
    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// On an error, also print its causes in full, the storage library's details included (also when RUST_LOG is set).
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// A local directory that takes writes while the backend does not answer [env: COFFER_SPOOL].
    #[arg(long, global = true, value_name = "DIR")]
    pub spool: Option<PathBuf>,
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// Which backend to use, overriding the config file. `--store` goes
/// anywhere; the other backend flags go before the command
/// (`coffer --backend s3 --bucket b put KEY`), since some commands have
/// options of the same name. Secrets are better left to the environment
/// (AWS_ACCESS_KEY_ID, AZURE_STORAGE_ACCOUNT_KEY ...).
#[derive(Debug, Args)]
#[command(next_help_heading = "Backend (before the command)")]
pub struct BackendArgs {
    /// A named store of the config file ([stores.NAME]) instead of its [backend].
    #[arg(long, global = true, value_name = "NAME")]
    pub store: Option<String>,
    /// The kind of backend: fs (alias local), memory, s3, azure (alias azblob), as in the config and COFFER_BACKEND.
    #[arg(long, value_name = "KIND", value_parser = backend_kinds())]
    pub backend: Option<coffer::BackendKind>,
    /// Local backend: the directory that holds the blobs [default: <data-dir>/store].
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,
    /// S3: the bucket.
    #[arg(long)]
    pub bucket: Option<String>,
    /// S3: the region [env: AWS_REGION].
    #[arg(long)]
    pub region: Option<String>,
    /// S3 or Azure: the endpoint URL (an S3-compatible store, Azurite ...).
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// S3: the access key id [env: AWS_ACCESS_KEY_ID].
    #[arg(long, value_name = "ID")]
    pub access_key: Option<String>,
    /// S3: the secret access key [env: AWS_SECRET_ACCESS_KEY].
    #[arg(long, value_name = "SECRET")]
    pub secret_key: Option<String>,
    /// S3: a profile of the AWS config and credentials files [env: AWS_PROFILE].
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// S3: the storage class of new objects (STANDARD, STANDARD_IA, GLACIER ...).
    #[arg(long, value_name = "CLASS")]
    pub storage_class: Option<String>,
    /// S3: address the bucket as BUCKET.ENDPOINT instead of ENDPOINT/BUCKET.
    #[arg(long)]
    pub virtual_host_style: bool,
    /// Azure: the container.
    #[arg(long)]
    pub container: Option<String>,
    /// Azure: the storage account [env: AZURE_STORAGE_ACCOUNT_NAME].
    #[arg(long, value_name = "NAME")]
    pub account_name: Option<String>,
    /// Azure: the account key [env: AZURE_STORAGE_ACCOUNT_KEY].
    #[arg(long, value_name = "KEY")]
    pub account_key: Option<String>,
    /// Azure: a SAS token instead of the account key [env: AZURE_STORAGE_SAS_TOKEN].
    #[arg(long, value_name = "TOKEN")]
    pub sas_token: Option<String>,
    /// Azure: a connection string [env: AZURE_STORAGE_CONNECTION_STRING].
    #[arg(long, value_name = "TEXT")]
    pub connection_string: Option<String>,
    /// Azure: the access tier of blobs (Hot, Cool, Cold, Archive).
    #[arg(long, value_name = "TIER")]
    pub access_tier: Option<String>,
    /// S3 or Azure: create the bucket or container when it does not exist.
    #[arg(long)]
    pub create_bucket: bool,
}

/// The library's kinds of backend as clap's values, aliases included.
fn backend_kinds() -> impl clap::builder::TypedValueParser<Value = coffer::BackendKind> {
    let values = coffer::BackendKind::ALL.map(|kind| {
        clap::builder::PossibleValue::new(kind.name())
            .aliases(kind.aliases())
            .help(kind.about())
    });
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(values).try_map(|name| name.parse::<coffer::BackendKind>())
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
    /// Delete KEY (a delete marker; its versions stay), or one version for good, or every key under --prefix.
    Delete(DeleteArgs),
    /// Bring back a deleted KEY: a new version sharing the bytes of its newest version with content.
    Undelete {
        /// The object key.
        key: String,
        /// Why, recorded as a comment on the new version.
        #[arg(long, value_name = "TEXT")]
        comment: Option<String>,
    },
    /// Every version and delete marker of KEY, newest first.
    Versions {
        /// The object key.
        key: String,
        /// Show only the newest N.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
    },
    /// The backend, catalog and totals of the store.
    Info,
    /// Whether the backend answers: its name, capabilities and latency (exit 8 when it does not).
    Health,
    /// Move what the local spool holds to the backend, verifying each file (exit 8 while it does not answer).
    Sync {
        /// Keep going: drain again every --interval until stopped (SIGINT/SIGTERM).
        #[arg(long)]
        watch: bool,
        /// How often --watch drains.
        #[arg(long, value_name = "SPAN", requires = "watch")]
        interval: Option<String>,
    },
    /// Copy every version's content and manifest to another backend (a named store), verified; resumable.
    Migrate {
        /// The named store ([stores.NAME] in the config) to copy to.
        #[arg(long, value_name = "NAME")]
        to: String,
        /// When everything is there, make it this store's backend (sets `store = "NAME"` in the config file).
        #[arg(long)]
        switch: bool,
        /// Files copied at once.
        #[arg(long, default_value_t = 4)]
        jobs: usize,
    },
    /// Move a version's content between the hot and the cold tier, or show where it is.
    #[command(subcommand)]
    Tier(TierCommand),
    /// A presigned URL: read a version, or upload the next one, without credentials (S3, Azure).
    Url(UrlArgs),
    /// The versions of KEY, newest first, with author, tags, comments and size change.
    History {
        /// The object key.
        key: String,
        /// Show at most this many versions.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
    },
    /// Make an older version current again (a new version sharing its bytes).
    Rollback {
        /// The object key.
        key: String,
        /// The version to bring back.
        version: String,
        /// Why, recorded as a comment on the new version.
        #[arg(long, value_name = "TEXT")]
        comment: Option<String>,
    },
    /// How version TO of KEY differs from version FROM: size, content, metadata, tags, text.
    Compare {
        /// The object key.
        key: String,
        /// The first version (usually the older).
        from: String,
        /// The second version.
        to: String,
    },
    /// Set tags on a version (NAME=VALUE ...), or remove them with --remove.
    Tag {
        /// The object key.
        key: String,
        /// The version to tag.
        version: String,
        /// Tags to set.
        #[arg(value_name = "NAME=VALUE")]
        tags: Vec<String>,
        /// A tag name to remove, repeatable.
        #[arg(long, value_name = "NAME")]
        remove: Vec<String>,
    },
    /// Add a comment to a version.
    Comment {
        /// The object key.
        key: String,
        /// The version to comment on.
        version: String,
        /// The comment.
        text: String,
    },
    /// Remove old versions of KEY (or of every key under --prefix), keeping the newest.
    Prune(PruneArgs),
    /// The audit log, newest first; --export writes it to a file; `audit purge` removes old rows.
    Audit(AuditArgs),
    /// Find versions by words of their key, metadata values, tags and comments, best first.
    Search(SearchArgs),
    /// Re-hash every referenced blob and check every manifest; find orphans.
    Verify(VerifyArgs),
    /// Rebuild a catalog from the backend's manifests alone, into a new catalog file.
    Reindex {
        /// The new catalog's file (must not exist yet).
        #[arg(long, value_name = "PATH")]
        into: PathBuf,
    },
    /// Manage the catalog itself.
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Integration hooks: webhooks, file logs, commands and queues that receive events.
    #[command(subcommand)]
    Hooks(HooksCommand),
    /// Fire an application's own events.
    #[command(subcommand)]
    Events(EventsCommand),
    /// Store every file under DIR (or every object of a named store) as PREFIX + its relative path.
    Import {
        /// The directory (or the one file) to import.
        #[arg(required_unless_present = "from_store", conflicts_with = "from_store")]
        dir: Option<PathBuf>,
        #[command(flatten)]
        selection: ImportSelection,
        /// Import the objects of this named store ([stores.NAME]: a bucket another tool filled) instead of a directory.
        #[arg(long, value_name = "NAME")]
        from_store: Option<String>,
        /// With --from-store: only the objects under this folder of it.
        #[arg(long, value_name = "FOLDER", default_value = "", requires = "from_store")]
        source_prefix: String,
        /// Put before each relative path to make the key.
        #[arg(long, default_value = "")]
        prefix: String,
        /// Files stored at once.
        #[arg(long, default_value_t = 8)]
        jobs: usize,
    },
    /// Write the keys under --prefix to DIR as files (the latest versions, or those current at a time).
    Export {
        /// The directory to write to (created if missing).
        dir: PathBuf,
        /// The keys to export; it is removed from each key to name its file.
        #[arg(long, default_value = "")]
        prefix: String,
        /// Export the versions current at this time (RFC 3339, a date, or a span ago like 7d).
        #[arg(long, value_name = "TIME")]
        version_at: Option<String>,
        /// Files written at once.
        #[arg(long, default_value_t = 4)]
        jobs: usize,
        /// Leave files that exist already (counted as skipped) instead of replacing them.
        #[arg(long)]
        no_clobber: bool,
    },
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The object key.
    #[arg(required_unless_present = "prefix", conflicts_with = "prefix")]
    pub key: Option<String>,
    /// Remove this version permanently instead of adding a delete marker.
    #[arg(long, value_name = "ID", conflicts_with = "prefix")]
    pub version: Option<String>,
    /// Delete every live key under this prefix instead (a delete marker each).
    #[arg(long)]
    pub prefix: Option<String>,
    /// With --prefix: list the keys that would be deleted, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

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
    /// GET reads the version; PUT uploads the bytes of the next one, committed with `coffer put KEY --upload ID`.
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
pub enum HooksCommand {
    /// Add a hook (webhook, filelog, exec, nats, amqp or sqs).
    #[command(subcommand)]
    Add(AddHook),
    /// Every hook with its filter and settings (secrets hidden).
    List,
    /// Remove a hook and its pending deliveries.
    Remove {
        /// The hook.
        name: String,
    },
    /// Send a test event (type hook.test) to a hook now, and report how it went.
    Test {
        /// The hook.
        name: String,
    },
    /// Events fired, attempts, failures, success rate, latency, queue depth and dead letters per hook.
    Stats,
    /// Retry dead-lettered deliveries (of one hook, or of all).
    Replay {
        /// Only this hook's.
        name: Option<String>,
    },
    /// Dead-lettered deliveries, newest first, with their last error.
    Dead {
        /// Only this hook's.
        name: Option<String>,
        /// Show at most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Deliver events: run as a worker until stopped (SIGINT/SIGTERM), or --once until nothing is due.
    Run(RunArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Deliver what is due now, then exit.
    #[arg(long)]
    pub once: bool,
    /// Deliveries claimed at a time.
    #[arg(long, default_value_t = 512)]
    pub batch: usize,
    /// Deliveries in flight at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// How long a claim lasts before another dispatcher may redeliver (longer than any hook's timeout).
    #[arg(long, default_value = "2m", value_name = "SPAN")]
    pub claim_timeout: String,
    /// Length of the dispatcher lease on SQLite (a standby takes over at most this long after a crash).
    #[arg(long, default_value = "15s", value_name = "SPAN")]
    pub lease: String,
    /// Delay before the first retry; each retry doubles it (with jitter).
    #[arg(long, default_value = "1s", value_name = "SPAN")]
    pub backoff: String,
    /// Longest delay between retries.
    #[arg(long, default_value = "10m", value_name = "SPAN")]
    pub max_backoff: String,
    /// Remove delivered events older than this.
    #[arg(long, default_value = "7d", value_name = "SPAN")]
    pub retention: String,
}

/// Which events a hook receives, and how it is delivered; for every kind of hook.
#[derive(Debug, Args)]
pub struct HookOptions {
    /// Only these event types, comma-separated: built-in ones (object.archived; object.* or version.* for a
    /// family) or your application's, with a prefix of their own (batch.completed, qc.*).
    #[arg(long, value_delimiter = ',', value_name = "TYPES")]
    pub events: Vec<String>,
    /// Only events about keys starting with this.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Only events about keys matching this glob (* within a path segment, ** across).
    #[arg(long)]
    pub glob: Option<String>,
    /// Only events whose metadata, or else tags, have NAME=VALUE (or not, with NAME!=VALUE); repeatable, all
    /// must hold. A metadata entry NAME wins over a tag NAME.
    #[arg(long = "where", value_name = "NAME=VALUE")]
    pub conditions: Vec<String>,
    /// Deliver within the operation that fired the event (it returns after this hook was tried).
    #[arg(long)]
    pub sync: bool,
    /// Attempts before a delivery is dead-lettered.
    #[arg(long, default_value_t = coffer::DEFAULT_MAX_ATTEMPTS)]
    pub attempts: u32,
    /// Replace an existing hook of this name.
    #[arg(long)]
    pub replace: bool,
}

#[derive(Debug, Subcommand)]
pub enum AddHook {
    /// An HTTP POST or PUT per event, signed per Standard Webhooks when given a secret.
    Webhook {
        /// The hook's name.
        name: String,
        /// Where to send.
        url: String,
        /// POST or PUT.
        #[arg(long, default_value = "POST")]
        method: String,
        /// An extra header, NAME:VALUE; repeatable.
        #[arg(long = "header", value_name = "NAME:VALUE")]
        headers: Vec<String>,
        /// Signing secret (whsec_<base64>, or any text) [env: COFFER_HOOK_SECRET].
        #[arg(long, env = "COFFER_HOOK_SECRET", hide_env_values = true)]
        secret: Option<String>,
        /// How long the receiver has to answer.
        #[arg(long, default_value = "10s", value_name = "SPAN")]
        timeout: String,
        /// A MiniJinja template for the body instead of the CloudEvents document
        /// ({{ type }}, {{ subject }}, {{ data.key }}, {{ data | tojson }} ...).
        #[arg(long, conflicts_with = "template_file")]
        template: Option<String>,
        /// Read the template from this file.
        #[arg(long, value_name = "FILE")]
        template_file: Option<PathBuf>,
        #[command(flatten)]
        options: HookOptions,
    },
    /// Append a line per event to a file.
    Filelog {
        /// The hook's name.
        name: String,
        /// The file (created if missing).
        path: PathBuf,
        /// json (the CloudEvents document per line) or text (time, type, key, version, id).
        #[arg(long, default_value = "json")]
        format: String,
        #[command(flatten)]
        options: HookOptions,
    },
    /// Run a command (by sh -c) per event with the event's JSON on its standard input; exit 0 = delivered.
    Exec {
        /// The hook's name.
        name: String,
        /// The command line.
        command: String,
        /// How long it may run before it is killed.
        #[arg(long, default_value = "30s", value_name = "SPAN")]
        timeout: String,
        #[command(flatten)]
        options: HookOptions,
    },
    /// Publish each event to a NATS JetStream subject.
    Nats {
        /// The hook's name.
        name: String,
        /// Server URL (nats://127.0.0.1:4222).
        url: String,
        /// Subject; {type} is replaced by the event type.
        #[arg(long, default_value = "coffer.{type}")]
        subject: String,
        /// Create this stream for the subject if it does not exist.
        #[arg(long)]
        stream: Option<String>,
        /// User name.
        #[arg(long)]
        user: Option<String>,
        /// Password [env: COFFER_NATS_PASSWORD].
        #[arg(long, env = "COFFER_NATS_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// Token [env: COFFER_NATS_TOKEN].
        #[arg(long, env = "COFFER_NATS_TOKEN", hide_env_values = true)]
        token: Option<String>,
        #[command(flatten)]
        options: HookOptions,
    },
    /// Publish each event to an AMQP exchange (RabbitMQ), with publisher confirms.
    Amqp {
        /// The hook's name.
        name: String,
        /// Broker URL (amqp://user:password@127.0.0.1:5672/%2f).
        url: String,
        /// Exchange (empty: the default exchange, routing straight to a queue).
        #[arg(long, default_value = "")]
        exchange: String,
        /// Routing key; {type} is replaced by the event type.
        #[arg(long, default_value = "coffer.{type}")]
        routing_key: String,
        /// Declare this durable queue (bound to the exchange) if it does not exist.
        #[arg(long)]
        queue: Option<String>,
        #[command(flatten)]
        options: HookOptions,
    },
    /// Send each event as a message to an Amazon SQS queue.
    Sqs {
        /// The hook's name.
        name: String,
        /// Queue URL.
        queue_url: String,
        /// AWS region.
        #[arg(long, env = "AWS_REGION")]
        region: String,
        /// Endpoint instead of the queue URL's host (an emulator).
        #[arg(long)]
        endpoint: Option<String>,
        /// Access key id.
        #[arg(long, env = "AWS_ACCESS_KEY_ID")]
        access_key: String,
        /// Secret access key.
        #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
        secret_key: String,
        /// Session token of temporary credentials.
        #[arg(long, env = "AWS_SESSION_TOKEN", hide_env_values = true)]
        session_token: Option<String>,
        #[command(flatten)]
        options: HookOptions,
    },
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Fire an event of your own (batch.completed, qc.approved ...) to the hooks that want it.
    Fire {
        /// The event type.
        event_type: String,
        /// The payload, as JSON.
        #[arg(long, default_value = "{}")]
        data: String,
        /// The key the event is about (its subject), if any.
        #[arg(long)]
        key: Option<String>,
    },
}
