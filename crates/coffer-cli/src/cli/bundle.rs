//! `coffer bundle`: resources fetched from URLs, kept together as one bundle.

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// The bundle commands.
#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Start a bundle and print its id.
    Start(StartArgs),
    /// Add a resource to an open bundle, from a file or standard input.
    Add {
        /// The bundle.
        bundle: String,
        /// Where the resource came from.
        #[arg(long)]
        url: String,
        /// Its content type.
        #[arg(long, value_name = "TYPE")]
        content_type: Option<String>,
        /// The HTTP status it was fetched with.
        #[arg(long, default_value_t = 200)]
        status: u16,
        /// The file holding it; `-` (or none) reads standard input.
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        /// `-` reads standard input, as no `--file` does.
        #[arg(value_name = "-", value_parser = ["-"], conflicts_with = "file")]
        stdin: Option<String>,
    },
    /// Complete an open bundle: it is sealed, audited and announced (bundle.completed).
    Complete {
        /// The bundle.
        bundle: String,
        /// What to complete it with (repeatable).
        #[arg(long = "meta", value_name = "NAME=VALUE")]
        meta: Vec<String>,
    },
    /// Abort an open bundle: everything stored for it is removed.
    Abort {
        /// The bundle.
        bundle: String,
    },
    /// Reopen a bundle whose run died, dropping what that run streamed into a zip that never landed.
    Resume {
        /// The bundle.
        bundle: String,
    },
    /// Fetch URLs (the first is the primary URL) into one new bundle and complete it.
    Fetch {
        /// The URLs.
        #[arg(required = true)]
        urls: Vec<String>,
        #[command(flatten)]
        start: StartArgs,
        /// What to complete it with (repeatable).
        #[arg(long = "complete-meta", value_name = "NAME=VALUE")]
        complete_meta: Vec<String>,
        /// Responses fetched at once.
        #[arg(long, default_value_t = 8)]
        jobs: usize,
    },
    /// List bundles, oldest first.
    List {
        /// Only open bundles (left open by a run that died, or still going).
        #[arg(long)]
        pending: bool,
    },
    /// Show a bundle and its resources.
    Show {
        /// The bundle.
        bundle: String,
    },
    /// Write a bundle's zip, or one of its resources, to a file or standard output.
    Get {
        /// The bundle.
        bundle: String,
        /// The resource (its URL or name) instead of the whole zip.
        #[arg(long, value_name = "URL")]
        resource: Option<String>,
        /// Where to write; standard output without.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Write a bundle out: bundle_<id>/ in DIR with each resource and a .meta file beside it, or a WARC file.
    Export {
        /// The bundle.
        bundle: String,
        /// The directory to write bundle_<id>/ into.
        #[arg(required_unless_present = "warc", conflicts_with = "warc")]
        dir: Option<PathBuf>,
        /// Write a WARC file (.warc.gz) instead, each resource a response record.
        #[arg(long, value_name = "FILE")]
        warc: Option<PathBuf>,
    },
    /// What a long-running process does at start: run pending completion callbacks, deliver waiting announcements, list open bundles.
    Recover {
        /// Abort open bundles older than this (like 1h).
        #[arg(long, value_name = "AGE")]
        abort_older_than: Option<String>,
    },
}

/// How a bundle starts.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// The URL the bundle is fetched for.
    #[arg(long, value_name = "URL")]
    pub primary_url: Option<String>,
    /// The recipe fetching it.
    #[arg(long)]
    pub recipe: Option<String>,
    /// Kept with the bundle (repeatable).
    #[arg(long = "meta", value_name = "NAME=VALUE")]
    pub meta: Vec<String>,
    /// dir (each resource an object) or zip (one zip object) [default: dir on local disk, zip on object stores].
    #[arg(long)]
    pub layout: Option<String>,
    /// Expand gzip and zip resources.
    #[arg(long)]
    pub unzip: bool,
}
