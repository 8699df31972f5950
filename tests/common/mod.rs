//! Conformance scenarios shared by the operator tests: each builds one pipeline into a job
//! and has a plain sequential reference implementation of what it must output.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};

use weir::prelude::*;

/// A scenario adds its pipeline to `job`, with operator parallelism `p`, collecting its
/// output (as `{:?}` strings) into `out`.
pub type Build = fn(&mut Job<'_>, usize, &Collector<String>);

pub struct Scenario {
    pub name: &'static str,
    pub build: Build,
    pub reference: fn() -> Vec<String>,
}

const N: u64 = 2000;

/// Record `i`'s word: 300 distinct, of several lengths (the empty word among them).
fn word(i: u64) -> String {
    match (i * 7919) % 300 {
        0 => String::new(),
        k => "ab".repeat((k % 5) as usize) + &k.to_string(),
    }
}

fn sink<'s, T: weir::Data + std::fmt::Debug>(
    s: DataStream<'s, T>,
    name: &str,
    out: &Collector<String>,
) {
    s.map(format!("{name}/fmt"), |x| format!("{x:?}"))
        .collect(op(format!("{name}/out")).parallelism(1), out);
}

pub fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "map_filter_flat_map",
            build: |job, p, out| {
                let s = job
                    .generate(op("mf/src").parallelism(p), Some(N), |i| i)
                    .map(op("mf/map").parallelism(p), |x| x * 3)
                    .filter(op("mf/filter").parallelism(p), |x| x % 2 == 0)
                    .flat_map(op("mf/flat_map").parallelism(p), |x| vec![x, x + 1]);
                sink(s, "mf", out);
            },
            reference: || {
                (0..N)
                    .map(|x| x * 3)
                    .filter(|x| x % 2 == 0)
                    .flat_map(|x| [x, x + 1])
                    .map(|x| format!("{x:?}"))
                    .collect()
            },
        },
        Scenario {
            name: "keyed_aggregates_one_epoch",
            build: |job, p, out| {
                let src = job.generate(
                    op("agg/src")
                        .parallelism(p)
                        .epochs(EpochPolicy::Records(1 << 30)),
                    Some(N),
                    |i| (i % 7, i as i64 - 500),
                );
                let keyed = || src.clone().key_by(|r: &(u64, i64)| r.0);
                sink(
                    keyed().count(op("agg/count").parallelism(p)),
                    "agg/count",
                    out,
                );
                sink(
                    keyed().sum(op("agg/sum").parallelism(p), |r| r.1),
                    "agg/sum",
                    out,
                );
                sink(
                    keyed().min(op("agg/min").parallelism(p), |r| r.1),
                    "agg/min",
                    out,
                );
                sink(
                    keyed().max(op("agg/max").parallelism(p), |r| r.1),
                    "agg/max",
                    out,
                );
                sink(
                    keyed().aggregate(
                        op("agg/fold").parallelism(p),
                        |_| (0u64, 0i64),
                        |a, r| {
                            a.0 += 1;
                            a.1 += r.1 * r.1;
                        },
                    ),
                    "agg/fold",
                    out,
                );
            },
            reference: || {
                let mut groups: BTreeMap<u64, Vec<i64>> = BTreeMap::new();
                for i in 0..N {
                    groups.entry(i % 7).or_default().push(i as i64 - 500);
                }
                let mut v = Vec::new();
                for (k, xs) in &groups {
                    v.push(format!("{:?}", (*k, xs.len() as u64)));
                    v.push(format!("{:?}", (*k, xs.iter().sum::<i64>())));
                    v.push(format!("{:?}", (*k, *xs.iter().min().unwrap())));
                    v.push(format!("{:?}", (*k, *xs.iter().max().unwrap())));
                    v.push(format!(
                        "{:?}",
                        (*k, (xs.len() as u64, xs.iter().map(|x| x * x).sum::<i64>()))
                    ));
                }
                v
            },
        },
        Scenario {
            // String keys, which cross between workers and processes as bytes in parcels.
            name: "word_counts_one_epoch",
            build: |job, p, out| {
                let words = job.generate(
                    op("wc/src")
                        .parallelism(p)
                        .epochs(EpochPolicy::Records(1 << 30)),
                    Some(N),
                    word,
                );
                sink(
                    words
                        .clone()
                        .count_by_value(op("wc/by_value").parallelism(p)),
                    "wc/by_value",
                    out,
                );
                sink(
                    words
                        .key_by(|w: &String| format!("{w}!"))
                        .count(op("wc/by_key").parallelism(p)),
                    "wc/by_key",
                    out,
                );
            },
            reference: || {
                let mut counts: BTreeMap<String, u64> = BTreeMap::new();
                for i in 0..N {
                    *counts.entry(word(i)).or_default() += 1;
                }
                let by_value = counts.iter().map(|(w, n)| format!("{:?}", (w, n)));
                let by_key = counts
                    .iter()
                    .map(|(w, n)| format!("{:?}", (format!("{w}!"), n)));
                by_value.chain(by_key).collect()
            },
        },
        Scenario {
            name: "keyed_count_per_epoch",
            // One source instance and 100-record epochs: epoch e holds records 100e..100e+99.
            build: |job, p, out| {
                let s = job
                    .generate(
                        op("epc/src")
                            .parallelism(1)
                            .epochs(EpochPolicy::Records(100)),
                        Some(N),
                        |i| i,
                    )
                    .map(op("epc/tag").parallelism(p), |i| (i / 100, i % 3))
                    .key_by(|r: &(u64, u64)| *r)
                    .count(op("epc/count").parallelism(p));
                sink(s, "epc", out);
            },
            reference: || {
                let mut m: BTreeMap<(u64, u64), u64> = BTreeMap::new();
                for i in 0..N {
                    *m.entry((i / 100, i % 3)).or_default() += 1;
                }
                m.into_iter().map(|x| format!("{x:?}")).collect()
            },
        },
        Scenario {
            name: "stateful_running_sum",
            build: |job, p, out| {
                let s = job
                    .generate(
                        op("state/src")
                            .parallelism(1)
                            .epochs(EpochPolicy::Records(64)),
                        Some(N),
                        |i| (i % 5, i),
                    )
                    .key_by(|r: &(u64, u64)| r.0)
                    .map_with_state(
                        op("state/running").parallelism(p),
                        |sum: &mut u64, r: (u64, u64)| {
                            *sum += r.1;
                            (r.0, r.1, *sum)
                        },
                    );
                sink(s, "state", out);
            },
            reference: || {
                let mut sums: HashMap<u64, u64> = HashMap::new();
                (0..N)
                    .map(|i| {
                        let s = sums.entry(i % 5).or_default();
                        *s += i;
                        format!("{:?}", (i % 5, i, *s))
                    })
                    .collect()
            },
        },
        Scenario {
            name: "union_rebalance_broadcast",
            build: |job, p, out| {
                let a = job.generate(op("urb/a").parallelism(p), Some(300), |i| i);
                let b = job.from_vec(op("urb/b").parallelism(1), (1000..1100u64).collect());
                let u = a.union("urb/union", b);
                let r = u
                    .clone()
                    .rebalance()
                    .map(op("urb/rebalanced").parallelism(p), |x| x + 1);
                sink(r, "urb/r", out);
                let bc = u
                    .broadcast()
                    .map(op("urb/broadcast").parallelism(p), |x| (x, 1u8));
                sink(bc, "urb/bc", out);
            },
            reference: || {
                // Filled in per parallelism by `reference_for`.
                Vec::new()
            },
        },
        Scenario {
            name: "map_batch_sees_whole_epochs",
            build: |job, p, out| {
                let s = job
                    .generate(
                        op("mb/src")
                            .parallelism(1)
                            .epochs(EpochPolicy::Records(250)),
                        Some(N),
                        |i| i,
                    )
                    .map_batch(op("mb/batch").parallelism(1), |batch: Vec<u64>| {
                        let min = *batch.iter().min().unwrap();
                        vec![(batch.len(), min)]
                    });
                let _ = p;
                sink(s, "mb", out);
            },
            reference: || {
                (0..N / 250)
                    .map(|e| format!("{:?}", (250usize, e * 250)))
                    .collect()
            },
        },
        Scenario {
            name: "inspect_and_parallel_map_batch",
            build: |job, p, out| {
                let s = job
                    .generate(
                        op("ib/src")
                            .parallelism(p)
                            .epochs(EpochPolicy::Records(100)),
                        Some(N),
                        |i| i,
                    )
                    .inspect(op("ib/inspect").parallelism(p), |x| assert!(*x < N))
                    .rebalance()
                    .map_batch(op("ib/batch").parallelism(p), |mut batch: Vec<u64>| {
                        batch.sort_unstable();
                        batch
                    });
                sink(s, "ib", out);
            },
            reference: || (0..N).map(|x| format!("{x:?}")).collect(),
        },
        Scenario {
            name: "joins_inner_and_left",
            build: |job, p, out| {
                // Small epochs, so matches and retractions span epochs (orders often
                // arrive before their user).
                let users = job.generate(
                    op("j/users").parallelism(p).epochs(EpochPolicy::Records(5)),
                    Some(50),
                    |i| (i, format!("user{i}")),
                );
                let orders = job.generate(
                    op("j/orders")
                        .parallelism(p)
                        .epochs(EpochPolicy::Records(50)),
                    Some(300),
                    |i| ((i * 7) % 80, i),
                );
                let inner = users
                    .clone()
                    .join(op("j/inner").parallelism(p), orders.clone());
                sink_changes(inner, "j/inner", out);
                let left = orders.left_join(op("j/left").parallelism(p), users);
                sink_changes(left, "j/left", out);
            },
            reference: || {
                let users: Vec<(u64, String)> = (0..50).map(|i| (i, format!("user{i}"))).collect();
                let orders: Vec<(u64, u64)> = (0..300).map(|i| ((i * 7) % 80, i)).collect();
                let mut v = Vec::new();
                for (k, name) in &users {
                    for (k2, o) in &orders {
                        if k == k2 {
                            v.push(format!("{:?}", (*k, name.clone(), *o)));
                        }
                    }
                }
                for (k, o) in &orders {
                    let m: Vec<_> = users.iter().filter(|(u, _)| u == k).collect();
                    if m.is_empty() {
                        v.push(format!("{:?}", (*k, *o, None::<String>)));
                    }
                    for (_, name) in m {
                        v.push(format!("{:?}", (*k, *o, Some(name.clone()))));
                    }
                }
                v
            },
        },
        Scenario {
            name: "enrich_against_changing_table",
            // Epoch k holds record k of each source (one record per epoch).
            build: |job, p, out| {
                let table = job.generate(
                    op("e/table").parallelism(1).epochs(EpochPolicy::Records(1)),
                    Some(40),
                    table_update,
                );
                let events = job.generate(
                    op("e/events")
                        .parallelism(1)
                        .epochs(EpochPolicy::Records(1)),
                    Some(40),
                    |i| (i % 4, i),
                );
                let s = events.enrich(op("e/enrich").parallelism(p), table);
                sink(s, "e", out);
            },
            reference: || {
                let mut state: HashMap<u64, String> = HashMap::new();
                let mut v = Vec::new();
                for epoch in 0..40 {
                    match table_update(epoch) {
                        TableUpdate::Upsert(k, val) => {
                            state.insert(k, val);
                        }
                        TableUpdate::Delete(k) => {
                            state.remove(&k);
                        }
                    }
                    let (k, e) = (epoch % 4, epoch);
                    v.push(format!("{:?}", (k, e, state.get(&k).cloned())));
                }
                v
            },
        },
    ]
}

fn table_update(i: u64) -> TableUpdate<u64, String> {
    if i % 5 == 4 {
        TableUpdate::Delete(i % 3)
    } else {
        TableUpdate::Upsert(i % 3, format!("v{i}"))
    }
}

/// Collects a changelog as `data<TAB>diff` lines; [`normalize`] sums the diffs.
fn sink_changes<'s, D: weir::Data + std::fmt::Debug>(
    s: DataStream<'s, Change<D>>,
    name: &str,
    out: &Collector<String>,
) {
    s.map(format!("{name}/fmt"), |c| {
        format!("{:?}\t{}", c.data, c.diff)
    })
    .collect(op(format!("{name}/out")).parallelism(1), out);
}

/// Sorts collected output; changelog lines are consolidated into one line per copy of each
/// record whose diffs sum to a positive count (a negative sum is kept visible as an error).
pub fn normalize(lines: Vec<String>) -> Vec<String> {
    let mut counts: BTreeMap<String, i64> = BTreeMap::new();
    let mut plain = Vec::new();
    for line in lines {
        match line.rsplit_once('\t') {
            Some((data, diff)) => {
                *counts.entry(data.to_string()).or_default() += diff.parse::<i64>().unwrap()
            }
            None => plain.push(line),
        }
    }
    for (data, n) in counts {
        if n < 0 {
            plain.push(format!("NEGATIVE {n} {data}"));
        }
        for _ in 0..n.max(0) {
            plain.push(data.clone());
        }
    }
    plain.sort();
    plain
}

/// The expected output of a scenario at parallelism `p`.
pub fn reference_for(s: &Scenario, p: usize) -> Vec<String> {
    let mut v = if s.name == "union_rebalance_broadcast" {
        let all: Vec<u64> = (0..300).chain(1000..1100).collect();
        let mut v: Vec<String> = all.iter().map(|x| format!("{:?}", x + 1)).collect();
        for x in &all {
            for _ in 0..p {
                v.push(format!("{:?}", (*x, 1u8)));
            }
        }
        v
    } else {
        (s.reference)()
    };
    v.sort();
    v
}

/// Builds every scenario into one job, each collecting into its own collector.
pub fn build_all(job: &mut Job<'_>, p: usize, outs: &[Collector<String>]) {
    for (s, out) in scenarios().iter().zip(outs) {
        (s.build)(job, p, out);
    }
}
