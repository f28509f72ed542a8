//! Test-only MaxMind DB (mmdb) writer, so the GeoIP tests build small databases in memory
//! instead of shipping binary fixtures. Compiled only under `#[cfg(test)]` (see geoip.rs).
//!
//! Writes format 2.0 as the public MaxMind DB spec describes it: a binary search tree of
//! 24-, 28- or 32-bit records, a 16-byte zero separator, a data section in the typed encoding
//! (maps, UTF-8 strings, doubles, floats, uint16/32/64, arrays, booleans; repeated map keys are
//! written once and then referenced by pointer, as real databases do), the
//! `\xAB\xCD\xEFMaxMind.com` marker and the metadata map.
//!
//! Limits: networks are inserted shortest prefix first, so a longer prefix splits a shorter
//! one; no `::ffff:0:0/96` alias is written (an IPv4 network in an IPv6 database lives at
//! `::a.b.c.d/96+n` only). Being test code it panics on misuse (bad network text, a database
//! too big for the record size).

use std::collections::HashMap;
use std::net::IpAddr;

/// A value of the mmdb data section.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Map(Vec<(String, Value)>),
    Str(String),
    Double(f64),
    Float(f32),
    U16(u16),
    U32(u32),
    U64(u64),
    Array(Vec<Value>),
    Bool(bool),
}

/// A map from `(key, value)` pairs.
pub fn map<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    Value::Map(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

/// A UTF-8 string value.
pub fn s(v: &str) -> Value {
    Value::Str(v.to_string())
}

const T_POINTER: u8 = 1;
const T_STRING: u8 = 2;
const T_DOUBLE: u8 = 3;
const T_UINT16: u8 = 5;
const T_UINT32: u8 = 6;
const T_MAP: u8 = 7;
const T_UINT64: u8 = 9;
const T_ARRAY: u8 = 11;
const T_BOOL: u8 = 14;
const T_FLOAT: u8 = 15;

/// Builds one database.
pub struct Writer {
    database_type: String,
    ip_version: u16,
    record_size: u16,
    /// (address bits left-aligned in the tree's width, prefix length in the tree, value).
    nets: Vec<(u128, u8, Value)>,
}

#[derive(Clone, Copy)]
enum Slot {
    Empty,
    Node(usize),
    Data(usize),
}

impl Writer {
    /// A database of `database_type` (e.g. `GeoLite2-City`), `ip_version` 4 or 6, records of
    /// `record_size` bits (24, 28 or 32).
    pub fn new(database_type: &str, ip_version: u16, record_size: u16) -> Writer {
        assert!(ip_version == 4 || ip_version == 6);
        assert!(matches!(record_size, 24 | 28 | 32));
        Writer {
            database_type: database_type.to_string(),
            ip_version,
            record_size,
            nets: Vec::new(),
        }
    }

    /// Adds `net` (`198.51.100.0/24`, `2001:db8::/32`) with `value`. In an IPv6 database an
    /// IPv4 network is stored at `::a.b.c.d` with the prefix length plus 96.
    pub fn insert(&mut self, net: &str, value: Value) -> &mut Writer {
        let (addr, len) = net.split_once('/').expect("network as addr/len");
        let addr: IpAddr = addr.parse().expect("network address");
        let len: u8 = len.parse().expect("prefix length");
        let (bits, len) = match (addr, self.ip_version) {
            (IpAddr::V4(a), 4) => (u128::from(u32::from(a)) << 96, len),
            (IpAddr::V4(a), _) => (u128::from(u32::from(a)), len + 96),
            (IpAddr::V6(a), 6) => (u128::from(a), len),
            (IpAddr::V6(_), _) => panic!("IPv6 network in an IPv4 database"),
        };
        assert!(len > 0 && len <= self.width());
        self.nets.push((bits, len, value));
        self
    }

    fn width(&self) -> u8 {
        if self.ip_version == 4 { 32 } else { 128 }
    }

    /// The whole file.
    pub fn build(&self) -> Vec<u8> {
        let mut order: Vec<usize> = (0..self.nets.len()).collect();
        order.sort_by_key(|&i| self.nets[i].1);
        let mut nodes: Vec<[Slot; 2]> = vec![[Slot::Empty, Slot::Empty]];
        for i in order {
            let (bits, len, _) = &self.nets[i];
            let mut node = 0;
            for depth in 0..*len {
                let bit = ((bits >> (127 - u32::from(depth))) & 1) as usize;
                if depth + 1 == *len {
                    nodes[node][bit] = Slot::Data(i);
                    break;
                }
                node = match nodes[node][bit] {
                    Slot::Node(n) => n,
                    Slot::Empty => push(&mut nodes, [Slot::Empty, Slot::Empty], node, bit),
                    Slot::Data(d) => push(&mut nodes, [Slot::Data(d), Slot::Data(d)], node, bit),
                };
            }
        }

        let mut data = Vec::new();
        let mut keys = HashMap::new();
        let offsets: Vec<usize> = self
            .nets
            .iter()
            .map(|(_, _, v)| {
                let at = data.len();
                encode(&mut data, v, Some(&mut keys));
                at
            })
            .collect();

        let node_count = nodes.len();
        let record = |slot: Slot| -> u64 {
            (match slot {
                Slot::Empty => node_count,
                Slot::Node(n) => n,
                Slot::Data(i) => node_count + 16 + offsets[i],
            }) as u64
        };
        assert!(((node_count + 16 + data.len()) as u64) < 1 << self.record_size);
        let mut out = Vec::new();
        for [l, r] in &nodes {
            let (l, r) = (record(*l), record(*r));
            match self.record_size {
                24 => {
                    out.extend_from_slice(&l.to_be_bytes()[5..]);
                    out.extend_from_slice(&r.to_be_bytes()[5..]);
                }
                28 => {
                    out.extend_from_slice(&l.to_be_bytes()[5..]);
                    out.push((((l >> 24) as u8) << 4) | ((r >> 24) as u8 & 0x0f));
                    out.extend_from_slice(&r.to_be_bytes()[5..]);
                }
                _ => {
                    out.extend_from_slice(&l.to_be_bytes()[4..]);
                    out.extend_from_slice(&r.to_be_bytes()[4..]);
                }
            }
        }
        out.extend_from_slice(&[0u8; 16]);
        out.extend_from_slice(&data);
        out.extend_from_slice(b"\xAB\xCD\xEFMaxMind.com");
        let meta = map([
            ("binary_format_major_version", Value::U16(2)),
            ("binary_format_minor_version", Value::U16(0)),
            ("build_epoch", Value::U64(1_748_779_200)),
            ("database_type", s(&self.database_type)),
            ("description", map([("en", s("crosswire test database"))])),
            ("ip_version", Value::U16(self.ip_version)),
            ("languages", Value::Array(vec![s("en")])),
            ("node_count", Value::U32(node_count as u32)),
            ("record_size", Value::U16(self.record_size)),
        ]);
        encode(&mut out, &meta, None);
        out
    }
}

fn push(nodes: &mut Vec<[Slot; 2]>, new: [Slot; 2], parent: usize, bit: usize) -> usize {
    nodes.push(new);
    let n = nodes.len() - 1;
    nodes[parent][bit] = Slot::Node(n);
    n
}

/// Control byte(s): type, then size (with 1-3 extension bytes past 28).
fn control(out: &mut Vec<u8>, ty: u8, size: usize) {
    let (low, ext): (u8, Vec<u8>) = if size < 29 {
        (size as u8, vec![])
    } else if size < 285 {
        (29, vec![(size - 29) as u8])
    } else if size < 65_821 {
        (30, ((size - 285) as u16).to_be_bytes().to_vec())
    } else {
        (31, ((size - 65_821) as u32).to_be_bytes()[1..].to_vec())
    };
    if ty <= 7 {
        out.push((ty << 5) | low);
    } else {
        out.push(low);
        out.push(ty - 7);
    }
    out.extend_from_slice(&ext);
}

fn uint(out: &mut Vec<u8>, ty: u8, v: u64) {
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    control(out, ty, 8 - skip);
    out.extend_from_slice(&bytes[skip..]);
}

fn pointer(out: &mut Vec<u8>, to: usize) {
    if to < 2048 {
        out.push((T_POINTER << 5) | ((to >> 8) as u8));
        out.push(to as u8);
    } else if to < 2048 + (1 << 19) {
        let v = to - 2048;
        out.push((T_POINTER << 5) | (1 << 3) | ((v >> 16) as u8));
        out.extend_from_slice(&(v as u16).to_be_bytes());
    } else {
        out.push((T_POINTER << 5) | (3 << 3));
        out.extend_from_slice(&(to as u32).to_be_bytes());
    }
}

/// Encodes `v`; with `keys`, a map key seen before is written as a pointer to its first copy
/// (offsets are relative to the start of `out`, which must be the data section).
fn encode(out: &mut Vec<u8>, v: &Value, mut keys: Option<&mut HashMap<String, usize>>) {
    match v {
        Value::Map(pairs) => {
            control(out, T_MAP, pairs.len());
            for (k, val) in pairs {
                match keys.as_deref_mut() {
                    Some(seen) => match seen.get(k) {
                        Some(&at) => pointer(out, at),
                        None => {
                            seen.insert(k.clone(), out.len());
                            encode(out, &Value::Str(k.clone()), None);
                        }
                    },
                    None => encode(out, &Value::Str(k.clone()), None),
                }
                encode(out, val, keys.as_deref_mut());
            }
        }
        Value::Str(t) => {
            control(out, T_STRING, t.len());
            out.extend_from_slice(t.as_bytes());
        }
        Value::Double(d) => {
            control(out, T_DOUBLE, 8);
            out.extend_from_slice(&d.to_be_bytes());
        }
        Value::Float(f) => {
            control(out, T_FLOAT, 4);
            out.extend_from_slice(&f.to_be_bytes());
        }
        Value::U16(n) => uint(out, T_UINT16, u64::from(*n)),
        Value::U32(n) => uint(out, T_UINT32, u64::from(*n)),
        Value::U64(n) => uint(out, T_UINT64, *n),
        Value::Array(items) => {
            control(out, T_ARRAY, items.len());
            for item in items {
                encode(out, item, keys.as_deref_mut());
            }
        }
        Value::Bool(b) => control(out, T_BOOL, usize::from(*b)),
    }
}
