//! Scenario tests: the reference case (CASE.md) end to end, arrival order, network-then-SaaS
//! merging, bindings; and the breach fixtures the engine's own tests share.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::*;
use crate::models::{Device, MULTIPLE_DEVICES, ModelBreach, SUSPICIOUS_DOMAIN};

/// 2024-03-18 00:00:00 UTC, seconds.
pub(crate) const MAR18: u64 = 1_710_720_000;
pub(crate) const H: u64 = 3_600_000_000;

/// Event time on `day` of March 2024 (µs).
pub(crate) fn at(day: u64, h: u64, m: u64, s: u64) -> u64 {
    (MAR18 + (day - 18) * 86_400 + h * 3600 + m * 60 + s) * 1_000_000
}

pub(crate) fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub(crate) fn blank(ts_us: u64, model: &'static str, score: u8) -> ModelBreach {
    ModelBreach {
        ts_us,
        model,
        score,
        device: None,
        user: None,
        devices: Vec::new(),
        domain: None,
        fqdn: None,
        ip: None,
        url: None,
        rule: None,
        reasons: Vec::new(),
        flow_ids: Vec::new(),
    }
}

pub(crate) fn device_breach(
    ts: u64,
    model: &'static str,
    score: u8,
    dev: &str,
    fqdn: &str,
    dest: &str,
) -> ModelBreach {
    let domain = fqdn
        .split_once('.')
        .map(|x| x.1)
        .filter(|d| d.contains('.'))
        .unwrap_or(fqdn);
    ModelBreach {
        device: Some(Device {
            ip: ip(dev),
            mac: None,
            hostname: None,
        }),
        domain: Some(domain.into()),
        fqdn: Some(fqdn.into()),
        ip: Some(ip(dest)),
        ..blank(ts, model, score)
    }
}

pub(crate) fn saas(
    ts: u64,
    model: &'static str,
    score: u8,
    user: &str,
    from: Option<&str>,
) -> ModelBreach {
    ModelBreach {
        user: Some(user.into()),
        ip: from.map(ip),
        ..blank(ts, model, score)
    }
}

pub(crate) const VICTIM: &str = "victim@example.com";
pub(crate) const NL: &str = "193.222.96.91";
pub(crate) const VPN: &str = "45.137.21.9";

/// The reference case (CASE.md) as breaches, in event-time order.
pub(crate) fn reference_case() -> Vec<ModelBreach> {
    let mut v = Vec::new();
    let mut a = device_breach(
        at(18, 14, 2, 11) + 402_337,
        SUSPICIOUS_DOMAIN,
        91,
        "10.20.0.23",
        "rz8js7sjbef.latovafineart.life",
        NL,
    );
    a.device = Some(Device {
        ip: ip("10.20.0.23"),
        mac: Some("3c:52:82:aa:01:23".into()),
        hostname: Some("wks-023".into()),
    });
    a.reasons = vec![
        "registered 4 days ago (feed)".into(),
        "first seen on this network 0 s ago".into(),
        "1 of 212 devices in 30 days".into(),
        "risky TLD .life".into(),
    ];
    v.push(a);
    let mut b = saas(at(18, 14, 3, 9), UNUSUAL_SOURCE, 88, VICTIM, Some(NL));
    b.reasons = vec![
        "first successful login from this IP, ASN and country (NL) for this user; seen before: US only".into(),
        "193.222.96.91 hosts latovafineart.life, contacted by 10.20.0.23 58 s earlier".into(),
    ];
    v.push(b);
    let mut c = saas(at(19, 10, 15, 0), LOGIN_AND_UPDATE, 84, VICTIM, Some(NL));
    c.reasons = vec![
        "new MFA method (Microsoft Authenticator, 6-digit code) 20 h after an unusual login".into(),
    ];
    v.push(c);
    let rule_reasons = vec![
        "rule name \"...\" is punctuation only".into(),
        "MarkAsRead: True".into(),
        "MoveToFolder: RSS Feeds".into(),
    ];
    let mut d1 = saas(at(20, 9, 41, 0), ANOMALOUS_RULE, 72, VICTIM, Some(VPN));
    d1.rule = Some("...".into());
    d1.reasons = rule_reasons.clone();
    v.push(d1);
    let mut d2 = saas(at(20, 9, 41, 30), LOGIN_AND_RULE, 90, VICTIM, Some(VPN));
    d2.rule = Some("...".into());
    d2.reasons = rule_reasons;
    v.push(d2);
    let mut e = saas(at(20, 11, 30, 0), OUTBOUND_SPIKE, 86, VICTIM, None);
    e.url = Some("https://docsend.com/view/vcdmsmjcskw69jh9".into());
    e.reasons = vec!["214 messages sent in one hour, usual peak 9".into()];
    v.push(e);
    for i in 0..5u64 {
        let mut f = device_breach(
            at(20, 15, 0, 0) + i * 12 * 60_000_000,
            SUSPICIOUS_DOMAIN,
            75,
            &format!("10.20.0.{}", 31 + i),
            "thecalebgroup.top",
            NL,
        );
        f.domain = Some("thecalebgroup.top".into());
        f.reasons = vec![
            "registered 0 days ago (feed)".into(),
            "first seen on this network 0 s ago".into(),
        ];
        v.push(f);
    }
    let mut md = blank(at(20, 16, 0, 0), MULTIPLE_DEVICES, 85);
    md.devices = (31..36).map(|i| ip(&format!("10.20.0.{i}"))).collect();
    md.domain = Some("thecalebgroup.top".into());
    md.ip = Some(ip(NL));
    md.reasons = vec![
        "5 devices breached Device / Suspicious Domain for thecalebgroup.top within 1 h".into(),
    ];
    v.push(md);
    v
}

/// A context with optional bindings, DNS answers and common entities.
#[derive(Default)]
pub(crate) struct Ctx {
    pub(crate) by_device: BTreeMap<IpAddr, Binding>,
    pub(crate) dns: BTreeMap<IpAddr, Vec<String>>,
    pub(crate) common: Vec<EntityKey>,
}

impl Context for Ctx {
    fn user_of_device(&mut self, ip: IpAddr, _: u64) -> Option<Binding> {
        self.by_device.get(&ip).cloned()
    }
    fn devices_of_user(&mut self, user: &str, _: u64) -> Vec<Binding> {
        self.by_device
            .values()
            .filter(|b| b.user == user)
            .cloned()
            .collect()
    }
    fn domains_on_ip(&mut self, ip: IpAddr, _: u64) -> Vec<String> {
        self.dns.get(&ip).cloned().unwrap_or_default()
    }
    fn is_common_entity(&self, key: &EntityKey) -> bool {
        self.common.contains(key)
    }
}

pub(crate) fn reference_ctx() -> Ctx {
    let mut c = Ctx::default();
    c.dns.insert(
        ip(NL),
        vec!["latovafineart.life".into(), "thecalebgroup.top".into()],
    );
    c
}

pub(crate) fn run(
    engine: &mut Engine,
    ctx: &mut dyn Context,
    breaches: &[ModelBreach],
) -> Vec<Incident> {
    let mut out = Vec::new();
    for b in breaches {
        engine.add(b, ctx, &mut out);
    }
    out
}

type Essence = (
    String,
    String,
    Entities,
    Vec<(String, String, u32)>,
    String,
    u32,
    Severity,
);

/// The parts of an incident that must not depend on arrival order.
fn essence(i: &Incident) -> Essence {
    let events = i
        .events
        .iter()
        .map(|e| (e.timestamp.clone(), e.model.clone(), e.count))
        .collect();
    (
        i.id.clone(),
        i.title.clone(),
        i.entities.clone(),
        events,
        i.summary.clone(),
        i.risk,
        i.severity,
    )
}

#[test]
fn reference_case_is_one_hijack_incident() {
    let mut engine = Engine::default();
    let out = run(&mut engine, &mut reference_ctx(), &reference_case());
    assert!(out.len() >= 5, "{} emissions", out.len());
    let id = &out[0].id;
    assert!(id.starts_with("inc-") && id.len() == 16, "{id}");
    assert!(out.iter().all(|i| &i.id == id), "one incident only");
    for (n, i) in out.iter().enumerate() {
        assert_eq!(i.version as usize, n + 1, "each update is a new version");
    }
    assert!(
        out[0].title.starts_with("Suspicious Activity on wks-023"),
        "{}",
        out[0].title
    );
    assert_eq!(
        out[1].title, TITLE_HIJACK,
        "the login from the same IP makes it a hijack"
    );

    let last = out.last().unwrap();
    assert_eq!(last.title, TITLE_HIJACK);
    assert_eq!(last.severity, Severity::Critical);
    assert_eq!(last.events.len(), 12);
    assert!(
        last.events
            .windows(2)
            .all(|w| w[0].timestamp <= w[1].timestamp)
    );
    let e = &last.entities;
    assert_eq!(e.devices.first().map(String::as_str), Some("10.20.0.23"));
    assert_eq!(e.devices.len(), 6);
    assert_eq!(e.users, vec![VICTIM]);
    assert!(e.ips.contains(&NL.to_string()) && e.ips.contains(&VPN.to_string()));
    assert_eq!(e.domains, vec!["latovafineart.life", "thecalebgroup.top"]);
    assert_eq!(e.urls, vec!["https://docsend.com/view/vcdmsmjcskw69jh9"]);
    assert_eq!(last.risk, 91 + 88 + 84 + 72 + 90 + 86 + 5 * 75 + 85);
    assert_eq!(last.first_ts, at(18, 14, 2, 11) + 402_337);
    assert_eq!(last.last_ts, at(20, 16, 0, 0));

    let s = &last.summary;
    println!("{s}");
    for needle in [
        "10.20.0.23",
        "rz8js7sjbef.latovafineart.life",
        "registered 4 days earlier and never seen before here",
        "hosted on 193.222.96.91",
        "One minute later the Microsoft 365 account victim@example.com logged in from that same IP",
        "a source never seen for this user",
        "The next day a new MFA method was registered",
        "On 20 March an inbox rule named \"...\"",
        "from 45.137.21.9",
        "marks mail as read and moves it to RSS Feeds",
        "5 more devices visited thecalebgroup.top",
        "between 15:00 and 15:48 on 20 March",
    ] {
        assert!(s.contains(needle), "summary lacks {needle:?}: {s}");
    }
    assert!(s.matches(". ").count() < narrative::MAX_SENTENCES, "{s}");
    assert!(!s.contains('\n'));

    let a = &last.actions;
    println!("{a:#?}");
    assert_eq!(
        a[0],
        "block latovafineart.life, thecalebgroup.top, 193.222.96.91 and 45.137.21.9"
    );
    assert!(
        a.iter()
            .any(|x| x == "reset the password of victim@example.com and revoke its sessions")
    );
    assert!(a.iter().any(|x| x.starts_with(
        "review the MFA methods registered on victim@example.com since 18 March 14:03"
    )));
    assert!(
        a.iter()
            .any(|x| x.contains("remove the inbox rule named \"...\""))
    );
    assert!(
        a.iter()
            .any(|x| x.starts_with("purge the phishing messages sent by victim@example.com"))
    );
    assert!(
        a.iter()
            .any(|x| x.starts_with("isolate and inspect 10.20.0.23, 10.20.0.31"))
    );
    assert_eq!(engine.incidents(), vec![last.clone()]);
}

#[test]
fn incident_eve_line_has_the_envelope() {
    let mut engine = Engine::default();
    let out = run(&mut engine, &mut reference_ctx(), &reference_case()[..2]);
    let mut line = Vec::new();
    out.last().unwrap().write_eve(&mut line);
    assert!(line.ends_with(b"\n"));
    assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
    let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
    assert_eq!(v["event_type"], "incident");
    assert_eq!(v["timestamp"], "2024-03-18T14:03:09.000000+0000");
    let i = &v["incident"];
    assert_eq!(i["version"], 2);
    assert_eq!(i["title"], TITLE_HIJACK);
    assert_eq!(i["severity"], "high");
    assert_eq!(
        i["events"][0]["timestamp"],
        "2024-03-18T14:02:11.402337+0000"
    );
    assert_eq!(i["events"][0]["device"], "10.20.0.23");
    assert_eq!(i["events"][1]["user"], VICTIM);
    assert_eq!(i["entities"]["ips"][0], NL);
    let back: Incident = serde_json::from_value(i.clone()).unwrap();
    assert_eq!(&back, out.last().unwrap());
}

/// Deterministic permutation (xorshift).
fn shuffled<T: Clone>(v: &[T], seed: u64) -> Vec<T> {
    let mut v = v.to_vec();
    let mut x = seed | 1;
    for i in (1..v.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
    v
}

#[test]
fn late_saas_breaches_give_the_same_incident() {
    let case = reference_case();
    let mut on_time = Engine::default();
    run(&mut on_time, &mut reference_ctx(), &case);
    let want = on_time.incidents();
    assert_eq!(want.len(), 1);

    // Network breaches as they happen, every SaaS breach hours late (after all of them).
    let (saas, net): (Vec<ModelBreach>, Vec<ModelBreach>) =
        case.iter().cloned().partition(|b| b.user.is_some());
    let late: Vec<ModelBreach> = net.into_iter().chain(saas).collect();
    let mut engine = Engine::default();
    let out = run(&mut engine, &mut reference_ctx(), &late);
    let got = engine.incidents();
    assert_eq!(
        got.len(),
        1,
        "{:#?}",
        got.iter().map(|i| &i.title).collect::<Vec<_>>()
    );
    assert_eq!(essence(&got[0]), essence(&want[0]));
    // The phishing incident that formed first was merged away, never re-emitted on its own.
    assert_eq!(got[0].merged.len(), 1);
    let absorbed = &got[0].merged[0];
    let merged_at = out
        .iter()
        .position(|i| i.merged.contains(absorbed))
        .unwrap();
    assert!(
        out[..merged_at]
            .iter()
            .any(|i| &i.id == absorbed && i.title == TITLE_PHISHING)
    );
    assert!(out[merged_at..].iter().all(|i| &i.id != absorbed));

    // Any arrival order with the first breach first gives the same id and members; any order
    // at all gives the same members, title and summary.
    for seed in 1..40u64 {
        let mut order = shuffled(&case[1..], seed);
        order.insert(0, case[0].clone());
        let mut engine = Engine::default();
        run(&mut engine, &mut reference_ctx(), &order);
        let got = engine.incidents();
        assert_eq!(got.len(), 1, "seed {seed}");
        assert_eq!(essence(&got[0]), essence(&want[0]), "seed {seed}");

        let order = shuffled(&case, seed * 7919);
        let mut engine = Engine::default();
        run(&mut engine, &mut reference_ctx(), &order);
        let got = engine.incidents();
        assert_eq!(got.len(), 1, "seed {seed}");
        let (mut g, mut w) = (essence(&got[0]), essence(&want[0]));
        g.0.clear();
        w.0.clear();
        assert_eq!(g, w, "seed {seed}");
    }
}

#[test]
fn a_breach_brings_in_incidents_near_the_one_it_joins() {
    // Without the first visit and the MFA change: the campaign (20 March, afternoon) and the
    // mailbox abuse (20 March, morning) share nothing. The late login (18 March) shares the user
    // with the mailbox abuse and the IP with the campaign, but is 49 h before the campaign:
    // it joins the abuse directly, and through the abuse's time span the campaign joins too.
    let case = reference_case();
    let mut order: Vec<ModelBreach> = case[6..].to_vec();
    order.extend_from_slice(&case[3..6]);
    order.push(case[1].clone());
    let mut engine = Engine::default();
    let mut ctx = reference_ctx();
    run(&mut engine, &mut ctx, &order[..order.len() - 1]);
    assert_eq!(engine.incidents().len(), 2);
    let out = run(&mut engine, &mut ctx, &order[order.len() - 1..]);
    let got = engine.incidents();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].events.len(), 10);
    assert_eq!(got[0].title, TITLE_HIJACK);
    assert_eq!((out.len(), out[0].merged.len()), (1, 1));
}

#[test]
fn network_incident_becomes_hijack_under_the_same_id() {
    let case = reference_case();
    let (saas, net): (Vec<ModelBreach>, Vec<ModelBreach>) =
        case.iter().cloned().partition(|b| b.user.is_some());
    let mut engine = Engine::default();
    let mut ctx = reference_ctx();
    run(&mut engine, &mut ctx, &net);
    let before = engine.incidents();
    assert_eq!(
        before.len(),
        2,
        "two days apart: first visit and the later campaign"
    );
    assert_eq!(
        before[0].title,
        "Suspicious Activity on wks-023 (10.20.0.23)"
    );
    assert_eq!(before[1].title, TITLE_PHISHING);
    assert_eq!(before[1].entities.devices.len(), 5);

    let out = run(&mut engine, &mut ctx, &saas);
    assert!(
        out.iter().all(|i| i.id == before[0].id),
        "updates keep the first id"
    );
    assert!(out.windows(2).all(|w| w[1].version == w[0].version + 1));
    assert_eq!(out[0].version, before[0].version + 1);
    let after = engine.incidents();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].id, before[0].id);
    assert_eq!(after[0].title, TITLE_HIJACK);
    assert_eq!(after[0].merged, vec![before[1].id.clone()]);
    assert_eq!(after[0].events.len(), 12);
}

#[test]
fn bindings_join_a_device_to_its_user() {
    let t = at(18, 9, 0, 0);
    let binding = Binding {
        device_ip: ip("10.20.0.50"),
        mac: None,
        hostname: Some("wks-050".into()),
        user: "bob@example.com".into(),
        source: BindingSource::Kerberos,
        confidence: 0.9,
        expires_us: t + 10 * H,
    };
    let mut ctx = Ctx::default();
    ctx.by_device.insert(binding.device_ip, binding.clone());
    let dev = device_breach(
        t,
        SUSPICIOUS_DOMAIN,
        85,
        "10.20.0.50",
        "login.evil.top",
        "198.51.100.7",
    );
    let login = saas(
        t + 10 * 60_000_000,
        UNUSUAL_SOURCE,
        85,
        "bob@example.com",
        Some("203.0.113.50"),
    );
    for order in [[&dev, &login], [&login, &dev]] {
        let mut engine = Engine::default();
        let mut out = Vec::new();
        for b in order {
            engine.add(b, &mut ctx, &mut out);
        }
        let inc = engine.incidents();
        assert_eq!(inc.len(), 1);
        assert_eq!(inc[0].title, TITLE_HIJACK, "bound device + SaaS login");
        assert_eq!(inc[0].bindings, vec![binding.clone()]);
        assert_eq!(inc[0].entities.users, vec!["bob@example.com"]);
    }
    // A binding expired at the breaches' time does not join them.
    let mut engine = Engine::default();
    let dev = ModelBreach {
        ts_us: t + 11 * H,
        ..dev
    };
    let login = ModelBreach {
        ts_us: t + 11 * H + 60_000_000,
        ..login
    };
    run(&mut engine, &mut ctx, &[dev, login]);
    assert_eq!(engine.incidents().len(), 2);
    assert!(engine.incidents().iter().all(|i| i.bindings.is_empty()));
}

#[test]
fn two_saas_compromise_models_are_a_hijack_without_network_evidence() {
    let case = reference_case();
    let mut engine = Engine::default();
    let out = run(&mut engine, &mut Ctx::default(), &case[1..3]);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].title, "Suspicious Activity on victim@example.com");
    assert_eq!(out[1].title, TITLE_HIJACK);
    // The login's IP hosts a domain (DNS answers): the summary says so.
    let mut engine = Engine::default();
    let out = run(&mut engine, &mut reference_ctx(), &case[1..2]);
    assert!(
        out[0]
            .summary
            .contains("an address that hosts latovafineart.life"),
        "{}",
        out[0].summary
    );
}

#[test]
#[ignore = "prints the reference incident for reading"]
fn print_reference_incident() {
    let mut engine = Engine::default();
    let out = run(&mut engine, &mut reference_ctx(), &reference_case());
    let mut line = Vec::new();
    out.last().unwrap().write_eve(&mut line);
    let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
    println!("{}", serde_json::to_string_pretty(&v).unwrap());
}
