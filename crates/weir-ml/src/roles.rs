//! The cluster as dataflow operators: the AM as a parallelism-1 source whose one record is
//! its address, and each role as a bridge operator with one instance per node.

use std::sync::Arc;
use std::time::Duration;

use weir_core::{op, Data, DataStream, Job, PullSource, Pulled};

use crate::app_master::AppMaster;
use crate::cluster_config::ClusterConfig;
use crate::node_runner::{host_node, NodeRunner};
use crate::protocol::{AmAddress, NodeId};

/// The AM operator's source: starts the AM, emits its address, ends with the cluster.
struct AmSource {
    config: ClusterConfig,
    am: Option<AppMaster>,
    announced: bool,
}

impl PullSource<AmAddress> for AmSource {
    fn pull(&mut self) -> Pulled<AmAddress> {
        if self.am.is_none() {
            match AppMaster::start(self.config.clone()) {
                Ok(am) => self.am = Some(am),
                Err(e) => return Pulled::Failed(format!("cannot start the AM: {e}")),
            }
        }
        let am = self.am.as_mut().expect("started above");
        if !self.announced {
            self.announced = true;
            return Pulled::Record(am.am_address().clone());
        }
        match am.outcome() {
            None => Pulled::Pending(Duration::from_millis(20)),
            Some(Ok(())) => Pulled::Done,
            Some(Err(e)) => Pulled::Failed(e),
        }
    }
}

/// Adds the Application Manager as an operator named `am` with parallelism 1. Its output,
/// the AM's address, is what [`add_role`] needs.
pub fn add_am_role<'s>(job: &mut Job<'s>, config: &ClusterConfig) -> DataStream<'s, AmAddress> {
    let config = config.clone();
    job.pull_source(op("am").parallelism(1), move |_, _| AmSource {
        config,
        am: None,
        announced: false,
    })
}

/// Adds the nodes of `role` as an operator named after the role, with parallelism = the
/// role's node count (one node per timely worker, spread across processes; too few workers
/// is a build error). Without `input` the role is a source; with it, each node receives its
/// instance's records (`NodeContext::input`). Returns what the runners emit.
pub fn add_role<'s, I: Data + Send, O: Data + Send>(
    job: &mut Job<'s>,
    config: &ClusterConfig,
    am: &DataStream<'s, AmAddress>,
    role: &str,
    input: Option<DataStream<'s, I>>,
    runner: impl NodeRunner<I, O>,
) -> DataStream<'s, O> {
    let nodes = config.nodes(role).max(1);
    let runner: Arc<dyn NodeRunner<I, O>> = Arc::new(runner);
    let (config, role_name) = (config.clone(), role.to_string());
    let start = move |address: AmAddress, task: weir_core::BridgeTask<I, O>| {
        let node = NodeId::new(&role_name, task.instance);
        let (config, runner) = (config.clone(), Arc::clone(&runner));
        std::thread::Builder::new()
            .name(format!("weir-node-{node}"))
            .spawn(move || host_node(node, config, address, runner, task))
            .expect("spawn a node thread");
    };
    let operator = op(role).parallelism(nodes);
    match input {
        Some(input) => input.bridge(operator, am.clone(), start),
        None => job.bridge_source(operator, am.clone(), start),
    }
}
