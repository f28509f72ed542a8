//! A domain's score, 0 to 100, and the reasons behind every point.
//!
//! Novelty alone never reaches the default threshold: "first seen here" and "contacted by few
//! devices so far" together are worth 25 of the 60 points needed, which is what a new service
//! the whole office adopts looks like on its first morning. What adds up to a breach is a young
//! registration, rarity that persists, a DGA-like or lookalike name, a risky TLD, and hosting
//! shared only with other young or rare domains. A popularity-list entry or an old registration
//! date pulls the score down, and a popular domain never breaches.

use std::net::IpAddr;

use super::dga;
use super::feeds::{Popularity, Registered, Registrations};
use super::history::{Binding, DomainRec};
use super::lookalike::Protected;
use super::names;
use super::settings::Settings;

/// The facts gathered for one contact.
pub struct Facts<'a> {
    pub now: u64,
    pub domain: &'a str,
    pub fqdn: &'a str,
    pub rec: Option<&'a DomainRec>,
    pub active_devices: usize,
    pub ip: Option<IpAddr>,
    /// Other domains bound to `ip` within the binding TTL.
    pub cohosted: &'a [Binding],
    /// Inside the learning period: novelty and rarity do not count.
    pub learning: bool,
    /// Registration day (days since the epoch) from RDAP, used when no feed dates the domain.
    pub rdap_day: Option<i64>,
}

/// A score and its reasons.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub score: u8,
    pub reasons: Vec<String>,
    pub popular: bool,
    /// Registered recently according to a feed.
    pub young: bool,
    /// Contacted by few devices in the rarity window.
    pub rare: bool,
    /// Young, or rare and new: what makes co-hosted domains look bad.
    pub suspect: bool,
}

/// The static knowledge a score draws on.
pub struct Scorer {
    pub regs: Registrations,
    pub pop: Popularity,
    pub dga: dga::Model,
    pub protected: Protected,
}

/// "4 days", "2 h", "35 s": a short human duration.
pub fn human(us: u64) -> String {
    let s = us / 1_000_000;
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        7200..=172_799 => format!("{} h", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}

impl Scorer {
    pub fn score(&self, s: &Settings, f: &Facts<'_>) -> Scored {
        let w = &s.weights;
        let mut pts: i32 = 0;
        let mut reasons = Vec::new();
        let mut young = false;
        let rank = self.pop.rank(f.domain);
        if let Some(r) = rank {
            pts += w.popular;
            reasons.push(format!("on the popularity list (rank {r})"));
        }
        let today = (f.now / 86_400_000_000) as i64;
        let (registered, source) = match (self.regs.get(f.domain), f.rdap_day) {
            (Some(Registered::On(d)), _) => (Some(Registered::On(d)), "feed"),
            (Some(Registered::Listed), Some(d)) | (None, Some(d)) => {
                (Some(Registered::On(d)), "RDAP")
            }
            (other, None) => (other, "feed"),
        };
        match registered {
            Some(Registered::On(day)) => {
                let age = (today - day).max(0);
                if age <= i64::from(s.young_days) {
                    young = true;
                    // Full weight in the first week, tapering to half at `young_days`.
                    let scale = if age <= 7 {
                        1.0
                    } else {
                        1.0 - 0.5 * (age - 7) as f64 / f64::from(s.young_days.max(8) - 7)
                    };
                    pts += (f64::from(w.young_registration) * scale).round() as i32;
                    reasons.push(format!("registered {age} days ago ({source})"));
                } else if age > 365 {
                    pts += w.old_registration;
                    reasons.push(format!("registered {age} days ago ({source})"));
                }
            }
            Some(Registered::Listed) => {
                young = true;
                pts += w.listed_nrd;
                reasons.push("listed in a newly registered domain feed".into());
            }
            None => {}
        }
        let mut rare = false;
        let mut new = false;
        if let Some(rec) = f.rec {
            let known_for = f.now.saturating_sub(rec.first);
            let since = f.now.saturating_sub(s.rarity_window_us);
            let (n, full) = rec.devices_since(since);
            let limit = (s.rare_max_share * f.active_devices as f64)
                .floor()
                .max(f64::from(s.rare_max_devices)) as usize;
            rare = !full && n <= limit;
            new = known_for < s.new_window_us;
            if !f.learning {
                if new {
                    pts += w.first_seen;
                    reasons.push(format!(
                        "first seen on this network {} ago",
                        human(known_for)
                    ));
                }
                let window_days = s.rarity_window_us / 86_400_000_000;
                let share = if full {
                    format!("{n}+ of {} devices in {window_days} days", f.active_devices)
                } else {
                    format!("{n} of {} devices in {window_days} days", f.active_devices)
                };
                if rare {
                    pts += w.rare;
                    if known_for >= s.rarity_persist_us {
                        pts += w.persistent_rarity;
                        reasons.push(format!("{share}, still rare after {}", human(known_for)));
                    } else {
                        reasons.push(share);
                    }
                } else if f.active_devices > 0 {
                    pts += w.common;
                    reasons.push(share);
                }
            }
        }
        let label = names::registrable_label(f.domain);
        let v = self.dga.judge(label);
        if v.random {
            pts += w.dga;
            reasons.push(format!(
                "random-looking name {label} (n-gram {:.1}, entropy {:.1})",
                v.mean_logp, v.entropy
            ));
        } else if let Some(l) = names::sub_labels(f.fqdn, f.domain)
            .find(|l| l.len() > dga::MIN_LEN && self.dga.judge(l).random)
        {
            pts += w.random_subdomain;
            reasons.push(format!("random-looking label {l}"));
        }
        if let Some(why) = self.protected.check(f.fqdn, f.domain) {
            pts += w.lookalike;
            reasons.push(format!("lookalike: {why}"));
        }
        if let Some(tld) = f.domain.rsplit('.').next()
            && s.risky_tlds.iter().any(|t| t == tld)
        {
            pts += w.risky_tld;
            reasons.push(format!("risky TLD .{tld}"));
        }
        if let Some(ip) = f.ip {
            let others: Vec<&Binding> =
                f.cohosted.iter().filter(|b| b.domain != f.domain).collect();
            if !others.is_empty() && others.iter().all(|b| b.suspect) {
                pts += w.shared_hosting;
                let mut names: Vec<&str> = others.iter().map(|b| b.domain.as_str()).collect();
                names.dedup();
                names.truncate(3);
                reasons.push(format!(
                    "{ip} also hosts only young or rare domains: {}",
                    names.join(", ")
                ));
            } else if others.iter().filter(|b| !b.suspect).count() >= 2 {
                pts += w.established_hosting;
                reasons.push(format!(
                    "{ip} is shared with {} established domains",
                    others.iter().filter(|b| !b.suspect).count()
                ));
            } else {
                reasons.push(format!("resolves to {ip}"));
            }
        }
        let score = pts.clamp(0, 100) as u8;
        Scored {
            score,
            reasons,
            popular: rank.is_some(),
            young,
            rare,
            suspect: rank.is_none()
                && (young || score >= s.breach_threshold || (rare && new && !f.learning)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const DAY: u64 = 86_400_000_000;

    fn scorer() -> Scorer {
        let mut rep = super::super::feeds::LoadReport::default();
        let mut regs = Registrations::default();
        regs.add_text(
            Path::new("nrd"),
            "latovafineart.life,2024-03-14\nancient.com,1999-01-01\n",
            100,
            &mut rep,
        );
        let mut pop = Popularity::default();
        pop.add_text(Path::new("top"), "1,google.com\n", 1000, &mut rep);
        Scorer {
            regs,
            pop,
            dga: dga::Model::shipped(),
            protected: Protected::new(&[], &["microsoft".into()]),
        }
    }

    fn rec(first: u64, devices: usize, now: u64) -> DomainRec {
        DomainRec {
            first,
            last: now,
            hits: 1,
            devices: (0..devices)
                .map(|i| (IpAddr::from([10, 0, 0, i as u8]), now))
                .collect(),
            ips: Vec::new(),
        }
    }

    // 2024-03-18 14:02 UTC
    const NOW: u64 = 1_710_770_531_000_000;

    fn facts<'a>(domain: &'a str, fqdn: &'a str, r: &'a DomainRec, co: &'a [Binding]) -> Facts<'a> {
        Facts {
            now: NOW,
            domain,
            fqdn,
            rec: Some(r),
            active_devices: 100,
            ip: Some("193.222.96.91".parse().unwrap()),
            cohosted: co,
            learning: false,
            rdap_day: None,
        }
    }

    #[test]
    fn the_reference_case_breaches() {
        let s = Settings::default();
        let r = rec(NOW, 1, NOW);
        let v = scorer().score(
            &s,
            &facts(
                "latovafineart.life",
                "rz8js7sjbef.latovafineart.life",
                &r,
                &[],
            ),
        );
        assert!(v.score >= s.breach_threshold, "{v:?}");
        assert!(
            v.reasons
                .iter()
                .any(|r| r == "registered 4 days ago (feed)"),
            "{v:?}"
        );
        assert!(
            v.reasons.iter().any(|r| r.contains("1 of 100 devices")),
            "{v:?}"
        );
        assert!(v.reasons.iter().any(|r| r == "risky TLD .life"), "{v:?}");
        assert!(v.young && v.suspect);
    }

    #[test]
    fn rdap_dates_a_domain_no_feed_dates_but_never_overrides_a_feed() {
        let s = Settings::default();
        let r = rec(NOW, 1, NOW);
        let today = (NOW / 86_400_000_000) as i64;
        let mut f = facts("thecalebgroup.top", "thecalebgroup.top", &r, &[]);
        f.rdap_day = Some(today - 2);
        let v = scorer().score(&s, &f);
        assert!(
            v.reasons
                .iter()
                .any(|x| x == "registered 2 days ago (RDAP)"),
            "{v:?}"
        );
        assert!(v.young && v.score >= s.breach_threshold, "{v:?}");
        // The feed's date wins over an RDAP answer.
        let mut f = facts("latovafineart.life", "latovafineart.life", &r, &[]);
        f.rdap_day = Some(today - 900);
        let v = scorer().score(&s, &f);
        assert!(
            v.reasons
                .iter()
                .any(|x| x == "registered 4 days ago (feed)"),
            "{v:?}"
        );
    }

    #[test]
    fn novelty_alone_stays_quiet() {
        let s = Settings::default();
        let r = rec(NOW, 1, NOW);
        let v = scorer().score(
            &s,
            &facts("acme-timesheets.com", "app.acme-timesheets.com", &r, &[]),
        );
        assert!(v.score < s.breach_threshold, "{v:?}");
        // Adopted by 40 devices: common.
        let r = rec(NOW - DAY, 40, NOW);
        let v = scorer().score(
            &s,
            &facts("acme-timesheets.com", "app.acme-timesheets.com", &r, &[]),
        );
        assert!(v.score < 20, "{v:?}");
    }

    #[test]
    fn shared_hosting_with_young_domains_raises() {
        let s = Settings::default();
        let r = rec(NOW, 1, NOW);
        let co = [Binding {
            domain: "latovafineart.life".into(),
            fqdn: "rz8js7sjbef.latovafineart.life".into(),
            ts: NOW - DAY,
            suspect: true,
            score: 80,
            device: None,
        }];
        let v = scorer().score(
            &s,
            &facts("thecalebgroup.top", "thecalebgroup.top", &r, &co),
        );
        assert!(v.score >= s.breach_threshold, "{v:?}");
        let v2 = scorer().score(
            &s,
            &facts("thecalebgroup.top", "thecalebgroup.top", &r, &[]),
        );
        assert!(v2.score < v.score);
    }

    #[test]
    fn popular_old_and_learning_lower_the_score() {
        let s = Settings::default();
        let r = rec(NOW, 1, NOW);
        let v = scorer().score(&s, &facts("google.com", "xjw7q2kd9fzq.google.com", &r, &[]));
        assert!(v.popular && v.score == 0, "{v:?}");
        let v = scorer().score(&s, &facts("ancient.com", "ancient.com", &r, &[]));
        assert_eq!(v.score, 0, "{v:?}");
        let mut f = facts("microsoft-login.top", "microsoft-login.top", &r, &[]);
        let hot = scorer().score(&s, &f);
        assert!(hot.score >= s.breach_threshold, "{hot:?}");
        f.learning = true;
        let calm = scorer().score(&s, &f);
        assert!(calm.score < hot.score);
        assert!(!calm.reasons.iter().any(|r| r.contains("first seen")));
    }

    #[test]
    fn human_durations() {
        assert_eq!(human(0), "0 s");
        assert_eq!(human(150_000_000), "2 min");
        assert_eq!(human(4 * DAY), "4 days");
    }
}
