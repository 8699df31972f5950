//! Parcels: a keyed exchange's `(key, value)` records bound for one worker, with `String`
//! keys carried as bytes when they cross to another worker.
//!
//! A `String` key moved to another worker thread is freed there, by a thread that did not
//! allocate it. With mimalloc (the `weir` binary's allocator) such a free writes the block's
//! link into the block, a cache line the allocating core holds, and queues the block for the
//! allocating thread to take back: a few cache-line transfers per record. A hand-written
//! two-thread word count that moves its `String`s this way ran slower than one thread (630
//! against 433 ms for 10M words); copying the words' bytes into one buffer per batch and
//! allocating them again on the receiving side took 300 ms. Parcels do that for `String`
//! keys with values that own no heap memory (word counts, sums, stamped totals): each key's
//! memory is then allocated and freed by one thread. Records for the worker itself are moved
//! as they are. (Encoding any record that owns heap memory with bincode was tried: its
//! per-record encoding and decoding cost more than the frees it saved.)

use std::any::Any;
use std::hash::Hash;
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use timely::communication::Push;
use timely::dataflow::channels::pact::DistributorPact;
use timely::dataflow::channels::pushers::exchange::Distributor;
use timely::dataflow::channels::Message;
use timely::progress::Stamp;

use crate::operators::keyed::{key_hash, owner_index};

/// Records per parcel: a parcel is sealed when it holds this many, or when the records given
/// to the router at once are all routed.
pub(crate) const PARCEL_RECORDS: usize = 1024;

/// `(key, value)` records for one worker.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Parcel<K, A> {
    /// The worker it goes to.
    to: usize,
    body: Body<K, A>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
enum Body<K, A> {
    /// The records themselves.
    Records(Vec<(K, A)>),
    /// `String` keys as their bytes one after the other (key `i` ends at `ends[i]`), and
    /// the values as they are.
    StringKeys {
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
        ends: Vec<u64>,
        values: Vec<A>,
    },
}

/// A parcel's keys were not what its ends and values say.
#[derive(Debug, thiserror::Error)]
#[error("a parcel of {count} records from another worker is damaged (record {record}): {reason}")]
pub(crate) struct ParcelError {
    count: usize,
    record: usize,
    reason: String,
}

impl<K: 'static, A> Parcel<K, A> {
    /// Appends the parcel's records to `out`. A damaged parcel adds the records before the
    /// first damaged one.
    pub(crate) fn unpack_into(self, out: &mut Vec<(K, A)>) -> Result<(), ParcelError> {
        match self.body {
            Body::Records(mut records) => {
                out.append(&mut records);
                Ok(())
            }
            Body::StringKeys {
                bytes,
                ends,
                values,
            } => unpack_string_keys(&bytes, &ends, values, out),
        }
    }
}

/// Rebuilds `String` keys from their bytes, paired with their values.
fn unpack_string_keys<K: 'static, A>(
    bytes: &[u8],
    ends: &[u64],
    values: Vec<A>,
    out: &mut Vec<(K, A)>,
) -> Result<(), ParcelError> {
    let count = values.len();
    let damaged = |record: usize, reason: String| ParcelError {
        count,
        record,
        reason,
    };
    if ends.len() != count {
        return Err(damaged(
            0,
            format!("{} key ends for {count} values", ends.len()),
        ));
    }
    out.reserve(count);
    let mut start = 0;
    for (record, (end, value)) in ends.iter().zip(values).enumerate() {
        let end = usize::try_from(*end).unwrap_or(usize::MAX);
        let Some(key) = bytes.get(start..end) else {
            let reason = format!("key bytes {start}..{end} of {}", bytes.len());
            return Err(damaged(record, reason));
        };
        let key = std::str::from_utf8(key).map_err(|e| damaged(record, e.to_string()))?;
        let key = string_as_key::<K>(key.to_owned())
            .ok_or_else(|| damaged(record, "the keys are not strings".into()))?;
        out.push((key, value));
        start = end;
    }
    if start != bytes.len() {
        let reason = format!("{} bytes after the last key", bytes.len() - start);
        return Err(damaged(count, reason));
    }
    Ok(())
}

/// `key` as a `String`, when `K` is `String`.
fn key_as_string<K: 'static>(key: &K) -> Option<&String> {
    (key as &dyn Any).downcast_ref::<String>()
}

/// `s` as a `K`, when `K` is `String`.
fn string_as_key<K: 'static>(s: String) -> Option<K> {
    let mut s = Some(s);
    (&mut s as &mut dyn Any)
        .downcast_mut::<Option<K>>()
        .and_then(Option::take)
}

/// Whether records of type `(K, A)` travel to other workers in parcels of bytes: `String`
/// keys with values that own no heap memory (counts, sums, stamped totals).
pub(crate) fn ships_string_keys<K: 'static, A>() -> bool {
    std::any::TypeId::of::<K>() == std::any::TypeId::of::<String>() && !std::mem::needs_drop::<A>()
}

/// Routes `(key, value)` pairs to the workers that own their keys (instance `i` of the
/// owning operator runs on worker `owners[i]`, chosen by [`key_hash`] as
/// [`crate::operators::key_pact::pair_owner_pact`] does), in parcels: the records for this
/// worker as they are, those for others with their `String` keys as bytes.
pub(crate) struct ParcelRouter<K, A> {
    /// This worker's index.
    me: usize,
    owners: Rc<[usize]>,
    /// Records on their way to each worker.
    batches: Vec<Vec<(K, A)>>,
    /// Key bytes per record in the last parcel, to size the next one's buffer.
    bytes_per_key: usize,
}

impl<K: Hash + 'static, A> ParcelRouter<K, A> {
    /// A router on worker `me` of `workers`, to the owners placed on `owners`.
    pub(crate) fn new(me: usize, workers: usize, owners: &Rc<[usize]>) -> Self {
        ParcelRouter {
            me,
            owners: Rc::clone(owners),
            batches: (0..workers).map(|_| Vec::new()).collect(),
            bytes_per_key: 8,
        }
    }

    /// Routes `records` into parcels, which it adds to `out`: full ones as they fill, then
    /// the rest (nothing waits in the router between calls).
    pub(crate) fn route(
        &mut self,
        records: impl IntoIterator<Item = (K, A)>,
        out: &mut Vec<Parcel<K, A>>,
    ) {
        let owners = Rc::clone(&self.owners);
        if let [only] = *owners {
            if only == self.me {
                let records: Vec<(K, A)> = records.into_iter().collect();
                if !records.is_empty() {
                    out.push(Parcel {
                        to: only,
                        body: Body::Records(records),
                    });
                }
                return;
            }
        }
        for x in records {
            let to = match *owners {
                [only] => only,
                ref several => several[owner_index(key_hash(&x.0), several.len())],
            };
            let batch = &mut self.batches[to];
            if batch.capacity() == 0 {
                batch.reserve(PARCEL_RECORDS);
            }
            batch.push(x);
            if batch.len() == PARCEL_RECORDS {
                self.seal(to, out);
            }
        }
        for to in 0..self.batches.len() {
            if !self.batches[to].is_empty() {
                self.seal(to, out);
            }
        }
    }

    /// Turns the records bound for `to` into a parcel.
    fn seal(&mut self, to: usize, out: &mut Vec<Parcel<K, A>>) {
        if to == self.me || !ships_string_keys::<K, A>() {
            let records = std::mem::take(&mut self.batches[to]);
            out.push(Parcel {
                to,
                body: Body::Records(records),
            });
            return;
        }
        let records = &mut self.batches[to];
        let mut bytes = Vec::with_capacity(records.len() * self.bytes_per_key + 64);
        let mut ends = Vec::with_capacity(records.len());
        let mut values = Vec::with_capacity(records.len());
        // Each key is dropped here, by the thread that allocated it.
        for (key, value) in records.drain(..) {
            bytes.extend_from_slice(key_as_string(&key).map_or(&[][..], |k| k.as_bytes()));
            ends.push(bytes.len() as u64);
            values.push(value);
        }
        self.bytes_per_key = bytes.len() / ends.len().max(1) + 1;
        out.push(Parcel {
            to,
            body: Body::StringKeys {
                bytes,
                ends,
                values,
            },
        });
    }
}

/// Sends each parcel as a message of its own to the worker it names; with one worker,
/// messages pass through whole.
pub(crate) struct ParcelDistributor;

impl<K: 'static, A: 'static> Distributor<Vec<Parcel<K, A>>> for ParcelDistributor {
    fn partition<S: Clone, P: Push<Message<S, Vec<Parcel<K, A>>>>>(
        &mut self,
        container: &mut Vec<Parcel<K, A>>,
        stamp: &Stamp<S>,
        pushers: &mut [P],
    ) {
        if pushers.len() == 1 {
            if !container.is_empty() {
                Message::push_at(container, stamp.clone(), &mut pushers[0]);
                container.clear();
            }
            return;
        }
        for parcel in container.drain(..) {
            // A parcel names a worker of the job (its router was built for as many).
            let to = parcel.to.min(pushers.len() - 1);
            let mut message = vec![parcel];
            Message::push_at(&mut message, stamp.clone(), &mut pushers[to]);
        }
    }

    fn flush<S: Clone, P: Push<Message<S, Vec<Parcel<K, A>>>>>(
        &mut self,
        _stamp: &Stamp<S>,
        _pushers: &mut [P],
    ) {
    }
}

/// The pact of an exchange of parcels.
pub(crate) type ParcelPact = DistributorPact<Box<dyn FnOnce(usize) -> ParcelDistributor>>;

/// Parcels go to the worker they name.
pub(crate) fn parcel_pact() -> ParcelPact {
    DistributorPact(Box::new(|_peers| ParcelDistributor))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owners(workers: &[usize]) -> Rc<[usize]> {
        workers.to_vec().into()
    }

    fn unpack<K: 'static, A>(parcels: Vec<Parcel<K, A>>) -> Vec<(usize, Vec<(K, A)>)> {
        parcels
            .into_iter()
            .map(|p| {
                let to = p.to;
                let mut out = Vec::new();
                p.unpack_into(&mut out).expect("unpacks");
                (to, out)
            })
            .collect()
    }

    /// Every record reaches the worker that owns its key, once; `String` keys for other
    /// workers travel as bytes, other records as they are.
    #[test]
    fn records_reach_their_owners_as_bytes_only_across_workers() {
        let words: Vec<(String, u64)> = (0..5000)
            .map(|i| (format!("w{}", i % 777).repeat(i as usize % 3), i))
            .collect();
        let mut router = ParcelRouter::new(1, 3, &owners(&[0, 2, 1]));
        let mut parcels = Vec::new();
        router.route(words.clone(), &mut parcels);
        for p in &parcels {
            let count = match &p.body {
                Body::Records(r) => {
                    assert_eq!(p.to, 1, "records as they are only to this worker");
                    r.len()
                }
                Body::StringKeys { values, .. } => {
                    assert_ne!(p.to, 1);
                    values.len()
                }
            };
            assert!((1..=PARCEL_RECORDS).contains(&count));
        }
        let mut arrived: Vec<(String, u64)> = Vec::new();
        for (to, records) in unpack(parcels) {
            for (k, v) in records {
                assert_eq!(to, [0, 2, 1][owner_index(key_hash(&k), 3)], "{k}");
                arrived.push((k, v));
            }
        }
        arrived.sort_by_key(|r| r.1);
        assert_eq!(arrived, words);

        let mut numbers = ParcelRouter::<u64, String>::new(0, 2, &owners(&[0, 1]));
        let mut parcels = Vec::new();
        numbers.route((0..100).map(|k| (k, k.to_string())), &mut parcels);
        assert!(parcels.iter().all(|p| matches!(p.body, Body::Records(_))));
        assert_eq!(
            unpack(parcels).iter().map(|(_, r)| r.len()).sum::<usize>(),
            100
        );
    }

    /// A parcel whose ends do not fit its bytes, or whose keys are not UTF-8, is an error
    /// naming the record, not a panic.
    #[test]
    fn a_damaged_parcel_is_an_error() {
        let cases: Vec<(Vec<u8>, Vec<u64>, usize)> = vec![
            (b"abcde".to_vec(), vec![3, 5], 1),
            (b"abcde".to_vec(), vec![3, 9], 2),
            (b"abcde".to_vec(), vec![3, 2], 2),
            (b"abcde".to_vec(), vec![3, 4], 2),
            (b"abcde".to_vec(), vec![3, u64::MAX], 2),
            (vec![b'a', 0xff], vec![1, 2], 2),
        ];
        for (bytes, ends, values) in cases {
            let parcel = Parcel::<String, u64> {
                to: 1,
                body: Body::StringKeys {
                    bytes,
                    ends,
                    values: vec![7; values],
                },
            };
            let error = parcel.unpack_into(&mut Vec::new()).expect_err("damaged");
            assert!(error.to_string().contains("is damaged (record"), "{error}");
        }
    }
}
