//! Engine tests: separate things stay separate, dedup, opening thresholds, caps and eviction,
//! idle closing, restarts from serialised state, hostile strings.

use crate::correlate::tests::{
    Ctx, H, NL, at, blank, device_breach, ip, reference_case, reference_ctx, run, saas,
};
use crate::correlate::*;
use crate::models::{DGA_ACTIVITY, ModelBreach, SSL_C2, SUSPICIOUS_DOMAIN};

#[test]
fn unrelated_breaches_stay_separate() {
    let t = at(18, 9, 0, 0);
    let breaches = [
        device_breach(
            t,
            SUSPICIOUS_DOMAIN,
            90,
            "10.1.0.5",
            "a.evil-one.top",
            "198.51.100.10",
        ),
        device_breach(
            t + 60_000_000,
            SUSPICIOUS_DOMAIN,
            90,
            "10.1.0.6",
            "b.evil-two.top",
            "198.51.100.11",
        ),
        saas(
            t + 120_000_000,
            UNUSUAL_SOURCE,
            90,
            "bob@example.com",
            Some("203.0.113.7"),
        ),
        // Same resolver, private and public: not a join key.
        device_breach(
            t + 180_000_000,
            DGA_ACTIVITY,
            90,
            "10.1.0.7",
            "x.nxdomain.example",
            "10.1.0.1",
        ),
        device_breach(
            t + 240_000_000,
            DGA_ACTIVITY,
            90,
            "10.1.0.8",
            "y.nxdomain2.example",
            "10.1.0.1",
        ),
        device_breach(
            t + 300_000_000,
            SSL_C2,
            90,
            "10.1.0.9",
            "c2.one.example",
            "8.8.8.8",
        ),
        device_breach(
            t + 360_000_000,
            SSL_C2,
            90,
            "10.1.0.10",
            "c2.two.example",
            "8.8.8.8",
        ),
    ];
    let mut engine = Engine::default();
    let out = run(&mut engine, &mut Ctx::default(), &breaches);
    assert_eq!(out.len(), 7);
    let ids: std::collections::BTreeSet<&String> = out.iter().map(|i| &i.id).collect();
    assert_eq!(ids.len(), 7);
    assert!(out.iter().all(|i| i.events.len() == 1 && i.version == 1));
    assert_eq!(out[2].title, "Suspicious Activity on bob@example.com");
    assert_eq!(out[5].title, TITLE_SSL_C2);
    assert_eq!(out[5].severity, Severity::High);
    assert!(engine.counters().ignored_keys >= 4);
}

#[test]
fn common_entities_from_the_context_do_not_join() {
    let t = at(18, 9, 0, 0);
    let mut ctx = Ctx::default();
    ctx.common.push(EntityKey::new(Kind::Domain, "cdn.example"));
    let breaches = [
        device_breach(
            t,
            SUSPICIOUS_DOMAIN,
            90,
            "10.1.0.5",
            "a.cdn.example",
            "198.51.100.10",
        ),
        device_breach(
            t + 1,
            SUSPICIOUS_DOMAIN,
            90,
            "10.1.0.6",
            "b.cdn.example",
            "198.51.100.11",
        ),
    ];
    let mut engine = Engine::default();
    run(&mut engine, &mut ctx, &breaches);
    assert_eq!(engine.incidents().len(), 2);
    // Without the predicate the shared domain joins them.
    let mut engine = Engine::default();
    run(&mut engine, &mut Ctx::default(), &breaches);
    assert_eq!(engine.incidents().len(), 1);
}

#[test]
fn repeats_do_not_inflate_risk() {
    let a = reference_case().remove(0);
    let mut engine = Engine::default();
    let mut out = Vec::new();
    let mut ctx = Ctx::default();
    for i in 0..5u64 {
        let b = ModelBreach {
            ts_us: a.ts_us + i * 60_000_000,
            ..a.clone()
        };
        engine.add(&b, &mut ctx, &mut out);
    }
    assert_eq!(out.len(), 1, "repeats within the gap are folded silently");
    let inc = &engine.incidents()[0];
    assert_eq!(inc.risk, 91);
    assert_eq!(inc.events.len(), 1);
    assert_eq!(inc.events[0].count, 5);
    assert_eq!(
        inc.events[0].last_timestamp.as_deref(),
        Some("2024-03-18T14:06:11.402337+0000")
    );
    // A repeat hours later is news: same risk, new version.
    let b = ModelBreach {
        ts_us: a.ts_us + 3 * H,
        ..a.clone()
    };
    engine.add(&b, &mut ctx, &mut out);
    assert_eq!(out.len(), 2);
    assert_eq!(
        (out[1].version, out[1].risk, out[1].events[0].count),
        (2, 91, 6)
    );
    assert_eq!(engine.counters().repeats, 5);
}

#[test]
fn weak_breaches_stay_silent_until_their_sum_opens_the_incident() {
    let t = at(18, 9, 0, 0);
    let mut engine = Engine::default();
    let mut ctx = Ctx::default();
    let mut out = Vec::new();
    for (i, d) in ["a.one.top", "b.two.top", "c.three.top"].iter().enumerate() {
        let b = device_breach(
            t + i as u64 * H,
            SUSPICIOUS_DOMAIN,
            60,
            "10.1.0.5",
            d,
            "198.51.100.10",
        );
        engine.add(&b, &mut ctx, &mut out);
        if i < 2 {
            assert!(out.is_empty(), "risk {} stays silent", 60 * (i + 1));
            assert!(engine.incidents().is_empty());
        }
    }
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].version, out[0].risk, out[0].events.len()),
        (1, 180, 3)
    );
    // The id comes from the first breach, not the one that opened it.
    let mut solo = Engine::new(Settings {
        open_risk: 10,
        ..Settings::default()
    });
    let mut first = Vec::new();
    let b = device_breach(
        t,
        SUSPICIOUS_DOMAIN,
        60,
        "10.1.0.5",
        "a.one.top",
        "198.51.100.10",
    );
    solo.add(&b, &mut ctx, &mut first);
    assert_eq!(first[0].id, out[0].id, "stable across replays and engines");
}

#[test]
fn fanout_cap_stops_a_shared_entity_from_joining() {
    let settings = Settings {
        window_us: H,
        lateness_us: 1000 * H,
        max_fanout: 4,
        ..Settings::default()
    };
    let mut engine = Engine::new(settings);
    let mut ctx = Ctx::default();
    let t = at(18, 0, 0, 0);
    // Ten devices two hours apart reach the same address: ten incidents (outside the window).
    for i in 0..10u64 {
        let b = device_breach(
            t + i * 2 * H,
            SUSPICIOUS_DOMAIN,
            90,
            &format!("10.1.0.{i}"),
            &format!("x{i}.top"),
            "198.51.100.99",
        );
        run(&mut engine, &mut ctx, &[b]);
    }
    assert_eq!(engine.incidents().len(), 10);
    assert_eq!(engine.counters().fanout_blocked, 1);
    // A breach next to the last one, sharing only that address, no longer joins it.
    let b = device_breach(
        t + 18 * H + 60_000_000,
        SUSPICIOUS_DOMAIN,
        90,
        "10.1.0.200",
        "y.top",
        "198.51.100.99",
    );
    run(&mut engine, &mut ctx, &[b]);
    assert_eq!(engine.incidents().len(), 11);
    assert!(engine.counters().hot_key_skips >= 1);
}

#[test]
fn caps_evict_and_count() {
    let mut engine = Engine::new(Settings {
        max_cases: 8,
        max_closed: 5,
        max_events: 4,
        ..Settings::default()
    });
    let mut ctx = Ctx::default();
    let t = at(18, 0, 0, 0);
    for i in 0..20u64 {
        let b = device_breach(
            t + i,
            SUSPICIOUS_DOMAIN,
            90,
            &format!("10.1.1.{i}"),
            &format!("x{i}.top"),
            &format!("198.51.100.{i}"),
        );
        run(&mut engine, &mut ctx, &[b]);
    }
    assert_eq!(engine.incidents().len(), 8);
    assert_eq!(engine.counters().cases_evicted, 12);
    assert_eq!(engine.closed().count(), 5);
    assert_eq!(engine.counters().closed_evicted, 7);
    assert_eq!(engine.take_closed().len(), 5);
    assert_eq!(engine.closed().count(), 0);

    // Ten distinct breaches of one device: four timeline entries, nothing lost from the count.
    let mut engine = Engine::new(Settings {
        max_events: 4,
        ..Settings::default()
    });
    for i in 0..10u64 {
        let b = device_breach(
            t + i * 60_000_000,
            SUSPICIOUS_DOMAIN,
            50,
            "10.1.2.3",
            &format!("d{i}.top"),
            &format!("198.51.100.{i}"),
        );
        run(&mut engine, &mut ctx, &[b]);
    }
    let inc = &engine.incidents()[0];
    assert_eq!(inc.events.len(), 4);
    assert_eq!(inc.events.iter().map(|e| e.count).sum::<u32>(), 10);
    assert_eq!(inc.risk, 500);
    assert_eq!(engine.counters().timeline_folds, 6);
}

#[test]
fn idle_incidents_close_and_new_activity_starts_a_new_one() {
    let a = reference_case().remove(0);
    let mut engine = Engine::default();
    let mut ctx = Ctx::default();
    let first = run(&mut engine, &mut ctx, std::slice::from_ref(&a));
    engine.advance(a.ts_us + 59 * H);
    assert_eq!(
        engine.incidents().len(),
        1,
        "still within window + lateness"
    );
    engine.advance(a.ts_us + 61 * H);
    assert!(engine.incidents().is_empty());
    assert_eq!(engine.closed().count(), 1);
    assert_eq!(engine.closed().next().unwrap().id, first[0].id);
    let again = ModelBreach {
        ts_us: a.ts_us + 62 * H,
        ..a
    };
    let out = run(&mut engine, &mut ctx, &[again]);
    assert_eq!(out.len(), 1);
    assert_ne!(out[0].id, first[0].id);
    assert_eq!(out[0].version, 1);
}

#[test]
fn restart_from_serialised_state_continues_identically() {
    let case = reference_case();
    let mut straight = Engine::default();
    let mut ctx = reference_ctx();
    let all = run(&mut straight, &mut ctx, &case);

    for cut in [1, 3, 6, 9] {
        let mut engine = Engine::default();
        let mut out = run(&mut engine, &mut ctx, &case[..cut]);
        let json = serde_json::to_string(&engine).unwrap();
        let mut restored: Engine = serde_json::from_str(&json).unwrap();
        out.extend(run(&mut restored, &mut ctx, &case[cut..]));
        assert_eq!(out, all, "cut at {cut}");
        assert_eq!(restored.counters(), straight.counters());
        assert_eq!(
            serde_json::to_value(restored.incidents()).unwrap(),
            serde_json::to_value(straight.incidents()).unwrap()
        );
    }
}

#[test]
fn hostile_strings_are_clipped_and_never_break_a_line() {
    let t = at(18, 9, 0, 0);
    let long = format!("{}.top", "a".repeat(10_000));
    let mut b = device_breach(
        t,
        SUSPICIOUS_DOMAIN,
        255,
        "10.1.0.5",
        &long,
        "198.51.100.10",
    );
    b.reasons = (0..100)
        .map(|i| format!("reason {i}\n\u{0}\u{1b}[31m"))
        .collect();
    let mut r = saas(
        t + 1,
        LOGIN_AND_RULE,
        90,
        "Mallory@Example.com\n",
        Some("198.51.100.10"),
    );
    r.rule = Some("\"><script>\n".repeat(200));
    r.url = Some("é".repeat(5000));
    let mut engine = Engine::default();
    let out = run(&mut engine, &mut Ctx::default(), &[b, r]);
    let inc = out.last().unwrap();
    assert_eq!(inc.risk, 100 + 90, "scores are capped at 100");
    assert!(inc.entities.domains.iter().all(|d| d.len() <= MAX_TEXT));
    assert!(
        inc.entities
            .urls
            .iter()
            .all(|u| u.len() <= MAX_TEXT && u.chars().all(|c| c == 'é'))
    );
    assert_eq!(inc.entities.users, vec!["mallory@example.com"]);
    assert!(!inc.summary.contains('\n') && !inc.summary.contains('\u{1b}'));
    assert!(
        inc.events
            .iter()
            .all(|e| e.summary.len() <= narrative::MAX_LINE && !e.summary.contains('\n'))
    );
    let mut line = Vec::new();
    inc.write_eve(&mut line);
    assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
    assert!(line.len() < 16_000, "{}", line.len());
}

#[test]
fn breaches_with_no_entities_still_work() {
    let mut engine = Engine::default();
    let b = blank(0, "Device / Something New", 95);
    let out = run(&mut engine, &mut NoContext, &[b.clone(), b]);
    // Nothing to join on: two incidents, and their ids (same model, entity and time) differ.
    assert_eq!(out.len(), 2);
    assert_ne!(out[0].id, out[1].id);
    assert_eq!(out[0].title, "Suspicious Activity on unknown entity");
    assert!(out[0].summary.contains("Device / Something New breached"));
}

#[test]
fn entity_keys_round_trip_as_strings() {
    let k = EntityKey::new(Kind::Ip, "2001:db8::1");
    assert_eq!(k.to_string(), "ip:2001:db8::1");
    assert_eq!("ip:2001:db8::1".parse::<EntityKey>().unwrap(), k);
    assert!("bogus:1".parse::<EntityKey>().is_err());
    assert!("nokind".parse::<EntityKey>().is_err());
    assert!(!is_joinable_external_ip(ip("192.168.1.1")));
    assert!(!is_joinable_external_ip(ip("100.64.0.1")));
    assert!(!is_joinable_external_ip(ip("::ffff:10.0.0.1")));
    assert!(!is_joinable_external_ip(ip("fd00::1")));
    assert!(!is_joinable_external_ip(ip("1.1.1.1")));
    assert!(is_joinable_external_ip(ip(NL)));
    assert!(is_joinable_external_ip(ip("2a01:4f8::1")));
}
