//! Metadata, tags, comments and content types: accepted or refused with one
//! line, never a panic; whatever is accepted keeps the documented limits.
#![no_main]

use arbitrary::Arbitrary;
use coffer::key::{
    MAX_COMMENT_BYTES, MAX_METADATA_TOTAL_BYTES, MAX_METADATA_VALUE_BYTES, MAX_TAG_VALUE_BYTES, MAX_TAGS,
    validate_comment, validate_content_type, validate_metadata, validate_tags,
};
use coffer::{Metadata, Tags};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    metadata: Vec<(&'a str, &'a str)>,
    tags: Vec<(&'a str, &'a str)>,
    comment: &'a str,
    content_type: &'a str,
}

fn one_line(result: coffer::Result<()>) -> bool {
    match result {
        Ok(()) => true,
        Err(err) => {
            assert!(!err.message().contains(['\n', '\r']), "one line: {:?}", err.message());
            false
        }
    }
}

fuzz_target!(|input: Input<'_>| {
    let metadata: Metadata = input
        .metadata
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    if one_line(validate_metadata(&metadata)) {
        let total: usize = metadata.iter().map(|(n, v)| n.len() + v.len()).sum();
        assert!(total <= MAX_METADATA_TOTAL_BYTES);
        assert!(
            metadata
                .values()
                .all(|v| v.len() <= MAX_METADATA_VALUE_BYTES && !v.chars().any(char::is_control))
        );
    }
    let tags: Tags = input.tags.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
    if one_line(validate_tags(&tags)) {
        assert!(tags.len() <= MAX_TAGS);
        assert!(tags.values().all(|v| v.len() <= MAX_TAG_VALUE_BYTES));
    }
    if one_line(validate_comment(input.comment)) {
        assert!(input.comment.len() <= MAX_COMMENT_BYTES && !input.comment.trim().is_empty());
    }
    if one_line(validate_content_type(input.content_type)) {
        assert!(input.content_type.is_ascii());
    }
});
