//! Config file text and environment variables merged into a `Config`, as
//! `Config::load` does: never a panic, and every error in one line.
#![no_main]

use arbitrary::Arbitrary;
use coffer::Config;
use coffer::settings::BackendOverrides;
use libfuzzer_sys::fuzz_target;

/// The variables `Config::load` reads, so the fuzzer hits them often.
const KNOWN: &[&str] = &[
    "COFFER_DATA_DIR",
    "COFFER_CATALOG_URL",
    "DATABASE_URL",
    "COFFER_BACKEND",
    "COFFER_BACKEND_ROOT",
    "COFFER_S3_BUCKET",
    "COFFER_S3_REGION",
    "COFFER_S3_ENDPOINT",
    "COFFER_S3_PREFIX",
    "COFFER_S3_STORAGE_CLASS",
    "COFFER_S3_CREATE_BUCKET",
    "COFFER_AZURE_CONTAINER",
    "COFFER_AZURE_ENDPOINT",
    "COFFER_AZURE_PREFIX",
    "COFFER_AZURE_ACCESS_TIER",
    "COFFER_AZURE_CREATE_CONTAINER",
    "COFFER_USER",
    "COFFER_STORE",
    "COFFER_COLD_STORE",
    "COFFER_SPOOL",
    "COFFER_MAX_VERSIONS",
    "COFFER_AUDIT_RETENTION",
    "COFFER_AUDIT_READS",
    "COFFER_READ_EVENTS",
];

#[derive(Debug, Arbitrary)]
enum Name<'a> {
    Known(u8),
    Other(&'a str),
}

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    toml: &'a str,
    env: Vec<(Name<'a>, &'a str)>,
}

fn one_line(err: &coffer::Error) {
    assert!(!err.message().contains(['\n', '\r']), "one line: {:?}", err.message());
}

fuzz_target!(|input: Input<'_>| {
    let env: Vec<(&str, &str)> = input
        .env
        .iter()
        .map(|(name, value)| match name {
            Name::Known(i) => (KNOWN[usize::from(*i) % KNOWN.len()], *value),
            Name::Other(name) => (*name, *value),
        })
        .collect();
    let mut config = match Config::from_toml(input.toml) {
        Ok(config) => config,
        Err(err) => return one_line(&err),
    };
    // The last setting of a variable wins, as in a real environment.
    let lookup = |name: &str| env.iter().rev().find(|(n, _)| *n == name).map(|(_, v)| v.to_string());
    if let Err(err) = config.apply_env(lookup) {
        return one_line(&err);
    }
    // The backend's variables override single settings of the chosen store.
    let overrides = match BackendOverrides::from_env(lookup) {
        Ok(overrides) => overrides,
        Err(err) => return one_line(&err),
    };
    if let Err(err) = config.apply_backend(overrides) {
        return one_line(&err);
    }
    if let Err(err) = config.catalog_location() {
        one_line(&err);
    }
    // What logs show must not panic either.
    let _ = format!("{config:?}");
});
