//! The `coffer` command: parse, call the library, format. No storage logic here.

// Every `print!`/`println!` of this crate goes through `output::write_stdout`,
// so a closed standard output (`coffer audit | head -1`) ends the command
// quietly wherever it happens, instead of std's panic. Defined before the
// modules so that they see these in place of std's.
macro_rules! print {
    ($($arg:tt)*) => { $crate::output::write_stdout(format_args!($($arg)*)) };
}
macro_rules! println {
    () => { $crate::output::write_stdout(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::output::write_stdout(format_args!("{}\n", format_args!($($arg)*))) };
}

mod bulk;
mod bundle;
#[cfg(feature = "catalog-postgres")]
mod catalog;
mod cli;
mod commands;
mod hooks;
mod info;
mod keys;
mod lifecycle;
mod manage;
mod output;
mod progress;
mod protection;
mod remote;
mod restore;
#[cfg(feature = "server")]
mod serve;
mod tokens;
mod usage;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args = usage::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("coffer: cannot start the runtime: {e}");
            return ExitCode::from(output::EXIT_OTHER);
        }
    };
    runtime.block_on(commands::run(args))
}
