//! The `[saas]` and `[correlate]` sections of the configuration: raw shapes (every key
//! documented, unknown keys rejected) and their validation into the SaaS model settings, the
//! incident settings and the sources to start.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::poller::PollerConfig;
use super::webhook::WebhookConfig;
use crate::config::Error;

/// `[saas]`: where Microsoft 365 / Entra ID / email records come from, and the model tunables.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSaas {
    /// Files or directories of records (NDJSON, JSON documents, CSV exports) to tail; the read
    /// position is kept in the state store so a restart neither loses nor repeats a record.
    pub files: Option<Vec<PathBuf>>,
    /// Seconds between two looks at the files for new records. Default "2s".
    pub poll_interval: Option<String>,
    /// Logins only build baselines for this long after the first record. Default "7d".
    pub learning_period: Option<String>,
    /// An ASN not seen for a user within this window is new. Default "7d".
    pub asn_window: Option<String>,
    /// A country not seen for a user within this window is new. Default "10d".
    pub country_window: Option<String>,
    /// An MFA change or inbox rule this long after an unusual login is paired with it.
    /// Default "48h".
    pub followup_window: Option<String>,
    /// Impossible travel: at least this many km ... Default 500.
    pub travel_km: Option<f64>,
    /// ... at at least this speed (km/h). Default 800.
    pub travel_kmh: Option<f64>,
    /// A source that this many other users sign in from routinely is not unusual. Default 3.
    pub org_routine_users: Option<u32>,
    /// More than this many bounce-backs for one subject within 10 minutes is a spike.
    /// Default 10.
    pub bounce_min: Option<u32>,
    /// Sent messages in an hour above this (and 5x the user's usual peak) is a spike.
    /// Default 50.
    pub spike_min_hourly: Option<u32>,
    /// MaxMind-format City or Country database (GeoLite2/GeoIP2/DB-IP) for login locations.
    pub geoip_city: Option<PathBuf>,
    /// MaxMind-format ASN database for login networks.
    pub geoip_asn: Option<PathBuf>,
    /// HTTPS webhook for pushed records (Event Hub forwarders and the like).
    pub webhook: Option<WebhookConfig>,
    /// Office 365 Management Activity API poller.
    pub poller: Option<RawPoller>,
}

/// `[saas.poller]`: the API settings plus the polling interval.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPoller {
    /// Time between two polls. Default "5m".
    pub interval: Option<String>,
    #[serde(flatten)]
    pub api: PollerConfig,
}

/// `[correlate]`: how breaches become incidents.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCorrelate {
    /// Breaches further apart than this do not join. Default "48h".
    pub window: Option<String>,
    /// How late a breach may arrive behind the newest and still join. Default "12h".
    pub lateness: Option<String>,
    /// One breach scoring at least this opens an incident. Default 80.
    pub strong_score: Option<u8>,
    /// Summed risk of weaker breaches that opens an incident. Default 150.
    pub open_risk: Option<u32>,
    /// Static device/user table: `ip or cidr,mac,hostname,user` with a header line.
    pub devices_csv: Option<PathBuf>,
}

/// The SaaS sources to start (service mode).
#[derive(Debug, Clone, Default)]
pub struct Sources {
    pub files: Vec<PathBuf>,
    pub poll_interval: std::time::Duration,
    pub webhook: Option<WebhookConfig>,
    pub poller: Option<(PollerConfig, std::time::Duration)>,
}

impl Sources {
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.webhook.is_none() && self.poller.is_none()
    }
}

/// Validates both sections into `intel` (model and incident settings) and the sources.
pub fn validate(
    path: &Path,
    saas: RawSaas,
    corr: RawCorrelate,
    intel: &mut crate::intel::Settings,
) -> Result<Sources, Error> {
    let invalid = |key: &'static str, why: String| Error::Invalid {
        path: path.to_path_buf(),
        key,
        why,
    };
    let dur =
        |key: &'static str, v: &Option<String>| -> Result<Option<std::time::Duration>, Error> {
            match v {
                None => Ok(None),
                Some(s) => humantime::parse_duration(s)
                    .map(Some)
                    .map_err(|e| invalid(key, format!("`{s}` is not a duration like \"7d\": {e}"))),
            }
        };
    let us = |d: std::time::Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    let s = &mut intel.saas;
    if let Some(d) = dur("saas.learning_period", &saas.learning_period)? {
        s.learning_period_us = us(d);
    }
    if let Some(d) = dur("saas.asn_window", &saas.asn_window)? {
        s.asn_window_us = us(d);
    }
    if let Some(d) = dur("saas.country_window", &saas.country_window)? {
        s.country_window_us = us(d);
    }
    if let Some(d) = dur("saas.followup_window", &saas.followup_window)? {
        s.followup_window_us = us(d);
    }
    if let Some(v) = saas.travel_km {
        s.travel_km = v;
    }
    if let Some(v) = saas.travel_kmh {
        s.travel_kmh = v;
    }
    if let Some(v) = saas.org_routine_users {
        s.org_routine_users = v;
    }
    if let Some(v) = saas.bounce_min {
        s.bounce_min = v;
    }
    if let Some(v) = saas.spike_min_hourly {
        s.spike_min_hourly = v;
    }
    s.validate().map_err(|e| invalid("saas", e.to_string()))?;
    let mut src = Sources {
        files: saas.files.unwrap_or_default(),
        poll_interval: dur("saas.poll_interval", &saas.poll_interval)?
            .unwrap_or(std::time::Duration::from_secs(2)),
        webhook: None,
        poller: None,
    };
    if src.poll_interval < std::time::Duration::from_millis(100) {
        return Err(invalid(
            "saas.poll_interval",
            "must be at least 100ms".into(),
        ));
    }
    if let Some(w) = saas.webhook {
        w.validate()
            .map_err(|e| invalid("saas.webhook", e.to_string()))?;
        src.webhook = Some(w);
    }
    if let Some(p) = saas.poller {
        p.api
            .validate()
            .map_err(|e| invalid("saas.poller", e.to_string()))?;
        let every = dur("saas.poller.interval", &p.interval)?
            .unwrap_or(std::time::Duration::from_secs(300));
        if every < std::time::Duration::from_secs(10) {
            return Err(invalid(
                "saas.poller.interval",
                "must be at least 10s".into(),
            ));
        }
        src.poller = Some((p.api, every));
    }
    let c = &mut intel.correlate;
    if let Some(d) = dur("correlate.window", &corr.window)? {
        if d < std::time::Duration::from_secs(60) {
            return Err(invalid("correlate.window", "must be at least 1m".into()));
        }
        c.window_us = us(d);
    }
    if let Some(d) = dur("correlate.lateness", &corr.lateness)? {
        c.lateness_us = us(d);
    }
    if let Some(v) = corr.strong_score {
        if v > 100 {
            return Err(invalid(
                "correlate.strong_score",
                format!("{v} is above 100"),
            ));
        }
        c.strong_score = v;
    }
    if let Some(v) = corr.open_risk {
        if v == 0 {
            return Err(invalid("correlate.open_risk", "must be above 0".into()));
        }
        c.open_risk = v;
    }
    if let Some(p) = corr.devices_csv {
        if p.as_os_str().is_empty() {
            return Err(invalid("correlate.devices_csv", "is empty".into()));
        }
        intel.devices_csv = Some(p);
    }
    Ok(src)
}
