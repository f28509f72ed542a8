//! End-to-end tests: the `crosswire` binary replays captures and its EVE output is checked.
//!
//! The oracle tests compare crosswire's DNS queries and answers, TLS ClientHellos and HTTP
//! requests with the tshark oracle (`*.expected.tsv`) beside each capture: the project's own
//! `captures/` always, and the public real-capture set in `../shared/captures/real` when it is
//! there (a fresh clone has none: those tests say so and pass).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

mod bindings;
mod cli;
mod flood;
mod intel;
mod live;
mod saas;
mod service;

pub(crate) fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_crosswire")
}

pub(crate) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub(crate) fn shared_real() -> Option<PathBuf> {
    let p = root().join("../shared/captures/real");
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!(
            "SKIPPED: {} is absent (a fresh clone has no ../shared); only the project's own \
             captures are checked",
            p.display()
        );
        None
    }
}

/// Replays `path` and returns the EVE lines, the exit status and stderr.
pub(crate) fn replay(
    path: &Path,
    extra: &[&str],
) -> (Vec<Value>, std::process::ExitStatus, String) {
    let dir = tempdir();
    let eve = dir.join("eve.json");
    let out = Command::new(bin())
        .arg("replay")
        .arg(path)
        .arg("--eve")
        .arg(&eve)
        .args(extra)
        .output()
        .expect("run crosswire");
    let text = std::fs::read_to_string(&eve).unwrap_or_default();
    let lines = text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("bad EVE line {l}: {e}"))
        })
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    (
        lines,
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub(crate) fn tempdir() -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "crosswire-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&d).expect("tempdir");
    d
}

/// One comparable item: kind plus its values, lower-cased where the oracle says case differs.
type Item = (String, Vec<String>);

/// rrtype mnemonic -> number, from crosswire's own table.
fn rrtype_numbers() -> HashMap<String, u16> {
    (0..=u16::MAX)
        .map(|t| (crosswire::decode::dns::rrtype_name(t).into_owned(), t))
        .collect()
}

/// Types for which the oracle fills `rdata`.
fn oracle_has_rdata(t: u16) -> bool {
    matches!(t, 1 | 2 | 5 | 6 | 12 | 15 | 16 | 28 | 33)
}

/// tshark writes a placeholder such as `<Name contains a pointer that loops>` where it cannot
/// decode a name; the oracle README says a sensor should flag an error there instead.
fn is_placeholder(name: &str) -> bool {
    name.starts_with('<') && name.ends_with('>')
}

/// The oracle's comparable items and how many rows are undecodable-name placeholders.
fn oracle_items(tsv: &Path) -> (Vec<Item>, usize) {
    let text = std::fs::read_to_string(tsv).expect("read oracle");
    let mut items = Vec::new();
    let mut placeholders = 0;
    for line in text.lines() {
        if line.starts_with('#') || line.starts_with("frame_number") || line.is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        let col = |i: usize| cols.get(i).copied().unwrap_or("").to_string();
        if matches!(cols.get(1).copied(), Some("dns_query" | "dns_answer"))
            && is_placeholder(&col(2))
        {
            placeholders += 1;
            continue;
        }
        match cols.get(1).copied() {
            Some("dns_query") => {
                items.push(("dns_query".into(), vec![col(2).to_lowercase(), col(4)]))
            }
            Some("dns_answer") => {
                let t: u16 = col(5).parse().unwrap_or(0);
                let rdata = if oracle_has_rdata(t) {
                    col(4).to_lowercase()
                } else {
                    String::new()
                };
                items.push((
                    "dns_answer".into(),
                    vec![col(2).to_lowercase(), col(5), rdata],
                ));
            }
            Some("tls_sni") => items.push(("tls".into(), vec![col(2).to_lowercase(), col(3)])),
            Some("http_request") => {
                items.push(("http".into(), vec![col(2), col(3), col(4), col(5)]))
            }
            _ => {}
        }
    }
    (items, placeholders)
}

/// DNS decode errors counted in the final `stats` event.
fn dns_errors(lines: &[Value]) -> u64 {
    lines
        .iter()
        .rfind(|l| l["event_type"] == "stats")
        .and_then(|s| s["stats"]["app_layer"]["errors"].as_object().cloned())
        .map(|m| {
            m.iter()
                .filter(|(k, _)| k.starts_with("dns."))
                .map(|(_, v)| v.as_u64().unwrap_or(0))
                .sum()
        })
        .unwrap_or(0)
}

fn eve_items(lines: &[Value], types: &HashMap<String, u16>) -> Vec<Item> {
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    let mut items = Vec::new();
    for ev in lines {
        match ev["event_type"].as_str() {
            Some("dns") => {
                let d = &ev["dns"];
                let num = |v: &Value| {
                    types
                        .get(v.as_str().unwrap_or(""))
                        .copied()
                        .unwrap_or(0)
                        .to_string()
                };
                if d["type"] == "request" {
                    for q in d["queries"].as_array().into_iter().flatten() {
                        items.push((
                            "dns_query".into(),
                            vec![s(&q["rrname"]).to_lowercase(), num(&q["rrtype"])],
                        ));
                    }
                } else {
                    for a in d["answers"].as_array().into_iter().flatten() {
                        let t: u16 = num(&a["rrtype"]).parse().unwrap_or(0);
                        let rdata = if oracle_has_rdata(t) {
                            s(&a["rdata"]).to_lowercase()
                        } else {
                            String::new()
                        };
                        items.push((
                            "dns_answer".into(),
                            vec![s(&a["rrname"]).to_lowercase(), t.to_string(), rdata],
                        ));
                    }
                }
            }
            Some("tls") => {
                let t = &ev["tls"];
                items.push((
                    "tls".into(),
                    vec![s(&t["sni"]).to_lowercase(), s(&t["ja3"]["hash"])],
                ));
            }
            Some("http") => {
                let h = &ev["http"];
                items.push((
                    "http".into(),
                    vec![
                        s(&h["http_method"]),
                        s(&h["hostname"]),
                        s(&h["url"]),
                        s(&h["http_user_agent"]),
                    ],
                ));
            }
            _ => {}
        }
    }
    items
}

#[derive(Default, Debug, Clone, Copy)]
struct Score {
    expected: usize,
    got: usize,
    matched: usize,
}

impl Score {
    fn recall(&self) -> f64 {
        if self.expected == 0 {
            1.0
        } else {
            self.matched as f64 / self.expected as f64
        }
    }
    fn precision(&self) -> f64 {
        if self.got == 0 {
            1.0
        } else {
            self.matched as f64 / self.got as f64
        }
    }
}

fn compare(expected: &[Item], got: &[Item]) -> (Score, Vec<Item>, Vec<Item>) {
    let mut want: HashMap<&Item, usize> = HashMap::new();
    for i in expected {
        *want.entry(i).or_default() += 1;
    }
    let mut extra = Vec::new();
    let mut matched = 0;
    for i in got {
        match want.get_mut(i) {
            Some(n) if *n > 0 => {
                *n -= 1;
                matched += 1;
            }
            _ => extra.push(i.clone()),
        }
    }
    let missing = want
        .into_iter()
        .flat_map(|(i, n)| std::iter::repeat_n(i.clone(), n))
        .collect();
    (
        Score {
            expected: expected.len(),
            got: got.len(),
            matched,
        },
        missing,
        extra,
    )
}

/// Files where the oracle is tshark's best effort on frames it flags malformed; crosswire may
/// legitimately report fewer or other items there (see the captures README, quirk 9).
const ORACLE_MALFORMED: &[&str] = &[
    "zeek-dns-edns-ecs-bad-malformed",
    "zeek-dns-loc-invalid-length-malformed",
];

fn oracle_run(dir: &Path) -> (Score, Vec<String>) {
    let types = rrtype_numbers();
    let mut total = Score::default();
    let mut low = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("list captures")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("pcap" | "pcapng")
            )
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no captures in {}", dir.display());
    println!(
        "{:<55} {:>5} {:>5} {:>5} {:>7} {:>7}",
        "capture", "want", "got", "match", "recall", "prec"
    );
    for f in &files {
        let stem = f
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("")
            .to_string();
        let tsv = f.with_file_name(format!("{stem}.expected.tsv"));
        if !tsv.exists() {
            continue;
        }
        let (expected, placeholders) = oracle_items(&tsv);
        let (lines, status, stderr) = replay(f, &["--workers", "2"]);
        assert!(
            status.success(),
            "{}: crosswire failed: {stderr}",
            f.display()
        );
        if placeholders > 0 {
            let errors = dns_errors(&lines);
            println!(
                "    {placeholders} undecodable names in the oracle; crosswire counted {errors} DNS errors"
            );
            assert!(
                errors > 0,
                "{stem}: undecodable names must be counted as DNS errors"
            );
        }
        let got = eve_items(&lines, &types);
        let (score, missing, extra) = compare(&expected, &got);
        println!(
            "{:<55} {:>5} {:>5} {:>5} {:>7.3} {:>7.3}",
            stem,
            score.expected,
            score.got,
            score.matched,
            score.recall(),
            score.precision()
        );
        for m in missing.iter().take(5) {
            println!("    missing {m:?}");
        }
        for x in extra.iter().take(5) {
            println!("    extra   {x:?}");
        }
        if ORACLE_MALFORMED.contains(&stem.as_str()) {
            continue;
        }
        total.expected += score.expected;
        total.got += score.got;
        total.matched += score.matched;
        if score.recall() < 0.95 || score.precision() < 0.95 {
            low.push(stem);
        }
    }
    println!(
        "TOTAL want {} got {} matched {} recall {:.4} precision {:.4}",
        total.expected,
        total.got,
        total.matched,
        total.recall(),
        total.precision()
    );
    (total, low)
}

/// The bar: 99% recall and precision over all files, no file below 95%.
fn assert_agreement(total: &Score, low: &[String]) {
    assert!(
        total.recall() >= 0.99,
        "recall {:.4} below 0.99",
        total.recall()
    );
    assert!(
        total.precision() >= 0.99,
        "precision {:.4} below 0.99",
        total.precision()
    );
    assert!(low.is_empty(), "files below 95%: {low:?}");
}

#[test]
fn oracle_agreement_real_captures() {
    let Some(dir) = shared_real() else {
        return;
    };
    let (total, low) = oracle_run(&dir);
    assert_agreement(&total, &low);
}

#[test]
fn oracle_agreement_own_captures() {
    let dir = root().join("captures");
    let (total, low) = oracle_run(&dir);
    assert!(total.expected > 0, "own captures have no oracle rows");
    assert_agreement(&total, &low);
}
