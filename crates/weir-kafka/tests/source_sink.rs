//! The Kafka source and sink against a real broker (tansu) and an independent client
//! (kafka-python), at parallelism 1 and 2, with threads.

mod common;

use common::Broker;
use serde::{Deserialize, Serialize};
use weir_core::{execute, op, Collector, Config, DeadLetter};
use weir_kafka::{KafkaSink, KafkaSource, ReadKafka, StartingOffsets, WriteKafka};

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct Event {
    id: u64,
    p: i32,
}

fn events(n: u64, partitions: i32) -> Vec<String> {
    (0..n)
        .map(|id| {
            serde_json::to_string(&Event {
                id,
                p: (id % partitions as u64) as i32,
            })
            .unwrap()
        })
        .collect()
}

/// Reads a bounded topic and returns the records (and dead letters).
fn read_all(
    broker: &Broker,
    topic: &str,
    workers: usize,
    parallelism: usize,
) -> (Vec<(i32, i64, Event)>, Vec<DeadLetter>) {
    let out = Collector::new();
    let dead = Collector::new();
    let (o, d) = (out.clone(), dead.clone());
    let config = broker.config();
    let topic = topic.to_string();
    execute(Config::threads(workers), move |job| {
        let source = KafkaSource::builder(config.clone())
            .topics([topic.clone()])
            .bounded()
            .json::<Event>()
            .unwrap();
        job.read_kafka(op("events").parallelism(parallelism), source)
            .map("fields", |r| (r.partition, r.offset, r.value))
            .collect("out", &o);
        job.dead_letters("dead").collect("dead-sink", &d);
        Ok(())
    })
    .unwrap();
    (out.sorted(), dead.take())
}

#[test]
fn bounded_source_reads_every_message_once_at_parallelism_1_and_2() {
    let broker = Broker::start();
    broker.create_topic("events", 4);
    let lines = events(400, 4);
    broker.produce_python("events", &lines, Some("p"));
    let reference: Vec<Event> = (0..400)
        .map(|id| Event {
            id,
            p: (id % 4) as i32,
        })
        .collect();
    for (workers, parallelism) in [(1, 1), (2, 2), (2, 1), (3, 3)] {
        let (got, dead) = read_all(&broker, "events", workers, parallelism);
        assert!(dead.is_empty(), "{dead:?}");
        let mut values: Vec<Event> = got.iter().map(|(_, _, e)| e.clone()).collect();
        values.sort();
        assert_eq!(
            values, reference,
            "workers {workers} parallelism {parallelism}"
        );
        // Partitions and offsets are the broker's: each partition's offsets are 0..100.
        for p in 0..4 {
            let mut offsets: Vec<i64> = got
                .iter()
                .filter(|(q, _, _)| *q == p)
                .map(|(_, o, _)| *o)
                .collect();
            offsets.sort();
            assert_eq!(offsets, (0..100).collect::<Vec<i64>>());
            assert!(got
                .iter()
                .filter(|(q, _, _)| *q == p)
                .all(|(_, _, e)| e.p == p));
        }
    }
}

#[test]
fn undecodable_messages_become_dead_letters_naming_topic_partition_and_offset() {
    let broker = Broker::start();
    broker.create_topic("mixed", 1);
    let lines: Vec<String> = vec![
        r#"{"id":1,"p":0}"#.into(),
        "not json".into(),
        r#"{"id":"x","p":0}"#.into(),
        r#"{"id":4,"p":0}"#.into(),
    ];
    broker.produce_python("mixed", &lines, None);
    let (got, dead) = read_all(&broker, "mixed", 2, 2);
    let ids: Vec<u64> = got.iter().map(|(_, _, e)| e.id).collect();
    assert_eq!(ids, vec![1, 4]);
    let mut locations: Vec<&str> = dead.iter().map(|d| d.location.as_str()).collect();
    locations.sort();
    assert_eq!(locations, vec!["mixed/0@1", "mixed/0@2"]);
    assert!(dead
        .iter()
        .all(|d| d.operator == "events" && d.reason.contains("invalid JSON")));
    assert!(dead.iter().any(|d| d.raw == "not json"));
}

#[test]
fn sink_writes_json_with_keys_partitions_and_headers_that_another_client_reads() {
    let broker = Broker::start();
    broker.create_topic("out", 3);
    let config = broker.config();
    execute(Config::threads(2), move |job| {
        let events: Vec<Event> = (0..300)
            .map(|id| Event {
                id,
                p: (id % 3) as i32,
            })
            .collect();
        let sink = KafkaSink::builder(config.clone(), "out")
            .json::<Event>()
            .key(|e| Some(format!("k{}", e.id).into_bytes()))
            .partition(|e| Some(e.p))
            .header("producer", "weir");
        job.from_vec(op("events").parallelism(2), events)
            .write_kafka(op("to-kafka").parallelism(2), sink);
        Ok(())
    })
    .unwrap();
    let got = broker.consume_python("out", 300);
    assert_eq!(got.len(), 300);
    let mut ids: Vec<u64> = got
        .iter()
        .map(|m| {
            let e: Event = serde_json::from_str(m["value"].as_str().unwrap()).unwrap();
            assert_eq!(m["partition"].as_i64().unwrap() as i32, e.p);
            assert_eq!(m["key"].as_str().unwrap(), format!("k{}", e.id));
            assert_eq!(m["headers"]["producer"], "weir");
            e.id
        })
        .collect();
    ids.sort();
    assert_eq!(ids, (0..300).collect::<Vec<u64>>());
}

#[test]
fn topic_to_topic_pipeline_with_pattern_and_timestamps() {
    let broker = Broker::start();
    broker.create_topic("in-a", 2);
    broker.create_topic("in-b", 2);
    broker.create_topic("doubled", 2);
    broker.produce_python("in-a", &events(50, 2), Some("p"));
    broker.produce_python("in-b", &events(50, 2), Some("p"));
    let config = broker.config();
    let stamps = Collector::new();
    let s = stamps.clone();
    execute(Config::threads(2), move |job| {
        let source = KafkaSource::builder(config.clone())
            .topic_pattern("in-.*")
            .starting_offsets(StartingOffsets::Earliest)
            .bounded()
            .json::<Event>()
            .unwrap();
        let records = job.read_kafka(op("in").parallelism(2), source);
        records
            .clone()
            .map("stamp", |r| {
                r.timestamp.is_some_and(|t| t > 1_600_000_000_000)
            })
            .collect("stamps", &s);
        records
            .map("double", |r| Event {
                id: r.value.id * 2,
                p: r.value.p,
            })
            .write_kafka(
                op("out").parallelism(2),
                KafkaSink::builder(config.clone(), "doubled").json(),
            );
        Ok(())
    })
    .unwrap();
    assert_eq!(stamps.len(), 100);
    assert!(
        stamps.take().into_iter().all(|ok| ok),
        "every record carries its Kafka timestamp"
    );
    let got = broker.consume_python("doubled", 100);
    let mut ids: Vec<u64> = got
        .iter()
        .map(|m| {
            serde_json::from_str::<Event>(m["value"].as_str().unwrap())
                .unwrap()
                .id
        })
        .collect();
    ids.sort();
    let mut want: Vec<u64> = (0..50).chain(0..50).map(|i| i * 2).collect();
    want.sort();
    assert_eq!(ids, want);
}

#[test]
fn unreachable_broker_fails_the_job_naming_the_address_in_bounded_time() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = weir_kafka::KafkaConfig::new(format!("127.0.0.1:{port}"))
        .timeout(std::time::Duration::from_secs(2));
    let err = execute(Config::threads(1), move |job| {
        let source = KafkaSource::builder(config.clone())
            .topics(["t"])
            .bounded()
            .bytes()
            .unwrap();
        job.read_kafka("t", source)
            .collect("out", &Collector::new());
        Ok(())
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(err.contains("not reachable"), "{err}");
}

#[test]
fn missing_topic_is_an_error_naming_it() {
    let broker = Broker::start();
    let config = broker.config();
    let err = execute(Config::threads(1), move |job| {
        let source = KafkaSource::builder(config.clone())
            .topics(["nope"])
            .bounded()
            .bytes()
            .unwrap();
        job.read_kafka("t", source)
            .collect("out", &Collector::new());
        Ok(())
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("`nope` does not exist"), "{err}");
}

/// Commits `offset` of partition 0 of `topic` for `group`, with another client.
fn commit_offset(broker: &Broker, topic: &str, group: &str, offset: i64) {
    use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
    use rdkafka::{ClientConfig, Offset, TopicPartitionList};
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", group)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(offset))
        .unwrap();
    c.commit(&tpl, CommitMode::Sync).unwrap();
}

#[test]
fn starts_at_committed_offsets_even_inside_a_record_batch() {
    // kafka-python sends the 500 lines in a few large batches, so offset 137 is inside one:
    // tansu answers a fetch there with the next batch, which the source detects and undoes.
    let broker = Broker::start();
    broker.create_topic("log", 1);
    broker.produce_python("log", &events(500, 1), None);
    commit_offset(&broker, "log", "readers", 137);
    let out = Collector::new();
    let o = out.clone();
    let config = broker.config();
    execute(Config::threads(2), move |job| {
        let source = KafkaSource::builder(config.clone())
            .topics(["log"])
            .group_id("readers")
            .starting_offsets(StartingOffsets::Committed {
                or: Box::new(StartingOffsets::Earliest),
            })
            .bounded()
            .json::<Event>()
            .unwrap();
        job.read_kafka(op("log").parallelism(2), source)
            .map("id", |r| r.value.id)
            .collect("out", &o);
        Ok(())
    })
    .unwrap();
    assert_eq!(out.sorted(), (137..500).collect::<Vec<u64>>());
}

#[test]
fn starts_at_a_timestamp_and_the_earliest() {
    let broker = Broker::start();
    broker.create_topic("ts", 2);
    broker.produce_python("ts", &events(40, 2), Some("p"));
    std::thread::sleep(std::time::Duration::from_millis(50));
    let cut = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    std::thread::sleep(std::time::Duration::from_millis(50));
    let later: Vec<String> = (100..120)
        .map(|id| {
            serde_json::to_string(&Event {
                id,
                p: (id % 2) as i32,
            })
            .unwrap()
        })
        .collect();
    broker.produce_python("ts", &later, Some("p"));
    let read = |starting: StartingOffsets| {
        let out = Collector::new();
        let o = out.clone();
        let config = broker.config();
        execute(Config::threads(1), move |job| {
            let source = KafkaSource::builder(config.clone())
                .topics(["ts"])
                .starting_offsets(starting.clone())
                .bounded()
                .json::<Event>()
                .unwrap();
            job.read_kafka("ts", source)
                .map("id", |r| r.value.id)
                .collect("out", &o);
            Ok(())
        })
        .unwrap();
        out.sorted()
    };
    assert_eq!(
        read(StartingOffsets::Timestamp(cut)),
        (100..120).collect::<Vec<u64>>()
    );
    assert_eq!(read(StartingOffsets::Earliest).len(), 60);
}

#[test]
fn kafka_timestamps_give_per_partition_watermarks() {
    use std::time::Duration;
    use weir_core::time::Windows;
    use weir_kafka::{OutgoingMessage, TopicWriter};
    // Partition 0's records are ten seconds ahead of partition 1's; one source instance
    // reads both, so without a watermark per partition most of partition 1 would be late.
    let broker = Broker::start();
    broker.create_topic("clicks", 2);
    let mut w = TopicWriter::new(&broker.config(), "clicks").unwrap();
    // (A zero timestamp would mean "now" to the producer.)
    let base = 1_600_000_000_000i64;
    for i in 0..100i64 {
        for (p, ts) in [(0, base + 10_000 + i * 100), (1, base + i * 100)] {
            let value = format!(r#"{{"id":{i},"p":{p}}}"#);
            let m = OutgoingMessage {
                value: value.as_bytes(),
                partition: Some(p),
                timestamp: Some(ts),
                ..Default::default()
            };
            w.send(&m).unwrap();
        }
    }
    w.finish().unwrap();
    for parallelism in [1, 2] {
        let (counts, late) = (Collector::new(), Collector::new());
        let (c, l) = (counts.clone(), late.clone());
        let config = broker.config();
        execute(Config::threads(2), move |job| {
            let source = KafkaSource::builder(config.clone())
                .topics(["clicks"])
                .bounded()
                .json::<Event>()?;
            let strategy = source.watermarks(Duration::from_millis(500))?;
            let (counts, late) = job
                .read_kafka(op("clicks").parallelism(parallelism), source)
                .assign_timestamps(op("time").parallelism(parallelism), strategy)
                .key_by(|r: &weir_kafka::KafkaRecord<Event>| r.partition)
                .window(Windows::tumbling(Duration::from_secs(1)))
                .count("window")
                .with_late_data();
            counts
                .map("n", |r| (r.key, r.window.start, r.value))
                .collect("counts", &c);
            late.collect("late", &l);
            Ok(())
        })
        .unwrap();
        let late: Vec<(i32, i64)> = late
            .take()
            .into_iter()
            .map(|s| (s.data.partition, s.ts))
            .collect();
        assert!(late.is_empty(), "parallelism {parallelism}: {late:?}");
        let counts = counts.sorted();
        assert_eq!(counts.len(), 20, "{counts:?}");
        assert!(counts.iter().all(|(_, _, n)| *n == 10), "{counts:?}");
    }
}

/// The partition positions (`next`) in the newest complete checkpoint under `dir`, read from
/// its worker files (the source's splits are JSON inside them).
fn checkpointed_positions(dir: &std::path::Path) -> Vec<(i32, i64)> {
    let newest = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("MANIFEST").exists())
        .max()
        .expect("a complete checkpoint");
    let mut positions = Vec::new();
    for file in std::fs::read_dir(&newest).unwrap().flatten() {
        let bytes = std::fs::read(file.path()).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for (at, _) in text.match_indices("{\"topic\"") {
            let end = text[at..].find('}').unwrap() + at + 1;
            let v: serde_json::Value = serde_json::from_str(&text[at..end]).unwrap();
            positions.push((
                v["partition"].as_i64().unwrap() as i32,
                v["next"].as_i64().unwrap(),
            ));
        }
    }
    positions.sort_unstable();
    positions
}

fn committed_ids(out: &std::path::Path) -> Vec<u64> {
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(out).into_iter().flatten().flatten() {
        if entry.path().extension().and_then(|e| e.to_str()) == Some("jsonl") {
            for line in std::fs::read_to_string(entry.path()).unwrap().lines() {
                ids.push(line.parse().unwrap());
            }
        }
    }
    ids.sort_unstable();
    ids
}

#[test]
fn a_restored_unbounded_source_goes_on_from_its_checkpoint() {
    let broker = Broker::start();
    broker.create_topic("stream", 2);
    broker.produce_python("stream", &events(400, 2), Some("p"));
    let dir = tempfile::tempdir().unwrap();
    let (ckpt, out) = (dir.path().join("ckpt"), dir.path().join("out"));
    let config = || {
        Config::threads(2)
            .with_checkpoints(
                weir_core::CheckpointConfig::new(&ckpt)
                    .interval(std::time::Duration::from_millis(30)),
            )
            .with_verbose(false)
    };
    // Run 1: unbounded, paced; fails once three checkpoints completed.
    let (kafka, watched, o) = (broker.config(), ckpt.clone(), out.clone());
    let failed = execute(config(), move |job| {
        let source = KafkaSource::builder(kafka.clone())
            .topics(["stream"])
            .json::<Event>()?;
        let watched = watched.clone();
        job.read_kafka(op("stream").parallelism(2).rate(1_000.0), source)
            .map("id", |r| r.value.id)
            .try_map_batch("fail", move |batch: Vec<u64>| {
                let complete = std::fs::read_dir(&watched)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .filter(|e| e.path().join("MANIFEST").exists())
                    .count();
                if complete >= 3 {
                    return Err("stopped".to_string());
                }
                Ok(batch)
            })
            .write_jsonl("write", &o);
        Ok(())
    });
    assert!(failed.is_err());
    let positions = checkpointed_positions(&ckpt);
    assert_eq!(positions.len(), 2, "{positions:?}");
    let read: i64 = positions.iter().map(|(_, next)| next).sum();
    assert!(read < 400, "the failure came before the end: {positions:?}");
    // Run 2: restored at parallelism 1, unbounded, stops after what is left.
    let (kafka, o) = (broker.config(), out.clone());
    execute(config(), move |job| {
        let source = KafkaSource::builder(kafka.clone())
            .topics(["stream"])
            .stop_after((400 - read) as u64)
            .json::<Event>()?;
        job.read_kafka(op("stream").parallelism(1), source)
            .map("id", |r| r.value.id)
            .try_map_batch("fail", |batch: Vec<u64>| Ok::<_, String>(batch))
            .write_jsonl("write", &o);
        Ok(())
    })
    .unwrap();
    assert_eq!(committed_ids(&out), (0..400).collect::<Vec<u64>>());
}

#[test]
fn latest_reads_only_what_is_produced_after_the_start() {
    let broker = Broker::start();
    broker.create_topic("live", 2);
    broker.produce_python("live", &events(300, 2), Some("p"));
    let out = Collector::new();
    let o = out.clone();
    let config = broker.config();
    let job = std::thread::spawn(move || {
        execute(Config::threads(2), move |job| {
            let source = KafkaSource::builder(config.clone())
                .topics(["live"])
                .starting_offsets(StartingOffsets::Latest)
                .stop_after(10)
                .json::<Event>()?;
            job.read_kafka(op("live").parallelism(2), source)
                .map("id", |r| r.value.id)
                .collect("out", &o);
            Ok(())
        })
    });
    // New records, produced until the job has read ten per instance.
    let mut next = 1_000;
    while !job.is_finished() {
        let batch: Vec<String> = (next..next + 4)
            .map(|id| {
                serde_json::to_string(&Event {
                    id,
                    p: (id % 2) as i32,
                })
                .unwrap()
            })
            .collect();
        broker.produce_python("live", &batch, Some("p"));
        next += 4;
    }
    job.join().unwrap().unwrap();
    let got = out.sorted();
    assert_eq!(got.len(), 20);
    assert!(got.iter().all(|id| *id >= 1_000), "{got:?}");
}

#[test]
fn new_topics_are_discovered_while_running_and_offsets_committed() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{ClientConfig, Offset, TopicPartitionList};
    let broker = Broker::start();
    broker.create_topic("metrics-a", 1);
    broker.produce_python("metrics-a", &events(10, 1), None);
    let out = Collector::new();
    let o = out.clone();
    let config = broker.config();
    let dir = tempfile::tempdir().unwrap();
    let checkpoints =
        weir_core::CheckpointConfig::new(dir.path()).interval(std::time::Duration::from_millis(50));
    let job = std::thread::spawn(move || {
        execute(
            Config::threads(2).with_checkpoints(checkpoints),
            move |job| {
                let source = KafkaSource::builder(config.clone())
                    .topic_pattern("metrics-.*")
                    .group_id("watchers")
                    .partition_discovery(std::time::Duration::from_millis(100))
                    .stop_after(20)
                    .json::<Event>()?;
                job.read_kafka(op("metrics").parallelism(1), source)
                    .map("where", |r| (r.topic, r.value.id))
                    .collect("out", &o);
                Ok(())
            },
        )
    });
    // A topic created while the job runs is found by the pattern and read from its start.
    std::thread::sleep(std::time::Duration::from_millis(300));
    broker.create_topic("metrics-b", 2);
    broker.produce_python("metrics-b", &events(10, 2), Some("p"));
    job.join().unwrap().unwrap();
    let got = out.sorted();
    let from_b = got.iter().filter(|(t, _)| t == "metrics-b").count();
    assert_eq!((got.len(), from_b), (20, 10), "{got:?}");
    // The offsets read are committed to the group (for monitoring tools).
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "watchers")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition("metrics-a", 0);
    let committed = c
        .committed_offsets(tpl, std::time::Duration::from_secs(10))
        .unwrap();
    assert_eq!(committed.elements()[0].offset(), Offset::Offset(10));
}

/// A partition without traffic does not hold the job back: with record-count epochs, the
/// instance reading it used to keep its empty epoch open, so no epoch of the other
/// partition's records completed (a keyed count emitted nothing) until the quiet partition
/// got messages of its own.
#[test]
fn a_quiet_partition_does_not_hold_back_what_the_others_read() {
    let broker = Broker::start();
    broker.create_topic("quiet", 2);
    let n = 2000u64;
    let partition = |p: i64| -> Vec<String> {
        (0..n)
            .map(|i| format!(r#"{{"id":{},"p":{p}}}"#, i * 2 + p as u64))
            .collect()
    };
    broker.produce_python("quiet", &partition(0), Some("p"));
    let counts: std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<u64, u64>>> =
        std::sync::Arc::default();
    let seen = std::sync::Arc::clone(&counts);
    let config = broker.config();
    let job = std::thread::spawn(move || {
        let config_job =
            weir_core::Config::threads(2).with_epochs(weir_core::EpochPolicy::Records(100));
        execute(config_job, move |job| {
            let source = KafkaSource::builder(config.clone())
                .topics(["quiet"])
                .stop_after(n)
                .json::<Event>()
                .unwrap();
            let seen = std::sync::Arc::clone(&seen);
            job.read_kafka(op("events").parallelism(2), source)
                .key_by(|r: &weir_kafka::KafkaRecord<Event>| r.value.id % 4)
                .count("count")
                .for_each("last", move |(key, count)| {
                    seen.lock().unwrap().insert(key, count);
                });
            Ok(())
        })
    });
    // The counts complete while partition 1 is quiet.
    let total = || counts.lock().unwrap().values().sum::<u64>();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while total() < n {
        assert!(
            std::time::Instant::now() < deadline && !job.is_finished(),
            "partition 0's records were counted only to {} of {n} while partition 1 was quiet",
            total()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Then partition 1 gets its messages, and each instance ends after `n`.
    broker.produce_python("quiet", &partition(1), Some("p"));
    job.join().unwrap().unwrap();
    assert_eq!(total(), 2 * n);
}
