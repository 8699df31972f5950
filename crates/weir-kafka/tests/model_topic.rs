//! Model versions through a topic: bytes or a file URI, name and version in headers; bad
//! messages become dead letters naming topic/partition@offset.

mod common;

use common::Broker;
use weir_core::{execute, op, Collector, Config};
use weir_kafka::{
    publish_model, ModelTopic, OutgoingMessage, PublishedModel, ReadModels, TopicWriter,
    NAME_HEADER, VERSION_HEADER,
};
use weir_onnx::ModelSource;

#[test]
fn model_messages_become_updates_and_bad_ones_dead_letters() {
    let broker = Broker::start();
    broker.create_topic("models", 1);
    let config = broker.config();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.onnx");
    std::fs::write(&file, b"model two").unwrap();
    publish_model(
        &config,
        "models",
        "m",
        1,
        PublishedModel::Bytes(b"model one"),
    )
    .unwrap();
    let mut w = TopicWriter::new(&config, "models").unwrap();
    let bad: [&[(&str, &[u8])]; 3] = [
        &[(NAME_HEADER, b"m")],
        &[(NAME_HEADER, b"m"), (VERSION_HEADER, b"two")],
        &[(VERSION_HEADER, b"3")],
    ];
    for headers in bad {
        w.send(&OutgoingMessage {
            value: b"x",
            headers,
            ..Default::default()
        })
        .unwrap();
    }
    w.finish().unwrap();
    let uri = format!("file://{}", file.display());
    publish_model(&config, "models", "m", 2, PublishedModel::Uri(&uri)).unwrap();
    publish_model(
        &config,
        "models",
        "m",
        3,
        PublishedModel::Uri("file:///nonexistent/x.onnx"),
    )
    .unwrap();
    let (updates, dead) = (Collector::new(), Collector::new());
    let (u, d) = (updates.clone(), dead.clone());
    execute(Config::threads(2), move |job| {
        job.read_models(
            "models",
            ModelTopic::new(config.clone(), "models").stop_after_versions(6),
        )
        .collect("updates", &u);
        job.dead_letters("dead").collect(op("dead-sink"), &d);
        Ok(())
    })
    .unwrap();
    let updates = updates.take();
    let mut got: Vec<(u64, Vec<u8>)> = updates
        .iter()
        .map(|u| match &u.source {
            ModelSource::Bytes(b) => (u.version, b.clone()),
            other => panic!("{other:?}"),
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![(1, b"model one".to_vec()), (2, b"model two".to_vec())]
    );
    let mut dead: Vec<(String, String)> = dead
        .take()
        .into_iter()
        .map(|d| (d.location, d.reason))
        .collect();
    dead.sort();
    assert_eq!(dead.len(), 4, "{dead:?}");
    assert_eq!(dead[0].0, "models/0@1");
    assert!(dead[0].1.contains("weir-model-version"), "{dead:?}");
    assert!(
        dead[1].1.contains("expected an unsigned integer"),
        "{dead:?}"
    );
    assert!(dead[2].1.contains("weir-model-name"), "{dead:?}");
    assert_eq!(dead[3].0, "models/0@5");
    assert!(dead[3].1.contains("/nonexistent/x.onnx"), "{dead:?}");
}
