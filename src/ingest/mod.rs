//! SaaS and email ingestion: sources turn Microsoft 365 / Entra ID / Defender records into
//! normalised [`record::Record`]s for the analysis thread.

pub mod record;

pub use record::{Direction, EmailEvent, EmailKind, Record, SaasEvent, SaasKind, Schema};
