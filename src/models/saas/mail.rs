//! Mail: [`ANOMALOUS_RULE`] (inbox rules scored on a 5-point checklist, `Set-InboxRule`
//! merged into what the rule already did; mailbox forwarding outside the user's domain),
//! [`OUTBOUND_SPIKE`] (a sliding hour of sent mail in 10-minute slots against the user's usual
//! peak hour, or a burst of bounce-backs for one subject) and [`SUSPICIOUS_LINK`] (URL rows
//! joined to inbound message rows on the message id, in either order, each host judged once
//! per message).
//!
//! Limits: [`MAX_PARAMS`] parameters per rule record, 8 addresses per value (from the first
//! 4,096 characters), [`MAX_RULES_PER_USER`] rules, [`MAX_SEND_SLOTS`] slots and
//! [`MAX_SEND_DAYS`] daily peaks, [`MAX_MSG_IDS`] message fingerprints and [`MAX_BOUNCES`]
//! bounces per user; [`MAX_JOIN`] messages waiting at most `join_window_us` of event time,
//! each with [`MAX_JOIN_RECIPIENTS`] recipients and [`MAX_JOIN_URLS`] URLs (more are counted
//! in `trimmed`, not judged).

use super::access::{latest_unusual, login_and_rule};
use super::*;

const SLOT_US: u64 = 10 * MINUTE;
const SLOTS_PER_HOUR: u64 = HOUR / SLOT_US;
const USUAL_PEAK_DAYS: u64 = 28;

/// Folders an attacker hides replies and bounces in.
const HIDING_FOLDERS: [&str; 6] = [
    "rss feeds",
    "rss subscriptions",
    "conversation history",
    "archive",
    "deleted items",
    "junk email",
];

/// Subject starts of non-delivery reports (case-insensitive).
const BOUNCE_PREFIXES: [&str; 12] = [
    "undeliverable:",
    "undelivered:",
    "delivery has failed",
    "mail delivery failed",
    "delivery status notification (failure)",
    "undelivered mail returned to sender",
    "returned mail:",
    "failure notice",
    "message not delivered",
    "delivery failure",
    "non remis :",
    "unzustellbar:",
];

impl SaasModels {
    // -- Inbox rules and forwarding ---------------------------------------------------------

    pub(super) fn rule(
        &mut self,
        ev: &SaasEvent,
        user: &str,
        name: &str,
        params: &[(String, String)],
        out: &mut Vec<ModelBreach>,
    ) {
        let s = &self.settings;
        let st = &mut self.state;
        st.counters.rules += 1;
        let u = user_entry(&mut st.users, &mut st.counters, s.max_users, user);
        u.last_us = u.last_us.max(ev.ts_us);
        u.expire(s);
        let name_lc = clip(name.trim(), MAX_TEXT).to_lowercase();
        // `New-` replaces a rule; `Set-`/`UpdateInboxRules` change only what they name.
        let replace = ev.operation.trim().to_ascii_lowercase().starts_with("new-");
        let at = match u.rules.iter().position(|r| r.name_lc == name_lc) {
            Some(i) => i,
            None => {
                push_capped(
                    &mut u.rules,
                    RuleState {
                        name_lc: name_lc.clone(),
                        last_us: ev.ts_us,
                        actions: RuleActions::default(),
                    },
                    MAX_RULES_PER_USER,
                    &mut st.counters.trimmed,
                );
                u.rules.len().saturating_sub(1)
            }
        };
        let Some(r) = u.rules.get_mut(at) else {
            return;
        };
        r.last_us = r.last_us.max(ev.ts_us);
        if replace {
            r.actions = RuleActions::default();
        }
        apply_params(&mut r.actions, params);
        let scored = score_rule(name, &r.actions, user);
        if scored.points < s.rule_min_points {
            return;
        }
        let shown = clip(name.trim(), MAX_TEXT);
        let mut reasons = vec![format!(
            "{} inbox rule \"{shown}\" scores {} of 5 (threshold {})",
            if replace { "new" } else { "changed" },
            scored.points,
            s.rule_min_points
        )];
        reasons.extend(scored.reasons);
        if let Some(ip) = ev.ip {
            reasons.push(format!("{} from {}", clip(&ev.operation, 40), plain(ip)));
        }
        let finding = Finding {
            key: format!("rule:{name_lc}"),
            rule: Some(shown.clone()),
            what: format!("inbox rule \"{shown}\" ({})", scored.tags.join(", ")),
            score: 25 + 15 * u32::from(scored.points),
            reasons,
        };
        report_anomalous(st, s, ev, user, finding, out);
    }

    pub(super) fn forwarding(
        &mut self,
        ev: &SaasEvent,
        user: &str,
        target: &str,
        out: &mut Vec<ModelBreach>,
    ) {
        let s = &self.settings;
        let st = &mut self.state;
        st.counters.forwardings += 1;
        let external: Vec<String> = addresses(target)
            .into_iter()
            .filter(|a| is_external(a, user))
            .collect();
        let Some(first) = external.first() else {
            return;
        };
        let u = user_entry(&mut st.users, &mut st.counters, s.max_users, user);
        u.last_us = u.last_us.max(ev.ts_us);
        u.expire(s);
        let mut reasons = vec![format!(
            "mailbox forwarding set to {} (outside {})",
            external.join(", "),
            domain_of(user).unwrap_or("the user's domain")
        )];
        if let Some(ip) = ev.ip {
            reasons.push(format!("{} from {}", clip(&ev.operation, 40), plain(ip)));
        }
        let finding = Finding {
            key: format!("fwd:{first}"),
            rule: None,
            what: format!("mailbox forwarding to {first}"),
            score: 75,
            reasons,
        };
        report_anomalous(st, s, ev, user, finding, out);
    }

    // -- Outbound spike ---------------------------------------------------------------------

    pub(super) fn sent(
        &mut self,
        user: &str,
        ts: u64,
        src: usize,
        msg_id: Option<&str>,
        subject: &str,
        out: &mut Vec<ModelBreach>,
    ) {
        let s = &self.settings;
        let st = &mut self.state;
        let u = user_entry(&mut st.users, &mut st.counters, s.max_users, user);
        u.last_us = u.last_us.max(ts);
        u.expire(s);
        let send = &mut u.send;
        if let Some(id) = msg_id {
            // One row per recipient: the same message counts once. Sources have separate id
            // spaces, so the source is part of the fingerprint.
            let h = fnv(id) ^ (src as u64);
            if send.msg_ids.contains(&h) {
                st.counters.send_dedup += 1;
                return;
            }
            push_capped(&mut send.msg_ids, h, MAX_MSG_IDS, &mut st.counters.trimmed);
        }
        st.counters.sends += 1;
        send.first_us = Some(send.first_us.map_or(ts, |f| f.min(ts)));
        let slot = ts / SLOT_US;
        let i = match send.slots.binary_search_by_key(&slot, |x| x.slot) {
            Ok(i) => i,
            Err(0) if send.slots.len() >= MAX_SEND_SLOTS => {
                st.counters.late_sends += 1;
                return;
            }
            Err(i) => {
                send.slots.insert(i, Slot { slot, n: [0; 3] });
                i
            }
        };
        if let Some(x) = send.slots.get_mut(i).and_then(|x| x.n.get_mut(src)) {
            *x = x.saturating_add(1);
        }
        if send.slots.len() > MAX_SEND_SLOTS {
            send.slots.remove(0);
        }
        let hourly = (0..3)
            .map(|k| {
                send.slots
                    .iter()
                    .filter(|x| x.slot <= slot && x.slot + SLOTS_PER_HOUR > slot)
                    .map(|x| x.n.get(k).copied().unwrap_or(0))
                    .fold(0u32, u32::saturating_add)
            })
            .max()
            .unwrap_or(0);
        let today = day_of(ts);
        match send.days.binary_search_by_key(&today, |d| d.0) {
            Ok(i) => {
                if let Some(d) = send.days.get_mut(i) {
                    d.1 = d.1.max(hourly);
                }
            }
            Err(i) => {
                send.days.insert(i, (today, hourly));
                if send.days.len() > MAX_SEND_DAYS {
                    send.days.remove(0);
                }
            }
        }
        let history = send
            .first_us
            .is_some_and(|f| ts >= f.saturating_add(s.spike_history_us));
        if !history {
            return;
        }
        // The usual peak: second-busiest day of the last four weeks, so one earlier burst
        // does not raise the bar.
        let mut peaks: Vec<u32> = send
            .days
            .iter()
            .filter(|d| d.0 < today && u64::from(d.0) + USUAL_PEAK_DAYS >= u64::from(today))
            .map(|d| d.1)
            .collect();
        peaks.sort_unstable_by(|a, b| b.cmp(a));
        let usual = peaks.get(1).or(peaks.first()).copied().unwrap_or(0);
        let threshold = s.spike_min_hourly.max(s.spike_factor.saturating_mul(usual));
        if hourly <= threshold || spike_reported(send, ts, s) {
            return;
        }
        send.reported_us = Some(ts);
        let mut b = new_breach(OUTBOUND_SPIKE, ts, user);
        b.score = 75;
        b.reasons.push(format!(
            "sent {hourly} messages in the last hour; usual peak {usual} per hour over the \
             last {} active days (threshold {threshold})",
            peaks.len()
        ));
        if !subject.is_empty() {
            b.reasons
                .push(format!("latest subject: \"{}\"", clip(subject, MAX_TEXT)));
        }
        emit(&mut st.counters, out, b);
    }

    pub(super) fn bounce(
        &mut self,
        user: &str,
        ts: u64,
        msg_id: &str,
        original: &str,
        out: &mut Vec<ModelBreach>,
    ) {
        let s = &self.settings;
        let st = &mut self.state;
        st.counters.bounces += 1;
        let u = user_entry(&mut st.users, &mut st.counters, s.max_users, user);
        u.last_us = u.last_us.max(ts);
        u.expire(s);
        let subject = fnv(&original.to_lowercase());
        let msg = if msg_id.is_empty() {
            // No id: every record is its own bounce.
            fnv(&st.counters.bounces.to_string()) ^ ts
        } else {
            fnv(msg_id)
        };
        if u.bounces
            .iter()
            .any(|x| x.subject == subject && x.msg == msg)
        {
            return;
        }
        push_capped(
            &mut u.bounces,
            Bounce { ts, subject, msg },
            MAX_BOUNCES,
            &mut st.counters.trimmed,
        );
        let n = u
            .bounces
            .iter()
            .filter(|x| x.subject == subject && x.ts <= ts && ts - x.ts <= s.bounce_window_us)
            .count();
        if n <= s.bounce_min as usize || spike_reported(&u.send, ts, s) {
            return;
        }
        u.send.reported_us = Some(ts);
        let mut b = new_breach(OUTBOUND_SPIKE, ts, user);
        b.score = 70;
        b.reasons.push(format!(
            "{n} bounce-backs for \"{}\" within {}: mail sent as this user is failing in bulk",
            clip(original, MAX_TEXT),
            span(s.bounce_window_us)
        ));
        emit(&mut st.counters, out, b);
    }

    // -- Links ------------------------------------------------------------------------------

    pub(super) fn join_message(
        &mut self,
        msg_id: &str,
        rc: JoinRcpt,
        ctx: &mut dyn Context,
        out: &mut Vec<ModelBreach>,
    ) {
        let s = &self.settings;
        let SaasState {
            join,
            users,
            counters,
            clock_us,
            join_swept_us,
            ..
        } = &mut self.state;
        let Some(j) = join_entry(join, counters, join_swept_us, *clock_us, s, msg_id, rc.ts) else {
            return;
        };
        if j.recipients.iter().any(|x| x.user == rc.user) {
            return;
        }
        if j.recipients.len() >= MAX_JOIN_RECIPIENTS {
            counters.trimmed += 1;
            return;
        }
        for url in j.urls.iter_mut() {
            link_pair(users, counters, s, &rc, url, ctx, out);
        }
        j.recipients.push(rc);
    }

    pub(super) fn join_url(
        &mut self,
        ev: &EmailEvent,
        url: &str,
        domain: &str,
        ctx: &mut dyn Context,
        out: &mut Vec<ModelBreach>,
    ) {
        let s = &self.settings;
        let SaasState {
            join,
            users,
            counters,
            clock_us,
            join_swept_us,
            ..
        } = &mut self.state;
        counters.urls += 1;
        let Some(host) = url_host(domain, url) else {
            counters.skipped += 1;
            return;
        };
        let Some(j) = join_entry(
            join,
            counters,
            join_swept_us,
            *clock_us,
            s,
            &ev.message_id,
            ev.ts_us,
        ) else {
            return;
        };
        let url = clip(url.trim(), MAX_TEXT * 2);
        if j.urls.iter().any(|x| x.url == url) {
            return;
        }
        if j.urls.len() >= MAX_JOIN_URLS {
            counters.trimmed += 1;
            return;
        }
        let mut ju = JoinUrl {
            url,
            host,
            ts: ev.ts_us,
            judged: false,
            verdict: None,
        };
        for rc in &j.recipients {
            link_pair(users, counters, s, rc, &mut ju, ctx, out);
        }
        j.urls.push(ju);
    }
}

// -- Rule scoring ---------------------------------------------------------------------------------

/// An anomalous rule or forwarding, ready to report.
struct Finding {
    key: String,
    rule: Option<String>,
    what: String,
    score: u32,
    reasons: Vec<String>,
}

/// Reports a rule finding once (per key within `rule_dedup_us`) and pairs it with an unusual
/// login of the same user.
fn report_anomalous(
    st: &mut SaasState,
    s: &SaasSettings,
    ev: &SaasEvent,
    user: &str,
    f: Finding,
    out: &mut Vec<ModelBreach>,
) {
    let ts = ev.ts_us;
    let Some(u) = st.users.get_mut(user) else {
        return;
    };
    if u.anomalous
        .iter()
        .any(|a| a.key == f.key && a.ts.abs_diff(ts) <= s.rule_dedup_us)
    {
        st.counters.rule_dedup += 1;
        return;
    }
    let ip = ev.ip.map(plain);
    let mut b = new_breach(ANOMALOUS_RULE, ts, user);
    b.ip = ip;
    b.rule = f.rule.clone();
    b.score = cap_score(f.score);
    b.reasons = f.reasons;
    emit(&mut st.counters, out, b);
    let mut a = Anomalous {
        key: f.key,
        rule: f.rule,
        what: f.what,
        ts,
        ip,
        paired: false,
    };
    if let Some(un) = latest_unusual(&u.unusual, ts, s, |_| true).and_then(|i| u.unusual.get(i)) {
        a.paired = true;
        emit(&mut st.counters, out, login_and_rule(user, un, &a));
    }
    push_capped(&mut u.anomalous, a, MAX_PENDING, &mut st.counters.trimmed);
}

/// A rule's points (of 5), one reason per point, and short tags for summaries.
pub(super) struct RuleScore {
    pub(super) points: u8,
    pub(super) reasons: Vec<String>,
    pub(super) tags: Vec<String>,
}

pub(super) fn score_rule(name: &str, a: &RuleActions, user: &str) -> RuleScore {
    let mut r = RuleScore {
        points: 0,
        reasons: Vec::new(),
        tags: Vec::new(),
    };
    let mut point = |reason: String, tag: &str| {
        r.points += 1;
        r.reasons.push(reason);
        r.tags.push(tag.to_string());
    };
    if let Some(why) = odd_name(name) {
        point(why, "odd name");
    }
    if a.mark_read {
        point("marks incoming messages as read".into(), "marks as read");
    }
    if let Some(f) = &a.folder
        && HIDING_FOLDERS.contains(&f.to_lowercase().as_str())
    {
        point(
            format!("moves messages to \"{f}\", a folder users rarely open"),
            &format!("moves to {f}"),
        );
    }
    if a.delete || a.soft_delete {
        point(
            format!("{}deletes messages", if a.delete { "" } else { "soft-" }),
            "deletes",
        );
    }
    let external: Vec<&String> = a
        .forward
        .iter()
        .flatten()
        .filter(|x| is_external(x, user))
        .take(3)
        .collect();
    if let Some(first) = external.first() {
        let list: Vec<&str> = external.iter().map(|s| s.as_str()).collect();
        point(
            format!(
                "forwards to {} (outside {})",
                list.join(", "),
                domain_of(user).unwrap_or("the user's domain")
            ),
            &format!("forwards to {first}"),
        );
    }
    r
}

/// Why a rule name looks made to be overlooked.
pub(super) fn odd_name(name: &str) -> Option<String> {
    let chars: Vec<char> = name.trim().chars().take(256).collect();
    let shown = clip(name.trim(), 40);
    if chars.is_empty() {
        return Some("the rule has no name".into());
    }
    if chars.iter().all(|c| !c.is_alphanumeric()) {
        return Some(format!("rule name \"{shown}\" is only punctuation"));
    }
    if chars.len() <= 3 {
        return Some(format!(
            "rule name \"{shown}\" is only {} characters",
            chars.len()
        ));
    }
    let h = entropy(&chars);
    (h <= 2.0).then(|| format!("rule name \"{shown}\" is repetitive ({h:.1} bits of entropy)"))
}

/// Shannon entropy (bits per character).
fn entropy(chars: &[char]) -> f64 {
    let mut counts: BTreeMap<char, u32> = BTreeMap::new();
    for c in chars {
        *counts.entry(*c).or_default() += 1;
    }
    let n = chars.len() as f64;
    counts
        .values()
        .map(|&k| {
            let p = f64::from(k) / n;
            -p * p.log2()
        })
        .sum()
}

pub(super) fn apply_params(a: &mut RuleActions, params: &[(String, String)]) {
    let mut forward_seen = [false; 3];
    for (k, v) in params.iter().take(MAX_PARAMS) {
        let k = k.trim().trim_start_matches('-');
        if k.len() > 32 {
            continue;
        }
        match k.to_ascii_lowercase().as_str() {
            "markasread" => a.mark_read = truthy(v),
            "movetofolder" => a.folder = folder_name(v),
            "deletemessage" => a.delete = truthy(v),
            "softdeletemessage" => a.soft_delete = truthy(v),
            other => {
                let slot = match other {
                    "forwardto" => 0,
                    "redirectto" => 1,
                    "forwardasattachmentto" => 2,
                    _ => continue,
                };
                if let (Some(list), Some(seen)) =
                    (a.forward.get_mut(slot), forward_seen.get_mut(slot))
                {
                    // Within one record the values add up; a later record replaces them.
                    if !*seen {
                        list.clear();
                        *seen = true;
                    }
                    for x in addresses(v) {
                        if list.len() < 8 && !list.contains(&x) {
                            list.push(x);
                        }
                    }
                }
            }
        }
    }
}

fn truthy(v: &str) -> bool {
    matches!(
        v.trim()
            .trim_start_matches('$')
            .to_ascii_lowercase()
            .as_str(),
        "true" | "1" | "yes"
    )
}

/// The last path segment of a folder (`\RSS Feeds`, `Inbox/Archive`, `:\Junk Email`).
fn folder_name(v: &str) -> Option<String> {
    let last = v.rsplit(['\\', '/', ':']).next().unwrap_or(v).trim();
    (!last.is_empty()).then(|| clip(last, 64))
}

/// Lower-case addresses in a rule or forwarding value (`a@x.com;b@y.com`,
/// `"Name" [SMTP:a@x.com]`, `smtp:a@x.com`).
pub(super) fn addresses(v: &str) -> Vec<String> {
    let v: String = v.chars().take(4096).collect();
    v.split(|c: char| !(c.is_alphanumeric() || "._%+-@'".contains(c)))
        .filter_map(|t| {
            let t = t.trim_matches(|c| c == '.' || c == '\'');
            let (local, domain) = t.split_once('@')?;
            (!local.is_empty() && domain.contains('.') && !domain.contains('@'))
                .then(|| t.to_lowercase())
        })
        .take(8)
        .collect()
}

fn domain_of(addr: &str) -> Option<&str> {
    addr.rsplit_once('@').map(|x| x.1).filter(|d| !d.is_empty())
}

/// Whether `addr` is outside the user's domain (subdomains are inside).
fn is_external(addr: &str, user: &str) -> bool {
    let Some(d) = domain_of(addr) else {
        return false;
    };
    match domain_of(user) {
        Some(ud) => {
            let d = d.to_ascii_lowercase();
            let ud = ud.to_ascii_lowercase();
            !(d == ud || d.strip_suffix(&ud).is_some_and(|p| p.ends_with('.')))
        }
        None => true,
    }
}

// -- Sent mail and bounces ------------------------------------------------------------------------

fn spike_reported(send: &SendState, ts: u64, s: &SaasSettings) -> bool {
    send.reported_us
        .is_some_and(|r| r.abs_diff(ts) < s.spike_dedup_us)
}

/// The original subject of a non-delivery report, or None when `subject` is not one.
pub(super) fn bounce_subject(subject: &str) -> Option<&str> {
    let t = subject.trim_start();
    BOUNCE_PREFIXES.iter().find_map(|p| {
        let head = t.as_bytes().get(..p.len())?;
        if !head.eq_ignore_ascii_case(p.as_bytes()) {
            return None;
        }
        let rest = t.get(p.len()..)?.trim_start_matches([':', ' ']).trim();
        Some(if rest.is_empty() { t } else { rest })
    })
}

// -- Links ----------------------------------------------------------------------------------------

/// The join entry of a message, created if needed (None when the id is unusable).
fn join_entry<'a>(
    join: &'a mut HashMap<String, Join>,
    counters: &mut Counters,
    swept_us: &mut u64,
    now: u64,
    s: &SaasSettings,
    msg_id: &str,
    ts: u64,
) -> Option<&'a mut Join> {
    let id = msg_id.trim();
    if id.is_empty() || id.len() > MAX_ID_LEN {
        counters.skipped += 1;
        return None;
    }
    // Sweep expired halves now and then (event time).
    if now >= swept_us.saturating_add((s.join_window_us / 4).max(MINUTE)) {
        *swept_us = now;
        let before = join.len();
        join.retain(|_, j| j.last_us.saturating_add(s.join_window_us) >= now);
        counters.join_expired += (before - join.len()) as u64;
    }
    if join
        .get(id)
        .is_some_and(|j| j.last_us.abs_diff(ts) > s.join_window_us)
    {
        join.remove(id);
        counters.join_expired += 1;
    }
    if !join.contains_key(id) {
        counters.evicted_joins += evict_lru(join, MAX_JOIN, |j| j.last_us);
    }
    let j = join.entry(id.to_string()).or_default();
    j.last_us = j.last_us.max(ts);
    Some(j)
}

/// Judges one (recipient, URL) pair of a joined message.
fn link_pair(
    users: &mut HashMap<String, UserState>,
    counters: &mut Counters,
    s: &SaasSettings,
    rc: &JoinRcpt,
    url: &mut JoinUrl,
    ctx: &mut dyn Context,
    out: &mut Vec<ModelBreach>,
) {
    let ts = rc.ts.max(url.ts);
    if !url.judged {
        url.judged = true;
        url.verdict = ctx.judge_domain(&url.host, ts).map(|mut v| {
            v.reasons.truncate(4);
            for r in &mut v.reasons {
                *r = clip(r, MAX_TEXT);
            }
            v
        });
    }
    let Some(v) = &url.verdict else {
        return;
    };
    let u = user_entry(users, counters, s.max_users, &rc.user);
    u.last_us = u.last_us.max(ts);
    u.expire(s);
    if u.links
        .iter()
        .any(|(h, t)| *h == url.host && t.abs_diff(ts) <= s.link_dedup_us)
    {
        counters.link_dedup += 1;
        return;
    }
    push_capped(
        &mut u.links,
        (url.host.clone(), ts),
        MAX_LINKS_PER_USER,
        &mut counters.trimmed,
    );
    let mut b = new_breach(SUSPICIOUS_LINK, ts, &rc.user);
    b.score = v.score.min(100);
    b.url = Some(url.url.clone());
    b.domain = Some(url.host.clone());
    b.fqdn = Some(url.host.clone());
    b.reasons.push(format!(
        "inbound email from {} (subject \"{}\") links to {}",
        rc.sender, rc.subject, url.host
    ));
    b.reasons.extend(v.reasons.iter().cloned());
    emit(counters, out, b);
}

/// The host of a URL row: `UrlDomain` when given, else parsed from the URL.
pub(super) fn url_host(domain: &str, url: &str) -> Option<String> {
    let d = domain.trim().trim_end_matches('.');
    let h = if d.is_empty() { host_of(url)? } else { d };
    let h = h.trim_end_matches('.').to_lowercase();
    let ok = !h.is_empty()
        && h.len() <= 253
        && h.chars().all(|c| c.is_alphanumeric() || ".-_:".contains(c));
    ok.then_some(h)
}

fn host_of(url: &str) -> Option<&str> {
    let rest = url.trim().split_once("://").map_or(url.trim(), |x| x.1);
    let auth = rest.split(['/', '?', '#']).next()?;
    let host = auth.rsplit_once('@').map_or(auth, |x| x.1);
    if let Some(v6) = host.strip_prefix('[') {
        return v6.split_once(']').map(|x| x.0);
    }
    host.split(':').next()
}
