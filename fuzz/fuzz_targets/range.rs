//! `--range` (and HTTP's `bytes=`): any text parses or is refused with one
//! line; a parsed range resolves against any size to a range inside the
//! object, or to one line saying it is not satisfiable.
#![no_main]

use arbitrary::Arbitrary;
use coffer::ByteRange;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    text: &'a str,
    size: u64,
}

fuzz_target!(|input: Input<'_>| {
    let range = match input.text.parse::<ByteRange>() {
        Ok(range) => range,
        Err(err) => {
            assert!(!err.message().contains(['\n', '\r']), "one line: {:?}", err.message());
            return;
        }
    };
    match range.resolve(input.size) {
        Ok(bytes) => assert!(
            bytes.start < bytes.end && bytes.end <= input.size,
            "{range:?} of {}: {bytes:?}",
            input.size
        ),
        Err(err) => assert!(!err.message().contains(['\n', '\r']), "one line: {:?}", err.message()),
    }
});
