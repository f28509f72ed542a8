#![no_main]
//! dhcp decoder on arbitrary bytes, every accessor touched, and the EVE event built from it.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    crosswire::decode::dhcp::fuzz_dhcp(data);
    if let Ok(m) = crosswire::decode::dhcp::parse(data) {
        let _ = crosswire::event::DhcpEvent::from_message(&m);
    }
});
