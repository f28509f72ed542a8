//! Where domain intelligence meets the SaaS models and the correlation engine: the analyzer
//! answers their questions (which young or rare domains resolved to this IP, how does this
//! domain score, which user is on this device) from its history and binding table.
//!
//! The analyzer implements [`saas::Context`] and [`correlate::Context`] itself; the models and
//! the engine are taken out of it for the duration of one call, so they can borrow it.

use std::net::IpAddr;

use super::analyzer::Analyzer;
use super::names;
use crate::correlate::{self, Binding, EntityKey};
use crate::models::saas::{self, DomainHint, DomainVerdict, Geo};

/// A domain in an email link is suspect when it scores young or rare at the
/// `Device / Suspicious Domain` threshold or above.
impl saas::Context for Analyzer {
    fn suspect_domains_on(&mut self, ip: IpAddr, ts_us: u64) -> Vec<DomainHint> {
        let mut v: Vec<DomainHint> = self
            .bindings_on(ip, ts_us)
            .into_iter()
            .filter(|b| b.suspect && b.ts <= ts_us)
            .map(|b| DomainHint {
                domain: b.domain,
                fqdn: b.fqdn,
                ts_us: b.ts,
                score: b.score,
                device: b.device,
            })
            .collect();
        v.sort_by_key(|h| std::cmp::Reverse(h.ts_us));
        v
    }

    fn judge_domain(&mut self, domain: &str, ts_us: u64) -> Option<DomainVerdict> {
        let fqdn = names::normalise(domain)?;
        let reg = names::registrable(&fqdn)?.to_string();
        let sc = self.score_at(ts_us, &reg, &fqdn);
        (!sc.popular && sc.suspect && sc.score >= self.settings().breach_threshold).then_some(
            DomainVerdict {
                score: sc.score,
                reasons: sc.reasons,
            },
        )
    }

    fn geo(&self, ip: IpAddr) -> Option<Geo> {
        self.geo_lookup(ip)
    }
}

impl correlate::Context for Analyzer {
    fn user_of_device(&mut self, ip: IpAddr, ts_us: u64) -> Option<Binding> {
        self.binding_table().user_of_device(ip, ts_us)
    }

    fn devices_of_user(&mut self, user: &str, ts_us: u64) -> Vec<Binding> {
        self.binding_table().devices_of_user(user, ts_us)
    }

    fn domains_on_ip(&mut self, ip: IpAddr, ts_us: u64) -> Vec<String> {
        let mut v = self.bindings_on(ip, ts_us);
        // Suspect ones first, then the newest.
        v.sort_by_key(|b| std::cmp::Reverse((b.suspect, b.ts)));
        let mut out: Vec<String> = Vec::new();
        for b in v {
            if !out.contains(&b.fqdn) {
                out.push(b.fqdn);
            }
        }
        out
    }

    fn is_common_entity(&self, key: &EntityKey) -> bool {
        match key.kind {
            correlate::Kind::Domain => self.is_popular(&key.value),
            _ => false,
        }
    }
}
