//! Command-line arguments.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};

const USAGE: &str = "\
usage: coffer-bench [--versions | --catalog | --hooks | --s3 | --encryption | --hot | --bundles | --serve] [--size-mib N] [--small N] [--dir PATH] [--quick]

  --versions     run only the versions group (issue 4): rollback, history and versions of a
                 key with 10000 versions, import of 10000 files of 16 KiB and of one large
                 file, verify; each beside a peer (cp -r && sync, sha256sum, bare SQLite)
  --catalog      run only the catalog group (issue 5): SQLite and PostgreSQL each filled with
                 1,000,000 versions of 200,000 keys (50,000 of 10,000 with --quick), then a
                 list page, a search and one put's transaction timed side by side
  --hooks        run only the hooks group (integration hooks): on SQLite and PostgreSQL side by
                 side, 100,000 events (20,000 with --quick) delivered to a webhook on 127.0.0.1
                 by a dispatcher in the bench and by `coffer hooks run --once`, and the cost of
                 a put's events (commits of a put against those of a silent reindex)
  --s3           run only the object-store group: coffer, `aws s3` and rclone against the same
                 local Garage (scripts/services/garage.sh, clients.sh): put and get of a 1 GiB
                 object and of 1,000 objects of 1 MiB, and a listing of 10,000 keys (64 MiB,
                 100 objects and 1,000 keys with --quick)
  --encryption   run only the encryption group: put and get of the large object into an
                 unencrypted and an encrypted store, sealing alone against age (scripts/services/
                 clients.sh installs it), and the small puts both ways
  --hot          run only the hot store group: the small puts with the hot store on and off,
                 each beside the disk's durable new-file loop, from 4 processes, on PostgreSQL
                 (when one answers on 127.0.0.1:5432), the flusher's drain rate, and the backlog
                 after a 60-second load with the flusher running (10 s with --quick)
  --bundles      run only the bundles group: 1,000 resources of 100 KiB from a web server on
                 127.0.0.1 fetched into one bundle (directory and zip layouts) beside curl
                 --parallel, three times each (once with --quick), and one --size-mib resource
                 through the zip layout to Garage, with its peak RSS
  --serve        run only the server group: the AWS CLI against `coffer serve` (local disk) and
                 against Garage on the same disk: put and get of a 1 GiB object and of 1,000
                 objects of 1 MiB (64 MiB and 100 with --quick); small GETs of a 4 KiB object
                 through the REST API with wrk at 64 connections; the server's peak RSS
  --size-mib N   size of the large object in MiB, in either group (default 1024; 64 with --quick)
  --small N      number of 4 KiB objects in the small-put runs (default 10000; 1000 with --quick)
  --dir PATH     where to create the temporary work directory (default: the current directory)
  --quick        a smoke run: smaller defaults for the two sizes above, and 1000 versions
                 and 1000 files instead of 10000 in the versions group";

/// What to run.
#[derive(Debug, Clone)]
pub struct Args {
    /// Size of the large object, MiB.
    pub size_mib: u64,
    /// Number of small objects.
    pub small: usize,
    /// Transactions in the bare SQLite commit loop.
    pub sqlite_commits: usize,
    /// Directory the work directory is created in.
    pub dir: PathBuf,
    /// Run the versions group instead of the default groups.
    pub versions: bool,
    /// Versions of the key whose history the versions group reads.
    pub history_versions: usize,
    /// Files in the tree the versions group imports.
    pub import_files: usize,
    /// Run the catalog group instead of the default groups.
    pub catalog: bool,
    /// Versions and keys the catalog group generates.
    pub catalog_scale: (u64, u64),
    /// Run the encryption group instead of the default groups.
    pub encryption: bool,
    /// Run the hooks group instead of the default groups.
    pub hooks: bool,
    /// Events in each batch the hooks group delivers.
    pub hook_events: usize,
    /// Run the object-store group instead of the default groups.
    pub s3: bool,
    /// Objects of 1 MiB and keys listed in the object-store group.
    pub s3_scale: (usize, usize),
    /// Run the hot store group instead of the default groups.
    pub hot: bool,
    /// Seconds of the hot store group's sustained load.
    pub hot_seconds: u64,
    /// Run the bundles group instead of the default groups.
    pub bundles: bool,
    /// Rounds of each fetch in the bundles group.
    pub bundle_rounds: usize,
    /// Run the server group instead of the default groups.
    pub serve: bool,
    /// Rounds of the server group's transfers (the order of the two endpoints alternates).
    pub serve_rounds: usize,
}

impl Args {
    /// Parse the arguments after the program name; `--help` prints the usage and exits.
    pub fn parse(argv: &[OsString]) -> Result<Args> {
        let mut size_mib = None;
        let mut small = None;
        let mut dir = PathBuf::from(".");
        let mut quick = false;
        let mut versions = false;
        let mut catalog = false;
        let mut hooks = false;
        let mut s3 = false;
        let mut encryption = false;
        let mut hot = false;
        let mut bundles = false;
        let mut serve = false;
        let mut rest = argv.iter();
        while let Some(arg) = rest.next() {
            match arg.to_str() {
                Some("--size-mib") => size_mib = Some(number(rest.next(), "--size-mib")?),
                Some("--small") => small = Some(number(rest.next(), "--small")?),
                Some("--dir") => dir = PathBuf::from(rest.next().context("--dir needs a path")?),
                Some("--quick") => quick = true,
                Some("--versions") => versions = true,
                Some("--catalog") => catalog = true,
                Some("--hooks") => hooks = true,
                Some("--s3") => s3 = true,
                Some("--encryption") => encryption = true,
                Some("--hot") => hot = true,
                Some("--bundles") => bundles = true,
                Some("--serve") => serve = true,
                Some("-h" | "--help") => {
                    println!("{USAGE}");
                    std::process::exit(0);
                }
                _ => bail!("unexpected argument {arg:?}\n{USAGE}"),
            }
        }
        let (default_size, default_small, sqlite_commits) = if quick { (64, 1000, 500) } else { (1024, 10_000, 2000) };
        let (history_versions, import_files) = if quick { (1000, 1000) } else { (10_000, 10_000) };
        let args = Args {
            size_mib: size_mib.unwrap_or(default_size),
            small: small
                .unwrap_or(default_small as u64)
                .try_into()
                .context("--small is too large")?,
            sqlite_commits,
            dir,
            versions,
            history_versions,
            import_files,
            catalog,
            catalog_scale: if quick { (50_000, 10_000) } else { (1_000_000, 200_000) },
            hooks,
            hook_events: if quick { 20_000 } else { 100_000 },
            s3,
            s3_scale: if quick { (100, 1_000) } else { (1_000, 10_000) },
            encryption,
            hot,
            hot_seconds: if quick { 10 } else { 60 },
            bundles,
            bundle_rounds: if quick { 1 } else { 3 },
            serve,
            serve_rounds: if quick { 1 } else { 3 },
        };
        if [versions, catalog, hooks, s3, encryption, hot, bundles, serve]
            .into_iter()
            .filter(|&group| group)
            .count()
            > 1
        {
            bail!(
                "--versions, --catalog, --hooks, --s3, --encryption, --hot, --bundles and --serve are separate runs: pick one"
            );
        }
        if args.size_mib == 0 || args.small < 4 {
            bail!("--size-mib must be at least 1 and --small at least 4");
        }
        Ok(args)
    }
}

fn number(value: Option<&OsString>, flag: &str) -> Result<u64> {
    let text = value
        .and_then(|v| v.to_str())
        .with_context(|| format!("{flag} needs a number"))?;
    text.replace('_', "")
        .parse()
        .with_context(|| format!("{flag}: {text:?} is not a number"))
}
