//! Object keys: any text is accepted or refused with one line, never a panic;
//! an accepted key keeps every rule the key docs promise.
#![no_main]

use coffer::key::MAX_KEY_BYTES;
use coffer::{ErrorKind, ObjectKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    match ObjectKey::new(text) {
        Ok(key) => {
            assert_eq!(key.as_str(), text, "a key is kept as given");
            assert!(!text.is_empty() && text.len() <= MAX_KEY_BYTES);
            assert!(!text.starts_with('/') && !text.chars().any(char::is_control));
            assert!(text.split('/').all(|segment| !matches!(segment, "" | "." | "..")));
        }
        Err(err) => {
            assert_eq!(err.kind(), ErrorKind::InvalidKey);
            assert!(!err.message().contains(['\n', '\r']), "one line: {:?}", err.message());
        }
    }
});
