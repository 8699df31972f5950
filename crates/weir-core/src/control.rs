//! The control dataflow: a tiny broadcast channel next to the job's dataflow, through which
//! a failing worker tells every other worker (in every process) to stop. Without it, a
//! process whose workers wait for progress from a peer that has exited cleanly would wait
//! forever.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::vec::Broadcast;
use timely::dataflow::operators::{Input, Inspect};
use timely::dataflow::InputHandle;
use timely::worker::Worker;

type Message = (usize, String);

pub(crate) struct Control {
    input: Option<InputHandle<u64, CapacityContainerBuilder<Vec<Message>>>>,
    dataflow: usize,
    cause: Rc<RefCell<Option<String>>>,
}

impl Control {
    /// Installs the control dataflow on this worker (every worker must, in the same order).
    pub(crate) fn install(worker: &mut Worker) -> Self {
        let mut input = InputHandle::new();
        let cause: Rc<RefCell<Option<String>>> = Rc::default();
        let seen = Rc::clone(&cause);
        let dataflow = worker.next_dataflow_index();
        worker.dataflow_named::<u64, _, _>("weir-control", |scope| {
            scope
                .input_from(&mut input)
                .container::<Vec<Message>>()
                .broadcast()
                .inspect(move |(w, m)| {
                    seen.borrow_mut()
                        .get_or_insert_with(|| format!("worker {w} failed: {m}"));
                });
        });
        Control {
            input: Some(input),
            dataflow,
            cause,
        }
    }

    /// Where the first failure another worker announced appears.
    pub(crate) fn remote_failure(&self) -> Rc<RefCell<Option<String>>> {
        Rc::clone(&self.cause)
    }

    /// Ends this worker's part of the control dataflow (the job finished here).
    pub(crate) fn close(&mut self) {
        self.input = None;
    }

    /// Drops this worker's job dataflows and tells every worker that this one failed.
    pub(crate) fn announce(&mut self, worker: &mut Worker, index: usize, message: String) {
        for id in worker.installed_dataflows() {
            if id != self.dataflow {
                worker.drop_dataflow(id);
            }
        }
        if let Some(mut input) = self.input.take() {
            input.send((index, message));
            input.advance_to(1);
        }
        // A few steps push the message into the channels (and onto the wire); the send
        // threads deliver it before they shut down.
        for _ in 0..8 {
            worker.step_or_park(Some(Duration::from_millis(1)));
        }
        worker.drop_dataflow(self.dataflow);
    }
}
