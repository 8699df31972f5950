//! Directory file sinks and the output of an earlier run: refused by default, replaced with
//! overwrite (Flink's `WriteMode`), and never a current instance's file deleted.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use weir::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct Row {
    id: u64,
    run: u32,
}

/// Writes `ids` of run `run` into `dir` with a sink of `instances` instances.
fn write(
    config: Config,
    dir: &Path,
    csv: bool,
    sink: Op,
    run: u32,
    ids: std::ops::Range<u64>,
) -> Result<JobReport, WeirError> {
    let dir = dir.to_path_buf();
    execute(config.with_verbose(false), move |job| {
        let rows = job.generate(op("gen").parallelism(1), Some(ids.end - ids.start), {
            let start = ids.start;
            move |k| Row { id: start + k, run }
        });
        if csv {
            rows.write_csv(sink.clone(), &dir);
        } else {
            rows.write_jsonl(sink.clone(), &dir);
        }
        Ok(())
    })
}

fn read_back(dir: &Path, csv: bool) -> Vec<Row> {
    let out = Collector::new();
    let (sink, dir) = (out.clone(), dir.to_path_buf());
    execute(Config::threads(2).with_verbose(false), move |job| {
        let rows: DataStream<Row> = if csv {
            job.read_csv("read", &dir)
        } else {
            job.read_jsonl("read", &dir)
        };
        rows.collect("out", &sink);
        Ok(())
    })
    .unwrap();
    out.sorted()
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn rerunning_at_lower_parallelism_is_refused_then_replaced_with_overwrite() {
    for csv in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("out");
        let ext = if csv { "csv" } else { "jsonl" };
        write(
            Config::threads(2),
            &dir,
            csv,
            op("write").parallelism(2),
            1,
            0..100,
        )
        .unwrap();
        assert_eq!(
            names(&dir),
            [format!("part-00000.{ext}"), format!("part-00001.{ext}")]
        );

        // Again at parallelism 1 into the same directory: refused, nothing changed.
        let err = write(
            Config::threads(1),
            &dir,
            csv,
            op("write").parallelism(1),
            2,
            500..540,
        )
        .unwrap_err();
        match &err {
            WeirError::OutputExists {
                operator,
                dir: d,
                found,
            } => {
                assert_eq!(operator, "write");
                assert_eq!(d, &dir);
                assert!(found.contains("part-0000"), "{found}");
            }
            other => panic!("expected OutputExists, got {other}"),
        }
        let text = err.to_string();
        assert!(
            text.contains(&*dir.to_string_lossy()) && text.contains("--overwrite"),
            "{text}"
        );
        assert_eq!(read_back(&dir, csv).len(), 100);

        // With overwrite: only the new part file remains, and a reader sees exactly run 2.
        write(
            Config::threads(1).with_overwrite(true),
            &dir,
            csv,
            op("write").parallelism(1),
            2,
            500..540,
        )
        .unwrap();
        assert_eq!(names(&dir), [format!("part-00000.{ext}")]);
        let rows = read_back(&dir, csv);
        assert_eq!(
            rows,
            (500..540).map(|id| Row { id, run: 2 }).collect::<Vec<_>>()
        );
    }
}

#[test]
fn overwrite_can_be_asked_per_sink_and_on_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("out");
    write(
        Config::threads(3),
        &dir,
        false,
        op("write").parallelism(3),
        1,
        0..90,
    )
    .unwrap();
    // Stale leftovers of other kinds: a subdirectory a reader would descend into, an
    // in-progress file of a crashed run.
    std::fs::create_dir_all(dir.join("old/nested")).unwrap();
    std::fs::write(
        dir.join("old/nested/part-00009.jsonl"),
        "{\"id\":9,\"run\":0}\n",
    )
    .unwrap();
    std::fs::write(dir.join("part-00007.jsonl.inprogress"), "junk").unwrap();
    write(
        Config::threads(2),
        &dir,
        false,
        op("write").parallelism(2).overwrite(true),
        2,
        0..10,
    )
    .unwrap();
    assert_eq!(names(&dir), ["part-00000.jsonl", "part-00001.jsonl"]);
    assert_eq!(read_back(&dir, false).len(), 10);

    let args = ["prog", "-w", "2", "--overwrite"].map(String::from);
    let config = Config::from_args(args).unwrap();
    assert!(config.overwrite);
    write(config, &dir, false, op("write").parallelism(1), 3, 0..5).unwrap();
    assert_eq!(
        read_back(&dir, false),
        (0..5).map(|id| Row { id, run: 3 }).collect::<Vec<_>>()
    );
    // A sink can also refuse explicitly, whatever the job says.
    let err = write(
        Config::threads(1).with_overwrite(true),
        &dir,
        false,
        op("write").overwrite(false),
        4,
        0..5,
    )
    .unwrap_err();
    assert!(matches!(err, WeirError::OutputExists { .. }), "{err}");
}

#[test]
fn an_empty_or_new_directory_needs_no_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("new/deeper");
    write(Config::threads(2), &dir, false, op("write"), 1, 0..10).unwrap();
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    write(Config::threads(2), &empty, true, op("write"), 1, 0..10).unwrap();
    assert_eq!(read_back(&empty, true).len(), 10);
}

/// Many instances overwriting a shared directory many times, at changing parallelism:
/// no instance deletes another current instance's file, so every run's output is whole.
#[test]
fn concurrent_instances_never_delete_each_others_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir: PathBuf = tmp.path().join("out");
    for (run, p) in [(1u32, 4usize), (2, 2), (3, 4), (4, 3), (5, 1), (6, 4)] {
        write(
            Config::threads(4).with_overwrite(true),
            &dir,
            false,
            op("write").parallelism(p),
            run,
            0..2000,
        )
        .unwrap();
        let parts: Vec<String> = (0..p).map(|i| format!("part-{i:05}.jsonl")).collect();
        assert_eq!(names(&dir), parts, "run {run}");
        let rows = read_back(&dir, false);
        assert_eq!(
            rows,
            (0..2000).map(|id| Row { id, run }).collect::<Vec<_>>(),
            "run {run}"
        );
    }
}

#[test]
fn a_stale_default_dead_letter_file_is_removed_when_a_run_has_none() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.jsonl");
    let out = tmp.path().join("out");
    let errors = tmp.path().join("out.errors.jsonl");
    let run = |text: &str| {
        std::fs::write(&input, text).unwrap();
        let (i, o) = (input.clone(), out.clone());
        execute(
            Config::threads(1).with_verbose(false).with_overwrite(true),
            move |job| {
                job.read_jsonl::<Row>("read", &i).write_jsonl("write", &o);
                Ok(())
            },
        )
        .unwrap()
    };
    assert_eq!(run("{\"id\":1,\"run\":1}\nbroken\n").dead_letters, 1);
    assert!(errors.exists());
    assert_eq!(run("{\"id\":1,\"run\":1}\n").dead_letters, 0);
    assert!(
        !errors.exists(),
        "the first run's dead letters are still there"
    );
}

const SHARED_ENV: &str = "WEIR_TEST_SHARED_OUTPUT";

/// One process of `two_processes_overwrite_a_shared_directory`: `RUN P DIR CLUSTER-ARGS…` in
/// the environment. Run directly, it overwrites a directory of its own at changing
/// parallelism in one process.
#[test]
fn shared_output_child() {
    let Ok(spec) = std::env::var(SHARED_ENV) else {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("out");
        for (run, p) in [(1, 4), (2, 3)] {
            let config = Config::threads(4).with_overwrite(true);
            write(config, &dir, false, op("write").parallelism(p), run, 0..100).unwrap();
            assert_eq!(names(&dir).len(), p);
            assert_eq!(read_back(&dir, false).len(), 100);
        }
        return;
    };
    let mut words = spec.split(' ');
    let run: u32 = words.next().unwrap().parse().unwrap();
    let p: usize = words.next().unwrap().parse().unwrap();
    let dir = PathBuf::from(words.next().unwrap());
    let argv = std::iter::once("child".to_string()).chain(words.map(String::from));
    let config = Config::from_args(argv).unwrap();
    assert!(config.overwrite);
    write(
        config,
        &dir,
        false,
        op("write").parallelism(p),
        run,
        0..3000,
    )
    .unwrap();
}

/// Two processes of one job share the output directory (as on one machine, or a shared
/// file system): each process's cleaner removes stale files, and neither deletes a file of
/// the other's current instances.
#[test]
fn two_processes_overwrite_a_shared_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("out");
    std::fs::create_dir_all(dir.join("stale/sub")).unwrap();
    std::fs::write(dir.join("part-00009.jsonl"), "{\"id\":1,\"run\":0}\n").unwrap();
    for (run, p) in [(1u32, 4usize), (2, 2), (3, 3), (4, 1)] {
        // Listeners bound here and inherited by the processes: no port race.
        let cluster = weir::LocalCluster::bind(2).unwrap();
        let addresses = cluster.addresses().join(",");
        let mut children: Vec<std::process::Child> = (0..2)
            .map(|process| {
                let spec = format!(
                    "{run} {p} {} -w 2 -n 2 -p {process} --addresses {addresses} --overwrite --quiet",
                    dir.display()
                );
                let mut command = std::process::Command::new(std::env::current_exe().unwrap());
                command
                    .args(["--exact", "shared_output_child", "--nocapture", "--test-threads", "1"])
                    .env(SHARED_ENV, spec);
                cluster.pass_listener(process, &mut command);
                command.spawn().unwrap()
            })
            .collect();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        for (process, child) in children.iter_mut().enumerate() {
            let status = loop {
                if let Some(status) = child.try_wait().unwrap() {
                    break status;
                }
                if std::time::Instant::now() > deadline {
                    let _ = child.kill();
                    panic!("process {process} of run {run} did not exit in time");
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            };
            assert!(status.success(), "process {process} of run {run}: {status}");
        }
        let parts: Vec<String> = (0..p).map(|i| format!("part-{i:05}.jsonl")).collect();
        assert_eq!(names(&dir), parts, "run {run}");
        let rows = read_back(&dir, false);
        assert_eq!(
            rows,
            (0..3000).map(|id| Row { id, run }).collect::<Vec<_>>(),
            "run {run}"
        );
    }
}
