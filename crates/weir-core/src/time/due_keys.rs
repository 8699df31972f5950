//! The keys of an operator instance that are due at some time: window ends, timers, the
//! times buffered records can be freed. Rebuilt from keyed state on a restore.

use std::collections::BTreeMap;

use rustc_hash::FxHashSet;

use crate::operators::keyed::{key_hash, Key};
use crate::time::stamped::EventTime;

/// Time → keys due then (a key noted twice for one time is there once).
pub(crate) struct DueKeys<K> {
    due: BTreeMap<EventTime, FxHashSet<K>>,
}

impl<K: Key> DueKeys<K> {
    pub(crate) fn new() -> Self {
        DueKeys {
            due: BTreeMap::new(),
        }
    }

    /// Notes that `key` is due at `at`.
    pub(crate) fn add(&mut self, at: EventTime, key: K) {
        self.due.entry(at).or_default().insert(key);
    }

    /// Forgets that `key` is due at `at` (a timer deleted before it fired).
    pub(crate) fn remove(&mut self, at: EventTime, key: &K) {
        if let Some(keys) = self.due.get_mut(&at) {
            keys.remove(key);
            if keys.is_empty() {
                self.due.remove(&at);
            }
        }
    }

    /// The keys due at the earliest time up to `upto`, each once, in an order that does not
    /// depend on how they were noted; `None` when nothing is due by then.
    pub(crate) fn pop_due(&mut self, upto: EventTime) -> Option<Vec<K>> {
        let entry = self.due.first_entry()?;
        if *entry.key() > upto {
            return None;
        }
        let mut keys: Vec<K> = entry.remove().into_iter().collect();
        keys.sort_unstable_by_key(key_hash);
        Some(keys)
    }

    /// The earliest time anything is due.
    pub(crate) fn next(&self) -> Option<EventTime> {
        self.due.keys().next().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_out_once_per_time_in_time_order() {
        let mut due = DueKeys::new();
        due.add(20, 2u32);
        due.add(10, 1);
        due.add(10, 1);
        due.add(30, 3);
        assert_eq!(due.pop_due(25), Some(vec![1]));
        assert_eq!(due.pop_due(25), Some(vec![2]));
        assert_eq!(due.pop_due(25), None);
        assert_eq!(due.next(), Some(30));
    }

    #[test]
    fn a_removed_key_is_not_due_and_an_empty_time_goes() {
        let mut due = DueKeys::new();
        due.add(10, 1u32);
        due.add(10, 2);
        due.add(20, 1);
        due.remove(10, &1);
        due.remove(20, &1);
        due.remove(99, &1);
        assert_eq!(due.next(), Some(10));
        assert_eq!(due.pop_due(100), Some(vec![2]));
        assert_eq!(due.next(), None, "nothing left at 20");
    }
}
