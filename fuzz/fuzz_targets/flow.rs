#![no_main]
//! The whole worker path: a sequence of Ethernet frames through decode, the flow table, TCP
//! reassembly and every application decoder.
use crosswire::decode::net;
use crosswire::flow::{Limits, Table};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut table = Table::new(Limits { max_flows: 64, ..Limits::default() });
    let mut out = Vec::new();
    // Frames are length-prefixed (1 byte) inside the input.
    let mut rest = data;
    let mut ts = 0u64;
    for _ in 0..256 {
        let Some((&len, tail)) = rest.split_first() else {
            break;
        };
        let len = usize::from(len).min(tail.len());
        let (frame, tail) = tail.split_at(len);
        rest = tail;
        ts += 1_000_000;
        if let Ok(f) = net::decode(1, frame) {
            table.packet(ts, 0, &f, &f.l4, &mut out);
        }
    }
    table.flush(0, &mut out);
});
