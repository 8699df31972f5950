//! The committed output of a file sink, for the tests of every crate (included with
//! `#[path = ".../tests/support/committed_lines.rs"] mod committed_lines;`).

use std::collections::BTreeMap;
use std::path::Path;

/// Every line of the committed part files in `dir` (not `*.inprogress`), counted.
pub fn committed_lines(dir: &Path) -> BTreeMap<String, usize> {
    let mut lines = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() || path.to_string_lossy().ends_with(".inprogress") {
            continue;
        }
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            *lines.entry(line.to_string()).or_insert(0) += 1;
        }
    }
    lines
}
