//! The command line, declared with clap.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

mod bundle;
mod hooks;
mod keys;
mod manage;
mod objects;
mod serve;

pub use self::bundle::{BundleCommand, StartArgs};
pub use self::hooks::{AddHook, EventsCommand, HookOptions, HooksCommand, RunArgs};
pub use self::keys::{InitArgs, KeysCommand};
pub use self::manage::{
    AuditArgs, AuditCommand, CatalogCommand, ImportSelection, LifecycleCommand, PruneArgs, SearchArgs, VerifyArgs,
};
pub use self::objects::{
    DeleteArgs, GetArgs, LegalHoldCommand, ListArgs, MetadataCommand, PutArgs, RestoreArgs, RestoreCommand,
    RetentionArgs, RetentionCommand, TierCommand, UrlArgs, UrlMethod,
};
pub use self::serve::{ServeArgs, TokenCommand, TokenCreateArgs};

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
    /// S3: create the bucket with Object Lock on (with --create-bucket), so
    /// that the store itself refuses to remove protected versions' objects.
    #[arg(long)]
    pub object_lock: bool,
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
    Init(InitArgs),
    /// Store a file or standard input as a new version of KEY.
    Put(PutArgs),
    /// Write a version of KEY to a file or standard output.
    Get(GetArgs),
    /// Exit 0 if KEY exists, else with the not-found code (3).
    Exists {
        /// The object key.
        key: String,
    },
    /// Show a version's key, id, size, hashes, content type, metadata and author; `metadata set` changes them.
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Metadata {
        #[command(subcommand)]
        command: Option<MetadataCommand>,
        /// The object key.
        #[arg(required = true)]
        key: Option<String>,
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
    /// A URL that reads a version, or uploads the next one, without credentials: presigned on S3 and Azure, else a link through `coffer serve`.
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
    /// Show or set a version's retention (WORM: governance or compliance, until a date).
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// The store's encryption keys: status, rotate, generate.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The hot store (small puts committed in the catalog, flushed to the backend later): status, flush, expire.
    #[command(subcommand)]
    Hot(HotCommand),
    /// Bundles: resources fetched from URLs kept together (a directory or one zip), completed once.
    #[command(subcommand)]
    Bundle(BundleCommand),
    /// Print a completion script for a shell: `coffer completions bash > /etc/bash_completion.d/coffer`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Serve the store over HTTP: the REST API, links for local disk, health checks; runs the background work.
    Serve(ServeArgs),
    /// Access tokens for `coffer serve`: create (the secret is shown once), list, revoke.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Set or clear a version's legal hold.
    #[command(subcommand, name = "legal-hold")]
    LegalHold(LegalHoldCommand),
    /// What the [[lifecycle.rules]] do: `plan` at any time, `apply` now (or on a schedule with --watch).
    #[command(subcommand)]
    Lifecycle(LifecycleCommand),
    /// Bring an archived version back (S3 GLACIER or DEEP_ARCHIVE, Azure Archive); `restore status` follows it.
    Restore(RestoreArgs),
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

/// The hot store's state, and its work on demand.
#[derive(Debug, Subcommand)]
pub enum HotCommand {
    /// Objects and bytes held hot, what waits for the backend and since when, copies expired, the engine.
    Status,
    /// Write every hot object's blob and manifest that the backend lacks, now.
    Flush,
    /// Drop hot copies older than hot.days that are on the backend (reads then come from there).
    Expire {
        /// Only count them.
        #[arg(long)]
        dry_run: bool,
    },
    /// The newest objects held hot, from the hot engine (ClickHouse, or the catalog).
    Query {
        /// Only keys starting with this.
        #[arg(long, default_value = "")]
        prefix: String,
        /// Only objects put since then (a time, or a span ago like 1h).
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}
