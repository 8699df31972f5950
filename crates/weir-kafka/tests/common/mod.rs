//! A real tansu broker on a free port, and the independent kafka-python client, for tests.
//! Both come from `bash scripts/install-kafka.sh`; a test fails with that hint when they are
//! missing.
#![allow(dead_code)]

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const INSTALL: &str = "run `bash scripts/install-kafka.sh` (it builds tansu into \
                       ~/.cache/weir/tansu-0.6.0 and kafka-python into ~/.cache/weir/kafka-venv)";

fn cache_dir() -> PathBuf {
    std::env::var_os("WEIR_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/weir"))
}

/// The tansu binary.
pub fn tansu() -> PathBuf {
    let path = std::env::var_os("WEIR_TANSU")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache_dir().join("tansu-0.6.0/bin/tansu"));
    assert!(
        path.exists(),
        "the tansu broker is not installed at {}: {INSTALL}",
        path.display()
    );
    path
}

/// The Python of the kafka-python venv.
pub fn python() -> PathBuf {
    let path = cache_dir().join("kafka-venv/bin/python");
    assert!(
        path.exists(),
        "kafka-python is not installed at {}: {INSTALL}",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A broker process, killed when dropped.
pub struct Broker {
    pub port: u16,
    storage: String,
    child: Option<Child>,
    _dir: Option<tempfile::TempDir>,
}

impl Broker {
    /// A broker keeping topics in memory.
    pub fn start() -> Broker {
        Self::start_with("memory://tansu/".into(), None)
    }

    /// A broker keeping topics in an SQLite file, so that it can restart without losing
    /// them (tansu opens `sqlite://NAME` relative to its working directory).
    pub fn start_persistent() -> Broker {
        let dir = tempfile::tempdir().unwrap();
        Self::start_with("sqlite://tansu.db".into(), Some(dir))
    }

    fn start_with(storage: String, dir: Option<tempfile::TempDir>) -> Broker {
        let mut b = Broker {
            port: free_port(),
            storage,
            child: None,
            _dir: dir,
        };
        b.spawn();
        b
    }

    fn spawn(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let child = Command::new(tansu())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", &self.storage])
            .current_dir(
                self._dir
                    .as_ref()
                    .map_or_else(std::env::temp_dir, |d| d.path().into()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tansu");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "tansu did not listen on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the broker (SIGKILL) and starts it again on the same port and storage.
    pub fn restart(&mut self, down: Duration) {
        self.kill();
        std::thread::sleep(down);
        self.spawn();
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn config(&self) -> weir_kafka::KafkaConfig {
        weir_kafka::KafkaConfig::new(self.bootstrap())
    }

    pub fn create_topic(&self, topic: &str, partitions: i32) {
        weir_kafka::create_topic(&self.config(), topic, partitions).expect("create topic");
    }

    /// Produces `lines` with kafka-python (`partition_field`: the JSON field naming each
    /// line's partition).
    pub fn produce_python(&self, topic: &str, lines: &[String], partition_field: Option<&str>) {
        let mut cmd = Command::new(python());
        cmd.arg(client_script())
            .args(["produce", &self.bootstrap(), topic]);
        if let Some(f) = partition_field {
            cmd.args(["--partition-field", f]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        {
            let mut stdin = child.stdin.take().unwrap();
            for l in lines {
                writeln!(stdin, "{l}").unwrap();
            }
        }
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "kafka-python produce failed");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            lines.len().to_string()
        );
    }

    /// Reads every message of `topic` (at least `count`) with kafka-python.
    pub fn consume_python(&self, topic: &str, count: usize) -> Vec<serde_json::Value> {
        let out = Command::new(python())
            .arg(client_script())
            .args([
                "consume",
                &self.bootstrap(),
                topic,
                &count.to_string(),
                "--timeout",
                "60",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "kafka-python consume failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `scripts/kafka_client.py`, from the workspace root (these helpers are shared by the
/// connector's tests and the root package's).
fn client_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|d| d.join("scripts/kafka_client.py"))
        .find(|p| p.exists())
        .expect("scripts/kafka_client.py in the workspace")
}
