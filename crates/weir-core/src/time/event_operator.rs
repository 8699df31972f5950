//! The skeleton shared by keyed event-time operators (process functions, interval joins):
//! records routed by key and every generator's watermarks in; per complete epoch, the
//! records first, then the epoch's watermark; processing-time callbacks on the wall clock.

use std::rc::Rc;
use std::time::Duration;

use timely::dataflow::channels::pact::{ParallelizationContract, Pipeline};
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;
use timely::dataflow::Stream;

use std::hash::Hash;

use crate::job::{Epoch, OpHandle};
use crate::operators::key_pact::owner_pact;
use crate::state::gate::GateMode;
use crate::stream::{Data, VecBuilder};
use crate::time::event_stream::EventStream;
use crate::time::stamped::Stamped;
use crate::time::stamped::{EventTime, END_OF_TIME};
use crate::time::watermark_tracker::{broadcast_marks, lowest, EventEpochs, WatermarkTracker};

/// An event-time operator instance's logic.
pub(crate) trait EventLogic: 'static {
    type In: Data;
    type Out: Data;
    /// A record of a complete epoch; `watermark` is the combined watermark before the
    /// epoch's own watermark messages.
    fn add(&mut self, record: Self::In, watermark: EventTime, out: &mut Vec<Self::Out>);
    /// The combined watermark moved from `previous` to `watermark` (after an epoch, or to
    /// [`END_OF_TIME`] when the input ends).
    fn advance(&mut self, previous: EventTime, watermark: EventTime, out: &mut Vec<Self::Out>);
    /// The wall clock is at `now` (ms): fire what is due; returns when to be called next.
    fn on_processing_time(
        &mut self,
        _now: EventTime,
        _out: &mut Vec<Self::Out>,
    ) -> Option<EventTime> {
        None
    }
}

/// Builds the operator: the records of `events` arrive through `pact`, its watermarks are
/// broadcast to every instance. `applied(epoch)` is told how far the instance's state has
/// applied its input (for checkpoints).
///
/// Processing-time callbacks change state outside any epoch, and what they emit goes out at
/// the input frontier. They therefore run only while the worker's checkpoint gate is open:
/// between the start of a checkpoint and this worker's snapshot, their effects would be in
/// the snapshot of epoch `L` while their outputs belong to `L + 1`.
fn event_operator<'s, T, L, P>(
    events: &EventStream<'s, T>,
    pact: P,
    handle: &OpHandle,
    mut logic: L,
    applied: impl Fn(Epoch) + 'static,
) -> Stream<'s, Epoch, Vec<L::Out>>
where
    T: Data,
    L: EventLogic<In = Stamped<T>>,
    P: ParallelizationContract<Epoch, Vec<Stamped<T>>>,
{
    let records = &events.records.stream;
    let gate = Rc::clone(&events.records.ctx.gate);
    let scope = records.scope();
    let marks = broadcast_marks(&events.watermarks, &handle.placement);
    let mut tracker = WatermarkTracker::new(&events.generators);
    let metrics = Rc::clone(&handle.metrics);
    let node = handle.node;
    records
        .clone()
        .binary_frontier::<_, VecBuilder<L::Out>, _, _, _, _>(
            marks,
            pact,
            Pipeline,
            &handle.name,
            move |cap, info| {
                let activator = scope.activator_for(Rc::clone(&info.address));
                let mut held: Option<Capability<Epoch>> = Some(cap);
                // The latest epoch outputs were sent at: what the end of input sends goes
                // there, after them.
                let mut latest: Epoch = 0;
                let mut epochs = EventEpochs::new();
                let mut buffer = Vec::new();
                move |(records, records_frontier), (marks, marks_frontier), output| {
                    let _busy = metrics.busy_in(node);
                    records.for_each(|cap, data| {
                        metrics.add_in(data.len());
                        if let Some(e) = epochs.for_message(&cap, output.output_index()) {
                            e.records.push(std::mem::take(data));
                        }
                    });
                    marks.for_each(|cap, data| {
                        if let Some(e) = epochs.for_message(&cap, output.output_index()) {
                            e.marks.append(data);
                        }
                    });
                    while let Some((cap, input)) =
                        epochs.next_complete(records_frontier, marks_frontier)
                    {
                        let previous = tracker.current();
                        for rec in input.records.into_iter().flatten() {
                            logic.add(rec, previous, &mut buffer);
                        }
                        let watermark = tracker.apply(&input.marks);
                        metrics.set_watermark(watermark);
                        // Also when the watermark stayed: corrections of allowed-late records
                        // are due at it.
                        logic.advance(previous, watermark, &mut buffer);
                        latest = latest.max(*cap.time());
                        send(&metrics, &mut buffer, &cap, output);
                    }
                    let lowest = lowest(records_frontier, marks_frontier);
                    let Some(cap) = held.as_mut() else { return };
                    if *cap.time() < lowest && lowest != Epoch::MAX {
                        cap.downgrade(&lowest);
                    }
                    let now = crate::time::now_ms();
                    if gate.mode() != GateMode::Open {
                        // A checkpoint is being taken: come back once it is.
                        activator.activate_after(Duration::from_millis(5));
                    } else if let Some(next) = logic.on_processing_time(now, &mut buffer) {
                        let wait = next.saturating_sub(now).clamp(1, 3_600_000);
                        activator.activate_after(Duration::from_millis(wait as u64));
                    }
                    if lowest == Epoch::MAX {
                        if *cap.time() < latest {
                            cap.downgrade(&latest);
                        }
                        let previous = tracker.current();
                        if previous < END_OF_TIME {
                            logic.advance(previous, END_OF_TIME, &mut buffer);
                        }
                    }
                    send(&metrics, &mut buffer, cap, output);
                    applied(lowest);
                    if lowest == Epoch::MAX {
                        held = None;
                    }
                }
            },
        )
}

fn send<O: Data>(
    metrics: &crate::report::OperatorMetrics,
    buffer: &mut Vec<O>,
    cap: &Capability<Epoch>,
    output: &mut timely::dataflow::operators::generic::OutputBuilderSession<
        '_,
        Epoch,
        VecBuilder<O>,
    >,
) {
    if !buffer.is_empty() {
        metrics.add_out(buffer.len());
        output.session(cap).give_container(buffer);
        buffer.clear();
    }
}

/// [`event_operator`] for a keyed event stream: records go to the instance that owns
/// `key(record)`, watermarks to every instance.
pub(crate) fn keyed_event_operator<'s, K, T, L>(
    events: &EventStream<'s, T>,
    key: impl Fn(&Stamped<T>) -> K + 'static,
    handle: &OpHandle,
    logic: L,
    applied: impl Fn(Epoch) + 'static,
) -> Stream<'s, Epoch, Vec<L::Out>>
where
    K: Hash,
    T: Data,
    L: EventLogic<In = Stamped<T>>,
{
    event_operator(
        events,
        owner_pact(&handle.placement, key),
        handle,
        logic,
        applied,
    )
}
