//! Correlation: model breaches joined into incidents a person can read.
//!
//! [`Engine`] takes every [`ModelBreach`](crate::models::ModelBreach) (network, SaaS and email
//! models alike) and joins breaches that share an entity — a device (IP, MAC, hostname), a
//! user, an external IP, a registrable domain, a URL — within an event-time window into one
//! [`Incident`]. A device bound to a user (static CSV, DHCP, Kerberos: [`bindings`]) joins the
//! user's SaaS breaches to the device's network breaches. Each emitted incident carries a
//! fixed-vocabulary title, a severity, a plain-English summary ([`narrative`]), the entities,
//! a timeline, recommended actions and the bindings it relied on, and is written as one EVE
//! line (`event_type: "incident"`). An incident is re-emitted with the same `id` and a higher
//! `version` each time it changes.
//!
//! Guarantees:
//! - Time is event time only (breach timestamps); a replay gives the same incidents, ids and
//!   versions as the live run, and the engine state (`Serialize + Deserialize`) resumes
//!   identically after a restart.
//! - Every map and list has a named cap, an eviction policy and a counter ([`Counters`]); no
//!   input can panic the engine or make it grow without bound. Strings taken from breaches are
//!   clipped ([`MAX_TEXT`]) and stripped of control characters.
//! - Entities that would glue unrelated activity together are never join keys: private,
//!   loopback and public-resolver addresses as "external IP", whatever the caller's
//!   [`Context::is_common_entity`] calls common, and any key already shared by more than
//!   `max_fanout` incidents.

pub mod bindings;
mod case;
mod engine;
pub mod narrative;
pub mod store;

#[cfg(test)]
mod tests;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::event::format_ts;

pub use bindings::{BindingTable, CsvReport, Observation};
pub use engine::{Counters, Engine, Settings};

/// `SaaS / Access / Unusual External Source for SaaS Credential Use`.
pub const UNUSUAL_SOURCE: &str = "SaaS / Access / Unusual External Source for SaaS Credential Use";
/// `SaaS / Compromise / Unusual Login and Account Update`.
pub const LOGIN_AND_UPDATE: &str = "SaaS / Compromise / Unusual Login and Account Update";
/// `SaaS / Compliance / Anomalous New Email Rule`.
pub const ANOMALOUS_RULE: &str = "SaaS / Compliance / Anomalous New Email Rule";
/// `SaaS / Compromise / Unusual Login and New Email Rule`.
pub const LOGIN_AND_RULE: &str = "SaaS / Compromise / Unusual Login and New Email Rule";
/// `SaaS / Email / Outbound Spike`.
pub const OUTBOUND_SPIKE: &str = "SaaS / Email / Outbound Spike";
/// `Email / Link to Suspicious Domain`.
pub const EMAIL_LINK: &str = "Email / Link to Suspicious Domain";

/// Longest string (in bytes) kept from a breach field; longer ones are cut at a char boundary.
pub const MAX_TEXT: usize = 256;

/// Incident title: the SaaS account of a user taken over, with network or SaaS evidence.
pub const TITLE_HIJACK: &str = "Possible Hijack of Office365 Account";
/// Incident title: the SSL command-and-control model, network evidence only.
pub const TITLE_SSL_C2: &str = "Possible SSL Command and Control";
/// Incident title: many devices sent to the same suspicious infrastructure, no SaaS evidence.
pub const TITLE_PHISHING: &str = "Phishing Campaign Across Multiple Devices";

/// What kind of thing an entity key names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// An internal device by IP address.
    Device,
    /// An internal device by MAC address (lower case, colon separated).
    Mac,
    /// An internal device by hostname (lower case).
    Host,
    /// A SaaS user (lower-case UPN).
    User,
    /// An external IP address.
    Ip,
    /// A registrable domain.
    Domain,
    /// A URL.
    Url,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Device => "device",
            Kind::Mac => "mac",
            Kind::Host => "host",
            Kind::User => "user",
            Kind::Ip => "ip",
            Kind::Domain => "domain",
            Kind::Url => "url",
        }
    }

    fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "device" => Kind::Device,
            "mac" => Kind::Mac,
            "host" => Kind::Host,
            "user" => Kind::User,
            "ip" => Kind::Ip,
            "domain" => Kind::Domain,
            "url" => Kind::Url,
            _ => return None,
        })
    }
}

/// One entity incidents can be joined on; written `kind:value` (e.g. `ip:193.222.96.91`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntityKey {
    pub kind: Kind,
    pub value: String,
}

impl EntityKey {
    pub fn new(kind: Kind, value: impl Into<String>) -> Self {
        EntityKey {
            kind,
            value: value.into(),
        }
    }
}

impl fmt::Display for EntityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.as_str(), self.value)
    }
}

impl FromStr for EntityKey {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (kind, value) = s
            .split_once(':')
            .ok_or_else(|| format!("entity key without a kind: {s:?}"))?;
        let kind = Kind::parse(kind).ok_or_else(|| format!("unknown entity kind {kind:?}"))?;
        Ok(EntityKey::new(kind, value))
    }
}

impl Serialize for EntityKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EntityKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Where a device <-> user binding comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BindingSource {
    /// The operator's static table.
    Csv,
    /// A DHCP lease (IP -> MAC/hostname) matched to the static table.
    Dhcp,
    /// A Kerberos ticket request from the device's IP naming the user.
    Kerberos,
}

impl BindingSource {
    pub fn as_str(self) -> &'static str {
        match self {
            BindingSource::Csv => "csv",
            BindingSource::Dhcp => "dhcp",
            BindingSource::Kerberos => "kerberos",
        }
    }
}

/// "Never expires" for [`Binding::expires_us`].
pub const NEVER: u64 = u64::MAX;

fn never() -> u64 {
    NEVER
}

fn is_never(v: &u64) -> bool {
    *v == NEVER
}

/// A device known to be used by a user at some event time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Binding {
    pub device_ip: IpAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    pub user: String,
    pub source: BindingSource,
    /// 0.0 - 1.0: how sure the source is.
    pub confidence: f32,
    /// Event time (µs) after which the binding no longer holds; [`NEVER`] for static ones.
    #[serde(default = "never", skip_serializing_if = "is_never")]
    pub expires_us: u64,
}

/// What the engine asks of the rest of crosswire. All lookups are at event time `ts_us`.
pub trait Context {
    /// The user of the device with this address at `ts_us`, if known.
    fn user_of_device(&mut self, ip: IpAddr, ts_us: u64) -> Option<Binding>;
    /// The devices the user was on around `ts_us`.
    fn devices_of_user(&mut self, user: &str, ts_us: u64) -> Vec<Binding>;
    /// Names that resolved to `ip` (DNS answers seen) at or before `ts_us`, most relevant first.
    fn domains_on_ip(&mut self, ip: IpAddr, ts_us: u64) -> Vec<String>;
    /// True for entities too common to join on (popular domains, the office egress IP, a
    /// shared service account, ...).
    fn is_common_entity(&self, key: &EntityKey) -> bool;
}

/// A [`Context`] that knows nothing: no bindings, no DNS, nothing common.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoContext;

impl Context for NoContext {
    fn user_of_device(&mut self, _: IpAddr, _: u64) -> Option<Binding> {
        None
    }
    fn devices_of_user(&mut self, _: &str, _: u64) -> Vec<Binding> {
        Vec::new()
    }
    fn domains_on_ip(&mut self, _: IpAddr, _: u64) -> Vec<String> {
        Vec::new()
    }
    fn is_common_entity(&self, _: &EntityKey) -> bool {
        false
    }
}

/// Incident severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

/// The entities of an incident, each list in order of first appearance.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Entities {
    pub devices: Vec<String>,
    pub users: Vec<String>,
    pub ips: Vec<String>,
    pub domains: Vec<String>,
    pub urls: Vec<String>,
}

/// One timeline entry: a breach, or repeats of the same breach folded together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEvent {
    /// Time of the first occurrence (RFC 3339 with µs).
    pub timestamp: String,
    pub model: String,
    pub score: u8,
    /// One line.
    pub summary: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Occurrences folded into this entry (repeats and, when the timeline is full, other
    /// breaches of the same model).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub count: u32,
    /// Time of the last occurrence, when there was more than one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_timestamp: Option<String>,
}

fn one() -> u32 {
    1
}

fn is_one(v: &u32) -> bool {
    *v == 1
}

/// An incident as emitted: the `incident` object of the EVE line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: String,
    pub version: u32,
    pub title: String,
    pub severity: Severity,
    pub summary: String,
    pub entities: Entities,
    /// Timeline, oldest first.
    pub events: Vec<TimelineEvent>,
    pub actions: Vec<String>,
    /// Device <-> user bindings the incident relied on.
    #[serde(default)]
    pub bindings: Vec<Binding>,
    /// Event time (µs) of the oldest and newest breach.
    pub first_ts: u64,
    pub last_ts: u64,
    /// Summed score of the distinct breaches.
    pub risk: u32,
    /// Ids of incidents that were merged into this one (consumers retire them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged: Vec<String>,
}

#[derive(Serialize)]
struct Envelope<'a> {
    timestamp: String,
    event_type: &'static str,
    incident: &'a Incident,
}

impl Incident {
    /// Appends the EVE JSON line (with trailing newline); `timestamp` is the time of the newest
    /// breach in the incident.
    pub fn write_eve(&self, out: &mut Vec<u8>) {
        let env = Envelope {
            timestamp: format_ts(self.last_ts),
            event_type: "incident",
            incident: self,
        };
        if serde_json::to_writer(&mut *out, &env).is_err() {
            out.extend_from_slice(b"{}");
        }
        out.push(b'\n');
    }
}

/// `s` cut to at most `max` bytes at a char boundary, control characters replaced by spaces.
pub(crate) fn clip(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max));
    for c in s.chars() {
        if out.len() + c.len_utf8() > max {
            break;
        }
        out.push(if c.is_control() { ' ' } else { c });
    }
    out
}

/// Well-known public resolvers: a device talking to them says nothing about an attack.
const PUBLIC_RESOLVERS: [Ipv4Addr; 8] = [
    Ipv4Addr::new(8, 8, 8, 8),
    Ipv4Addr::new(8, 8, 4, 4),
    Ipv4Addr::new(1, 1, 1, 1),
    Ipv4Addr::new(1, 0, 0, 1),
    Ipv4Addr::new(9, 9, 9, 9),
    Ipv4Addr::new(149, 112, 112, 112),
    Ipv4Addr::new(208, 67, 222, 222),
    Ipv4Addr::new(208, 67, 220, 220),
];

/// True when `ip` can identify attacker infrastructure: not private, loopback, link-local,
/// shared (CGNAT), multicast, unspecified, broadcast or a well-known public resolver.
pub fn is_joinable_external_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => joinable_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => joinable_v4(v4),
            None => joinable_v6(v6),
        },
    }
}

fn joinable_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    let cgnat = a == 100 && (64..128).contains(&b);
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || cgnat
        || a == 0
        || PUBLIC_RESOLVERS.contains(&ip))
}

fn joinable_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    let unique_local = first & 0xfe00 == 0xfc00;
    let link_local = first & 0xffc0 == 0xfe80;
    !(ip.is_loopback() || ip.is_unspecified() || ip.is_multicast() || unique_local || link_local)
}
