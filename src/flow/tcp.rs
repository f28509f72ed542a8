//! In-order reassembly of the head of one TCP direction.
//!
//! Only what the application decoders still need is kept: bytes they have consumed are dropped at
//! once, and a direction stops being reassembled as soon as its decoder is done with it.
//! Retransmitted bytes are trimmed against the next expected sequence number, so they never reach a
//! decoder twice; out-of-order segments wait in a small bounded list until the gap before them
//! fills. Caps: [`MAX_BUFFERED`] bytes of unconsumed data, [`MAX_OOO_SEGMENTS`] waiting segments
//! holding at most [`MAX_OOO_BYTES`] bytes. When a cap is hit the gap is declared lost: the
//! decoder is told (it resynchronises or stops) and the event is counted, never a panic.

/// Unconsumed in-order bytes kept for a decoder waiting for the end of a message.
pub const MAX_BUFFERED: usize = 96 * 1024;
/// Out-of-order segments waiting for a gap to fill.
pub const MAX_OOO_SEGMENTS: usize = 32;
/// Bytes held in out-of-order segments.
pub const MAX_OOO_BYTES: usize = 64 * 1024;
/// A segment further ahead than this is not buffered: it starts a new stream position.
const MAX_AHEAD: u32 = 1 << 20;

/// What reassembly did with a segment.
#[derive(Debug, PartialEq, Eq)]
pub enum Accept {
    /// Nothing new: a retransmission, an empty segment, or held out of order.
    Nothing,
    /// New contiguous bytes were appended to `buf`.
    Data,
    /// Bytes were lost before new data; the decoder must resynchronise. New bytes are in `buf`.
    Gap,
}

/// Reassembly state of one direction.
#[derive(Debug, Default)]
pub struct Reassembly {
    next_seq: Option<u32>,
    /// Contiguous bytes not yet consumed by the decoder.
    pub buf: Vec<u8>,
    ooo: Vec<(u32, Vec<u8>)>,
    ooo_bytes: usize,
    /// Out-of-order segments dropped because a cap was hit, retransmissions trimmed, gaps.
    pub ooo_dropped: u64,
    pub retransmitted: u64,
    pub gaps: u64,
}

impl Reassembly {
    /// A SYN fixes the initial sequence number; data on a SYN (TCP Fast Open) starts at `seq + 1`.
    pub fn syn(&mut self, seq: u32) {
        if self.next_seq.is_none() {
            self.next_seq = Some(seq.wrapping_add(1));
        }
    }

    /// Releases every buffer (the direction is finished).
    pub fn clear(&mut self) {
        self.buf = Vec::new();
        self.ooo = Vec::new();
        self.ooo_bytes = 0;
    }

    /// When nothing is buffered or waiting and `seq` is exactly the next expected byte, the
    /// segment can be decoded in place: advances past it and returns true. The caller then hands
    /// back what the decoder left unconsumed with [`Reassembly::keep`].
    pub fn take_direct(&mut self, seq: u32, len: usize) -> bool {
        if len == 0 || !self.buf.is_empty() || !self.ooo.is_empty() {
            return false;
        }
        match self.next_seq {
            Some(n) if n != seq => false,
            _ => {
                self.next_seq = Some(seq.wrapping_add(len as u32));
                true
            }
        }
    }

    /// Buffers the unconsumed tail of a segment decoded in place (bounded like any data).
    pub fn keep(&mut self, rest: &[u8]) {
        let take = rest.len().min(MAX_BUFFERED.saturating_sub(self.buf.len()));
        if take < rest.len() {
            self.gaps += 1;
        }
        self.buf
            .extend_from_slice(rest.get(..take).unwrap_or_default());
    }

    /// Drops the first `n` buffered bytes; an emptied large buffer is released so that idle
    /// flows hold no memory.
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.buf.len());
        self.buf.drain(..n);
        if self.buf.is_empty() && self.buf.capacity() > 4096 {
            self.buf = Vec::new();
        }
    }

    /// Takes one segment. New in-order bytes are appended to `buf`.
    pub fn segment(&mut self, seq: u32, payload: &[u8]) -> Accept {
        if payload.is_empty() {
            return Accept::Nothing;
        }
        let next = *self.next_seq.get_or_insert(seq);
        let rel = seq.wrapping_sub(next) as i32;
        if rel < 0 {
            // Starts before what we already have: trim the part seen before.
            let seen = rel.unsigned_abs() as usize;
            if seen >= payload.len() {
                self.retransmitted += 1;
                return Accept::Nothing;
            }
            return self.append(next, payload.get(seen..).unwrap_or_default());
        }
        if rel == 0 {
            return self.append(next, payload);
        }
        if rel as u32 > MAX_AHEAD {
            // Far ahead: capture loss or a new stream position. Restart here.
            return self.jump(seq, payload);
        }
        if self.ooo.len() >= MAX_OOO_SEGMENTS || self.ooo_bytes + payload.len() > MAX_OOO_BYTES {
            // Cannot wait any longer for the gap to fill: declare it lost and go on from the
            // lowest segment held (this one included).
            self.ooo.push((seq, payload.to_vec()));
            self.ooo_bytes += payload.len();
            if let Some((s, data)) = self.take_lowest() {
                return self.jump(s, &data);
            }
            return Accept::Nothing;
        }
        self.hold(seq, payload);
        Accept::Nothing
    }

    fn hold(&mut self, seq: u32, payload: &[u8]) {
        if self.ooo.len() >= MAX_OOO_SEGMENTS || self.ooo_bytes + payload.len() > MAX_OOO_BYTES {
            self.ooo_dropped += 1;
            return;
        }
        if self
            .ooo
            .iter()
            .any(|(s, d)| *s == seq && d.len() >= payload.len())
        {
            self.retransmitted += 1;
            return;
        }
        self.ooo_bytes += payload.len();
        self.ooo.push((seq, payload.to_vec()));
    }

    fn take_lowest(&mut self) -> Option<(u32, Vec<u8>)> {
        let next = self.next_seq?;
        let idx = self
            .ooo
            .iter()
            .enumerate()
            .min_by_key(|(_, (s, _))| s.wrapping_sub(next))
            .map(|(i, _)| i)?;
        let seg = self.ooo.swap_remove(idx);
        self.ooo_bytes -= seg.1.len();
        Some(seg)
    }

    fn jump(&mut self, seq: u32, payload: &[u8]) -> Accept {
        self.gaps += 1;
        self.buf.clear();
        self.next_seq = Some(seq);
        self.append(seq, payload);
        Accept::Gap
    }

    fn append(&mut self, at: u32, payload: &[u8]) -> Accept {
        let room = MAX_BUFFERED.saturating_sub(self.buf.len());
        let take = payload.len().min(room);
        self.buf
            .extend_from_slice(payload.get(..take).unwrap_or_default());
        self.next_seq = Some(at.wrapping_add(payload.len() as u32));
        let mut res = Accept::Data;
        if take < payload.len() {
            // The decoder is not consuming: the rest of this segment is lost to it.
            self.gaps += 1;
            res = Accept::Gap;
        }
        if self.drain_ooo() {
            res = Accept::Gap;
        }
        res
    }

    /// Moves held segments that have become contiguous into `buf`. Returns true when data was
    /// truncated on the way (treated as a gap).
    fn drain_ooo(&mut self) -> bool {
        let mut truncated = false;
        // Each pass moves one segment or stops: bounded by MAX_OOO_SEGMENTS passes.
        for _ in 0..=MAX_OOO_SEGMENTS {
            let Some(next) = self.next_seq else {
                break;
            };
            // Segments entirely behind `next` carry nothing new.
            self.ooo.retain(|(s, d)| {
                let rel = s.wrapping_sub(next) as i32;
                !(rel < 0 && rel.unsigned_abs() as usize >= d.len())
            });
            let Some(i) = self
                .ooo
                .iter()
                .position(|(s, _)| (s.wrapping_sub(next) as i32) <= 0)
            else {
                break;
            };
            let (s, d) = self.ooo.swap_remove(i);
            let part = d.get(next.wrapping_sub(s) as usize..).unwrap_or_default();
            let room = MAX_BUFFERED.saturating_sub(self.buf.len());
            let take = part.len().min(room);
            self.buf
                .extend_from_slice(part.get(..take).unwrap_or_default());
            truncated |= take < part.len();
            self.next_seq = Some(next.wrapping_add(part.len() as u32));
        }
        self.ooo_bytes = self.ooo.iter().map(|(_, d)| d.len()).sum();
        truncated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_and_retransmission() {
        let mut r = Reassembly::default();
        r.syn(99);
        assert_eq!(r.segment(100, b"hello "), Accept::Data);
        assert_eq!(r.segment(100, b"hello "), Accept::Nothing);
        assert_eq!(r.segment(103, b"lo world"), Accept::Data);
        assert_eq!(r.buf, b"hello world");
        assert_eq!(r.retransmitted, 1);
    }

    #[test]
    fn out_of_order_waits_for_gap() {
        let mut r = Reassembly::default();
        r.syn(0);
        assert_eq!(r.segment(7, b"world"), Accept::Nothing);
        assert_eq!(r.segment(1, b"hello "), Accept::Data);
        assert_eq!(r.buf, b"hello world");
        // Duplicate of something already drained.
        assert_eq!(r.segment(7, b"world"), Accept::Nothing);
        assert_eq!(r.buf, b"hello world");
    }

    #[test]
    fn sequence_wraparound() {
        let mut r = Reassembly::default();
        r.syn(u32::MAX - 2);
        assert_eq!(r.segment(u32::MAX - 1, b"abcd"), Accept::Data);
        assert_eq!(r.segment(2, b"ef"), Accept::Data);
        assert_eq!(r.buf, b"abcdef");
    }

    #[test]
    fn too_many_out_of_order_declares_gap() {
        let mut r = Reassembly::default();
        r.syn(0);
        for i in 0..MAX_OOO_SEGMENTS as u32 {
            r.segment(1000 + i * 10, b"x");
        }
        let a = r.segment(5000, b"y");
        assert_eq!(a, Accept::Gap);
        assert!(r.gaps >= 1);
        assert!(!r.buf.is_empty());
    }

    #[test]
    fn buffer_is_capped() {
        let mut r = Reassembly::default();
        r.syn(0);
        let big = vec![0u8; 60_000];
        r.segment(1, &big);
        let a = r.segment(60_001, &big);
        assert_eq!(a, Accept::Gap);
        assert_eq!(r.buf.len(), MAX_BUFFERED);
    }
}
