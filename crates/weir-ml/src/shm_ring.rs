//! A single-producer single-consumer ring of length-prefixed frames in a memory-mapped file,
//! shared between a node host and the process it runs (the Python side is
//! `python/weir_node.py`, embedded below).
//!
//! Layout (little-endian): bytes 0..8 the magic `WEIRRING`, 8..16 the data capacity, 16..24
//! `head` (bytes ever written, owned by the writer), 24..32 `tail` (bytes ever read, owned
//! by the reader), 32..36 `closed` (the writer's end-of-stream flag), 40..48 the writer's
//! signs of life (a counter the process bumps while it works, for runner liveness); the data
//! area starts at byte 64. A frame is a u32 length and the payload, wrapping around the data area. The
//! writer publishes a frame by storing `head` after the bytes, the reader frees it by storing
//! `tail`: with one writer and one reader, and x86-64's ordered stores, no lock is needed.

use std::fs::OpenOptions;
use std::io::{Error, ErrorKind, Result};
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use memmap2::MmapMut;

const MAGIC: &[u8; 8] = b"WEIRRING";
const HEADER: usize = 64;

/// The Python side of the ring and the node context, shipped to every process node.
pub(crate) const PYTHON_HELPER: &str = include_str!("../../../python/weir_node.py");

/// One end of a ring.
pub(crate) struct ShmRing {
    map: MmapMut,
    capacity: u64,
}

impl ShmRing {
    /// Creates the file and its ring with `capacity` data bytes.
    pub(crate) fn create(path: &Path, capacity: usize) -> Result<ShmRing> {
        use std::os::unix::fs::OpenOptionsExt;
        // Readable and writable by this user only: the records are the job's data.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        file.set_len((HEADER + capacity) as u64)?;
        // SAFETY: the file is ours and only the two ring ends map it; concurrent access goes
        // through the atomics below and the one-writer/one-reader protocol.
        let mut map = unsafe { MmapMut::map_mut(&file)? };
        map[..8].copy_from_slice(MAGIC);
        map[8..16].copy_from_slice(&(capacity as u64).to_le_bytes());
        Ok(ShmRing {
            map,
            capacity: capacity as u64,
        })
    }

    fn counter(&self, offset: usize) -> &AtomicU64 {
        // SAFETY: offsets 16 and 24 are 8-byte aligned inside the mapping (page aligned).
        unsafe { &*(self.map.as_ptr().add(offset) as *const AtomicU64) }
    }

    fn closed_flag(&self) -> &AtomicU32 {
        // SAFETY: offset 32 is 4-byte aligned inside the mapping.
        unsafe { &*(self.map.as_ptr().add(32) as *const AtomicU32) }
    }

    fn copy_in(&mut self, at: u64, bytes: &[u8]) {
        let start = (at % self.capacity) as usize;
        let first = bytes.len().min(self.capacity as usize - start);
        self.map[HEADER + start..HEADER + start + first].copy_from_slice(&bytes[..first]);
        self.map[HEADER..HEADER + bytes.len() - first].copy_from_slice(&bytes[first..]);
    }

    fn copy_out(&self, at: u64, into: &mut [u8]) {
        let start = (at % self.capacity) as usize;
        let first = into.len().min(self.capacity as usize - start);
        into[..first].copy_from_slice(&self.map[HEADER + start..HEADER + start + first]);
        let rest = into.len() - first;
        into[first..].copy_from_slice(&self.map[HEADER..HEADER + rest]);
    }

    /// Appends a frame, waiting while the ring is full; gives up with an error when
    /// `abort()` says the reader is gone.
    pub(crate) fn write(&mut self, payload: &[u8], abort: &mut dyn FnMut() -> bool) -> Result<()> {
        let needed = 4 + payload.len() as u64;
        if needed > self.capacity {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "a frame of {} bytes does not fit the ring's {} bytes",
                    payload.len(),
                    self.capacity
                ),
            ));
        }
        let head = self.counter(16).load(Ordering::Relaxed);
        // The map is shared: the other process could have set the counter anywhere.
        let Some(new_head) = head.checked_add(needed) else {
            return Err(Error::new(
                ErrorKind::InvalidData,
                format!("corrupt ring: the writer's position {head} cannot advance"),
            ));
        };
        let mut spins = 0u32;
        loop {
            let tail = self.counter(24).load(Ordering::Acquire);
            if tail > head || head - tail > self.capacity {
                return Err(Error::new(
                    ErrorKind::InvalidData,
                    format!("corrupt ring: the reader is at {tail}, the writer at {head}, in a ring of {} bytes", self.capacity),
                ));
            }
            if self.capacity - (head - tail) >= needed {
                break;
            }
            if abort() {
                return Err(Error::new(
                    ErrorKind::BrokenPipe,
                    "the ring's reader is gone",
                ));
            }
            wait(&mut spins);
        }
        self.copy_in(head, &(payload.len() as u32).to_le_bytes());
        self.copy_in(head + 4, payload);
        self.counter(16).store(new_head, Ordering::Release);
        Ok(())
    }

    /// The writer's sign-of-life counter.
    pub(crate) fn signs_of_life(&self) -> u64 {
        self.counter(40).load(Ordering::Relaxed)
    }

    /// Marks the end of the stream.
    pub(crate) fn close(&self) {
        self.closed_flag().store(1, Ordering::Release);
    }

    /// Takes the frame at `tail`, checking everything the writer (another process) wrote:
    /// no more published than the ring holds, a length that fits the ring and what was
    /// published. A violation is an `InvalidData` error, never a panic or a huge allocation.
    fn take_frame(&self, head: u64, tail: u64) -> Result<Vec<u8>> {
        let corrupt = |what: String| {
            Err(Error::new(
                ErrorKind::InvalidData,
                format!("corrupt ring: {what}"),
            ))
        };
        let published = head - tail;
        if published > self.capacity {
            return corrupt(format!(
                "{published} bytes published in a ring of {} bytes",
                self.capacity
            ));
        }
        if published < 4 {
            return corrupt(format!(
                "{published} bytes published, less than a frame header"
            ));
        }
        let mut len = [0u8; 4];
        self.copy_out(tail, &mut len);
        let len = u32::from_le_bytes(len) as u64;
        if 4 + len > published {
            return corrupt(format!("a frame of {len} bytes but {published} published"));
        }
        let mut payload = vec![0u8; len as usize];
        self.copy_out(tail + 4, &mut payload);
        self.counter(24).store(tail + 4 + len, Ordering::Release);
        Ok(payload)
    }

    /// The next frame; `None` at the end of the stream, or when `abort()` says the writer is
    /// gone while the ring is empty.
    pub(crate) fn read(&self, abort: &mut dyn FnMut() -> bool) -> Result<Option<Vec<u8>>> {
        let tail = self.counter(24).load(Ordering::Relaxed);
        let mut spins = 0u32;
        loop {
            let head = self.counter(16).load(Ordering::Acquire);
            if head > tail {
                return self.take_frame(head, tail).map(Some);
            }
            if head < tail {
                return Err(Error::new(
                    ErrorKind::InvalidData,
                    format!("corrupt ring: the writer is at {head}, behind the reader at {tail}"),
                ));
            }
            if self.closed_flag().load(Ordering::Acquire) == 1 {
                // Frames written just before the flag are visible now.
                if self.counter(16).load(Ordering::Acquire) == tail {
                    return Ok(None);
                }
                continue;
            }
            if abort() {
                return Ok(None);
            }
            wait(&mut spins);
        }
    }
}

/// Spins briefly, then sleeps in growing steps up to 1 ms.
fn wait(spins: &mut u32) {
    *spins += 1;
    if *spins < 64 {
        std::hint::spin_loop();
    } else {
        let micros = (*spins as u64 - 63).min(1000);
        std::thread::sleep(Duration::from_micros(micros));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_wrap_around_a_small_ring_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ring");
        let mut writer = ShmRing::create(&path, 64).unwrap();
        // A second mapping of the same file, as the other process would have.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let reader = ShmRing {
            map: unsafe { MmapMut::map_mut(&file).unwrap() },
            capacity: 64,
        };
        let producer = std::thread::spawn(move || {
            for i in 0..1000u32 {
                let payload = vec![i as u8; (i % 40) as usize];
                writer.write(&payload, &mut || false).unwrap();
            }
            writer.close();
        });
        let mut got = 0u32;
        while let Some(frame) = reader.read(&mut || false).unwrap() {
            assert_eq!(frame, vec![got as u8; (got % 40) as usize]);
            got += 1;
        }
        producer.join().unwrap();
        assert_eq!(got, 1000);
    }

    #[test]
    fn a_frame_larger_than_the_ring_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut ring = ShmRing::create(&dir.path().join("ring"), 16).unwrap();
        let error = ring.write(&[0; 20], &mut || false).unwrap_err();
        assert!(error.to_string().contains("does not fit"), "{error}");
    }

    /// A ring whose header and data another process wrote at will.
    fn ring_with(
        capacity: usize,
        head: u64,
        tail: u64,
        closed: u32,
        data: &[u8],
    ) -> (tempfile::TempDir, ShmRing) {
        let dir = tempfile::tempdir().unwrap();
        let ring = ShmRing::create(&dir.path().join("ring"), capacity).unwrap();
        let mut ring = ring;
        ring.map[16..24].copy_from_slice(&head.to_le_bytes());
        ring.map[24..32].copy_from_slice(&tail.to_le_bytes());
        ring.map[32..36].copy_from_slice(&closed.to_le_bytes());
        let n = data.len().min(capacity);
        ring.map[HEADER..HEADER + n].copy_from_slice(&data[..n]);
        (dir, ring)
    }

    #[test]
    fn a_peer_that_publishes_more_than_the_ring_holds_is_an_error_not_an_allocation() {
        // A length of 4 GiB at the tail, and a head far beyond the ring.
        let (_dir, ring) = ring_with(64, u64::MAX / 2, 0, 0, &[0xff; 8]);
        let error = ring.read(&mut || true).unwrap_err();
        assert!(error.to_string().contains("corrupt ring"), "{error}");
        let (_dir, ring) = ring_with(64, 40, 0, 0, &[0xff; 8]);
        let error = ring.read(&mut || true).unwrap_err();
        assert!(
            error.to_string().contains("a frame of 4294967295 bytes"),
            "{error}"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]
        /// Whatever the other process writes into the header and the data area, reading
        /// never panics and never returns (or allocates) more than the ring holds.
        #[test]
        fn reading_any_ring_contents_never_panics(
            capacity in 8usize..256,
            head in proptest::prelude::any::<u64>(),
            tail in proptest::prelude::any::<u64>(),
            closed in 0u32..3,
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256),
            small_head in 0u64..600,
        ) {
            for head in [head, small_head, tail.saturating_add(small_head)] {
                let (_dir, ring) = ring_with(capacity, head, tail, closed, &data);
                let mut polls = 0;
                for _ in 0..4 {
                    match ring.read(&mut || { polls += 1; polls > 2 }) {
                        Ok(Some(frame)) => proptest::prop_assert!(frame.len() <= capacity),
                        Ok(None) | Err(_) => break,
                    }
                }
            }
        }
    }
}
