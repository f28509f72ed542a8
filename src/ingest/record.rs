//! Normalised SaaS and email records: what every source (files, webhook, API poller) turns a raw
//! Microsoft 365 / Entra ID / Defender record into, and what the SaaS and email models read.
//!
//! Normalisation rules (applied by the parsers, relied on by the models):
//! - `user` is a lower-case UPN (`alice@example.com`); where a record only names an object id or
//!   a `UserKey` that the same record resolves to a UPN, the UPN is used.
//! - `ip` is a plain address: no `:port`, no `[...]`, `::ffff:` mapped addresses are IPv4.
//! - `ts_us` is UTC microseconds since the epoch (UAL `CreationTime` has no zone: it is UTC).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// Where a record came from (its schema family, not its transport).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schema {
    /// Management Activity API / Unified Audit Log (also Sentinel `OfficeActivity` exports).
    Ual,
    /// Entra ID `SigninLogs`.
    EntraSignin,
    /// Entra ID `AuditLogs`.
    EntraAudit,
    /// Defender for Office 365 `EmailEvents`.
    EmailEvents,
    /// Defender for Office 365 `EmailUrlInfo`.
    EmailUrlInfo,
    /// Defender for Office 365 `UrlClickEvents`.
    UrlClickEvents,
    /// Exchange Online message trace.
    MessageTrace,
}

/// One normalised record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum Record {
    Saas(SaasEvent),
    Email(EmailEvent),
}

impl Record {
    pub fn ts_us(&self) -> u64 {
        match self {
            Record::Saas(s) => s.ts_us,
            Record::Email(e) => e.ts_us,
        }
    }
}

/// A Microsoft 365 / Entra ID activity of one user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SaasEvent {
    pub ts_us: u64,
    pub schema: Schema,
    /// The record's own id (UAL `Id`, SigninLogs `id`, AuditLogs `id`); empty when absent.
    pub id: String,
    /// Lower-case UPN of the user acted on / acting.
    pub user: String,
    /// The client address of the activity, normalised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
    /// The operation as the record names it (`UserLoggedIn`, `New-InboxRule`, `Update user.`,
    /// `User registered security info`, `Sign-in activity` for SigninLogs, ...).
    pub operation: String,
    pub kind: SaasKind,
}

/// What a SaaS activity was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SaasKind {
    /// An interactive or non-interactive sign-in. `success` is decided from the error code
    /// (UAL `ErrorNumber`/`LogonError`, SigninLogs `status.errorCode`), never from an STS
    /// `ResultStatus` alone.
    Login {
        success: bool,
        /// The error code as given ("0" on success), when the record has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error_code: Option<String>,
        /// Two-letter country code from the record (SigninLogs `location.countryOrRegion`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        country: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        city: Option<String>,
        /// Latitude, longitude from the record (SigninLogs `location.geoCoordinates`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        geo: Option<(f64, f64)>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user_agent: Option<String>,
        /// SigninLogs `correlationId` / UAL `InterSystemsId`, used to count one login once.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        correlation_id: Option<String>,
    },
    /// `New-InboxRule`, `Set-InboxRule`, `UpdateInboxRules` (Outlook client rules).
    InboxRule {
        /// The rule name: the `Name` parameter, else the part of `ObjectId` after the last `\`.
        name: String,
        /// Every parameter, in record order (`Parameters` as Name/Value pairs; a `Parameters`
        /// string of `-Name "value"` pairs is split into the same shape).
        params: Vec<(String, String)>,
    },
    /// Mailbox forwarding set (`Set-Mailbox` with `ForwardingSmtpAddress`/`ForwardingAddress`,
    /// or an inbox rule's `ForwardTo`/`RedirectTo` is reported as an `InboxRule`).
    Forwarding { target: String },
    /// An authentication method added or changed: `Update user.` whose
    /// `StrongAuthenticationMethod` list grew, or Entra `User registered security info` and the
    /// related security-info operations.
    MfaChange {
        /// Methods before and after, where the record lists them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<u32>,
        /// One human line: "Authenticator app added", "PhoneAppOTP added", ...
        detail: String,
    },
    /// `MailItemsAccessed` (count of items when the record says).
    MailAccess { items: u32 },
    /// `Send` / `SendAs` / `SendOnBehalf` from the mailbox audit.
    Send {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subject: Option<String>,
    },
    /// Anything else worth keeping as context (the operation is in `SaasEvent::operation`).
    Other,
}

/// Direction of an email relative to the organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Inbound,
    Outbound,
    IntraOrg,
    Unknown,
}

/// A Defender for Office 365 / message-trace email record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmailEvent {
    pub ts_us: u64,
    pub schema: Schema,
    /// `NetworkMessageId` (joins EmailEvents, EmailUrlInfo and UrlClickEvents); message trace
    /// `MessageId` when that is all there is.
    pub message_id: String,
    pub kind: EmailKind,
}

/// What an email record says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EmailKind {
    /// One message to one recipient (`EmailEvents`, message trace).
    Message {
        direction: Direction,
        /// Lower-case sender address (`SenderFromAddress`).
        sender: String,
        /// Lower-case recipient address.
        recipient: String,
        subject: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sender_ip: Option<IpAddr>,
        /// `DeliveryAction` / message-trace `Status` ("Delivered", "Blocked", ...).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        delivery: Option<String>,
    },
    /// A URL found in a message (`EmailUrlInfo`).
    Url {
        url: String,
        /// Lower-case host of the URL (`UrlDomain` when given, else parsed from `url`).
        domain: String,
    },
    /// A user clicked a URL (`UrlClickEvents`).
    Click {
        user: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ip: Option<IpAddr>,
        url: String,
    },
}
