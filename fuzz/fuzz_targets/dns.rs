#![no_main]
//! DNS message decoder on arbitrary bytes.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = crosswire::decode::dns::looks_like_dns(data);
    if let Ok(m) = crosswire::decode::dns::parse(data) {
        assert!(m.queries().len() <= crosswire::decode::dns::MAX_QUESTIONS);
    }
});
