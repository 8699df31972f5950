//! Joins in a job that checkpoints. A join's state is its inputs: the arrangements hold
//! every record of both sides. Rather than snapshot differential's arrangements, each input
//! passes, on the key's owner, a *collection keeper* that holds the side's consolidated
//! collection (per key: record → multiplicity) in checkpointed keyed state. On a restore the
//! kept collections are replayed at the restored epoch, so the arrangements are rebuilt as
//! they were; what the join derives at that epoch was already emitted before the failure
//! and is dropped ([`ReplayedThrough`]).

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::rc::Rc;

use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Concat;
use timely::dataflow::Stream;

use crate::job::{Epoch, JobContext, OpHandle};
use crate::operators::join::Change;
use crate::operators::keyed::{key_hash, owner_index, Key, KeyedStateSlot};
use crate::state::KeyedMapState;
use crate::stream::{Data, VecBuilder};

/// The epoch through which a restored job's join outputs were emitted before the failure:
/// outputs at or before it are the replay's, not new.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ReplayedThrough(Option<Epoch>);

impl ReplayedThrough {
    pub(crate) fn of(ctx: &JobContext<'_>) -> Self {
        ReplayedThrough(ctx.state.restored.as_ref().map(|r| r.epoch()))
    }

    /// The restored checkpoint's epoch, if the job was restored.
    pub(crate) fn epoch(&self) -> Option<Epoch> {
        self.0
    }

    /// Whether output at `epoch` repeats what the job emitted before its restore.
    pub(crate) fn covers(&self, epoch: Epoch) -> bool {
        self.0.is_some_and(|through| epoch <= through)
    }
}

/// One side of a join, as a changelog on the key's owner, with the side's collection kept
/// in checkpointed state (as `"{join}/{side}"`) and replayed after a restore. Without
/// checkpoints the stream is returned as it is.
pub(crate) fn kept_changelog<'s, K, V>(
    ctx: &JobContext<'s>,
    handle: &OpHandle,
    side: &str,
    stream: Stream<'s, Epoch, Vec<Change<(K, V)>>>,
) -> Stream<'s, Epoch, Vec<Change<(K, V)>>>
where
    K: Key + Ord + Debug,
    V: Data + Ord + Debug,
{
    if !ctx.state.enabled {
        return stream;
    }
    let slot: KeyedStateSlot<K, BTreeMap<V, i64>> =
        KeyedStateSlot::named(ctx, handle, &format!("{}/{side}", handle.name), None);
    let restored: Vec<Change<(K, V)>> = slot
        .state
        .borrow()
        .iter()
        .flat_map(|(k, values)| {
            values.iter().map(|(v, diff)| Change {
                data: (k.clone(), v.clone()),
                diff: *diff,
            })
        })
        .collect();
    let kept = keep_collection(stream, handle, slot);
    match ReplayedThrough::of(ctx).epoch() {
        Some(epoch) => kept.concat(replay_at(ctx, epoch, restored)),
        None => kept,
    }
}

/// Passes changes on to the key's owner and applies them to the kept collection there.
fn keep_collection<'s, K, V>(
    stream: Stream<'s, Epoch, Vec<Change<(K, V)>>>,
    handle: &OpHandle,
    slot: KeyedStateSlot<K, BTreeMap<V, i64>>,
) -> Stream<'s, Epoch, Vec<Change<(K, V)>>>
where
    K: Key + Ord + Debug,
    V: Data + Ord + Debug,
{
    let owners = Rc::clone(&handle.placement);
    let pact = Exchange::new(move |c: &Change<(K, V)>| {
        owners[owner_index(key_hash(&c.data.0), owners.len())] as u64
    });
    stream.unary_frontier::<VecBuilder<Change<(K, V)>>, _, _, _>(
        pact,
        "KeepCollection",
        move |_cap, _info| {
            move |(input, frontier), output| {
                let mut state = slot.state.borrow_mut();
                input.for_each(|cap, data| {
                    for change in data.iter() {
                        apply(&mut state, change);
                    }
                    output.session(&cap).give_container(data);
                });
                drop(state);
                slot.applied(frontier);
            }
        },
    )
}

/// Adds a change to the kept collection; records and keys whose multiplicity drops to zero
/// leave it.
fn apply<K: Key, V: Data + Ord>(state: &mut KeyedMapState<K, V, i64>, change: &Change<(K, V)>) {
    let (k, v) = &change.data;
    let count = state.get_in(k, v).copied().unwrap_or(0) + change.diff;
    if count != 0 {
        state.insert_in(k.clone(), v.clone(), count);
    } else if state.remove_in(k, v).is_some() && state.get(k).is_some_and(|m| m.is_empty()) {
        state.remove(k);
    }
}

/// A stream holding `records` at `epoch` (the restored checkpoint's), on this worker.
pub(crate) fn replay_at<'s, D: Data>(
    ctx: &JobContext<'s>,
    epoch: Epoch,
    records: Vec<D>,
) -> Stream<'s, Epoch, Vec<D>> {
    source::<_, VecBuilder<D>, _, _>(
        ctx.scope,
        "ReplayRestored",
        move |cap: timely::dataflow::operators::Capability<Epoch>, _info| {
            let mut pending = Some((cap.delayed(&epoch), records));
            move |output| {
                if let Some((cap, mut records)) = pending.take() {
                    if !records.is_empty() {
                        output.session(&cap).give_container(&mut records);
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kept_collection_is_consolidated() {
        let mut state: KeyedMapState<u32, String, i64> = KeyedMapState::new();
        apply(&mut state, &Change::insert((1, "a".to_string())));
        apply(&mut state, &Change::insert((1, "a".to_string())));
        apply(&mut state, &Change::insert((1, "b".to_string())));
        assert_eq!(state.get_in(&1, &"a".to_string()), Some(&2));
        apply(&mut state, &Change::retract((1, "b".to_string())));
        assert_eq!(state.get_in(&1, &"b".to_string()), None);
        apply(&mut state, &Change::retract((1, "a".to_string())));
        apply(&mut state, &Change::retract((1, "a".to_string())));
        assert!(state.get(&1).is_none(), "an empty key leaves the state");
        assert!(state.is_empty());
    }

    #[test]
    fn replayed_through_covers_the_restored_epoch_and_before() {
        let r = ReplayedThrough(Some(7));
        assert!(r.covers(7) && r.covers(0) && !r.covers(8));
        assert!(!ReplayedThrough::default().covers(0));
    }
}
