//! The job graph ("execution plan"): operators, their parallelism and the edges between them.
//!
//! Every worker records the same plan while the job is built, so it can be printed before
//! running (`--explain`) and metrics can be keyed by operator.

use std::fmt::{self, Write as _};

use serde::{Deserialize, Serialize};

/// Index of an operator in the [`Plan`].
pub type NodeId = usize;

/// How records travel along an edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Partitioning {
    /// Each upstream instance feeds the downstream instance on the same worker; no copy.
    Forward,
    /// Records go to the instance chosen by the hash of their key.
    Hash,
    /// Records are dealt round-robin to the downstream instances.
    Rebalance,
    /// Every downstream instance receives every record.
    Broadcast,
}

impl fmt::Display for Partitioning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Partitioning::Forward => "FORWARD",
            Partitioning::Hash => "HASH",
            Partitioning::Rebalance => "REBALANCE",
            Partitioning::Broadcast => "BROADCAST",
        })
    }
}

/// One operator of the job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanNode {
    /// Position in the plan.
    pub id: NodeId,
    /// User-visible name (unique in the job).
    pub name: String,
    /// What the operator does (`map`, `source:jsonl`, `aggregate`, `join:inner`…).
    pub kind: String,
    /// Number of instances that receive data.
    pub parallelism: usize,
    /// Global worker index of each instance.
    pub placement: Vec<usize>,
}

/// A connection between two operators.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanEdge {
    /// Upstream operator.
    pub from: NodeId,
    /// Downstream operator.
    pub to: NodeId,
    /// How records are routed.
    pub partitioning: Partitioning,
}

/// The job graph.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Total timely workers the plan was built for.
    pub workers: usize,
    /// Operators in creation order (a topological order).
    pub nodes: Vec<PlanNode>,
    /// Edges.
    pub edges: Vec<PlanEdge>,
}

impl Plan {
    /// Whether `node` or any operator upstream of it has the given kind.
    pub fn upstream_has_kind(&self, node: NodeId, kind: &str) -> bool {
        let mut stack = vec![node];
        let mut seen = vec![false; self.nodes.len()];
        while let Some(n) = stack.pop() {
            if std::mem::replace(&mut seen[n], true) {
                continue;
            }
            if self.nodes[n].kind == kind {
                return true;
            }
            stack.extend(self.edges.iter().filter(|e| e.to == n).map(|e| e.from));
        }
        false
    }

    /// Looks an operator up by name.
    pub fn node(&self, name: &str) -> Option<&PlanNode> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The plan as pretty JSON (Flink's execution-plan JSON has the same information).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a plan always serialises")
    }

    /// The plan as a Graphviz DOT digraph.
    pub fn to_dot(&self) -> String {
        let mut out =
            String::from("digraph weir_job {\n  rankdir=LR;\n  node [shape=box, style=rounded];\n");
        for n in &self.nodes {
            let _ = writeln!(
                out,
                "  n{} [label=\"{}\\n{} | parallelism {}\"];",
                n.id,
                escape(&n.name),
                escape(&n.kind),
                n.parallelism
            );
        }
        for e in &self.edges {
            let _ = writeln!(
                out,
                "  n{} -> n{} [label=\"{}\"];",
                e.from, e.to, e.partitioning
            );
        }
        out.push_str("}\n");
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Job graph ({} workers)", self.workers)?;
        for n in &self.nodes {
            let inputs: Vec<String> = self
                .edges
                .iter()
                .filter(|e| e.to == n.id)
                .map(|e| format!("{} [{}]", self.nodes[e.from].name, e.partitioning))
                .collect();
            write!(
                f,
                "  #{:<3} {:<28} {:<18} p={:<3} workers={:?}",
                n.id, n.name, n.kind, n.parallelism, n.placement
            )?;
            if !inputs.is_empty() {
                write!(f, "  <- {}", inputs.join(", "))?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// Global worker indices of the `parallelism` instances of an operator, spread evenly over
/// all workers (and so over processes): instance `i` runs on worker `i * workers / parallelism`.
pub fn spread(parallelism: usize, workers: usize) -> Vec<usize> {
    (0..parallelism)
        .map(|i| i * workers / parallelism)
        .collect()
}

impl Plan {
    /// Where a new operator of `parallelism` instances runs (deterministic: every worker builds
    /// the same plan, so every worker computes the same placement).
    ///
    /// - An operator on every worker runs on every worker.
    /// - One with an input of the same parallelism runs where that input runs (a chain: its
    ///   records stay on their thread, as with Flink's operator chaining).
    /// - Any other operator of fewer instances than workers (a source, or after a change of
    ///   parallelism) starts a chain: its instances, spread over the processes as [`spread`]
    ///   does, go to the least loaded workers (instances already placed there), then the least
    ///   loaded processes, then the lowest indices. So several chains of parallelism 1 share
    ///   the cores instead of piling up on worker 0.
    /// - `first`: the instances go where [`spread`] puts them, from worker 0 (a collector
    ///   lives in the first process).
    pub fn placement_for(
        &self,
        parallelism: usize,
        threads: usize,
        chained: Option<&[usize]>,
        first: bool,
    ) -> Vec<usize> {
        let workers = self.workers.max(1);
        let base = spread(parallelism, workers);
        if parallelism >= workers || first {
            return base;
        }
        if let Some(input) = chained.filter(|p| p.len() == parallelism) {
            return input.to_vec();
        }
        let mut load = vec![0usize; workers];
        for node in &self.nodes {
            for &w in node.placement.iter().filter(|&&w| w < workers) {
                load[w] += 1;
            }
        }
        let threads = threads.clamp(1, workers);
        let process_load = |w: usize| -> usize {
            let process = w / threads;
            load[process * threads..((process + 1) * threads).min(workers)]
                .iter()
                .sum()
        };
        (0..workers)
            .map(|shift| {
                let mut placement: Vec<usize> =
                    base.iter().map(|&w| (w + shift) % workers).collect();
                placement.sort_unstable();
                placement
            })
            .min_by_key(|placement| {
                let busiest = placement.iter().map(|&w| load[w]).max().unwrap_or(0);
                let total: usize = placement.iter().map(|&w| load[w]).sum();
                let processes: usize = placement.iter().map(|&w| process_load(w)).sum();
                (busiest, total, processes)
            })
            .unwrap_or(base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: usize, placement: Vec<usize>) -> PlanNode {
        PlanNode {
            id,
            name: format!("n{id}"),
            kind: "map".into(),
            parallelism: placement.len(),
            placement,
        }
    }

    #[test]
    fn chains_of_parallelism_1_spread_over_workers_and_processes() {
        // Two processes of two threads: workers 0, 1 in process 0 and 2, 3 in process 1.
        let mut plan = Plan {
            workers: 4,
            nodes: vec![],
            edges: vec![],
        };
        let mut heads = Vec::new();
        for id in 0..5 {
            let placement = plan.placement_for(1, 2, None, false);
            heads.push(placement[0]);
            plan.nodes.push(node(id, placement));
        }
        assert_eq!(heads, vec![0, 2, 1, 3, 0]);
    }

    #[test]
    fn a_chain_stays_on_its_input_and_full_parallelism_uses_every_worker() {
        let plan = Plan {
            workers: 4,
            nodes: vec![node(0, vec![2])],
            edges: vec![],
        };
        assert_eq!(plan.placement_for(1, 2, Some(&[2]), false), vec![2]);
        assert_eq!(
            plan.placement_for(4, 2, Some(&[2]), false),
            vec![0, 1, 2, 3]
        );
        assert_eq!(plan.placement_for(1, 2, None, true), vec![0]);
        // Two instances: one per process, on the idle workers.
        assert_eq!(plan.placement_for(2, 2, None, false), vec![1, 3]);
    }

    #[test]
    fn spread_uses_distinct_workers_across_processes() {
        assert_eq!(spread(2, 4), vec![0, 2]);
        assert_eq!(spread(4, 4), vec![0, 1, 2, 3]);
        assert_eq!(spread(1, 4), vec![0]);
        assert_eq!(spread(3, 4), vec![0, 1, 2]);
    }

    #[test]
    fn exports_json_and_dot() {
        let plan = Plan {
            workers: 2,
            nodes: vec![
                PlanNode {
                    id: 0,
                    name: "src".into(),
                    kind: "source:vec".into(),
                    parallelism: 1,
                    placement: vec![0],
                },
                PlanNode {
                    id: 1,
                    name: "m\"x".into(),
                    kind: "map".into(),
                    parallelism: 2,
                    placement: vec![0, 1],
                },
            ],
            edges: vec![PlanEdge {
                from: 0,
                to: 1,
                partitioning: Partitioning::Rebalance,
            }],
        };
        let json: Plan = serde_json::from_str(&plan.to_json()).unwrap();
        assert_eq!(json, plan);
        let dot = plan.to_dot();
        assert!(dot.contains("n0 -> n1 [label=\"REBALANCE\"]"));
        assert!(dot.contains("m\\\"x"));
        assert!(plan.to_string().contains("src [REBALANCE]"));
    }
}
