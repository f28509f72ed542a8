#![no_main]
//! Link layer to transport decoding (all link types, tunnels) and fragment reassembly.
use crosswire::decode::{defrag, net};
use libfuzzer_sys::fuzz_target;

const LINK_TYPES: [i32; 14] = [0, 1, 10, 12, 14, 101, 105, 108, 113, 127, 228, 229, 239, 276];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let lt = LINK_TYPES[usize::from(sel) % LINK_TYPES.len()];
    let mut d = defrag::Defrag::new(defrag::Limits::default());
    if let Ok(f) = net::decode(lt, rest) {
        if f.frag.is_some() {
            if let Some(dg) = d.push(1, &f) {
                let _ = net::decode_l4(f.proto, &dg);
            }
        }
    }
});
