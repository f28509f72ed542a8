//! Domain intelligence: every domain a device contacts (DNS queries and answers, TLS SNI, HTTP
//! Host) is normalised, recorded in the persistent history, scored for age and rarity, and
//! unusual behaviour becomes a model breach.
//!
//! ```text
//!  Event (dns/tls/http) ──> observations (device, fqdn, external ip, kind)
//!        │                         │
//!        │        names: normalise, registrable domain (PSL)
//!        │                         │
//!        │        history (store): first/last seen, hits, devices, IPs, bindings
//!        │                         │
//!        │        score: registration age (feeds), first seen, rarity, popularity,
//!        │               DGA n-grams, lookalikes, risky TLD, co-hosting
//!        │                         │
//!        └──────> models: Suspicious Domain, Multiple Devices, SSL C2, DGA Activity
//! ```
//!
//! Packet time is the clock for everything here. The analyzer runs on the output thread, one
//! event at a time; all of its state is bounded (see [`history`], [`crate::store`],
//! [`crate::models`]) and committed to the store in batches, so a restart (or `kill -9`) resumes
//! from the last commit. Nothing here panics on input.

pub mod analyzer;
pub mod config;
pub mod dga;
pub mod feeds;
pub mod history;
pub mod joint;
pub mod learn;
pub mod lookalike;
pub mod names;
pub mod rdap;
pub mod score;
pub mod settings;

use std::net::IpAddr;

pub use analyzer::Analyzer;
pub use settings::{HomeNet, Settings};

/// What one protocol event says about one name.
#[derive(Debug, Clone, PartialEq)]
pub enum What {
    /// A device asked for the name.
    Query,
    /// The name resolved (NOERROR) to these addresses (possibly none).
    Answer(Vec<IpAddr>),
    /// The name does not exist.
    NxDomain,
    /// A TLS ClientHello with this SNI to the remote address.
    Tls,
    /// An HTTP request with this Host to the remote address.
    Http,
    /// A DHCP lease: `client` holds its address with this MAC; `name` is the host name the
    /// client sent (may be empty).
    Lease { mac: [u8; 6] },
    /// The KDC issued a ticket (AS-REP) to `client` for the principal `name` (`user@REALM`).
    Principal,
}

/// One observation, the analyzer's unit of input.
#[derive(Debug, Clone, PartialEq)]
pub struct Obs {
    pub ts_us: u64,
    pub flow_id: u64,
    /// The client side (a device when inside the home networks).
    pub client: IpAddr,
    /// The server side (resolver, or the external host for TLS/HTTP).
    pub server: IpAddr,
    /// The name as seen on the wire (normalised by the analyzer).
    pub name: String,
    pub what: What,
}

/// Turns a protocol event into observations.
pub fn observations(ev: &crate::event::Event, out: &mut Vec<Obs>) {
    use crate::event::Kind;
    let m = &ev.meta;
    let base = |client, server, name: &str, what| Obs {
        ts_us: m.ts_us,
        flow_id: m.flow_id,
        client,
        server,
        name: name.to_string(),
        what,
    };
    match &ev.kind {
        Kind::Dns(d) => {
            if !d.qr {
                for q in d.queries() {
                    out.push(base(m.src, m.dst, q.rrname, What::Query));
                }
                return;
            }
            // A response goes from the resolver (src) to the client (dst).
            let Some(q) = d.queries().next() else {
                return;
            };
            if d.rcode == 3 {
                out.push(base(m.dst, m.src, q.rrname, What::NxDomain));
                return;
            }
            if d.rcode != 0 {
                return;
            }
            let ips: Vec<IpAddr> = d
                .answers()
                .filter(|a| a.rrtype == 1 || a.rrtype == 28)
                .filter_map(|a| a.rdata?.parse().ok())
                .take(16)
                .collect();
            // Answer owners other than the query (CNAME targets) are bound too.
            for a in d.answers().filter(|a| a.rrtype == 1 || a.rrtype == 28) {
                if !a.rrname.eq_ignore_ascii_case(q.rrname)
                    && let Some(ip) = a.rdata.and_then(|r| r.parse().ok())
                {
                    out.push(base(m.dst, m.src, a.rrname, What::Answer(vec![ip])));
                }
            }
            out.push(base(m.dst, m.src, q.rrname, What::Answer(ips)));
        }
        Kind::Tls(t) => {
            if let Some(sni) = t.hello.sni.as_deref() {
                out.push(base(m.src, m.dst, sni, What::Tls));
            }
        }
        Kind::Http(h) => {
            if let Some(host) = h.request.host.as_deref() {
                out.push(base(
                    m.src,
                    m.dst,
                    names::host_without_port(host),
                    What::Http,
                ));
            }
        }
        Kind::Dhcp(d) => {
            if let Some((ip, mac)) = d.binding {
                // The lease's address is the device, whatever the packet's source was.
                let name = d.hostname.as_deref().unwrap_or("");
                out.push(base(IpAddr::V4(ip), m.src, name, What::Lease { mac }));
            }
        }
        Kind::Krb5(k) => {
            // An AS-REP goes from the KDC (src) to the client (dst): the client holds a
            // ticket for this principal now.
            if k.msg_type == "as_rep"
                && let (Some(c), Some(r)) = (&k.cname, &k.realm)
            {
                out.push(base(m.dst, m.src, &format!("{c}@{r}"), What::Principal));
            }
        }
    }
}
