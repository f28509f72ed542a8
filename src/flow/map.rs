//! The flow table's storage: a fixed-capacity slab of entries plus a compact open-addressing
//! index over it, addressed by slot handles.
//!
//! Why not a general hash map: with the key and the flow stored in the buckets, a table kept at
//! most half full (so that evictions never trigger a resize) is several times the size of the
//! last-level cache, and every lookup misses twice (control bytes, then the bucket); a new flow
//! on a full table paid four lookups. Here the index is 4 bytes a bucket (a slot number, the
//! entry's distance from its home bucket, and the top bits of the hash in the bits left), so it
//! stays small enough to be mostly cached (1 MB for a worker's default 131,072 flows), and a
//! lookup touches the slab entry about once (the hash's top bits are compared before the key).
//! Entries never move in the slab, so the eviction queue holds (slot, generation) handles and
//! reaches its flow with no lookup at all. Deletion shifts the following entries of the probe
//! run back (no tombstones), so the index never needs rehashing. No crate offers this combination (a
//! fixed-capacity slab, a compact index, slot handles with generations and backward-shift
//! deletion), hence a small table of our own.
//!
//! Hashing stays keyed per process (foldhash with a random seed): hostile traffic must not be
//! able to precompute colliding flows. Every probe loop is bounded by the index length.

use std::hash::{BuildHasher, Hash};

/// One slab entry. `live` is `None` while the slot is on the free list. Aligned to a cache line:
/// a flow slot is 128 bytes, so each flow spans exactly two lines.
#[repr(align(64))]
struct Slot<K, V> {
    live: Option<(K, V)>,
    /// High 32 bits of the key's hash: its home bucket, and (top bits) the index entry's tag.
    tag: u32,
    /// Incremented each time the slot is vacated: a handle `(slot, generation)` taken before
    /// names a flow that no longer exists.
    generation: u32,
}

/// Fixed-capacity map from `K` to `V` with stable slot handles.
pub(super) struct SlabMap<K, V, S = foldhash::fast::RandomState> {
    slots: Vec<Slot<K, V>>,
    /// Vacant slot numbers (below `slots.len()`).
    free: Vec<u32>,
    /// Power-of-two length, at least twice `cap`; 0 when empty, else from the low bits up:
    /// `slot + 1` in `slot_bits` bits, the distance from the home bucket in [`DISP_BITS`] bits
    /// (saturated at [`DISP_FAR`]), and the top bits of the 32-bit tag in the rest (see
    /// [`Self::pack`]). The first load of this index is the flow table's most frequent cache
    /// miss, hence entries of 4 bytes; the distance lets a deletion shift entries back without
    /// reading their slots for their home.
    index: Vec<u32>,
    /// Bits of an entry holding `slot + 1`, wide enough for `cap`.
    slot_bits: u32,
    mask: usize,
    cap: usize,
    len: usize,
    hasher: S,
}

/// Largest capacity: `slot + 1` and the distance must leave at least one tag bit in an entry.
const MAX_CAP: usize = (1 << (31 - DISP_BITS)) - 1;

/// Bits of an index entry holding its distance from its home bucket.
const DISP_BITS: u32 = 4;

/// A distance of this much or more is stored as this; the home is then read from the slot.
const DISP_FAR: u32 = (1 << DISP_BITS) - 1;

impl<K: Hash + Eq, V> SlabMap<K, V> {
    /// A map holding at most `cap` entries (at least 1), hashed with a random per-process seed.
    pub(super) fn new(cap: usize) -> Self {
        Self::with_hasher(cap, foldhash::fast::RandomState::default())
    }
}

impl<K: Hash + Eq, V, S: BuildHasher> SlabMap<K, V, S> {
    pub(super) fn with_hasher(cap: usize, hasher: S) -> Self {
        let cap = cap.clamp(1, MAX_CAP);
        let n = (2 * cap).next_power_of_two();
        // At most 31 - DISP_BITS bits (cap <= MAX_CAP): the entry keeps a tag bit at least.
        let slot_bits = u32::BITS - (cap as u32).leading_zeros();
        SlabMap {
            // Reserved, not touched: the slab fills as flows arrive.
            slots: Vec::with_capacity(cap.min(1 << 22)),
            free: Vec::new(),
            index: vec![0; n],
            mask: n - 1,
            slot_bits,
            cap,
            len: 0,
            hasher,
        }
    }

    pub(super) fn hash(&self, k: &K) -> u64 {
        self.hasher.hash_one(k)
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn is_full(&self) -> bool {
        self.len >= self.cap
    }

    fn home(&self, tag: u32) -> usize {
        tag as usize & self.mask
    }

    /// Bits of an entry below the tag (slot and distance).
    fn low_mask(&self) -> u32 {
        (1u32 << (self.slot_bits + DISP_BITS)) - 1
    }

    /// The index entry of `slot`, whose key has tag `tag`, placed `disp` buckets after its home.
    fn pack(&self, tag: u32, disp: usize, slot: u32) -> u32 {
        let disp = (disp as u32).min(DISP_FAR);
        tag & !self.low_mask() | disp << self.slot_bits | (slot + 1)
    }

    /// Slot number of a non-empty index entry.
    fn slot_of(&self, entry: u32) -> usize {
        (entry & ((1 << self.slot_bits) - 1)).wrapping_sub(1) as usize
    }

    /// Distance of a non-empty entry from its home bucket, saturated at [`DISP_FAR`].
    fn disp_of(&self, entry: u32) -> u32 {
        (entry >> self.slot_bits) & DISP_FAR
    }

    /// Whether a non-empty entry may be the one of a key whose tag is `tag` (the bits it holds
    /// agree).
    fn tag_matches(&self, entry: u32, tag: u32) -> bool {
        (entry ^ tag) & !self.low_mask() == 0
    }

    /// The slot holding `k` (`h` = [`Self::hash`] of `k`).
    pub(super) fn find(&self, h: u64, k: &K) -> Option<u32> {
        let tag = (h >> 32) as u32;
        let mut i = self.home(tag);
        for _ in 0..self.index.len() {
            let e = *self.index.get(i)?;
            if e == 0 {
                return None;
            }
            if self.tag_matches(e, tag)
                && let Some(Slot {
                    live: Some((key, _)),
                    ..
                }) = self.slots.get(self.slot_of(e))
                && key == k
            {
                return Some(self.slot_of(e) as u32);
            }
            i = (i + 1) & self.mask;
        }
        None
    }

    /// Inserts `k` (not present: the caller found no slot for it) and returns its slot, or gives
    /// the entry back when the map is full.
    pub(super) fn insert(&mut self, h: u64, k: K, v: V) -> Result<u32, (K, V)> {
        if self.is_full() {
            return Err((k, v));
        }
        let tag = (h >> 32) as u32;
        // An empty bucket: the index is at most half full.
        let mut i = self.home(tag);
        let mut pos = None;
        for _ in 0..self.index.len() {
            match self.index.get(i) {
                Some(0) => {
                    pos = Some(i);
                    break;
                }
                Some(_) => i = (i + 1) & self.mask,
                None => break,
            }
        }
        let Some(pos) = pos else {
            return Err((k, v));
        };
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                let s = self.slots.len();
                if s == self.slots.capacity() {
                    // Grow by doubling, but never reserve past the cap.
                    self.slots.reserve_exact(s.max(1024).min(self.cap - s));
                }
                self.slots.push(Slot {
                    live: None,
                    tag: 0,
                    generation: 0,
                });
                s as u32
            }
        };
        let Some(entry) = self.slots.get_mut(slot as usize) else {
            return Err((k, v));
        };
        entry.live = Some((k, v));
        entry.tag = tag;
        let entry = self.pack(tag, pos.wrapping_sub(self.home(tag)) & self.mask, slot);
        if let Some(b) = self.index.get_mut(pos) {
            *b = entry;
        }
        self.len += 1;
        Ok(slot)
    }

    /// Generation of `slot` (to be stored beside the handle and checked by [`Self::get`]).
    pub(super) fn generation(&self, slot: u32) -> u32 {
        self.slots.get(slot as usize).map_or(0, |s| s.generation)
    }

    /// The entry in `slot` if it is still the one of generation `generation`.
    pub(super) fn get(&self, slot: u32, generation: u32) -> Option<(&K, &V)> {
        match self.slots.get(slot as usize) {
            Some(Slot {
                live: Some((k, v)),
                generation: g,
                ..
            }) if *g == generation => Some((k, v)),
            _ => None,
        }
    }

    /// Like [`Self::get`], mutable.
    pub(super) fn get_mut_at(&mut self, slot: u32, generation: u32) -> Option<(&K, &mut V)> {
        match self.slots.get_mut(slot as usize) {
            Some(Slot {
                live: Some((k, v)),
                generation: g,
                ..
            }) if *g == generation => Some((&*k, v)),
            _ => None,
        }
    }

    pub(super) fn get_mut(&mut self, slot: u32) -> Option<&mut V> {
        match self.slots.get_mut(slot as usize) {
            Some(Slot {
                live: Some((_, v)), ..
            }) => Some(v),
            _ => None,
        }
    }

    /// Removes the entry in `slot`; the slot's generation changes, so old handles to it fail.
    pub(super) fn remove(&mut self, slot: u32) -> Option<(K, V)> {
        let s = self.slots.get_mut(slot as usize)?;
        let kv = s.live.take()?;
        s.generation = s.generation.wrapping_add(1);
        let tag = s.tag;
        self.free.push(slot);
        self.len -= 1;
        self.unindex(tag, slot);
        Some(kv)
    }

    /// Deletes the index entry of `slot` (whose key has tag `tag`) by shifting the rest of its
    /// probe run back.
    fn unindex(&mut self, tag: u32, slot: u32) {
        let n = self.index.len();
        let mut i = self.home(tag);
        let mut found = None;
        for _ in 0..n {
            match self.index.get(i) {
                Some(&e) if e != 0 && self.slot_of(e) == slot as usize => {
                    found = Some(i);
                    break;
                }
                Some(0) | None => break,
                Some(_) => i = (i + 1) & self.mask,
            }
        }
        let Some(mut hole) = found else {
            return;
        };
        let mut j = hole;
        for _ in 0..n {
            j = (j + 1) & self.mask;
            let e = self.index.get(j).copied().unwrap_or(0);
            if e == 0 {
                break;
            }
            // `e` may fill the hole if the hole lies on its probe path (home ..= j). Its home is
            // `j` less its distance, or, for a far entry, in its slot.
            let disp = self.disp_of(e);
            let home = if disp < DISP_FAR {
                j.wrapping_sub(disp as usize) & self.mask
            } else {
                match self.slots.get(self.slot_of(e)) {
                    Some(s) => self.home(s.tag),
                    None => break,
                }
            };
            if j.wrapping_sub(home) & self.mask >= j.wrapping_sub(hole) & self.mask {
                let moved = e & !(DISP_FAR << self.slot_bits)
                    | ((hole.wrapping_sub(home) & self.mask) as u32).min(DISP_FAR)
                        << self.slot_bits;
                if let Some(b) = self.index.get_mut(hole) {
                    *b = moved;
                }
                hole = j;
            }
        }
        if let Some(b) = self.index.get_mut(hole) {
            *b = 0;
        }
    }

    /// Slots of all entries, in slot order.
    pub(super) fn slots(&self) -> Vec<u32> {
        (0..self.slots.len() as u32)
            .filter(|&s| self.slots.get(s as usize).is_some_and(|x| x.live.is_some()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::hash::Hasher;

    /// The hash of a `u64` key is the key itself: tests choose tags and home buckets.
    #[derive(Default, Clone, Copy)]
    struct Ident;
    struct IdentHasher(u64);
    impl Hasher for IdentHasher {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, _: &[u8]) {
            unreachable!("only u64 keys")
        }
        fn write_u64(&mut self, n: u64) {
            self.0 = n;
        }
    }
    impl BuildHasher for Ident {
        type Hasher = IdentHasher;
        fn build_hasher(&self) -> IdentHasher {
            IdentHasher(0)
        }
    }

    use crate::testutil::Rng;

    impl<K: Hash + Eq + std::fmt::Debug, V, S: BuildHasher> SlabMap<K, V, S> {
        /// Every entry is indexed once, reachable from its home bucket without crossing an
        /// empty bucket, and the counts agree.
        fn check(&self) {
            let live = self.slots.iter().filter(|s| s.live.is_some()).count();
            assert_eq!(live, self.len);
            assert_eq!(live + self.free.len(), self.slots.len());
            assert!(self.slots.len() <= self.cap);
            let mut seen = vec![false; self.slots.len()];
            for (i, &e) in self.index.iter().enumerate() {
                if e == 0 {
                    continue;
                }
                let s = self.slot_of(e);
                assert!(!seen[s], "slot {s} indexed twice");
                seen[s] = true;
                let slot = &self.slots[s];
                let (k, _) = slot.live.as_ref().expect("indexed slot is live");
                assert_eq!(slot.tag, (self.hash(k) >> 32) as u32);
                let disp = i.wrapping_sub(self.home(slot.tag)) & self.mask;
                assert_eq!(e, self.pack(slot.tag, disp, s as u32));
                let mut p = self.home(slot.tag);
                while p != i {
                    assert_ne!(self.index[p], 0, "hole on the probe path of {k:?}");
                    p = (p + 1) & self.mask;
                }
                assert_eq!(self.find(self.hash(k), k), Some(s as u32));
            }
            assert_eq!(seen.iter().filter(|&&b| b).count(), self.len);
        }
    }

    /// Random inserts, lookups and removals against a `HashMap`; keys come from `key(rng)`.
    /// Returns the number of (inserts, inserts refused by a full map, removals).
    fn against_model<S: BuildHasher>(
        m: &mut SlabMap<u64, u64, S>,
        ops: usize,
        seed: u64,
        key: impl Fn(&mut Rng) -> u64,
        check_every: usize,
    ) -> (usize, usize, usize) {
        let mut rng = Rng(seed);
        let mut n = (0, 0, 0);
        // key -> (value, slot, generation)
        let mut model: HashMap<u64, (u64, u32, u32)> = HashMap::new();
        let mut dead: Vec<(u32, u32)> = Vec::new();
        for op in 0..ops {
            let k = key(&mut rng);
            let h = m.hash(&k);
            let found = m.find(h, &k);
            assert_eq!(found, model.get(&k).map(|e| e.1), "find {k:#x}");
            match (rng.below(3), found) {
                (0 | 1, None) => {
                    let v = rng.next();
                    match m.insert(h, k, v) {
                        Ok(s) => {
                            n.0 += 1;
                            assert!(model.len() < m.cap);
                            model.insert(k, (v, s, m.generation(s)));
                        }
                        Err((k2, v2)) => {
                            n.1 += 1;
                            assert_eq!((k2, v2), (k, v));
                            assert_eq!(model.len(), m.cap);
                        }
                    }
                }
                (0, Some(s)) => {
                    let v = rng.next();
                    *m.get_mut(s).expect("live") = v;
                    model.get_mut(&k).expect("in model").0 = v;
                }
                (1, Some(s)) => {
                    let (v, _, g) = model[&k];
                    assert_eq!(m.get(s, g), Some((&k, &v)));
                }
                (_, Some(s)) => {
                    n.2 += 1;
                    let (v, _, g) = model.remove(&k).expect("in model");
                    assert_eq!(m.remove(s), Some((k, v)));
                    assert_eq!(m.get(s, g), None);
                    assert_eq!(m.remove(s), None);
                    dead.push((s, g));
                }
                (_, None) => {}
            }
            // Stale handles stay stale, even once their slot is reused.
            if let Some(&(s, g)) = dead.get(rng.below(dead.len() as u64 + 1) as usize) {
                assert_eq!(m.get(s, g), None);
            }
            assert_eq!(m.len(), model.len());
            if check_every > 0 && op % check_every == 0 {
                m.check();
            }
        }
        m.check();
        for (k, (v, s, g)) in &model {
            assert_eq!(m.get(*s, *g), Some((k, v)));
        }
        // Enough of each operation to mean something.
        assert!(n.0 > ops / 20 && n.1 > ops / 100 && n.2 > ops / 20, "{n:?}");
        n
    }

    #[test]
    fn random_ops_small_cap_match_a_hashmap() {
        let mut m = SlabMap::new(64);
        against_model(&mut m, 300_000, 1, |r| r.below(200), 97);
    }

    #[test]
    fn random_ops_large_cap_match_a_hashmap() {
        let mut m = SlabMap::new(50_000);
        against_model(&mut m, 400_000, 2, |r| r.below(120_000), 100_000);
    }

    #[test]
    fn colliding_keys_match_a_hashmap() {
        // Index of 128 buckets. Keys share six home buckets (three at the end of the index, so
        // that runs wrap around) and, half of them, the whole tag.
        let mut m = SlabMap::with_hasher(64, Ident);
        assert_eq!(m.index.len(), 128);
        let key = |r: &mut Rng| {
            let home = [0u64, 1, 2, 125, 126, 127][r.below(6) as usize];
            let tag = if r.below(2) == 0 {
                0x5a00 | home
            } else {
                (r.below(4) + 1) << 7 | home
            };
            tag << 32 | r.below(8)
        };
        against_model(&mut m, 300_000, 3, key, 1);
    }

    #[test]
    fn colliding_keys_large_cap_match_a_hashmap() {
        let mut m = SlabMap::with_hasher(10_000, Ident);
        assert_eq!(m.index.len(), 1 << 15);
        // 768 home buckets, some just below the end of the index.
        let key = |r: &mut Rng| {
            let home = (r.below(256) << 7).wrapping_sub(r.below(3)) & 0x7fff;
            (r.below(4) << 24 | home) << 32 | r.below(10)
        };
        against_model(&mut m, 300_000, 4, key, 10_000);
    }

    #[test]
    fn entries_far_from_their_home_shift_back_correctly() {
        // 40 keys with one home near the end of a 128-bucket index: the run wraps around and
        // most entries are further than DISP_FAR from home (their home is read from the slot).
        let mut m = SlabMap::with_hasher(64, Ident);
        let keys: Vec<u64> = (0..40u64).map(|i| (0x300 | 120) << 32 | i).collect();
        let mut slots: Vec<u32> = keys
            .iter()
            .map(|&k| m.insert(m.hash(&k), k, k).expect("room"))
            .collect();
        m.check();
        assert!(
            m.index
                .iter()
                .filter(|&&e| e != 0 && m.disp_of(e) == DISP_FAR)
                .count()
                > 20
        );
        let mut rng = Rng(5);
        while !slots.is_empty() {
            let s = slots.swap_remove(rng.below(slots.len() as u64) as usize);
            m.remove(s).expect("live");
            m.check();
        }
        assert!(m.index.iter().all(|&e| e == 0));
    }

    #[test]
    fn backward_shift_across_the_end_of_the_index() {
        let mut m = SlabMap::with_hasher(4, Ident);
        assert_eq!(m.index.len(), 8);
        // Homes 6, 6, 7, 6: run 6, 7, 0, 1.
        let keys = [6u64 << 32 | 1, 6 << 32 | 2, 7 << 32 | 3, 6 << 32 | 4];
        let mut slots = Vec::new();
        for k in keys {
            slots.push(m.insert(m.hash(&k), k, k).expect("room"));
        }
        let at = |m: &SlabMap<u64, u64, Ident>| -> Vec<Option<u64>> {
            m.index
                .iter()
                .map(|&e| (e != 0).then(|| m.slots[m.slot_of(e)].live.unwrap().0))
                .collect()
        };
        assert_eq!(
            at(&m),
            [
                Some(keys[2]),
                Some(keys[3]),
                None,
                None,
                None,
                None,
                Some(keys[0]),
                Some(keys[1])
            ]
        );
        assert!(m.is_full());
        assert_eq!(m.insert(m.hash(&9), 9, 9), Err((9, 9)));
        // Removing the first of the run moves the rest back across the end of the index.
        m.remove(slots[0]);
        assert_eq!(
            at(&m),
            [
                Some(keys[3]),
                None,
                None,
                None,
                None,
                None,
                Some(keys[1]),
                Some(keys[2])
            ]
        );
        m.check();
        // Removing the key at 7 (home 6): the key at 0 (home 6) moves back to 7.
        m.remove(slots[2]);
        m.check();
        assert_eq!(
            at(&m),
            [
                None,
                None,
                None,
                None,
                None,
                None,
                Some(keys[1]),
                Some(keys[3])
            ]
        );
        // The last vacated slot is reused first, with its new generation.
        assert_eq!(m.generation(slots[2]), 1);
        let s = m.insert(m.hash(&keys[0]), keys[0], 0).expect("room");
        assert_eq!(s, slots[2]);
        assert_eq!(m.generation(s), 1);
        assert_eq!(m.find(m.hash(&keys[0]), &keys[0]), Some(s));
        m.check();
    }

    #[test]
    fn an_entry_not_at_its_home_stays_put_when_its_home_is_freed_later_in_the_run() {
        // Homes: a at 3, b at 3 (goes to 4), c at 5. Removing a moves b back to 3; c stays.
        let mut m = SlabMap::with_hasher(4, Ident);
        let (a, b, c) = (3u64 << 32 | 1, 3u64 << 32 | 2, 5u64 << 32 | 3);
        let sa = m.insert(m.hash(&a), a, 0).expect("room");
        m.insert(m.hash(&b), b, 0).expect("room");
        m.insert(m.hash(&c), c, 0).expect("room");
        m.remove(sa);
        m.check();
        assert_eq!(m.slot_of(m.index[3]), 1);
        assert_eq!(m.index[4], 0);
        assert_eq!(m.slot_of(m.index[5]), 2);
    }

    #[test]
    fn a_flow_slot_is_two_cache_lines() {
        assert_eq!(
            std::mem::size_of::<Slot<super::super::Key, super::super::Flow>>(),
            128
        );
    }

    #[test]
    fn stale_handles_fail_after_removal_and_reuse() {
        let mut m: SlabMap<u64, &str> = SlabMap::new(2);
        let h = m.hash(&1);
        let s = m.insert(h, 1, "one").expect("room");
        let g = m.generation(s);
        assert_eq!(m.get(s, g), Some((&1, &"one")));
        assert_eq!(m.get(s, g.wrapping_add(1)), None);
        assert_eq!(m.remove(s), Some((1, "one")));
        assert_eq!(m.get(s, g), None);
        assert_eq!(m.get_mut(s), None);
        // The vacated slot is reused first.
        let s2 = m.insert(m.hash(&2), 2, "two").expect("room");
        assert_eq!(s2, s);
        assert_eq!(m.get(s, g), None);
        assert_eq!(m.get(s, m.generation(s)), Some((&2, &"two")));
        assert_eq!(m.find(h, &1), None);
        // Out-of-range handles are refused.
        assert_eq!(m.get(99, 0), None);
        assert_eq!(m.remove(99), None);
    }

    #[test]
    fn a_full_map_refuses_inserts_until_an_entry_is_removed() {
        let mut m: SlabMap<u64, u64> = SlabMap::new(100);
        let slots: Vec<u32> = (0..100)
            .map(|k| m.insert(m.hash(&k), k, k).expect("room"))
            .collect();
        assert!(m.is_full());
        assert_eq!(m.insert(m.hash(&100), 100, 1), Err((100, 1)));
        assert_eq!(m.slots.len(), 100);
        assert_eq!(m.remove(slots[37]), Some((37, 37)));
        assert!(!m.is_full());
        assert_eq!(m.insert(m.hash(&100), 100, 1), Ok(slots[37]));
        assert_eq!(m.slots.len(), 100);
        m.check();
        assert_eq!(m.slots().len(), 100);
        // A capacity of 0 still holds one entry.
        let mut one: SlabMap<u64, ()> = SlabMap::new(0);
        assert!(one.insert(one.hash(&1), 1, ()).is_ok());
        assert!(one.insert(one.hash(&2), 2, ()).is_err());
    }
}
