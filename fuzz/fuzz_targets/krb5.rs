#![no_main]
//! krb5 decoder on arbitrary bytes, every accessor touched, and the EVE event built from it.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    crosswire::decode::krb5::fuzz_krb5(data);
    for tcp in [false, true] {
        if let Ok(m) = crosswire::decode::krb5::parse(data, tcp) {
            let _ = crosswire::event::Krb5Event::from_message(&m);
        }
    }
});
