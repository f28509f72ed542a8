//! crosswire: a network sensor for a tap or SPAN port.
//!
//! ```text
//!  live (libpcap) / replay (pcap, pcapng)          SaaS/email sources (ingest): tailed files,
//!        |                                           HTTPS webhook, Management Activity API
//!  capture thread: decode L2-L4 once for a symmetric flow hash, copy each packet once into a
//!        |         recycled batch buffer, send the batch to its worker's bounded queue
//!  [queue 0] .. [queue N-1]     replay waits for room; live drops the newest batch and counts it
//!        |                                                   |
//!  workers: L2-L4 (+ tunnels, IP reassembly) -> flow table   | normalised records (+ read
//!           -> TCP stream heads -> dns/tls/http/dhcp/krb5    |  position, committed with the
//!        |                                                   |  state they produced)
//!  output thread: EVE JSON lines, stats with latency percentiles
//!        |                                                   |
//!  analysis thread (intel): observations and records in event-time order ->
//!        domain intelligence -> device models; SaaS and email models (models::saas);
//!        device/user bindings (DHCP, Kerberos, CSV) -> correlation engine (correlate) ->
//!        model_breach and incident events, <state>/incidents, HTML reports (output::report)
//! ```
//!
//! Packet time is the clock: flow expiry and every window run on packet timestamps (record
//! timestamps for SaaS and email), so replaying a capture reproduces what the live sensor did.

pub mod capture;
pub mod config;
pub mod correlate;
pub mod decode;
pub mod event;
pub mod flow;
pub mod ingest;
pub mod intel;
pub mod models;
pub mod output;
pub mod pipeline;
pub mod service;
pub mod store;
#[cfg(test)]
mod testutil;
