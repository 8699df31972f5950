//! Custom sinks that take part in checkpoints (Flink's `SinkWriter`): connectors outside this
//! crate (Kafka) write through [`DataStream::sink`].

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use crate::error::WeirError;
use crate::job::{Epoch, Op};
use crate::sinks::sink::SinkInstance;
use crate::state::snapshot::StatePart;
use crate::state::{Barrier, Checkpointed, StateError};
use crate::stream::{Data, DataStream};

/// What one instance of a custom sink does with its input, and at checkpoints.
///
/// In a job that checkpoints, [`SinkWriter::snapshot`] runs when a checkpoint is taken, after
/// the instance was given every record of the checkpoint's epochs and nothing later: a sink
/// that delivers at least once makes what it was given durable there (a Kafka producer
/// flushes); a two-phase sink pre-commits, and makes the output visible in
/// [`SinkWriter::committed`], once the checkpoint is complete.
pub trait SinkWriter<T>: 'static {
    /// Takes a batch of records (the batch is cleared afterwards).
    fn write(&mut self, batch: &mut Vec<T>) -> Result<(), WeirError>;

    /// The input is complete: deliver everything still held.
    fn finish(&mut self) -> Result<(), WeirError> {
        Ok(())
    }

    /// Checkpoint `checkpoint` is taken: everything written so far must survive a crash.
    fn snapshot(&mut self, _checkpoint: u64) -> Result<(), WeirError> {
        Ok(())
    }

    /// Checkpoint `checkpoint` is complete: release what was held back for it.
    fn committed(&mut self, _checkpoint: u64) -> Result<(), WeirError> {
        Ok(())
    }
}

/// A writer shared by its sink operator and the checkpoint protocol.
struct SharedWriter<S> {
    writer: Rc<RefCell<S>>,
    applied_below: Rc<Cell<Epoch>>,
}

impl<T, S: SinkWriter<T>> SinkInstance<T> for SharedWriter<S> {
    fn write(&mut self, batch: &mut Vec<T>) -> Result<(), WeirError> {
        self.writer.borrow_mut().write(batch)
    }

    fn finish(&mut self) -> Result<(), WeirError> {
        self.writer.borrow_mut().finish()
    }

    fn applied(&mut self, below: Epoch) {
        self.applied_below.set(below);
    }
}

/// The checkpoint protocol's view of a writer.
struct WriterState<S>(Rc<RefCell<S>>);

impl<S> WriterState<S> {
    fn checked(result: Result<(), WeirError>) -> Result<(), StateError> {
        result.map_err(|e| StateError::Encode(e.to_string()))
    }
}

impl<S> Checkpointed for WriterState<S>
where
    S: SinkWriterAny,
{
    fn snapshot(&self, barrier: Barrier) -> Result<StatePart, StateError> {
        Self::checked(self.0.borrow_mut().snapshot_any(barrier.checkpoint))?;
        Ok(StatePart::Instance(Vec::new()))
    }

    fn committed(&self, checkpoint: u64) -> Result<(), StateError> {
        Self::checked(self.0.borrow_mut().committed_any(checkpoint))
    }
}

/// The checkpoint hooks of a [`SinkWriter`], without its record type.
trait SinkWriterAny {
    fn snapshot_any(&mut self, checkpoint: u64) -> Result<(), WeirError>;
    fn committed_any(&mut self, checkpoint: u64) -> Result<(), WeirError>;
}

/// Ties a writer to its record type for [`SinkWriterAny`].
struct Typed<T, S> {
    writer: S,
    _records: std::marker::PhantomData<fn(T)>,
}

impl<T: 'static, S: SinkWriter<T>> SinkWriterAny for Typed<T, S> {
    fn snapshot_any(&mut self, checkpoint: u64) -> Result<(), WeirError> {
        self.writer.snapshot(checkpoint)
    }

    fn committed_any(&mut self, checkpoint: u64) -> Result<(), WeirError> {
        self.writer.committed(checkpoint)
    }
}

impl<T: 'static, S: SinkWriter<T>> SinkWriter<T> for Typed<T, S> {
    fn write(&mut self, batch: &mut Vec<T>) -> Result<(), WeirError> {
        self.writer.write(batch)
    }

    fn finish(&mut self) -> Result<(), WeirError> {
        self.writer.finish()
    }
}

impl<'s, T: Data> DataStream<'s, T> {
    /// A custom sink: `make(instance, instances)` builds the [`SinkWriter`] of each instance
    /// (on the workers that host one); `kind` names it in plans and reports
    /// (`sink:kafka`). The first error of an instance fails the job. In a job that
    /// checkpoints, the writers' [`SinkWriter::snapshot`] and [`SinkWriter::committed`] run
    /// with every checkpoint.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use weir_core::{execute, op, Config, SinkWriter, WeirError};
    ///
    /// struct Sum(Arc<Mutex<u64>>, u64);
    /// impl SinkWriter<u64> for Sum {
    ///     fn write(&mut self, batch: &mut Vec<u64>) -> Result<(), WeirError> {
    ///         self.1 += batch.iter().sum::<u64>();
    ///         Ok(())
    ///     }
    ///     fn finish(&mut self) -> Result<(), WeirError> {
    ///         *self.0.lock().unwrap() += self.1;
    ///         Ok(())
    ///     }
    /// }
    /// let total = Arc::new(Mutex::new(0));
    /// let t = Arc::clone(&total);
    /// execute(Config::threads(2), move |job| {
    ///     let numbers = job.from_vec(op("numbers").parallelism(2), (1..=10u64).collect());
    ///     let t = Arc::clone(&t);
    ///     numbers.sink(op("sum").parallelism(2), "sink:sum", move |_, _| Sum(t, 0));
    ///     Ok(())
    /// }).unwrap();
    /// assert_eq!(*total.lock().unwrap(), 55);
    /// ```
    pub fn sink<S: SinkWriter<T>>(
        self,
        op: impl Into<Op>,
        kind: &str,
        make: impl FnOnce(usize, usize) -> S,
    ) {
        let op: Op = op.into();
        let ctx = Rc::clone(&self.ctx);
        let name = op.name.clone();
        let instances = ctx.parallelism(&op);
        if ctx.state.enabled {
            ctx.state.claim(&name);
        }
        self.sink_with(op, kind, move |instance| {
            let writer = Rc::new(RefCell::new(Typed {
                writer: make(instance, instances),
                _records: std::marker::PhantomData,
            }));
            let applied_below = if ctx.state.enabled {
                let state: Rc<dyn Checkpointed> = Rc::new(WriterState(Rc::clone(&writer)));
                ctx.state.register(&name, instance, state)
            } else {
                Rc::new(Cell::new(0))
            };
            SharedWriter {
                writer,
                applied_below,
            }
        });
    }
}
