//! A streaming reader for classic pcap files (the 24-byte file header and 16-byte record
//! headers of libpcap's savefile format, either byte order, microsecond or nanosecond stamps).
//!
//! Written by hand because libpcap's own reader is the bigger half of the replay capture
//! thread: it makes two buffered `fread` calls and one copy per packet before crosswire copies
//! the packet again into a worker batch. Here records are sliced straight out of large read
//! chunks (1 MiB, filled with plain `read` calls) that the worker batches share
//! ([`super::Chunk`]), so the capture thread copies no packet at all. A chunk still referred to
//! by a batch is never written; the reader continues in a free one from its small pool.
//! pcapng files, the rare "modified" pcap variants, and replays with a BPF filter still go
//! through libpcap ([`super::file`] decides).
//!
//! Limits: a record whose captured length exceeds [`MAX_RECORD`] is reported as corrupt (libpcap
//! refuses it too), so the buffer never grows past `BUF + MAX_RECORD`. Every error names the byte
//! offset of the record it was found in.

use std::io::Read;

/// Largest captured length accepted for one record (libpcap's own ceiling for most link types).
pub const MAX_RECORD: usize = 262_144;
/// Read size.
const BUF: usize = 1 << 20;
/// Bytes of one chunk: a full read plus room for a record that straddles two reads.
const CHUNK: usize = BUF + MAX_RECORD + 16;
/// Spare chunks kept for reuse (the ones in flight come back as the workers finish with them;
/// beyond this many, a chunk is freed by its last batch).
const POOL: usize = 16;

/// What went wrong, and where (byte offset of the bad record).
#[derive(Debug)]
pub struct ReadError {
    pub offset: u64,
    pub message: String,
}

/// A classic pcap file being read.
pub struct Reader<R> {
    src: R,
    /// The chunk being read.
    buf: super::Chunk,
    /// Chunks handed to batches earlier, reused once no batch refers to them.
    pool: Vec<super::Chunk>,
    /// Unread bytes are `buf[pos..end]`.
    pos: usize,
    end: usize,
    /// File offset of `buf[pos]`.
    offset: u64,
    little_endian: bool,
    nanos: bool,
    link_type: i32,
    eof: bool,
}

impl<R: Read> Reader<R> {
    /// Reads the file header. `Ok(None)` when the file is not a classic pcap this reader
    /// handles (pcapng, modified pcap, anything else): the caller falls back to libpcap, which
    /// gives the precise error for what it is not.
    pub fn open(mut src: R) -> std::io::Result<Option<Self>> {
        let mut head = [0u8; 24];
        let mut got = 0;
        while got < head.len() {
            match src.read(head.get_mut(got..).unwrap_or_default()) {
                Ok(0) => return Ok(None),
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let magic = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let (little_endian, nanos) = match magic {
            0xa1b2_c3d4 => (true, false),
            0xa1b2_3c4d => (true, true),
            0xd4c3_b2a1 => (false, false),
            0x4d3c_b2a1 => (false, true),
            _ => return Ok(None),
        };
        let word = |b: [u8; 4]| {
            if little_endian {
                u32::from_le_bytes(b)
            } else {
                u32::from_be_bytes(b)
            }
        };
        // The link type is the low 16 bits; the upper bits carry FCS information.
        let link_type = (word([head[20], head[21], head[22], head[23]]) & 0xffff) as i32;
        Ok(Some(Reader {
            src,
            buf: std::sync::Arc::new(vec![0; CHUNK]),
            pool: Vec::new(),
            pos: 0,
            end: 0,
            offset: 24,
            little_endian,
            nanos,
            link_type,
            eof: false,
        }))
    }

    pub fn link_type(&self) -> i32 {
        self.link_type
    }

    /// The chunk that the spans returned by [`Reader::next_record`] index.
    pub fn chunk(&self) -> &super::Chunk {
        &self.buf
    }

    /// A chunk no batch refers to any more, or a new one.
    fn free_chunk(&mut self) -> super::Chunk {
        match self
            .pool
            .iter_mut()
            .position(|c| std::sync::Arc::get_mut(c).is_some())
        {
            Some(i) => self.pool.swap_remove(i),
            None => std::sync::Arc::new(vec![0; CHUNK]),
        }
    }

    fn word(&self, at: usize) -> u32 {
        let b: [u8; 4] = self
            .buf
            .get(at..at + 4)
            .and_then(|s| s.try_into().ok())
            .unwrap_or_default();
        if self.little_endian {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    }

    /// Makes at least `need` unread bytes available unless the file ends first.
    fn fill(&mut self, need: usize) -> std::io::Result<()> {
        if self.end - self.pos >= need || self.eof {
            return Ok(());
        }
        // Move the unread tail (at most one partial record) to the front of the chunk, or of a
        // free chunk when batches still refer to this one; then read.
        if std::sync::Arc::get_mut(&mut self.buf).is_none() {
            let mut fresh = self.free_chunk();
            if let (Some(dst), Some(tail)) = (
                std::sync::Arc::get_mut(&mut fresh),
                self.buf.get(self.pos..self.end),
            ) {
                dst.get_mut(..tail.len())
                    .unwrap_or_default()
                    .copy_from_slice(tail);
            }
            let old = std::mem::replace(&mut self.buf, fresh);
            if self.pool.len() < POOL {
                self.pool.push(old);
            }
        } else if let Some(buf) = std::sync::Arc::get_mut(&mut self.buf) {
            buf.copy_within(self.pos..self.end, 0);
        }
        self.end -= self.pos;
        self.pos = 0;
        // Only this reader holds the chunk now (a fresh one, or one no batch refers to).
        let Some(buf) = std::sync::Arc::get_mut(&mut self.buf) else {
            return Err(std::io::Error::other("read chunk still shared"));
        };
        // Each pass reads at least one byte or ends: bounded by the buffer size.
        while self.end < need {
            let room = buf.get_mut(self.end..).unwrap_or_default();
            if room.is_empty() {
                break;
            }
            match self.src.read(room) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => self.end += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        // Top up to a full read while we are here, so that refills stay rare.
        if !self.eof && self.end < BUF {
            let room = buf.get_mut(self.end..BUF).unwrap_or_default();
            match self.src.read(room) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The next packet: (packet time in µs, captured bytes). `Ok(None)` at the end of the file.
    pub fn next_packet(&mut self) -> Result<Option<(u64, &[u8])>, ReadError> {
        Ok(self
            .next_record()?
            .map(|(ts, start, end)| (ts, self.buf.get(start..end).unwrap_or_default())))
    }

    /// The next packet as (packet time in µs, start, end): its bytes are
    /// `chunk()[start..end]`, valid until the next call. `Ok(None)` at the end of the file.
    pub fn next_record(&mut self) -> Result<Option<(u64, usize, usize)>, ReadError> {
        let at = self.offset;
        let io = |e: std::io::Error| ReadError {
            offset: at,
            message: e.to_string(),
        };
        self.fill(16).map_err(io)?;
        let avail = self.end - self.pos;
        if avail == 0 {
            return Ok(None);
        }
        if avail < 16 {
            return Err(ReadError {
                offset: at,
                message: format!("truncated record header ({avail} of 16 bytes)"),
            });
        }
        let p = self.pos;
        let sec = u64::from(self.word(p));
        let frac = u64::from(self.word(p + 4));
        let caplen = self.word(p + 8) as usize;
        if caplen > MAX_RECORD {
            return Err(ReadError {
                offset: at,
                message: format!(
                    "invalid captured length {caplen}, bigger than the maximum of {MAX_RECORD}"
                ),
            });
        }
        self.fill(16 + caplen).map_err(io)?;
        let avail = self.end - self.pos;
        if avail < 16 + caplen {
            return Err(ReadError {
                offset: at,
                message: format!(
                    "truncated record: {caplen} captured bytes announced, {} present",
                    avail - 16
                ),
            });
        }
        let start = self.pos + 16;
        self.pos = start + caplen;
        self.offset += (16 + caplen) as u64;
        let micros = if self.nanos { frac / 1000 } else { frac };
        let ts_us = sec.saturating_mul(1_000_000).saturating_add(micros);
        Ok(Some((ts_us, start, start + caplen)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(le: bool, nanos: bool, records: &[(u32, u32, &[u8])]) -> Vec<u8> {
        let w = |v: u32| if le { v.to_le_bytes() } else { v.to_be_bytes() };
        let magic: u32 = if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
        let mut f = Vec::new();
        f.extend_from_slice(&w(magic));
        f.extend_from_slice(&[0, 2, 0, 4]);
        f.extend_from_slice(&[0; 8]);
        f.extend_from_slice(&w(65535));
        f.extend_from_slice(&w(1));
        for (s, frac, data) in records {
            f.extend_from_slice(&w(*s));
            f.extend_from_slice(&w(*frac));
            f.extend_from_slice(&w(data.len() as u32));
            f.extend_from_slice(&w(data.len() as u32 + 7));
            f.extend_from_slice(data);
        }
        f
    }

    fn all(bytes: Vec<u8>) -> (Vec<(u64, Vec<u8>)>, Option<ReadError>) {
        let mut r = Reader::open(std::io::Cursor::new(bytes))
            .unwrap()
            .expect("classic pcap");
        assert_eq!(r.link_type(), 1);
        let mut v = Vec::new();
        loop {
            match r.next_packet() {
                Ok(Some((ts, d))) => v.push((ts, d.to_vec())),
                Ok(None) => return (v, None),
                Err(e) => return (v, Some(e)),
            }
        }
    }

    #[test]
    fn reads_both_byte_orders_and_precisions() {
        for le in [true, false] {
            let (v, err) = all(file(le, false, &[(10, 5, b"abc"), (11, 0, b"")]));
            assert!(err.is_none());
            assert_eq!(v, vec![(10_000_005, b"abc".to_vec()), (11_000_000, vec![])]);
            let (v, _) = all(file(le, true, &[(10, 5_999, b"x")]));
            assert_eq!(v, vec![(10_000_005, b"x".to_vec())]);
        }
    }

    #[test]
    fn truncation_and_absurd_lengths_name_the_record_offset() {
        let mut f = file(true, false, &[(1, 0, b"abcd"), (2, 0, b"efgh")]);
        f.truncate(f.len() - 2);
        let (v, err) = all(f);
        assert_eq!(v.len(), 1);
        assert_eq!(err.expect("error").offset, 24 + 20);
        let mut f = file(true, false, &[(1, 0, b"abcd"), (2, 0, b"efgh")]);
        f[24 + 20 + 8..24 + 20 + 12].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
        let (v, err) = all(f);
        assert_eq!(v.len(), 1);
        let e = err.expect("error");
        assert_eq!(e.offset, 44);
        assert!(e.message.contains("captured length"), "{}", e.message);
        // A header cut short.
        let mut f = file(true, false, &[(1, 0, b"abcd")]);
        f.extend_from_slice(&[1, 2, 3]);
        let (v, err) = all(f);
        assert_eq!(v.len(), 1);
        assert!(err.is_some());
    }

    #[test]
    fn records_spanning_many_refills_come_out_whole() {
        // Enough records of varied sizes that several cross the read-buffer boundary.
        let payloads: Vec<Vec<u8>> = (0..6000u32)
            .map(|i| (0..(i * 37 % 1500)).map(|j| (i + j) as u8).collect())
            .collect();
        let recs: Vec<(u32, u32, &[u8])> = payloads
            .iter()
            .enumerate()
            .map(|(i, p)| (i as u32, 0, p.as_slice()))
            .collect();
        let (v, err) = all(file(true, false, &recs));
        assert!(err.is_none());
        assert_eq!(v.len(), payloads.len());
        for (i, (ts, d)) in v.iter().enumerate() {
            assert_eq!(*ts, i as u64 * 1_000_000);
            assert_eq!(d, &payloads[i]);
        }
    }

    #[test]
    fn spans_stay_valid_while_batches_hold_their_chunks() {
        // As in replay: each span is kept with a reference to its chunk (a batch in flight)
        // while the reader goes on; a chunk held elsewhere must never be overwritten, and a
        // record straddling two reads must come out whole from the next chunk.
        let payloads: Vec<Vec<u8>> = (0..9000u32)
            .map(|i| (0..(i * 53 % 1400)).map(|j| (i ^ j) as u8).collect())
            .collect();
        let recs: Vec<(u32, u32, &[u8])> = payloads
            .iter()
            .enumerate()
            .map(|(i, p)| (i as u32, 0, p.as_slice()))
            .collect();
        let mut r = Reader::open(std::io::Cursor::new(file(true, false, &recs)))
            .unwrap()
            .expect("classic pcap");
        // "Batches" in flight, released in waves, so that some chunks come back for reuse.
        let mut held: Vec<(super::super::Chunk, usize, usize, usize)> = Vec::new();
        let mut checked = 0;
        let mut chunks_seen: Vec<*const Vec<u8>> = Vec::new();
        while let Some((ts, start, end)) = r.next_record().unwrap() {
            let i = ts as usize / 1_000_000;
            let c = r.chunk().clone();
            if !chunks_seen.contains(&std::sync::Arc::as_ptr(&c)) {
                chunks_seen.push(std::sync::Arc::as_ptr(&c));
            }
            held.push((c, start, end, i));
            if held.len() >= 2500 {
                for (c, s, e, i) in held.drain(..) {
                    assert_eq!(&c[s..e], payloads[i].as_slice(), "packet {i}");
                    checked += 1;
                }
            }
        }
        for (c, s, e, i) in held.drain(..) {
            assert_eq!(&c[s..e], payloads[i].as_slice(), "packet {i}");
            checked += 1;
        }
        assert_eq!(checked, payloads.len());
        // The file is several reads long; released chunks were reused, so few were made.
        // (6.4 MB: seven chunks without reuse; at most three are held at once here.)
        assert!(
            (2..=5).contains(&chunks_seen.len()),
            "{}",
            chunks_seen.len()
        );
        assert!(r.pool.len() <= POOL);
    }

    #[test]
    fn other_formats_are_left_to_libpcap() {
        for head in [&b"\x0a\x0d\x0d\x0a"[..], b"not a capture at all", b""] {
            let mut h = head.to_vec();
            h.resize(h.len().max(24), 0);
            if head.is_empty() {
                h.clear();
            }
            assert!(Reader::open(std::io::Cursor::new(h)).unwrap().is_none());
        }
    }
}
