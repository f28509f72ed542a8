//! SaaS and email ingestion: sources turn Microsoft 365 / Entra ID / Defender records into
//! normalised [`record::Record`]s for the analysis thread.
//!
//! Transports: the HTTPS webhook ([`webhook`]) and the Office 365 Management Activity API
//! poller ([`poller`]) hand raw JSON records ([`Raw`]) to the analysis side through a bounded
//! channel given by the caller; parsing and normalisation happen there, not here.

pub mod client;
pub mod config;
pub mod file;
pub mod geoip;
pub mod parse;
pub mod record;
pub mod run;

pub use record::{Direction, EmailEvent, EmailKind, Record, SaasEvent, SaasKind, Schema};
pub mod poller;
#[cfg(test)]
pub(crate) mod testutil;
pub mod webhook;

/// One raw record from a transport, before parsing/normalisation.
#[derive(Debug, Clone, PartialEq)]
pub struct Raw {
    /// Where the record came from, for error messages and provenance, e.g.
    /// `webhook 127.0.0.1:5555 req 7 line 3` or `poller Audit.Exchange <contentId> #12`.
    pub origin: String,
    /// The record as received: always a JSON object.
    pub value: serde_json::Value,
}

/// Bytes read from a PEM, token or secret file before giving up: these are small by nature.
pub const MAX_KEY_FILE: u64 = 1 << 20;

/// Reads a small file (certificates, keys, tokens, secrets), refusing one over `cap` bytes.
pub(crate) fn read_capped(path: &std::path::Path, cap: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::new();
    std::fs::File::open(path)?
        .take(cap.saturating_add(1))
        .read_to_end(&mut buf)?;
    if buf.len() as u64 > cap {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {cap} bytes"),
        ));
    }
    Ok(buf)
}

/// Reads every certificate of a PEM file.
pub(crate) fn read_certs(
    path: &std::path::Path,
) -> std::io::Result<Vec<rustls_pki_types::CertificateDer<'static>>> {
    use rustls_pki_types::pem::PemObject;
    let pem = read_capped(path, MAX_KEY_FILE)?;
    let certs = rustls_pki_types::CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
    if certs.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "no CERTIFICATE section",
        ));
    }
    Ok(certs)
}

/// Deserialises a duration written as text ("30s", "5m", "1h 30m").
pub(crate) fn de_duration<'de, D>(d: D) -> Result<std::time::Duration, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let s = <String as serde::Deserialize>::deserialize(d)?;
    humantime::parse_duration(&s).map_err(|e| {
        serde::de::Error::custom(format!(
            "`{s}` is not a duration like \"30s\" or \"5m\": {e}"
        ))
    })
}

/// Declares a struct of `AtomicU64` counters and its plain, serialisable snapshot.
macro_rules! counters {
    ($(#[$m:meta])* $name:ident, $snap:ident { $($(#[$fm:meta])* $field:ident),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Default)]
        pub struct $name {
            $($(#[$fm])* pub $field: std::sync::atomic::AtomicU64,)*
        }

        /// A point-in-time copy of the counters, for stats output.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
        pub struct $snap {
            $($(#[$fm])* pub $field: u64,)*
        }

        impl $name {
            /// Reads every counter (each atomically; the set is not one atomic snapshot).
            pub fn snapshot(&self) -> $snap {
                $snap {
                    $($field: self.$field.load(std::sync::atomic::Ordering::Relaxed),)*
                }
            }
        }
    };
}
pub(crate) use counters;

/// Adds one to a counter.
pub(crate) fn bump(c: &std::sync::atomic::AtomicU64) {
    c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// The TLS crypto provider of both transports: *ring*, chosen because it builds fast and small.
/// rustls marks its *ring* provider deprecated because it lacks post-quantum key exchange
/// (X25519MLKEM768); moving to aws-lc-rs means changing this function and the `ring` features
/// of rustls and tokio-rustls, nothing else.
pub(crate) fn tls_provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    #[allow(deprecated)]
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}

/// The elements of one JSON array, read one at a time: no list of them is ever built, so a
/// body of millions of tiny elements costs no memory beyond the body itself.
pub(crate) struct ArrayItems<'a> {
    text: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> ArrayItems<'a> {
    /// `None` unless `text` (surrounding whitespace aside) is one syntactically valid JSON
    /// array. The check allocates nothing and has no nesting limit that could overflow a stack.
    pub(crate) fn new(text: &'a [u8]) -> Option<ArrayItems<'a>> {
        let t = text.trim_ascii();
        if t.first() != Some(&b'[') {
            return None;
        }
        serde_json::from_slice::<&serde_json::value::RawValue>(t).ok()?;
        let mut it = ArrayItems {
            text: t,
            pos: 1,
            done: false,
        };
        it.skip_ws();
        it.done = it.text.get(it.pos) == Some(&b']');
        Some(it)
    }

    fn skip_ws(&mut self) {
        while self
            .text
            .get(self.pos)
            .is_some_and(|b| b.is_ascii_whitespace())
        {
            self.pos += 1;
        }
    }
}

impl<'a> Iterator for ArrayItems<'a> {
    type Item = &'a serde_json::value::RawValue;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let rest = self.text.get(self.pos..)?;
        let mut stream = serde_json::Deserializer::from_slice(rest)
            .into_iter::<&'a serde_json::value::RawValue>();
        let Some(Ok(value)) = stream.next() else {
            self.done = true;
            return None;
        };
        self.pos += stream.byte_offset();
        self.skip_ws();
        if self.text.get(self.pos) == Some(&b',') {
            self.pos += 1;
        } else {
            self.done = true;
        }
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::ArrayItems;

    #[test]
    fn array_items_one_at_a_time() {
        let items = |s: &str| -> Option<Vec<String>> {
            ArrayItems::new(s.as_bytes()).map(|it| it.map(|v| v.get().to_owned()).collect())
        };
        assert_eq!(
            items(" [ {\"a\": [1, 2]} ,\n\"x\",3,[] ] ").unwrap(),
            ["{\"a\": [1, 2]}", "\"x\"", "3", "[]"]
        );
        assert_eq!(items("[]").unwrap(), Vec::<String>::new());
        assert_eq!(items("[ ]").unwrap(), Vec::<String>::new());
        assert_eq!(items("[1,]"), None);
        assert_eq!(items("[1] [2]"), None);
        assert_eq!(items("{\"a\":1}"), None);
        assert_eq!(items(""), None);
    }
}

/// What [`read_all`] found.
#[derive(Debug, Default)]
pub struct ReadReport {
    pub records: u64,
    pub rejected: u64,
    pub ignored: u64,
}

/// Rejections logged one by one before only the count goes on.
const LOGGED_REJECTIONS: u64 = 20;

/// Reads SaaS/email files or directories to their end (replay): every record, in file order.
/// A bad line or row is logged with `path:line` and why (the first
/// [`LOGGED_REJECTIONS`], then only counted) and the rest is read.
pub fn read_all(paths: &[std::path::PathBuf]) -> (Vec<Record>, ReadReport) {
    let mut src = file::FileSource::new(paths.to_vec(), None);
    let mut out = Vec::new();
    let mut rep = ReadReport::default();
    let mut sink = |item: file::Item| match item {
        file::Item::Record(r) => {
            rep.records += 1;
            out.push(*r);
        }
        file::Item::Rejected { origin, reason } => {
            rep.rejected += 1;
            if rep.rejected <= LOGGED_REJECTIONS {
                tracing::warn!("{origin}: rejected: {reason}");
            }
        }
        file::Item::Ignored { .. } => rep.ignored += 1,
    };
    // Bounded: each poll reads what is there; a file growing while it is read is taken up to
    // where it stood at the last poll.
    for _ in 0..1_000_000 {
        if !src.poll(&mut sink) {
            break;
        }
    }
    src.finish(&mut sink);
    if rep.rejected > LOGGED_REJECTIONS {
        tracing::warn!(
            rejected = rep.rejected,
            "more rejected SaaS/email records were not logged one by one"
        );
    }
    (out, rep)
}
