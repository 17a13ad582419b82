//! The object-store group (`--s3`): coffer against the AWS CLI and rclone,
//! doing the same transfers to the same local Garage server in one run.
//!
//! Each transfer is a child process, timed from spawn to exit with its peak
//! RSS (see `measure`): the `coffer` CLI with a config naming a bucket,
//! `aws s3 cp` and `rclone copy`/`copyto`, each into a bucket of its own.
//! Rows: put and get of one large object (1 GiB), put and get of 1,000
//! objects of 1 MiB (`coffer import` / `export` against the recursive copies
//! of the two tools), and a listing of a 10,000-key prefix (`coffer list`
//! against `aws s3 ls`). Each transfer's result is checked: what comes back
//! is byte for byte what went in.
//!
//! Targets (the object-store issue): coffer at least as fast as the faster
//! of the two tools on every transfer row, peak RSS < 128 MiB for the large
//! object, and its listing at least 10 times as fast as `aws s3 ls`.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::data;
use crate::measure::{ChildRun, measure};

/// The test key of `scripts/services/garage.sh`.
const ACCESS_KEY: &str = coffer::testkit::services::GARAGE_ACCESS_KEY;
const SECRET_KEY: &str = coffer::testkit::services::GARAGE_SECRET_KEY;
/// Longest any one transfer may take.
const LIMIT: Duration = Duration::from_secs(1800);

/// How much to move.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// The large object, MiB.
    pub large_mib: u64,
    /// Objects of 1 MiB.
    pub files: usize,
    /// Keys under the listed prefix.
    pub list_keys: usize,
}

/// One tool's figures.
#[derive(Debug, Clone)]
pub struct ToolFigures {
    /// `coffer`, `aws s3` or `rclone`.
    pub name: &'static str,
    pub put_large: ChildRun,
    pub get_large: ChildRun,
    pub put_files: ChildRun,
    pub get_files: ChildRun,
    /// The listing (coffer and aws only).
    pub list: Option<ChildRun>,
}

/// The three tools' figures, coffer first.
#[derive(Debug, Clone)]
pub struct ObjectsFigures {
    pub sizes: Sizes,
    /// `openssl dgst -sha256` of the large object: the least that verifying
    /// it on a get costs on this CPU (coffer checks every read's SHA-256).
    pub sha256_large: ChildRun,
    pub endpoint: String,
    pub tools: Vec<ToolFigures>,
}

/// Where the third-party clients are: the project's tools directory, else PATH.
pub(crate) fn client(name: &str) -> Result<PathBuf> {
    let tools = std::env::var_os("COFFER_TOOLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/coffer-tools"));
    let local = tools.join("clients-venv/bin").join(name);
    if local.is_file() {
        return Ok(local);
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|p| p.is_file())
        })
        .with_context(|| format!("{name} is not installed: run scripts/services/clients.sh"))
}

struct Tools {
    coffer: PathBuf,
    aws: PathBuf,
    rclone: PathBuf,
    endpoint: String,
}

impl Tools {
    /// `coffer --config CONFIG ARGS`.
    fn coffer(&self, config: &Path, args: &[&str]) -> Result<ChildRun> {
        let mut all: Vec<&OsStr> = vec![OsStr::new("--config"), config.as_os_str()];
        all.extend(args.iter().map(OsStr::new));
        measure(self.coffer.as_os_str(), &all, LIMIT)
    }

    fn aws(&self, args: &[&str]) -> Result<ChildRun> {
        aws(&self.aws, &garage(&self.endpoint), args)
    }

    /// `rclone ARGS` with the Garage remote given as flags.
    fn rclone(&self, args: &[&str]) -> Result<ChildRun> {
        let mut all: Vec<OsString> = vec!["-u".into(), "AWS_CA_BUNDLE".into(), "RCLONE_CONFIG=/dev/null".into()];
        all.push(self.rclone.clone().into());
        all.extend(args.iter().map(OsString::from));
        for flag in [
            "--s3-provider",
            "Other",
            "--s3-endpoint",
            &self.endpoint,
            "--s3-access-key-id",
            ACCESS_KEY,
            "--s3-secret-access-key",
            SECRET_KEY,
            "--s3-region",
            "garage",
            "--s3-force-path-style",
        ] {
            all.push(flag.into());
        }
        let refs: Vec<&OsStr> = all.iter().map(OsString::as_os_str).collect();
        measure(OsStr::new("env"), &refs, LIMIT)
    }
}

/// An S3 endpoint and the credentials (and region) to sign for it.
pub(crate) struct Endpoint<'a> {
    pub url: &'a str,
    pub keys: (&'a str, &'a str),
    pub region: &'a str,
}

/// Garage's endpoint at `url`, with the key `scripts/services/garage.sh` made.
pub(crate) fn garage(url: &str) -> Endpoint<'_> {
    Endpoint {
        url,
        keys: (ACCESS_KEY, SECRET_KEY),
        region: "garage",
    }
}

/// `aws --endpoint-url URL ARGS` with the endpoint's keys in its
/// environment (through `env`, which execs it, so the RSS measured is the CLI's).
pub(crate) fn aws(bin: &Path, endpoint: &Endpoint<'_>, args: &[&str]) -> Result<ChildRun> {
    let mut all: Vec<OsString> = vec![
        format!("AWS_ACCESS_KEY_ID={}", endpoint.keys.0).into(),
        format!("AWS_SECRET_ACCESS_KEY={}", endpoint.keys.1).into(),
        format!("AWS_DEFAULT_REGION={}", endpoint.region).into(),
        bin.as_os_str().to_owned(),
        "--endpoint-url".into(),
        endpoint.url.into(),
    ];
    all.extend(args.iter().map(OsString::from));
    let refs: Vec<&OsStr> = all.iter().map(OsString::as_os_str).collect();
    measure(OsStr::new("env"), &refs, LIMIT)
}

/// `count` files of 1 MiB of pseudo-random bytes under `dir`, 100 to a
/// subdirectory.
pub(crate) fn write_files(dir: &Path, count: usize, seed: u64) -> Result<()> {
    for i in 0..count {
        std::fs::create_dir_all(dir.join(format!("f{:04}", i / 100)))?;
        data::write_random_file(
            &dir.join(format!("f{:04}/{i:05}.bin", i / 100)),
            1 << 20,
            seed + 100 + i as u64,
        )?;
    }
    Ok(())
}

/// Run the group against Garage on `COFFER_TEST_GARAGE` (default 127.0.0.1:3900).
pub fn run(coffer: &Path, work: &Path, sizes: Sizes) -> Result<ObjectsFigures> {
    let addr = std::env::var("COFFER_TEST_GARAGE").unwrap_or_else(|_| "127.0.0.1:3900".to_owned());
    if std::net::TcpStream::connect(&addr).is_err() {
        bail!("no Garage at {addr}: start it with scripts/services/garage.sh");
    }
    let tools = Tools {
        coffer: coffer.to_path_buf(),
        aws: client("aws")?,
        rclone: client("rclone")?,
        endpoint: format!("http://{addr}"),
    };
    let run_id = std::process::id();
    let (coffer_bucket, aws_bucket, rclone_bucket) = (
        format!("bench-coffer-{run_id}"),
        format!("bench-aws-{run_id}"),
        format!("bench-rclone-{run_id}"),
    );
    let config = work.join("coffer.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\n[backend]\nkind = \"s3\"\nbucket = \"{coffer_bucket}\"\nregion = \"garage\"\n\
             endpoint = \"{}\"\naccess_key_id = \"{ACCESS_KEY}\"\nsecret_access_key = \"{SECRET_KEY}\"\ncreate_bucket = true\n",
            work.join("coffer-data").display(),
            tools.endpoint
        ),
    )?;
    tools.aws(&["s3", "mb", &format!("s3://{aws_bucket}")])?;
    tools.aws(&["s3", "mb", &format!("s3://{rclone_bucket}")])?;

    eprintln!(
        "writing the {} MiB object and {} objects of 1 MiB",
        sizes.large_mib, sizes.files
    );
    let large = work.join("large.bin");
    data::write_random_file(&large, sizes.large_mib << 20, 11)?;
    let files = work.join("files");
    write_files(&files, sizes.files, 0)?;
    let back = |name: &str| work.join("back").join(name);
    std::fs::create_dir_all(work.join("back"))?;
    let files_s = files.to_str().context("work path is not UTF-8")?;
    let large_s = large.to_str().context("work path is not UTF-8")?;

    let sha256_large = measure(
        OsStr::new("openssl"),
        &[OsStr::new("dgst"), OsStr::new("-sha256"), large.as_os_str()],
        LIMIT,
    )?;
    let mut figures = Vec::new();
    // coffer
    eprintln!("coffer: large put/get, files put/get");
    let put_large = tools.coffer(&config, &["put", "large.bin", "--file", large_s])?;
    let out = back("coffer-large.bin");
    let get_large = tools.coffer(&config, &["get", "large.bin", "--output", data::path_str(&out)?])?;
    same_file(&large, &out)?;
    let put_files = tools.coffer(&config, &["import", files_s, "--prefix", "files/", "--jobs", "16"])?;
    let out_dir = back("coffer-files");
    let get_files = tools.coffer(
        &config,
        &[
            "export",
            data::path_str(&out_dir)?,
            "--prefix",
            "files/",
            "--jobs",
            "16",
        ],
    )?;
    same_tree(&files, &out_dir, sizes.files)?;
    figures.push(ToolFigures {
        name: "coffer",
        put_large,
        get_large,
        put_files,
        get_files,
        list: None,
    });
    // aws s3
    eprintln!("aws s3: large put/get, files put/get");
    let put_large = tools.aws(&[
        "s3",
        "cp",
        large_s,
        &format!("s3://{aws_bucket}/large.bin"),
        "--only-show-errors",
    ])?;
    let out = back("aws-large.bin");
    let get_large = tools.aws(&[
        "s3",
        "cp",
        &format!("s3://{aws_bucket}/large.bin"),
        data::path_str(&out)?,
        "--only-show-errors",
    ])?;
    same_file(&large, &out)?;
    let put_files = tools.aws(&[
        "s3",
        "cp",
        "--recursive",
        files_s,
        &format!("s3://{aws_bucket}/files/"),
        "--only-show-errors",
    ])?;
    let out_dir = back("aws-files");
    let get_files = tools.aws(&[
        "s3",
        "cp",
        "--recursive",
        &format!("s3://{aws_bucket}/files/"),
        data::path_str(&out_dir)?,
        "--only-show-errors",
    ])?;
    same_tree(&files, &out_dir, sizes.files)?;
    figures.push(ToolFigures {
        name: "aws s3",
        put_large,
        get_large,
        put_files,
        get_files,
        list: None,
    });
    // rclone
    eprintln!("rclone: large put/get, files put/get");
    let put_large = tools.rclone(&["copyto", large_s, &format!(":s3:{rclone_bucket}/large.bin")])?;
    let out = back("rclone-large.bin");
    let get_large = tools.rclone(&[
        "copyto",
        &format!(":s3:{rclone_bucket}/large.bin"),
        data::path_str(&out)?,
    ])?;
    same_file(&large, &out)?;
    let put_files = tools.rclone(&["copy", files_s, &format!(":s3:{rclone_bucket}/files")])?;
    let out_dir = back("rclone-files");
    let get_files = tools.rclone(&["copy", &format!(":s3:{rclone_bucket}/files"), data::path_str(&out_dir)?])?;
    same_tree(&files, &out_dir, sizes.files)?;
    figures.push(ToolFigures {
        name: "rclone",
        put_large,
        get_large,
        put_files,
        get_files,
        list: None,
    });

    // The listing: the same 10,000 small files under one prefix, stored by coffer and by the AWS CLI.
    eprintln!(
        "listing: {} keys under one prefix, stored by coffer and by the AWS CLI",
        sizes.list_keys
    );
    let many = work.join("many");
    for i in 0..sizes.list_keys {
        let path = many.join(format!("doc-{i:05}.txt"));
        std::fs::create_dir_all(&many)?;
        std::fs::write(path, format!("{i}"))?;
    }
    let many_s = data::path_str(&many)?;
    tools.coffer(&config, &["import", many_s, "--prefix", "many/", "--jobs", "32"])?;
    tools.aws(&[
        "s3",
        "cp",
        "--recursive",
        many_s,
        &format!("s3://{aws_bucket}/many/"),
        "--only-show-errors",
    ])?;
    let max_keys = sizes.list_keys.to_string();
    figures[0].list = Some(tools.coffer(&config, &["list", "--prefix", "many/", "--max-keys", &max_keys])?);
    figures[1].list = Some(tools.aws(&["s3", "ls", &format!("s3://{aws_bucket}/many/")])?);
    Ok(ObjectsFigures {
        sizes,
        sha256_large,
        endpoint: tools.endpoint,
        tools: figures,
    })
}

pub(crate) fn same_file(a: &Path, b: &Path) -> Result<()> {
    if !data::files_identical(a, b)? {
        bail!("{} came back different from {}", b.display(), a.display());
    }
    Ok(())
}

/// Every file under `source` is under `copy` with the same bytes.
pub(crate) fn same_tree(source: &Path, copy: &Path, expected: usize) -> Result<()> {
    let mut checked = 0;
    for dir in std::fs::read_dir(source)? {
        let dir = dir?.path();
        for file in std::fs::read_dir(&dir)? {
            let file = file?.path();
            let relative = file.strip_prefix(source)?;
            same_file(&file, &copy.join(relative))?;
            checked += 1;
        }
    }
    if checked != expected {
        bail!("{checked} files checked in {}, {expected} expected", copy.display());
    }
    Ok(())
}

/// Print the group's figures side by side, with the targets.
pub fn print(system: &crate::system::System, figures: &ObjectsFigures) {
    let sizes = figures.sizes;
    println!();
    println!(
        "coffer bench, object-store group: every tool against the same Garage at {} (work dir on {}, {} cores)",
        figures.endpoint, system.disk, system.cores
    );
    let header: Vec<String> = figures.tools.iter().map(|t| format!("{:>24}", t.name)).collect();
    println!("{:<34}{}", "", header.join(""));
    let large_bytes = (sizes.large_mib << 20) as f64;
    let files_bytes = (sizes.files << 20) as f64;
    let rate = |bytes: f64, run: &ChildRun| {
        format!(
            "{:.2} s {:>5.0} MB/s",
            run.wall.as_secs_f64(),
            bytes / run.wall.as_secs_f64() / 1e6
        )
    };
    let row = |label: String, cell: &dyn Fn(&ToolFigures) -> String| {
        let cells: Vec<String> = figures.tools.iter().map(|t| format!("{:>24}", cell(t))).collect();
        println!("{label:<34}{}", cells.join(""));
    };
    row(format!("put {} MiB object", sizes.large_mib), &|t| {
        rate(large_bytes, &t.put_large)
    });
    row("  peak RSS".into(), &|t| {
        format!("{:.0} MiB", t.put_large.peak_rss_mib())
    });
    row(format!("get {} MiB object", sizes.large_mib), &|t| {
        rate(large_bytes, &t.get_large)
    });
    row("  peak RSS".into(), &|t| {
        format!("{:.0} MiB", t.get_large.peak_rss_mib())
    });
    row(format!("put {} objects of 1 MiB", sizes.files), &|t| {
        rate(files_bytes, &t.put_files)
    });
    row("  peak RSS".into(), &|t| {
        format!("{:.0} MiB", t.put_files.peak_rss_mib())
    });
    row(format!("get {} objects of 1 MiB", sizes.files), &|t| {
        rate(files_bytes, &t.get_files)
    });
    row("  peak RSS".into(), &|t| {
        format!("{:.0} MiB", t.get_files.peak_rss_mib())
    });
    row(format!("list {} keys under a prefix", sizes.list_keys), &|t| {
        t.list
            .map_or("-".to_owned(), |run| format!("{:.3} s", run.wall.as_secs_f64()))
    });

    let coffer = &figures.tools[0];
    let peers = &figures.tools[1..];
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    println!();
    let fastest = |pick: &dyn Fn(&ToolFigures) -> Duration| peers.iter().map(pick).min().unwrap_or_default();
    for (label, pick) in [
        (
            "put large",
            &(|t: &ToolFigures| t.put_large.wall) as &dyn Fn(&ToolFigures) -> Duration,
        ),
        ("get large", &|t: &ToolFigures| t.get_large.wall),
        ("put files", &|t: &ToolFigures| t.put_files.wall),
        ("get files", &|t: &ToolFigures| t.get_files.wall),
    ] {
        let best = fastest(pick);
        let ratio = best.as_secs_f64() / pick(coffer).as_secs_f64();
        println!(
            "{label}: coffer {:.2} s, fastest peer {:.2} s, speed ratio {ratio:.2} (target >= 1.00): {}",
            pick(coffer).as_secs_f64(),
            best.as_secs_f64(),
            verdict(ratio >= 1.0)
        );
    }
    println!(
        "reference: openssl dgst -sha256 of the large object {:.2} s ({:.0} MB/s), the least a verified get costs here",
        figures.sha256_large.wall.as_secs_f64(),
        large_bytes / figures.sha256_large.wall.as_secs_f64() / 1e6
    );
    let rss = coffer.put_large.peak_rss_mib().max(coffer.get_large.peak_rss_mib());
    println!(
        "coffer peak RSS with the large object: {rss:.0} MiB (target < 128 MiB): {}",
        verdict(rss < 128.0)
    );
    if let (Some(ours), Some(theirs)) = (coffer.list, figures.tools[1].list) {
        let speedup = theirs.wall.as_secs_f64() / ours.wall.as_secs_f64();
        println!(
            "list: coffer {:.3} s, aws s3 ls {:.3} s, {speedup:.1}x (target >= 10x): {}",
            ours.wall.as_secs_f64(),
            theirs.wall.as_secs_f64(),
            verdict(speedup >= 10.0)
        );
    }
}
