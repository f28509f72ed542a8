//! systemd's notification protocol (`sd_notify`): READY, STATUS, WATCHDOG, RELOADING and
//! STOPPING datagrams to the socket named by `$NOTIFY_SOCKET` (a path, or `@name` for an
//! abstract socket). Written by hand: the protocol is one datagram of `KEY=value` lines, and the
//! crates that wrap it pull in a C library or `unsafe` for no gain. Without `$NOTIFY_SOCKET`
//! (not run by systemd) every call does nothing.
//!
//! The socket is non-blocking: when the receiver does not read (its queue holds only a few
//! datagrams), a notification is dropped and counted, and the capture loop that sends them
//! never waits.

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// A handle on the notification socket.
pub struct Notifier {
    sock: Option<(UnixDatagram, SocketAddr)>,
    /// Notifications dropped because the receiver's queue was full (or it was gone).
    dropped: std::cell::Cell<u64>,
}

impl Notifier {
    /// From `$NOTIFY_SOCKET`; inert when it is absent or unusable.
    pub fn from_env() -> Self {
        Notifier {
            sock: std::env::var_os("NOTIFY_SOCKET").and_then(|p| open(&p.to_string_lossy())),
            dropped: Default::default(),
        }
    }

    /// A notifier for the socket at `path` (tests).
    pub fn to_path(path: &str) -> Self {
        Notifier {
            sock: open(path),
            dropped: Default::default(),
        }
    }

    pub fn is_active(&self) -> bool {
        self.sock.is_some()
    }

    /// Sends raw `KEY=value` lines without waiting; a failure (queue full, systemd
    /// restarting) drops the notification and counts it.
    pub fn send(&self, msg: &str) {
        if let Some((s, addr)) = &self.sock
            && s.send_to_addr(msg.as_bytes(), addr).is_err()
        {
            self.dropped.set(self.dropped.get() + 1);
        }
    }

    /// Notifications dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.get()
    }

    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)));
    }

    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={}", one_line(status)));
    }

    pub fn watchdog(&self) {
        self.send("WATCHDOG=1");
    }

    /// Reload start (systemd 253+ wants MONOTONIC_USEC too; older ones ignore it).
    pub fn reloading(&self) {
        let mono = monotonic_usec();
        self.send(&format!("RELOADING=1\nMONOTONIC_USEC={mono}"));
    }

    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }
}

fn one_line(s: &str) -> String {
    s.replace('\n', " ")
}

fn open(path: &str) -> Option<(UnixDatagram, SocketAddr)> {
    let addr = if let Some(name) = path.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        SocketAddr::from_abstract_name(name.as_bytes()).ok()?
    } else if path.starts_with('/') {
        SocketAddr::from_pathname(path).ok()?
    } else {
        return None;
    };
    let sock = UnixDatagram::unbound().ok()?;
    sock.set_nonblocking(true).ok()?;
    Some((sock, addr))
}

/// CLOCK_MONOTONIC in microseconds, read from /proc/uptime's clock (close enough for systemd's
/// reload bookkeeping, which only orders events).
fn monotonic_usec() -> u64 {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|t| {
            t.split_whitespace()
                .next()
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map(|s| (s * 1e6) as u64)
        .unwrap_or(0)
}

/// Half of `$WATCHDOG_USEC` when the watchdog is enabled for this process (`$WATCHDOG_PID`
/// unset or ours): how often to send WATCHDOG=1.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.parse::<u32>().ok() != Some(std::process::id())
    {
        return None;
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_to_a_path_socket() {
        let dir = std::env::temp_dir().join(format!("cw-notify-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let server = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::to_path(path.to_str().unwrap());
        assert!(n.is_active());
        n.ready("capturing on eth1\nsecond line");
        let mut buf = [0u8; 256];
        let len = server.recv(&mut buf).unwrap();
        assert_eq!(
            std::str::from_utf8(&buf[..len]).unwrap(),
            "READY=1\nSTATUS=capturing on eth1 second line"
        );
        n.watchdog();
        let len = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"WATCHDOG=1");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_receiver_that_does_not_read_never_blocks_the_sender() {
        let dir = std::env::temp_dir().join(format!("cw-notify-full-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("n.sock");
        let _ = std::fs::remove_file(&path);
        let _server = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::to_path(path.to_str().unwrap());
        // Far more than a unix datagram queue holds (net.unix.max_dgram_qlen, 10 by default).
        for _ in 0..1000 {
            n.status("capturing");
        }
        assert!(n.dropped() > 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn inert_without_socket() {
        let n = Notifier::to_path("relative/is/invalid");
        assert!(!n.is_active());
        n.ready("nothing happens");
    }
}
