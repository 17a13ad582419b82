//! `coffer catalog ...`: commands on catalogs themselves.

use coffer::catalog::{CatalogLocation, PostgresCatalog, SqliteCatalog};
use coffer::{Config, ErrorKind, NoProgress};

use crate::cli::CatalogCommand;
use crate::commands::invalid_input;
use crate::output::print_json;
use crate::progress::TerminalProgress;

pub async fn run(config: &Config, command: CatalogCommand, json: bool) -> anyhow::Result<()> {
    match command {
        CatalogCommand::Migrate { from, to } => migrate(config, from.as_deref(), &to, json).await,
    }
}

async fn migrate(config: &Config, from: Option<&str>, to: &str, json: bool) -> anyhow::Result<()> {
    let source = match from {
        Some(url) => CatalogLocation::parse(url)?,
        // The configured catalog, unless that is a PostgreSQL one (often the
        // destination itself, by COFFER_CATALOG_URL): then the store's own.
        None => match config.catalog_location()? {
            CatalogLocation::Postgres(_) => config.embedded_catalog(),
            sqlite => sqlite,
        },
    };
    let CatalogLocation::Sqlite(path) = &source else {
        return Err(invalid_input(&format!(
            "--from {source}: catalog migrate copies a SQLite catalog (sqlite://PATH)"
        )));
    };
    let destination = CatalogLocation::parse(to)?;
    let CatalogLocation::Postgres(url) = &destination else {
        return Err(invalid_input(&format!(
            "--to {destination}: catalog migrate copies into PostgreSQL (postgres://USER@HOST/DB)"
        )));
    };
    // Opening a SQLite catalog creates it: a mistyped path must not migrate an empty one.
    if !path.is_file() {
        let hint = if from.is_none() {
            " (pass --from sqlite://PATH)"
        } else {
            ""
        };
        let message = format!("no catalog at {}{hint}", path.display());
        return Err(coffer::Error::new(ErrorKind::NoStore, message).into());
    }
    let from = SqliteCatalog::open(path).await?;
    let to = PostgresCatalog::connect(url).await?;
    let progress = TerminalProgress::counting(!json, "rows");
    let report = match &progress {
        Some(progress) => coffer::catalog::migrate_catalog(&from, &to, progress.as_ref()).await?,
        None => coffer::catalog::migrate_catalog(&from, &to, &NoProgress).await?,
    };
    if json {
        return print_json(&report);
    }
    println!(
        "{:<18} {:>10} {:>10}  CHECKSUM (SHA-256, same on both sides)",
        "TABLE", "ROWS", "INSERTED"
    );
    for table in &report.tables {
        println!(
            "{:<18} {:>10} {:>10}  {}",
            table.table, table.rows, table.inserted, table.checksum
        );
    }
    println!("migrated {source} into {destination}; verified: every table holds the same rows");
    println!("use it with --catalog {destination} (or COFFER_CATALOG_URL)");
    Ok(())
}
