//! Feedback edges: a stream whose records come from later in the same job, one epoch later
//! (timely's `feedback` / `connect_loop` with a summary of 1). The hook for synchronous model
//! averaging: instances emit their models at epoch `e`, a merge operator averages them, and
//! the merged model comes back as a side input at epoch `e + 1`.

use std::rc::Rc;

use timely::dataflow::operators::{ConnectLoop, Feedback};

use crate::job::{Epoch, Job, JobContext, Op};
use crate::plan::{NodeId, PlanEdge};
use crate::stream::{Data, DataStream};

/// The open end of a feedback edge; [`FeedbackHandle::connect`] closes the loop.
pub struct FeedbackHandle<'s, T: Data> {
    ctx: Rc<JobContext<'s>>,
    handle: timely::dataflow::operators::feedback::Handle<'s, Epoch, Vec<T>>,
    op: Op,
    node: NodeId,
    placement: Rc<[usize]>,
}

impl<'s> Job<'s> {
    /// A stream of records that a later part of the job sends back with [`FeedbackHandle::connect`],
    /// arriving one epoch after they were sent. The operator `op` (placed like any operator
    /// with its parallelism) is where the fed-back records land.
    pub fn feedback<T: Data>(
        &mut self,
        op: impl Into<Op>,
    ) -> (FeedbackHandle<'s, T>, DataStream<'s, T>) {
        let op = op.into();
        let handle = self.ctx.add_operator(&op, "feedback", &[]);
        self.ctx.refuse_checkpoints(&handle.name, "a feedback edge");
        let (loop_handle, stream) = self.ctx.scope.feedback::<Vec<T>>(1);
        let stream = DataStream::from_parts(
            Rc::clone(&self.ctx),
            stream,
            handle.node,
            Rc::clone(&handle.placement),
        );
        (
            FeedbackHandle {
                ctx: Rc::clone(&self.ctx),
                handle: loop_handle,
                op,
                node: handle.node,
                placement: handle.placement,
            },
            stream,
        )
    }
}

impl<'s, T: Data> FeedbackHandle<'s, T> {
    /// Sends `stream` back to the feedback stream (one epoch later), routed to its placement.
    pub fn connect(self, stream: DataStream<'s, T>) {
        let edge = stream.edge_to(&self.op);
        self.ctx.plan.borrow_mut().edges.push(PlanEdge {
            from: stream.node,
            to: self.node,
            partitioning: edge,
        });
        stream
            .routed(edge, &self.placement)
            .connect_loop(self.handle);
    }
}
