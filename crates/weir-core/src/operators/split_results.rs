//! Splitting a stream of results into its records and its failures (dead letters, late
//! records), container by container.
//!
//! Timely's `ok_err` gives every record to an output session one at a time, and the session
//! checks for a full container after each. Here each input container is partitioned into
//! two vectors that are handed over whole: records that only pass through cost a move.

use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::Stream;
use timely::progress::operate::FrontierInterest;

use crate::job::Epoch;
use crate::stream::{Data, VecBuilder};

/// Splits `stream` into its `Ok` records and its `Err`s, each `Err` passed through `on_err`
/// first (to count it, or to unbox it). Both outputs keep the input's epochs.
pub(crate) fn split_results<'s, T: Data, E: Data, F: Data>(
    stream: Stream<'s, Epoch, Vec<Result<T, E>>>,
    name: &str,
    mut on_err: impl FnMut(E) -> F + 'static,
) -> (Stream<'s, Epoch, Vec<T>>, Stream<'s, Epoch, Vec<F>>) {
    let mut builder = OperatorBuilder::new(format!("{name}:split"), stream.scope());
    let mut input = builder.new_input(stream, Pipeline);
    // Stateless: the operator needs scheduling for data only, never for frontier changes.
    builder.set_notify_for(0, FrontierInterest::Never);
    let (ok_output, ok_stream) = builder.new_output::<Vec<T>>();
    let (err_output, err_stream) = builder.new_output::<Vec<F>>();
    let mut ok_output = OutputBuilder::<_, VecBuilder<T>>::from(ok_output);
    let mut err_output = OutputBuilder::<_, VecBuilder<F>>::from(err_output);
    builder.build(move |_capabilities| {
        let mut failed = Vec::new();
        move |_frontiers| {
            let mut ok_handle = ok_output.activate();
            let mut err_handle = err_output.activate();
            input.for_each(|cap, data| {
                let mut ok = Vec::with_capacity(data.len());
                for result in data.drain(..) {
                    match result {
                        Ok(x) => ok.push(x),
                        Err(e) => failed.push(on_err(e)),
                    }
                }
                ok_handle.session(&cap).give_container(&mut ok);
                if !failed.is_empty() {
                    err_handle.session(&cap).give_container(&mut failed);
                    failed.clear();
                }
            });
        }
    });
    (ok_stream, err_stream)
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use timely::dataflow::Stream;

    use crate::job::Epoch;
    use crate::stream::{Data, DataStream};
    use crate::{execute, Collector, Config};

    /// `stream` as a `DataStream` of the same operator as `of`.
    fn beside<'s, T, U: Data>(
        of: &DataStream<'s, T>,
        stream: Stream<'s, Epoch, Vec<U>>,
    ) -> DataStream<'s, U> {
        DataStream::from_parts(
            Rc::clone(&of.ctx),
            stream,
            of.node,
            Rc::clone(&of.placement),
        )
    }

    /// Records and failures of every container come out on their own sides, whatever the mix.
    #[test]
    fn every_result_goes_to_its_side() {
        let (good, bad) = (Collector::new(), Collector::new());
        let (g, b) = (good.clone(), bad.clone());
        execute(Config::threads(2), move |job| {
            let results = job.generate("numbers", Some(10_000), |i| {
                if i % 7 == 3 {
                    Err(format!("bad {i}"))
                } else {
                    Ok(i)
                }
            });
            let (ok, err) = super::split_results(results.inner().clone(), "numbers", |e| e + "!");
            beside(&results, ok).collect("good", &g);
            beside(&results, err).collect("bad", &b);
            Ok(())
        })
        .unwrap();
        let expected: Vec<u64> = (0..10_000).filter(|i| i % 7 != 3).collect();
        assert_eq!(good.sorted(), expected);
        let mut failures: Vec<String> = (0..10_000)
            .filter(|i| i % 7 == 3)
            .map(|i| format!("bad {i}!"))
            .collect();
        failures.sort();
        assert_eq!(bad.sorted(), failures);
    }
}
