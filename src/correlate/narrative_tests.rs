//! Narrative tests: relative times, lists, facts from reasons, grouping, sentence cap, actions.
use super::*;
use crate::correlate::case::DeviceRef;

const MIN: u64 = 60_000_000;
const HOUR: u64 = 60 * MIN;
/// 2024-03-18 14:02:00 UTC.
const T0: u64 = 1_710_770_520_000_000;

fn entry(ts: u64, model: &str) -> Entry {
    Entry {
        dedup: 0,
        ts,
        last: ts,
        count: 1,
        model: model.into(),
        score: 80,
        device: None,
        devices: Vec::new(),
        user: None,
        domain: None,
        fqdn: None,
        ip: None,
        url: None,
        rule: None,
        reasons: Vec::new(),
        hosts: Vec::new(),
        folded: 0,
    }
}

fn visit(ts: u64, dev: &str, domain: &str, ip: &str) -> Entry {
    Entry {
        device: Some(DeviceRef {
            ip: dev.parse().unwrap(),
            mac: None,
            hostname: None,
        }),
        domain: Some(domain.into()),
        ip: Some(ip.parse().unwrap()),
        reasons: vec!["registered 2 days ago (whois)".into()],
        ..entry(ts, SUSPICIOUS_DOMAIN)
    }
}

#[test]
fn relative_times_read_naturally() {
    assert_eq!(relative(T0, T0 + 10_000_000), "Moments later");
    assert_eq!(relative(T0, T0 + 58_000_000), "One minute later");
    assert_eq!(relative(T0, T0 + 20 * MIN), "20 minutes later");
    assert_eq!(relative(T0, T0 + 59 * MIN + 50_000_000), "One hour later");
    assert_eq!(relative(T0, T0 + 108 * MIN), "2 hours later");
    // 14:02 -> 10:15 the next morning.
    assert_eq!(relative(T0, T0 + 20 * HOUR + 13 * MIN), "The next day");
    // 23:30 -> 01:30 is two hours, not "the next day".
    let late = T0 + 9 * HOUR + 28 * MIN;
    assert_eq!(relative(late, late + 2 * HOUR), "2 hours later");
    assert_eq!(relative(T0, T0 + 49 * HOUR), "On 20 March");
}

#[test]
fn lists_name_a_few_and_count_the_rest() {
    let items: Vec<String> = (1..=10).map(|i| format!("d{i}")).collect();
    assert_eq!(list(&items[..1]), "d1");
    assert_eq!(list(&items[..2]), "d1 and d2");
    assert_eq!(list(&items[..3]), "d1, d2 and d3");
    assert_eq!(list(&items), "d1, d2, d3, d4, d5, d6, d7, d8 and 2 more");
    assert_eq!(list(&[]), "");
}

#[test]
fn domain_facts_come_from_reasons() {
    let r = |v: &[&str]| domain_facts(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert_eq!(
        r(&[
            "registered 4 days ago (feed)",
            "first seen on this network 0 s ago"
        ])
        .as_deref(),
        Some("registered 4 days earlier and never seen before here")
    );
    assert_eq!(
        r(&["registered 0 days ago (feed)"]).as_deref(),
        Some("registered that same day")
    );
    assert_eq!(r(&["risky TLD .life"]), None);
}

#[test]
fn many_devices_become_one_sentence() {
    let mut v: Vec<Entry> = (0..4)
        .map(|i| {
            visit(
                T0 + i * 10 * MIN,
                &format!("10.0.0.{i}"),
                "bad.top",
                "198.51.100.1",
            )
        })
        .collect();
    let mut md = entry(T0 + HOUR, MULTIPLE_DEVICES);
    md.devices = (0..4)
        .map(|i| format!("10.0.0.{i}").parse().unwrap())
        .collect();
    md.domain = Some("bad.top".into());
    v.push(md);
    let s = summary(&v);
    assert_eq!(
        s,
        "4 devices visited bad.top, registered 2 days earlier, hosted on 198.51.100.1, \
         between 14:02 and 14:32 on 18 March."
    );
}

#[test]
fn long_stories_are_cut_to_a_closing_sentence() {
    let v: Vec<Entry> = (0..12)
        .map(|i| {
            visit(
                T0 + i * 7 * HOUR,
                "10.0.0.9",
                &format!("d{i}.top"),
                "198.51.100.1",
            )
        })
        .collect();
    let s = summary(&v);
    assert_eq!(s.matches(". ").count() + 1, MAX_SENTENCES, "{s}");
    assert!(
        s.ends_with("5 further events followed, the last on 21 March at 19:02 UTC."),
        "{s}"
    );
    assert!(
        s.starts_with("On 18 March 2024 at 14:02 UTC, 10.0.0.9 connected to d0.top"),
        "{s}"
    );
    assert!(
        s.contains("7 hours later 10.0.0.9 connected to d1.top"),
        "{s}"
    );
    assert!(s.contains("hosted on the same IP (198.51.100.1)"), "{s}");
}

#[test]
fn consecutive_days_are_named() {
    let v = vec![
        entry(T0, DGA_ACTIVITY),
        entry(T0 + 20 * HOUR, "Device / Other"),
        entry(T0 + 44 * HOUR, "Device / Other"),
    ];
    let s = summary(&v);
    assert!(
        s.contains(". The next day Device / Other breached. On 20 March Device / Other"),
        "{s}"
    );
}

#[test]
fn rule_facts_describe_what_the_rule_does() {
    let reasons = [
        "MarkAsRead: True".to_string(),
        "MoveToFolder: RSS Feeds".into(),
        "AlwaysDeleteOutlookRulesBlob: False".into(),
        "forwards to attacker@evil.example (another domain)".into(),
    ];
    assert_eq!(
        rule_facts(reasons.iter()).as_deref(),
        Some(
            "marks mail as read and moves it to RSS Feeds and forwards it outside the organisation"
        )
    );
    assert_eq!(rule_facts([].iter()), None);
}

#[test]
fn actions_follow_the_models() {
    let mut login = entry(T0, UNUSUAL_SOURCE);
    login.user = Some("a@example.com".into());
    login.ip = Some("10.9.9.9".parse().unwrap());
    let mut link = entry(T0 + MIN, EMAIL_LINK);
    link.user = Some("b@example.com".into());
    link.domain = Some("bad.top".into());
    let a = actions(&[login, link]);
    assert_eq!(
        a,
        vec![
            "block bad.top",
            "reset the password of a@example.com and revoke its sessions",
            "purge the email linking to bad.top from the mailbox of b@example.com",
        ],
        "private addresses are not blocked; no device, no isolation"
    );
}
