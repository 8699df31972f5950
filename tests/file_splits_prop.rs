//! Property: whatever the line lengths (empty lines, long lines, no final newline), the
//! number of source instances and the size of the blocks they take turns at (one block per
//! instance, or blocks shorter than many lines), a JSON Lines file is read exactly once.

use proptest::prelude::*;
use weir::prelude::*;

fn read_all(path: std::path::PathBuf, instances: usize, block: u64) -> Vec<u64> {
    let out = Collector::new();
    let sink = out.clone();
    let config = Config::threads(4)
        .with_verbose(false)
        .with_file_block_bytes(block);
    execute(config, move |job| {
        job.read_jsonl::<(u64, String)>(op("read").parallelism(instances), &path)
            .map("id", |r| r.0)
            .collect("out", &sink);
        Ok(())
    })
    .unwrap();
    out.sorted()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn every_line_is_read_exactly_once(
        pads in proptest::collection::vec(0usize..300, 0..60),
        blank_every in 2usize..7,
        final_newline in any::<bool>(),
        instances in 1usize..=4,
        block in prop_oneof![Just(4u64 << 20), 1u64..400],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.jsonl");
        let mut text = String::new();
        for (i, pad) in pads.iter().enumerate() {
            text.push_str(&serde_json::to_string(&(i as u64, "x".repeat(*pad))).unwrap());
            text.push('\n');
            if i % blank_every == 0 {
                text.push('\n');
            }
        }
        if !final_newline {
            text = text.trim_end().to_string();
        }
        std::fs::write(&path, &text).unwrap();
        let got = read_all(path, instances, block);
        prop_assert_eq!(got, (0..pads.len() as u64).collect::<Vec<_>>());
    }
}

#[test]
fn alignment_moves_to_the_next_line_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    std::fs::write(&path, "ab\ncd\n\nef").unwrap();
    let mut f = std::fs::File::open(&path).unwrap();
    let len = 9;
    let starts: Vec<u64> = (0..=len)
        .map(|o| weir::align_to_line(&mut f, o, len).unwrap())
        .collect();
    assert_eq!(starts, vec![0, 3, 3, 3, 6, 6, 6, 7, 9, 9]);
}
