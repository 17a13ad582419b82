//! Parsing the command line, with a hint for the one mistake clap cannot
//! explain: a backend flag placed after the command.

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, FromArgMatches};

use crate::cli::Cli;

/// The parsed command line; on a usage error, one line `coffer: MESSAGE`
/// and exit code 2 (for a backend flag after the command, one that says to
/// move it). `--help`, `--version` and a command missing its subcommand
/// print as clap prints them.
pub fn parse() -> Cli {
    let matches = Cli::command().try_get_matches();
    match matches.and_then(|m| Cli::from_arg_matches(&m)) {
        Ok(cli) => cli,
        Err(err) => {
            if let Some(flag) = misplaced_backend_flag(&err) {
                eprintln!("coffer: {flag} is a backend flag: put it before the command (coffer {flag} ... COMMAND)");
                std::process::exit(2);
            }
            match err.kind() {
                ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => err.exit(),
                _ => {
                    eprintln!("coffer: {}", one_line(&err));
                    std::process::exit(2);
                }
            }
        }
    }
}

/// Clap's message for a usage error on one line: its first paragraph (and
/// a tip, when it gives one), without the `error:` label, the usage block
/// and the pointer to `--help`.
fn one_line(err: &clap::Error) -> String {
    let text = err.render().to_string();
    let mut parts = Vec::new();
    for paragraph in text.split("\n\n") {
        let paragraph = paragraph.trim();
        if paragraph.starts_with("Usage:") || paragraph.starts_with("For more information") {
            continue;
        }
        if parts.is_empty() || paragraph.starts_with("tip:") {
            parts.push(paragraph.split_whitespace().collect::<Vec<_>>().join(" "));
        }
    }
    let line = parts.join("; ");
    line.strip_prefix("error: ").unwrap_or(&line).to_owned()
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
