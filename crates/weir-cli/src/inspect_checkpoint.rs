//! `weir inspect checkpoint DIR`: the checkpoints in a checkpoint directory, whether each is
//! complete (or why not), the one a restore would take, and per operator the keys (or
//! splits) and bytes of state.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Result};
use serde::Serialize;
use weir_core::state::store::{CheckpointDir, Found, Manifest};

/// One checkpoint directory entry, as printed.
#[derive(Serialize)]
struct Entry {
    id: u64,
    /// `complete` or `broken`.
    status: &'static str,
    /// Why a broken checkpoint cannot be used (with the path).
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    manifest: Option<Manifest>,
}

/// Everything `weir inspect checkpoint` reports.
#[derive(Serialize)]
struct Inspection {
    directory: String,
    /// The checkpoint a restore takes (the newest complete one whose chain is complete).
    restores_from: Option<u64>,
    /// Newest first.
    checkpoints: Vec<Entry>,
}

/// Prints what `dir` holds, as text or JSON.
pub fn inspect_checkpoints(dir: &Path, json: bool) -> Result<()> {
    if !dir.is_dir() {
        bail!("{}: no such checkpoint directory", dir.display());
    }
    let store = CheckpointDir::open(dir)?;
    let checkpoints = store
        .ids()?
        .into_iter()
        .map(|id| match store.check(id) {
            Found::Complete(m) => Entry {
                id,
                status: "complete",
                reason: None,
                manifest: Some(m),
            },
            Found::Broken(reason) => Entry {
                id,
                status: "broken",
                reason: Some(reason),
                manifest: None,
            },
        })
        .collect();
    let (chain, _) = store.restorable()?;
    let inspection = Inspection {
        directory: dir.display().to_string(),
        restores_from: chain.and_then(|c| c.last().map(|m| m.id)),
        checkpoints,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&inspection)?);
    } else {
        print!("{}", text(&inspection));
    }
    Ok(())
}

fn text(inspection: &Inspection) -> String {
    let mut out = String::new();
    let complete = inspection
        .checkpoints
        .iter()
        .filter(|e| e.manifest.is_some())
        .count();
    out += &format!(
        "{}: {} checkpoint(s), {complete} complete; {}\n",
        inspection.directory,
        inspection.checkpoints.len(),
        match inspection.restores_from {
            Some(id) => format!("a restore takes checkpoint {id}"),
            None => "nothing to restore from".to_string(),
        }
    );
    if let Some(job) = inspection
        .checkpoints
        .iter()
        .find_map(|e| e.manifest.as_ref())
        .map(|m| m.job.join(", "))
    {
        out += &format!("job (stateful operators): {job}\n");
    }
    for entry in &inspection.checkpoints {
        out += &entry_text(entry);
    }
    out
}

fn entry_text(entry: &Entry) -> String {
    let Some(m) = &entry.manifest else {
        return format!(
            "\ncheckpoint {}: broken: {}\n",
            entry.id,
            entry.reason.as_deref().unwrap_or("")
        );
    };
    let kind = if m.final_ {
        "final".to_string()
    } else if m.is_full() {
        "full".to_string()
    } else {
        format!("incremental on {}", m.base)
    };
    let mut out = format!(
        "\ncheckpoint {}: {kind}, epoch {}, {} worker(s), {}, took {} ms (alignment {} ms), {}\n",
        m.id,
        m.epoch,
        m.workers,
        human_bytes(m.bytes()),
        m.duration_ms,
        m.alignment_ms,
        age(m.completed_ms),
    );
    let entries = if m.is_full() {
        "keys/splits"
    } else {
        "changed"
    };
    if !m.operators.is_empty() {
        let width = m.operators.iter().map(|o| o.name.len()).max().unwrap_or(0);
        out += &format!("  {:<width$}  {entries:>11}  {:>10}\n", "operator", "bytes");
        for o in &m.operators {
            out += &format!(
                "  {:<width$}  {:>11}  {:>10}\n",
                o.name,
                o.entries,
                human_bytes(o.bytes)
            );
        }
    }
    out
}

fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b < 1 << 10 => format!("{b} B"),
        b if b < 1 << 20 => format!("{:.1} KiB", b as f64 / 1024.0),
        b if b < 1 << 30 => format!("{:.1} MiB", b as f64 / (1 << 20) as f64),
        b => format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64),
    }
}

/// How long ago a manifest was completed.
fn age(completed_ms: u64) -> String {
    let completed = UNIX_EPOCH + Duration::from_millis(completed_ms);
    match SystemTime::now().duration_since(completed) {
        Ok(ago) if ago.as_secs() < 120 => format!("completed {} s ago", ago.as_secs()),
        Ok(ago) if ago.as_secs() < 7200 => format!("completed {} min ago", ago.as_secs() / 60),
        Ok(ago) => format!("completed {} h ago", ago.as_secs() / 3600),
        Err(_) => "completed in the future (clock skew)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 20), "3.0 MiB");
    }
}
