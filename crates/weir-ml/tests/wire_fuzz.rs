//! Property tests of the decoders of untrusted bytes in the ML cluster and the model store:
//! cluster frame payloads, frames sent to a real AM over an authenticated connection,
//! checkpoint files and model-store values. Random and mutated inputs must never panic and
//! never allocate beyond the decoder's limit. A counting global allocator records the
//! largest single allocation (the other test of this binary allocates less than the
//! smallest limit checked, so running alongside does not blur it).

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};
use weir_ml::wire::{decode_bounded, encode, CONTROL_FRAME_LIMIT};
use weir_ml::{
    AppMaster, Checkpoint, ClusterConfig, DirStore, JobSecret, LogisticModel, ModelStore,
    ScalerState, SecureChannel, CHECKPOINT_LIMIT,
};

struct Counting;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: delegates every call to the system allocator; only records sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `check` on inputs from `strategy`; the largest allocation in any case stays within
/// `limit`.
fn property<S: Strategy>(
    name: &str,
    cases: u32,
    strategy: S,
    limit: usize,
    check: impl Fn(S::Value),
) where
    S::Value: std::fmt::Debug,
{
    let mut runner = TestRunner::new(RunnerConfig {
        cases,
        failure_persistence: None,
        ..RunnerConfig::default()
    });
    runner
        .run(&strategy, |input| {
            LARGEST.store(0, Ordering::Relaxed);
            check(input);
            let largest = LARGEST.load(Ordering::Relaxed);
            prop_assert!(largest <= limit, "{name}: an allocation of {largest} bytes");
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{name}: {e}"));
}

/// Bytes derived from a valid encoding: some flipped, cut or spliced with random bytes,
/// with the varint length markers of bincode (251..=253) planted at random places.
fn mutated(valid: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = valid.len().max(1);
    (
        vec((0..len, any::<u8>()), 0..8),
        0..=len,
        vec(any::<u8>(), 0..32),
        vec((0..len, 251u8..=253), 0..3),
    )
        .prop_map(move |(flips, cut, tail, markers)| {
            let mut bytes = valid.clone();
            for (at, b) in flips.into_iter().chain(markers) {
                if at < bytes.len() {
                    bytes[at] = b;
                }
            }
            bytes.truncate(cut);
            bytes.extend(tail);
            bytes
        })
}

fn a_checkpoint() -> Checkpoint {
    let mut model = LogisticModel::zeros(3, 4);
    model.weights[5] = 0.5;
    Checkpoint {
        version: 7,
        records: 1000,
        metrics: BTreeMap::from([("accuracy".to_string(), 0.9)]),
        learner: "sgd".into(),
        model,
        scaler: Some(ScalerState {
            mean: vec![0.1; 4],
            m2: vec![2.0; 4],
            count: 9,
        }),
    }
}

/// A checkpoint file around `payload`, with a right header and checksum: only the payload
/// is hostile.
fn framed(payload: &[u8]) -> Vec<u8> {
    let mut bytes = b"WEIRCKP2".to_vec();
    bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

type Message = (
    String,
    u32,
    Vec<f32>,
    BTreeMap<String, f64>,
    Option<(usize, Vec<u8>)>,
);

#[test]
fn decoders_of_untrusted_bytes_never_panic_or_allocate_beyond_their_limit() {
    // Frame payloads: random, and mutations of a valid message.
    let message: Message = (
        "worker".into(),
        3,
        vec![1.0; 16],
        BTreeMap::from([("a".into(), 1.0)]),
        Some((5, vec![9; 20])),
    );
    let valid = encode(&message).unwrap();
    let frames = prop_oneof![vec(any::<u8>(), 0..512), mutated(valid)];
    property(
        "frame payloads",
        2000,
        frames,
        CONTROL_FRAME_LIMIT,
        |bytes| {
            let _ = decode_bounded::<Message>(&bytes, CONTROL_FRAME_LIMIT);
        },
    );

    // Checkpoint files: random bytes, mutated whole files, mutated payloads in a right frame.
    let file = a_checkpoint().encode().unwrap();
    let payload = file[20..].to_vec();
    let files = prop_oneof![
        vec(any::<u8>(), 0..512),
        mutated(file),
        mutated(payload).prop_map(|p| framed(&p)),
    ];
    property("checkpoint files", 2000, files, CHECKPOINT_LIMIT, |bytes| {
        if let Ok(c) = Checkpoint::decode(&bytes) {
            // Whatever decodes is usable: a consistent, finite model.
            c.validate().unwrap();
            let p = c.probabilities(&[0.5; 4]);
            assert!(p.iter().all(|v| v.is_finite()));
        }
    });

    // Store values: files of a directory store, read back through `latest`.
    let dir = tempfile::tempdir().unwrap();
    let store = DirStore::open(dir.path()).unwrap();
    store.save(&a_checkpoint()).unwrap();
    let values = mutated(a_checkpoint().encode().unwrap());
    property("store values", 300, values, CHECKPOINT_LIMIT, |bytes| {
        std::fs::write(store.path(8), &bytes).unwrap();
        // The valid v7 is always there to fall back to.
        assert!(store.latest().unwrap().is_some());
    });
}

#[test]
fn an_am_survives_hostile_frames_from_an_authenticated_peer() {
    let secret = JobSecret::generate().unwrap();
    let config = ClusterConfig::new()
        .role("worker", 1)
        .secret(secret.clone());
    let mut am = AppMaster::start(config).unwrap();
    let address = am.address().to_string();
    let mut runner = TestRunner::new(RunnerConfig {
        cases: 64,
        failure_persistence: None,
        ..RunnerConfig::default()
    });
    runner
        .run(&vec(any::<u8>(), 0..256), |payload| {
            let channel = SecureChannel::connect(&address, &secret, CONTROL_FRAME_LIMIT).unwrap();
            let (_reader, mut writer) = channel.split();
            // The AM may close the connection after the first bad frame.
            let _ = writer.send_bytes(&payload);
            let _ = writer.send_bytes(&payload);
            Ok(())
        })
        .unwrap();
    assert_eq!(am.outcome(), None, "the AM is still running");
}
