//! Hot content read recently, in memory, by SHA-256. Content never changes
//! under its address, so a copy read once serves later reads of any
//! version that holds it without asking the catalog again, in every
//! process of a store alike. Only copies whose bytes hash to their address
//! are kept (so a damaged copy, once healed, is read anew), and only
//! plaintext (a sealed copy cannot be checked before it is opened).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use bytes::Bytes;
use sha2::{Digest, Sha256};

/// How many bytes of content the cache holds at most.
const CAPACITY: usize = 32 << 20;

/// The cache; the oldest entries go first when it is full.
#[derive(Debug, Default)]
pub(crate) struct ContentCache {
    inner: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    by_sha256: HashMap<String, Bytes>,
    order: VecDeque<String>,
    bytes: usize,
}

impl ContentCache {
    /// The content `sha256`, if held.
    pub(crate) fn get(&self, sha256: &str) -> Option<Bytes> {
        self.lock().by_sha256.get(sha256).cloned()
    }

    /// Hold `content` as `sha256`, if it hashes to it.
    pub(crate) fn insert(&self, sha256: &str, content: &Bytes) {
        if content.len() > CAPACITY / 64 || hex::encode(Sha256::digest(content)) != sha256 {
            return;
        }
        let mut entries = self.lock();
        if entries.by_sha256.contains_key(sha256) {
            return;
        }
        while entries.bytes + content.len() > CAPACITY {
            let Some(oldest) = entries.order.pop_front() else { break };
            if let Some(gone) = entries.by_sha256.remove(&oldest) {
                entries.bytes -= gone.len();
            }
        }
        entries.bytes += content.len();
        entries.order.push_back(sha256.to_owned());
        entries.by_sha256.insert(sha256.to_owned(), content.clone());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(content: &[u8]) -> String {
        hex::encode(Sha256::digest(content))
    }

    #[test]
    fn keeps_only_content_that_hashes_to_its_address_and_evicts_the_oldest() {
        let cache = ContentCache::default();
        let good = Bytes::from_static(b"content");
        cache.insert(&sha(b"content"), &good);
        assert_eq!(cache.get(&sha(b"content")), Some(good));
        cache.insert(&sha(b"other"), &Bytes::from_static(b"damaged"));
        assert_eq!(
            cache.get(&sha(b"other")),
            None,
            "a copy that does not hash to its address"
        );
        let block = |n: u8| Bytes::from(vec![n; CAPACITY / 64]);
        for n in 0..70u8 {
            cache.insert(&sha(&block(n)), &block(n));
        }
        assert_eq!(cache.get(&sha(b"content")), None, "the oldest went first");
        assert!(cache.get(&sha(&block(69))).is_some());
        assert!(cache.lock().bytes <= CAPACITY);
    }
}
