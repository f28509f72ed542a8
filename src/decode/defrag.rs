// TEMPORARY interface stub, replaced by the real reassembler.
use super::net::Frame;
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_datagrams: usize,
    pub timeout_us: u64,
}
impl Default for Limits {
    fn default() -> Self {
        Self {
            max_datagrams: 4096,
            timeout_us: 30_000_000,
        }
    }
}
#[derive(Debug, Clone, Copy, Default)]
pub struct DefragStats {
    pub reassembled: u64,
    pub timeouts: u64,
    pub evicted: u64,
    pub invalid: u64,
}
pub struct Defrag;
impl Defrag {
    pub fn new(_l: Limits) -> Self {
        Self
    }
    pub fn push(&mut self, _ts: u64, _f: &Frame<'_>) -> Option<Vec<u8>> {
        None
    }
    pub fn expire(&mut self, _now: u64) {}
    pub fn stats(&self) -> DefragStats {
        DefragStats::default()
    }
}
