//! Access tokens' rows, written once for both engines: a token is made or
//! revoked with its audit row in one transaction, and found by its name,
//! its secret's SHA-256 or its S3 access key.

use super::rows::Param;
use super::sql::Conn;
use super::writes::write_audit;
use crate::access::{Scope, TokenRecord};
use crate::error::{Error, Result};
use crate::time::Timestamp;

/// The columns of a token, in [`TokenRow`]'s order.
const TOKEN_COLUMNS: &str = "name, scope, prefix, access_key, created_at, created_by, expires_at, revoked_at";

/// A change to tokens, in one transaction with its audit row.
#[derive(Debug, Clone)]
pub enum TokenChange {
    /// Record a new token (`Conflict` when its name or access key is taken).
    Create {
        /// The token.
        token: TokenRecord,
        /// The SHA-256 (hex) of its secret.
        secret_sha256: String,
    },
    /// Revoke a token (`NotFound` when there is none of that name); revoking
    /// a revoked token changes nothing.
    Revoke {
        /// Its name.
        name: String,
        /// When.
        at: Timestamp,
        /// Who revokes it.
        actor: String,
    },
}

/// How a token is looked up.
#[derive(Debug, Clone, Copy)]
pub enum TokenLookup<'a> {
    /// By name.
    Name(&'a str),
    /// By its secret's SHA-256 (hex).
    SecretSha256(&'a str),
    /// By its S3 access key id.
    AccessKey(&'a str),
}

/// Apply `change` in the caller's transaction; a refused change writes nothing.
pub(super) async fn apply(mut conn: Conn<'_>, change: &TokenChange) -> Result<()> {
    match change {
        TokenChange::Create { token, secret_sha256 } => {
            let taken: Option<(String,)> = conn
                .optional(
                    "reading a token",
                    "SELECT name FROM tokens WHERE name = ? OR access_key = ?",
                    vec![
                        Param::Text(token.name.clone()),
                        token.access_key.clone().map_or(Param::Null, Param::Text),
                    ],
                )
                .await?;
            if taken.is_some() {
                return Err(Error::conflict(format!("a token named {} exists already", token.name)));
            }
            let params = vec![
                Param::Text(token.name.clone()),
                Param::Text(secret_sha256.clone()),
                token.access_key.clone().map_or(Param::Null, Param::Text),
                Param::Text(token.scope.as_str().to_owned()),
                Param::Text(token.prefix.clone()),
                Param::Int(token.created_at.as_micros()),
                Param::Text(token.created_by.clone()),
            ];
            // The expiry is written in, or NULL: PostgreSQL keeps the types a
            // statement was first prepared with, and a NULL bound as text
            // would not take a number afterwards.
            let expires = token
                .expires_at
                .map_or_else(|| "NULL".to_owned(), |t| t.as_micros().to_string());
            let sql = format!(
                "INSERT INTO tokens (name, secret_sha256, access_key, scope, prefix, created_at, created_by, \
                 expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, {expires})"
            );
            conn.execute("recording a token", &sql, params).await?;
            let detail = serde_json::json!({
                "token": token.name, "scope": token.scope, "prefix": token.prefix,
                "s3": token.access_key.is_some(), "expires_at": token.expires_at,
            });
            write_audit(&mut conn, token.created_at, &token.created_by, "token_create", detail).await
        }
        TokenChange::Revoke { name, at, actor } => {
            let revoked = conn
                .execute(
                    "revoking a token",
                    "UPDATE tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                    vec![Param::Int(at.as_micros()), Param::Text(name.clone())],
                )
                .await?;
            if revoked == 0 {
                let exists: Option<(String,)> = conn
                    .optional(
                        "reading a token",
                        "SELECT name FROM tokens WHERE name = ?",
                        vec![Param::Text(name.clone())],
                    )
                    .await?;
                return match exists {
                    Some(_) => Ok(()),
                    None => Err(Error::not_found(format!("no token named {name}"))),
                };
            }
            let detail = serde_json::json!({ "token": name });
            write_audit(&mut conn, *at, actor, "token_revoke", detail).await
        }
    }
}

type TokenRow = (
    String,
    String,
    String,
    Option<String>,
    i64,
    String,
    Option<i64>,
    Option<i64>,
);

fn token_of(row: TokenRow) -> Result<TokenRecord> {
    let (name, scope, prefix, access_key, created, by, expires, revoked) = row;
    Ok(TokenRecord {
        name,
        scope: scope.parse::<Scope>()?,
        prefix,
        access_key,
        created_at: Timestamp::from_micros(created),
        created_by: by,
        expires_at: expires.map(Timestamp::from_micros),
        revoked_at: revoked.map(Timestamp::from_micros),
    })
}

/// The token `lookup` finds, if any (revoked and expired ones included).
pub(super) async fn token(mut conn: Conn<'_>, lookup: TokenLookup<'_>) -> Result<Option<TokenRecord>> {
    let (column, value) = match lookup {
        TokenLookup::Name(name) => ("name", name),
        TokenLookup::SecretSha256(sha256) => ("secret_sha256", sha256),
        TokenLookup::AccessKey(key) => ("access_key", key),
    };
    let row: Option<TokenRow> = conn
        .optional(
            "reading a token",
            &format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE {column} = ?"),
            vec![Param::Text(value.to_owned())],
        )
        .await?;
    row.map(token_of).transpose()
}

/// Every token, by name.
pub(super) async fn tokens(mut conn: Conn<'_>) -> Result<Vec<TokenRecord>> {
    let rows: Vec<TokenRow> = conn
        .all(
            "listing tokens",
            &format!("SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY name"),
            vec![],
        )
        .await?;
    rows.into_iter().map(token_of).collect()
}
