#![no_main]
//! SaaS/email record parser on arbitrary bytes: as one NDJSON line, and as a CSV export.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = crosswire::ingest::parse::parse_line(data);
    let _ = crosswire::ingest::parse::parse_csv(data, |_, _| {});
});
