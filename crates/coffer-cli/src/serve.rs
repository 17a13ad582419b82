//! `coffer serve`: the store over HTTP until SIGINT or SIGTERM.

use coffer::{Config, Store};

use crate::cli::ServeArgs;

pub async fn run(store: &Store, config: &Config, args: ServeArgs) -> anyhow::Result<()> {
    init_logs();
    let mut settings = config.server.clone();
    if let Some(listen) = args.listen {
        settings.listen = listen;
    }
    if let Some(listen) = args.s3_listen {
        settings.s3_listen = Some(listen);
    }
    if let Some(url) = args.public_url {
        settings.public_url = Some(url);
    }
    let store = store.with_server(&settings, &config.data_dir);
    let server = coffer_server::Server::bind(store, &settings).await?;
    if let Some(s3) = server.s3_addr()? {
        eprintln!("coffer: the S3 endpoint on http://{s3}");
    }
    eprintln!(
        "coffer: serving on http://{} until stopped (SIGINT or SIGTERM)",
        server.local_addr()?
    );
    server.run(crate::hooks::shutdown_signal()).await?;
    Ok(())
}

/// Logs on stderr: `COFFER_LOG` filters them (`info` by default, `debug`,
/// `coffer_server=warn` ...), `COFFER_LOG_FORMAT=json` makes them JSON lines.
fn init_logs() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("COFFER_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match std::env::var("COFFER_LOG_FORMAT").as_deref() {
        Ok("json") => logs.json().try_init(),
        _ => logs.try_init(),
    };
}
