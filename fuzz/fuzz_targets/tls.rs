#![no_main]
//! TLS record/handshake decoders on arbitrary bytes, the way the flow layer calls them.
use crosswire::decode::tls::{self, Parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tls::looks_like_record(data);
    if let Some(off) = tls::find_client_hello(data) {
        assert!(off < data.len());
    }
    let mut buf = data;
    // Walk the buffer as the flow layer does; each step must consume or stop.
    for _ in 0..64 {
        match tls::client_hello(buf) {
            Parse::Done(_, n) | Parse::Skip(n) => {
                assert!(n > 0 && n <= buf.len());
                buf = &buf[n..];
            }
            Parse::NeedMore | Parse::Invalid(_) => break,
        }
    }
    if let Parse::Done(_, n) | Parse::Skip(n) = tls::server_hello(data) {
        assert!(n > 0 && n <= data.len());
    }
});
