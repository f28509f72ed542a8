//! `crosswire run` as an appliance service, in a network namespace this test creates: privileges
//! dropped after the capture opens (and capture still working), systemd notifications on a
//! socket the test owns, the metrics and health endpoint, the EVE file reopened on SIGHUP, and a
//! clean exit 0 with final stats on SIGTERM. Needs root and `ip netns`; skips visibly otherwise.

use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{bin, root, tempdir};

struct Netns(String);

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl std::ops::Deref for KillOnDrop {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn sh(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn http_get(ns: &str, port: u16, path: &str) -> String {
    // The endpoint listens inside the namespace: connect from there (bash's /dev/tcp).
    let script = format!(
        "exec 3<>/dev/tcp/127.0.0.1/{port}; printf 'GET {path} HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n' >&3; cat <&3"
    );
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "bash", "-c", &script])
        .output()
        .expect("run bash");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Parses the exposition text with the Prometheus project's Python client parser when it is
/// installed (CI installs it).
fn check_with_prometheus_parser(response: &str) {
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    let dir = tempdir();
    let f = dir.join("metrics.txt");
    std::fs::write(&f, body).expect("write metrics");
    let script = "import sys\nfrom prometheus_client.parser import text_string_to_metric_families as p\n\
                  fams = list(p(open(sys.argv[1]).read()))\n\
                  names = {s.name for f in fams for s in f.samples}\n\
                  assert 'crosswire_capture_packets_total' in names, names\n\
                  assert 'crosswire_intel_breach_threshold' in names, names\n\
                  print(len(fams))\n";
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(&f)
        .output();
    match out {
        Ok(o) if o.status.success() => {
            println!(
                "prometheus parser: {} metric families",
                String::from_utf8_lossy(&o.stdout).trim()
            );
        }
        Ok(o) if String::from_utf8_lossy(&o.stderr).contains("No module named") => {
            eprintln!("SKIPPED: prometheus_client not installed; metrics text not parsed");
        }
        Ok(o) => panic!(
            "metrics do not parse: {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => eprintln!("SKIPPED: python3 unavailable ({e})"),
    }
}

/// Sends a capture onto the namespace's veth (the service captures on its peer).
fn replay_into(ns: &str, capture: &std::path::Path) -> bool {
    let capture = capture.to_string_lossy();
    sh(&[
        "ip",
        "netns",
        "exec",
        ns,
        "tcpreplay",
        "-q",
        "-i",
        "vb",
        &capture,
    ])
}

fn wait_for(mut f: impl FnMut() -> bool, secs: u64) -> bool {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(secs) {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn run_drops_privileges_notifies_serves_metrics_and_stops_cleanly() {
    let is_root = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
    if !is_root || !sh(&["ip", "netns", "list"]) || !sh(&["which", "tcpreplay"]) {
        eprintln!("SKIPPED: needs root, ip netns and tcpreplay");
        return;
    }
    let ns = Netns(format!("cwsvc{}", std::process::id()));
    assert!(sh(&["ip", "netns", "add", &ns.0]), "create netns");
    for cmd in [
        vec!["ip", "-n", &ns.0, "link", "set", "lo", "up"],
        vec![
            "ip", "-n", &ns.0, "link", "add", "va", "type", "veth", "peer", "name", "vb",
        ],
        vec!["ip", "-n", &ns.0, "link", "set", "va", "up"],
        vec!["ip", "-n", &ns.0, "link", "set", "vb", "up"],
    ] {
        assert!(sh(&cmd), "{cmd:?}");
    }
    let dir = tempdir();
    // The unprivileged user must reach the output and state directories.
    let _ = Command::new("chmod").args(["0777"]).arg(&dir).status();
    let eve = dir.join("eve.json");
    let port = 19_000 + (std::process::id() % 1000) as u16;
    let cfg = dir.join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[capture]\ninterface = \"va\"\n[output]\neve = {eve:?}\nstats_interval = \"1s\"\n\
             [state]\ndir = {:?}\n[service]\nuser = \"nobody\"\nmetrics_listen = \"127.0.0.1:{port}\"\n",
            dir.join("state")
        ),
    )
    .expect("write config");
    let notify_path = dir.join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).expect("notify socket");
    let _ = Command::new("chmod")
        .args(["0777"])
        .arg(&notify_path)
        .status();
    notify
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let child = Command::new("ip")
        .args(["netns", "exec", &ns.0])
        .arg(bin())
        .args(["run", "--config"])
        .arg(&cfg)
        .env("NOTIFY_SOCKET", &notify_path)
        // A file, not a pipe nobody reads until the end: a full pipe would block the service.
        .stderr(std::fs::File::create(dir.join("stderr.log")).expect("stderr log"))
        .spawn()
        .expect("start crosswire run");
    // A failed assertion must not leave the service running.
    let mut child = KillOnDrop(child);
    // READY=1 arrives once the capture is open and privileges are dropped.
    let mut buf = [0u8; 512];
    let n = notify.recv(&mut buf).expect("a notification");
    let first = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(first.contains("READY=1"), "first notification: {first}");
    // From here on a reader keeps the notification queue drained, as systemd does (crosswire
    // drops notifications rather than wait when nobody reads).
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    {
        let sock = notify.try_clone().expect("clone notify socket");
        let seen = seen.clone();
        let _ = sock.set_read_timeout(Some(Duration::from_millis(200)));
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            let t0 = std::time::Instant::now();
            while t0.elapsed() < Duration::from_secs(300) {
                if let Ok(n) = sock.recv(&mut buf)
                    && let Ok(mut v) = seen.lock()
                {
                    v.push(String::from_utf8_lossy(&buf[..n]).into_owned());
                }
            }
        });
    }
    let pid = child.id();
    // `ip netns exec` execs crosswire: same pid.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    assert!(
        field("Uid:").starts_with("65534"),
        "runs as nobody: {}",
        field("Uid:")
    );
    assert_eq!(field("CapEff:"), "0000000000000000");
    assert_eq!(field("CapBnd:"), "0000000000000000");
    // Still capturing after the drop.
    let demo = root().join("captures/demo.pcap");
    assert!(replay_into(&ns.0, &demo), "tcpreplay into the namespace");
    assert!(
        wait_for(
            || {
                let m = http_get(&ns.0, port, "/metrics");
                m.contains("crosswire_app_layer_events_total{proto=\"dns\"}")
            },
            10
        ),
        "metrics show decoded events"
    );
    let m = http_get(&ns.0, port, "/metrics");
    assert!(m.starts_with("HTTP/1.1 200 OK"), "{m}");
    assert!(m.contains("crosswire_capture_kernel_drops_total 0"), "{m}");
    assert!(http_get(&ns.0, port, "/health").contains("\"ok\""));
    check_with_prometheus_parser(&m);
    let metric = |name: &str| -> Option<f64> {
        let m = http_get(&ns.0, port, "/metrics");
        m.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    };
    assert_eq!(metric("crosswire_intel_breach_threshold"), Some(60.0));
    // SIGHUP with a changed threshold: picked up without a restart.
    let base_cfg = std::fs::read_to_string(&cfg).expect("config");
    std::fs::write(&cfg, format!("{base_cfg}[intel]\nbreach_threshold = 77\n")).expect("write");
    assert!(sh(&["kill", "-HUP", &pid.to_string()]));
    assert!(
        wait_for(
            || metric("crosswire_intel_breach_threshold") == Some(77.0),
            10
        ),
        "new threshold applied after SIGHUP"
    );
    assert_eq!(metric("crosswire_service_config_reloads_total"), Some(1.0));
    // A bad configuration is rejected and the running one stays.
    std::fs::write(
        &cfg,
        format!("{base_cfg}[intel]\nbreach_threshold = 77\nno_such_key = 1\n"),
    )
    .expect("write");
    assert!(sh(&["kill", "-HUP", &pid.to_string()]));
    assert!(
        wait_for(
            || metric("crosswire_service_config_reload_failures_total") == Some(1.0),
            20
        ),
        "bad configuration counted as rejected; metrics:\n{}\nservice log:\n{}",
        http_get(&ns.0, port, "/metrics")
            .lines()
            .filter(|l| l.contains("reload") || l.starts_with("HTTP"))
            .collect::<Vec<_>>()
            .join("\n"),
        std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default()
    );
    assert_eq!(metric("crosswire_intel_breach_threshold"), Some(77.0));
    std::fs::write(&cfg, &base_cfg).expect("restore config");
    // logrotate: move the file away, SIGHUP, new events go to a new file.
    let rotated = dir.join("eve.json.1");
    std::fs::rename(&eve, &rotated).expect("rotate");
    assert!(sh(&["kill", "-HUP", &pid.to_string()]));
    std::thread::sleep(Duration::from_millis(300));
    assert!(replay_into(&ns.0, &demo), "tcpreplay into the namespace");
    assert!(
        wait_for(|| eve.exists(), 10),
        "EVE file reopened after SIGHUP"
    );
    // SIGTERM: exit 0, final stats last.
    assert!(sh(&["kill", "-TERM", &pid.to_string()]));
    let t = Instant::now();
    let code = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "crosswire did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let err = std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
    assert!(code.success(), "exit status {code:?}: {err}");
    let text = std::fs::read_to_string(&eve).expect("new EVE file");
    let last = text.lines().last().unwrap_or_default();
    assert!(
        last.contains("\"event_type\":\"stats\"") && last.contains("\"final\":true"),
        "{last}"
    );
    assert!(
        text.contains("\"event_type\":\"dns\""),
        "events after the reopen"
    );
    // STOPPING=1 was among the notifications.
    std::thread::sleep(Duration::from_millis(500));
    let saw_stopping = seen
        .lock()
        .map(|v| v.iter().any(|m| m.contains("STOPPING=1")))
        .unwrap_or(false);
    assert!(saw_stopping, "STOPPING=1 sent");
    let _ = std::io::stdout().flush();
}

/// The Debian package: built from the tested binary, installed, checked, removed and purged.
/// Changes the machine, so it runs only in CI (`CI=true`) or with `CROSSWIRE_TEST_DEB=1`.
#[test]
fn deb_installs_and_removes_cleanly() {
    let wanted = std::env::var("CI").is_ok_and(|v| v == "true")
        || std::env::var("CROSSWIRE_TEST_DEB").is_ok_and(|v| v == "1");
    if !wanted || !sh(&["cargo", "deb", "--version"]) || !sh(&["which", "dpkg"]) {
        eprintln!("SKIPPED: deb test runs in CI (needs cargo-deb, dpkg, root)");
        return;
    }
    let out = Command::new("cargo")
        .args(["deb", "--no-build", "--no-strip", "--output"])
        .arg(tempdir().join("crosswire.deb"))
        .current_dir(root())
        .output()
        .expect("cargo deb");
    assert!(
        out.status.success(),
        "cargo deb: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deb = String::from_utf8_lossy(&out.stdout)
        .trim()
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    assert!(deb.ends_with(".deb"), "package path: {deb}");
    assert!(sh(&["dpkg", "-i", &deb]), "dpkg -i");
    let check = Command::new("/usr/bin/crosswire")
        .args(["check-config", "/etc/crosswire/crosswire.toml"])
        .status()
        .expect("installed binary");
    assert!(check.success(), "installed example config validates");
    assert!(
        sh(&["getent", "passwd", "crosswire"]),
        "service user created"
    );
    for d in [
        "/var/lib/crosswire",
        "/var/log/crosswire",
        "/usr/lib/systemd/system/crosswire.service",
    ] {
        assert!(std::path::Path::new(d).exists(), "{d} installed");
    }
    assert!(sh(&["dpkg", "-r", "crosswire"]), "dpkg -r");
    assert!(
        !std::path::Path::new("/usr/bin/crosswire").exists(),
        "binary removed"
    );
    assert!(
        std::path::Path::new("/etc/crosswire/crosswire.toml").exists(),
        "config kept on remove"
    );
    assert!(sh(&["dpkg", "-P", "crosswire"]), "dpkg -P");
    assert!(
        !std::path::Path::new("/etc/crosswire/crosswire.toml").exists(),
        "config purged"
    );
    assert!(
        !std::path::Path::new("/var/lib/crosswire").exists(),
        "state purged"
    );
    assert!(
        !sh(&["getent", "passwd", "crosswire"]),
        "user removed on purge"
    );
}
