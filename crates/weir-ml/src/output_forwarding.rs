//! Copies a child program's output to ours, line by line with a prefix (`[worker:0]`,
//! `[p1]`), as bytes: a program that prints invalid UTF-8 or a line without end is passed
//! through, never cut off (a reader that stopped would leave the program to die of a broken
//! pipe). Lines longer than [`MAX_LINE`] are forwarded in pieces, so memory stays bounded.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Longest piece of a line held in memory; longer lines go out in several pieces.
pub const MAX_LINE: usize = 64 << 10;

/// Where forwarded lines go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destination {
    /// This process's standard output.
    Stdout,
    /// This process's standard error.
    Stderr,
}

/// The last lines a program printed (lossy UTF-8), for failure messages.
#[derive(Clone, Debug, Default)]
pub struct LastLines {
    lines: Arc<Mutex<VecDeque<String>>>,
    keep: usize,
}

impl LastLines {
    /// Keeps the last `keep` lines.
    pub fn new(keep: usize) -> Self {
        LastLines {
            lines: Arc::default(),
            keep,
        }
    }

    fn push(&self, line: &[u8]) {
        let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        if lines.len() == self.keep {
            lines.pop_front();
        }
        if self.keep > 0 {
            lines.push_back(String::from_utf8_lossy(line).into_owned());
        }
    }

    /// The lines kept so far, oldest first.
    pub fn lines(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}

/// Forwards `stream` to `destination` on a thread of its own until it ends; every line is
/// written as `prefix line`, and also kept in `last` if given.
pub fn forward_lines(
    stream: impl Read + Send + 'static,
    prefix: String,
    destination: Destination,
    last: Option<LastLines>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = Vec::with_capacity(256);
        loop {
            line.clear();
            match (&mut reader)
                .take(MAX_LINE as u64)
                .read_until(b'\n', &mut line)
            {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let text = line.strip_suffix(b"\n").unwrap_or(&line);
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            write_line(destination, prefix.as_bytes(), text);
            if let Some(last) = &last {
                last.push(text);
            }
        }
    })
}

fn write_line(destination: Destination, prefix: &[u8], text: &[u8]) {
    let mut out = Vec::with_capacity(prefix.len() + text.len() + 2);
    out.extend_from_slice(prefix);
    out.push(b' ');
    out.extend_from_slice(text);
    out.push(b'\n');
    // Our own output failing (a closed terminal) must not stop the program's.
    let _ = match destination {
        Destination::Stdout => std::io::stdout().lock().write_all(&out),
        Destination::Stderr => std::io::stderr().lock().write_all(&out),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_utf8_and_long_lines_are_kept_and_bounded() {
        let mut input = b"first\n\xff\xfe broken \xc3\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_LINE * 2 + 5));
        input.extend_from_slice(b"\nlast");
        let last = LastLines::new(10);
        forward_lines(
            std::io::Cursor::new(input),
            "[t]".into(),
            Destination::Stderr,
            Some(last.clone()),
        )
        .join()
        .unwrap();
        let lines = last.lines();
        assert_eq!(lines[0], "first");
        assert!(lines[1].contains("broken"), "{lines:?}");
        // The long line comes in three pieces of at most MAX_LINE bytes.
        assert_eq!(lines[2].len(), MAX_LINE);
        assert_eq!(lines[3].len(), MAX_LINE);
        assert_eq!(lines[4].len(), 5);
        assert_eq!(lines[5], "last");
    }
}
