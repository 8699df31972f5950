//! `learn_online_parallel` across real OS processes: the parallel trainer (4 instances on
//! 2 processes × 2 workers, synchronous model averaging over a feedback edge) is SIGKILLed
//! after several checkpoints and restarted by `weir launch --restarts`; every merged model
//! version and every prediction it commits is the same, to the bit, as in a run without
//! checkpoints or failures at the same epochs.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use weir_ml::{LabeledPoint, SgdClassifier};

mod common;

use common::{committed_lines, finish, kill, read_when_there};

const WEIR: &str = env!("CARGO_BIN_EXE_weir");

const POINTS: u64 = 14_000;
const FEATURES: usize = 4;

/// Set for the child processes: the test directory, and the job flags.
const CHILD_DIR: &str = "WEIR_TEST_ONLINE_DIR";
const CHILD_ARGS: &str = "WEIR_TEST_ONLINE_ARGS";

/// The job each launched process runs (nothing when run directly): labelled points read at
/// a pace, trained on in parallel, the merged models and the predictions written to part
/// files.
#[test]
fn online_child() {
    let (Ok(dir), Ok(args)) = (std::env::var(CHILD_DIR), std::env::var(CHILD_ARGS)) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let argv = std::iter::once("child".to_string()).chain(args.split(' ').map(String::from));
    let config = weir_core::Config::from_args(argv).unwrap();
    let process = config.process_index();
    std::fs::write(
        dir.join(format!("pid-{process}")),
        std::process::id().to_string(),
    )
    .unwrap();
    let result = weir_core::execute(config, move |job| {
        let points = job.read_jsonl::<LabeledPoint>(
            weir_core::op("points").rate(4_000.0),
            dir.join("points.jsonl"),
        );
        let learner = SgdClassifier::new(2, FEATURES, 0.1, 0.0, 0.0);
        let streams = weir_ml::learn_online_parallel(job, points, "learner", learner, |p| p);
        let out = dir.join("out");
        streams
            .models
            .write_jsonl("write_models", out.join("models"));
        streams
            .predictions
            .write_jsonl("write_predictions", out.join("predictions"));
        Ok(())
    });
    if let Err(e) = result {
        eprintln!("job failed: {e}");
        std::process::exit(3);
    }
    std::process::exit(0);
}

/// A test directory with the labelled points: a noisy linear rule over pseudo-random
/// features.
struct Scenario {
    dir: tempfile::TempDir,
}

impl Scenario {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 11) as f32 / (1u64 << 53) as f32 * 2.0 - 1.0
        };
        let points: String = (0..POINTS)
            .map(|_| {
                let x: Vec<f32> = (0..FEATURES).map(|_| next()).collect();
                let score = x[0] + 0.5 * x[1] - x[2] + 0.2 * next();
                let point = LabeledPoint {
                    y: usize::from(score > 0.1 * x[3]),
                    x,
                };
                serde_json::to_string(&point).unwrap() + "\n"
            })
            .collect();
        std::fs::write(dir.path().join("points.jsonl"), points).unwrap();
        Scenario { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `weir launch -n 2 --restarts 1` of the child job at `-w 2`, with checkpoints or not.
    /// Record-count epochs that only fill (no latency bound within the run) make every epoch
    /// hold the same records in every run.
    fn launch(&self, checkpoints: bool) -> Child {
        let exe = std::env::current_exe().unwrap();
        let mut flags =
            "--epoch-records 250 --epoch-max-ms 600000 --peer-timeout-ms 3000".to_string();
        if checkpoints {
            flags += &format!(
                " --checkpoint-dir {} --checkpoint-interval 300ms",
                self.path("ckpt").display()
            );
        }
        let script = format!(
            r#"{CHILD_ARGS}="{flags} $*" exec {} --exact online_child --nocapture --test-threads 1"#,
            exe.display()
        );
        Command::new(WEIR)
            .args([
                "launch",
                "-n",
                "2",
                "-w",
                "2",
                "--restarts",
                "1",
                "--backoff-ms",
                "100",
            ])
            .args(["--", "sh", "-c", &script, "sh"])
            .env(CHILD_DIR, self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // A group of its own, which `finish` kills whole if it hangs.
            .process_group(0)
            .spawn()
            .unwrap()
    }

    fn manifests(&self) -> usize {
        std::fs::read_dir(self.path("ckpt"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().join("MANIFEST").exists())
            .count()
    }

    /// Every committed line of output `name`, with how often it was committed.
    fn committed(&self, name: &str) -> BTreeMap<String, usize> {
        committed_lines(&self.path("out").join(name))
    }
}

/// The differences between two committed outputs, a few of them, for a failure message.
fn differences(got: &BTreeMap<String, usize>, want: &BTreeMap<String, usize>) -> Vec<String> {
    want.keys()
        .chain(got.keys())
        .filter(|l| got.get(*l) != want.get(*l))
        .take(4)
        .map(|l| format!("{l}: {:?} times, expected {:?}", got.get(l), want.get(l)))
        .collect()
}

/// The merged model versions committed, in order.
fn versions(models: &BTreeMap<String, usize>) -> Vec<u64> {
    let mut versions: Vec<u64> = models
        .keys()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["version"]
                .as_u64()
                .unwrap()
        })
        .collect();
    versions.sort();
    versions
}

#[test]
fn learn_online_parallel_resumes_after_a_kill_with_the_model_of_an_uninterrupted_run() {
    let reference = Scenario::new();
    let (ok, log) = finish(reference.launch(false));
    assert!(ok, "{log}");
    let want_models = reference.committed("models");
    let want_predictions = reference.committed("predictions");
    let epochs = versions(&want_models);
    assert!(epochs.len() >= 10, "only {} merged versions", epochs.len());
    assert_eq!(epochs, (1..=epochs.len() as u64).collect::<Vec<_>>());
    assert_eq!(want_predictions.values().sum::<usize>(), POINTS as usize);

    let killed = Scenario::new();
    let launcher = killed.launch(true);
    let deadline = Instant::now() + Duration::from_secs(60);
    while killed.manifests() < 3 {
        assert!(
            Instant::now() < deadline,
            "no third checkpoint within a minute"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let pid: i32 = read_when_there(&killed.path("pid-1"))
        .trim()
        .parse()
        .unwrap();
    kill(pid);
    let (ok, log) = finish(launcher);
    assert!(ok, "{log}");
    assert!(
        log.contains("relaunching"),
        "the job was not relaunched:\n{log}"
    );
    assert!(
        log.contains("restoring from checkpoint"),
        "the relaunched job did not restore a checkpoint:\n{log}"
    );
    let got_models = killed.committed("models");
    let differ = differences(&got_models, &want_models);
    assert!(
        differ.is_empty(),
        "models differ:\n{}\n{log}",
        differ.join("\n")
    );
    let got_predictions = killed.committed("predictions");
    let differ = differences(&got_predictions, &want_predictions);
    assert!(
        differ.is_empty(),
        "predictions differ:\n{}\n{log}",
        differ.join("\n")
    );
}
