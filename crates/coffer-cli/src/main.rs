//! The `coffer` command: parse, call the library, format. No storage logic here.

#[cfg(feature = "catalog-postgres")]
mod catalog;
mod cli;
mod commands;
mod hooks;
mod manage;
mod output;
mod progress;
mod remote;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args = <cli::Cli as clap::Parser>::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("coffer: cannot start the runtime: {e}");
            return ExitCode::from(output::EXIT_OTHER);
        }
    };
    runtime.block_on(commands::run(args))
}
