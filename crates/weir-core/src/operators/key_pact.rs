//! The pact of keyed operators: records go to the instance that owns their key; on a single
//! worker whole batches pass through without being rehashed and copied.

use std::hash::Hash;
use std::rc::Rc;

use timely::communication::Push;
use timely::dataflow::channels::pact::DistributorPact;
use timely::dataflow::channels::pushers::exchange::Distributor;
use timely::dataflow::channels::Message;
use timely::progress::Stamp;

use crate::operators::keyed::{key_hash, owner_index};

/// Records per batch sent to another worker: larger than timely's default (8 KiB of records),
/// so that fewer, fuller batches cross between workers.
const ROUTED_BATCH: usize = 1024;

/// Routes batches of records by a function of each record (the owning worker's index).
pub(crate) enum KeyDistributor<T, H> {
    /// One worker: every record stays, so the batch is forwarded as it is.
    Single,
    /// Several workers: each record goes to the worker `route` names, in batches per worker.
    Routed { route: H, batches: Vec<Vec<T>> },
}

impl<T: Clone + 'static, H: FnMut(&T) -> u64> Distributor<Vec<T>> for KeyDistributor<T, H> {
    fn partition<S: Clone, P: Push<Message<S, Vec<T>>>>(
        &mut self,
        container: &mut Vec<T>,
        stamp: &Stamp<S>,
        pushers: &mut [P],
    ) {
        match self {
            KeyDistributor::Single => {
                if !container.is_empty() {
                    Message::push_at(container, stamp.clone(), &mut pushers[0]);
                    // The pusher may hand back a used container.
                    container.clear();
                }
            }
            KeyDistributor::Routed { route, batches } => {
                for x in container.drain(..) {
                    let to = route(&x) as usize;
                    let batch = &mut batches[to];
                    if batch.capacity() == 0 {
                        batch.reserve(ROUTED_BATCH);
                    }
                    batch.push(x);
                    if batch.len() == ROUTED_BATCH {
                        Message::push_at(batch, stamp.clone(), &mut pushers[to]);
                        // The pusher may hand back a used container.
                        batch.clear();
                    }
                }
            }
        }
    }

    fn flush<S: Clone, P: Push<Message<S, Vec<T>>>>(
        &mut self,
        stamp: &Stamp<S>,
        pushers: &mut [P],
    ) {
        if let KeyDistributor::Routed { batches, .. } = self {
            for (batch, pusher) in batches.iter_mut().zip(pushers.iter_mut()) {
                if !batch.is_empty() {
                    Message::push_at(batch, stamp.clone(), pusher);
                    batch.clear();
                }
            }
        }
    }

    fn relax(&mut self) {
        if let KeyDistributor::Routed { batches, .. } = self {
            for batch in batches.iter_mut().filter(|b| b.is_empty()) {
                *batch = Vec::new();
            }
        }
    }
}

/// The pact of a keyed operator.
pub(crate) type KeyPact<T, H> = DistributorPact<Box<dyn FnOnce(usize) -> KeyDistributor<T, H>>>;

/// Records go to worker `route(record)`; with one worker, batches pass through whole.
pub(crate) fn key_pact<T: Clone + 'static, H: FnMut(&T) -> u64 + 'static>(
    route: H,
) -> KeyPact<T, H> {
    DistributorPact(Box::new(move |peers| {
        if peers == 1 {
            KeyDistributor::Single
        } else {
            KeyDistributor::Routed {
                route,
                batches: (0..peers).map(|_| Vec::new()).collect(),
            }
        }
    }))
}

/// Records go to the instance of `placement` that owns `key(record)` (by [`key_hash`]).
pub(crate) fn owner_pact<T: Clone + 'static, K: Hash>(
    placement: &Rc<[usize]>,
    key: impl Fn(&T) -> K + 'static,
) -> KeyPact<T, impl FnMut(&T) -> u64 + 'static> {
    let targets = Rc::clone(placement);
    key_pact(move |x: &T| targets[owner_index(key_hash(&key(x)), targets.len())] as u64)
}

/// `(key, value)` pairs go to the instance of `placement` that owns the key (by [`key_hash`]),
/// hashed in place.
pub(crate) fn pair_owner_pact<K: Hash + Clone + 'static, A: Clone + 'static>(
    placement: &Rc<[usize]>,
) -> KeyPact<(K, A), impl FnMut(&(K, A)) -> u64 + 'static> {
    let targets = Rc::clone(placement);
    key_pact(move |x: &(K, A)| targets[owner_index(key_hash(&x.0), targets.len())] as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Owners are picked as `hash % owners` (as timely's `Exchange` does, and as checkpoints
    /// of keyed state were written), also where no division is done.
    #[test]
    fn owner_index_is_the_hash_modulo_the_owners() {
        let hashes = [
            0u64,
            1,
            2,
            3,
            7,
            1 << 33,
            u64::MAX - 1,
            u64::MAX,
            0x9e37_79b9_7f4a_7c15,
        ];
        for owners in 1..=9usize {
            for hash in hashes {
                assert_eq!(owner_index(hash, owners), (hash % owners as u64) as usize);
            }
        }
    }

    /// A pusher that keeps what it gets and hands back a used container, as timely's
    /// channels may.
    #[derive(Default)]
    struct Recycling {
        got: Vec<u64>,
    }

    impl Push<Message<u64, Vec<u64>>> for Recycling {
        fn push(&mut self, message: &mut Option<Message<u64, Vec<u64>>>) {
            if let Some(m) = message {
                self.got.append(&mut m.data);
                m.data = vec![7, 7, 7];
            }
        }
    }

    #[test]
    fn every_record_reaches_its_worker_once_even_with_recycled_containers() {
        let mut d: KeyDistributor<u64, _> = KeyDistributor::Routed {
            route: |x: &u64| x % 2,
            batches: vec![Vec::new(), Vec::new()],
        };
        let mut pushers = [Recycling::default(), Recycling::default()];
        let stamp = Stamp::from_elem(0u64);
        for chunk in (0..5_000u64).collect::<Vec<_>>().chunks(700) {
            d.partition(&mut chunk.to_vec(), &stamp, &mut pushers);
        }
        d.flush(&stamp, &mut pushers);
        let evens: Vec<u64> = (0..5_000).filter(|x| x % 2 == 0).collect();
        let odds: Vec<u64> = (0..5_000).filter(|x| x % 2 == 1).collect();
        assert_eq!(pushers[0].got, evens);
        assert_eq!(pushers[1].got, odds);
    }
}
