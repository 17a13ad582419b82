//! Parsing the command line, with a hint for the one mistake clap cannot
//! explain: a backend flag placed after the command.

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, FromArgMatches};

use crate::cli::Cli;

/// The parsed command line; on a usage error, clap's message and exit code 2,
/// or for a backend flag after the command one line that says to move it.
pub fn parse() -> Cli {
    let matches = Cli::command().try_get_matches();
    match matches.and_then(|m| Cli::from_arg_matches(&m)) {
        Ok(cli) => cli,
        Err(err) => {
            if let Some(flag) = misplaced_backend_flag(&err) {
                eprintln!("coffer: {flag} is a backend flag: put it before the command (coffer {flag} ... COMMAND)");
                std::process::exit(2);
            }
            err.exit()
        }
    }
}

/// The flag of an "unexpected argument" error when it is one of the
/// top-level backend flags (which commands do not take after their name).
fn misplaced_backend_flag(err: &clap::Error) -> Option<String> {
    if err.kind() != ErrorKind::UnknownArgument {
        return None;
    }
    let Some(ContextValue::String(given)) = err.get(ContextKind::InvalidArg) else {
        return None;
    };
    let name = given.strip_prefix("--")?.split('=').next()?;
    let command = Cli::command();
    let is_backend_flag = command
        .get_arguments()
        .any(|arg| arg.get_long() == Some(name) && !arg.is_global_set());
    is_backend_flag.then(|| format!("--{name}"))
}
