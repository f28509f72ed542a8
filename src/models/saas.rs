//! SaaS and email models: turn normalised Microsoft 365 / Entra ID / Defender records
//! ([`Record`]) into model breaches, against per-user baselines learnt in event time.
//!
//! - [`UNUSUAL_SOURCE`]: a *successful* login from an ASN or country the user has not used
//!   within its window (7 / 10 days; the IP's /24 or /48 when the login has neither, or the
//!   user's baseline has neither), or impossible travel (>= 500 km at >= 800 km/h between
//!   consecutive located logins). A source several other users sign in from on several days
//!   (another office, a mobile carrier) is not unusual. Failed logins never breach; they are
//!   kept as context ("after 12 failed logins from this address"). A young or rare domain that
//!   recently resolved to the login IP ([`Context::suspect_domains_on`]) raises the score and is
//!   named in the reasons: that IP is the join key with the network side.
//! - [`LOGIN_AND_ACCOUNT_UPDATE`]: an MFA method added within 48 h after an unusual login.
//! - [`ANOMALOUS_RULE`]: a new or changed inbox rule scoring >= 3 of 5 points (odd name,
//!   mark-as-read, hiding folder, delete, forward outside the user's domain), or mailbox
//!   forwarding to another domain.
//! - [`LOGIN_AND_RULE`]: such a rule within 48 h after an unusual login, from any IP.
//! - [`OUTBOUND_SPIKE`]: sent mail in the last hour above max(50, 5 x the user's usual peak hour)
//!   (needs 7 days of the user's send history), or more than 10 bounce-backs for one original
//!   subject within 10 minutes.
//! - [`SUSPICIOUS_LINK`]: an inbound email with a URL on a domain the context calls young or rare
//!   (`EmailUrlInfo` joined to `EmailEvents` on the message id, in either order).
//!
//! Scores: unusual source = 60 new country / 50 new ASN / 40 new network (+10 when several are
//! new), impossible travel 60 alone or +15, a suspect domain on the IP +20 + its score / 10,
//! failed logins from the same IP in the last 24 h +10. Login + MFA 85, login + rule 90, rules
//! 25 + 15 per point, mailbox forwarding 75, spike 75 (hourly) / 70 (bounces), links take the
//! domain's own score. All capped at 100.
//!
//! Each model fires once per occurrence: a login seen in both UAL and SigninLogs (same user and
//! IP within 2 min, or same correlation id), an MFA change seen as `Update user.` and in
//! AuditLogs (same user within 10 min), a rule reported twice (same user and name within 48 h),
//! a spike (once per user per 24 h) and a link (once per recipient and host per 24 h) count once.
//!
//! Time is event time (µs). Records may arrive late: unusual logins, MFA changes and anomalous
//! rules are kept per user and paired whichever arrives second (a later record may precede the
//! login by up to `pair_skew_us`). The first `learning_period_us` after the first record only
//! builds baselines, and a user's logins are judged only once that user has
//! `user_learning_us` of own login history (a new or evicted user re-learns).
//!
//! Layout: this file holds the API, settings, state types and record dispatch; `access`
//! judges logins and pairs follow-ups with them; `mail` scores rules and forwarding, counts
//! sent mail and bounces, and joins URL rows to messages. Tests are in `saas_tests.rs`.
//!
//! Limits and guarantees: every map and list has a named cap (`MAX_*`,
//! [`SaasSettings::max_users`]); when full the least recently active entries are evicted and
//! counted ([`SaasModels::counters`]). No input panics: strings are clipped before they are
//! kept, arithmetic saturates, invalid coordinates and countries are ignored, and records
//! timed outside [`MIN_TS_US`]..[`MAX_TS_US`] are counted and dropped. The per-user and join
//! maps use std's randomly seeded hasher; the FNV hash (`fnv`) only fingerprints message ids
//! and subjects inside small per-user lists. [`SaasState`] is `Serialize + Deserialize` and
//! holds no floats: a restored state produces the same breaches as an uninterrupted run.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use crate::ingest::record::{
    Direction, EmailEvent, EmailKind, Record, SaasEvent, SaasKind, Schema,
};
use crate::models::breach::ModelBreach;

pub const UNUSUAL_SOURCE: &str = "SaaS / Access / Unusual External Source for SaaS Credential Use";
pub const LOGIN_AND_ACCOUNT_UPDATE: &str = "SaaS / Compromise / Unusual Login and Account Update";
pub const ANOMALOUS_RULE: &str = "SaaS / Compliance / Anomalous New Email Rule";
pub const LOGIN_AND_RULE: &str = "SaaS / Compromise / Unusual Login and New Email Rule";
pub const OUTBOUND_SPIKE: &str = "SaaS / Email / Outbound Spike";
pub const SUSPICIOUS_LINK: &str = "Email / Link to Suspicious Domain";

/// Every model of this module.
pub const MODELS: [&str; 6] = [
    UNUSUAL_SOURCE,
    LOGIN_AND_ACCOUNT_UPDATE,
    ANOMALOUS_RULE,
    LOGIN_AND_RULE,
    OUTBOUND_SPIKE,
    SUSPICIOUS_LINK,
];

/// Default of [`SaasSettings::max_users`].
pub const MAX_USERS: usize = 50_000;
/// Sources (ASN, country, network) remembered per user.
pub const MAX_SOURCES_PER_USER: usize = 64;
/// Sources tracked organisation-wide (for the "another office" exception).
pub const MAX_ORG_SOURCES: usize = 20_000;
/// Users remembered per organisation-wide source (only "at least N" is asked).
pub const MAX_USERS_PER_ORG_SOURCE: usize = 16;
/// Recent successful logins kept per user (duplicate detection).
pub const MAX_RECENT_LOGINS: usize = 16;
/// Recent failed logins kept per user (context).
pub const MAX_FAILURES: usize = 32;
/// Unusual logins, MFA changes and anomalous rules kept per user for pairing.
pub const MAX_PENDING: usize = 16;
/// Inbox rules whose last known actions are kept per user (`Set-InboxRule` merges into them).
pub const MAX_RULES_PER_USER: usize = 32;
/// Links reported per user (deduplication).
pub const MAX_LINKS_PER_USER: usize = 16;
/// 10-minute send counters kept per user (a sliding hour plus one).
pub const MAX_SEND_SLOTS: usize = 7;
/// Daily peak-hour counts kept per user.
pub const MAX_SEND_DAYS: usize = 35;
/// Recent message ids per sender (one message has one row per recipient).
pub const MAX_MSG_IDS: usize = 64;
/// Bounce-backs kept per user.
pub const MAX_BOUNCES: usize = 128;
/// Messages waiting in the URL join.
pub const MAX_JOIN: usize = 8192;
/// Recipients kept per joined message.
pub const MAX_JOIN_RECIPIENTS: usize = 16;
/// URLs kept per joined message.
pub const MAX_JOIN_URLS: usize = 8;
/// Longest user name accepted (an address is at most 254 bytes).
pub const MAX_USER_LEN: usize = 320;
/// Longest message id accepted.
pub const MAX_ID_LEN: usize = 256;
/// Characters of a subject, name or URL kept for reasons.
pub const MAX_TEXT: usize = 160;
/// Parameters of one inbox-rule record looked at.
pub const MAX_PARAMS: usize = 64;
/// Domain hints used per login.
pub const MAX_HINTS: usize = 3;
/// Record times outside [2000-01-01, 2100-01-01) are garbage: one of them would otherwise move
/// the event clock (and every expiry) to the end of time.
pub const MIN_TS_US: u64 = 946_684_800 * 1_000_000;
pub const MAX_TS_US: u64 = 4_102_444_800 * 1_000_000;

const SEC: u64 = 1_000_000;
const MINUTE: u64 = 60 * SEC;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;
const FAILURE_LOOKBACK_US: u64 = DAY;

/// Logins: baselines, the unusual-source judgement, pairing with follow-ups.
mod access;
/// Inbox rules, forwarding, outbound volume, bounces and links in inbound mail.
mod mail;

use access::LoginInfo;
use mail::bounce_subject;

/// Tunables of the SaaS and email models; times are µs of event time.
#[derive(Debug, Clone, PartialEq)]
pub struct SaasSettings {
    /// From the first record, logins only build baselines for this long.
    pub learning_period_us: u64,
    /// Own login history (from the user's first successful login) a user needs before their
    /// logins are judged.
    pub user_learning_us: u64,
    /// An ASN the user has not signed in from within this window is new.
    pub asn_window_us: u64,
    /// A country the user has not signed in from within this window is new.
    pub country_window_us: u64,
    /// A /24 (IPv4) or /48 (IPv6) network, used when neither ASN nor country is known.
    pub net_window_us: u64,
    /// A source used on at least this many distinct days stays known for
    /// `established_window_us` (a holiday does not make the office unusual).
    pub established_days: u16,
    /// How long an established source stays known without use.
    pub established_window_us: u64,
    /// An MFA change or new rule this long after an unusual login is paired with it.
    pub followup_window_us: u64,
    /// A follow-up may precede the login by this much (records from different logs).
    pub pair_skew_us: u64,
    /// Impossible travel: at least this distance ...
    pub travel_km: f64,
    /// ... at at least this speed.
    pub travel_kmh: f64,
    /// A source is routine for the organisation when this many other users use it ...
    pub org_routine_users: u32,
    /// ... or at least this share of the users seen (and at least two) ...
    pub org_routine_share: f64,
    /// ... each on at least this many distinct days within the source's window.
    pub org_routine_days: u16,
    /// The same user, IP and outcome within this span is one login.
    pub login_dedup_us: u64,
    /// MFA changes of one user within this span are one change.
    pub mfa_dedup_us: u64,
    /// The same user and rule name within this span is one rule.
    pub rule_dedup_us: u64,
    /// Points (of 5) that make an inbox rule anomalous.
    pub rule_min_points: u8,
    /// Sent messages in an hour must exceed this ...
    pub spike_min_hourly: u32,
    /// ... and this multiple of the user's usual peak hour.
    pub spike_factor: u32,
    /// Send history a user needs before the hourly rule applies.
    pub spike_history_us: u64,
    /// One spike breach per user within this span.
    pub spike_dedup_us: u64,
    /// More than this many bounce-backs for one subject ...
    pub bounce_min: u32,
    /// ... within this span is a spike.
    pub bounce_window_us: u64,
    /// One link breach per recipient and host within this span.
    pub link_dedup_us: u64,
    /// How long a message or URL row waits for its other half.
    pub join_window_us: u64,
    /// Users tracked at once; the least recently active are evicted.
    pub max_users: usize,
}

impl Default for SaasSettings {
    fn default() -> Self {
        SaasSettings {
            learning_period_us: 7 * DAY,
            user_learning_us: 7 * DAY,
            asn_window_us: 7 * DAY,
            country_window_us: 10 * DAY,
            net_window_us: 7 * DAY,
            established_days: 5,
            established_window_us: 60 * DAY,
            followup_window_us: 48 * HOUR,
            pair_skew_us: 10 * MINUTE,
            travel_km: 500.0,
            travel_kmh: 800.0,
            org_routine_users: 3,
            org_routine_share: 0.10,
            org_routine_days: 2,
            login_dedup_us: 2 * MINUTE,
            mfa_dedup_us: 10 * MINUTE,
            rule_dedup_us: 48 * HOUR,
            rule_min_points: 3,
            spike_min_hourly: 50,
            spike_factor: 5,
            spike_history_us: 7 * DAY,
            spike_dedup_us: DAY,
            bounce_min: 10,
            bounce_window_us: 10 * MINUTE,
            link_dedup_us: DAY,
            join_window_us: 2 * HOUR,
            max_users: MAX_USERS,
        }
    }
}

/// A setting that cannot work.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SettingsError {
    #[error("saas setting `{0}` must be greater than zero")]
    Zero(&'static str),
    #[error("saas setting `{name}` is {value}; expected {expected}")]
    OutOfRange {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
}

impl SaasSettings {
    /// Checks the settings before start (the models never panic on bad ones, but would
    /// silently do nothing useful).
    pub fn validate(&self) -> Result<(), SettingsError> {
        let nonzero = [
            ("asn_window", self.asn_window_us),
            ("country_window", self.country_window_us),
            ("net_window", self.net_window_us),
            ("established_window", self.established_window_us),
            ("followup_window", self.followup_window_us),
            ("login_dedup", self.login_dedup_us),
            ("mfa_dedup", self.mfa_dedup_us),
            ("rule_dedup", self.rule_dedup_us),
            ("spike_dedup", self.spike_dedup_us),
            ("bounce_window", self.bounce_window_us),
            ("link_dedup", self.link_dedup_us),
            ("join_window", self.join_window_us),
            ("org_routine_users", u64::from(self.org_routine_users)),
            ("org_routine_days", u64::from(self.org_routine_days)),
            ("established_days", u64::from(self.established_days)),
            ("spike_min_hourly", u64::from(self.spike_min_hourly)),
            ("spike_factor", u64::from(self.spike_factor)),
            ("bounce_min", u64::from(self.bounce_min)),
            ("max_users", self.max_users as u64),
        ];
        if let Some((name, _)) = nonzero.iter().find(|(_, v)| *v == 0) {
            return Err(SettingsError::Zero(name));
        }
        let positive = [
            ("travel_km", self.travel_km),
            ("travel_kmh", self.travel_kmh),
        ];
        for (name, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return Err(SettingsError::OutOfRange {
                    name,
                    value: v.to_string(),
                    expected: "a positive number",
                });
            }
        }
        if !(0.0..=1.0).contains(&self.org_routine_share) {
            return Err(SettingsError::OutOfRange {
                name: "org_routine_share",
                value: self.org_routine_share.to_string(),
                expected: "a share between 0 and 1",
            });
        }
        if !(1..=5).contains(&self.rule_min_points) {
            return Err(SettingsError::OutOfRange {
                name: "rule_min_points",
                value: self.rule_min_points.to_string(),
                expected: "1 to 5",
            });
        }
        if self.max_users > 10_000_000 {
            return Err(SettingsError::OutOfRange {
                name: "max_users",
                value: self.max_users.to_string(),
                expected: "at most 10,000,000",
            });
        }
        Ok(())
    }
}

/// What the rest of crosswire tells the SaaS models.
pub trait Context {
    /// Young or rare domains that resolved to `ip` at or before `ts_us` (within the caller's
    /// binding window), newest first, with the device that contacted them when known.
    fn suspect_domains_on(&mut self, ip: IpAddr, ts_us: u64) -> Vec<DomainHint>;
    /// How a domain scores now (for email links); None when unknown/normal.
    fn judge_domain(&mut self, domain: &str, ts_us: u64) -> Option<DomainVerdict>;
    /// GeoIP/ASN for an address (may always return None).
    fn geo(&self, ip: IpAddr) -> Option<Geo>;
}

/// A young or rare domain seen resolving to an address.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainHint {
    /// Registrable domain.
    pub domain: String,
    pub fqdn: String,
    /// When the resolution (or the connection) was seen.
    pub ts_us: u64,
    pub score: u8,
    /// The device that contacted it.
    pub device: Option<IpAddr>,
}

/// Why a domain is suspicious.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomainVerdict {
    pub score: u8,
    pub reasons: Vec<String>,
}

/// GeoIP/ASN facts about an address.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Geo {
    /// Two-letter country code.
    pub country: Option<String>,
    pub asn: Option<u32>,
    pub as_org: Option<String>,
    /// Latitude, longitude.
    pub lat_lon: Option<(f64, f64)>,
}

/// A context that knows nothing: no domain intelligence, no GeoIP.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoContext;

impl Context for NoContext {
    fn suspect_domains_on(&mut self, _ip: IpAddr, _ts_us: u64) -> Vec<DomainHint> {
        Vec::new()
    }
    fn judge_domain(&mut self, _domain: &str, _ts_us: u64) -> Option<DomainVerdict> {
        None
    }
    fn geo(&self, _ip: IpAddr) -> Option<Geo> {
        None
    }
}

// ---------------------------------------------------------------------------------------------
// Sources
// ---------------------------------------------------------------------------------------------

/// Where a login came from, at one granularity. Serialised as `asn:64500`, `cc:NL`,
/// `net:198.51.100.0/24`, `net:2001:db8:1::/48`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
enum Source {
    Asn(u32),
    Country([u8; 2]),
    Net4(u32),
    Net6(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dim {
    Asn,
    Country,
    Net,
}

impl Source {
    fn net(ip: IpAddr) -> Source {
        match plain(ip) {
            IpAddr::V4(a) => Source::Net4(u32::from(a) & 0xffff_ff00),
            IpAddr::V6(a) => Source::Net6(((u128::from(a) >> 64) as u64) & 0xffff_ffff_ffff_0000),
        }
    }

    fn country(cc: &str) -> Option<Source> {
        match cc.trim().as_bytes() {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                Some(Source::Country([
                    a.to_ascii_uppercase(),
                    b.to_ascii_uppercase(),
                ]))
            }
            _ => None,
        }
    }

    fn dim(self) -> Dim {
        match self {
            Source::Asn(_) => Dim::Asn,
            Source::Country(_) => Dim::Country,
            Source::Net4(_) | Source::Net6(_) => Dim::Net,
        }
    }

    fn key(self) -> String {
        match self {
            Source::Asn(n) => format!("asn:{n}"),
            Source::Country(_) => format!("cc:{self}"),
            Source::Net4(_) | Source::Net6(_) => format!("net:{self}"),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Source::Asn(n) => write!(f, "AS{n}"),
            Source::Country([a, b]) => write!(f, "{}{}", char::from(a), char::from(b)),
            Source::Net4(n) => write!(f, "{}/24", Ipv4Addr::from(n)),
            Source::Net6(n) => write!(f, "{}/48", Ipv6Addr::from(u128::from(n) << 64)),
        }
    }
}

impl From<Source> for String {
    fn from(s: Source) -> String {
        s.key()
    }
}

impl TryFrom<String> for Source {
    type Error = String;

    fn try_from(s: String) -> Result<Source, String> {
        let bad = || format!("`{s}` is not a login source");
        if let Some(n) = s.strip_prefix("asn:") {
            return n.parse().map(Source::Asn).map_err(|_| bad());
        }
        if let Some(cc) = s.strip_prefix("cc:") {
            return Source::country(cc).ok_or_else(bad);
        }
        let net = s.strip_prefix("net:").ok_or_else(bad)?;
        let (addr, _) = net.split_once('/').ok_or_else(bad)?;
        let ip: IpAddr = addr.parse().map_err(|_| bad())?;
        Ok(Source::net(ip))
    }
}

/// IPv4-mapped IPv6 addresses are IPv4.
fn plain(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// One source in a user's baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SourceSeen {
    src: Source,
    last_us: u64,
    first_day: u32,
    last_day: u32,
    /// Distinct days used (approximate when records arrive out of order).
    days: u16,
}

fn day_of(ts: u64) -> u32 {
    u32::try_from(ts / DAY).unwrap_or(u32::MAX)
}

/// One user of an organisation-wide source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct OrgUser {
    user: String,
    last_us: u64,
    first_day: u32,
    last_day: u32,
    days: u16,
}

/// Who signs in from one source.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct OrgSource {
    last_us: u64,
    users: Vec<OrgUser>,
}

// ---------------------------------------------------------------------------------------------
// Per-user state
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct LoginSeen {
    ts: u64,
    ip: IpAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    corr: Option<String>,
}

/// The last login with coordinates (micro-degrees: no floats in the state).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Located {
    ts: u64,
    ip: IpAddr,
    at: (i32, i32),
    #[serde(default, skip_serializing_if = "Option::is_none")]
    country: Option<Source>,
}

/// An unusual login (a breach of [`UNUSUAL_SOURCE`]) waiting for follow-ups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Unusual {
    ts: u64,
    ip: IpAddr,
    /// "193.222.96.91 (NL)".
    label: String,
    /// An MFA change was already reported against it.
    mfa_done: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct MfaSeen {
    ts: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ip: Option<IpAddr>,
    detail: String,
    paired: bool,
}

/// An anomalous rule or forwarding already reported (deduplication and pairing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Anomalous {
    key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rule: Option<String>,
    /// "inbox rule \"...\" (marks as read, moves to RSS Feeds, odd name)".
    what: String,
    ts: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ip: Option<IpAddr>,
    paired: bool,
}

/// What an inbox rule does, as far as the records said.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct RuleActions {
    mark_read: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    folder: Option<String>,
    delete: bool,
    soft_delete: bool,
    /// Addresses of `ForwardTo`, `RedirectTo`, `ForwardAsAttachmentTo`.
    forward: [Vec<String>; 3],
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct RuleState {
    name_lc: String,
    last_us: u64,
    actions: RuleActions,
}

/// Sends counted in one 10-minute slot, per source log (UAL, EmailEvents, message trace):
/// the same message is in several logs, so the busiest log counts, never the sum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Slot {
    slot: u64,
    n: [u32; 3],
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct SendState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    first_us: Option<u64>,
    slots: Vec<Slot>,
    /// (day, busiest sliding hour that day).
    days: Vec<(u32, u32)>,
    msg_ids: Vec<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reported_us: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Bounce {
    ts: u64,
    subject: u64,
    msg: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct UserState {
    /// Latest event time of any record of this user (eviction order).
    last_us: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    first_login_us: Option<u64>,
    sources: Vec<SourceSeen>,
    logins: Vec<LoginSeen>,
    failures: Vec<(u64, IpAddr)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    located: Option<Located>,
    unusual: Vec<Unusual>,
    mfa: Vec<MfaSeen>,
    anomalous: Vec<Anomalous>,
    rules: Vec<RuleState>,
    /// (host, when reported) for links.
    links: Vec<(String, u64)>,
    send: SendState,
    bounces: Vec<Bounce>,
}

impl UserState {
    /// Drops pairing and dedup entries no record can still match.
    fn expire(&mut self, s: &SaasSettings) {
        let now = self.last_us;
        let follow = s.followup_window_us.saturating_add(s.pair_skew_us);
        let keep = |ts: u64, w: u64| ts.saturating_add(w) >= now;
        self.unusual.retain(|x| keep(x.ts, follow));
        self.mfa.retain(|x| keep(x.ts, follow.max(s.mfa_dedup_us)));
        self.anomalous
            .retain(|x| keep(x.ts, follow.max(s.rule_dedup_us)));
        self.links.retain(|x| keep(x.1, s.link_dedup_us));
        self.bounces.retain(|x| keep(x.ts, s.bounce_window_us));
        self.failures.retain(|x| keep(x.0, FAILURE_LOOKBACK_US));
    }
}

// ---------------------------------------------------------------------------------------------
// Email join
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct JoinRcpt {
    user: String,
    ts: u64,
    sender: String,
    subject: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct JoinUrl {
    url: String,
    host: String,
    ts: u64,
    judged: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    verdict: Option<DomainVerdict>,
}

/// Both halves of one message seen so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Join {
    last_us: u64,
    recipients: Vec<JoinRcpt>,
    urls: Vec<JoinUrl>,
}

// ---------------------------------------------------------------------------------------------
// State, counters, the models
// ---------------------------------------------------------------------------------------------

/// What the models count (all cumulative; persisted with the state).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Counters {
    pub records: u64,
    /// Records without a usable user, message id or URL.
    pub skipped: u64,
    /// Records with a time outside [`MIN_TS_US`, `MAX_TS_US`).
    pub bad_time: u64,
    pub logins: u64,
    pub failed_logins: u64,
    pub logins_without_ip: u64,
    pub mfa_changes: u64,
    /// MFA records that removed methods.
    pub mfa_not_added: u64,
    pub rules: u64,
    pub forwardings: u64,
    pub sends: u64,
    /// Sends older than the sliding hour when they arrived.
    pub late_sends: u64,
    pub bounces: u64,
    pub urls: u64,
    pub clicks: u64,
    /// Records kept only as context (mail access, other operations).
    pub other: u64,
    pub login_dedup: u64,
    pub mfa_dedup: u64,
    pub rule_dedup: u64,
    pub send_dedup: u64,
    pub link_dedup: u64,
    /// Join entries dropped because their other half did not come in time.
    pub join_expired: u64,
    pub evicted_users: u64,
    pub evicted_sources: u64,
    pub evicted_org_sources: u64,
    pub evicted_joins: u64,
    /// Entries dropped from capped per-user and per-message lists.
    pub trimmed: u64,
    /// Breaches per model.
    pub breaches: BTreeMap<String, u64>,
}

/// Everything the models remember; persist it and restore with [`SaasModels::from_state`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SaasState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    first_us: Option<u64>,
    clock_us: u64,
    users: HashMap<String, UserState>,
    org: HashMap<String, OrgSource>,
    join: HashMap<String, Join>,
    join_swept_us: u64,
    counters: Counters,
}

/// The SaaS and email models.
#[derive(Debug, Clone, Default)]
pub struct SaasModels {
    settings: SaasSettings,
    state: SaasState,
}

impl SaasModels {
    pub fn new(settings: SaasSettings) -> SaasModels {
        SaasModels {
            settings,
            state: SaasState::default(),
        }
    }

    /// Resumes from a persisted state.
    pub fn from_state(settings: SaasSettings, state: SaasState) -> SaasModels {
        SaasModels { settings, state }
    }

    pub fn state(&self) -> &SaasState {
        &self.state
    }

    pub fn into_state(self) -> SaasState {
        self.state
    }

    /// New settings take effect with the next record (a smaller `max_users` evicts on the next
    /// new user).
    pub fn reconfigure(&mut self, s: SaasSettings) {
        self.settings = s;
    }

    /// Records, logins, breaches per model, evictions and dedup hits.
    pub fn counters(&self) -> serde_json::Value {
        let c = &self.state.counters;
        let mut v = serde_json::to_value(c).unwrap_or_default();
        if let Some(m) = v.as_object_mut() {
            let dedup = c.login_dedup + c.mfa_dedup + c.rule_dedup + c.send_dedup + c.link_dedup;
            m.insert("dedup_hits".into(), dedup.into());
            m.insert("users".into(), self.state.users.len().into());
            m.insert("org_sources".into(), self.state.org.len().into());
            m.insert("join_pending".into(), self.state.join.len().into());
            m.insert("learning".into(), self.learning(self.state.clock_us).into());
        }
        v
    }

    fn learning(&self, ts: u64) -> bool {
        self.state
            .first_us
            .is_none_or(|f| ts < f.saturating_add(self.settings.learning_period_us))
    }

    /// Feeds one record; breaches it completes are appended to `out`.
    pub fn observe(&mut self, r: &Record, ctx: &mut dyn Context, out: &mut Vec<ModelBreach>) {
        let ts = r.ts_us();
        let st = &mut self.state;
        st.counters.records += 1;
        if !(MIN_TS_US..MAX_TS_US).contains(&ts) {
            st.counters.bad_time += 1;
            return;
        }
        st.first_us.get_or_insert(ts);
        st.clock_us = st.clock_us.max(ts);
        match r {
            Record::Saas(ev) => self.saas(ev, ctx, out),
            Record::Email(ev) => self.email(ev, ctx, out),
        }
    }

    fn saas(&mut self, ev: &SaasEvent, ctx: &mut dyn Context, out: &mut Vec<ModelBreach>) {
        let Some(user) = clean_user(&ev.user) else {
            self.state.counters.skipped += 1;
            return;
        };
        match &ev.kind {
            SaasKind::Login {
                success,
                country,
                geo,
                correlation_id,
                ..
            } => {
                let info = LoginInfo {
                    success: *success,
                    country: country.as_deref(),
                    geo: *geo,
                    corr: correlation_id.as_deref(),
                };
                self.login(ev, &user, info, ctx, out);
            }
            SaasKind::InboxRule { name, params } => self.rule(ev, &user, name, params, out),
            SaasKind::Forwarding { target } => self.forwarding(ev, &user, target, out),
            SaasKind::MfaChange {
                before,
                after,
                detail,
            } => self.mfa(ev, &user, (*before, *after), detail, out),
            SaasKind::Send { .. } => {
                let id = Some(ev.id.as_str()).filter(|i| !i.is_empty());
                self.sent(&user, ev.ts_us, SRC_UAL, id, "", out);
            }
            SaasKind::MailAccess { .. } | SaasKind::Other => self.state.counters.other += 1,
        }
    }

    fn email(&mut self, ev: &EmailEvent, ctx: &mut dyn Context, out: &mut Vec<ModelBreach>) {
        match &ev.kind {
            EmailKind::Message {
                direction,
                sender,
                recipient,
                subject,
                ..
            } => {
                let src = if ev.schema == Schema::MessageTrace {
                    SRC_TRACE
                } else {
                    SRC_EMAIL
                };
                let id = Some(ev.message_id.as_str()).filter(|i| !i.is_empty());
                if matches!(direction, Direction::Outbound | Direction::IntraOrg) {
                    match clean_user(sender) {
                        Some(u) => self.sent(&u, ev.ts_us, src, id, subject, out),
                        None => self.state.counters.skipped += 1,
                    }
                }
                let rcpt = clean_user(recipient);
                if *direction != Direction::Outbound
                    && let Some(original) = bounce_subject(subject)
                    && let Some(r) = &rcpt
                {
                    self.bounce(r, ev.ts_us, &ev.message_id, original, out);
                }
                match (direction, rcpt) {
                    (Direction::Inbound, Some(r)) => {
                        let rc = JoinRcpt {
                            user: r,
                            ts: ev.ts_us,
                            sender: clip(sender, MAX_TEXT),
                            subject: clip(subject, MAX_TEXT),
                        };
                        self.join_message(&ev.message_id, rc, ctx, out);
                    }
                    (Direction::Inbound, None) => self.state.counters.skipped += 1,
                    // URLs of mail the organisation sent are not this model's business.
                    _ => {
                        if self
                            .state
                            .join
                            .get(ev.message_id.as_str())
                            .is_some_and(|j| j.recipients.is_empty())
                        {
                            self.state.join.remove(ev.message_id.as_str());
                        }
                    }
                }
            }
            EmailKind::Url { url, domain } => self.join_url(ev, url, domain, ctx, out),
            EmailKind::Click { .. } => self.state.counters.clicks += 1,
        }
    }
}

const SRC_UAL: usize = 0;
const SRC_EMAIL: usize = 1;
const SRC_TRACE: usize = 2;

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

fn new_breach(model: &'static str, ts: u64, user: &str) -> ModelBreach {
    ModelBreach {
        ts_us: ts,
        model,
        score: 0,
        device: None,
        user: Some(user.to_string()),
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

fn emit(c: &mut Counters, out: &mut Vec<ModelBreach>, b: ModelBreach) {
    *c.breaches.entry(b.model.to_string()).or_default() += 1;
    out.push(b);
}

fn cap_score(s: u32) -> u8 {
    u8::try_from(s.min(100)).unwrap_or(100)
}

/// The user's state, created (evicting the least recently active users if full) when new.
fn user_entry<'a>(
    users: &'a mut HashMap<String, UserState>,
    c: &mut Counters,
    max: usize,
    user: &str,
) -> &'a mut UserState {
    if !users.contains_key(user) {
        c.evicted_users += evict_lru(users, max, |u| u.last_us);
    }
    users.entry(user.to_string()).or_default()
}

/// Makes room for one more key when `map` is at `cap`: evicts the least recently updated
/// entries (an eighth of the cap, at least one; ties broken by key); returns how many.
fn evict_lru<V>(map: &mut HashMap<String, V>, cap: usize, last: impl Fn(&V) -> u64) -> u64 {
    let cap = cap.max(1);
    if map.len() < cap {
        return 0;
    }
    let n = (map.len() + 1 - cap + cap / 8).min(map.len());
    if n == 0 {
        return 0;
    }
    let mut stamps: Vec<(u64, &String)> = map.iter().map(|(k, v)| (last(v), k)).collect();
    stamps.select_nth_unstable(n - 1);
    stamps.truncate(n);
    let doomed: Vec<String> = stamps.into_iter().map(|(_, k)| k.clone()).collect();
    for k in &doomed {
        map.remove(k);
    }
    n as u64
}

fn push_capped<T>(v: &mut Vec<T>, x: T, cap: usize, trimmed: &mut u64) {
    v.push(x);
    if v.len() > cap {
        let extra = v.len() - cap;
        v.drain(..extra);
        *trimmed += extra as u64;
    }
}

/// A usable user key: trimmed, lower-case, bounded, no control characters.
fn clean_user(u: &str) -> Option<String> {
    let u = u.trim();
    (!u.is_empty() && u.len() <= MAX_USER_LEN && !u.chars().any(char::is_control))
        .then(|| u.to_lowercase())
}

/// At most `max` characters, control characters blanked, "…" when cut.
fn clip(s: &str, max: usize) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        out.push(if c.is_control() { ' ' } else { c });
    }
    out
}

/// FNV-1a: a stable fingerprint for ids kept in small per-user lists (never a table key).
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// "58 s", "12 min", "19 h", "3 days".
fn span(us: u64) -> String {
    let s = us / SEC;
    match s {
        0..120 => format!("{s} s"),
        120..7200 => format!("{} min", s / 60),
        7200..172_800 => format!("{} h", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}

/// 5862 -> "5,862".
fn thousands(n: u64) -> String {
    let d = n.to_string();
    let mut out = String::with_capacity(d.len() + d.len() / 3);
    for (i, c) in d.chars().enumerate() {
        if i > 0 && (d.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
#[path = "saas_tests.rs"]
mod tests;
