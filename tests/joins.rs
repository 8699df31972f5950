//! Joins are incremental: the changelog of each epoch is exactly the change the epoch's
//! input updates cause.

use weir::prelude::*;

/// Runs left and inner joins of two tiny streams, one record per epoch each, and returns
/// each join's changelog grouped by epoch (`+`/`-` lines, sorted within an epoch).
fn changelogs(workers: usize, p: usize) -> (Vec<Vec<String>>, Vec<Vec<String>>) {
    let left_out = Collector::new();
    let inner_out = Collector::new();
    let (l, i) = (left_out.clone(), inner_out.clone());
    execute(Config::threads(workers).with_verbose(false), move |job| {
        let one_per_epoch = |name: &str| op(name).parallelism(1).epochs(EpochPolicy::Records(1));
        let users = job.from_vec(
            one_per_epoch("users"),
            vec![(1u32, "a".to_string()), (2, "b".to_string())],
        );
        let orders = job.from_vec(
            one_per_epoch("orders"),
            vec![(2u32, "x".to_string()), (1, "y".to_string())],
        );
        let by_epoch = |s: DataStream<'_, Change<(u32, String, Option<String>)>>,
                        name: &str,
                        out: &Collector<Vec<String>>| {
            s.map_batch(
                op(format!("{name}/epochs")).parallelism(1),
                |changes: Vec<Change<_>>| {
                    let mut lines: Vec<String> = changes
                        .into_iter()
                        .map(|c| format!("{} {:?}", if c.diff > 0 { "+" } else { "-" }, c.data))
                        .collect();
                    lines.sort();
                    vec![lines]
                },
            )
            .collect(op(format!("{name}/out")).parallelism(1), out);
        };
        by_epoch(
            users
                .clone()
                .left_join(op("left").parallelism(p), orders.clone()),
            "left",
            &l,
        );
        let inner = users.join(op("inner").parallelism(p), orders).map(
            "as_option",
            |c: Change<(u32, String, String)>| {
                let (k, u, o) = c.data;
                Change {
                    data: (k, u, Some(o)),
                    diff: c.diff,
                }
            },
        );
        by_epoch(inner, "inner", &i);
        Ok(())
    })
    .unwrap();
    (left_out.take(), inner_out.take())
}

#[test]
fn left_join_retracts_the_unmatched_row_when_the_match_arrives() {
    for (workers, p) in [(1, 1), (2, 1), (2, 2)] {
        let (left, inner) = changelogs(workers, p);
        assert_eq!(
            left,
            vec![
                vec![r#"+ (1, "a", None)"#.to_string()],
                vec![
                    r#"+ (1, "a", Some("y"))"#.to_string(),
                    r#"+ (2, "b", Some("x"))"#.to_string(),
                    r#"- (1, "a", None)"#.to_string(),
                ],
            ],
            "-w {workers}, parallelism {p}"
        );
        assert_eq!(
            inner,
            vec![vec![
                r#"+ (1, "a", Some("y"))"#.to_string(),
                r#"+ (2, "b", Some("x"))"#.to_string()
            ]],
            "-w {workers}, parallelism {p}"
        );
    }
}

/// Collects a changelog as one sorted `+1 record` / `-1 record` list per epoch, in order.
fn changelog_by_epoch<D: weir::Data + std::fmt::Debug>(
    s: DataStream<'_, Change<D>>,
    name: &str,
    out: &Collector<Vec<String>>,
) {
    s.map_batch(
        op(format!("{name}/epochs")).parallelism(1),
        |changes: Vec<Change<D>>| {
            let mut lines: Vec<String> = changes
                .iter()
                .map(|c| format!("{:+} {:?}", c.diff, c.data))
                .collect();
            lines.sort();
            vec![lines]
        },
    )
    .collect(op(format!("{name}/out")).parallelism(1), out);
}

#[test]
fn changelog_joins_apply_retractions_on_either_side() {
    for (workers, p) in [(1, 1), (2, 2)] {
        let left_out = Collector::new();
        let inner_out = Collector::new();
        let (l, i) = (left_out.clone(), inner_out.clone());
        execute(Config::threads(workers).with_verbose(false), move |job| {
            let one_per_epoch =
                |name: &str| op(name).parallelism(1).epochs(EpochPolicy::Records(1));
            let s = |k: u32, v: &str| (k, v.to_string());
            // Epoch 0, 1, 2 on each side.
            let left = job.from_vec(
                one_per_epoch("left"),
                vec![
                    Change::insert(s(1, "a")),
                    Change::retract(s(1, "a")),
                    Change::insert(s(1, "b")),
                ],
            );
            let right = job.from_vec(
                one_per_epoch("right"),
                vec![
                    Change::insert(s(1, "x")),
                    Change::insert(s(2, "y")),
                    Change::retract(s(1, "x")),
                ],
            );
            let l_changes = left
                .clone()
                .left_join_changes(op("left_join").parallelism(p), right.clone());
            changelog_by_epoch(l_changes, "l", &l);
            changelog_by_epoch(
                left.join_changes(op("inner_join").parallelism(p), right),
                "i",
                &i,
            );
            Ok(())
        })
        .unwrap();
        let what = format!("-w {workers}, parallelism {p}");
        assert_eq!(
            left_out.take(),
            vec![
                vec![r#"+1 (1, "a", Some("x"))"#.to_string()],
                vec![r#"-1 (1, "a", Some("x"))"#.to_string()],
                vec![r#"+1 (1, "b", None)"#.to_string()],
            ],
            "{what}"
        );
        assert_eq!(
            inner_out.take(),
            vec![
                vec![r#"+1 (1, "a", "x")"#.to_string()],
                vec![r#"-1 (1, "a", "x")"#.to_string()]
            ],
            "{what}"
        );
    }
}
