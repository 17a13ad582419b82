//! Full-text search, the part every catalog shares: how text becomes words,
//! what a version's document holds, how a query is checked, and the cursor.
//!
//! A catalog only stores the documents [`search_document`] builds and runs
//! [`SearchPlan`]s; words are never split or folded in SQL, so every catalog
//! sees exactly the same words and returns the same hits.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Comment, ObjectVersion};
use crate::error::{Error, Result};
use crate::key::{MAX_KEY_BYTES, Metadata, Tags, validate_content_type, validate_metadata_entry, validate_tag};
use crate::time::Timestamp;

/// Most hits on one page.
pub const MAX_SEARCH_LIMIT: usize = 1000;
/// Longest search text, in bytes.
pub const MAX_SEARCH_TEXT_BYTES: usize = 1024;
/// Longest cursor accepted; a real one is far shorter (a key is at most 1 KiB).
const MAX_CURSOR_CHARS: usize = 8 * 1024;
/// Significant digits a catalog rounds scores to (in its query, where it also
/// compares them with a cursor's), so that a score survives text exactly.
/// Digits rather than decimal places: SQLite's BM25 scores for words most
/// versions hold are near 1e-6, which six places flattened into one value.
pub const SCORE_DIGITS: usize = 7;

/// What to look for. Every given filter must hold (AND).
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    /// Words that must each begin some word of a version's document (empty: filters only).
    pub text: String,
    /// Only keys starting with this.
    pub prefix: Option<String>,
    /// Only versions with each of these tags, exactly.
    pub tags: Vec<(String, String)>,
    /// Only versions with each of these metadata entries, exactly.
    pub metadata: Vec<(String, String)>,
    /// Only versions of exactly this content type.
    pub content_type: Option<String>,
    /// Only versions created at or after this time.
    pub since: Option<Timestamp>,
    /// Only versions created before this time.
    pub until: Option<Timestamp>,
    /// Search every version, not only the latest of keys that are not deleted
    /// (delete markers never match).
    pub all_versions: bool,
    /// At most this many hits (1 to [`MAX_SEARCH_LIMIT`]).
    pub limit: usize,
    /// Where to go on: the `next_cursor` of the previous page of the same query.
    pub cursor: Option<String>,
}

/// One version found.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SearchHit {
    /// The version.
    #[serde(flatten)]
    pub version: ObjectVersion,
    /// How well it matches, higher first, rounded to 6 decimal places; 0 when
    /// the query has no text. Scores are comparable within one catalog only.
    pub score: f64,
}

/// One page of hits.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SearchPage {
    /// Best first; equal scores in key order, then newest version first.
    pub hits: Vec<SearchHit>,
    /// Pass as [`SearchQuery::cursor`] for the next page; `None` on the last.
    pub next_cursor: Option<String>,
}

/// Longest word the search index holds, in bytes: longer words are cut to
/// their first 255 bytes (at a character boundary). PostgreSQL refuses
/// lexemes over 2047 bytes, while a metadata value or a comment may be one
/// word of several KiB; cutting (not skipping) keeps such a word findable by
/// its beginning, and cutting query words alike keeps every prefix match.
pub const MAX_SEARCH_WORD_BYTES: usize = 255;

/// The words of `text`: lowercased, split at every character that is not a
/// letter or digit, empty pieces dropped, each cut to [`MAX_SEARCH_WORD_BYTES`].
/// Documents and queries both go through it.
pub fn search_words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(|word| cut_word(word).to_owned())
        .collect()
}

/// The first [`MAX_SEARCH_WORD_BYTES`] bytes of `word`, or fewer to end on a character.
fn cut_word(word: &str) -> &str {
    let mut end = word.len().min(MAX_SEARCH_WORD_BYTES);
    while !word.is_char_boundary(end) {
        end -= 1;
    }
    &word[..end]
}

/// The document a version is found by: the words of its key, its metadata
/// values, its tag names and values, and its comments, joined by single spaces.
pub fn search_document(key: &str, metadata: &Metadata, tags: &Tags, comments: &[Comment]) -> String {
    let texts = std::iter::once(key)
        .chain(metadata.values().map(String::as_str))
        .chain(tags.iter().flat_map(|(name, value)| [name.as_str(), value.as_str()]))
        .chain(comments.iter().map(|c| c.text.as_str()));
    texts.flat_map(search_words).collect::<Vec<_>>().join(" ")
}

/// Where the previous page ended: its last hit's score, key and version id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchPosition {
    /// The score.
    #[serde(rename = "s")]
    pub score: f64,
    /// The key.
    #[serde(rename = "k")]
    pub key: String,
    /// The version id.
    #[serde(rename = "v")]
    pub version_id: String,
}

/// A cursor as it travels: the position, and a fingerprint of the query it belongs to.
#[derive(Serialize, Deserialize)]
struct Cursor {
    #[serde(rename = "q")]
    query: String,
    #[serde(flatten)]
    after: SearchPosition,
}

/// A checked query, ready for a catalog to run.
///
/// A catalog returns, in this order, the versions that (1) are not delete
/// markers, (2) are the latest of their key unless `all_versions`, (3) have a
/// document in which each of `words` begins some word, (4) pass every filter,
/// and (5) sort after `after`; it fetches `limit + 1` of them and hands them to
/// [`page`](Self::page). The order: score descending, then key ascending (by
/// bytes), then version id descending.
#[derive(Debug, Clone)]
pub struct SearchPlan {
    /// The query's words (empty: filters only, every score 0).
    pub words: Vec<String>,
    /// Keys start with this (`None`: any key).
    pub prefix: Option<String>,
    /// Tags the version has.
    pub tags: Vec<(String, String)>,
    /// Metadata entries the version has.
    pub metadata: Vec<(String, String)>,
    /// The version's content type.
    pub content_type: Option<String>,
    /// Created at or after.
    pub since: Option<Timestamp>,
    /// Created before.
    pub until: Option<Timestamp>,
    /// Every version, not only the latest.
    pub all_versions: bool,
    /// Hits on the page.
    pub limit: usize,
    /// Only hits after this one in the order.
    pub after: Option<SearchPosition>,
    fingerprint: String,
}

impl SearchQuery {
    /// Check the query and decode its cursor: a one-line `InvalidInput` error
    /// for a bad limit, text, filter or cursor, or a cursor of another query.
    pub fn plan(&self) -> Result<SearchPlan> {
        if self.limit == 0 || self.limit > MAX_SEARCH_LIMIT {
            return Err(Error::invalid_input(format!(
                "limit must be between 1 and {MAX_SEARCH_LIMIT}"
            )));
        }
        if self.text.len() > MAX_SEARCH_TEXT_BYTES {
            return Err(Error::invalid_input(format!(
                "search text is {} bytes; the limit is {MAX_SEARCH_TEXT_BYTES}",
                self.text.len()
            )));
        }
        let words = search_words(&self.text);
        if words.is_empty() && !self.text.trim().is_empty() {
            return Err(Error::invalid_input(format!(
                "search text {:?} has no words (letters or digits)",
                self.text
            )));
        }
        let prefix = self.prefix.clone().filter(|p| !p.is_empty());
        if prefix.as_ref().is_some_and(|p| p.len() > MAX_KEY_BYTES) {
            return Err(Error::invalid_input(format!(
                "prefix is longer than a key can be ({MAX_KEY_BYTES} bytes)"
            )));
        }
        for (name, value) in &self.tags {
            validate_tag(name, value)?;
        }
        for (name, value) in &self.metadata {
            validate_metadata_entry(name, value)?;
        }
        if let Some(content_type) = &self.content_type {
            validate_content_type(content_type)?;
        }
        if let (Some(since), Some(until)) = (self.since, self.until)
            && since >= until
        {
            return Err(Error::invalid_input(format!(
                "since ({since}) must be earlier than until ({until})"
            )));
        }
        let mut plan = SearchPlan {
            words,
            prefix,
            tags: sorted(&self.tags),
            metadata: sorted(&self.metadata),
            content_type: self.content_type.clone(),
            since: self.since,
            until: self.until,
            all_versions: self.all_versions,
            limit: self.limit,
            after: None,
            fingerprint: String::new(),
        };
        plan.fingerprint = plan.fingerprint();
        if let Some(cursor) = &self.cursor {
            plan.after = Some(plan.decode_cursor(cursor)?);
        }
        Ok(plan)
    }
}

fn sorted(pairs: &[(String, String)]) -> Vec<(String, String)> {
    let mut pairs = pairs.to_vec();
    pairs.sort();
    pairs.dedup();
    pairs
}

fn bad_cursor() -> Error {
    Error::invalid_input("invalid search cursor: pass the next_cursor of a previous page unchanged")
}

impl SearchPlan {
    /// A short hash of everything that selects and orders hits (not the limit,
    /// so pages may differ in size).
    fn fingerprint(&self) -> String {
        let normalized = serde_json::json!([
            self.words,
            self.prefix,
            self.tags,
            self.metadata,
            self.content_type,
            self.since.map(Timestamp::as_micros),
            self.until.map(Timestamp::as_micros),
            self.all_versions,
        ]);
        hex::encode(&Sha256::digest(normalized.to_string().as_bytes())[..8])
    }

    fn decode_cursor(&self, cursor: &str) -> Result<SearchPosition> {
        if cursor.len() > MAX_CURSOR_CHARS {
            return Err(bad_cursor());
        }
        let bytes = hex::decode(cursor.trim()).map_err(|_| bad_cursor())?;
        let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| bad_cursor())?;
        if cursor.query != self.fingerprint {
            return Err(Error::invalid_input(
                "this search cursor belongs to a different query: repeat the same text and filters",
            ));
        }
        Ok(cursor.after)
    }

    fn encode_cursor(&self, after: SearchPosition) -> String {
        let cursor = Cursor {
            query: self.fingerprint.clone(),
            after,
        };
        // Serializing plain strings and a finite number cannot fail.
        hex::encode(serde_json::to_vec(&cursor).unwrap_or_default())
    }

    /// The page from the hits a catalog found (up to `limit + 1`, in any order):
    /// sorted, cut to `limit`, with a cursor when there were more.
    pub fn page(&self, mut hits: Vec<SearchHit>) -> SearchPage {
        hits.sort_by(hit_order);
        let more = hits.len() > self.limit;
        hits.truncate(self.limit);
        let next_cursor = more.then(|| hits.last()).flatten().map(|last| {
            self.encode_cursor(SearchPosition {
                score: last.score,
                key: last.version.key.to_string(),
                version_id: last.version.version_id.to_string(),
            })
        });
        SearchPage { hits, next_cursor }
    }
}

/// Best score first, then key ascending, then newest version first.
fn hit_order(a: &SearchHit, b: &SearchHit) -> Ordering {
    b.score
        .total_cmp(&a.score)
        .then_with(|| a.version.key.as_str().cmp(b.version.key.as_str()))
        .then_with(|| b.version.version_id.cmp(&a.version.version_id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn words_split_at_everything_but_letters_and_digits() {
        assert_eq!(
            search_words("Invoices/2024/INV_001-final.v2.PDF"),
            ["invoices", "2024", "inv", "001", "final", "v2", "pdf"]
        );
        assert_eq!(
            search_words("  Größe: 5€ — naïve café!"),
            ["größe", "5", "naïve", "café"]
        );
        assert!(search_words("/_-. !?").is_empty());
        // Vowel signs are letters: a Devanagari word stays whole.
        assert_eq!(search_words("किताब"), ["किताब"]);
    }

    #[test]
    fn long_words_are_cut_at_a_character_boundary() {
        let long = "x".repeat(3000);
        assert_eq!(
            search_words(&format!("a {long} b")),
            ["a", &long[..MAX_SEARCH_WORD_BYTES], "b"]
        );
        // 'é' is two bytes: 128 of them end at byte 256, so the cut keeps 127.
        let accents = "é".repeat(128);
        assert_eq!(search_words(&accents), ["é".repeat(127)]);
        // A query word longer than the limit still begins the cut word it was cut like.
        let query = search_words(&long[..1000]);
        assert!(search_words(&long)[0].starts_with(&query[0]));
    }

    #[test]
    fn documents_hold_key_metadata_values_tags_and_comments() {
        let metadata = Metadata::from([("customer".into(), "Acme Corp".into())]);
        let tags = Tags::from([("qc_status".into(), "approved".into())]);
        let comments = vec![Comment {
            at: Timestamp::from_micros(0),
            actor: "alice".into(),
            text: "Looks good.".into(),
        }];
        assert_eq!(
            search_document("a/inv_1.pdf", &metadata, &tags, &comments),
            "a inv 1 pdf acme corp qc status approved looks good"
        );
    }

    fn query(text: &str) -> SearchQuery {
        SearchQuery {
            text: text.into(),
            limit: 10,
            ..SearchQuery::default()
        }
    }

    #[test]
    fn bad_queries_are_invalid_input() {
        let bad = [
            SearchQuery { limit: 0, ..query("a") },
            SearchQuery {
                limit: MAX_SEARCH_LIMIT + 1,
                ..query("a")
            },
            query("?!"),
            query(&"a ".repeat(MAX_SEARCH_TEXT_BYTES)),
            SearchQuery {
                tags: vec![("bad name".into(), "x".into())],
                ..query("a")
            },
            SearchQuery {
                metadata: vec![("a=b".into(), "x".into())],
                ..query("a")
            },
            SearchQuery {
                content_type: Some("pdf".into()),
                ..query("a")
            },
            SearchQuery {
                since: Some(Timestamp::from_micros(2)),
                until: Some(Timestamp::from_micros(1)),
                ..query("a")
            },
            SearchQuery {
                cursor: Some("zz".into()),
                ..query("a")
            },
            SearchQuery {
                cursor: Some(hex::encode("{}")),
                ..query("a")
            },
        ];
        for q in bad {
            let err = q.plan().expect_err(&format!("{q:?}"));
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{q:?}");
            assert!(!err.message().contains('\n'));
        }
    }

    #[test]
    fn cursors_belong_to_their_query() {
        let plan = query("Approved invoice").plan().unwrap();
        let cursor = plan.encode_cursor(SearchPosition {
            score: 1.25,
            key: "a/b".into(),
            version_id: "v".into(),
        });
        // The same words in another spelling, and another page size, are the same query.
        let same = SearchQuery {
            cursor: Some(cursor.clone()),
            limit: 3,
            ..query("approved, INVOICE")
        };
        assert_eq!(
            same.plan().unwrap().after.map(|a| (a.score, a.key)),
            Some((1.25, "a/b".into()))
        );
        let other = SearchQuery {
            cursor: Some(cursor),
            all_versions: true,
            ..query("approved invoice")
        };
        assert_eq!(other.plan().unwrap_err().kind(), ErrorKind::InvalidInput);
    }
}
