//! Unit tests of `saas`, compiled only as its `#[cfg(test)]` module (see saas.rs).
//! The reference case end to end, a quiet generated month, and each guard on its own.

use std::net::IpAddr;

use super::mail::{addresses, apply_params, bounce_subject, odd_name, score_rule, url_host};
use super::*;
use crate::ingest::record::{
    Direction, EmailEvent, EmailKind, Record, SaasEvent, SaasKind, Schema,
};

// -- Time and record builders ------------------------------------------------------------------

/// UTC date and time to µs since the epoch.
fn at(y: i64, m: i64, d: i64, h: u64, mi: u64, s: u64) -> u64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe - 719_468) as u64;
    (days * 86_400 + h * 3600 + mi * 60 + s) * SEC
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn saas(
    ts: u64,
    schema: Schema,
    user: &str,
    addr: Option<&str>,
    op: &str,
    kind: SaasKind,
) -> Record {
    Record::Saas(SaasEvent {
        ts_us: ts,
        schema,
        id: format!("{op}-{ts}"),
        user: user.into(),
        ip: addr.map(ip),
        operation: op.into(),
        kind,
    })
}

fn login_kind(success: bool, cc: Option<&str>, geo: Option<(f64, f64)>) -> SaasKind {
    SaasKind::Login {
        success,
        error_code: Some(if success { "0" } else { "50126" }.into()),
        country: cc.map(Into::into),
        city: None,
        geo,
        user_agent: None,
        correlation_id: None,
    }
}

/// An Entra sign-in with country and coordinates.
fn signin(ts: u64, user: &str, addr: &str, cc: &str, geo: (f64, f64)) -> Record {
    let k = login_kind(true, Some(cc), Some(geo));
    saas(
        ts,
        Schema::EntraSignin,
        user,
        Some(addr),
        "Sign-in activity",
        k,
    )
}

/// A UAL `UserLoggedIn`: no location in the record.
fn ual_login(ts: u64, user: &str, addr: &str) -> Record {
    let k = login_kind(true, None, None);
    saas(ts, Schema::Ual, user, Some(addr), "UserLoggedIn", k)
}

fn failed(ts: u64, user: &str, addr: &str) -> Record {
    let k = login_kind(false, None, None);
    saas(ts, Schema::Ual, user, Some(addr), "UserLoginFailed", k)
}

fn mfa(
    ts: u64,
    user: &str,
    schema: Schema,
    op: &str,
    counts: (Option<u32>, Option<u32>),
    detail: &str,
) -> Record {
    let k = SaasKind::MfaChange {
        before: counts.0,
        after: counts.1,
        detail: detail.into(),
    };
    saas(ts, schema, user, Some("193.222.96.91"), op, k)
}

fn rule(ts: u64, user: &str, addr: &str, op: &str, name: &str, params: &[(&str, &str)]) -> Record {
    let k = SaasKind::InboxRule {
        name: name.into(),
        params: params
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
    };
    saas(ts, Schema::Ual, user, Some(addr), op, k)
}

const CASE_RULE: [(&str, &str); 6] = [
    ("AlwaysDeleteOutlookRulesBlob", "False"),
    ("Force", "False"),
    ("MoveToFolder", "RSS Feeds"),
    ("Name", "..."),
    ("MarkAsRead", "True"),
    ("StopProcessingRules", "True"),
];

fn message(
    ts: u64,
    id: &str,
    direction: Direction,
    sender: &str,
    rcpt: &str,
    subject: &str,
) -> Record {
    Record::Email(EmailEvent {
        ts_us: ts,
        schema: Schema::EmailEvents,
        message_id: id.into(),
        kind: EmailKind::Message {
            direction,
            sender: sender.into(),
            recipient: rcpt.into(),
            subject: subject.into(),
            sender_ip: None,
            delivery: Some("Delivered".into()),
        },
    })
}

fn url_row(ts: u64, id: &str, url: &str, domain: &str) -> Record {
    Record::Email(EmailEvent {
        ts_us: ts,
        schema: Schema::EmailUrlInfo,
        message_id: id.into(),
        kind: EmailKind::Url {
            url: url.into(),
            domain: domain.into(),
        },
    })
}

// -- A test context ----------------------------------------------------------------------------

#[derive(Default)]
struct World {
    geo: Option<fn(IpAddr) -> Option<Geo>>,
    hints: Vec<(IpAddr, DomainHint)>,
    young: Vec<&'static str>,
    judged: u32,
}

impl Context for World {
    fn suspect_domains_on(&mut self, addr: IpAddr, ts_us: u64) -> Vec<DomainHint> {
        let mut v: Vec<DomainHint> = self
            .hints
            .iter()
            .filter(|(a, h)| *a == addr && h.ts_us <= ts_us && ts_us - h.ts_us <= HOUR)
            .map(|(_, h)| h.clone())
            .collect();
        v.sort_by_key(|h| std::cmp::Reverse(h.ts_us));
        v
    }
    fn judge_domain(&mut self, domain: &str, _ts_us: u64) -> Option<DomainVerdict> {
        self.judged += 1;
        let d = self
            .young
            .iter()
            .find(|y| domain == **y || domain.ends_with(&format!(".{y}")))?;
        Some(DomainVerdict {
            score: 88,
            reasons: vec![format!(
                "{d} registered 4 days ago, never seen on this network"
            )],
        })
    }
    fn geo(&self, addr: IpAddr) -> Option<Geo> {
        self.geo.and_then(|f| f(addr))
    }
}

fn g(cc: &str, asn: Option<u32>, org: &str, at: (f64, f64)) -> Option<Geo> {
    Some(Geo {
        country: Some(cc.into()),
        asn,
        as_org: Some(org.into()),
        lat_lon: Some(at),
    })
}

const NYC: (f64, f64) = (40.7128, -74.0060);
const CHICAGO: (f64, f64) = (41.8781, -87.6298);
const DALLAS: (f64, f64) = (32.7767, -96.7970);
const ATLANTA: (f64, f64) = (33.7490, -84.3880);
const SF: (f64, f64) = (37.7749, -122.4194);
const LA: (f64, f64) = (34.0522, -118.2437);
const AMSTERDAM: (f64, f64) = (52.3676, 4.9041);

/// GeoIP of the reference case and of the generated organisation.
fn world_geo(a: IpAddr) -> Option<Geo> {
    let IpAddr::V4(v4) = a else { return None };
    match v4.octets() {
        [198, 51, 100, _] => g("US", Some(64500), "Example HQ Fiber", NYC),
        [203, 0, 113, 5] => g("US", Some(64501), "Chicago Metro Net", CHICAGO),
        [203, 0, 113, 77] | [24, ..] => g("US", Some(7922), "Comcast", (40.75, -73.9)),
        [172, 56, x, _] => g(
            "US",
            Some(21928),
            "T-Mobile",
            [DALLAS, ATLANTA, NYC][x as usize % 3],
        ),
        [192, 0, 2, 44] => Some(Geo {
            country: Some("US".into()),
            asn: None,
            as_org: None,
            lat_lon: Some(SF),
        }),
        [193, 222, 96, 91] => g("NL", Some(50673), "Serverius", AMSTERDAM),
        [45, 146, 164, 110] => g("SE", Some(9009), "M247 VPN", (59.33, 18.06)),
        [185, 220, 101, 7] => g("DE", Some(205100), "F3 Netze", (50.11, 8.68)),
        _ => None,
    }
}

fn run(m: &mut SaasModels, ctx: &mut dyn Context, recs: &[Record]) -> Vec<ModelBreach> {
    let mut out = Vec::new();
    for r in recs {
        m.observe(r, ctx, &mut out);
    }
    out
}

fn of<'a>(out: &'a [ModelBreach], model: &str) -> Vec<&'a ModelBreach> {
    out.iter().filter(|b| b.model == model).collect()
}

fn sorted(mut v: Vec<Record>) -> Vec<Record> {
    v.sort_by_key(Record::ts_us);
    v
}

// -- The reference case ------------------------------------------------------------------------

const VICTIM: &str = "victim@example.com";
const ATTACKER: &str = "193.222.96.91";
const VPN: &str = "45.146.164.110";

fn case_world() -> World {
    World {
        geo: Some(world_geo),
        hints: vec![(
            ip(ATTACKER),
            DomainHint {
                domain: "latovafineart.life".into(),
                fqdn: "rz8js7sjbef.latovafineart.life".into(),
                ts_us: at(2024, 3, 18, 14, 2, 2),
                score: 91,
                device: Some(ip("10.20.0.23")),
            },
        )],
        young: vec!["latovafineart.life", "thecalebgroup.top"],
        judged: 0,
    }
}

/// Three weeks of ordinary use, then CASE.md steps 1 and 3-6 as SaaS and email records.
fn case_records() -> Vec<Record> {
    let mut v = Vec::new();
    let coworkers = ["alice@example.com", "bob@example.com", "carol@example.com"];
    for day in 0..22u64 {
        let d = at(2024, 2, 26, 0, 0, 0) + day * DAY;
        let addr = ["198.51.100.10", "198.51.100.11", "203.0.113.77"][day as usize % 3];
        let t = d + 13 * HOUR + 30 * MINUTE;
        v.push(signin(t, VICTIM, addr, "US", NYC));
        v.push(ual_login(t + 20 * SEC, VICTIM, addr));
        for (i, c) in coworkers.iter().enumerate() {
            v.push(signin(
                t + (i as u64 + 1) * MINUTE,
                c,
                "198.51.100.12",
                "US",
                NYC,
            ));
        }
        for k in 0..3u64 {
            let id = format!("base-{day}-{k}");
            let ts = d + (15 + k) * HOUR;
            v.push(message(
                ts,
                &id,
                Direction::Outbound,
                VICTIM,
                "partner@vendor.com",
                "Status",
            ));
        }
    }
    // Step 1: the phishing email (URL row first), step 3: the login from the attacker's IP,
    // seen in UAL first and in SigninLogs two seconds later.
    let id = "phish-1";
    let url = "https://rz8js7sjbef.latovafineart.life/secure?u=victim";
    v.push(url_row(
        at(2024, 3, 18, 13, 55, 5),
        id,
        url,
        "rz8js7sjbef.latovafineart.life",
    ));
    let subject = "Secure message: invoice";
    v.push(message(
        at(2024, 3, 18, 13, 55, 10),
        id,
        Direction::Inbound,
        "secure@zixmail.net",
        VICTIM,
        subject,
    ));
    v.push(ual_login(at(2024, 3, 18, 14, 3, 0), VICTIM, ATTACKER));
    v.push(signin(
        at(2024, 3, 18, 14, 3, 2),
        VICTIM,
        ATTACKER,
        "NL",
        AMSTERDAM,
    ));
    // Step 4: one MFA registration, in UAL and in AuditLogs.
    let added = (Some(1), Some(2));
    v.push(mfa(
        at(2024, 3, 19, 10, 15, 0),
        VICTIM,
        Schema::Ual,
        "Update user.",
        added,
        "PhoneAppOTP added",
    ));
    let audit = (None, None);
    let op = "User registered security info";
    v.push(mfa(
        at(2024, 3, 19, 10, 16, 30),
        VICTIM,
        Schema::EntraAudit,
        op,
        audit,
        "Authenticator app added",
    ));
    // Step 5: the rule, from a VPN, reported twice.
    for s in [0, 45] {
        v.push(rule(
            at(2024, 3, 20, 9, 0, s),
            VICTIM,
            VPN,
            "New-InboxRule",
            "...",
            &CASE_RULE,
        ));
    }
    // Step 6: 200 phishing emails in an hour (two recipient rows each, with the DocSend link),
    // and 40 bounce-backs within 10 minutes.
    for k in 0..200u64 {
        let ts = at(2024, 3, 20, 9, 30, 0) + k * 18 * SEC;
        let id = format!("out-{k}");
        let subject = "Prezi presentation";
        v.push(message(
            ts,
            &id,
            Direction::Outbound,
            VICTIM,
            &format!("r{k}@partner.org"),
            subject,
        ));
        v.push(message(
            ts,
            &id,
            Direction::IntraOrg,
            VICTIM,
            &format!("u{k}@example.com"),
            subject,
        ));
        v.push(url_row(
            ts + SEC,
            &id,
            "https://docsend.com/view/vcdmsmjcskw69jh9",
            "docsend.com",
        ));
    }
    for k in 0..40u64 {
        let ts = at(2024, 3, 20, 10, 0, 0) + k * 15 * SEC;
        let id = format!("ndr-{k}");
        let subject = "Undeliverable: Prezi presentation";
        v.push(message(
            ts,
            &id,
            Direction::Inbound,
            "postmaster@outlook.com",
            VICTIM,
            subject,
        ));
    }
    sorted(v)
}

#[test]
fn reference_case_breaches_each_model_exactly_once() {
    let mut m = SaasModels::new(SaasSettings::default());
    let mut ctx = case_world();
    let recs = case_records();
    let out = run(&mut m, &mut ctx, &recs);
    for model in MODELS {
        assert_eq!(of(&out, model).len(), 1, "{model}: {out:#?}");
    }
    assert_eq!(out.len(), 6);
    assert!(out.iter().all(|b| b.user.as_deref() == Some(VICTIM)));
    assert!(
        out.iter().all(|b| b.ts_us >= at(2024, 3, 18, 13, 55, 0)),
        "nothing during the baseline weeks"
    );

    let access = of(&out, UNUSUAL_SOURCE)[0];
    assert_eq!(access.ip, Some(ip(ATTACKER)));
    assert_eq!(access.ts_us, at(2024, 3, 18, 14, 3, 0));
    assert_eq!(access.domain.as_deref(), Some("latovafineart.life"));
    assert_eq!(
        access.fqdn.as_deref(),
        Some("rz8js7sjbef.latovafineart.life")
    );
    assert_eq!(access.devices, vec![ip("10.20.0.23")]);
    let r = access.reasons.join(" | ");
    assert!(
        r.contains(
            "first successful login from 193.222.96.91 (NL) for this user; seen before: US only"
        ),
        "{r}"
    );
    assert!(r.contains("hosts rz8js7sjbef.latovafineart.life"), "{r}");
    assert!(r.contains("contacted by 10.20.0.23 58 s earlier"), "{r}");
    assert!(r.contains("impossible travel"), "{r}");
    assert!(access.score >= 90, "{}", access.score);

    let update = of(&out, LOGIN_AND_ACCOUNT_UPDATE)[0];
    assert_eq!(update.ip, Some(ip(ATTACKER)));
    assert_eq!(update.ts_us, at(2024, 3, 19, 10, 15, 0));
    assert!(
        update.reasons[0].contains("PhoneAppOTP added"),
        "{:?}",
        update.reasons
    );

    let anomalous = of(&out, ANOMALOUS_RULE)[0];
    assert_eq!(anomalous.rule.as_deref(), Some("..."));
    assert_eq!(anomalous.ip, Some(ip(VPN)));
    let r = anomalous.reasons.join(" | ");
    assert!(
        r.contains("scores 3 of 5") && r.contains("RSS Feeds") && r.contains("only punctuation"),
        "{r}"
    );

    let paired = of(&out, LOGIN_AND_RULE)[0];
    assert_eq!(paired.rule.as_deref(), Some("..."));
    assert_eq!(
        paired.ip,
        Some(ip(ATTACKER)),
        "the join key is the login IP"
    );
    let r = paired.reasons.join(" | ");
    assert!(
        r.contains("after an unusual login from 193.222.96.91 (NL") && r.contains(VPN),
        "{r}"
    );

    let spike = of(&out, OUTBOUND_SPIKE)[0];
    assert!(spike.ts_us >= at(2024, 3, 20, 9, 30, 0));
    assert!(
        spike.reasons[0].contains("messages in the last hour"),
        "{:?}",
        spike.reasons
    );

    let link = of(&out, SUSPICIOUS_LINK)[0];
    assert_eq!(
        link.url.as_deref(),
        Some("https://rz8js7sjbef.latovafineart.life/secure?u=victim")
    );
    assert_eq!(
        link.domain.as_deref(),
        Some("rz8js7sjbef.latovafineart.life")
    );
    assert!(
        link.reasons
            .iter()
            .any(|r| r.contains("latovafineart.life registered 4 days ago"))
    );
    assert!(
        link.reasons[0].contains("secure@zixmail.net"),
        "{:?}",
        link.reasons
    );

    let c = m.counters();
    assert_eq!(c["login_dedup"], 23, "{c}");
    assert_eq!(c["mfa_dedup"], 1);
    assert_eq!(c["rule_dedup"], 1);
    assert_eq!(c["breaches"][UNUSUAL_SOURCE], 1);
}

#[test]
fn follow_ups_pair_with_a_login_that_arrives_late() {
    // The rule and the MFA change are logged before the login record that made them unusual.
    let recs = case_records();
    let (late, rest): (Vec<Record>, Vec<Record>) = recs.into_iter().partition(|r| {
        matches!(r, Record::Saas(SaasEvent { kind: SaasKind::Login { .. }, ip: Some(a), .. }) if *a == ip(ATTACKER))
    });
    let mut m = SaasModels::new(SaasSettings::default());
    let mut ctx = case_world();
    let mut out = run(&mut m, &mut ctx, &rest);
    assert_eq!(of(&out, ANOMALOUS_RULE).len(), 1);
    assert!(of(&out, LOGIN_AND_RULE).is_empty());
    out.extend(run(&mut m, &mut ctx, &late));
    for model in MODELS {
        assert_eq!(of(&out, model).len(), 1, "{model}");
    }
    let paired = of(&out, LOGIN_AND_RULE)[0];
    assert_eq!(
        paired.ts_us,
        at(2024, 3, 20, 9, 0, 0),
        "dated by the later of the two"
    );
}

#[test]
fn a_rule_logged_minutes_before_the_login_still_pairs() {
    let mut m = SaasModels::new(SaasSettings::default());
    let mut ctx = case_world();
    let mut v: Vec<Record> = case_records()
        .into_iter()
        .filter(|r| r.ts_us() < at(2024, 3, 18, 0, 0, 0))
        .collect();
    v.push(rule(
        at(2024, 3, 18, 13, 58, 0),
        VICTIM,
        VPN,
        "New-InboxRule",
        "...",
        &CASE_RULE,
    ));
    v.push(signin(
        at(2024, 3, 18, 14, 3, 2),
        VICTIM,
        ATTACKER,
        "NL",
        AMSTERDAM,
    ));
    let out = run(&mut m, &mut ctx, &v);
    assert_eq!(of(&out, LOGIN_AND_RULE).len(), 1, "{out:#?}");
    assert!(of(&out, LOGIN_AND_RULE)[0].reasons[0].contains("before an unusual login"));
    // The same rule 49 h after the login: the rule repeats (new 48 h period) but no pairing.
    let later = rule(
        at(2024, 3, 20, 15, 10, 0),
        VICTIM,
        VPN,
        "New-InboxRule",
        "...",
        &CASE_RULE,
    );
    let out = run(&mut m, &mut ctx, &[later]);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].model, ANOMALOUS_RULE);
}

#[test]
fn nothing_unusual_during_learning() {
    // The attacker logs in on day 3: baselines only.
    let mut m = SaasModels::new(SaasSettings::default());
    let mut ctx = case_world();
    let d = at(2024, 2, 26, 13, 0, 0);
    let mut v = Vec::new();
    for day in 0..3 {
        v.push(signin(d + day * DAY, VICTIM, "198.51.100.10", "US", NYC));
    }
    v.push(signin(d + 3 * DAY, VICTIM, ATTACKER, "NL", AMSTERDAM));
    v.push(mfa(
        d + 3 * DAY + HOUR,
        VICTIM,
        Schema::Ual,
        "Update user.",
        (Some(1), Some(2)),
        "x",
    ));
    let out = run(&mut m, &mut ctx, &v);
    assert!(out.is_empty(), "{out:#?}");
    assert_eq!(m.counters()["learning"], true);
}

// -- A quiet month -----------------------------------------------------------------------------

use crate::testutil::Rng;

fn user(i: usize) -> String {
    format!("u{i:02}@example.com")
}

/// Both logs of one login, in random order and a few seconds apart.
fn both_logs(v: &mut Vec<Record>, rng: &mut Rng, ts: u64, u: &str, addr: &str) {
    let geo = world_geo(ip(addr)).unwrap();
    let cc = geo.country.unwrap();
    let s = signin(ts, u, addr, &cc, geo.lat_lon.unwrap());
    let l = ual_login(ts + rng.below(40) * SEC, u, addr);
    v.push(s);
    v.push(l);
}

/// 30 days of an ordinary 50-user organisation (2024-04-01 is a Monday).
fn ordinary_month(seed: u64) -> Vec<Record> {
    let mut rng = Rng(seed);
    let mut v = Vec::new();
    let start = at(2024, 4, 1, 0, 0, 0);
    for day in 0..30u64 {
        let d = start + day * DAY;
        let weekday = day % 7 < 5;
        for i in 0..50 {
            let u = user(i);
            let chicago = i >= 40;
            let office = if chicago {
                "203.0.113.5".to_string()
            } else {
                format!("198.51.100.{}", 10 + rng.below(3))
            };
            let morning = d + 12 * HOUR + rng.below(3 * 60) * MINUTE;
            // The traveller's own logins on the trip days are below.
            let away = i == 7 && (15..=17).contains(&day);
            if weekday && !away {
                // Working from home on Tuesdays and Fridays for ten of them.
                let wfh = i < 10 && (day % 7 == 1 || day % 7 == 4);
                let addr = if wfh {
                    format!("24.{i}.0.5")
                } else {
                    office.clone()
                };
                both_logs(&mut v, &mut rng, morning, &u, &addr);
                both_logs(&mut v, &mut rng, morning + 5 * HOUR, &u, &addr);
                // A visit to the Chicago office.
                if (1..=5).contains(&i) && (day == 9 || day == 22) {
                    both_logs(&mut v, &mut rng, morning + 7 * HOUR, &u, "203.0.113.5");
                }
            }
            if rng.percent(if weekday { 35 } else { 20 }) && !away {
                let addr = format!("172.56.{}.{}", rng.below(250), rng.below(250));
                let ts = d + rng.below(24 * 60) * MINUTE;
                both_logs(&mut v, &mut rng, ts, &u, &addr);
            }
            if weekday {
                for k in 0..(2 + rng.below(11)) {
                    let ts = d + 13 * HOUR + rng.below(9 * 3600) * SEC;
                    let id = format!("m-{day}-{i}-{k}");
                    for r in 0..(1 + rng.below(3)) {
                        let (dir, to) = if rng.percent(50) {
                            (Direction::IntraOrg, user((i + 1 + r as usize) % 50))
                        } else {
                            (Direction::Outbound, format!("c{r}@customer.com"))
                        };
                        v.push(message(ts, &id, dir, &u, &to, "Re: project"));
                    }
                    if i < 20 {
                        let k = SaasKind::Send { subject: None };
                        v.push(saas(
                            ts + SEC,
                            Schema::Ual,
                            &u,
                            Some("198.51.100.10"),
                            "Send",
                            k,
                        ));
                    }
                }
                for k in 0..5 {
                    let ts = d + rng.below(24 * 3600) * SEC;
                    let id = format!("in-{day}-{i}-{k}");
                    let (host, path) = [
                        ("news.example.org", "/a"),
                        ("docs.vendor.com", "/b"),
                        ("www.bank.com", "/c"),
                    ][rng.below(3) as usize];
                    let url = format!("https://{host}{path}");
                    let m = message(
                        ts,
                        &id,
                        Direction::Inbound,
                        "news@vendor.com",
                        &u,
                        "Weekly news",
                    );
                    let row = url_row(ts + rng.below(120) * SEC, &id, &url, host);
                    if rng.percent(50) {
                        v.push(row);
                        v.push(m);
                    } else {
                        v.push(m);
                        v.push(row);
                    }
                }
                if rng.percent(5) {
                    let ts = d + 15 * HOUR;
                    let id = format!("ndr-{day}-{i}");
                    v.push(message(
                        ts,
                        &id,
                        Direction::Inbound,
                        "postmaster@customer.com",
                        &u,
                        "Undeliverable: Re: project",
                    ));
                }
            }
        }
        // A newsletter burst: 30 messages in an hour.
        if day == 16 {
            for k in 0..30 {
                let ts = d + 14 * HOUR + k * 2 * MINUTE;
                let id = format!("nl-{k}");
                v.push(message(
                    ts,
                    &id,
                    Direction::Outbound,
                    &user(20),
                    "list@customer.com",
                    "Newsletter",
                ));
            }
        }
    }
    // One user travels: New York in the morning, San Francisco (a hotel) in the evening,
    // back in New York three days later.
    let trip = start + 15 * DAY;
    v.push(signin(
        trip + 13 * HOUR,
        &user(7),
        "198.51.100.10",
        "US",
        NYC,
    ));
    for k in 0..3 {
        v.push(signin(
            trip + 21 * HOUR + 30 * MINUTE + k * DAY,
            &user(7),
            "192.0.2.44",
            "US",
            SF,
        ));
    }
    // A password spray from abroad against everyone.
    for i in 0..50 {
        v.push(failed(
            start + 20 * DAY + 10 * HOUR + i as u64 * SEC,
            &user(i),
            "185.220.101.7",
        ));
    }
    // Ordinary inbox rules and an MFA change nobody needs to worry about.
    let hq = "198.51.100.10";
    v.push(rule(
        start + 3 * DAY + 14 * HOUR,
        &user(10),
        hq,
        "New-InboxRule",
        "Newsletters",
        &[
            ("MoveToFolder", "Newsletters"),
            ("StopProcessingRules", "True"),
        ],
    ));
    v.push(rule(
        start + 9 * DAY + 14 * HOUR,
        &user(10),
        hq,
        "Set-InboxRule",
        "Newsletters",
        &[("MarkAsRead", "True")],
    ));
    v.push(rule(
        start + 12 * DAY + 14 * HOUR,
        &user(11),
        hq,
        "New-InboxRule",
        "Receipts",
        &[("MoveToFolder", "Archive")],
    ));
    v.push(rule(
        start + 14 * DAY + 14 * HOUR,
        &user(12),
        hq,
        "New-InboxRule",
        "Spam",
        &[("MoveToFolder", "Junk Email")],
    ));
    let fwd = [("ForwardTo", "\"Assistant\" [SMTP:assistant@example.com]")];
    v.push(rule(
        start + 18 * DAY + 14 * HOUR,
        &user(13),
        hq,
        "New-InboxRule",
        "To assistant",
        &fwd,
    ));
    let added = (Some(1), Some(2));
    v.push(mfa(
        start + 12 * DAY + 15 * HOUR,
        &user(30),
        Schema::Ual,
        "Update user.",
        added,
        "PhoneAppOTP added",
    ));
    sorted(v)
}

fn month_world() -> World {
    World {
        geo: Some(world_geo),
        ..World::default()
    }
}

#[test]
fn an_ordinary_month_of_fifty_users_is_quiet() {
    for seed in [3, 11] {
        let mut m = SaasModels::new(SaasSettings::default());
        let out = run(&mut m, &mut month_world(), &ordinary_month(seed));
        assert!(out.is_empty(), "seed {seed}: {out:#?}");
    }
    let mut m = SaasModels::new(SaasSettings::default());
    let mut ctx = month_world();
    let recs = ordinary_month(7);
    let out = run(&mut m, &mut ctx, &recs);
    assert!(out.is_empty(), "{out:#?}");
    let c = m.counters();
    assert!(c["logins"].as_u64().unwrap() > 3000, "{c}");
    assert!(c["login_dedup"].as_u64().unwrap() > 1500, "{c}");
    assert_eq!(c["failed_logins"], 50);
    assert!(c["sends"].as_u64().unwrap() > 1000, "{c}");
    assert!(ctx.judged > 100, "links were judged");
}

#[test]
fn the_quiet_month_still_sees_an_attack() {
    // The same month, plus an attacker login for u25 on day 25: the org baselines do not mask it.
    let mut recs = ordinary_month(7);
    let ts = at(2024, 4, 26, 3, 0, 0);
    recs.push(signin(ts, &user(25), ATTACKER, "NL", AMSTERDAM));
    let recs = sorted(recs);
    let mut m = SaasModels::new(SaasSettings::default());
    let out = run(&mut m, &mut month_world(), &recs);
    assert_eq!(out.len(), 1, "{out:#?}");
    assert_eq!(out[0].model, UNUSUAL_SOURCE);
    assert_eq!(out[0].user.as_deref(), Some("u25@example.com"));
}

// -- Guards one by one -------------------------------------------------------------------------

/// Ten days of logins from the office (coordinates from the record, no GeoIP).
fn office_days(u: &str) -> Vec<Record> {
    (0..10)
        .map(|d| {
            signin(
                at(2024, 5, 1, 13, 0, 0) + d * DAY,
                u,
                "198.51.100.10",
                "US",
                NYC,
            )
        })
        .collect()
}

#[test]
fn impossible_travel_breaches_and_plausible_travel_does_not() {
    let u = "trav@example.com";
    let day10 = at(2024, 5, 11, 13, 0, 0);
    let mut m = SaasModels::new(SaasSettings::default());
    let mut v = office_days(u);
    v.push(signin(day10, u, "198.51.100.10", "US", NYC));
    v.push(signin(day10 + 30 * MINUTE, u, "192.0.2.80", "US", LA));
    let out = run(&mut m, &mut NoContext, &v);
    assert_eq!(out.len(), 1, "{out:#?}");
    assert_eq!(out[0].model, UNUSUAL_SOURCE);
    assert_eq!(
        out[0].reasons.len(),
        1,
        "same country, no ASN: travel is the only reason"
    );
    assert!(
        out[0].reasons[0].starts_with("impossible travel: 3,9"),
        "{:?}",
        out[0].reasons
    );
    assert!(
        out[0].reasons[0].contains("30 min earlier"),
        "{:?}",
        out[0].reasons
    );
    assert_eq!(out[0].score, 60);

    let mut m = SaasModels::new(SaasSettings::default());
    let mut v = office_days(u);
    v.push(signin(day10, u, "198.51.100.10", "US", NYC));
    v.push(signin(day10 + 9 * HOUR, u, "192.0.2.80", "US", LA));
    assert!(run(&mut m, &mut NoContext, &v).is_empty());
}

#[test]
fn a_carrier_gateway_far_away_is_not_travel_once_it_is_the_users_own() {
    // The office in New York, and a phone whose carrier egress geolocates to Dallas. Nobody
    // else in the organisation uses that carrier.
    fn scenario(phone_days: std::ops::Range<u64>) -> Vec<ModelBreach> {
        let u = "phone@example.com";
        let mut v = Vec::new();
        for d in 0..11 {
            v.push(signin(
                at(2024, 5, 1, 13, 0, 0) + d * DAY,
                u,
                "198.51.100.10",
                "US",
                NYC,
            ));
        }
        for d in phone_days {
            v.push(signin(
                at(2024, 5, 1, 20, 0, 0) + d * DAY,
                u,
                "172.56.0.9",
                "US",
                DALLAS,
            ));
        }
        v.push(signin(
            at(2024, 5, 11, 13, 20, 0),
            u,
            "172.56.3.9",
            "US",
            DALLAS,
        ));
        let mut m = SaasModels::new(SaasSettings::default());
        run(&mut m, &mut month_world(), &sorted(v))
    }
    assert!(scenario(0..10).is_empty());
    // Used once before: 2,200 km in 20 minutes is impossible travel.
    let out = scenario(9..10);
    let last = out.last().unwrap();
    assert_eq!(last.ts_us, at(2024, 5, 11, 13, 20, 0));
    assert!(
        last.reasons[0].starts_with("impossible travel: 2,"),
        "{:?}",
        last.reasons
    );
}

#[test]
fn another_office_used_routinely_is_not_unusual() {
    // `office` users sign in from the Chicago office daily, `others` from HQ; then x, an HQ
    // user, signs in from Chicago for the first time.
    fn scenario(office: usize, others: usize) -> Vec<ModelBreach> {
        let mut v = Vec::new();
        for d in 0..14 {
            let t = at(2024, 5, 1, 13, 0, 0) + d * DAY;
            v.push(signin(t, "x@example.com", "198.51.100.10", "US", NYC));
            for i in 0..office {
                v.push(signin(t + MINUTE, &user(i), "203.0.113.5", "US", CHICAGO));
            }
            for i in 0..others {
                v.push(signin(
                    t + MINUTE,
                    &user(50 + i),
                    "198.51.100.11",
                    "US",
                    NYC,
                ));
            }
        }
        v.push(signin(
            at(2024, 5, 15, 16, 0, 0),
            "x@example.com",
            "203.0.113.5",
            "US",
            CHICAGO,
        ));
        let mut m = SaasModels::new(SaasSettings::default());
        run(&mut m, &mut month_world(), &sorted(v))
    }
    // Three other users in a 44-user organisation: routine by count.
    assert!(scenario(3, 40).is_empty());
    // Two in a 43-user organisation: not routine.
    let out = scenario(2, 40);
    assert_eq!(out.len(), 1);
    let r = &out[0].reasons[0];
    assert!(
        r.contains("first successful login from 203.0.113.5 (AS64501)"),
        "{r}"
    );
    assert!(r.contains("seen before: AS64500 only"), "{r}");
    // Two in a 5-user organisation: routine by share.
    assert!(scenario(2, 2).is_empty());
    assert_eq!(scenario(1, 2).len(), 1);
}

#[test]
fn one_attacker_address_across_many_accounts_is_not_routine() {
    // Four accounts taken over from the same address on one day: all four breach.
    let mut v = Vec::new();
    for d in 0..10 {
        for i in 0..4 {
            v.push(signin(
                at(2024, 5, 1, 13, 0, 0) + d * DAY + i * MINUTE,
                &user(i as usize),
                "198.51.100.10",
                "US",
                NYC,
            ));
        }
    }
    for i in 0..4 {
        v.push(signin(
            at(2024, 5, 11, 2, 0, 0) + i * HOUR,
            &user(i as usize),
            ATTACKER,
            "NL",
            AMSTERDAM,
        ));
    }
    let mut m = SaasModels::new(SaasSettings::default());
    let out = run(&mut m, &mut month_world(), &v);
    assert_eq!(of(&out, UNUSUAL_SOURCE).len(), 4, "{out:#?}");
}

#[test]
fn failed_logins_never_breach_but_explain_a_later_success() {
    let u = "spray@example.com";
    let mut v = office_days(u);
    let t = at(2024, 5, 11, 9, 0, 0);
    for k in 0..20 {
        v.push(failed(t + k * SEC, u, "185.220.101.7"));
    }
    // Failures for a user never seen create nothing.
    v.push(failed(t, "nobody@example.com", "185.220.101.7"));
    let mut m = SaasModels::new(SaasSettings::default());
    let out = run(&mut m, &mut month_world(), &v);
    assert!(out.is_empty(), "{out:#?}");
    assert_eq!(m.state().users.len(), 1);
    let k = login_kind(true, Some("DE"), None);
    let ok = saas(
        t + HOUR,
        Schema::EntraSignin,
        u,
        Some("185.220.101.7"),
        "Sign-in activity",
        k,
    );
    let out = run(&mut m, &mut month_world(), &[ok]);
    assert_eq!(out.len(), 1);
    let r = out[0].reasons.join(" | ");
    assert!(
        r.contains("after 20 failed logins for this user from 185.220.101.7"),
        "{r}"
    );
}

#[test]
fn a_holiday_does_not_make_the_office_unusual() {
    // Three weeks at the office, two weeks away without any login, back at the office.
    let u = "holiday@example.com";
    let mut v: Vec<Record> = (0..21)
        .map(|d| {
            signin(
                at(2024, 5, 1, 13, 0, 0) + d * DAY,
                u,
                "198.51.100.10",
                "US",
                NYC,
            )
        })
        .collect();
    v.push(signin(
        at(2024, 6, 5, 13, 0, 0),
        u,
        "198.51.100.10",
        "US",
        NYC,
    ));
    let mut m = SaasModels::new(SaasSettings::default());
    assert!(run(&mut m, &mut month_world(), &v).is_empty());
}

// -- Rules -------------------------------------------------------------------------------------

fn actions(params: &[(&str, &str)]) -> RuleActions {
    let mut a = RuleActions::default();
    let p: Vec<(String, String)> = params
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    apply_params(&mut a, &p);
    a
}

#[test]
fn rule_points_follow_the_checklist() {
    let case = score_rule("...", &actions(&CASE_RULE), VICTIM);
    assert_eq!(case.points, 3, "{:?}", case.reasons);
    // The real sample: `rule2` to Junk Email: one point.
    let sample = [
        ("MoveToFolder", "Junk Email"),
        ("SubjectContainsWords", "do not open"),
        ("StopProcessingRules", "True"),
    ];
    assert_eq!(
        score_rule("rule2", &actions(&sample), "adelev@contoso.onmicrosoft.com").points,
        1
    );
    assert_eq!(
        score_rule(
            "Newsletters",
            &actions(&[("MoveToFolder", "Newsletters")]),
            VICTIM
        )
        .points,
        0
    );
    // Name checks: short, low entropy, no name.
    assert!(odd_name("ab").is_some());
    assert!(odd_name("aaaaaaa").is_some());
    assert!(odd_name("  ").is_some());
    assert!(odd_name("Newsletters").is_none());
    // Forwarding counts only outside the user's domain (subdomains are inside).
    let out = [("ForwardTo", "a@example.com; \"X\" [SMTP:x@evil.net]")];
    let s = score_rule("Invoices", &actions(&out), VICTIM);
    assert_eq!(s.points, 1);
    assert!(s.reasons[0].contains("x@evil.net"), "{:?}", s.reasons);
    let inside = [("RedirectTo", "a@mail.example.com")];
    assert_eq!(score_rule("Invoices", &actions(&inside), VICTIM).points, 0);
    // Folder paths and `$true`.
    let all = [
        ("MoveToFolder", "\\Deleted Items"),
        ("MarkAsRead", "$true"),
        ("SoftDeleteMessage", "True"),
    ];
    assert_eq!(score_rule("Invoices", &actions(&all), VICTIM).points, 3);
}

#[test]
fn a_changed_rule_is_judged_with_what_it_already_did() {
    let u = "r@example.com";
    let hq = "198.51.100.10";
    let t = at(2024, 5, 1, 13, 0, 0);
    let mut m = SaasModels::new(SaasSettings::default());
    let first = rule(
        t,
        u,
        hq,
        "New-InboxRule",
        "..",
        &[("MoveToFolder", "Archive")],
    );
    assert!(run(&mut m, &mut NoContext, &[first]).is_empty(), "2 points");
    let change = rule(
        t + HOUR,
        u,
        hq,
        "Set-InboxRule",
        "..",
        &[("MarkAsRead", "True")],
    );
    let out = run(&mut m, &mut NoContext, &[change]);
    assert_eq!(out.len(), 1);
    assert!(
        out[0].reasons[0].starts_with("changed inbox rule \"..\" scores 3 of 5"),
        "{:?}",
        out[0].reasons
    );
    // Re-created from scratch, the rule starts over.
    let again = rule(
        t + 2 * HOUR,
        u,
        hq,
        "New-InboxRule",
        "..",
        &[("StopProcessingRules", "True")],
    );
    assert!(run(&mut m, &mut NoContext, &[again]).is_empty());
}

#[test]
fn mailbox_forwarding_outside_the_domain_is_reported_by_the_rule_model() {
    let u = "f@example.com";
    let t = at(2024, 5, 1, 13, 0, 0);
    let fwd = |ts: u64, target: &str| {
        let k = SaasKind::Forwarding {
            target: target.into(),
        };
        saas(ts, Schema::Ual, u, Some(VPN), "Set-Mailbox", k)
    };
    let mut m = SaasModels::new(SaasSettings::default());
    assert!(run(&mut m, &mut NoContext, &[fwd(t, "smtp:boss@example.com")]).is_empty());
    let out = run(
        &mut m,
        &mut NoContext,
        &[
            fwd(t + MINUTE, "smtp:drop@evil.net"),
            fwd(t + 2 * MINUTE, "smtp:drop@evil.net"),
        ],
    );
    assert_eq!(out.len(), 1, "reported once");
    assert_eq!(out[0].model, ANOMALOUS_RULE);
    assert!(
        out[0].reasons[0].contains("mailbox forwarding set to drop@evil.net (outside example.com)")
    );
}

// -- Outbound spike ----------------------------------------------------------------------------

/// `per_hour` messages in one hour every day for `days` days, from 2024-05-01.
fn sends(u: &str, days: u64, per_hour: u64) -> Vec<Record> {
    let mut v = Vec::new();
    for d in 0..days {
        for k in 0..per_hour {
            let ts = at(2024, 5, 1, 15, 0, 0) + d * DAY + k * (HOUR / per_hour);
            v.push(message(
                ts,
                &format!("b{d}-{k}"),
                Direction::Outbound,
                u,
                "x@vendor.com",
                "Report",
            ));
        }
    }
    v
}

fn burst(u: &str, start: u64, n: u64, rows: u64) -> Vec<Record> {
    let mut v = Vec::new();
    for k in 0..n {
        for r in 0..rows {
            let to = format!("r{r}@vendor.com");
            v.push(message(
                start + k * (HOUR / n),
                &format!("burst-{k}"),
                Direction::Outbound,
                u,
                &to,
                "Hi",
            ));
        }
    }
    v
}

#[test]
fn spike_is_five_times_the_usual_peak_hour() {
    let u = "s@example.com";
    let day8 = at(2024, 5, 9, 9, 0, 0);
    let mut m = SaasModels::new(SaasSettings::default());
    assert!(run(&mut m, &mut NoContext, &sends(u, 8, 20)).is_empty());
    // 95 messages (five recipient rows each) stay under 5 x 20.
    assert!(run(&mut m, &mut NoContext, &burst(u, day8, 95, 5)).is_empty());
    let mut m = SaasModels::new(SaasSettings::default());
    run(&mut m, &mut NoContext, &sends(u, 8, 20));
    let out = run(&mut m, &mut NoContext, &burst(u, day8, 150, 5));
    assert_eq!(out.len(), 1, "once per spike");
    assert!(
        out[0].reasons[0].starts_with("sent 101 messages in the last hour; usual peak 20"),
        "{:?}",
        out[0].reasons
    );
}

#[test]
fn spike_needs_a_week_of_history_but_bounces_do_not() {
    let u = "new@example.com";
    let t = at(2024, 5, 1, 9, 0, 0);
    let mut m = SaasModels::new(SaasSettings::default());
    assert!(run(&mut m, &mut NoContext, &burst(u, t, 200, 1)).is_empty());
    let ndr = |k: u64, subject: &str| {
        message(
            t + HOUR + k * 20 * SEC,
            &format!("ndr-{subject}-{k}"),
            Direction::Inbound,
            "mailer-daemon@x.org",
            u,
            subject,
        )
    };
    // Ten bounces, and more with other subjects: not enough.
    let mut v: Vec<Record> = (0..10).map(|k| ndr(k, "Undeliverable: Hi")).collect();
    v.extend((0..10).map(|k| ndr(k, "Mail delivery failed: returning message to sender")));
    assert!(run(&mut m, &mut NoContext, &v).is_empty());
    // The same bounce twice is one bounce.
    assert!(run(&mut m, &mut NoContext, &[ndr(9, "Undeliverable: Hi")]).is_empty());
    let out = run(&mut m, &mut NoContext, &[ndr(10, "UNDELIVERABLE: Hi")]);
    assert_eq!(out.len(), 1);
    assert!(
        out[0].reasons[0].starts_with("11 bounce-backs for \"Hi\" within 10 min"),
        "{:?}",
        out[0].reasons
    );
}

#[test]
fn the_same_mail_in_two_logs_counts_once() {
    let u = "two@example.com";
    let mut m = SaasModels::new(SaasSettings::default());
    run(&mut m, &mut NoContext, &sends(u, 8, 8));
    // 45 messages in both UAL and EmailEvents: 45, not 90, is under 50.
    let t = at(2024, 5, 9, 9, 0, 0);
    let mut v = burst(u, t, 45, 2);
    for k in 0..45 {
        v.push(saas(
            t + k * MINUTE,
            Schema::Ual,
            u,
            None,
            "Send",
            SaasKind::Send { subject: None },
        ));
    }
    assert!(run(&mut m, &mut NoContext, &sorted(v)).is_empty());
}

// -- Links -------------------------------------------------------------------------------------

#[test]
fn links_join_in_either_order_expire_and_count_once() {
    let u = "reader@example.com";
    let t = at(2024, 5, 1, 9, 0, 0);
    let bad = "https://user:pw@x.thecalebgroup.top:8443/p#frag";
    let mut ctx = case_world();
    let mut m = SaasModels::new(SaasSettings::default());
    // URL row first, no domain given: parsed from the URL.
    let out = run(
        &mut m,
        &mut ctx,
        &[
            url_row(t, "a", bad, ""),
            message(t + SEC, "a", Direction::Inbound, "x@y.com", u, "Hi"),
        ],
    );
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].domain.as_deref(), Some("x.thecalebgroup.top"));
    // Message first; same host for the same user within a day: counted, not reported.
    let out = run(
        &mut m,
        &mut ctx,
        &[
            message(t + HOUR, "b", Direction::Inbound, "x@y.com", u, "Hi"),
            url_row(t + HOUR, "b", bad, "x.thecalebgroup.top"),
        ],
    );
    assert!(out.is_empty());
    assert_eq!(m.counters()["link_dedup"], 1);
    // Another recipient of another message gets their own breach.
    let out = run(
        &mut m,
        &mut ctx,
        &[
            message(
                t + HOUR,
                "c",
                Direction::Inbound,
                "x@y.com",
                "other@example.com",
                "Hi",
            ),
            url_row(t + HOUR, "c", bad, ""),
        ],
    );
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].user.as_deref(), Some("other@example.com"));
    // The halves three hours apart never meet.
    let out = run(
        &mut m,
        &mut ctx,
        &[
            url_row(t + 2 * DAY, "d", bad, ""),
            message(
                t + 2 * DAY + 3 * HOUR,
                "d",
                Direction::Inbound,
                "x@y.com",
                u,
                "Hi",
            ),
        ],
    );
    assert!(out.is_empty());
    assert!(m.counters()["join_expired"].as_u64().unwrap() >= 1);
    // Mail the organisation sends is not judged.
    let out = run(
        &mut m,
        &mut ctx,
        &[
            message(t + 4 * DAY, "e", Direction::Outbound, u, "x@y.com", "Hi"),
            url_row(t + 4 * DAY, "e", bad, ""),
        ],
    );
    assert!(out.is_empty());
}

// -- Bounds, persistence, hostile input --------------------------------------------------------

#[test]
fn state_is_bounded() {
    let mut m = SaasModels::new(SaasSettings::default());
    let t = at(2024, 5, 1, 0, 0, 0);
    let mut out = Vec::new();
    for i in 0..100_000u32 {
        let addr = IpAddr::from([11 + (i >> 16) as u8, (i >> 8) as u8, i as u8, 1]);
        let r = saas(
            t + u64::from(i) * SEC,
            Schema::Ual,
            &format!("user{i}@example.com"),
            None,
            "UserLoggedIn",
            login_kind(true, None, None),
        );
        let Record::Saas(mut ev) = r else {
            unreachable!()
        };
        ev.ip = Some(addr);
        m.observe(&Record::Saas(ev), &mut NoContext, &mut out);
    }
    assert!(out.is_empty());
    assert!(m.state().users.len() <= MAX_USERS);
    assert!(m.state().org.len() <= MAX_ORG_SOURCES);
    let c = m.counters();
    assert!(c["evicted_users"].as_u64().unwrap() >= 50_000, "{c}");
    assert!(c["evicted_org_sources"].as_u64().unwrap() > 0, "{c}");
    // The most recent users survive.
    assert!(m.state().users.contains_key("user99999@example.com"));
    assert!(!m.state().users.contains_key("user0@example.com"));

    // One user: an office used for six days, then 1000 one-off networks; 20,000 unmatched URL
    // rows; 500 bounces.
    for d in 0..6 {
        m.observe(
            &ual_login(t + d * DAY, "roam@example.com", "12.0.0.1"),
            &mut NoContext,
            &mut out,
        );
    }
    for k in 0..1000u32 {
        let addr = format!("11.{}.{}.1", k / 250, k % 250);
        let ts = t + 6 * DAY + u64::from(k) * MINUTE;
        m.observe(
            &ual_login(ts, "roam@example.com", &addr),
            &mut NoContext,
            &mut out,
        );
    }
    let roam = &m.state().users["roam@example.com"];
    assert_eq!(roam.sources.len(), MAX_SOURCES_PER_USER);
    // The office survives a thousand one-off networks.
    assert!(
        roam.sources
            .iter()
            .any(|x| x.src == Source::net(ip("12.0.0.1")) && x.days >= 5)
    );
    for k in 0..20_000u64 {
        m.observe(
            &url_row(t + k * SEC, &format!("id{k}"), "https://a.b/", "a.b"),
            &mut NoContext,
            &mut out,
        );
    }
    assert!(m.state().join.len() <= MAX_JOIN);
    for k in 0..500u64 {
        m.observe(
            &message(
                t + k,
                &format!("n{k}"),
                Direction::Inbound,
                "p@x.org",
                "roam@example.com",
                &format!("Undeliverable: {k}"),
            ),
            &mut NoContext,
            &mut out,
        );
    }
    assert!(m.state().users["roam@example.com"].bounces.len() <= MAX_BOUNCES);
    let c = m.counters();
    assert!(
        c["evicted_sources"].as_u64().unwrap() > 0 && c["evicted_joins"].as_u64().unwrap() > 0,
        "{c}"
    );
    assert!(c["trimmed"].as_u64().unwrap() > 0, "{c}");

    // A smaller cap applies to the next new user.
    let s = SaasSettings {
        max_users: 100,
        ..SaasSettings::default()
    };
    m.reconfigure(s);
    m.observe(
        &ual_login(t, "late@example.com", "11.0.0.1"),
        &mut NoContext,
        &mut out,
    );
    assert!(m.state().users.len() <= 100);
}

#[test]
fn a_restored_state_resumes_identically() {
    let recs = case_records();
    let mut straight = SaasModels::new(SaasSettings::default());
    let expected = run(&mut straight, &mut case_world(), &recs);
    assert_eq!(expected.len(), 6);

    let mut ctx = case_world();
    let mut m = SaasModels::new(SaasSettings::default());
    let mut out = Vec::new();
    for chunk in recs.chunks(97) {
        out.extend(run(&mut m, &mut ctx, chunk));
        let json = serde_json::to_string(m.state()).unwrap();
        let state: SaasState = serde_json::from_str(&json).unwrap();
        m = SaasModels::from_state(SaasSettings::default(), state);
    }
    assert_eq!(out, expected);
    assert_eq!(m.state(), straight.state());
}

#[test]
fn hostile_records_do_not_panic_or_grow() {
    let mut rng = Rng(99);
    let mut m = SaasModels::new(SaasSettings::default());
    let mut ctx = case_world();
    let mut out = Vec::new();
    let strings = [
        "",
        " ",
        "...",
        "\u{0}\u{7}",
        "a@",
        "@b",
        "x@y.z",
        "Ünïcødé@exämple.com",
        "undeliverable:",
        "[::1]:80",
        "http://",
        "::ffff:1.2.3.4",
    ];
    let long = "é".repeat(5000);
    for i in 0..20_000u64 {
        let pick = |rng: &mut Rng| -> String {
            match rng.below(14) {
                12 => long.clone(),
                13 => format!("u{}@example.com", rng.below(50)),
                k => strings[k as usize].to_string(),
            }
        };
        let ts = match rng.below(6) {
            0 => 0,
            1 => u64::MAX - rng.below(1000),
            _ => at(2024, 5, 1, 0, 0, 0) + rng.below(60 * DAY),
        };
        let addr = match rng.below(4) {
            0 => None,
            1 => Some(IpAddr::from([193, 222, 96, 91])),
            2 => Some("::ffff:10.0.0.1".parse().unwrap()),
            _ => {
                let b = rng.next().to_be_bytes();
                Some(IpAddr::from([b[0], b[1], b[2], b[3]]))
            }
        };
        let geo = match rng.below(4) {
            0 => Some((f64::NAN, 1.0)),
            1 => Some((1e300, -1e300)),
            2 => Some((0.0, 0.0)),
            _ => Some((
                (rng.below(180) as f64) - 90.0,
                (rng.below(360) as f64) - 180.0,
            )),
        };
        let kind = match rng.below(7) {
            0 => SaasKind::Login {
                success: rng.percent(70),
                error_code: None,
                country: Some(pick(&mut rng)),
                city: None,
                geo,
                user_agent: None,
                correlation_id: Some(pick(&mut rng)),
            },
            1 => SaasKind::InboxRule {
                name: pick(&mut rng),
                params: (0..rng.below(80))
                    .map(|_| {
                        (
                            [
                                "MarkAsRead",
                                "MoveToFolder",
                                "ForwardTo",
                                "DeleteMessage",
                                "X",
                            ][rng.below(5) as usize]
                                .to_string(),
                            pick(&mut rng),
                        )
                    })
                    .collect(),
            },
            2 => SaasKind::Forwarding {
                target: pick(&mut rng),
            },
            3 => SaasKind::MfaChange {
                before: Some(rng.below(3) as u32),
                after: Some(u32::MAX),
                detail: pick(&mut rng),
            },
            4 => SaasKind::Send { subject: None },
            5 => SaasKind::MailAccess { items: u32::MAX },
            _ => SaasKind::Other,
        };
        let r = if i % 2 == 0 {
            Record::Saas(SaasEvent {
                ts_us: ts,
                schema: Schema::Ual,
                id: pick(&mut rng),
                user: pick(&mut rng),
                ip: addr,
                operation: pick(&mut rng),
                kind,
            })
        } else {
            let kind = match rng.below(3) {
                0 => EmailKind::Message {
                    direction: [
                        Direction::Inbound,
                        Direction::Outbound,
                        Direction::IntraOrg,
                        Direction::Unknown,
                    ][rng.below(4) as usize],
                    sender: pick(&mut rng),
                    recipient: pick(&mut rng),
                    subject: pick(&mut rng),
                    sender_ip: None,
                    delivery: None,
                },
                1 => EmailKind::Url {
                    url: pick(&mut rng),
                    domain: pick(&mut rng),
                },
                _ => EmailKind::Click {
                    user: pick(&mut rng),
                    ip: addr,
                    url: pick(&mut rng),
                },
            };
            Record::Email(EmailEvent {
                ts_us: ts,
                schema: Schema::EmailEvents,
                message_id: pick(&mut rng),
                kind,
            })
        };
        m.observe(&r, &mut ctx, &mut out);
    }
    assert!(m.counters()["bad_time"].as_u64().unwrap() > 5000);
    assert!(m.state().clock_us < MAX_TS_US);
    let st = m.state();
    assert!(st.users.len() <= 64, "{}", st.users.len());
    assert!(st.users.values().all(|u| u.sources.len() <= MAX_SOURCES_PER_USER && u.logins.len() <= MAX_RECENT_LOGINS));
    assert!(out.iter().all(|b| b.score <= 100 && !b.reasons.is_empty()));
    // The state still round-trips.
    let json = serde_json::to_string(st).unwrap();
    assert_eq!(&serde_json::from_str::<SaasState>(&json).unwrap(), st);
}

// -- Small pieces ------------------------------------------------------------------------------

#[test]
fn sources_round_trip_as_text() {
    for s in [
        Source::Asn(64500),
        Source::country("nl").unwrap(),
        Source::net(ip("198.51.100.77")),
        Source::net(ip("2001:db8:1:2::9")),
    ] {
        let text: String = s.into();
        assert_eq!(Source::try_from(text.clone()), Ok(s), "{text}");
    }
    assert_eq!(
        Source::net(ip("2001:db8:1:2::9")).to_string(),
        "2001:db8:1::/48"
    );
    assert_eq!(
        Source::net(ip("::ffff:198.51.100.77")).to_string(),
        "198.51.100.0/24"
    );
    assert!(Source::country("USA").is_none() && Source::country("1A").is_none());
    assert!(Source::try_from("net:nonsense/24".to_string()).is_err());
}

#[test]
fn bounce_subjects_and_hosts_are_recognised() {
    assert_eq!(
        bounce_subject("Undeliverable: Prezi presentation"),
        Some("Prezi presentation")
    );
    assert_eq!(
        bounce_subject("Delivery Status Notification (Failure)"),
        Some("Delivery Status Notification (Failure)")
    );
    assert_eq!(bounce_subject("Re: Undeliverable: x"), None);
    assert_eq!(bounce_subject("Und"), None);
    assert_eq!(
        url_host("", "https://u:p@Docs.Example.com:443/x?y#z").as_deref(),
        Some("docs.example.com")
    );
    assert_eq!(
        url_host("", "http://[2001:db8::1]:80/").as_deref(),
        Some("2001:db8::1")
    );
    assert_eq!(url_host("Example.COM.", "").as_deref(), Some("example.com"));
    assert_eq!(url_host("", "no host here/"), None);
    assert_eq!(
        addresses("\"A\" [SMTP:A@X.com];b@y.org,junk@,@z"),
        vec!["a@x.com", "b@y.org"]
    );
    assert_eq!(span(58 * SEC), "58 s");
    assert_eq!(thousands(5_862), "5,862");
}

#[test]
fn settings_are_validated() {
    assert_eq!(SaasSettings::default().validate(), Ok(()));
    let s = SaasSettings {
        asn_window_us: 0,
        ..SaasSettings::default()
    };
    assert_eq!(s.validate(), Err(SettingsError::Zero("asn_window")));
    let s = SaasSettings {
        travel_kmh: f64::NAN,
        ..SaasSettings::default()
    };
    assert!(matches!(
        s.validate(),
        Err(SettingsError::OutOfRange {
            name: "travel_kmh",
            ..
        })
    ));
    let s = SaasSettings {
        rule_min_points: 6,
        ..SaasSettings::default()
    };
    assert!(s.validate().is_err());
}
