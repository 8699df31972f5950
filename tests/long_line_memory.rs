//! Memory bound of the line-length cap: a 64 MiB line in a JSON Lines and in a CSV file,
//! with a 1 MiB cap, must never be held in memory. A counting global allocator records the
//! largest single allocation of the whole test process (this binary has one test, so
//! nothing else runs alongside).

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};
use weir::prelude::*;

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

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Row {
    id: u64,
    text: String,
}

const LONG: usize = 64 << 20;
const CAP: usize = 1 << 20;

#[test]
fn a_64_mib_line_is_skipped_without_being_buffered() {
    let dir = tempfile::tempdir().unwrap();
    for csv in [false, true] {
        let path = dir.path().join(if csv { "in.csv" } else { "in.jsonl" });
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let line = |id: u64| {
            if csv {
                format!("{id},x\n")
            } else {
                format!("{{\"id\":{id},\"text\":\"x\"}}\n")
            }
        };
        if csv {
            f.write_all(b"id,text\n").unwrap();
        }
        f.write_all(line(0).as_bytes()).unwrap();
        // A 64 MiB record, written in 64 KiB pieces.
        f.write_all(if csv { b"1," } else { b"{\"id\":1,\"text\":\"" })
            .unwrap();
        let chunk = vec![b'y'; 64 << 10];
        for _ in 0..LONG / chunk.len() {
            f.write_all(&chunk).unwrap();
        }
        f.write_all(if csv { b"\n" } else { b"\"}\n" }).unwrap();
        f.write_all(line(2).as_bytes()).unwrap();
        f.flush().unwrap();
        drop(f);

        LARGEST.store(0, Ordering::Relaxed);
        let (good, bad) = (Collector::new(), Collector::new());
        let (g, b) = (good.clone(), bad.clone());
        let config = Config::threads(2)
            .with_verbose(false)
            .with_max_line_bytes(CAP);
        execute(config, move |job| {
            let rows: DataStream<Row> = if csv {
                job.read_csv(op("read").parallelism(2), &path)
            } else {
                job.read_jsonl(op("read").parallelism(2), &path)
            };
            rows.map("id", |r| r.id).collect("ids", &g);
            job.dead_letters("dead").collect("bad", &b);
            Ok(())
        })
        .unwrap();
        let largest = LARGEST.load(Ordering::Relaxed);
        // The cap (1 MiB) plus the reader's buffers; far below the 64 MiB line.
        assert!(
            largest <= 2 * CAP,
            "csv {csv}: largest allocation {largest} bytes"
        );
        assert_eq!(good.sorted(), vec![0, 2], "csv {csv}");
        let bad = bad.take();
        assert_eq!(bad.len(), 1);
        assert!(
            bad[0].reason.contains("exceeds the limit"),
            "{}",
            bad[0].reason
        );
    }
}
