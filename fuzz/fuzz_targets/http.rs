#![no_main]
//! HTTP/1.x stream parsers on arbitrary bytes fed in arbitrary chunks.
use crosswire::decode::http::{self, Feed};
use libfuzzer_sys::fuzz_target;

fn drive<F: FnMut(&[u8]) -> Feed>(data: &[u8], chunk: usize, mut feed: F) {
    let mut buf: Vec<u8> = Vec::new();
    for piece in data.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        for _ in 0..64 {
            match feed(&buf) {
                Feed::Consumed(0) => break,
                Feed::Consumed(n) => {
                    assert!(n <= buf.len());
                    buf.drain(..n);
                }
                Feed::Tunnel(n) => {
                    assert!(n <= buf.len());
                    return;
                }
                Feed::Stop(_) => return,
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&c, rest)) = data.split_first() else {
        return;
    };
    let _ = http::looks_like_request(rest);
    let _ = http::looks_like_response(rest);
    let mut client = http::ClientParser::new();
    let mut reqs = Vec::new();
    drive(rest, usize::from(c) + 1, |b| client.feed(b, &mut reqs));
    let mut server = http::ServerParser::new();
    let mut resps = Vec::new();
    drive(rest, usize::from(c) + 1, |b| server.feed(b, &mut resps));
});
