//! Files and directories of SaaS / email records as a tailed source with a checkpoint.
//!
//! Job: read the records in a list of paths — files, or directories whose regular files
//! (not dot-files, not recursive) are read in name order, files appearing later included —
//! and hand each out once, as an [`Item`], through [`FileSource::poll`]. The format of each
//! file is decided from its first non-blank line (a UTF-8 BOM is skipped):
//! - CSV: the name ends in `.csv`, or the first line is a header row of a supported export;
//! - a JSON document (array, `{"records": [..]}`, the test wrapper, or several pretty-printed
//!   values one after another): the first line starts a JSON value that does not end on it,
//!   and the next non-blank line is not a complete value either;
//! - NDJSON otherwise: one record (or JSON array of records) per line. A file whose first
//!   line was cut short is still NDJSON when its second line is a complete value.
//!
//! Tailing: `poll` reads what was appended since the last call, at most [`POLL_BUDGET`] bytes
//! per file per call, and returns `true` when it stopped at that budget. Only complete lines
//! (ending in `\n`) are consumed; a document only once it parses completely. [`FileSource::finish`] is the
//! end of a replay: it reads everything and takes the final unterminated line (or the
//! unfinished document), rejecting it with its line number if it is truncated.
//!
//! Rotation: when a tailed path names a new file (device/inode changed), the old handle is read
//! to its end and finished first, then the new file starts at 0; a directory file renamed
//! within the directory keeps its position under its new name; a file whose size fell below the
//! read position, or that grew but no longer starts with the bytes read before, was truncated
//! and starts again at 0.
//!
//! Checkpoint contract: [`FileSource::checkpoint`] gives, per file, the identity (device,
//! inode, a hash of up to the first 1 KiB) and the offset and line number of the first byte
//! not yet handed out. The caller persists a checkpoint only after it has processed every item
//! handed out before the checkpoint was taken; [`FileSource::new`] with that checkpoint then
//! resumes each file (found by identity, under any watched name) exactly there, so a restart
//! neither loses nor repeats a record. Not covered: a file rotated out of the watched paths
//! while the sensor was down (its unread tail is lost), and a file truncated and rewritten to
//! exactly the old length with the same first KiB between two polls (missed until it grows).
//! Checkpoint entries that match no file at the first poll are dropped.
//!
//! Limits: at most [`MAX_FILES`] files tracked (more are refused and counted); at most
//! [`MAX_DIR_ENTRIES`] entries read per directory scan; a line holds at most
//! [`parse::MAX_LINE`] bytes in memory — a longer one is skipped to its end and rejected as
//! "line longer than 10 MiB", the next line is read normally; a JSON document is at most
//! [`MAX_DOCUMENT`] bytes, and a document that is too long or malformed stops that file until it
//! is rotated or truncated (one rejection). Memory per file is one unfinished line (or
//! document) plus [`READ_BUF`] shared. A path that disappears keeps its open handle, which is
//! read until a new file takes the path.
//!
//! Guarantees: no input panics; I/O errors are counted and logged once per file, never fatal.

use std::collections::HashMap;
use std::fs::{self, File, Metadata};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ingest::parse::{self, CsvHeader, LineSplitter, Outcome, Piece, Reject};
use crate::ingest::record::Record;

/// Most files tracked at once.
pub const MAX_FILES: usize = 10_000;
/// Largest JSON document (a file that is not NDJSON or CSV), in bytes.
pub const MAX_DOCUMENT: usize = 64 * 1024 * 1024;
/// Most directory entries read per scan of one directory.
pub const MAX_DIR_ENTRIES: usize = 100_000;
/// Read buffer, shared by all files.
pub const READ_BUF: usize = 64 * 1024;
/// Most bytes read from one file in one [`FileSource::poll`].
pub const POLL_BUDGET: u64 = 8 * 1024 * 1024;
/// Bytes at the start of a file hashed to recognise it on resume.
const HEAD_LEN: usize = 1024;
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// What a poll hands out.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Record(Box<Record>),
    /// A line, row or record that was not understood; `origin` is `path:line`.
    Rejected {
        origin: String,
        reason: String,
    },
    /// A known record that carries nothing used (`what` names its table or shape).
    Ignored {
        origin: String,
        what: String,
    },
}

/// What the source did; gauges are marked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    pub records: u64,
    pub rejected: u64,
    pub ignored: u64,
    /// Bytes read from files.
    pub bytes: u64,
    /// Files tracked now (gauge).
    pub files: u64,
    /// Files not tracked at the last scan because [`MAX_FILES`] were (gauge).
    pub files_refused: u64,
    /// Directories whose last scan stopped at [`MAX_DIR_ENTRIES`] entries (gauge).
    pub dirs_truncated: u64,
    /// Tailed paths that turned out to name a new file.
    pub rotations: u64,
    /// Files that shrank below the read position and were read again from 0.
    pub truncations: u64,
    /// Open, read and directory errors.
    pub io_errors: u64,
}

/// Where every file stands; see the module docs for the contract.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub files: Vec<FileCheckpoint>,
}

/// One file's position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileCheckpoint {
    /// The name it had (informational: files are found again by identity).
    pub path: String,
    pub dev: u64,
    pub ino: u64,
    /// Offset of the first byte not yet handed out.
    pub offset: u64,
    /// Line number of that byte.
    pub line: u64,
    /// How many leading bytes `head_hash` covers (at most 1 KiB, at most `offset`).
    pub head_len: u64,
    /// FNV-1a of the first `head_len` bytes (guards against inode reuse).
    pub head_hash: u64,
}

/// A set of files and directories read as one record source.
pub struct FileSource {
    roots: Vec<PathBuf>,
    files: Vec<Tracked>,
    /// Checkpoint entries not matched to a file yet (dropped after the first poll).
    resume: Vec<FileCheckpoint>,
    polled: bool,
    next_seq: u64,
    max_files: usize,
    counters: Counters,
    buf: Vec<u8>,
}

struct Tracked {
    root: usize,
    /// Discovery order: files are read in this order.
    seq: u64,
    path: PathBuf,
    from_dir: bool,
    open: Option<Open>,
    warned: bool,
}

struct Open {
    file: File,
    id: (u64, u64),
    /// Up to [`HEAD_LEN`] first bytes of the file.
    head: Vec<u8>,
    /// Position of the handle.
    read_pos: u64,
    reader: Reader,
}

enum Reader {
    /// The first line is not complete yet, so the format is unknown.
    Undecided {
        resume: Option<FileCheckpoint>,
    },
    Lines(LineSplitter),
    Csv {
        split: LineSplitter,
        header: CsvHeader,
    },
    Document(Document),
}

/// A JSON document (or several) being accumulated.
struct Document {
    doc: Vec<u8>,
    /// Offset of `doc[0]`.
    start: u64,
    /// Line number of `doc[0]`.
    line: u64,
    /// Malformed or too long: the rest of the file is skipped.
    failed: bool,
}

/// Shared state a file poll works with.
struct Ctx<'a> {
    counters: &'a mut Counters,
    buf: &'a mut [u8],
    resume: &'a mut Vec<FileCheckpoint>,
    sink: &'a mut dyn FnMut(Item),
}

impl FileSource {
    /// A source over `paths` (files or directories; they need not exist yet), resuming from
    /// `checkpoint` when given. Nothing is read until the first [`poll`](Self::poll).
    pub fn new(paths: Vec<PathBuf>, checkpoint: Option<Checkpoint>) -> FileSource {
        let mut resume = checkpoint.map(|c| c.files).unwrap_or_default();
        resume.truncate(MAX_FILES);
        FileSource {
            roots: paths,
            files: Vec::new(),
            resume,
            polled: false,
            next_seq: 0,
            max_files: MAX_FILES,
            counters: Counters::default(),
            buf: vec![0; READ_BUF],
        }
    }

    /// Lowers the number of files tracked at once (at most [`MAX_FILES`]).
    pub fn with_max_files(mut self, max_files: usize) -> FileSource {
        self.max_files = max_files.min(MAX_FILES);
        self
    }

    /// Reads what is new in every file (at most [`POLL_BUDGET`] bytes per file) and hands it
    /// to `sink`. Returns `true` when some file has more to read right away.
    pub fn poll(&mut self, sink: &mut dyn FnMut(Item)) -> bool {
        self.run(false, sink)
    }

    /// End of a replay: reads every file to its end and takes final unterminated lines.
    pub fn finish(&mut self, sink: &mut dyn FnMut(Item)) {
        self.run(true, sink);
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The position of every file: persist it only after processing everything handed out
    /// before this call.
    pub fn checkpoint(&self) -> Checkpoint {
        let mut files: Vec<FileCheckpoint> = self
            .files
            .iter()
            .filter_map(|t| {
                let o = t.open.as_ref()?;
                let path = t.path.to_string_lossy().into_owned();
                let (offset, line) = match &o.reader {
                    Reader::Undecided { resume: Some(c) } => {
                        return Some(FileCheckpoint { path, ..c.clone() });
                    }
                    Reader::Undecided { resume: None } => (0, 1),
                    Reader::Lines(split) | Reader::Csv { split, .. } => {
                        (split.start(), split.line())
                    }
                    Reader::Document(d) => (d.start, d.line),
                };
                let head = o
                    .head
                    .get(
                        ..o.head
                            .len()
                            .min(usize::try_from(offset).unwrap_or(usize::MAX)),
                    )
                    .unwrap_or_default();
                Some(FileCheckpoint {
                    path,
                    dev: o.id.0,
                    ino: o.id.1,
                    offset,
                    line,
                    head_len: head.len() as u64,
                    head_hash: fnv1a(head),
                })
            })
            .collect();
        if !self.polled {
            files.extend(self.resume.iter().cloned());
        }
        Checkpoint { files }
    }

    fn run(&mut self, finishing: bool, sink: &mut dyn FnMut(Item)) -> bool {
        let FileSource {
            roots,
            files,
            resume,
            counters,
            buf,
            next_seq,
            max_files,
            ..
        } = self;
        let max_files = *max_files;
        let mut ctx = Ctx {
            counters,
            buf,
            resume,
            sink,
        };
        let mut refused = 0;
        let mut skipped = 0;
        for (ri, root) in roots.iter().enumerate() {
            match fs::metadata(root) {
                Ok(m) if m.is_dir() => {
                    // The path may have been a missing file at an earlier poll.
                    files.retain(|t| t.root != ri || t.from_dir);
                    let (r, s) = scan_dir(ri, root, files, max_files, next_seq, &mut ctx);
                    refused += r;
                    skipped += s;
                }
                // A directory that vanished: its open files are still read to their end.
                Err(_) if files.iter().any(|t| t.root == ri && t.from_dir) => {}
                _ => match files.iter().position(|t| t.root == ri && !t.from_dir) {
                    Some(i) => check_named(&mut files[i], &mut ctx),
                    None if files.len() < max_files => {
                        files.push(Tracked::new(ri, *next_seq, root.clone(), false));
                        *next_seq += 1;
                    }
                    None => refused += 1,
                },
            }
        }
        files.sort_by_key(|t| (t.root, t.seq));
        let mut more = false;
        for t in files.iter_mut() {
            more |= poll_file(t, finishing, &mut ctx);
        }
        ctx.counters.files = files.len() as u64;
        ctx.counters.files_refused = refused;
        ctx.counters.dirs_truncated = skipped;
        if !self.polled {
            self.polled = true;
            self.resume.clear();
        }
        more
    }
}

impl Tracked {
    fn new(root: usize, seq: u64, path: PathBuf, from_dir: bool) -> Tracked {
        Tracked {
            root,
            seq,
            path,
            from_dir,
            open: None,
            warned: false,
        }
    }
}

/// Rotation and truncation of an explicitly named file.
fn check_named(t: &mut Tracked, ctx: &mut Ctx<'_>) {
    let Some(o) = &t.open else { return };
    // A missing path keeps the old handle: it is read until a new file appears.
    let Ok(m) = fs::metadata(&t.path) else { return };
    if identity(&m) != o.id {
        poll_file(t, true, ctx);
        t.open = None;
        ctx.counters.rotations += 1;
        tracing::info!(path = %t.path.display(), "ingest file rotated");
    } else if rewritten(o, m.len()) {
        t.open = None;
        ctx.counters.truncations += 1;
        tracing::info!(path = %t.path.display(), "ingest file truncated, reading from 0");
    }
}

/// Whether a file now `len` bytes long was truncated (shorter than what was read) or
/// rewritten (grown, but its first bytes are not the ones read before).
fn rewritten(o: &Open, len: u64) -> bool {
    if len < o.read_pos {
        return true;
    }
    if len == o.read_pos || o.head.is_empty() {
        return false;
    }
    let mut now = vec![0; o.head.len()];
    read_exact_at(&o.file, &mut now, 0).is_ok_and(|()| now != o.head)
}

/// Scans one directory: follows renames, finishes files that left, adds new ones.
/// Returns (files refused at the cap, 1 if entries were left unread at [`MAX_DIR_ENTRIES`]).
fn scan_dir(
    ri: usize,
    dir: &Path,
    files: &mut Vec<Tracked>,
    max_files: usize,
    next_seq: &mut u64,
    ctx: &mut Ctx<'_>,
) -> (u64, u64) {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) => {
            ctx.counters.io_errors += 1;
            tracing::warn!(path = %dir.display(), error = %e, "cannot read ingest directory");
            return (0, 0);
        }
    };
    let mut found: Vec<(PathBuf, (u64, u64), u64)> = Vec::new();
    let mut rd = rd;
    for entry in rd.by_ref().take(MAX_DIR_ENTRIES) {
        let Ok(entry) = entry else { continue };
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        match fs::metadata(&path) {
            Ok(m) if m.is_file() => found.push((path, identity(&m), m.len())),
            _ => {}
        }
    }
    let truncated = u64::from(rd.next().is_some());
    found.sort();
    let by_id: HashMap<(u64, u64), usize> =
        found.iter().enumerate().map(|(i, f)| (f.1, i)).collect();
    let by_path: HashMap<&Path, usize> = found
        .iter()
        .enumerate()
        .map(|(i, f)| (f.0.as_path(), i))
        .collect();
    let mut claimed = vec![false; found.len()];
    let mut kept = Vec::with_capacity(files.len());
    let mut gone = Vec::new();
    for mut t in std::mem::take(files) {
        if t.root != ri || !t.from_dir {
            kept.push(t);
            continue;
        }
        let hit = match &t.open {
            Some(o) => by_id.get(&o.id).copied(),
            None => by_path.get(t.path.as_path()).copied(),
        };
        let Some((k, (path, _, len))) = hit.and_then(|k| Some((k, found.get(k)?))) else {
            gone.push(t);
            continue;
        };
        if let Some(c) = claimed.get_mut(k) {
            *c = true;
        }
        if *path != t.path {
            t.path = path.clone();
        }
        if let Some(o) = &t.open
            && rewritten(o, *len)
        {
            t.open = None;
            ctx.counters.truncations += 1;
        }
        kept.push(t);
    }
    *files = kept;
    // Deleted or moved away: read what is left, then forget it.
    for mut t in gone {
        if t.open.is_some() {
            poll_file(&mut t, true, ctx);
        }
    }
    let mut refused = 0;
    for ((path, _, _), claimed) in found.into_iter().zip(claimed) {
        if claimed {
            continue;
        }
        if files.len() >= max_files {
            refused += 1;
            continue;
        }
        files.push(Tracked::new(ri, *next_seq, path, true));
        *next_seq += 1;
    }
    (refused, truncated)
}

/// Reads one file as far as the budget (or, finishing, its end) allows. Returns `true` when
/// it stopped at the budget.
fn poll_file(t: &mut Tracked, finishing: bool, ctx: &mut Ctx<'_>) -> bool {
    if t.open.is_none() {
        match open_file(&t.path, ctx.resume) {
            Ok(o) => {
                t.open = Some(o);
                t.warned = false;
            }
            Err(e) => {
                if e.kind() != io::ErrorKind::NotFound && !t.warned {
                    ctx.counters.io_errors += 1;
                    t.warned = true;
                    tracing::warn!(path = %t.path.display(), error = %e, "cannot open ingest file");
                }
                return false;
            }
        }
    }
    let Some(o) = t.open.as_mut() else {
        return false;
    };
    match read_file(&t.path, o, finishing, ctx) {
        Ok(more) => more,
        Err(e) => {
            ctx.counters.io_errors += 1;
            if !t.warned {
                t.warned = true;
                tracing::warn!(path = %t.path.display(), error = %e, "cannot read ingest file");
            }
            false
        }
    }
}

fn open_file(path: &Path, resume: &mut Vec<FileCheckpoint>) -> io::Result<Open> {
    let file = File::open(path)?;
    let m = file.metadata()?;
    if !m.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    let id = identity(&m);
    let mut from = None;
    if let Some(i) = resume.iter().position(|c| (c.dev, c.ino) == id) {
        let c = resume.swap_remove(i);
        let mut head = vec![0; usize::try_from(c.head_len).unwrap_or(0).min(HEAD_LEN)];
        let same = c.offset <= m.len()
            && head.len() as u64 == c.head_len
            && read_exact_at(&file, &mut head, 0).is_ok()
            && fnv1a(&head) == c.head_hash;
        if same {
            from = Some(c);
        }
    }
    Ok(Open {
        file,
        id,
        head: Vec::new(),
        read_pos: 0,
        reader: Reader::Undecided { resume: from },
    })
}

fn read_file(path: &Path, o: &mut Open, finishing: bool, ctx: &mut Ctx<'_>) -> io::Result<bool> {
    if let Reader::Undecided { resume } = &mut o.reader {
        let csv_ext = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        let Some(sniffed) = sniff(&mut o.file, csv_ext, finishing, ctx.buf)? else {
            return Ok(false);
        };
        let resume = resume.take();
        let (reader, start) = sniffed.into_reader(resume.as_ref());
        o.file.seek(SeekFrom::Start(start))?;
        o.read_pos = start;
        o.reader = reader;
    }
    let mut budget = if finishing { u64::MAX } else { POLL_BUDGET };
    let mut more = false;
    loop {
        if budget == 0 {
            more = true;
            break;
        }
        let want = ctx
            .buf
            .len()
            .min(usize::try_from(budget).unwrap_or(usize::MAX));
        let Some(chunk) = ctx.buf.get_mut(..want) else {
            break;
        };
        let n = match o.file.read(chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        budget = budget.saturating_sub(n as u64);
        o.read_pos += n as u64;
        ctx.counters.bytes += n as u64;
        let data = chunk.get(..n).unwrap_or_default();
        let (counters, sink) = (&mut *ctx.counters, &mut *ctx.sink);
        match &mut o.reader {
            Reader::Lines(split) => {
                split.feed(data, &mut |p| on_line(path, p, counters, sink));
            }
            Reader::Csv { split, header } => {
                split.feed(data, &mut |p| on_row(path, header, p, counters, sink));
            }
            Reader::Document(d) => d.feed(data, path, counters, sink),
            Reader::Undecided { .. } => {}
        }
    }
    let (counters, sink) = (&mut *ctx.counters, &mut *ctx.sink);
    match &mut o.reader {
        Reader::Document(d) => d.drain(finishing, path, counters, sink),
        Reader::Lines(split) if finishing => {
            split.finish(&mut |p| on_line(path, p, counters, sink))
        }
        Reader::Csv { split, header } if finishing => {
            split.finish(&mut |p| on_row(path, header, p, counters, sink));
        }
        _ => {}
    }
    if o.head.len() < HEAD_LEN && o.read_pos > o.head.len() as u64 {
        let len = usize::try_from(o.read_pos)
            .unwrap_or(HEAD_LEN)
            .min(HEAD_LEN);
        let mut head = vec![0; len];
        if read_exact_at(&o.file, &mut head, 0).is_ok() {
            o.head = head;
        }
    }
    Ok(more)
}

/// How a file's first non-blank line says to read it.
enum Sniffed {
    Lines {
        start: u64,
    },
    Document {
        start: u64,
    },
    Csv {
        header: CsvHeader,
        body_start: u64,
        body_line: u64,
    },
}

impl Sniffed {
    /// The reader and the offset to read from (the checkpoint's when it is past the start).
    fn into_reader(self, resume: Option<&FileCheckpoint>) -> (Reader, u64) {
        let at = |start: u64, line: u64| match resume {
            Some(c) if c.offset >= start => (c.offset, c.line),
            _ => (start, line),
        };
        match self {
            Sniffed::Lines { start } => {
                let (s, l) = at(start, 1);
                (Reader::Lines(LineSplitter::new(false, s, l)), s)
            }
            Sniffed::Document { start } => {
                let (s, l) = at(start, 1);
                let d = Document {
                    doc: Vec::new(),
                    start: s,
                    line: l,
                    failed: false,
                };
                (Reader::Document(d), s)
            }
            Sniffed::Csv {
                header,
                body_start,
                body_line,
            } => {
                let (s, l) = at(body_start, body_line);
                let split = LineSplitter::new(true, s, l);
                (Reader::Csv { split, header }, s)
            }
        }
    }
}

/// What the first non-blank line of a file says.
enum First {
    /// Complete JSON, too long, or anything else: NDJSON.
    Lines,
    /// JSON that does not end on its line: a document, unless the next line is a complete
    /// value of its own (NDJSON whose first line was cut).
    OpenJson,
    Csv(CsvHeader),
}

impl First {
    fn of(text: Option<&[u8]>, csv_ext: bool) -> First {
        let Some(text) = text else {
            return First::Lines;
        };
        if csv_ext {
            return CsvHeader::parse(text).map_or(First::Lines, First::Csv);
        }
        let trimmed = text.trim_ascii_start();
        if trimmed.starts_with(b"{") || trimmed.starts_with(b"[") {
            return match serde_json::from_slice::<IgnoredAny>(text) {
                Err(e) if e.is_eof() => First::OpenJson,
                _ => First::Lines,
            };
        }
        if CsvHeader::looks_like(text)
            && let Ok(h) = CsvHeader::parse(text)
        {
            return First::Csv(h);
        }
        First::Lines
    }
}

/// The first two non-blank lines as far as the format goes.
#[derive(Default)]
struct Sniff {
    /// The first line's verdict, line number and end offset.
    first: Option<(First, u64, u64)>,
    /// Whether the second line is a complete JSON value (asked only after `OpenJson`).
    second: Option<bool>,
}

impl Sniff {
    fn take(&mut self, p: Piece<'_>, csv_ext: bool) {
        if p.text.is_some_and(|t| t.trim_ascii().is_empty()) {
            return;
        }
        match &self.first {
            None => self.first = Some((First::of(p.text, csv_ext), p.line, p.end)),
            Some((First::OpenJson, _, _)) if self.second.is_none() => {
                let complete = p
                    .text
                    .is_some_and(|t| serde_json::from_slice::<IgnoredAny>(t).is_ok());
                self.second = Some(complete);
            }
            Some(_) => {}
        }
    }

    fn decided(&self) -> bool {
        match &self.first {
            Some((First::OpenJson, _, _)) => self.second.is_some(),
            Some(_) => true,
            None => false,
        }
    }
}

/// Decides the format from the first non-blank line (and, for JSON that does not end on it,
/// the second); `None` while those lines are incomplete, unless finishing. Holds at most one
/// line in memory: a line too long to hold decides for NDJSON.
fn sniff(
    file: &mut File,
    csv_ext: bool,
    finishing: bool,
    buf: &mut [u8],
) -> io::Result<Option<Sniffed>> {
    file.seek(SeekFrom::Start(0))?;
    let mut bom = [0u8; 3];
    let got = read_full(file, &mut bom)?;
    let start = if got == 3 && bom == BOM { 3 } else { 0 };
    file.seek(SeekFrom::Start(start))?;
    let mut split = LineSplitter::new(false, start, 1);
    let mut sniff = Sniff::default();
    let mut too_long = false;
    let mut read = 0;
    loop {
        let n = match file.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        split.feed(buf.get(..n).unwrap_or_default(), &mut |p| {
            sniff.take(p, csv_ext)
        });
        if sniff.decided() {
            break;
        }
        read += n;
        // A line too long to hold, or more blank lines than that: NDJSON.
        if split.skipping() || read > parse::MAX_LINE + READ_BUF {
            too_long = true;
            break;
        }
    }
    if !sniff.decided() && !too_long && finishing {
        split.finish(&mut |p| sniff.take(p, csv_ext));
    }
    if !sniff.decided() && !too_long && !finishing {
        return Ok(None);
    }
    Ok(Some(match sniff.first {
        Some((First::Csv(header), line, end)) => Sniffed::Csv {
            header,
            body_start: end,
            body_line: line + 1,
        },
        Some((First::OpenJson, _, _)) if sniff.second != Some(true) && !too_long => {
            Sniffed::Document { start }
        }
        _ => Sniffed::Lines { start },
    }))
}

impl Document {
    fn feed(
        &mut self,
        data: &[u8],
        path: &Path,
        counters: &mut Counters,
        sink: &mut dyn FnMut(Item),
    ) {
        if self.failed {
            self.start += data.len() as u64;
            self.line += newlines(data);
            return;
        }
        if self.doc.len() + data.len() > MAX_DOCUMENT {
            emit(
                path,
                self.line,
                Err(Reject::DocumentTooLong(MAX_DOCUMENT)),
                counters,
                sink,
            );
            self.failed = true;
            self.start += (self.doc.len() + data.len()) as u64;
            self.line += newlines(&self.doc) + newlines(data);
            self.doc = Vec::new();
            return;
        }
        self.doc.extend_from_slice(data);
    }

    /// Hands out every complete value; finishing, an unfinished one is rejected.
    fn drain(
        &mut self,
        finishing: bool,
        path: &Path,
        counters: &mut Counters,
        sink: &mut dyn FnMut(Item),
    ) {
        if self.failed {
            return;
        }
        let Some(&last) = self.doc.iter().rev().find(|b| !b.is_ascii_whitespace()) else {
            self.start += self.doc.len() as u64;
            self.line += newlines(&self.doc);
            self.doc.clear();
            return;
        };
        if !finishing && last != b'}' && last != b']' {
            return;
        }
        let mut stream = serde_json::Deserializer::from_slice(&self.doc).into_iter::<Value>();
        let mut consumed = 0;
        let mut line = self.line;
        loop {
            let before = consumed;
            let rest = self.doc.get(before..).unwrap_or_default();
            let lead = rest.iter().take_while(|b| b.is_ascii_whitespace()).count();
            let value_line = line + newlines(rest.get(..lead).unwrap_or_default());
            match stream.next() {
                None => {
                    line += newlines(rest);
                    consumed = self.doc.len();
                    break;
                }
                Some(Ok(v)) => {
                    consumed = stream.byte_offset();
                    line += newlines(self.doc.get(before..consumed).unwrap_or_default());
                    parse::visit(&v, &mut |r| emit(path, value_line, r, counters, sink));
                }
                Some(Err(e)) => {
                    if e.is_eof() && !finishing {
                        break;
                    }
                    let reason = match Reject::json(&e) {
                        Reject::Json { column, msg, .. } => Reject::Json {
                            line: usize::try_from(self.line)
                                .unwrap_or(usize::MAX)
                                .saturating_add(e.line().saturating_sub(1)),
                            column,
                            msg,
                        },
                        other => other,
                    };
                    emit(path, value_line, Err(reason), counters, sink);
                    self.failed = true;
                    line += newlines(rest);
                    consumed = self.doc.len();
                    break;
                }
            }
        }
        self.doc.drain(..consumed);
        self.start += consumed as u64;
        self.line = line;
        if self.doc.is_empty() && self.doc.capacity() > READ_BUF {
            self.doc = Vec::new();
        }
    }
}

fn on_line(path: &Path, p: Piece<'_>, counters: &mut Counters, sink: &mut dyn FnMut(Item)) {
    match p.text {
        None => emit(path, p.line, Err(Reject::TooLong), counters, sink),
        Some(t) if t.trim_ascii().is_empty() => {}
        Some(t) => parse::visit_line(t, &mut |r| emit(path, p.line, r, counters, sink)),
    }
}

fn on_row(
    path: &Path,
    header: &CsvHeader,
    p: Piece<'_>,
    counters: &mut Counters,
    sink: &mut dyn FnMut(Item),
) {
    match p.text {
        None => emit(path, p.line, Err(Reject::TooLong), counters, sink),
        Some(t) if t.trim_ascii().is_empty() => {}
        Some(t) => parse::visit_csv_row(header, t, &mut |r| emit(path, p.line, r, counters, sink)),
    }
}

fn emit(
    path: &Path,
    line: u64,
    r: Result<Outcome, Reject>,
    counters: &mut Counters,
    sink: &mut dyn FnMut(Item),
) {
    match r {
        Ok(Outcome::Record(rec)) => {
            counters.records += 1;
            sink(Item::Record(rec));
        }
        Ok(Outcome::Ignored(what)) => {
            counters.ignored += 1;
            sink(Item::Ignored {
                origin: format!("{}:{line}", path.display()),
                what,
            });
        }
        Err(e) => {
            counters.rejected += 1;
            sink(Item::Rejected {
                origin: format!("{}:{line}", path.display()),
                reason: e.to_string(),
            });
        }
    }
}

fn newlines(s: &[u8]) -> u64 {
    s.iter().filter(|&&b| b == b'\n').count() as u64
}

fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read(buf.get_mut(got..).unwrap_or_default()) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

#[cfg(unix)]
fn identity(m: &Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (m.dev(), m.ino())
}

#[cfg(not(unix))]
fn identity(_m: &Metadata) -> (u64, u64) {
    (0, 0)
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.read_exact_at(buf, offset)
}

#[cfg(not(unix))]
fn read_exact_at(_file: &File, _buf: &mut [u8], _offset: u64) -> io::Result<()> {
    Err(io::Error::other("positional reads need unix"))
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::net::IpAddr;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::ingest::record::{Direction, EmailKind, SaasEvent, SaasKind, Schema};

    /// The real samples. In the main repository this is
    /// `concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/saas/real")`.
    const REAL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/saas/real");

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            static N: AtomicU32 = AtomicU32::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let p = std::env::temp_dir().join(format!(
                "crosswire-ingest-{}-{n}-{name}",
                std::process::id()
            ));
            let _ = fs::remove_dir_all(&p);
            fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }

        fn path(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn append(path: &Path, data: &[u8]) {
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(data).unwrap();
    }

    /// Polls until nothing is left right away, then (optionally) finishes.
    fn drain(src: &mut FileSource, finish: bool) -> Vec<Item> {
        let mut items = Vec::new();
        while src.poll(&mut |i| items.push(i)) {}
        if finish {
            src.finish(&mut |i| items.push(i));
        }
        items
    }

    fn records(items: &[Item]) -> Vec<Record> {
        items
            .iter()
            .filter_map(|i| match i {
                Item::Record(r) => Some((**r).clone()),
                _ => None,
            })
            .collect()
    }

    fn rejected(items: &[Item]) -> Vec<(String, String)> {
        items
            .iter()
            .filter_map(|i| match i {
                Item::Rejected { origin, reason } => Some((origin.clone(), reason.clone())),
                _ => None,
            })
            .collect()
    }

    fn saas(r: &Record) -> &SaasEvent {
        match r {
            Record::Saas(s) => s,
            other => panic!("not saas: {other:?}"),
        }
    }

    /// A UAL `Send` record whose id is `n` (to compare what was read).
    fn send(n: u32) -> String {
        format!(
            "{{\"CreationTime\":\"2024-03-20T10:00:00\",\"Id\":\"{n}\",\"Operation\":\"Send\",\"UserId\":\"u{n}@contoso.com\"}}\n"
        )
    }

    fn ids(items: &[Item]) -> Vec<String> {
        records(items).iter().map(|r| saas(r).id.clone()).collect()
    }

    fn real(name: &str) -> Option<PathBuf> {
        let p = Path::new(REAL).join(name);
        if !p.exists() {
            println!("skipped: {} is absent", p.display());
            return None;
        }
        Some(p)
    }

    fn read_all(path: PathBuf) -> (Vec<Item>, Counters) {
        let mut src = FileSource::new(vec![path], None);
        let items = drain(&mut src, true);
        (items, src.counters().clone())
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn real_sentinel_csv_gives_two_inbox_rules() {
        let Some(p) = real("sentinel-lab-officeactivity-new-inboxrule.csv") else {
            return;
        };
        let (items, c) = read_all(p);
        assert_eq!(rejected(&items), vec![]);
        let recs = records(&items);
        assert_eq!(recs.len(), 2);
        let mut names = Vec::new();
        for r in &recs {
            let s = saas(r);
            assert_eq!(s.schema, Schema::Ual);
            assert_eq!(s.user, "adelev@contoso.onmicrosoft.com");
            assert_eq!(s.ip, ip("2a01:110:8068:7:9bf8:aa87:e00a:5f1f"));
            assert_eq!(s.operation, "New-InboxRule");
            let SaasKind::InboxRule { name, params } = &s.kind else {
                panic!("{s:?}")
            };
            let has = |k: &str, v: &str| params.iter().any(|(a, b)| a == k && b == v);
            match name.as_str() {
                "rule2" => {
                    assert!(has("MoveToFolder", "Junk Email"));
                    assert!(has("SubjectContainsWords", "do not open"));
                    assert_eq!(s.id, "d28096ba-03b1-4c2a-1503-08d908826606");
                    assert_eq!(s.ts_us, 1_619_421_430_000_000); // 2021-04-26T07:17:10Z
                }
                "my_rule1" => {
                    assert!(has("DeleteMessage", "True"));
                    assert!(has("BodyContainsWords", "covid-19"));
                    assert_eq!(s.ts_us, 1_619_419_052_000_000); // 2021-04-26T06:37:32Z
                }
                other => panic!("unexpected rule {other}"),
            }
            assert!(has("StopProcessingRules", "True"));
            assert_eq!(params.len(), 6);
            names.push(name.clone());
        }
        assert_eq!(names, ["rule2", "my_rule1"]);
        assert_eq!((c.records, c.rejected, c.ignored), (2, 0, 0));
    }

    #[test]
    fn real_test_wrapper_gives_login_and_set_mailbox() {
        let Some(p) = real("elastic-o365-userloggedin-parameter-strings.json") else {
            return;
        };
        let (items, _) = read_all(p);
        assert_eq!(rejected(&items), vec![]);
        let recs = records(&items);
        assert_eq!(recs.len(), 2);
        let login = saas(&recs[0]);
        assert_eq!(login.user, "root@testsiem4.onmicrosoft.com");
        assert_eq!(login.ip, ip("67.43.156.13"));
        assert_eq!(login.ts_us, 1_612_515_967_000_000); // 2021-02-05T09:06:07Z
        assert_eq!(login.id, "550ed0e2-27da-4cbc-9fb8-46add4018800");
        assert_eq!(
            login.kind,
            SaasKind::Login {
                success: true,
                error_code: Some("0".into()),
                country: None,
                city: None,
                geo: None,
                user_agent: None,
                correlation_id: Some("df4c6d6c-4551-4f2d-8766-03700dfccb47".into()),
            }
        );
        let mailbox = saas(&recs[1]);
        assert_eq!(mailbox.operation, "Set-Mailbox");
        assert_eq!(mailbox.kind, SaasKind::Other, "no forwarding parameter");
        assert_eq!(
            mailbox.user,
            "nt authority\\system (microsoft.exchange.servicehost)"
        );
        assert_eq!(mailbox.ip, None);
    }

    #[test]
    fn real_defender_email_rows_join_on_the_message_id() {
        let Some(p) = real("elastic-m365d-email-events-urls.ndjson") else {
            return;
        };
        let (items, c) = read_all(p.clone());
        assert_eq!(rejected(&items), vec![]);
        let ignored: Vec<(String, String)> = items
            .iter()
            .filter_map(|i| match i {
                Item::Ignored { origin, what } => Some((origin.clone(), what.clone())),
                _ => None,
            })
            .collect();
        let at = |line: u32| format!("{}:{line}", p.display());
        assert_eq!(
            ignored,
            vec![
                (at(1), "EmailAttachmentInfo".to_owned()),
                (at(4), "EmailPostDeliveryEvents".to_owned())
            ]
        );
        let recs = records(&items);
        assert_eq!(recs.len(), 3);
        let mut kinds = Vec::new();
        for r in &recs {
            let Record::Email(e) = r else { panic!("{r:?}") };
            assert_eq!(e.message_id, "a194a8a6-d97c-4be1-ae31-08dacc512345");
            kinds.push(e.kind.clone());
        }
        let EmailKind::Message {
            direction,
            sender,
            recipient,
            sender_ip,
            delivery,
            ..
        } = &kinds[0]
        else {
            panic!("{kinds:?}")
        };
        assert_eq!(*direction, Direction::IntraOrg);
        assert_eq!(sender, "user@testmsftalerts.onmicrosoft.com");
        assert_eq!(recipient, "user@testmsftalerts.onmicrosoft.com");
        assert_eq!(*sender_ip, ip("81.2.69.144"));
        assert_eq!(delivery.as_deref(), Some("Delivered"));
        assert!(
            matches!(&kinds[1], EmailKind::Url { domain, .. } if domain == "southcentralusr-notifyp.svc.ms")
        );
        assert_eq!(
            kinds[2],
            EmailKind::Click {
                user: String::new(),
                ip: None,
                url: "https://southcentralusr-notifyp.svc.ms/api/v2/tracking/method/View?mi=Kn90pV0CpEaOPMa_SixTuQ".into()
            }
        );
        assert_eq!((c.records, c.ignored, c.rejected), (3, 2, 0));
    }

    #[test]
    fn real_message_trace_is_inbound() {
        let Some(p) = real("elastic-exo-message-trace.ndjson") else {
            return;
        };
        let (items, _) = read_all(p);
        let recs = records(&items);
        assert_eq!(recs.len(), 1);
        let Record::Email(e) = &recs[0] else { panic!() };
        assert_eq!(e.schema, Schema::MessageTrace);
        assert_eq!(e.ts_us, 1_662_401_413_490_765); // 2022-09-05T18:10:13.4907658 (UTC)
        assert_eq!(
            e.kind,
            EmailKind::Message {
                direction: Direction::Inbound,
                sender: "azure-noreply@microsoft.com".into(),
                recipient: "linus@wildsecurity.onmicrosoft.com".into(),
                subject: "PIM: A privileged directory role was assigned outside of PIM".into(),
                sender_ip: ip("81.2.69.144"),
                delivery: Some("Delivered".into()),
            }
        );
    }

    #[test]
    fn bad_lines_are_rejected_with_their_line_and_good_ones_kept() {
        let dir = TempDir::new("bad");
        let p = dir.path("mixed.ndjson");
        let mut data = Vec::new();
        data.extend_from_slice(send(1).as_bytes()); // 1
        data.extend_from_slice(b"{\"CreationTime\": oops}\n"); // 2
        data.extend_from_slice(send(3).as_bytes()); // 3
        data.extend_from_slice(&vec![b'x'; MAX_LINE_TEST]); // 4: too long
        data.push(b'\n');
        data.extend_from_slice(send(5).as_bytes()); // 5
        data.extend_from_slice(b"\x00\xff\xfe garbage \x89PNG\r\n"); // 6
        data.extend_from_slice(b"{\"Operation\":\"Send\",\"UserId\":\"a@b.c\"}\n"); // 7
        data.extend_from_slice(
            b"{\"Operation\":\"Send\",\"UserId\":\"a@b.c\",\"CreationTime\":5}\n",
        ); // 8
        data.extend_from_slice(b"\n   \n"); // 9, 10: blank
        data.extend_from_slice(send(11).as_bytes()); // 11
        data.extend_from_slice(b"{\"CreationTime\":\"2024-03-20T10:00:00\",\"Operation\""); // 12: cut
        fs::write(&p, &data).unwrap();
        let mut src = FileSource::new(vec![p.clone()], None);
        let tailing = drain(&mut src, false);
        assert_eq!(ids(&tailing), ["1", "3", "5", "11"]);
        let at = |line: u32| format!("{}:{line}", p.display());
        let want_tail = vec![
            (
                at(2),
                "invalid JSON at column 18: expected value".to_owned(),
            ),
            (at(4), "line longer than 10 MiB".to_owned()),
            (at(6), "invalid JSON at column 1: expected value".to_owned()),
            (at(7), "missing field CreationTime".to_owned()),
            (at(8), "CreationTime: not a string".to_owned()),
        ];
        assert_eq!(rejected(&tailing), want_tail);
        // The cut last line is only taken at the end of the replay.
        let mut last = Vec::new();
        src.finish(&mut |i| last.push(i));
        assert_eq!(
            rejected(&last),
            vec![(
                at(12),
                "invalid JSON at column 49: EOF while parsing an object".to_owned()
            )]
        );
        let c = src.counters();
        assert_eq!((c.records, c.rejected), (4, 6));
        assert_eq!(c.bytes, data.len() as u64);
    }

    const MAX_LINE_TEST: usize = parse::MAX_LINE + 1;

    #[test]
    fn restart_from_a_checkpoint_neither_loses_nor_repeats() {
        let dir = TempDir::new("restart");
        let (a, b) = (dir.path("a.ndjson"), dir.path("b.csv"));
        let mut all_a = String::new();
        for n in 0..50 {
            all_a.push_str(&send(n));
        }
        let header = "Operation,UserId,CreationTime,Id\n";
        let row = |n: u32| format!("Send,\"u{n}@contoso.com\",2024-03-20T10:00:00,{n}\n");
        // First run: half of a (the half ends in the middle of a line) and part of b.
        let half = all_a.len() / 2 + 7;
        fs::write(&a, &all_a.as_bytes()[..half]).unwrap();
        fs::write(&b, format!("{header}{}{}Send,\"u10", row(100), row(101))).unwrap();
        let roots = vec![a.clone(), b.clone()];
        let mut first = FileSource::new(roots.clone(), None);
        let got1 = drain(&mut first, false);
        let cp = first.checkpoint();
        drop(first);
        let json = serde_json::to_string(&cp).unwrap();
        let cp: Checkpoint = serde_json::from_str(&json).unwrap();
        // Meanwhile both files grow.
        append(&a, &all_a.as_bytes()[half..]);
        append(
            &b,
            format!("2@contoso.com\",2024-03-20T10:00:00,102\n{}", row(103)).as_bytes(),
        );
        let mut second = FileSource::new(roots.clone(), Some(cp));
        let got2 = drain(&mut second, true);
        let mut union = ids(&got1);
        union.extend(ids(&got2));
        let mut once = FileSource::new(roots, None);
        let mut reference = ids(&drain(&mut once, true));
        assert_eq!(reference.len(), 54);
        assert_eq!(
            ids(&got1).len(),
            27,
            "the first run stopped in the middle of both files"
        );
        union.sort();
        reference.sort();
        assert_eq!(union, reference, "same records, none twice");
        assert_eq!(rejected(&got2), vec![]);
        // Line numbers continue after the restart.
        fs::write(&a, format!("{all_a}not json\n")).unwrap();
        let mut third = FileSource::new(vec![a.clone()], Some(second.checkpoint()));
        let got3 = drain(&mut third, true);
        assert_eq!(ids(&got3), Vec::<String>::new());
        assert_eq!(
            rejected(&got3),
            vec![(
                format!("{}:51", a.display()),
                "invalid JSON at column 2: expected ident".to_owned()
            )]
        );
    }

    #[test]
    fn a_checkpoint_for_a_different_file_with_the_same_inode_is_not_trusted() {
        let dir = TempDir::new("reuse");
        let p = dir.path("a.ndjson");
        fs::write(&p, format!("{}{}", send(1), send(2))).unwrap();
        let mut src = FileSource::new(vec![p.clone()], None);
        assert_eq!(ids(&drain(&mut src, false)), ["1", "2"]);
        let mut cp = src.checkpoint();
        assert_eq!(cp.files.len(), 1);
        assert_eq!(cp.files[0].offset, fs::metadata(&p).unwrap().len());
        cp.files[0].head_hash ^= 1; // as if the inode now held other content
        let mut again = FileSource::new(vec![p], Some(cp));
        assert_eq!(ids(&drain(&mut again, false)), ["1", "2"]);
    }

    #[test]
    fn tailing_reads_appended_lines_and_waits_for_half_written_ones() {
        let dir = TempDir::new("tail");
        let p = dir.path("live.ndjson");
        let mut src = FileSource::new(vec![p.clone()], None);
        assert!(
            drain(&mut src, false).is_empty(),
            "missing file: nothing yet"
        );
        let line = send(1);
        let (head, tail) = line.split_at(30);
        append(&p, head.as_bytes());
        assert!(
            drain(&mut src, false).is_empty(),
            "half a line is not consumed"
        );
        assert_eq!(src.checkpoint().files[0].offset, 0);
        append(&p, tail.as_bytes());
        assert_eq!(ids(&drain(&mut src, false)), ["1"]);
        append(&p, format!("{}{}", send(2), &send(3)[..10]).as_bytes());
        assert_eq!(ids(&drain(&mut src, false)), ["2"]);
        append(&p, &send(3).as_bytes()[10..]);
        assert_eq!(ids(&drain(&mut src, false)), ["3"]);
        assert!(drain(&mut src, true).is_empty());
        let cp = src.checkpoint();
        assert_eq!(
            (cp.files[0].offset, cp.files[0].line),
            (fs::metadata(&p).unwrap().len(), 4)
        );
    }

    #[test]
    fn rotation_finishes_the_old_file_then_reads_the_new_one_from_zero() {
        let dir = TempDir::new("rotate");
        let p = dir.path("live.ndjson");
        fs::write(&p, send(1)).unwrap();
        let mut src = FileSource::new(vec![p.clone()], None);
        assert_eq!(ids(&drain(&mut src, false)), ["1"]);
        // The writer adds to the old file, which is then renamed; a new file takes the name.
        append(&p, format!("{}{}", send(2), send(3).trim_end()).as_bytes());
        fs::rename(&p, dir.path("live.ndjson.1")).unwrap();
        fs::write(&p, send(4)).unwrap();
        assert_eq!(ids(&drain(&mut src, false)), ["2", "3", "4"]);
        assert_eq!(src.counters().rotations, 1);
        // Truncated in place (copytruncate): read again from 0.
        fs::write(&p, "").unwrap();
        assert!(drain(&mut src, false).is_empty());
        append(&p, send(5).as_bytes());
        assert_eq!(ids(&drain(&mut src, false)), ["5"]);
        assert_eq!(src.counters().truncations, 1);
        // Rewritten with other content grown past the read position between two polls.
        fs::write(&p, format!("{}{}", send(6), send(7))).unwrap();
        assert_eq!(ids(&drain(&mut src, false)), ["6", "7"]);
        assert_eq!(src.counters().truncations, 2);
    }

    #[test]
    fn directories_are_read_in_name_order_with_new_and_renamed_files() {
        let dir = TempDir::new("dir");
        fs::write(dir.path("b.ndjson"), send(2)).unwrap();
        fs::write(dir.path("a.ndjson"), send(1)).unwrap();
        fs::write(dir.path(".hidden"), send(99)).unwrap();
        fs::create_dir(dir.path("sub")).unwrap();
        fs::write(dir.path("sub/c.ndjson"), send(98)).unwrap();
        let mut src = FileSource::new(vec![dir.0.clone()], None);
        assert_eq!(ids(&drain(&mut src, false)), ["1", "2"]);
        fs::write(dir.path("c.ndjson"), send(3)).unwrap();
        append(&dir.path("a.ndjson"), send(4).as_bytes());
        assert_eq!(ids(&drain(&mut src, false)), ["4", "3"]);
        // Renamed within the directory: the position follows the file.
        append(&dir.path("b.ndjson"), send(5).as_bytes());
        fs::rename(dir.path("b.ndjson"), dir.path("b.ndjson.1")).unwrap();
        fs::write(dir.path("b.ndjson"), send(6)).unwrap();
        assert_eq!(ids(&drain(&mut src, false)), ["5", "6"]);
        // Deleted: forgotten.
        fs::remove_file(dir.path("a.ndjson")).unwrap();
        drain(&mut src, false);
        assert_eq!(src.counters().files, 3);
        assert_eq!(src.checkpoint().files.len(), 3);
    }

    #[test]
    fn the_file_cap_refuses_and_counts() {
        let dir = TempDir::new("cap");
        for n in 0..5 {
            fs::write(dir.path(&format!("{n}.ndjson")), send(n)).unwrap();
        }
        let mut src = FileSource::new(vec![dir.0.clone()], None).with_max_files(3);
        assert_eq!(ids(&drain(&mut src, false)), ["0", "1", "2"]);
        assert_eq!((src.counters().files, src.counters().files_refused), (3, 2));
    }

    #[test]
    fn a_document_is_read_once_complete() {
        let dir = TempDir::new("doc");
        let p = dir.path("export.json");
        let doc = format!(
            "[\n  {},\n  {}\n]\n",
            send(1).trim_end(),
            send(2).trim_end()
        );
        let (head, tail) = doc.split_at(doc.len() / 2);
        fs::write(&p, head).unwrap();
        let mut src = FileSource::new(vec![p.clone()], None);
        assert!(drain(&mut src, false).is_empty());
        append(&p, tail.as_bytes());
        assert_eq!(ids(&drain(&mut src, false)), ["1", "2"]);
        // A second pretty-printed value after it, cut short: rejected at the end with its line.
        append(
            &p,
            b"{\n  \"CreationTime\": \"2024-03-20T10:00:00\",\n  \"Oper",
        );
        assert!(drain(&mut src, false).is_empty());
        let mut last = Vec::new();
        src.finish(&mut |i| last.push(i));
        assert_eq!(
            rejected(&last),
            vec![(
                format!("{}:5", p.display()),
                "invalid JSON at line 7 column 7: EOF while parsing a string".to_owned()
            )]
        );
    }

    #[test]
    fn a_malformed_document_stops_its_file_after_the_good_values() {
        let dir = TempDir::new("baddoc");
        let p = dir.path("export.json");
        fs::write(
            &p,
            format!(
                "{{\"records\": [\n{}]}}\n{{\n  \"a\": ]\n}}\n{}",
                send(1).trim_end(),
                send(2)
            ),
        )
        .unwrap();
        let mut src = FileSource::new(vec![p.clone()], None);
        let items = drain(&mut src, true);
        assert_eq!(ids(&items), ["1"]);
        assert_eq!(
            rejected(&items),
            vec![(
                format!("{}:3", p.display()),
                "invalid JSON at line 4 column 8: expected value".to_owned()
            )]
        );
    }

    #[test]
    fn a_csv_row_split_across_writes_waits_for_its_end() {
        let dir = TempDir::new("csvtail");
        let p = dir.path("activity.csv");
        fs::write(&p, "\u{feff}Operation,UserId,CreationTime,Parameters\r\n").unwrap();
        let mut src = FileSource::new(vec![p.clone()], None);
        assert!(drain(&mut src, false).is_empty());
        append(
            &p,
            b"New-InboxRule,a@b.c,2024-03-20T10:00:00,\"[\r\n {\"\"Name\"\": \"\"Name\"\",\r\n",
        );
        assert!(
            drain(&mut src, false).is_empty(),
            "row not finished: newline is quoted"
        );
        append(
            &p,
            b"  \"\"Value\"\": \"\"x\"\"}]\"\r\nSend,b@b.c,2024-03-20T10:00:01,\r\n",
        );
        let recs = records(&drain(&mut src, false));
        assert_eq!(recs.len(), 2);
        assert!(matches!(&saas(&recs[0]).kind, SaasKind::InboxRule { name, .. } if name == "x"));
        assert_eq!(saas(&recs[1]).user, "b@b.c");
        assert_eq!(src.checkpoint().files[0].line, 6);
    }

    #[test]
    fn ndjson_whose_first_line_was_cut_is_still_read_line_by_line() {
        let dir = TempDir::new("cutfirst");
        let p = dir.path("a.log");
        fs::write(
            &p,
            format!("{{\"CreationTime\":\"2024\n{}{}", send(1), send(2)),
        )
        .unwrap();
        let mut src = FileSource::new(vec![p.clone()], None);
        let items = drain(&mut src, false);
        assert_eq!(ids(&items), ["1", "2"]);
        assert_eq!(
            rejected(&items),
            vec![(
                format!("{}:1", p.display()),
                "invalid JSON at column 21: EOF while parsing a string".to_owned()
            )]
        );
    }

    #[test]
    fn an_array_of_one_record_per_line_is_a_document() {
        let dir = TempDir::new("arraydoc");
        let p = dir.path("a.json");
        fs::write(
            &p,
            format!("[\n{},\n{}\n]", send(1).trim_end(), send(2).trim_end()),
        )
        .unwrap();
        let mut src = FileSource::new(vec![p], None);
        let items = drain(&mut src, false);
        assert_eq!(ids(&items), ["1", "2"]);
        assert_eq!(rejected(&items), vec![]);
    }

    #[test]
    fn a_first_line_too_long_to_hold_is_skipped_without_rereading() {
        let dir = TempDir::new("hugefirst");
        let p = dir.path("a.ndjson");
        let mut data = b"{\"a\":\"".to_vec();
        data.resize(MAX_LINE_TEST + 5, b'x');
        fs::write(&p, &data).unwrap();
        let mut src = FileSource::new(vec![p.clone()], None);
        assert!(drain(&mut src, false).is_empty(), "still no newline");
        let read = src.counters().bytes;
        assert_eq!(read, data.len() as u64, "read once");
        assert!(drain(&mut src, false).is_empty());
        assert_eq!(src.counters().bytes, read, "not read again");
        append(&p, format!("\n{}", send(1)).as_bytes());
        let items = drain(&mut src, false);
        assert_eq!(ids(&items), ["1"]);
        assert_eq!(
            rejected(&items),
            vec![(
                format!("{}:1", p.display()),
                "line longer than 10 MiB".to_owned()
            )]
        );
    }

    #[test]
    fn a_document_too_long_is_rejected_once_and_its_file_skipped() {
        let dir = TempDir::new("hugedoc");
        let p = dir.path("big.json");
        let mut f = File::create(&p).unwrap();
        f.write_all(b"[\n{\n\"Operation\":\n").unwrap();
        let blanks = b"  \n".repeat(512 * 1024);
        for _ in 0..=MAX_DOCUMENT / blanks.len() {
            f.write_all(&blanks).unwrap();
        }
        f.write_all(format!("{}]\n", send(1).trim_end()).as_bytes())
            .unwrap();
        drop(f);
        let mut src = FileSource::new(vec![p.clone()], None);
        let mut items = drain(&mut src, false);
        append(&p, send(2).as_bytes());
        items.extend(drain(&mut src, true));
        assert_eq!(ids(&items), Vec::<String>::new());
        assert_eq!(
            rejected(&items),
            vec![(
                format!("{}:1", p.display()),
                "JSON document longer than 64 MiB".to_owned()
            )]
        );
        assert_eq!(
            src.checkpoint().files[0].offset,
            fs::metadata(&p).unwrap().len()
        );
    }
}
