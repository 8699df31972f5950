//! The ML cluster under attack, with real sockets: messages forged by anything outside the
//! job (in the format the cluster spoke before it was authenticated) change nothing, a
//! length claim of 2^40 bytes aborts nothing, non-finite gradients never reach a model, and
//! the AM and nodes listen only on the advertised host.

use std::io::Write;
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use weir_core::{execute, op, Collector, Config};
use weir_ml::{
    add_am_role, add_role, assemble_model, ps_runner, worker_runner, BatchTransitions,
    ClusterConfig, ClusterSpec, FailoverStrategy, LabeledPoint, NodeContext, NodeRunner,
    PsTrainingConfig, TrainingReport,
};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Digit {
    id: u64,
    x: Vec<f32>,
    y: usize,
}

fn digits() -> Vec<Digit> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/data/digits.jsonl");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn point(d: &Digit) -> LabeledPoint {
    LabeledPoint {
        x: d.x.iter().map(|v| v / 16.0).collect(),
        y: d.y,
    }
}

const TRAINING: PsTrainingConfig = PsTrainingConfig {
    classes: 10,
    features: 64,
    learning_rate: 0.5,
    l2: 1e-4,
    epochs: 20,
    batch_size: 16,
};

/// The node identity of the unauthenticated protocol, for forging its messages.
#[derive(Serialize)]
struct NodeId {
    role: String,
    index: usize,
}

/// The control messages as they were encoded (bincode 2, variant order kept).
#[derive(Serialize)]
#[allow(dead_code)]
enum ForgedNodeMessage {
    Register {
        node: NodeId,
        attempt: u32,
        address: String,
    },
    Heartbeat {
        node: NodeId,
        attempt: u32,
    },
    Finished {
        node: NodeId,
        attempt: u32,
    },
    Failed {
        node: NodeId,
        attempt: u32,
        cause: String,
    },
    StopCluster {
        node: NodeId,
        attempt: u32,
    },
}

/// A parameter-server request as it was encoded.
#[derive(Serialize)]
#[allow(dead_code)]
enum ForgedPsRequest {
    Pull,
    PushPull {
        rows: Vec<(usize, Vec<f32>, f32)>,
        rate: f32,
    },
}

fn node(role: &str, index: usize) -> NodeId {
    NodeId {
        role: role.into(),
        index,
    }
}

/// A length-prefixed bincode frame, as the cluster read them before authentication.
fn plain_frame<T: Serialize>(message: &T) -> Vec<u8> {
    let payload = bincode::serde::encode_to_vec(message, bincode::config::standard()).unwrap();
    let mut frame = (payload.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(&payload);
    frame
}

/// 16 bytes: a 12-byte registration whose role string claims 2^40 bytes.
fn huge_claim() -> Vec<u8> {
    let mut payload = vec![0u8, 253];
    payload.extend_from_slice(&(1u64 << 40).to_le_bytes());
    payload.extend_from_slice(b"wx");
    let mut frame = (payload.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(&payload);
    assert_eq!(frame.len(), 16);
    frame
}

/// Writes `frames` to `address` on one connection and hangs up.
fn send_frames(address: &str, frames: &[Vec<u8>]) {
    let mut stream = TcpStream::connect(address).unwrap();
    for f in frames {
        // The receiver may close early; what it did with the bytes is what the test checks.
        let _ = stream.write_all(f);
    }
    let _ = stream.flush();
    // Give the receiver the bytes before the connection closes.
    std::thread::sleep(Duration::from_millis(100));
}

/// Where an attacker aims: the AM's and the ps node's addresses.
struct Targets {
    am: String,
    spec: ClusterSpec,
}

type Attack = fn(&Targets, &NodeContext<'_, LabeledPoint, TrainingReport>);

/// Trains digits with 2 workers and 1 ps on 3 threads; worker 0 runs `attack` once, before
/// it trains. Returns the reports and the held-out accuracy.
fn train_under_attack(attack: Attack) -> (Vec<TrainingReport>, f64) {
    let cluster = ClusterConfig::new()
        .role("worker", 2)
        .role("ps", 1)
        .failover(FailoverStrategy::RestartAll, 3, Duration::from_millis(50))
        .transitions(BatchTransitions);
    let am_address: Arc<Mutex<Option<String>>> = Arc::default();
    let reports = Collector::new();
    let sink = reports.clone();
    let data = digits();
    let training: Vec<LabeledPoint> = data.iter().filter(|d| d.id % 5 != 0).map(point).collect();
    let held_out: Vec<LabeledPoint> = data.iter().filter(|d| d.id % 5 == 0).map(point).collect();
    let spy = Arc::clone(&am_address);
    let job = move || {
        execute(Config::threads(3), move |job| {
            let am = add_am_role(job, &cluster);
            let slot = Arc::clone(&spy);
            am.clone().for_each("spy", move |a| {
                *slot.lock().unwrap() = Some(a.address.clone());
            });
            let stream = job.from_vec("points", training.clone());
            let runner = worker_runner(TRAINING);
            let slot = Arc::clone(&spy);
            let worker = move |ctx: &mut NodeContext<'_, LabeledPoint, TrainingReport>| {
                if ctx.node.index == 0 && ctx.attempt == 0 {
                    let am = wait_for(&slot);
                    attack(
                        &Targets {
                            am,
                            spec: ctx.spec.clone(),
                        },
                        ctx,
                    );
                }
                runner.run(ctx)
            };
            let trained = add_role(job, &cluster, &am, "worker", Some(stream), worker);
            let shards = add_role(job, &cluster, &am, "ps", None, ps_runner(TRAINING));
            trained
                .union("reports", shards)
                .collect(op("collect").parallelism(1), &sink);
            Ok(())
        })
    };
    within_two_minutes(job).expect("the attacked job must still succeed");
    let reports = reports.take();
    let accuracy = assemble_model(&reports, &TRAINING)
        .expect("every shard reported")
        .accuracy(&held_out);
    (reports, accuracy)
}

/// Runs `job` on a thread; a job that hangs fails the test instead of hanging it.
fn within_two_minutes<T: Send + 'static>(job: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(job());
    });
    result
        .recv_timeout(Duration::from_secs(120))
        .expect("the job hung")
}

fn wait_for(slot: &Mutex<Option<String>>) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(a) = slot.lock().unwrap().clone() {
            return a;
        }
        assert!(Instant::now() < deadline, "the AM address never arrived");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Both workers trained on every record in the first attempt, and the model is good.
fn assert_undisturbed(reports: &[TrainingReport], accuracy: f64) {
    let mut workers: Vec<(usize, u32, usize)> = reports
        .iter()
        .filter_map(|r| match r {
            TrainingReport::Worker {
                worker,
                attempt,
                examples,
                ..
            } => Some((*worker, *attempt, *examples)),
            _ => None,
        })
        .collect();
    workers.sort();
    assert_eq!(workers.len(), 2, "both workers report: {workers:?}");
    assert!(workers.iter().all(|w| w.1 == 0), "no failover: {workers:?}");
    assert_eq!(workers.iter().map(|w| w.2).sum::<usize>(), 1437);
    assert!(accuracy >= 0.93, "held-out accuracy {accuracy}");
}

#[test]
fn a_forged_stop_cluster_does_not_end_training() {
    let (reports, accuracy) = train_under_attack(|t, _| {
        let stop = ForgedNodeMessage::StopCluster {
            node: node("worker", 0),
            attempt: 0,
        };
        send_frames(&t.am, &[plain_frame(&stop)]);
    });
    assert_undisturbed(&reports, accuracy);
}

/// Writes `frames` to `address` and returns what came back before the other side closed
/// or went quiet for a second.
fn answer_to(address: &str, frames: &[Vec<u8>]) -> Vec<u8> {
    use std::io::Read;
    let mut stream = TcpStream::connect(address).unwrap();
    for f in frames {
        let _ = stream.write_all(f);
    }
    stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    answer
}

#[test]
fn an_unauthenticated_peer_learns_nothing_not_even_the_current_attempt() {
    let (reports, accuracy) = train_under_attack(|t, _| {
        let stale = ForgedNodeMessage::Register {
            node: node("worker", 0),
            attempt: 5,
            address: "127.0.0.1:9".into(),
        };
        // The greeting is padded so that the AM has a whole one to refuse.
        let mut frame = plain_frame(&stale);
        frame.resize(64, 0);
        let answer = answer_to(&t.am, &[frame]);
        let text = String::from_utf8_lossy(&answer);
        assert!(!text.contains("attempt"), "the AM answered: {text}");
        assert!(answer.is_empty(), "the AM answered {} bytes", answer.len());
    });
    assert_undisturbed(&reports, accuracy);
}

#[test]
fn forged_failures_do_not_fail_the_job() {
    let (reports, accuracy) = train_under_attack(|t, _| {
        for attempt in 0..3 {
            let failed = ForgedNodeMessage::Failed {
                node: node("worker", 1),
                attempt,
                cause: "forged".into(),
            };
            send_frames(&t.am, &[plain_frame(&failed)]);
        }
    });
    assert_undisturbed(&reports, accuracy);
}

#[test]
fn a_forged_registration_does_not_replace_the_parameter_server() {
    let (reports, accuracy) = train_under_attack(|t, _| {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let register = ForgedNodeMessage::Register {
            node: node("ps", 0),
            attempt: 0,
            address: listener.local_addr().unwrap().to_string(),
        };
        send_frames(&t.am, &[plain_frame(&register)]);
    });
    assert_undisturbed(&reports, accuracy);
}

#[test]
fn nan_gradients_from_outside_the_job_never_reach_the_model() {
    let (reports, accuracy) = train_under_attack(|t, _| {
        let ps = t.spec.address("ps", 0).unwrap().to_string();
        let poison = ForgedPsRequest::PushPull {
            rows: (0..10).map(|c| (c, vec![f32::NAN; 64], f32::NAN)).collect(),
            rate: 1.0,
        };
        send_frames(&ps, &[plain_frame(&poison)]);
    });
    assert_undisturbed(&reports, accuracy);
}

#[test]
fn non_finite_gradients_from_a_member_of_the_job_are_refused() {
    let (reports, accuracy) = train_under_attack(|t, ctx| {
        let ps = t.spec.address("ps", 0).unwrap();
        let mut channel = ctx.connect_peer(ps).unwrap();
        let poison = ForgedPsRequest::PushPull {
            rows: vec![(3, vec![f32::INFINITY; 64], 0.0)],
            rate: 1.0,
        };
        channel.send(&poison).unwrap();
        // The ps closes the connection instead of answering with poisoned parameters.
        assert!(channel.recv::<Vec<(usize, Vec<f32>, f32)>>().is_err());
    });
    assert_undisturbed(&reports, accuracy);
}

#[test]
fn a_length_claim_of_two_to_the_forty_bytes_aborts_nothing() {
    let (reports, accuracy) = train_under_attack(|t, _| {
        send_frames(&t.am, &[huge_claim()]);
        send_frames(t.spec.address("ps", 0).unwrap(), &[huge_claim()]);
    });
    assert_undisturbed(&reports, accuracy);
}

#[test]
fn the_am_and_the_nodes_listen_only_on_the_advertised_host() {
    let (reports, accuracy) = train_under_attack(|t, _| {
        // 127.0.0.2 reaches a socket bound to every interface, not one bound to 127.0.0.1.
        for address in [t.am.as_str(), t.spec.address("ps", 0).unwrap()] {
            let (host, port) = address.rsplit_once(':').unwrap();
            assert_eq!(host, "127.0.0.1");
            let other = format!("127.0.0.2:{port}");
            assert!(
                TcpStream::connect(&other).is_err(),
                "{address} is also reachable as {other}"
            );
        }
    });
    assert_undisturbed(&reports, accuracy);
}
