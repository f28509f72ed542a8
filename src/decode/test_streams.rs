//! Test builds only: the TCP byte streams of capture files, for the differential tests of
//! the stream decoders (`http`, `tls`) against their previous implementations.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::decode::net::{self, L4};

/// The captures of the repository (`captures/`), the shared real-world captures
/// (`../shared/captures/real`, skipped when absent) and the files named in
/// `CROSSWIRE_DIFF_PCAPS` (`a.pcap:b.pcap`, e.g. a large replay file).
pub fn capture_files(what: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = crate::capture::file::expand(&[root.join("captures")])
        .expect("captures/ of the repository");
    assert!(!files.is_empty());
    let shared = root.join("../shared/captures/real");
    match crate::capture::file::expand(std::slice::from_ref(&shared)) {
        Ok(more) => {
            eprintln!(
                "{what}: {} capture files in {}",
                more.len(),
                shared.display()
            );
            files.extend(more);
        }
        Err(_) => eprintln!(
            "{what}: {} is absent, skipping its captures",
            shared.display()
        ),
    }
    if let Ok(extra) = std::env::var("CROSSWIRE_DIFF_PCAPS") {
        files.extend(
            extra
                .split(':')
                .filter(|p| !p.is_empty())
                .map(PathBuf::from),
        );
    }
    files
}

/// One direction of one TCP connection: the non-empty segment payloads in capture order
/// (retransmissions and reordering kept as they are: the decoders only need bytes).
pub type Stream = Vec<Vec<u8>>;

/// The TCP streams of `files`, in order of their first segment.
pub fn tcp_streams(files: &[PathBuf]) -> Vec<Stream> {
    let mut order: Vec<Stream> = Vec::new();
    for path in files {
        let mut index: BTreeMap<(IpAddr, IpAddr, u16, u16), usize> = BTreeMap::new();
        let mut cap =
            pcap::Capture::from_file(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let link = cap.get_datalink().0;
        while let Ok(packet) = cap.next_packet() {
            let Ok(frame) = net::decode(link, packet.data) else {
                continue;
            };
            let L4::Tcp(t) = frame.l4 else {
                continue;
            };
            if t.payload.is_empty() {
                continue;
            }
            let key = (frame.src, frame.dst, t.src_port, t.dst_port);
            let at = *index.entry(key).or_insert_with(|| {
                order.push(Vec::new());
                order.len() - 1
            });
            order[at].push(t.payload.to_vec());
        }
    }
    order
}
