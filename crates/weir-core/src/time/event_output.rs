//! The output of event-time operators that produce an [`EventStream`] again: stamped
//! records, the operator's own watermark messages, and records too late to use.

use std::rc::Rc;

use serde::{Deserialize, Serialize};
use timely::dataflow::operators::core::OkErr;
use timely::dataflow::operators::vec::Map as _;
use timely::dataflow::Stream;

use crate::dead_letter::DeadLetter;
use crate::job::{Epoch, JobContext, OpHandle};
use crate::stream::Data;
use crate::time::event_stream::EventStream;
use crate::time::stamped::{generator_id, EventTime, Stamped, WatermarkMessage, NO_WATERMARK};

/// One element of an event-time operator's output.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum Emit<U, L> {
    Out(Stamped<U>),
    Mark(WatermarkMessage),
    Late(Stamped<L>),
}

/// An operator instance's watermark as a generator of its output stream.
pub(crate) struct Forwarder {
    /// `None` on a worker without an instance of the operator: it announces nothing.
    id: Option<u64>,
    sent: EventTime,
}

impl Forwarder {
    /// A forwarder that announces nothing (operator logic under test).
    #[cfg(test)]
    pub(crate) fn detached() -> Self {
        Forwarder {
            id: None,
            sent: NO_WATERMARK,
        }
    }

    pub(crate) fn new(handle: &OpHandle) -> Self {
        Forwarder {
            id: handle.instance.map(|i| generator_id(handle.node, i)),
            sent: NO_WATERMARK,
        }
    }

    /// The message announcing `watermark`, if it moved.
    pub(crate) fn announce<U, L>(&mut self, watermark: EventTime) -> Option<Emit<U, L>> {
        let id = self.id?;
        if watermark <= self.sent {
            return None;
        }
        self.sent = watermark;
        Some(Emit::Mark(WatermarkMessage {
            generator: id,
            watermark,
            idle: false,
        }))
    }
}

/// Splits an operator's output into its event stream and its late records, which become
/// dead letters with `reason`.
pub(crate) fn split_output<'s, U: Data, L: Data>(
    ctx: Rc<JobContext<'s>>,
    out: Stream<'s, Epoch, Vec<Emit<U, L>>>,
    handle: &OpHandle,
    reason: &'static str,
) -> EventStream<'s, U> {
    let (records, aside) = out.ok_err::<Vec<Stamped<U>>, _, Vec<Emit<U, L>>, _, _>(|e| match e {
        Emit::Out(s) => Ok(s),
        other => Err(other),
    });
    let (marks, late) =
        aside.ok_err::<Vec<WatermarkMessage>, _, Vec<Stamped<L>>, _, _>(|e| match e {
            Emit::Mark(m) => Ok(m),
            Emit::Late(l) => Err(l),
            Emit::Out(_) => unreachable!("records were split off"),
        });
    let name = handle.name.clone();
    let metrics = Rc::clone(&handle.metrics);
    let dead = late.map(move |s: Stamped<L>| {
        metrics.add_dead(1);
        DeadLetter::for_record(
            &name,
            format!("event time {}", s.ts),
            format!(
                "{reason} (the watermark was at {} when it was read)",
                s.watermark
            ),
            &s.data,
        )
    });
    ctx.dead_letters
        .borrow_mut()
        .push((dead, handle.node, Rc::clone(&handle.placement)));
    EventStream::generated_by(ctx, records, marks, handle)
}
