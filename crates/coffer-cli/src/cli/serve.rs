//! `coffer serve` and the access tokens its clients use.

use clap::{Args, Subcommand};

/// `coffer token ...`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token for `coffer serve`; its secret is printed this once.
    Create(TokenCreateArgs),
    /// Every token: name, scope, prefix, expiry, whether revoked (never secrets).
    List,
    /// Revoke a token: its requests are refused from now on.
    Revoke {
        /// The token's name.
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    /// What it allows: read; write (also changes); admin (also hooks, audit, governance bypass).
    #[arg(long, value_parser = ["read", "write", "admin"])]
    pub scope: String,
    /// Only keys under this prefix.
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// It stops working after this span (30d, 12h); never by default.
    #[arg(long, value_name = "SPAN")]
    pub expires: Option<String>,
    /// Its name (shown in the audit log as token:NAME) [default: a generated one].
    #[arg(long)]
    pub name: Option<String>,
    /// Also make it an S3 access key for the S3 endpoint (prints the access key id and secret key).
    #[arg(long)]
    pub s3: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where the REST API, links and web pages listen [config: server.listen; env: COFFER_SERVER_LISTEN; default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Where the S3-compatible endpoint listens (off unless set) [config: server.s3_listen; env: COFFER_SERVER_S3_LISTEN].
    #[arg(long, value_name = "ADDR")]
    pub s3_listen: Option<String>,
    /// The URL clients reach the server at, for links [config: server.public_url; env: COFFER_SERVER_PUBLIC_URL; default: http://LISTEN].
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
}
