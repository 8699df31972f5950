//! A cache of records for operators that read a bounded input more than once or must hold it
//! back (Flink ML's `DataCache`): records stay in memory up to a byte budget, and whole
//! segments beyond it are written to a temporary file with bincode and read back in order.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::marker::PhantomData;

use serde::{de::DeserializeOwned, Serialize};

use crate::error::WeirError;

/// The default memory budget of a [`DataCache`]: 256 MiB.
pub const DEFAULT_CACHE_BUDGET: usize = 256 << 20;

/// The share of the machine's memory that the caches of the operators' instances on one
/// process may hold before they spill: Flink ML caches in the task's managed memory, 40% of a
/// TaskManager's memory by default.
pub(crate) const MANAGED_CACHE_FRACTION: f64 = 0.4;

/// The memory budget of the cache of one operator instance on a process with
/// `threads` worker threads and `physical` bytes of memory (`None`: unknown):
/// [`MANAGED_CACHE_FRACTION`] of the memory, shared by the threads, and never less than
/// [`DEFAULT_CACHE_BUDGET`]. An iteration reads its whole cache every round, and a model
/// transform holds its whole input until the model is fitted: a data set that fits in memory
/// stays there (read back from disk, it would be encoded and decoded again).
pub(crate) fn cache_budget(physical: Option<u64>, threads: usize) -> usize {
    let share = physical.map_or(0.0, |bytes| {
        bytes as f64 * MANAGED_CACHE_FRACTION / threads.max(1) as f64
    });
    (share as usize).max(DEFAULT_CACHE_BUDGET)
}

/// The machine's physical memory in bytes (`None` where it cannot be read).
fn physical_memory() -> Option<u64> {
    // SAFETY: sysconf only reads system configuration.
    let (pages, page) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    (pages > 0 && page > 0).then(|| pages as u64 * page as u64)
}

/// [`cache_budget`] of an instance of a job configured by `config` on this machine.
pub(crate) fn managed_cache_budget(config: &crate::config::Config) -> usize {
    let threads = match &config.cluster {
        crate::config::Cluster::Local { threads }
        | crate::config::Cluster::Processes { threads, .. } => *threads,
    };
    cache_budget(physical_memory(), threads)
}

/// One spilled segment: where it starts in the spill file and its length in bytes.
#[derive(Clone, Copy, Debug)]
struct Spilled {
    offset: u64,
    len: u64,
}

/// A segment of the cache, in memory or on disk.
enum Segment<T> {
    Memory(Vec<T>),
    Disk(Spilled),
}

/// Records kept in arrival order, in memory up to a budget and on disk beyond it.
///
/// # Budgets
///
/// The operators that cache (`iterate_bounded` and `with_broadcast`) give each instance's
/// cache the *managed budget*: 40% of the machine's memory shared by the process's worker
/// threads, and never less than [`DEFAULT_CACHE_BUDGET`], as Flink ML caches in the managed
/// memory of its task managers (40% by default). On a machine of 24 GiB with 2 worker threads
/// that is 4.8 GiB per instance.
///
/// ```
/// use weir_core::DataCache;
/// let mut cache = DataCache::new(64, |x: &u64| std::mem::size_of_val(x));
/// for i in 0..100u64 {
///     cache.push(i).unwrap();
/// }
/// assert!(cache.spilled_bytes() > 0);
/// let mut seen = Vec::new();
/// cache.for_each(|x| seen.push(x)).unwrap();
/// assert_eq!(seen, (0..100).collect::<Vec<_>>());
/// ```
pub struct DataCache<T> {
    budget: usize,
    weigh: Box<dyn Fn(&T) -> usize>,
    in_memory: usize,
    segments: Vec<Segment<T>>,
    spill: Option<File>,
    spill_len: u64,
    len: usize,
    _records: PhantomData<T>,
}

impl<T: Serialize + DeserializeOwned + Clone> DataCache<T> {
    /// A cache that keeps about `budget` bytes in memory, weighing each record with `weigh`.
    pub fn new(budget: usize, weigh: impl Fn(&T) -> usize + 'static) -> Self {
        DataCache {
            budget,
            weigh: Box::new(weigh),
            in_memory: 0,
            segments: vec![Segment::Memory(Vec::new())],
            spill: None,
            spill_len: 0,
            len: 0,
            _records: PhantomData,
        }
    }

    /// The number of records cached.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes written to the spill file so far.
    pub fn spilled_bytes(&self) -> u64 {
        self.spill_len
    }

    /// Appends a record; when the memory budget is exceeded, the in-memory tail is spilled.
    pub fn push(&mut self, record: T) -> Result<(), WeirError> {
        self.in_memory += (self.weigh)(&record);
        self.len += 1;
        match self.segments.last_mut() {
            Some(Segment::Memory(tail)) => tail.push(record),
            _ => self.segments.push(Segment::Memory(vec![record])),
        }
        if self.in_memory > self.budget {
            self.spill_tail()?;
        }
        Ok(())
    }

    fn spill_tail(&mut self) -> Result<(), WeirError> {
        let Some(Segment::Memory(tail)) = self.segments.pop() else {
            return Ok(());
        };
        let bytes = bincode::serde::encode_to_vec(&tail, bincode::config::standard())
            .map_err(|e| cache_error(format!("cannot encode a spilled segment: {e}")))?;
        if self.spill.is_none() {
            self.spill = Some(tempfile::tempfile().map_err(|e| io_error("create", e))?);
        }
        let file = self.spill.as_mut().expect("created above");
        file.seek(SeekFrom::End(0))
            .map_err(|e| io_error("seek", e))?;
        let mut writer = BufWriter::new(&mut *file);
        writer.write_all(&bytes).map_err(|e| io_error("write", e))?;
        writer.flush().map_err(|e| io_error("write", e))?;
        self.segments.push(Segment::Disk(Spilled {
            offset: self.spill_len,
            len: bytes.len() as u64,
        }));
        self.spill_len += bytes.len() as u64;
        self.in_memory = 0;
        Ok(())
    }

    /// Calls `f` with every record in arrival order (the cache stays as it is, so it can be
    /// read again: the iterations of an iterative algorithm).
    pub fn for_each(&mut self, mut f: impl FnMut(T)) -> Result<(), WeirError> {
        for i in 0..self.segments.len() {
            match &self.segments[i] {
                Segment::Memory(records) => records.iter().cloned().for_each(&mut f),
                Segment::Disk(spilled) => {
                    let spilled = *spilled;
                    self.read_segment(spilled)?.into_iter().for_each(&mut f)
                }
            }
        }
        Ok(())
    }

    /// Calls `f` with a reference to every record in arrival order, without copying those
    /// kept in memory (spilled segments are decoded one at a time). The cache stays as it is.
    ///
    /// ```
    /// use weir_core::DataCache;
    /// let mut cache = DataCache::new(1 << 20, |v: &Vec<f64>| 8 * v.len());
    /// cache.push(vec![1.0, 2.0]).unwrap();
    /// cache.push(vec![3.0]).unwrap();
    /// let mut sum = 0.0;
    /// cache.for_each_ref(|v| sum += v.iter().sum::<f64>()).unwrap();
    /// assert_eq!(sum, 6.0);
    /// ```
    pub fn for_each_ref(&mut self, mut f: impl FnMut(&T)) -> Result<(), WeirError> {
        for i in 0..self.segments.len() {
            match &self.segments[i] {
                Segment::Memory(records) => records.iter().for_each(&mut f),
                Segment::Disk(spilled) => {
                    let spilled = *spilled;
                    self.read_segment(spilled)?.iter().for_each(&mut f)
                }
            }
        }
        Ok(())
    }

    /// Hands out every record in arrival order and empties the cache.
    pub fn drain(&mut self, mut f: impl FnMut(T)) -> Result<(), WeirError> {
        let segments = std::mem::replace(&mut self.segments, vec![Segment::Memory(Vec::new())]);
        for segment in segments {
            match segment {
                Segment::Memory(records) => records.into_iter().for_each(&mut f),
                Segment::Disk(spilled) => self.read_segment(spilled)?.into_iter().for_each(&mut f),
            }
        }
        self.spill = None;
        self.spill_len = 0;
        self.in_memory = 0;
        self.len = 0;
        Ok(())
    }

    fn read_segment(&mut self, spilled: Spilled) -> Result<Vec<T>, WeirError> {
        let file = self
            .spill
            .as_mut()
            .ok_or_else(|| cache_error("no spill file".into()))?;
        file.seek(SeekFrom::Start(spilled.offset))
            .map_err(|e| io_error("seek", e))?;
        let mut bytes = Vec::with_capacity(spilled.len as usize);
        BufReader::new(&mut *file)
            .take(spilled.len)
            .read_to_end(&mut bytes)
            .map_err(|e| io_error("read", e))?;
        let (records, _) =
            bincode::serde::decode_from_slice::<Vec<T>, _>(&bytes, bincode::config::standard())
                .map_err(|e| cache_error(format!("cannot decode a spilled segment: {e}")))?;
        Ok(records)
    }
}

fn io_error(what: &str, e: std::io::Error) -> WeirError {
    cache_error(format!("cannot {what} the data cache's spill file: {e}"))
}

fn cache_error(message: String) -> WeirError {
    WeirError::Operator {
        operator: "data cache".into(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_budget_is_a_share_of_memory_and_at_least_the_default() {
        assert_eq!(cache_budget(Some(16 << 30), 2), (16usize << 30) / 5);
        assert_eq!(cache_budget(Some(1 << 30), 8), DEFAULT_CACHE_BUDGET);
        assert_eq!(cache_budget(None, 2), DEFAULT_CACHE_BUDGET);
        assert!(physical_memory().is_some_and(|bytes| bytes > 0));
    }

    #[test]
    fn records_come_back_in_order_whether_kept_or_spilled() {
        let mut cache = DataCache::new(1000, |v: &Vec<u32>| 4 * v.len());
        for i in 0..1000u32 {
            cache.push(vec![i; 3]).unwrap();
        }
        assert!(cache.spilled_bytes() > 0);
        for _ in 0..2 {
            let mut seen = Vec::new();
            cache.for_each(|v| seen.push(v[0])).unwrap();
            assert_eq!(seen, (0..1000).collect::<Vec<_>>());
        }
        let mut drained = 0;
        cache.drain(|_| drained += 1).unwrap();
        assert_eq!((drained, cache.len()), (1000, 0));
    }

    #[test]
    fn a_cache_within_budget_never_touches_disk() {
        let mut cache = DataCache::new(DEFAULT_CACHE_BUDGET, |_: &u8| 1);
        (0..100).for_each(|i| cache.push(i).unwrap());
        assert_eq!(cache.spilled_bytes(), 0);
    }
}
