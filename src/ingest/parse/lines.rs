//! Cutting a byte stream, fed in chunks, into lines (or CSV rows whose quoted cells may hold
//! newlines), for the file source and [`super::parse_csv`].
//!
//! Limits and guarantees: at most [`MAX_LINE`] bytes of an unfinished line are held (the buffer
//! never grows past that); a longer line is skipped to its end and handed out as too long, and
//! the next line is read normally. Every byte is looked at once; nothing panics.

use super::MAX_LINE;

/// One complete line (or CSV row) cut out of a byte stream.
#[derive(Debug)]
pub(crate) struct Piece<'a> {
    /// Line number (1-based) where the piece starts.
    pub line: u64,
    /// Offset just past the piece (and its newline).
    pub end: u64,
    /// The line without its `\n` (and a trailing `\r`); `None` when it was longer than
    /// [`MAX_LINE`] and was skipped.
    pub text: Option<&'a [u8]>,
}

/// Cuts a byte stream fed in chunks into lines, holding at most [`MAX_LINE`] bytes of an
/// unfinished line; a longer line is skipped to its end and reported as too long. In CSV mode
/// a newline inside a quoted cell does not end the row (after a too-long row the quote state
/// is reset and the next newline ends it). Tracks the byte offset and line number of the first
/// byte not yet handed out, which is what a checkpoint records.
#[derive(Debug)]
pub(crate) struct LineSplitter {
    csv: bool,
    buf: Vec<u8>,
    quoted: bool,
    skipping: bool,
    /// Line number where the unfinished piece starts.
    line: u64,
    /// Newlines inside quoted cells of the unfinished piece.
    inner_newlines: u64,
    /// Offset of the first byte of the unfinished piece.
    start: u64,
    /// Offset of the next byte to be fed.
    pos: u64,
}

impl LineSplitter {
    pub fn new(csv: bool, start: u64, line: u64) -> LineSplitter {
        LineSplitter {
            csv,
            buf: Vec::new(),
            quoted: false,
            skipping: false,
            line,
            inner_newlines: 0,
            start,
            pos: start,
        }
    }

    /// Offset of the first byte not yet handed out as part of a piece.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Line number of the first line not yet handed out.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// Whether the unfinished piece is already too long (and is being skipped).
    pub fn skipping(&self) -> bool {
        self.skipping
    }

    pub fn feed(&mut self, data: &[u8], f: &mut dyn FnMut(Piece<'_>)) {
        let mut i = 0;
        while i < data.len() {
            let rest = data.get(i..).unwrap_or_default();
            let end = if self.csv && !self.skipping {
                self.scan_csv(rest)
            } else {
                rest.iter().position(|&b| b == b'\n')
            };
            let Some(j) = end else {
                if !self.skipping {
                    if self.buf.len() + rest.len() > MAX_LINE {
                        self.skipping = true;
                        self.quoted = false;
                        self.buf = Vec::new();
                    } else {
                        push_bounded(&mut self.buf, rest);
                    }
                }
                break;
            };
            let seg = rest.get(..j).unwrap_or_default();
            let line = self.line;
            let end = self.pos + (i + j + 1) as u64;
            if self.skipping || self.buf.len() + seg.len() > MAX_LINE {
                f(Piece {
                    line,
                    end,
                    text: None,
                });
            } else if self.buf.is_empty() {
                f(Piece {
                    line,
                    end,
                    text: Some(trim_cr(seg)),
                });
            } else {
                push_bounded(&mut self.buf, seg);
                f(Piece {
                    line,
                    end,
                    text: Some(trim_cr(&self.buf)),
                });
            }
            self.next_piece();
            i += j + 1;
            self.start = self.pos + i as u64;
        }
        self.pos += data.len() as u64;
    }

    /// Hands out the unfinished last piece (a file's final line without `\n`).
    pub fn finish(&mut self, f: &mut dyn FnMut(Piece<'_>)) {
        let (line, end) = (self.line, self.pos);
        if self.skipping {
            f(Piece {
                line,
                end,
                text: None,
            });
        } else if !self.buf.is_empty() {
            f(Piece {
                line,
                end,
                text: Some(trim_cr(&self.buf)),
            });
        } else {
            return;
        }
        self.next_piece();
        self.start = self.pos;
    }

    fn next_piece(&mut self) {
        self.line += 1 + self.inner_newlines;
        self.inner_newlines = 0;
        self.quoted = false;
        self.skipping = false;
        self.buf.clear();
        if self.buf.capacity() > 1024 * 1024 {
            self.buf = Vec::new();
        }
    }

    /// Index of the newline that ends the CSV row in `data`, updating the quote state.
    fn scan_csv(&mut self, data: &[u8]) -> Option<usize> {
        for (j, &b) in data.iter().enumerate() {
            match b {
                b'"' => self.quoted = !self.quoted,
                b'\n' if self.quoted => self.inner_newlines += 1,
                b'\n' => return Some(j),
                _ => {}
            }
        }
        None
    }
}

/// Appends without letting the capacity overshoot [`MAX_LINE`] (the caller checked the length).
fn push_bounded(buf: &mut Vec<u8>, data: &[u8]) {
    let want = buf.len() + data.len();
    if want > buf.capacity() {
        let target = (buf.capacity() * 2).max(want).min(MAX_LINE.max(want));
        buf.reserve_exact(target - buf.len());
    }
    buf.extend_from_slice(data);
}

fn trim_cr(s: &[u8]) -> &[u8] {
    s.strip_suffix(b"\r").unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitter_skips_long_lines_with_bounded_memory() {
        let mut s = LineSplitter::new(false, 0, 1);
        let mut got = Vec::new();
        let mut f = |p: Piece<'_>| got.push((p.line, p.end, p.text.map(<[u8]>::to_vec)));
        s.feed(b"a\r\nb", &mut f);
        let chunk = vec![b'x'; 1024 * 1024];
        for _ in 0..11 {
            s.feed(&chunk, &mut f);
            assert!(s.buf.capacity() <= MAX_LINE, "held {}", s.buf.capacity());
        }
        s.feed(b"x\nc\nd", &mut f);
        assert_eq!(s.start(), 3 + 1 + 11 * 1024 * 1024 + 2 + 2);
        assert_eq!(s.line(), 4);
        s.finish(&mut f);
        let lines: Vec<(u64, Option<&[u8]>)> =
            got.iter().map(|(l, _, t)| (*l, t.as_deref())).collect();
        assert_eq!(
            lines,
            vec![
                (1, Some(&b"a"[..])),
                (2, None),
                (3, Some(&b"c"[..])),
                (4, Some(&b"d"[..]))
            ]
        );
        assert_eq!(got[0].1, 3);
        assert_eq!(s.line(), 5);
    }

    #[test]
    fn splitter_keeps_quoted_newlines_in_csv_rows() {
        let mut s = LineSplitter::new(true, 0, 1);
        let mut got = Vec::new();
        let mut f = |p: Piece<'_>| got.push((p.line, p.text.map(<[u8]>::to_vec)));
        s.feed(b"h1,h2\n1,\"multi\nline\"\n2,", &mut f);
        s.feed(b"\"x\"\"\ny\"\n", &mut f);
        assert_eq!(
            got,
            vec![
                (1, Some(b"h1,h2".to_vec())),
                (2, Some(b"1,\"multi\nline\"".to_vec())),
                (4, Some(b"2,\"x\"\"\ny\"".to_vec())),
            ]
        );
        assert_eq!(s.line(), 6);
    }
}
