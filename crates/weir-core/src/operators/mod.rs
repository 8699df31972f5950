//! Operator families beyond map/filter: keyed state and aggregates, joins, side inputs, bridges, feedback edges.

pub(crate) mod bounded;
pub(crate) mod bridge;
pub(crate) mod broadcast_state;
pub(crate) mod combiner;
pub(crate) mod data_cache;
pub(crate) mod epoch_changes;
pub(crate) mod epoch_stash;
pub(crate) mod feedback;
pub(crate) mod global_aggregate;
pub(crate) mod iteration;
pub(crate) mod join;
pub(crate) mod join_state;
pub(crate) mod key_pact;
pub(crate) mod keyed;
pub(crate) mod online_iteration;
pub(crate) mod online_round;
pub(crate) mod parcel;
pub(crate) mod split_results;
