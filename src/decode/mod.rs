//! Pure parsers over `&[u8]`: link layer to transport (`net`, `defrag`) and the application
//! decoders (`dns`, `tls`, `http`, and `dhcp` and `krb5` for device and user bindings). Every loop over packet bytes has a named cap; no function here
//! panics on any input.

pub mod defrag;
pub mod dhcp;
pub mod dns;
pub mod http;
pub mod krb5;
pub mod net;
pub mod tls;
