//! The table of a [`crate::state::KeyedState`]: each key's value, and, once the job
//! checkpoints, whether it changed since the last checkpoint.
//!
//! A job without checkpoints keeps the values alone, so the table every record's lookup walks
//! is as small as a plain map's (16 bytes an entry for a `u64` key and an `f64` sum, against
//! 24 with the flag): at 50k keys per worker that is the difference between a table that
//! fits in a 1 MiB L2 cache and one that does not.
//!
//! A write looks its key up by reference ([`KeyArg`]): a key given by reference is cloned
//! only when it is inserted, so an operator that keeps its own copy of the key (to emit it)
//! does not allocate a second one per record for a `String` key.

use std::hash::{BuildHasher, Hash};

use hashbrown::hash_map::{self, RawEntryMut};
use rustc_hash::{FxBuildHasher, FxHashSet};

/// The hash map of [`Slots`]: hashbrown's, for its raw entries (a lookup by reference that
/// can insert with the hash the lookup computed), with the same hasher as [`rustc_hash::FxHashMap`].
type Table<K, V> = hashbrown::HashMap<K, V, FxBuildHasher>;

/// A key given by value or by reference: inserting it moves or clones it.
pub(crate) trait KeyArg<K> {
    /// The key, to look it up.
    fn key(&self) -> &K;
    /// The key to insert: moved, or cloned from the reference.
    fn owned(self) -> K;
}

impl<K> KeyArg<K> for K {
    fn key(&self) -> &K {
        self
    }
    fn owned(self) -> K {
        self
    }
}

impl<K: Clone> KeyArg<K> for &K {
    fn key(&self) -> &K {
        self
    }
    fn owned(self) -> K {
        self.clone()
    }
}

/// The keys changed since the last checkpoint, each listed once: a key is listed when it is
/// first written or removed after a checkpoint, and a key removed and written again is not
/// listed again (which made the list grow with every remove-and-write cycle, not with the keys).
#[derive(Clone, Debug)]
pub(crate) struct ChangedKeys<K> {
    listed: Vec<K>,
    /// Keys removed since the last checkpoint (all listed).
    removed: FxHashSet<K>,
}

impl<K> Default for ChangedKeys<K> {
    fn default() -> Self {
        ChangedKeys {
            listed: Vec::new(),
            removed: FxHashSet::default(),
        }
    }
}

impl<K: Hash + Eq + Clone> ChangedKeys<K> {
    /// A key written for the first time since the last checkpoint, already in the table.
    fn written(&mut self, key: &K) {
        self.listed.push(key.clone());
    }

    /// A key inserted into the table: listed unless it was removed (and so listed) since the
    /// last checkpoint.
    fn inserted(&mut self, key: &K) {
        if self.removed.is_empty() || !self.removed.remove(key) {
            self.listed.push(key.clone());
        }
    }

    /// A key removed from the table; `listed` if it was already changed since the checkpoint.
    fn removed(&mut self, key: &K, listed: bool) {
        if !listed {
            self.listed.push(key.clone());
        }
        self.removed.insert(key.clone());
    }

    /// The keys listed since the last checkpoint, each once; the list starts again.
    pub(crate) fn take(&mut self) -> Vec<K> {
        self.removed.clear();
        std::mem::take(&mut self.listed)
    }
}

/// A value and whether it changed since the last checkpoint.
#[derive(Clone, Debug)]
pub(crate) struct Tracked<V> {
    value: V,
    dirty: bool,
}

/// Values per key, with or without change tracking.
#[derive(Clone, Debug)]
pub(crate) enum Slots<K, V> {
    /// No checkpoints: the values alone.
    Plain(Table<K, V>),
    /// Checkpoints: each value with its flag.
    Tracked(Table<K, Tracked<V>>),
}

impl<K, V> Default for Slots<K, V> {
    fn default() -> Self {
        Slots::Plain(Table::default())
    }
}

impl<K: Hash + Eq + Clone, V> Slots<K, V> {
    /// Tracks changes from now on (the values so far count as unchanged).
    pub(crate) fn track(&mut self) {
        if let Slots::Plain(values) = self {
            let tracked = std::mem::take(values)
                .into_iter()
                .map(|(k, value)| {
                    (
                        k,
                        Tracked {
                            value,
                            dirty: false,
                        },
                    )
                })
                .collect();
            *self = Slots::Tracked(tracked);
        }
    }

    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        match self {
            Slots::Plain(values) => values.get(key),
            Slots::Tracked(slots) => slots.get(key).map(|s| &s.value),
        }
    }

    /// The value of `key` to change: created with `init` if it has none, replaced by `init`
    /// if `expired`. A tracked key that was not yet changed since the last checkpoint is
    /// added to `changed` (cloned once). One hash lookup; a key given by reference is cloned
    /// only when it is inserted.
    #[inline]
    pub(crate) fn write(
        &mut self,
        key: impl KeyArg<K>,
        init: impl FnOnce() -> V,
        expired: bool,
        changed: &mut ChangedKeys<K>,
    ) -> &mut V {
        match self {
            Slots::Plain(values) => {
                let hash = values.hasher().hash_one(key.key());
                match values
                    .raw_entry_mut()
                    .from_key_hashed_nocheck(hash, key.key())
                {
                    RawEntryMut::Occupied(o) => {
                        let value = o.into_mut();
                        if expired {
                            *value = init();
                        }
                        value
                    }
                    RawEntryMut::Vacant(v) => v.insert_hashed_nocheck(hash, key.owned(), init()).1,
                }
            }
            Slots::Tracked(slots) => {
                let hash = slots.hasher().hash_one(key.key());
                let slot = match slots
                    .raw_entry_mut()
                    .from_key_hashed_nocheck(hash, key.key())
                {
                    RawEntryMut::Occupied(o) => {
                        if !o.get().dirty {
                            changed.written(o.key());
                        }
                        let slot = o.into_mut();
                        if expired {
                            slot.value = init();
                        }
                        slot
                    }
                    RawEntryMut::Vacant(v) => {
                        let key = key.owned();
                        changed.inserted(&key);
                        let fresh = Tracked {
                            value: init(),
                            dirty: false,
                        };
                        v.insert_hashed_nocheck(hash, key, fresh).1
                    }
                };
                slot.dirty = true;
                &mut slot.value
            }
        }
    }

    /// Removes `key` and returns its value; a tracked removal goes to `changed`.
    pub(crate) fn remove(&mut self, key: &K, changed: &mut ChangedKeys<K>) -> Option<V> {
        match self {
            Slots::Plain(values) => values.remove(key),
            Slots::Tracked(slots) => {
                let slot = slots.remove(key)?;
                changed.removed(key, slot.dirty);
                Some(slot.value)
            }
        }
    }

    /// Removes `key` as a restore does: not a change since the checkpoint restored.
    pub(crate) fn forget(&mut self, key: &K) {
        match self {
            Slots::Plain(values) => {
                values.remove(key);
            }
            Slots::Tracked(slots) => {
                slots.remove(key);
            }
        }
    }

    /// Stores a restored value (unchanged since the checkpoint it comes from).
    pub(crate) fn insert(&mut self, key: K, value: V) {
        match self {
            Slots::Plain(values) => {
                values.insert(key, value);
            }
            Slots::Tracked(slots) => {
                slots.insert(
                    key,
                    Tracked {
                        value,
                        dirty: false,
                    },
                );
            }
        }
    }

    /// Marks every value unchanged (a checkpoint holds them now).
    pub(crate) fn clean(&mut self) {
        if let Slots::Tracked(slots) = self {
            slots.values_mut().for_each(|s| s.dirty = false);
        }
    }

    /// Marks the values of `keys` unchanged: after an incremental checkpoint of the keys
    /// [`ChangedKeys`] listed (every changed key is listed), without a pass over all keys.
    pub(crate) fn clean_keys(&mut self, keys: &[K]) {
        if let Slots::Tracked(slots) = self {
            for key in keys {
                if let Some(slot) = slots.get_mut(key) {
                    slot.dirty = false;
                }
            }
        }
    }

    /// Every value, to change what an operator keeps beside it and does not checkpoint
    /// (nothing is marked changed).
    pub(crate) fn for_each_value_untracked(&mut self, mut f: impl FnMut(&mut V)) {
        match self {
            Slots::Plain(values) => values.values_mut().for_each(f),
            Slots::Tracked(slots) => slots.values_mut().for_each(|s| f(&mut s.value)),
        }
    }

    pub(crate) fn clear(&mut self) {
        match self {
            Slots::Plain(values) => values.clear(),
            Slots::Tracked(slots) => slots.clear(),
        }
    }

    pub(crate) fn reserve(&mut self, more: usize) {
        match self {
            Slots::Plain(values) => values.reserve(more),
            Slots::Tracked(slots) => slots.reserve(more),
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Slots::Plain(values) => values.len(),
            Slots::Tracked(slots) => slots.len(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn iter(&self) -> Iter<'_, K, V> {
        match self {
            Slots::Plain(values) => Iter::Plain(values.iter()),
            Slots::Tracked(slots) => Iter::Tracked(slots.iter()),
        }
    }
}

/// Every key and value of [`Slots`], in no particular order.
pub(crate) enum Iter<'a, K, V> {
    Plain(hash_map::Iter<'a, K, V>),
    Tracked(hash_map::Iter<'a, K, Tracked<V>>),
}

impl<'a, K, V> Iterator for Iter<'a, K, V> {
    type Item = (&'a K, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Plain(it) => it.next(),
            Iter::Tracked(it) => it.next().map(|(k, s)| (k, &s.value)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracked_keys_are_reported_once_per_checkpoint_and_plain_ones_never() {
        let mut plain: Slots<&str, u32> = Slots::default();
        let mut changed = ChangedKeys::default();
        *plain.write("a", || 0, false, &mut changed) += 1;
        *plain.write("a", || 0, false, &mut changed) += 1;
        assert_eq!(plain.remove(&"x", &mut changed), None);
        assert_eq!(plain.get(&"a"), Some(&2));
        assert!(changed.take().is_empty());

        let mut tracked = plain.clone();
        tracked.track();
        assert_eq!(tracked.get(&"a"), Some(&2), "values survive the switch");
        *tracked.write("a", || 0, false, &mut changed) += 1;
        *tracked.write("b", || 7, false, &mut changed) += 1;
        *tracked.write("a", || 0, false, &mut changed) += 1;
        assert_eq!(changed.take(), ["a", "b"]);
        tracked.clean();
        assert_eq!(tracked.remove(&"b", &mut changed), Some(8));
        *tracked.write("a", || 0, true, &mut changed) += 5;
        assert_eq!(tracked.get(&"a"), Some(&5), "expired: started again");
        assert_eq!(tracked.remove(&"a", &mut changed), Some(5));
        assert_eq!(changed.take(), ["b", "a"]);
        assert_eq!(tracked.len(), 0);
    }

    /// A key removed and written again between two checkpoints is listed once, however many
    /// times it goes and comes back (the list grew by one a cycle), also when it was
    /// unchanged since the checkpoint before it was removed.
    #[test]
    fn a_key_removed_and_written_again_is_listed_once_until_the_checkpoint() {
        let mut slots: Slots<u64, u32> = Slots::default();
        slots.track();
        let mut changed = ChangedKeys::default();
        for _ in 0..100 {
            *slots.write(7, || 0, false, &mut changed) += 1;
            slots.remove(&7, &mut changed);
        }
        *slots.write(7, || 0, false, &mut changed) += 1;
        assert_eq!(changed.take(), [7]);
        slots.clean();

        slots.remove(&7, &mut changed);
        *slots.write(7, || 0, false, &mut changed) += 1;
        *slots.write(8, || 0, false, &mut changed) += 1;
        assert_eq!(changed.take(), [7, 8]);
        slots.clean();
        assert!(changed.take().is_empty(), "nothing since the checkpoint");
    }

    /// A key that counts how often it was cloned.
    #[derive(Debug)]
    struct Counted(u32, std::rc::Rc<std::cell::Cell<usize>>);

    impl Clone for Counted {
        fn clone(&self) -> Self {
            self.1.set(self.1.get() + 1);
            Counted(self.0, std::rc::Rc::clone(&self.1))
        }
    }
    impl PartialEq for Counted {
        fn eq(&self, other: &Self) -> bool {
            self.0 == other.0
        }
    }
    impl Eq for Counted {}
    impl Hash for Counted {
        fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
            self.0.hash(state);
        }
    }

    #[test]
    fn a_key_given_by_reference_is_cloned_only_when_it_is_inserted_or_first_changed() {
        let clones = std::rc::Rc::new(std::cell::Cell::new(0));
        let (a, b) = (Counted(1, clones.clone()), Counted(2, clones.clone()));
        let mut changed = ChangedKeys::default();
        let mut slots: Slots<Counted, u32> = Slots::default();
        for _ in 0..5 {
            *slots.write(&a, || 0, false, &mut changed) += 1;
        }
        assert_eq!(clones.get(), 1, "cloned once, to insert it");
        *slots.write(b, || 10, false, &mut changed) += 1;
        assert_eq!(clones.get(), 1, "a key given by value moves in");
        assert_eq!(slots.get(&a), Some(&5));

        slots.track();
        for _ in 0..5 {
            *slots.write(&a, || 0, false, &mut changed) += 1;
        }
        assert_eq!(
            clones.get(),
            2,
            "and once more for the changes since the checkpoint"
        );
        assert_eq!(changed.take(), [Counted(1, clones.clone())]);
        assert_eq!(slots.get(&a), Some(&10));
    }

    /// Cleaning the keys an incremental checkpoint listed leaves no key dirty: each is
    /// listed again when it next changes, as after a full clean.
    #[test]
    fn cleaning_the_listed_keys_is_a_full_clean() {
        let mut slots: Slots<u64, u32> = Slots::default();
        let mut changed = ChangedKeys::default();
        for k in 0..1000 {
            *slots.write(k, || 0, false, &mut changed) += 1;
        }
        slots.track();
        for k in [3, 500, 999, 3] {
            *slots.write(k, || 0, false, &mut changed) += 1;
        }
        *slots.write(1000, || 0, false, &mut changed) += 1;
        slots.remove(&7, &mut changed);
        let listed = changed.take();
        assert_eq!(listed, [3, 500, 999, 1000, 7]);
        slots.clean_keys(&listed);
        for k in [3, 1000, 42] {
            *slots.write(k, || 0, false, &mut changed) += 1;
        }
        assert_eq!(changed.take(), [3, 1000, 42], "each listed again, once");
    }
}
