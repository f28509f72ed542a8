//! Plain English for incidents: the summary paragraph, one-line timeline entries and the
//! recommended actions, all from fixed templates filled with the breaches' own facts.
//!
//! The summary tells the story in time order, names the device, user, domain, IP and times,
//! and links steps with relative times ("One minute later", "The next day", "On 20 March").
//! It stays short: several devices visiting the same domain become one sentence, the two rule
//! models about one inbox rule become one sentence, and past [`MAX_SENTENCES`] the rest is
//! summed up in a closing sentence. Facts come from the breach reasons (domain age, first
//! sighting, rule actions); unknown models get a generic sentence. Everything here is pure
//! formatting over bounded input (timeline entries are capped and their strings clipped by the
//! engine): no panics, output bounded by the caps.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::IpAddr;

use chrono::{DateTime, Utc};

use super::case::Entry;
use super::{
    ANOMALOUS_RULE, EMAIL_LINK, LOGIN_AND_RULE, LOGIN_AND_UPDATE, OUTBOUND_SPIKE, UNUSUAL_SOURCE,
    clip, is_joinable_external_ip,
};
use crate::models::{DGA_ACTIVITY, MULTIPLE_DEVICES, SSL_C2, SUSPICIOUS_DOMAIN};

/// Sentences in a summary, the closing "N further events" one included.
pub const MAX_SENTENCES: usize = 8;
/// Recommended actions per incident.
pub const MAX_ACTIONS: usize = 16;
/// Items named in one list ("block a, b and c"); the rest are counted.
pub const MAX_LISTED: usize = 8;
/// Longest one-line timeline summary (bytes).
pub const MAX_LINE: usize = 240;
/// Suspicious-domain visits of one domain this close together form one group sentence.
const GROUP_GAP_US: u64 = 6 * 3_600_000_000;

const RULE_FOLDERS: [&str; 6] = [
    "RSS Feeds",
    "RSS Subscriptions",
    "Conversation History",
    "Archive",
    "Deleted Items",
    "Junk Email",
];

fn utc(ts_us: u64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(i64::try_from(ts_us / 1_000_000).ok()?, 0)
}

fn fmt(ts_us: u64, pattern: &str) -> String {
    utc(ts_us).map_or_else(String::new, |t| t.format(pattern).to_string())
}

/// "18 March".
fn day(ts_us: u64) -> String {
    fmt(ts_us, "%-d %B")
}

/// "14:02".
fn hm(ts_us: u64) -> String {
    fmt(ts_us, "%H:%M")
}

/// How long after `prev` the step at `cur` happened, as a sentence opener.
fn relative(prev: u64, cur: u64) -> String {
    let secs = cur.saturating_sub(prev) / 1_000_000;
    let (p, c) = (utc(prev), utc(cur));
    let same_day = matches!((p, c), (Some(p), Some(c)) if p.date_naive() == c.date_naive());
    let next_day =
        matches!((p, c), (Some(p), Some(c)) if p.date_naive().succ_opt() == Some(c.date_naive()));
    let minutes = (secs + 30) / 60;
    let hours = (secs + 1800) / 3600;
    match secs {
        0..45 => "Moments later".to_string(),
        45..90 => "One minute later".to_string(),
        _ if minutes < 60 => format!("{minutes} minutes later"),
        _ if (same_day || secs < 6 * 3600) && hours <= 1 => "One hour later".to_string(),
        _ if same_day || secs < 6 * 3600 => format!("{hours} hours later"),
        _ if next_day => "The next day".to_string(),
        _ => format!("On {}", day(cur)),
    }
}

/// "a, b and c" (at most [`MAX_LISTED`] named, then "and N more").
fn list(items: &[String]) -> String {
    let shown: Vec<&str> = items.iter().take(MAX_LISTED).map(String::as_str).collect();
    let rest = items.len().saturating_sub(shown.len());
    match (shown.as_slice(), rest) {
        ([], _) => String::new(),
        ([one], 0) => (*one).to_string(),
        (many, 0) => {
            let (last, head) = many.split_last().map_or((&"", &[][..]), |(l, h)| (l, h));
            format!("{} and {last}", head.join(", "))
        }
        (many, n) => format!("{} and {n} more", many.join(", ")),
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// Age and novelty of a domain from its breach reasons: "registered 4 days earlier and never
/// seen before here".
fn domain_facts(reasons: &[String]) -> Option<String> {
    let mut facts = Vec::new();
    for r in reasons {
        let lower = r.to_lowercase();
        if let Some(rest) = lower.strip_prefix("registered ") {
            let rest = rest.split(" (").next().unwrap_or(rest).trim();
            if rest == "0 days ago" || rest == "today" || rest.starts_with("0 ") {
                facts.push("registered that same day".to_string());
            } else {
                facts.push(format!("registered {}", rest.replace(" ago", " earlier")));
            }
        } else if lower.starts_with("first seen on this network") || lower.contains("never seen") {
            facts.push("never seen before here".to_string());
        }
    }
    facts.dedup();
    (!facts.is_empty()).then(|| facts.join(" and "))
}

/// What an inbox rule does, from the rule models' reasons.
fn rule_facts<'a>(reasons: impl Iterator<Item = &'a String>) -> Option<String> {
    let (mut read, mut folder, mut delete, mut forward) = (false, None, false, false);
    for r in reasons {
        let l = r.to_lowercase();
        read |= l.contains("markasread") || (l.contains("mark") && l.contains("read"));
        delete |= l.contains("delete") && !l.contains("deleteoutlookrulesblob");
        forward |= l.contains("forward") || l.contains("redirect");
        if folder.is_none() {
            folder = RULE_FOLDERS
                .iter()
                .find(|f| l.contains(&f.to_lowercase()))
                .copied();
        }
    }
    let mut facts = Vec::new();
    if read {
        facts.push("marks mail as read".to_string());
    }
    if let Some(f) = folder {
        facts.push(format!("moves it to {f}"));
    }
    if delete && folder != Some("Deleted Items") {
        facts.push("deletes it".to_string());
    }
    if forward {
        facts.push("forwards it outside the organisation".to_string());
    }
    (!facts.is_empty()).then(|| facts.join(" and "))
}

/// What the summary has already named, so later sentences can say "that same IP".
#[derive(Default)]
struct Said {
    ips: BTreeSet<IpAddr>,
    users: Vec<String>,
    devices: BTreeSet<IpAddr>,
    rules: BTreeSet<(String, String)>,
}

impl Said {
    fn device(&mut self, e: &Entry) -> String {
        let Some(d) = &e.device else {
            return e.main_entity();
        };
        let first = self.devices.insert(d.ip);
        match &d.hostname {
            Some(h) if first => format!("{} ({h})", d.ip),
            _ => d.ip.to_string(),
        }
    }

    fn account(&mut self, user: Option<&String>) -> String {
        let Some(u) = user else {
            return "the account".to_string();
        };
        if !self.users.contains(u) {
            self.users.push(u.clone());
            return format!("the Microsoft 365 account {u}");
        }
        if self.users.len() == 1 {
            "the account".to_string()
        } else {
            format!("the account {u}")
        }
    }

    fn ip(&mut self, ip: IpAddr) -> String {
        if self.ips.insert(ip) {
            ip.to_string()
        } else {
            format!("the same IP ({ip})")
        }
    }
}

/// One sentence of the story.
struct Step {
    ts: u64,
    /// Last time the sentence covers (for the next relative time).
    until: u64,
    /// The sentence carries its own absolute time: no relative opener.
    timed: bool,
    text: String,
}

/// Suspicious-domain visits of one domain close in time, by several devices.
struct Group {
    domain: String,
    members: Vec<usize>,
    last: u64,
}

fn groups(entries: &[Entry]) -> Vec<Group> {
    let mut out: Vec<Group> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if e.model != SUSPICIOUS_DOMAIN {
            continue;
        }
        let domain = e
            .domain
            .clone()
            .or_else(|| e.fqdn.clone())
            .unwrap_or_default();
        match out
            .iter_mut()
            .rev()
            .find(|g| g.domain == domain && e.ts <= g.last.saturating_add(GROUP_GAP_US))
        {
            Some(g) => {
                g.members.push(i);
                g.last = g.last.max(e.last);
            }
            None => out.push(Group {
                domain,
                members: vec![i],
                last: e.last,
            }),
        }
    }
    out
}

/// The summary paragraph for a time-ordered timeline.
pub(crate) fn summary(entries: &[Entry]) -> String {
    let groups = groups(entries);
    let grouped: Vec<Option<usize>> = (0..entries.len())
        .map(|i| groups.iter().position(|g| g.members.contains(&i)))
        .collect();
    let mut said = Said::default();
    let mut steps: Vec<Step> = Vec::new();
    let mut device_sentences = 0usize;
    let mut group_domains: BTreeSet<&str> = BTreeSet::new();
    for (i, e) in entries.iter().enumerate() {
        let group = grouped
            .get(i)
            .copied()
            .flatten()
            .and_then(|g| groups.get(g));
        if let Some(g) = group {
            let devices: BTreeSet<IpAddr> = g
                .members
                .iter()
                .filter_map(|&m| entries.get(m))
                .flat_map(Entry::device_ips)
                .collect();
            if devices.len() >= 2 {
                if g.members.first() != Some(&i) {
                    continue;
                }
                group_domains.insert(&g.domain);
                let more = if device_sentences > 0 { " more" } else { "" };
                let mut text = format!("{}{more} devices visited {}", devices.len(), g.domain);
                if let Some(f) = domain_facts(&e.reasons) {
                    let _ = write!(text, ", {f},");
                }
                if let Some(ip) = e.ip {
                    let _ = write!(text, " hosted on {}", said.ip(ip));
                }
                let (a, b) = (e.ts, g.last);
                if hm(a) == hm(b) && day(a) == day(b) {
                    let _ = write!(text, ", at {} on {}", hm(a), day(a));
                } else if day(a) == day(b) {
                    let _ = write!(text, ", between {} and {} on {}", hm(a), hm(b), day(a));
                } else {
                    let _ = write!(
                        text,
                        ", between {} {} and {} {}",
                        day(a),
                        hm(a),
                        day(b),
                        hm(b)
                    );
                }
                said.devices.extend(devices);
                device_sentences += 1;
                steps.push(Step {
                    ts: e.ts,
                    until: g.last,
                    timed: true,
                    text: text.replace(",,", ","),
                });
                continue;
            }
        }
        let text = match e.model.as_str() {
            SUSPICIOUS_DOMAIN => {
                device_sentences += 1;
                let mut t = format!(
                    "{} connected to {}",
                    said.device(e),
                    e.fqdn.as_ref().or(e.domain.as_ref()).map_or("", |s| s)
                );
                if let Some(f) = domain_facts(&e.reasons) {
                    let _ = write!(t, ", {f}");
                }
                if let Some(ip) = e.ip {
                    let _ = write!(t, ", hosted on {}", said.ip(ip));
                }
                t
            }
            MULTIPLE_DEVICES => {
                let target = e.domain.clone().or_else(|| e.ip.map(|i| i.to_string()));
                if target.as_deref().is_some_and(|d| group_domains.contains(d)) {
                    continue;
                }
                let n = e.device_ips().count();
                format!(
                    "{n} devices breached the same model for {}",
                    target.unwrap_or_else(|| "the same destination".to_string())
                )
            }
            SSL_C2 => {
                device_sentences += 1;
                let dest = e
                    .fqdn
                    .clone()
                    .or_else(|| e.domain.clone())
                    .or_else(|| e.ip.map(|i| i.to_string()))
                    .unwrap_or_default();
                let mut t = format!("{} made regular TLS connections to {dest}", said.device(e));
                if let (Some(ip), true) = (e.ip, e.fqdn.is_some() || e.domain.is_some()) {
                    let _ = write!(t, ", hosted on {}", said.ip(ip));
                }
                t.push_str(", a command-and-control pattern");
                t
            }
            DGA_ACTIVITY => format!(
                "{} looked up many random-looking names that do not exist, a sign of DGA malware",
                said.device(e)
            ),
            UNUSUAL_SOURCE => {
                let mut t = format!("{} logged in", said.account(e.user.as_ref()));
                if let Some(ip) = e.ip {
                    let known = said.ips.contains(&ip);
                    let _ = write!(
                        t,
                        " from {}",
                        if known {
                            "that same IP".to_string()
                        } else {
                            said.ip(ip)
                        }
                    );
                    if !known && let Some(h) = e.hosts.first() {
                        let _ = write!(t, ", an address that hosts {h}");
                    }
                }
                let novel = e.reasons.iter().any(|r| {
                    let l = r.to_lowercase();
                    l.starts_with("first") && l.contains("login")
                });
                if novel {
                    t.push_str(", a source never seen for this user");
                }
                if e.reasons
                    .iter()
                    .any(|r| r.to_lowercase().contains("travel"))
                {
                    t.push_str(" (impossible travel)");
                }
                t
            }
            LOGIN_AND_UPDATE => {
                let acct = said.account(e.user.as_ref());
                let mfa = e.reasons.iter().any(|r| {
                    let l = r.to_lowercase();
                    l.contains("mfa") || l.contains("authenticator") || l.contains("security info")
                });
                if mfa {
                    format!("a new MFA method was registered on {acct}")
                } else {
                    format!("{acct} was updated after the unusual login")
                }
            }
            ANOMALOUS_RULE | LOGIN_AND_RULE => {
                let user = e.user.clone().unwrap_or_default();
                let rule = e.rule.clone().unwrap_or_default();
                if !said.rules.insert((user.clone(), rule.clone())) {
                    continue;
                }
                let same: Vec<&Entry> = entries
                    .iter()
                    .filter(|x| {
                        (x.model == ANOMALOUS_RULE || x.model == LOGIN_AND_RULE)
                            && x.user.as_deref().unwrap_or("") == user
                            && x.rule.as_deref().unwrap_or("") == rule
                    })
                    .collect();
                let acct = said.account(e.user.as_ref());
                let mut t = format!("an inbox rule named \"{rule}\" was created on {acct}");
                if let Some(ip) = same.iter().find_map(|x| x.ip) {
                    let _ = write!(t, " from {}", said.ip(ip));
                }
                if let Some(f) = rule_facts(same.iter().flat_map(|x| x.reasons.iter())) {
                    let _ = write!(t, " that {f}");
                }
                t
            }
            OUTBOUND_SPIKE => {
                let mut t = format!(
                    "{} sent a burst of outbound mail",
                    said.account(e.user.as_ref())
                );
                if let Some(u) = &e.url {
                    let _ = write!(t, " carrying the link {u}");
                }
                if let Some(r) = e.reasons.first() {
                    let _ = write!(t, " ({r})");
                }
                t
            }
            EMAIL_LINK => {
                let target = e
                    .domain
                    .clone()
                    .or_else(|| e.url.clone())
                    .unwrap_or_default();
                let mut t = format!(
                    "{} received an email linking to {target}",
                    said.account(e.user.as_ref())
                );
                if let Some(f) = domain_facts(&e.reasons) {
                    let _ = write!(t, ", {f}");
                }
                t
            }
            other => match e.main_entity() {
                m if m.is_empty() => format!("{other} breached"),
                m => format!("{other} breached for {m}"),
            },
        };
        steps.push(Step {
            ts: e.ts,
            until: e.last,
            timed: false,
            text,
        });
    }
    render(&steps)
}

fn render(steps: &[Step]) -> String {
    let mut out = String::new();
    let keep = if steps.len() > MAX_SENTENCES {
        MAX_SENTENCES - 1
    } else {
        steps.len()
    };
    let mut prev: Option<u64> = None;
    let mut last_opener = String::new();
    for s in steps.iter().take(keep) {
        let opener = match prev {
            Some(p) if !s.timed => {
                let mut o = relative(p, s.ts);
                // Two "The next day" in a row read as one day: name the second one.
                if o == "The next day" && last_opener == o {
                    o = format!("On {}", day(s.ts));
                }
                o
            }
            _ => String::new(),
        };
        let sentence = match prev {
            None if s.timed => capitalise(&s.text),
            None => format!(
                "On {} at {} UTC, {}",
                fmt(s.ts, "%-d %B %Y"),
                hm(s.ts),
                s.text
            ),
            Some(_) if s.timed => capitalise(&s.text),
            Some(_) => format!("{opener} {}", s.text),
        };
        last_opener = opener;
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&sentence);
        out.push('.');
        prev = Some(prev.map_or(s.until, |p| p.max(s.until)));
    }
    if steps.len() > keep {
        let rest = steps.get(keep..).unwrap_or_default();
        let last = rest.iter().map(|s| s.until).max().unwrap_or(0);
        let _ = write!(
            out,
            " {} further events followed, the last on {} at {} UTC.",
            rest.len(),
            day(last),
            hm(last)
        );
    }
    out
}

/// The one-line summary of a timeline entry.
pub(crate) fn event_line(e: &Entry) -> String {
    let dev = e.main_entity();
    let user = e.user.as_deref().unwrap_or("?");
    let dest = e
        .fqdn
        .clone()
        .or_else(|| e.domain.clone())
        .or_else(|| e.ip.map(|i| i.to_string()))
        .unwrap_or_default();
    let rule = e.rule.as_deref().unwrap_or("");
    let mut line = match e.model.as_str() {
        SUSPICIOUS_DOMAIN => match (e.ip, e.fqdn.is_some() || e.domain.is_some()) {
            (Some(ip), true) => format!("{dev} -> {dest} ({ip})"),
            _ => format!("{dev} -> {dest}"),
        },
        MULTIPLE_DEVICES => format!("{} devices -> {dest}", e.device_ips().count()),
        SSL_C2 => format!("{dev} -> {dest}: regular TLS connections"),
        DGA_ACTIVITY => format!("{dev}: burst of NXDOMAIN answers for random-looking names"),
        UNUSUAL_SOURCE => match e.ip {
            Some(ip) => format!("{user}: login from {ip}"),
            None => format!("{user}: login from an unusual source"),
        },
        LOGIN_AND_UPDATE => format!("{user}: account updated after an unusual login"),
        ANOMALOUS_RULE => match e.ip {
            Some(ip) => format!("{user}: inbox rule \"{rule}\" from {ip}"),
            None => format!("{user}: inbox rule \"{rule}\""),
        },
        LOGIN_AND_RULE => format!("{user}: inbox rule \"{rule}\" after an unusual login"),
        OUTBOUND_SPIKE => format!("{user}: outbound mail spike"),
        EMAIL_LINK => format!(
            "{user}: email link to {}",
            e.domain.as_ref().or(e.url.as_ref()).map_or("?", |s| s)
        ),
        other => format!("{other}: {dev}"),
    };
    if e.folded > 0 {
        let _ = write!(line, " and {} similar", e.folded);
    }
    if let Some(r) = e.reasons.first() {
        let _ = write!(line, " \u{2014} {r}");
    }
    clip(&line, MAX_LINE)
}

fn push(actions: &mut Vec<String>, a: String) {
    if actions.len() < MAX_ACTIONS && !actions.contains(&a) {
        actions.push(a);
    }
}

/// Recommended actions: block infrastructure, then per user, then devices.
pub(crate) fn actions(entries: &[Entry]) -> Vec<String> {
    let mut out = Vec::new();
    let mut block: Vec<String> = Vec::new();
    for e in entries {
        if let Some(d) = e.domain.as_ref().or(e.fqdn.as_ref())
            && !block.contains(d)
        {
            block.push(d.clone());
        }
    }
    for e in entries {
        if let Some(ip) = e.ip.filter(|&ip| is_joinable_external_ip(ip)) {
            let ip = ip.to_string();
            if !block.contains(&ip) {
                block.push(ip);
            }
        }
    }
    if !block.is_empty() {
        push(&mut out, format!("block {}", list(&block)));
    }
    let mut users: Vec<&String> = Vec::new();
    for u in entries.iter().filter_map(|e| e.user.as_ref()) {
        if !users.contains(&u) {
            users.push(u);
        }
    }
    for u in users {
        let mine: Vec<&Entry> = entries
            .iter()
            .filter(|e| e.user.as_ref() == Some(u))
            .collect();
        if mine.iter().any(|e| e.is_account_compromise()) {
            push(
                &mut out,
                format!("reset the password of {u} and revoke its sessions"),
            );
        }
        if let Some(update) = mine.iter().find(|e| e.model == LOGIN_AND_UPDATE) {
            let since = mine
                .iter()
                .filter(|e| e.model == UNUSUAL_SOURCE)
                .map(|e| e.ts)
                .min()
                .unwrap_or(update.ts);
            push(
                &mut out,
                format!(
                    "review the MFA methods registered on {u} since {} {} UTC (the unusual login)",
                    day(since),
                    hm(since)
                ),
            );
        }
        for e in &mine {
            if let (Some(r), true) = (
                &e.rule,
                e.model == ANOMALOUS_RULE || e.model == LOGIN_AND_RULE,
            ) {
                push(
                    &mut out,
                    format!("remove the inbox rule named \"{r}\" from the mailbox of {u}"),
                );
            }
        }
        if mine.iter().any(|e| e.model == OUTBOUND_SPIKE) {
            push(
                &mut out,
                format!("purge the phishing messages sent by {u} and check who received them"),
            );
        }
        for e in mine.iter().filter(|e| e.model == EMAIL_LINK) {
            let target = e.domain.as_ref().or(e.url.as_ref()).map_or("?", |s| s);
            push(
                &mut out,
                format!("purge the email linking to {target} from the mailbox of {u}"),
            );
        }
    }
    let mut devices: Vec<String> = Vec::new();
    for ip in entries
        .iter()
        .filter(|e| e.is_network())
        .flat_map(Entry::device_ips)
    {
        let ip = ip.to_string();
        if !devices.contains(&ip) {
            devices.push(ip);
        }
    }
    if !devices.is_empty() {
        push(&mut out, format!("isolate and inspect {}", list(&devices)));
    }
    out
}

#[cfg(test)]
#[path = "narrative_tests.rs"]
mod tests;
