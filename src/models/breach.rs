//! The `ModelBreach` record and its EVE JSON line (`event_type: "model_breach"`).

use std::net::IpAddr;

use serde::Serialize;

use crate::event::format_ts;

/// The device a breach is about.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Device {
    pub ip: IpAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
}

/// One model breach: what fired, about whom, and why.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ModelBreach {
    /// Event time (µs) of the event that completed the breach.
    #[serde(skip)]
    pub ts_us: u64,
    pub model: &'static str,
    pub score: u8,
    /// The device, for network breaches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<Device>,
    /// The user (lower-case UPN), for SaaS and email breaches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Every device involved, for multi-device correlations.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<IpAddr>,
    /// Registrable domain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fqdn: Option<String>,
    /// The external IP involved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
    /// A URL involved (email links).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The inbox rule involved (its name), for the email-rule models.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    pub reasons: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub flow_ids: Vec<u64>,
}

#[derive(Serialize)]
struct Envelope<'a> {
    timestamp: String,
    event_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    src_ip: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dest_ip: Option<IpAddr>,
    model_breach: &'a ModelBreach,
}

impl ModelBreach {
    /// Appends the EVE JSON line (with trailing newline).
    pub fn write_eve(&self, out: &mut Vec<u8>) {
        let env = Envelope {
            timestamp: format_ts(self.ts_us),
            event_type: "model_breach",
            src_ip: self.device.as_ref().map(|d| d.ip),
            dest_ip: self.ip,
            model_breach: self,
        };
        if serde_json::to_writer(&mut *out, &env).is_err() {
            out.extend_from_slice(b"{}");
        }
        out.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eve_line_has_the_envelope() {
        let b = ModelBreach {
            ts_us: 1_710_770_531_402_337,
            model: super::super::SUSPICIOUS_DOMAIN,
            score: 91,
            device: Some(Device {
                ip: "10.20.0.23".parse().unwrap(),
                mac: None,
                hostname: None,
            }),
            user: None,
            url: None,
            rule: None,
            devices: Vec::new(),
            domain: Some("latovafineart.life".into()),
            fqdn: Some("rz8js7sjbef.latovafineart.life".into()),
            ip: Some("193.222.96.91".parse().unwrap()),
            reasons: vec!["registered 4 days ago (feed)".into()],
            flow_ids: vec![55120934812],
        };
        let mut out = Vec::new();
        b.write_eve(&mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["timestamp"], "2024-03-18T14:02:11.402337+0000");
        assert_eq!(v["event_type"], "model_breach");
        assert_eq!(v["src_ip"], "10.20.0.23");
        assert_eq!(v["dest_ip"], "193.222.96.91");
        let m = &v["model_breach"];
        assert_eq!(m["model"], "Device / Suspicious Domain");
        assert_eq!(m["score"], 91);
        assert_eq!(m["device"]["ip"], "10.20.0.23");
        assert!(m["device"].get("mac").is_none());
        assert_eq!(m["domain"], "latovafineart.life");
        assert_eq!(m["flow_ids"][0], 55120934812u64);
        assert!(m.get("devices").is_none());
        assert!(out.ends_with(b"\n"));
    }
}
