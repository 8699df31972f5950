//! The pact of keyed operators: records go to the instance that owns their key; on a single
//! worker whole batches pass through without being rehashed and copied.

use std::hash::Hash;
use std::rc::Rc;

use timely::communication::Push;
use timely::dataflow::channels::pact::DistributorPact;
use timely::dataflow::channels::pushers::exchange::{Distributor, DrainContainerDistributor};
use timely::dataflow::channels::Message;
use timely::progress::Stamp;

use crate::operators::keyed::key_hash;
use crate::stream::VecBuilder;

/// Routes batches of records by a function of each record (the owning worker's index).
pub(crate) enum KeyDistributor<T, H> {
    /// One worker: every record stays, so the batch is forwarded as it is.
    Single,
    /// Several workers: each record goes to the worker `route` names.
    Routed(DrainContainerDistributor<VecBuilder<T>, H>),
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
                }
            }
            KeyDistributor::Routed(d) => d.partition(container, stamp, pushers),
        }
    }

    fn flush<S: Clone, P: Push<Message<S, Vec<T>>>>(
        &mut self,
        stamp: &Stamp<S>,
        pushers: &mut [P],
    ) {
        if let KeyDistributor::Routed(d) = self {
            d.flush(stamp, pushers);
        }
    }

    fn relax(&mut self) {
        if let KeyDistributor::Routed(d) = self {
            d.relax();
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
            KeyDistributor::Routed(DrainContainerDistributor::new(route, peers))
        }
    }))
}

/// Records go to the instance of `placement` that owns `key(record)` (by [`key_hash`]).
pub(crate) fn owner_pact<T: Clone + 'static, K: Hash>(
    placement: &Rc<[usize]>,
    key: impl Fn(&T) -> K + 'static,
) -> KeyPact<T, impl FnMut(&T) -> u64 + 'static> {
    let targets = Rc::clone(placement);
    key_pact(move |x: &T| targets[(key_hash(&key(x)) % targets.len() as u64) as usize] as u64)
}
