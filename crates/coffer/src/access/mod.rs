//! Who may do what through `coffer serve`: access tokens with a scope and a
//! key prefix ([`TokenRecord::authorize`]), the server's own key, which signs
//! links and derives S3 secret keys ([`ServerKey`]), and those links
//! ([`Link`]), which let anyone holding one read or write one object until
//! it expires, on any backend.
//!
//! Token secrets are never stored: the catalog keeps their SHA-256 only, so
//! a copy of the catalog cannot be used to make requests.

mod links;
mod server_key;
mod tokens;

pub use self::links::{Link, LinkMethod};
pub use self::server_key::ServerKey;
pub use self::tokens::{IssuedToken, NewToken, Scope, TokenRecord, s3_access_key_shape};
pub(crate) use self::tokens::{check_token_name, new_access_key, new_secret, secret_sha256};
