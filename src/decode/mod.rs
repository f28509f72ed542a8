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

#[cfg(test)]
pub(crate) mod test_streams;

/// The methods every decoder's `Events` bit set shares: a tuple struct over an unsigned integer
/// with an `ALL` table of `(flag, snake_case name)`.
macro_rules! event_set_methods {
    ($t:ident) => {
        impl $t {
            /// No event recorded.
            pub fn is_empty(self) -> bool {
                self.0 == 0
            }

            /// All bits of `other` are set in `self`.
            pub fn contains(self, other: $t) -> bool {
                self.0 & other.0 == other.0
            }

            fn insert(&mut self, other: $t) {
                self.0 |= other.0;
            }

            /// Snake_case names of the events set, for stats counters.
            pub fn reasons(self) -> impl Iterator<Item = &'static str> {
                Self::ALL
                    .into_iter()
                    .filter(move |(e, _)| self.contains(*e))
                    .map(|(_, name)| name)
            }
        }
    };
}
pub(crate) use event_set_methods;
