//! The ML cluster with real threads and sockets: an AM and role nodes as dataflow operators,
//! registration over TCP, the cluster spec, finishing, failover and its limits.

use std::time::Duration;

use weir_core::{execute, explain, op, Collector, Config, WeirError};
use weir_ml::{
    add_am_role, add_role, AmAddress, BatchTransitions, ClusterConfig, FailoverStrategy, JobSecret,
    Liveness, NodeContext,
};

/// What a worker reports: node, attempt, number of addresses in the spec, its ps address.
type Report = (String, u32, usize, String);

fn cluster(strategy: FailoverStrategy, max_attempts: u32) -> ClusterConfig {
    ClusterConfig::new()
        .role("worker", 2)
        .role("ps", 1)
        .property("learning_rate", "0.1")
        .failover(strategy, max_attempts, Duration::from_millis(50))
        .heartbeats(Duration::from_millis(50), Duration::from_secs(5))
        .registration_timeout(Duration::from_secs(10))
        .transitions(BatchTransitions)
}

/// Runs the cluster on 3 workers; worker nodes run `worker`, the ps waits to be stopped.
fn run(
    config: ClusterConfig,
    worker: impl Fn(&mut NodeContext<'_, (), Report>) -> Result<(), String> + Send + Sync + 'static,
) -> (Result<(), WeirError>, Vec<Report>) {
    let out = Collector::new();
    let sink = out.clone();
    let worker = std::sync::Arc::new(worker);
    let result = execute(Config::threads(3), move |job| {
        let am = add_am_role(job, &config);
        let w = std::sync::Arc::clone(&worker);
        let reports = add_role(
            job,
            &config,
            &am,
            "worker",
            None,
            move |ctx: &mut NodeContext<'_, (), Report>| w(ctx),
        );
        let ps = add_role(
            job,
            &config,
            &am,
            "ps",
            None,
            |ctx: &mut NodeContext<'_, (), Report>| {
                while !ctx.stop.is_stopped() {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Ok(())
            },
        );
        reports.union("all", ps).collect("reports", &sink);
        Ok(())
    })
    .map(|_| ());
    (result, out.take())
}

fn report(ctx: &NodeContext<'_, (), Report>) {
    let addresses = ctx.spec.nodes.values().map(Vec::len).sum();
    let ps = ctx.spec.address("ps", 0).unwrap_or_default().to_string();
    ctx.emit((ctx.node.to_string(), ctx.attempt, addresses, ps));
}

#[test]
fn two_workers_and_a_ps_complete_with_a_full_cluster_spec() {
    let (result, mut reports) = run(cluster(FailoverStrategy::RestartAll, 1), |ctx| {
        assert_eq!(ctx.property("learning_rate"), Some("0.1"));
        report(ctx);
        Ok(())
    });
    result.unwrap();
    reports.sort();
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0].0, "worker:0");
    assert_eq!(reports[1].0, "worker:1");
    for (_, attempt, addresses, ps) in &reports {
        assert_eq!((*attempt, *addresses), (0, 3));
        assert!(ps.starts_with("127.0.0.1:") && !ps.ends_with(":0"), "{ps}");
    }
}

#[test]
fn a_worker_failing_twice_then_succeeding_completes_after_two_restarts() {
    let (result, reports) = run(cluster(FailoverStrategy::RestartAll, 3), |ctx| {
        report(ctx);
        if ctx.node.index == 1 && ctx.attempt < 2 {
            return Err(format!("flaky on attempt {}", ctx.attempt));
        }
        Ok(())
    });
    result.unwrap();
    let mut attempts: Vec<(String, u32)> = reports.into_iter().map(|r| (r.0, r.1)).collect();
    attempts.sort();
    // Restart-all: worker 0 runs again on every attempt too.
    assert!(attempts.contains(&("worker:1".into(), 0)));
    assert!(attempts.contains(&("worker:1".into(), 1)));
    assert!(attempts.contains(&("worker:1".into(), 2)));
    assert!(attempts.contains(&("worker:0".into(), 2)));
}

#[test]
fn restart_node_restarts_only_the_failed_node() {
    let (result, reports) = run(cluster(FailoverStrategy::RestartNode, 2), |ctx| {
        report(ctx);
        if ctx.node.index == 1 && ctx.attempt == 0 {
            // Let worker 0 finish first: only worker 1 may run again.
            std::thread::sleep(Duration::from_millis(100));
            return Err("once".into());
        }
        Ok(())
    });
    result.unwrap();
    let mut attempts: Vec<(String, u32)> = reports.into_iter().map(|r| (r.0, r.1)).collect();
    attempts.sort();
    assert_eq!(
        attempts,
        vec![
            ("worker:0".into(), 0),
            ("worker:1".into(), 0),
            ("worker:1".into(), 1)
        ]
    );
}

#[test]
fn an_always_failing_node_ends_the_job_with_the_max_attempts_error() {
    let (result, _) = run(cluster(FailoverStrategy::RestartAll, 3), |ctx| {
        if ctx.node.index == 1 {
            panic!("cannot train on attempt {}", ctx.attempt);
        }
        Ok(())
    });
    let error = result.unwrap_err().to_string();
    assert!(
        error.contains("worker:1")
            && error.contains("attempt 3 of 3")
            && error.contains("cannot train on attempt 2"),
        "{error}"
    );
}

#[test]
fn an_unreachable_am_is_a_registration_timeout() {
    let config =
        cluster(FailoverStrategy::RestartAll, 1).registration_timeout(Duration::from_millis(300));
    let error = execute(Config::threads(2), move |job| {
        // Nothing listens on port 1.
        let am = job.from_vec(
            op("fake_am").parallelism(1),
            vec![AmAddress::new(
                "127.0.0.1:1",
                Some(JobSecret::generate().unwrap()),
            )],
        );
        add_role(
            job,
            &config,
            &am,
            "worker",
            None,
            |_: &mut NodeContext<'_, (), ()>| Ok(()),
        )
        .for_each("drop", |_| {});
        Ok(())
    })
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("registration timeout") && error.contains("worker:"),
        "{error}"
    );
}

#[test]
fn the_job_graph_has_the_am_at_parallelism_1_and_roles_at_their_counts() {
    let config = cluster(FailoverStrategy::RestartAll, 1);
    let plan = explain(Config::threads(3), move |job| {
        let am = add_am_role(job, &config);
        let data = job.from_vec(op("data").parallelism(1), vec![1u64]);
        add_role(
            job,
            &config,
            &am,
            "worker",
            Some(data),
            |_: &mut NodeContext<'_, u64, ()>| Ok(()),
        )
        .for_each("w", |_| {});
        add_role(
            job,
            &config,
            &am,
            "ps",
            None,
            |_: &mut NodeContext<'_, (), ()>| Ok(()),
        )
        .for_each("p", |_| {});
        Ok(())
    })
    .unwrap();
    let node = |name: &str| plan.nodes.iter().find(|n| n.name == name).unwrap().clone();
    assert_eq!(node("am").parallelism, 1);
    assert_eq!(
        (node("worker").parallelism, node("worker").kind.as_str()),
        (2, "bridge")
    );
    assert_eq!(
        (node("ps").parallelism, node("ps").kind.as_str()),
        (1, "bridge:source")
    );
    let workers = node("worker").placement;
    assert_ne!(
        workers[0], workers[1],
        "nodes of a role sit on distinct workers"
    );
}

#[test]
fn a_node_failing_after_the_others_finished_restarts_them_all() {
    let (result, reports) = run(cluster(FailoverStrategy::RestartAll, 2), |ctx| {
        report(ctx);
        if ctx.node.index == 1 && ctx.attempt == 0 {
            std::thread::sleep(Duration::from_millis(150));
            return Err("late failure".into());
        }
        Ok(())
    });
    result.unwrap();
    let attempts: Vec<(String, u32)> = reports.into_iter().map(|r| (r.0, r.1)).collect();
    assert!(attempts.contains(&("worker:0".into(), 0)));
    assert!(
        attempts.contains(&("worker:0".into(), 1)),
        "finished worker 0 ran again: {attempts:?}"
    );
    assert!(attempts.contains(&("worker:1".into(), 1)));
}

#[test]
fn a_runner_without_signs_of_life_is_timed_out_and_restarted() {
    let config = cluster(FailoverStrategy::RestartAll, 2)
        .heartbeats(Duration::from_millis(50), Duration::from_millis(500))
        .liveness(Liveness::Runner);
    let (result, reports) = run(config, |ctx| {
        report(ctx);
        if ctx.node.index == 1 && ctx.attempt == 0 {
            // Stuck: no sign of life until the AM gives up on it and stops it.
            while !ctx.stop.is_stopped() {
                std::thread::sleep(Duration::from_millis(10));
            }
            return Ok(());
        }
        ctx.alive();
        Ok(())
    });
    result.unwrap();
    let attempts: Vec<(String, u32)> = reports.into_iter().map(|r| (r.0, r.1)).collect();
    assert!(attempts.contains(&("worker:1".into(), 1)), "{attempts:?}");
}

#[test]
fn stop_cluster_from_a_runner_ends_the_cluster_and_the_job() {
    let config = ClusterConfig::new().role("worker", 2);
    let out = Collector::new();
    let sink = out.clone();
    execute(Config::threads(2), move |job| {
        let am = add_am_role(job, &config);
        add_role(
            job,
            &config,
            &am,
            "worker",
            None,
            |ctx: &mut NodeContext<'_, (), String>| {
                if ctx.node.index == 0 {
                    ctx.stop_cluster();
                } else {
                    // Would run forever: the cluster's end stops it.
                    while !ctx.stop.is_stopped() {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
                ctx.emit(ctx.node.to_string());
                Ok(())
            },
        )
        .collect("out", &sink);
        Ok(())
    })
    .unwrap();
    assert_eq!(
        out.sorted(),
        vec!["worker:0".to_string(), "worker:1".to_string()]
    );
}
