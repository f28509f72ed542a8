//! Replay of pcap and pcapng files: classic pcap through crosswire's own streaming reader
//! ([`super::pcapfile`]), pcapng, other variants and filtered replays through libpcap (the
//! `pcap` crate).
//!
//! Files are read in the order given; a directory contributes its `.pcap`, `.pcapng` and `.cap`
//! files in name order. A corrupt or truncated file ends with an error that names the file and
//! the byte offset of the first bad record; everything decoded before it is still delivered, and
//! replay goes on with the next file.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{Dispatcher, StopFlag};
use crate::config::Speed;

/// A problem with one input file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: cannot open: {message}")]
    Open { path: PathBuf, message: String },
    #[error("{path}: bad BPF filter: {message}")]
    Filter { path: PathBuf, message: String },
    #[error("{path}: unsupported link type {link_type} ({name}); no packets decoded from it")]
    LinkType {
        path: PathBuf,
        link_type: i32,
        name: String,
    },
    #[error("{path}: read error at byte offset {offset} (after {packets} packets): {message}")]
    Read {
        path: PathBuf,
        offset: u64,
        packets: u64,
        message: String,
    },
}

/// Expands directories (name order) into capture files.
pub fn expand(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(p)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| {
                    f.is_file()
                        && matches!(
                            f.extension().and_then(|e| e.to_str()),
                            Some("pcap" | "pcapng" | "cap")
                        )
                })
                .collect();
            files.sort();
            out.extend(files);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// Link types the decoders understand.
pub fn supported_link_type(lt: i32) -> bool {
    matches!(
        lt,
        0 | 1 | 10 | 12 | 14 | 101 | 105 | 108 | 113 | 127 | 228 | 229 | 239 | 276
    )
}

/// Replays one file into the dispatcher. Returns the number of packets read.
pub fn replay(
    path: &Path,
    bpf: Option<&str>,
    speed: Speed,
    stop: &StopFlag,
    d: &mut Dispatcher,
) -> Result<u64, Error> {
    if bpf.is_none() {
        let f = std::fs::File::open(path).map_err(|e| Error::Open {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let classic = super::pcapfile::Reader::open(f).map_err(|e| Error::Open {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        if let Some(r) = classic {
            return replay_classic(path, r, speed, stop, d);
        }
    }
    let mut cap =
        pcap::Capture::from_file_with_precision(path, pcap::Precision::Nano).map_err(|e| {
            Error::Open {
                path: path.to_owned(),
                message: e.to_string(),
            }
        })?;
    if let Some(f) = bpf {
        cap.filter(f, true).map_err(|e| Error::Filter {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
    }
    let lt = cap.get_datalink();
    if !supported_link_type(lt.0) {
        return Err(Error::LinkType {
            path: path.to_owned(),
            link_type: lt.0,
            name: lt.get_name().unwrap_or_else(|_| "unknown".into()),
        });
    }
    let mut packets = 0u64;
    let mut pace = Pacer::new(speed);
    loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        match cap.next_packet() {
            Ok(p) => {
                let ts = p.header.ts;
                // Nanosecond precision: tv_usec holds nanoseconds.
                let ts_us = (ts.tv_sec.max(0) as u64)
                    .saturating_mul(1_000_000)
                    .saturating_add(ts.tv_usec.max(0) as u64 / 1000);
                pace.wait(ts_us, d);
                packets += 1;
                d.push(lt.0, ts_us, p.data);
            }
            Err(pcap::Error::NoMorePackets) => break,
            Err(e) => {
                d.counters.read_errors += 1;
                return Err(Error::Read {
                    path: path.to_owned(),
                    offset: locate_offset(path, packets).unwrap_or(0),
                    packets,
                    message: e.to_string(),
                });
            }
        }
    }
    Ok(packets)
}

/// Replays a classic pcap file read by crosswire's own reader.
fn replay_classic(
    path: &Path,
    mut r: super::pcapfile::Reader<std::fs::File>,
    speed: Speed,
    stop: &StopFlag,
    d: &mut Dispatcher,
) -> Result<u64, Error> {
    let lt = r.link_type();
    if !supported_link_type(lt) {
        return Err(Error::LinkType {
            path: path.to_owned(),
            link_type: lt,
            name: pcap::Linktype(lt)
                .get_name()
                .unwrap_or_else(|_| "unknown".into()),
        });
    }
    let mut packets = 0u64;
    let mut pace = Pacer::new(speed);
    let mut recv = 0;
    loop {
        // The stop flag is an atomic load; checking it every 256 packets keeps it off the
        // per-packet path and still stops within microseconds.
        if packets.is_multiple_of(256) && stop.load(Ordering::Relaxed) {
            break;
        }
        // Receive time for latency: read every 64 packets (a few microseconds at replay speed),
        // and after any pacing sleep.
        if packets.is_multiple_of(64) || pace.factor.is_some() {
            recv = d.now_ns();
        }
        match r.next_record() {
            Ok(Some((ts_us, start, end))) => {
                if pace.wait(ts_us, d) {
                    recv = d.now_ns();
                }
                packets += 1;
                d.push_chunk(lt, ts_us, recv, r.chunk(), start, end);
            }
            Ok(None) => break,
            Err(e) => {
                d.counters.read_errors += 1;
                return Err(Error::Read {
                    path: path.to_owned(),
                    offset: e.offset,
                    packets,
                    message: e.message,
                });
            }
        }
    }
    Ok(packets)
}

/// Paces a replay at a multiple of the recorded speed (`Speed::Factor`); free otherwise.
struct Pacer {
    factor: Option<f64>,
    start: Option<(u64, Instant)>,
}

impl Pacer {
    fn new(speed: Speed) -> Self {
        Pacer {
            factor: match speed {
                Speed::Factor(f) => Some(f),
                _ => None,
            },
            start: None,
        }
    }

    /// Waits until `ts_us` is due; true if it slept.
    fn wait(&mut self, ts_us: u64, d: &mut Dispatcher) -> bool {
        let Some(f) = self.factor else {
            return false;
        };
        let (t0, w0) = *self.start.get_or_insert((ts_us, Instant::now()));
        let due = Duration::from_micros((ts_us.saturating_sub(t0) as f64 / f) as u64);
        let elapsed = w0.elapsed();
        if due > elapsed {
            d.flush();
            std::thread::sleep(due - elapsed);
            return true;
        }
        false
    }
}

/// Byte offset of the record after the first `packets` packet records of a pcap or pcapng file:
/// where a read error happened. Walks record headers only; reads at most the file.
pub fn locate_offset(path: &Path, packets: u64) -> Option<u64> {
    let mut f = std::fs::File::open(path).ok()?;
    let mut data = Vec::new();
    // Bounded by the file size; only called once, on error.
    f.read_to_end(&mut data).ok()?;
    offset_in(&data, packets)
}

fn offset_in(data: &[u8], packets: u64) -> Option<u64> {
    let magic = u32::from_le_bytes(data.get(0..4)?.try_into().ok()?);
    let rd = |pos: usize, le: bool| -> Option<u32> {
        let b: [u8; 4] = data.get(pos..pos + 4)?.try_into().ok()?;
        Some(if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    };
    match magic {
        0xa1b2_c3d4 | 0xa1b2_3c4d | 0xd4c3_b2a1 | 0x4d3c_b2a1 => {
            let le = matches!(magic, 0xa1b2_c3d4 | 0xa1b2_3c4d);
            let mut pos = 24usize;
            for _ in 0..packets {
                let incl = rd(pos + 8, le)? as usize;
                pos = pos.checked_add(16 + incl)?;
            }
            Some(pos as u64)
        }
        0x0a0d_0d0a => {
            // pcapng: blocks of (type, total length, body, total length); byte order from the
            // section header's byte-order magic.
            let bom = rd(8, true)?;
            let le = bom == 0x1a2b_3c4d;
            let mut pos = 0usize;
            let mut seen = 0u64;
            // Each step advances by at least 12 bytes: bounded by the file size.
            while pos < data.len() {
                let btype = rd(pos, le)?;
                let blen = rd(pos + 4, le)? as usize;
                if blen < 12 {
                    return Some(pos as u64);
                }
                if matches!(btype, 2 | 3 | 6) {
                    if seen == packets {
                        return Some(pos as u64);
                    }
                    seen += 1;
                }
                pos = pos.checked_add(blen)?;
            }
            Some(pos.min(data.len()) as u64)
        }
        _ => Some(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_pcap_offsets() {
        let mut f = vec![0u8; 24];
        f[0..4].copy_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        for len in [10u32, 20] {
            let mut h = [0u8; 16];
            h[8..12].copy_from_slice(&len.to_le_bytes());
            f.extend_from_slice(&h);
            f.extend(std::iter::repeat_n(0u8, len as usize));
        }
        assert_eq!(offset_in(&f, 0), Some(24));
        assert_eq!(offset_in(&f, 1), Some(24 + 26));
        assert_eq!(offset_in(&f, 2), Some(24 + 26 + 36));
    }
}
