//! JSON Schemas of the types that serialize as strings (cargo feature
//! `schema`), for the HTTP server's OpenAPI document.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use crate::key::{MAX_KEY_BYTES, ObjectKey};
use crate::time::Timestamp;
use crate::version::VersionId;

impl JsonSchema for Timestamp {
    fn schema_name() -> Cow<'static, str> {
        "Timestamp".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "format": "date-time" })
    }
}

impl JsonSchema for VersionId {
    fn schema_name() -> Cow<'static, str> {
        "VersionId".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "pattern": "^[0-9a-f]{32}$" })
    }
}

impl JsonSchema for ObjectKey {
    fn schema_name() -> Cow<'static, str> {
        "ObjectKey".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "minLength": 1, "maxLength": MAX_KEY_BYTES })
    }
}
