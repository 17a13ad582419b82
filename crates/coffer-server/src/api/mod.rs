//! The REST API under `/api/v1`: each route checks the caller's token,
//! makes one call of `Store`, and answers JSON or the object's bytes.

pub mod bundles;
pub mod extract;
pub mod hooks;
pub mod objects;
pub mod search;
pub mod versions;
