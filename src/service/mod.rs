//! Running as an appliance service: systemd notifications, the metrics/health endpoint.

pub mod metrics;
pub mod notify;
pub mod privdrop;
pub mod ratelimit;
