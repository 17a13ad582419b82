//! The search-word splitter: never panics; its words are non-empty runs of
//! letters and digits, each its own only word (so a word of a document,
//! searched for, finds it), and a document is its texts' words joined by spaces.
#![no_main]

use arbitrary::Arbitrary;
use coffer::catalog::{search_document, search_words};
use coffer::{Comment, Metadata, Tags, Timestamp};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    key: &'a str,
    metadata: Vec<(&'a str, &'a str)>,
    tags: Vec<(&'a str, &'a str)>,
    comments: Vec<&'a str>,
}

fuzz_target!(|input: Input<'_>| {
    for word in search_words(input.key) {
        assert!(!word.is_empty() && word.chars().all(char::is_alphanumeric), "{word:?}");
        assert_eq!(search_words(&word), [word.clone()], "a word is its own only word");
    }
    let metadata: Metadata = input
        .metadata
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    let tags: Tags = input.tags.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
    let comments: Vec<Comment> = input
        .comments
        .iter()
        .map(|text| Comment {
            at: Timestamp::from_micros(0),
            actor: "fuzz".into(),
            text: text.to_string(),
        })
        .collect();
    let document = search_document(input.key, &metadata, &tags, &comments);
    assert!(
        !document.starts_with(' ') && !document.ends_with(' ') && !document.contains("  "),
        "{document:?}"
    );
    assert_eq!(
        search_words(&document).join(" "),
        document,
        "a document is made of search words"
    );
});
