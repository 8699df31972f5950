//! Keyed state that checkpoints: a value per key (Flink's `ValueState`), and on top of it a
//! list per key (`ListState`) and a map per key (`MapState`), with an optional time-to-live
//! (Flink's `StateTtlConfig`: a key not written for the TTL is gone).
//!
//! The state remembers which keys changed since the last checkpoint, so that a checkpoint
//! can hold only those (incremental) and restore applies a full checkpoint, then the changes
//! after it. Keys are routed by [`crate::key_hash`], so a checkpoint restores at another
//! parallelism: every instance takes the keys it now owns.

use std::collections::BTreeMap;
use std::hash::Hash;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustc_hash::FxHashMap;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::operators::keyed::key_hash;
use crate::state::registry::KeyedPart;
use crate::state::slots::{ChangedKeys, KeyArg, Slots};
use crate::state::snapshot::{decode_part, KeyedEntries, StatePart};
use crate::state::StateError;

/// How long a key lives without being written (Flink's `StateTtlConfig` with processing
/// time and `OnCreateAndWrite`): a key whose last write is older than `ttl` is not
/// returned, and is dropped (and removed from the next checkpoint) when the state expires
/// its keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateTtl {
    /// The time to live.
    pub ttl: Duration,
}

impl StateTtl {
    /// Keys live for `ttl` after their last write.
    pub fn after_write(ttl: Duration) -> Self {
        StateTtl { ttl }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A value per key, checkpointed with the job (see the [module documentation](self)).
///
/// ```
/// use weir_core::state::KeyedState;
/// let mut clicks: KeyedState<String, u64> = KeyedState::new();
/// *clicks.entry("ann".to_string()) += 1;
/// *clicks.entry("ann".to_string()) += 1;
/// assert_eq!(clicks.get(&"ann".to_string()), Some(&2));
/// assert_eq!(clicks.len(), 1);
/// ```
#[derive(Clone, Debug)]
pub struct KeyedState<K, V> {
    /// The values (and, when the job checkpoints, which changed since the last checkpoint).
    slots: Slots<K, V>,
    /// Milliseconds since the Unix epoch of each key's last write, with a TTL only: kept
    /// apart, so that the table every record's lookup walks holds nothing else.
    written: FxHashMap<K, u64>,
    /// Keys written or removed since the last checkpoint, each once.
    changed: ChangedKeys<K>,
    /// Writes since expired keys were last dropped (state with a TTL), and how many writes
    /// the next pass waits for.
    writes_since_expiry: usize,
    expiry_every: usize,
    ttl: Option<StateTtl>,
    clock: fn() -> u64,
}

impl<K, V> Default for KeyedState<K, V> {
    fn default() -> Self {
        KeyedState {
            slots: Slots::default(),
            written: FxHashMap::default(),
            changed: ChangedKeys::default(),
            writes_since_expiry: 0,
            expiry_every: 0,
            ttl: None,
            clock: now_ms,
        }
    }
}

impl<K: Hash + Eq + Clone, V> KeyedState<K, V> {
    /// Writes between two passes that drop expired keys, at least (see `expire_now_and_then`).
    const EXPIRY_WRITES: usize = 4096;

    /// Empty state without a TTL.
    pub fn new() -> Self {
        Self::default()
    }

    /// Empty state whose keys expire `ttl` after their last write.
    pub fn with_ttl(ttl: StateTtl) -> Self {
        KeyedState {
            ttl: Some(ttl),
            ..Self::default()
        }
    }

    /// Remembers changed keys from now on, for incremental checkpoints.
    pub(crate) fn track_changes(&mut self) {
        self.slots.track();
    }

    /// Uses another clock (milliseconds since the Unix epoch), for tests of the TTL.
    pub fn with_clock(mut self, clock: fn() -> u64) -> Self {
        self.clock = clock;
        self
    }

    /// When `key` was last written (0 without a TTL), as checkpoints hold it.
    fn written_ms(&self, key: &K) -> u64 {
        self.written.get(key).copied().unwrap_or(0)
    }

    /// Whether `key`'s TTL has passed at `now` (never without a TTL).
    fn expired(&self, key: &K, now: u64) -> bool {
        self.ttl
            .is_some_and(|t| now.saturating_sub(self.written_ms(key)) >= t.ttl.as_millis() as u64)
    }

    /// Every value, to change bookkeeping an operator keeps beside it that checkpoints do
    /// not hold (no key counts as changed).
    pub(crate) fn for_each_value_untracked(&mut self, f: impl FnMut(&mut V)) {
        self.slots.for_each_value_untracked(f);
    }

    /// The value of `key`, unless it has none or it expired.
    pub fn get(&self, key: &K) -> Option<&V> {
        let value = self.slots.get(key)?;
        if self.ttl.is_some() && self.expired(key, (self.clock)()) {
            return None;
        }
        Some(value)
    }

    /// Sets the value of `key`.
    pub fn put(&mut self, key: K, value: V) {
        self.merge_or_insert(key, value, |slot, v| *slot = v);
    }

    /// Stores `value` as `key`'s value if it has none (or it expired), else merges it into
    /// the value with `merge`; returns the value. One hash lookup (two with a TTL).
    #[inline]
    pub fn merge_or_insert(&mut self, key: K, value: V, merge: impl FnOnce(&mut V, V)) -> &mut V {
        self.merge_or_insert_at(key, value, merge)
    }

    /// [`KeyedState::merge_or_insert`] with `key` by reference: cloned only when inserted.
    #[inline]
    pub(crate) fn merge_or_insert_by_ref(
        &mut self,
        key: &K,
        value: V,
        merge: impl FnOnce(&mut V, V),
    ) -> &mut V {
        self.merge_or_insert_at(key, value, merge)
    }

    #[inline]
    fn merge_or_insert_at(
        &mut self,
        key: impl KeyArg<K>,
        value: V,
        merge: impl FnOnce(&mut V, V),
    ) -> &mut V {
        let mut value = Some(value);
        let slot = self.write(key, || value.take().expect("taken once"));
        if let Some(v) = value {
            merge(slot, v);
        }
        slot
    }

    /// The value of `key` to change, created with `init` if it has none (or it expired).
    /// One hash lookup without a TTL (two with one); the key is cloned only the first time it
    /// changes after a checkpoint.
    #[inline]
    pub fn entry_or_insert_with(&mut self, key: K, init: impl FnOnce() -> V) -> &mut V {
        self.write(key, init)
    }

    /// [`KeyedState::entry_or_insert_with`] with `key` by reference: the key is cloned only
    /// when it is inserted (and the first time it changes after a checkpoint), so a caller
    /// that needs its key afterwards does not clone it for every write.
    ///
    /// ```
    /// use weir_core::state::KeyedState;
    /// let mut clicks: KeyedState<String, u64> = KeyedState::new();
    /// let user = "ann".to_string();
    /// *clicks.get_or_insert_with(&user, || 0) += 1;
    /// *clicks.get_or_insert_with(&user, || 0) += 1;
    /// assert_eq!(clicks.get(&user), Some(&2));
    /// ```
    #[inline]
    pub fn get_or_insert_with(&mut self, key: &K, init: impl FnOnce() -> V) -> &mut V {
        self.write(key, init)
    }

    #[inline]
    fn write(&mut self, key: impl KeyArg<K>, init: impl FnOnce() -> V) -> &mut V {
        let expired = match self.ttl {
            Some(_) => {
                self.expire_now_and_then();
                self.touch(key.key())
            }
            None => false,
        };
        self.slots.write(key, init, expired, &mut self.changed)
    }

    /// Drops the expired keys once every so many writes (as many as there are keys, at least
    /// [`KeyedState::EXPIRY_WRITES`]): a job without checkpoints (which expire keys at each
    /// snapshot) keeps only live keys too, at a constant cost per write.
    fn expire_now_and_then(&mut self) {
        self.writes_since_expiry += 1;
        // As many writes as there were keys after the last pass (the keys grow as fast as the
        // writes when every write is a new key).
        if self.writes_since_expiry >= self.expiry_every.max(Self::EXPIRY_WRITES) {
            self.expire();
            self.writes_since_expiry = 0;
            self.expiry_every = self.slots.len();
        }
    }

    /// Notes a write of `key` now (state with a TTL); returns whether its earlier value had
    /// expired (a key never written counts as expired).
    fn touch(&mut self, key: &K) -> bool {
        let now = (self.clock)();
        let ttl = self.ttl.map_or(u64::MAX, |t| t.ttl.as_millis() as u64);
        match self.written.get_mut(key) {
            Some(written) => {
                let expired = now.saturating_sub(*written) >= ttl;
                *written = now;
                expired
            }
            None => {
                self.written.insert(key.clone(), now);
                true
            }
        }
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        self.written.remove(key);
        self.slots.remove(key, &mut self.changed)
    }

    /// Drops every key whose TTL has passed; returns how many.
    pub fn expire(&mut self) -> usize {
        if self.ttl.is_none() {
            return 0;
        }
        let now = (self.clock)();
        let gone: Vec<K> = self
            .slots
            .iter()
            .filter(|(k, _)| self.expired(k, now))
            .map(|(k, _)| k.clone())
            .collect();
        for k in &gone {
            self.remove(k);
        }
        gone.len()
    }

    /// Number of keys (expired ones included until [`KeyedState::expire`]).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Every live key and value, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        let now = if self.ttl.is_some() {
            (self.clock)()
        } else {
            0
        };
        self.slots
            .iter()
            .filter(move |(k, _)| !self.expired(k, now))
    }
}

impl<K: Hash + Eq + Clone, V: Default> KeyedState<K, V> {
    /// The value of `key` to change, created with `V::default()` if it has none.
    pub fn entry(&mut self, key: K) -> &mut V {
        self.entry_or_insert_with(key, V::default)
    }
}

impl<K, V> KeyedState<K, V>
where
    K: Hash + Eq + Clone + Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
{
    /// The state for a checkpoint: every key (`full`), or the keys changed since the last
    /// checkpoint. Expired keys are dropped first.
    pub(crate) fn snapshot(&mut self, full: bool) -> Result<StatePart, StateError> {
        self.expire();
        let entries = if full {
            let mut entries = KeyedEntries::with_capacity(self.slots.len());
            for (k, value) in self.slots.iter() {
                entries.push(key_hash(k), k, Some(&(value, self.written_ms(k))))?;
            }
            entries
        } else {
            // Each key once (`ChangedKeys`), in hash order.
            let mut changed = self.changed.take();
            changed.sort_unstable_by_key(key_hash);
            let mut entries = KeyedEntries::with_capacity(changed.len());
            for k in &changed {
                let value = self.slots.get(k).map(|v| (v, self.written_ms(k)));
                entries.push(key_hash(k), k, value.as_ref())?;
            }
            // Only the listed keys can be dirty: no pass over every key.
            self.slots.clean_keys(&changed);
            return Ok(StatePart::Keyed { full, entries });
        };
        self.changed.take();
        self.slots.clean();
        Ok(StatePart::Keyed { full, entries })
    }

    /// Applies restored parts in order: a full one replaces everything, a later one applies
    /// its changes.
    pub(crate) fn restore(&mut self, parts: &[KeyedPart<'_>]) -> Result<(), StateError> {
        for part in parts {
            if part.full {
                self.slots.clear();
                self.written.clear();
                // A pass over the hashes alone sizes the table once.
                self.slots.reserve(part.entries().count());
            }
            for e in part.entries() {
                let key: K = decode_part(e.key)?;
                match &e.value {
                    Some(bytes) => {
                        let (value, written_ms): (V, u64) = decode_part(bytes)?;
                        if self.ttl.is_some() {
                            // Saved without a TTL (0): its time to live starts now.
                            let written_ms = if written_ms == 0 {
                                (self.clock)()
                            } else {
                                written_ms
                            };
                            self.written.insert(key.clone(), written_ms);
                        }
                        self.slots.insert(key, value);
                    }
                    None => {
                        self.written.remove(&key);
                        self.slots.forget(&key);
                    }
                }
            }
        }
        Ok(())
    }
}

/// A list per key (Flink's `ListState`).
pub type KeyedListState<K, T> = KeyedState<K, Vec<T>>;

impl<K: Hash + Eq + Clone, T> KeyedState<K, Vec<T>> {
    /// Appends `item` to the list of `key`.
    ///
    /// ```
    /// use weir_core::state::KeyedListState;
    /// let mut seen: KeyedListState<u32, &str> = KeyedListState::new();
    /// seen.push(1, "a");
    /// seen.push(1, "b");
    /// assert_eq!(seen.list(&1), &["a", "b"]);
    /// assert!(seen.list(&2).is_empty());
    /// ```
    pub fn push(&mut self, key: K, item: T) {
        self.entry_or_insert_with(key, Vec::new).push(item);
    }

    /// The list of `key` (empty if it has none).
    pub fn list(&self, key: &K) -> &[T] {
        self.get(key).map_or(&[], Vec::as_slice)
    }
}

/// A map per key (Flink's `MapState`).
pub type KeyedMapState<K, MK, MV> = KeyedState<K, BTreeMap<MK, MV>>;

impl<K: Hash + Eq + Clone, MK: Ord, MV> KeyedState<K, BTreeMap<MK, MV>> {
    /// Sets `map_key` to `value` in the map of `key`.
    ///
    /// ```
    /// use weir_core::state::KeyedMapState;
    /// let mut last: KeyedMapState<u32, String, f64> = KeyedMapState::new();
    /// last.insert_in(7, "temp".into(), 21.5);
    /// assert_eq!(last.get_in(&7, &"temp".to_string()), Some(&21.5));
    /// ```
    pub fn insert_in(&mut self, key: K, map_key: MK, value: MV) -> Option<MV> {
        self.entry_or_insert_with(key, BTreeMap::new)
            .insert(map_key, value)
    }

    /// The value of `map_key` in the map of `key`.
    pub fn get_in(&self, key: &K, map_key: &MK) -> Option<&MV> {
        self.get(key)?.get(map_key)
    }

    /// Removes `map_key` from the map of `key`.
    pub fn remove_in(&mut self, key: &K, map_key: &MK) -> Option<MV> {
        let removed = self.get(key)?;
        if !removed.contains_key(map_key) {
            return None;
        }
        self.entry_or_insert_with(key.clone(), BTreeMap::new)
            .remove(map_key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    static NOW: AtomicU64 = AtomicU64::new(1_000);

    fn clock() -> u64 {
        NOW.load(Ordering::SeqCst)
    }

    #[test]
    fn merge_or_insert_stores_a_first_value_and_merges_later_ones() {
        let mut totals: KeyedState<&str, u64> = KeyedState::new();
        totals.track_changes();
        assert_eq!(*totals.merge_or_insert("a", 5, |t, v| *t += v), 5);
        assert_eq!(*totals.merge_or_insert("a", 7, |t, v| *t += v), 12);
        totals.put("b", 3);
        totals.put("b", 4);
        assert_eq!((totals.get(&"a"), totals.get(&"b")), (Some(&12), Some(&4)));
    }

    #[test]
    fn incremental_snapshots_hold_only_changes_and_restore_to_the_same_state() {
        let mut a: KeyedState<String, u64> = KeyedState::new();
        a.track_changes();
        for k in ["x", "y", "z"] {
            *a.entry(k.to_string()) += 1;
        }
        let full = a.snapshot(true).unwrap();
        *a.entry("x".to_string()) += 10;
        a.remove(&"y".to_string());
        let delta = a.snapshot(false).unwrap();
        let StatePart::Keyed { entries, .. } = &delta else {
            panic!()
        };
        assert_eq!(entries.len(), 2, "x changed, y removed: {entries:?}");
        let mut b: KeyedState<String, u64> = KeyedState::new();
        b.restore(&[KeyedPart::of(&full), KeyedPart::of(&delta)])
            .unwrap();
        let mut got: Vec<_> = b.iter().map(|(k, v)| (k.clone(), *v)).collect();
        got.sort();
        assert_eq!(got, vec![("x".into(), 11), ("z".into(), 1)]);
        // Nothing changed since: an empty delta.
        let StatePart::Keyed { entries, .. } = a.snapshot(false).unwrap() else {
            panic!()
        };
        assert!(entries.is_empty());
    }

    #[test]
    fn keys_expire_after_their_ttl_and_leave_the_next_checkpoint() {
        let mut s: KeyedState<u32, u32> =
            KeyedState::with_ttl(StateTtl::after_write(Duration::from_millis(100)))
                .with_clock(clock);
        s.track_changes();
        s.put(1, 10);
        s.put(2, 20);
        let _ = s.snapshot(true).unwrap();
        NOW.fetch_add(60, Ordering::SeqCst);
        s.put(2, 21); // written again: lives on
        NOW.fetch_add(60, Ordering::SeqCst);
        assert_eq!(s.get(&1), None, "key 1 expired");
        assert_eq!(s.get(&2), Some(&21));
        let StatePart::Keyed { entries, .. } = s.snapshot(false).unwrap() else {
            panic!()
        };
        let removed: Vec<_> = entries.iter().filter(|e| e.value.is_none()).collect();
        assert_eq!(removed.len(), 1, "{entries:?}");
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn restored_keys_keep_their_write_times() {
        // A clock of its own: tests run in parallel.
        static RESTORE_NOW: AtomicU64 = AtomicU64::new(1_000);
        fn restore_clock() -> u64 {
            RESTORE_NOW.load(Ordering::SeqCst)
        }
        let ttl = StateTtl::after_write(Duration::from_millis(100));
        let mut s: KeyedState<u32, u32> = KeyedState::with_ttl(ttl).with_clock(restore_clock);
        s.track_changes();
        s.put(1, 10);
        RESTORE_NOW.fetch_add(60, Ordering::SeqCst);
        s.put(2, 20);
        let full = s.snapshot(true).unwrap();
        let mut r: KeyedState<u32, u32> = KeyedState::with_ttl(ttl).with_clock(restore_clock);
        r.restore(&[KeyedPart::of(&full)]).unwrap();
        assert_eq!((r.get(&1), r.get(&2)), (Some(&10), Some(&20)));
        RESTORE_NOW.fetch_add(60, Ordering::SeqCst);
        assert_eq!(r.get(&1), None, "key 1 was written 120 ms ago");
        assert_eq!(r.get(&2), Some(&20), "key 2 was written 60 ms ago");
        *r.entry(1) += 1;
        assert_eq!(r.get(&1), Some(&1), "an expired key starts again");
        assert_eq!(r.expire(), 0);
        RESTORE_NOW.fetch_add(60, Ordering::SeqCst);
        assert_eq!(r.expire(), 1, "key 2 expires, key 1 was written again");
        assert_eq!(r.iter().collect::<Vec<_>>(), vec![(&1, &1)]);
    }

    /// State with a TTL in a job without checkpoints (which would expire keys at each
    /// snapshot) still drops its expired keys: it held every key ever written before.
    #[test]
    fn state_with_a_ttl_drops_expired_keys_without_checkpoints() {
        static UNCHECKPOINTED_NOW: AtomicU64 = AtomicU64::new(1_000);
        fn own_clock() -> u64 {
            UNCHECKPOINTED_NOW.load(Ordering::SeqCst)
        }
        let ttl = StateTtl::after_write(Duration::from_millis(100));
        let mut s: KeyedState<u64, u64> = KeyedState::with_ttl(ttl).with_clock(own_clock);
        for round in 0..20u64 {
            for k in 0..10_000 {
                s.put(round * 10_000 + k, k);
            }
            UNCHECKPOINTED_NOW.fetch_add(200, Ordering::SeqCst);
        }
        assert!(
            s.len() <= 30_000,
            "{} keys held of 200,000 written",
            s.len()
        );
        assert_eq!(s.iter().count(), 0, "all expired by now");
    }

    /// Keys saved by state without a TTL and restored into state with one live for the TTL
    /// from the restore; they had a write time of 0 and were all expired at once.
    #[test]
    fn keys_saved_without_a_ttl_live_for_the_ttl_after_a_restore_with_one() {
        static RESTORE_TTL_NOW: AtomicU64 = AtomicU64::new(1_000_000);
        fn own_clock() -> u64 {
            RESTORE_TTL_NOW.load(Ordering::SeqCst)
        }
        let mut s: KeyedState<u32, u32> = KeyedState::new();
        s.track_changes();
        s.put(1, 10);
        let full = s.snapshot(true).unwrap();
        let ttl = StateTtl::after_write(Duration::from_millis(100));
        let mut r: KeyedState<u32, u32> = KeyedState::with_ttl(ttl).with_clock(own_clock);
        r.restore(&[KeyedPart::of(&full)]).unwrap();
        assert_eq!(r.get(&1), Some(&10));
        RESTORE_TTL_NOW.fetch_add(150, Ordering::SeqCst);
        assert_eq!(r.get(&1), None, "expired 100 ms after the restore");
    }

    #[test]
    fn state_restored_while_tracking_holds_no_changes_until_written() {
        let mut a: KeyedState<String, u64> = KeyedState::new();
        a.track_changes();
        for k in ["x", "y"] {
            *a.entry(k.to_string()) += 1;
        }
        let full = a.snapshot(true).unwrap();
        // As the operators do: tracking first, then the restore.
        let mut b: KeyedState<String, u64> = KeyedState::new();
        b.track_changes();
        b.restore(&[KeyedPart::of(&full)]).unwrap();
        let StatePart::Keyed { entries, .. } = b.snapshot(false).unwrap() else {
            panic!()
        };
        assert!(
            entries.is_empty(),
            "restored keys are unchanged: {entries:?}"
        );
        *b.entry("y".to_string()) += 1;
        let StatePart::Keyed { entries, .. } = b.snapshot(false).unwrap() else {
            panic!()
        };
        assert_eq!(entries.len(), 1, "{entries:?}");
        assert_eq!(b.get(&"y".to_string()), Some(&2));
    }

    #[test]
    fn list_and_map_state_change_per_key() {
        let mut l: KeyedListState<u8, u8> = KeyedListState::new();
        l.push(1, 5);
        l.push(1, 6);
        assert_eq!(l.list(&1), &[5, 6]);
        let mut m: KeyedMapState<u8, u8, u8> = KeyedMapState::new();
        m.insert_in(1, 2, 3);
        assert_eq!(m.remove_in(&1, &2), Some(3));
        assert_eq!(m.remove_in(&1, &2), None);
    }
}
