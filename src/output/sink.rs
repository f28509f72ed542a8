//! Where EVE lines go: standard output, a file (reopened on request for logrotate, or rotated by
//! size), or syslog (RFC 5424 over a unix datagram socket, one event per message).
//!
//! A sink never stops the pipeline: a failed write (disk full, file removed, syslog daemon
//! restarting) is counted, the line is dropped, and the sink retries opening its target at most
//! once per [`RETRY_EVERY`] until it works again.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often a broken target is reopened.
pub const RETRY_EVERY: Duration = Duration::from_secs(1);
/// Largest syslog message sent (longer events are cut, and counted).
pub const MAX_SYSLOG_MESSAGE: usize = 64 * 1024;

/// Where to write.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Stdout,
    /// A file, appended to; rotated to `<path>.1` (older ones shifted, `keep` kept) when it
    /// exceeds `rotate_bytes` (0 = never; reopen on SIGHUP instead).
    File {
        path: PathBuf,
        rotate_bytes: u64,
        keep: u32,
    },
    /// A syslog socket such as /dev/log.
    Syslog {
        socket: PathBuf,
    },
}

/// Sink counters for `stats`.
#[derive(Debug, Default, Clone, Copy)]
pub struct SinkCounters {
    pub write_errors: u64,
    pub dropped_lines: u64,
    pub reopens: u64,
    pub rotations: u64,
    pub truncated: u64,
}

enum Open {
    Stdout(BufWriter<io::Stdout>),
    File(BufWriter<File>, u64),
    Syslog(UnixDatagram),
}

/// A line-oriented writer over a [`Target`].
pub struct Sink {
    target: Target,
    open: Option<Open>,
    last_try: Option<Instant>,
    /// Set (e.g. by SIGHUP) to reopen the file at the next line.
    reopen: Arc<AtomicBool>,
    pub counters: SinkCounters,
    hostname: String,
    unavailable: crate::service::ratelimit::Limiter,
}

impl Sink {
    /// Opens the target; an error here (bad path) is returned so that startup fails loudly.
    pub fn open(target: Target, reopen: Arc<AtomicBool>) -> io::Result<Sink> {
        let mut s = Sink {
            target,
            open: None,
            last_try: None,
            reopen,
            counters: SinkCounters::default(),
            hostname: hostname(),
            unavailable: Default::default(),
        };
        s.open = Some(s.connect()?);
        Ok(s)
    }

    fn connect(&self) -> io::Result<Open> {
        Ok(match &self.target {
            Target::Stdout => Open::Stdout(BufWriter::with_capacity(1 << 20, io::stdout())),
            Target::File { path, .. } => {
                let f = OpenOptions::new().create(true).append(true).open(path)?;
                let len = f.metadata().map(|m| m.len()).unwrap_or(0);
                Open::File(BufWriter::with_capacity(1 << 20, f), len)
            }
            Target::Syslog { socket } => {
                let s = UnixDatagram::unbound()?;
                s.connect(socket)?;
                Open::Syslog(s)
            }
        })
    }

    fn ensure_open(&mut self) -> bool {
        if self.reopen.swap(false, Ordering::Relaxed) {
            if let Some(Open::File(w, _)) = &mut self.open {
                let _ = w.flush();
            }
            self.open = None;
            self.last_try = None;
            self.counters.reopens += 1;
        }
        if self.open.is_some() {
            return true;
        }
        if self.last_try.is_some_and(|t| t.elapsed() < RETRY_EVERY) {
            return false;
        }
        self.last_try = Some(Instant::now());
        match self.connect() {
            Ok(o) => {
                self.open = Some(o);
                true
            }
            Err(e) => {
                crate::warn_limited!(self.unavailable, error = %e, target = ?self.target, "EVE output unavailable; retrying");
                false
            }
        }
    }

    /// Writes one EVE line (with its trailing newline).
    pub fn line(&mut self, line: &[u8]) {
        if !self.ensure_open() {
            self.counters.dropped_lines += 1;
            return;
        }
        self.rotate_if_needed(line.len() as u64);
        let ok = match &mut self.open {
            Some(Open::Stdout(w)) => w.write_all(line).is_ok(),
            Some(Open::File(w, len)) => {
                *len += line.len() as u64;
                w.write_all(line).is_ok()
            }
            Some(Open::Syslog(s)) => {
                let msg = syslog_message(&self.hostname, line, &mut self.counters.truncated);
                s.send(&msg).is_ok()
            }
            None => false,
        };
        if !ok {
            self.counters.write_errors += 1;
            self.counters.dropped_lines += 1;
            self.open = None;
        }
    }

    fn rotate_if_needed(&mut self, add: u64) {
        let Target::File {
            path,
            rotate_bytes,
            keep,
        } = &self.target
        else {
            return;
        };
        let Some(Open::File(w, len)) = &mut self.open else {
            return;
        };
        if *rotate_bytes == 0 || *len + add <= *rotate_bytes || *len == 0 {
            return;
        }
        let _ = w.flush();
        rotate_files(path, *keep);
        self.counters.rotations += 1;
        self.open = None;
        self.last_try = None;
        if let Ok(o) = self.connect() {
            self.open = Some(o);
        }
    }

    /// Flushes buffered lines; a failure is counted and the target reopened later.
    pub fn flush(&mut self) {
        let ok = match &mut self.open {
            Some(Open::Stdout(w)) => w.flush().is_ok(),
            Some(Open::File(w, _)) => w.flush().is_ok(),
            _ => true,
        };
        if !ok {
            self.counters.write_errors += 1;
            self.open = None;
        }
    }
}

/// Lines reach a sink as whole `write_all` calls from the output thread (one call per EVE line),
/// so `write` takes each call as one line.
impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.line(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Sink::flush(self);
        Ok(())
    }
}

fn rotate_files(path: &Path, keep: u32) {
    let name = |i: u32| {
        let mut p = path.as_os_str().to_owned();
        p.push(format!(".{i}"));
        PathBuf::from(p)
    };
    let keep = keep.max(1);
    let _ = std::fs::remove_file(name(keep));
    for i in (1..keep).rev() {
        let _ = std::fs::rename(name(i), name(i + 1));
    }
    let _ = std::fs::rename(path, name(1));
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or_else(|| "-".into())
}

/// RFC 5424: `<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG`, facility local5 (21), severity
/// informational (6). The EVE line (JSON, no newline) is the message.
fn syslog_message(host: &str, line: &[u8], truncated: &mut u64) -> Vec<u8> {
    let body = line.strip_suffix(b"\n").unwrap_or(line);
    let body = if body.len() > MAX_SYSLOG_MESSAGE {
        *truncated += 1;
        body.get(..MAX_SYSLOG_MESSAGE).unwrap_or(body)
    } else {
        body
    };
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ");
    let mut m = format!(
        "<174>1 {now} {host} crosswire {} eve - ",
        std::process::id()
    )
    .into_bytes();
    m.extend_from_slice(body);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory, removed when the test ends.
    fn tmp(name: &str) -> crate::testutil::TempDir {
        crate::testutil::TempDir::new(&format!("sink-{name}"))
    }

    #[test]
    fn file_reopens_after_logrotate_moves_it() {
        let d = tmp("reopen");
        let path = d.path().join("eve.json");
        let flag = Arc::new(AtomicBool::new(false));
        let mut s = Sink::open(
            Target::File {
                path: path.clone(),
                rotate_bytes: 0,
                keep: 1,
            },
            flag.clone(),
        )
        .unwrap();
        s.line(b"{\"a\":1}\n");
        s.flush();
        std::fs::rename(&path, d.path().join("eve.json.old")).unwrap();
        flag.store(true, Ordering::Relaxed);
        s.line(b"{\"b\":2}\n");
        s.flush();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"b\":2}\n");
        assert_eq!(
            std::fs::read_to_string(d.path().join("eve.json.old")).unwrap(),
            "{\"a\":1}\n"
        );
        assert_eq!(s.counters.reopens, 1);
    }

    #[test]
    fn file_rotates_by_size() {
        let d = tmp("rotate");
        let path = d.path().join("eve.json");
        let mut s = Sink::open(
            Target::File {
                path: path.clone(),
                rotate_bytes: 20,
                keep: 2,
            },
            Arc::new(AtomicBool::new(false)),
        )
        .unwrap();
        for i in 0..6 {
            s.line(format!("{{\"n\":{i:05}}}\n").as_bytes());
        }
        s.flush();
        assert!(s.counters.rotations >= 2);
        assert!(
            path.exists()
                && d.path().join("eve.json.1").exists()
                && d.path().join("eve.json.2").exists()
        );
        assert!(!d.path().join("eve.json.3").exists());
    }

    #[test]
    fn unwritable_target_is_counted_and_retried() {
        let d = tmp("gone");
        let path = d.path().join("sub").join("eve.json");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut s = Sink::open(
            Target::File {
                path: path.clone(),
                rotate_bytes: 0,
                keep: 1,
            },
            Arc::new(AtomicBool::new(false)),
        )
        .unwrap();
        // The directory disappears: reopening fails, lines are dropped and counted.
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
        s.open = None;
        s.line(b"x\n");
        assert_eq!(s.counters.dropped_lines, 1);
        // It comes back: after the retry interval the sink writes again.
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        s.last_try = Some(Instant::now() - RETRY_EVERY);
        s.line(b"y\n");
        s.flush();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "y\n");
    }

    #[test]
    fn syslog_messages_are_rfc5424() {
        let d = tmp("syslog");
        let sock = d.path().join("log");
        let server = UnixDatagram::bind(&sock).unwrap();
        let mut s = Sink::open(
            Target::Syslog { socket: sock },
            Arc::new(AtomicBool::new(false)),
        )
        .unwrap();
        s.line(b"{\"event_type\":\"dns\"}\n");
        let mut buf = [0u8; 512];
        let n = server.recv(&mut buf).unwrap();
        let m = std::str::from_utf8(&buf[..n]).unwrap();
        assert!(m.starts_with("<174>1 "), "{m}");
        assert!(
            m.ends_with(" crosswire ".to_owned().as_str()) || m.contains(" crosswire "),
            "{m}"
        );
        assert!(m.ends_with("eve - {\"event_type\":\"dns\"}"), "{m}");
    }
}
