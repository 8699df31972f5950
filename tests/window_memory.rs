//! Memory of keyed tumbling event-time windows stays flat: a counting global allocator
//! records the peak of live heap bytes while the job runs, and the peak at 10x the events
//! must stay below twice the peak at 1x (the state of fired windows is freed, and nothing
//! else grows with the input). This binary has one test, so nothing else allocates
//! alongside.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use weir::prelude::*;
use weir::time::{WatermarkStrategy, Windows};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let live = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

// SAFETY: delegates every call to the system allocator; only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const KEYS: u64 = 1_000;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Event {
    key: u64,
    ts: i64,
    value: u64,
}

/// Milliseconds between events: 5 ms makes 1M events span 500 windows per key (500k
/// windows in all, about 2 events each), so state that is not freed would show as tens of
/// MB against a steady state of about 5 MB.
const SPACING: i64 = 5;

/// Event `i`: `SPACING` ms after event `i - 1`, one in five up to 5 s late, keys spread by
/// a multiplicative hash.
fn event(i: u64) -> Event {
    let r = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let r = r ^ (r >> 29);
    let jitter = if r % 5 == 0 {
        (r >> 8) % 5_001
    } else {
        (r >> 8) % 51
    };
    Event {
        key: (r >> 24) % KEYS,
        ts: 5_000 + SPACING * i as i64 - jitter as i64,
        value: (r >> 40) % 100,
    }
}

/// Runs the windowed count + sum over `events` events on 2 workers; returns the peak live
/// heap bytes above what was live before the job, and the events the results counted.
fn peak_of(events: u64) -> (usize, u64) {
    let counted = Arc::new(AtomicU64::new(0));
    let sink = Arc::clone(&counted);
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    execute(Config::threads(2).with_verbose(false), move |job| {
        let sink = Arc::clone(&sink);
        job.generate("events", Some(events), event)
            .assign_timestamps(
                "event-time",
                WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_secs(5))
                    .with_timestamp_assigner(|e: &Event| e.ts),
            )
            .key_by(|e: &Event| e.key)
            .window(Windows::tumbling(Duration::from_secs(10)))
            .aggregate(
                "window",
                || (0u64, 0u64),
                |a: &mut (u64, u64), e: &Event| {
                    a.0 += 1;
                    a.1 += e.value;
                },
                |a, b| {
                    a.0 += b.0;
                    a.1 += b.1;
                },
            )
            .results()
            .for_each("discard", move |r| {
                sink.fetch_add(r.value.0, Ordering::Relaxed);
            });
        Ok(())
    })
    .unwrap();
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(before);
    (peak, counted.load(Ordering::Relaxed))
}

#[test]
fn window_state_stays_flat_as_the_input_grows() {
    // Below ~50k events the job has not reached its steady state yet (the source keeps up
    // to 8 epochs of 4,096 records per instance in flight), so 1x is 100k events. Debug
    // builds (`cargo test`) run 100k and 1M events in about two seconds.
    let small = 100_000;
    let large = 10 * small;
    // Warm up once: lazily initialised statics (thread locals, logging) are not state.
    peak_of(2_000);
    let (peak_small, counted_small) = peak_of(small);
    let (peak_large, counted_large) = peak_of(large);
    // Every event is counted in exactly one window (none late: the jitter stays within
    // the 5 s bound).
    assert_eq!(counted_small, small);
    assert_eq!(counted_large, large);
    eprintln!(
        "peak live heap: {peak_small} bytes at {small} events, {peak_large} bytes at {large} \
         events ({:.2}x)",
        peak_large as f64 / peak_small as f64
    );
    assert!(
        peak_large < 2 * peak_small,
        "peak live heap grew with the input: {peak_small} bytes at {small} events, \
         {peak_large} bytes at {large}"
    );
}
