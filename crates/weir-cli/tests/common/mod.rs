//! Helpers of the tests that launch jobs under `weir launch` and kill them.

#[path = "../../../../tests/support/committed_lines.rs"]
mod committed_lines;
pub use committed_lines::committed_lines;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

/// The text of `path` once it exists and is not empty (within a minute).
pub fn read_when_there(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(text) = std::fs::read_to_string(path).ok().filter(|t| !t.is_empty()) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// SIGKILLs `pid`.
pub fn kill(pid: i32) {
    // SAFETY: kill(2) on a process this test launched.
    let r = unsafe { libc::kill(pid, libc::SIGKILL) };
    assert_eq!(r, 0, "kill {pid}");
}

/// Waits for the launcher and returns whether it succeeded, and its log. A launcher that
/// does not finish within 3 minutes is killed with its process group (the tests start it
/// in a group of its own), so that its job's processes do not outlive the test.
pub fn finish(mut launcher: Child) -> (bool, String) {
    let mut log = String::new();
    let mut err = launcher.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let _ = std::io::Read::read_to_string(&mut err, &mut log);
        log
    });
    let deadline = Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(status) = launcher.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            // SAFETY: kill(2) on the process group of a launcher this test started.
            unsafe { libc::kill(-(launcher.id() as i32), libc::SIGKILL) };
            let _ = launcher.kill();
            let _ = launcher.wait();
            // The group is gone, so its stderr closes and the log is complete (unless a
            // process outside the group still holds it: then the log is not waited for).
            let closed = Instant::now() + Duration::from_secs(5);
            while !reader.is_finished() && Instant::now() < closed {
                std::thread::sleep(Duration::from_millis(20));
            }
            let log = if reader.is_finished() {
                reader.join().unwrap_or_default()
            } else {
                "(stderr still open)".to_string()
            };
            panic!("the launcher did not finish within 3 minutes; its log:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status.success(), reader.join().unwrap())
}
