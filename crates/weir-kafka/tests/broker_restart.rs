//! Faults: the broker (tansu with SQLite storage) is SIGKILLed and restarted while a job
//! reads one topic and writes another; the job reconnects and nothing is lost (the sink is
//! at-least-once: duplicates are allowed, gaps are not).

mod common;

use std::time::Duration;

use common::Broker;
use weir_core::{execute, op, Config};
use weir_kafka::{KafkaSink, KafkaSource, ReadKafka, WriteKafka};

const EVENTS: u64 = 3_000;

#[test]
fn broker_killed_and_restarted_mid_job_loses_nothing() {
    let mut broker = Broker::start_persistent();
    broker.create_topic("in", 2);
    broker.create_topic("out", 2);
    let lines: Vec<String> = (0..EVENTS)
        .map(|id| format!(r#"{{"id":{id},"p":{}}}"#, id % 2))
        .collect();
    broker.produce_python("in", &lines, Some("p"));
    let config = broker.config();
    let job = std::thread::spawn(move || {
        execute(Config::threads(2), move |job| {
            let source = KafkaSource::builder(config.clone())
                .topics(["in"])
                .bounded()
                .json::<serde_json::Value>()
                .unwrap();
            job.read_kafka(op("in").parallelism(2).rate(1_500.0), source)
                .map("value", |r| r.value)
                .write_kafka(
                    op("out").parallelism(2),
                    KafkaSink::builder(config.clone(), "out").json(),
                );
            Ok(())
        })
    });
    std::thread::sleep(Duration::from_millis(700));
    broker.restart(Duration::from_millis(1_500));
    let report = job.join().unwrap();
    assert!(report.is_ok(), "the job failed: {report:?}");
    let got = broker.consume_python("out", EVENTS as usize);
    let mut ids: Vec<u64> = got
        .iter()
        .map(|m| {
            let v: serde_json::Value = serde_json::from_str(m["value"].as_str().unwrap()).unwrap();
            v["id"].as_u64().unwrap()
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids, (0..EVENTS).collect::<Vec<u64>>());
}
