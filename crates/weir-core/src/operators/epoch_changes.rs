//! The keys an epoch changed in a keyed operator's running state, each once with its value
//! after the epoch, collected while the epoch is merged into the state: each value carries
//! a mark of the last epoch that changed it and of its place in that epoch's output, so
//! that no table of the epoch's keys is kept beside the state (one hash lookup per update
//! instead of two).

use serde::{Deserialize, Serialize};

use crate::operators::keyed::Key;
use crate::state::KeyedState;

/// A running accumulator and the mark of the last epoch that changed it. Checkpoints hold
/// the accumulator alone (the mark is not serialised, and a restored value has none).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct Marked<A> {
    pub(crate) acc: A,
    #[serde(skip)]
    mark: Mark,
}

impl<A> Marked<A> {
    /// An accumulator no epoch has marked yet.
    pub(crate) fn new(acc: A) -> Self {
        Marked {
            acc,
            mark: Mark::default(),
        }
    }
}

/// Which epoch changed a value last (its generation, 0 for none), where the value is in
/// that epoch's changes, and ([`Mark::STALE`]) whether it changed again after it was listed.
/// Two `u32`s, so that a `u64` sum's entry grows by 8 bytes only.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Mark {
    generation: u32,
    index: u32,
}

impl Mark {
    /// The bit of `index` set once the value is in [`EpochChanges::stale`].
    const STALE: u32 = 1 << 31;
}

/// The changes of the epoch being merged: `(key, accumulator)` for each key it changed, in
/// the order the keys were first changed.
pub(crate) struct EpochChanges<K, A> {
    /// The current epoch's generation (never 0 once an epoch began).
    generation: u32,
    changed: Vec<(K, A)>,
    /// Places in `changed` whose key changed again after it was listed: their accumulators
    /// are copied again when the epoch ends (once each, not at every change).
    stale: Vec<u32>,
    /// How many keys the last epoch changed.
    last: usize,
}

impl<K, A> Default for EpochChanges<K, A> {
    fn default() -> Self {
        EpochChanges {
            generation: 0,
            changed: Vec::new(),
            stale: Vec::new(),
            last: 0,
        }
    }
}

impl<K: Key, A: Clone> EpochChanges<K, A> {
    /// Starts collecting the changes of the next epoch merged into `state`, with room for as
    /// many as the last epoch had (its vector went downstream; this one does not grow from
    /// empty). After 2^32 - 1 epochs the generations start again from 1, and every mark is
    /// cleared first.
    pub(crate) fn begin(&mut self, state: &mut KeyedState<K, Marked<A>>) {
        debug_assert!(
            self.changed.is_empty(),
            "the last epoch's changes were taken"
        );
        self.changed.reserve(self.last);
        if self.generation == u32::MAX {
            state.for_each_value_untracked(|v| v.mark = Mark::default());
            self.generation = 0;
        }
        self.generation += 1;
    }

    /// Notes that `key`'s value `slot` changed in the current epoch: listed with a copy of
    /// its accumulator the first time, marked to be copied again at the end after that.
    #[inline]
    pub(crate) fn note(&mut self, key: K, slot: &mut Marked<A>) {
        let mark = &mut slot.mark;
        if mark.generation == self.generation {
            if mark.index & Mark::STALE == 0 {
                self.stale.push(mark.index);
                mark.index |= Mark::STALE;
            }
            return;
        }
        let index = self.changed.len() as u32;
        assert!(index < Mark::STALE, "fewer than 2^31 keys change per epoch");
        *mark = Mark {
            generation: self.generation,
            index,
        };
        self.changed.push((key, slot.acc.clone()));
    }

    /// The current epoch's changes, each key once with its accumulator now in `state`; the
    /// caller empties the vector (the next epoch starts from it).
    pub(crate) fn finish(&mut self, state: &KeyedState<K, Marked<A>>) -> &mut Vec<(K, A)> {
        for index in self.stale.drain(..) {
            let (key, acc) = &mut self.changed[index as usize];
            if let Some(now) = state.get(key) {
                *acc = now.acc.clone();
            }
        }
        self.last = self.changed.len();
        &mut self.changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustc_hash::FxHashMap;

    /// Merges `epochs` of `(key, amount)` updates into a state of running sums the way the
    /// owners do, and returns each epoch's changes sorted by key.
    fn run(
        changes: &mut EpochChanges<u32, u64>,
        epochs: &[Vec<(u32, u64)>],
    ) -> Vec<Vec<(u32, u64)>> {
        let mut state: KeyedState<u32, Marked<u64>> = KeyedState::new();
        run_on(changes, &mut state, epochs)
    }

    fn run_on(
        changes: &mut EpochChanges<u32, u64>,
        state: &mut KeyedState<u32, Marked<u64>>,
        epochs: &[Vec<(u32, u64)>],
    ) -> Vec<Vec<(u32, u64)>> {
        let mut out = Vec::new();
        for epoch in epochs {
            changes.begin(state);
            for &(key, amount) in epoch {
                let slot = state.merge_or_insert(key, Marked::new(amount), |m, p| m.acc += p.acc);
                changes.note(key, slot);
            }
            let changed = changes.finish(state);
            let mut sorted = changed.clone();
            changed.clear();
            sorted.sort();
            out.push(sorted);
        }
        out
    }

    /// The same, with a table per epoch (what the owners did before).
    fn reference(epochs: &[Vec<(u32, u64)>]) -> Vec<Vec<(u32, u64)>> {
        let mut totals: FxHashMap<u32, u64> = FxHashMap::default();
        epochs
            .iter()
            .map(|epoch| {
                let mut touched: Vec<u32> = epoch.iter().map(|&(k, _)| k).collect();
                for &(k, amount) in epoch {
                    *totals.entry(k).or_default() += amount;
                }
                touched.sort();
                touched.dedup();
                touched.into_iter().map(|k| (k, totals[&k])).collect()
            })
            .collect()
    }

    fn epochs() -> Vec<Vec<(u32, u64)>> {
        vec![
            vec![(1, 10), (2, 20), (1, 1), (3, 3), (1, 100)],
            vec![(2, 2)],
            vec![],
            vec![(3, 30), (4, 4), (3, 300), (4, 40), (2, 200)],
            vec![(1, 5); 7],
        ]
    }

    #[test]
    fn each_changed_key_is_listed_once_with_its_value_after_the_epoch() {
        let epochs = epochs();
        assert_eq!(
            run(&mut EpochChanges::default(), &epochs),
            reference(&epochs)
        );
    }

    #[test]
    fn marks_are_cleared_when_the_generations_start_again() {
        let epochs = epochs();
        let mut state: KeyedState<u32, Marked<u64>> = KeyedState::new();
        let mut changes = EpochChanges::default();
        // Marks from generations 1 and 2 stay in the state when they start again.
        let first = run_on(&mut changes, &mut state, &epochs[..2]);
        changes.generation = u32::MAX - 1;
        let rest = run_on(&mut changes, &mut state, &epochs[2..]);
        assert_eq!(changes.generation, 2, "wrapped to 1 at the fourth epoch");
        assert_eq!([first, rest].concat(), reference(&epochs));
    }

    #[test]
    fn a_checkpoint_holds_the_accumulator_alone() {
        let marked = Marked {
            acc: 42u64,
            mark: Mark {
                generation: 7,
                index: 3,
            },
        };
        let config = bincode::config::standard();
        let bytes = bincode::serde::encode_to_vec(&marked, config).unwrap();
        assert_eq!(bytes, bincode::serde::encode_to_vec(42u64, config).unwrap());
        let (back, _): (Marked<u64>, usize) =
            bincode::serde::decode_from_slice(&bytes, config.with_limit::<64>()).unwrap();
        assert_eq!((back.acc, back.mark), (42, Mark::default()));
    }
}
