//! Reading lines with a length cap: a line longer than the cap is skipped without being held
//! in memory (only its first bytes are kept, for the dead letter), and the next line is read
//! as usual.
//!
//! A line ends at `\n`; one `\r` before it (or before the end of the input) belongs to the
//! line ending. A line that fits in the read buffer is returned in place, without a copy.

use std::io::{BufRead, BufReader, Read};

use crate::dead_letter::DeadLetter;

/// One line, without its line ending.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line<'a> {
    /// A line of at most the cap.
    Text(&'a [u8]),
    /// A line over the cap: its length and its first bytes (at most
    /// [`DeadLetter::MAX_RAW_BYTES`]).
    TooLong {
        /// Bytes of the line, line ending excluded.
        len: u64,
        /// Its first bytes.
        head: &'a [u8],
    },
}

/// Lines of a byte stream, each at most `max` bytes long.
pub(crate) struct LineReader<R> {
    inner: BufReader<R>,
    /// The line being put together when it spans reads (at most `max + 1` bytes).
    line: Vec<u8>,
    /// Bytes of the line last returned in place, consumed on the next call.
    pending: usize,
    max: usize,
    /// Bytes consumed from the input so far (`pending` not included).
    consumed: u64,
}

impl<R: Read> LineReader<R> {
    /// Reads `inner` through a buffer of `capacity` bytes; lines may be `max` bytes long.
    pub(crate) fn new(inner: R, capacity: usize, max: usize) -> Self {
        LineReader {
            inner: BufReader::with_capacity(capacity, inner),
            line: Vec::new(),
            pending: 0,
            max: max.max(1),
            consumed: 0,
        }
    }

    /// Bytes of the input up to the end of the last line returned (its line ending
    /// included): where the next line starts.
    pub(crate) fn position(&self) -> u64 {
        self.consumed + self.pending as u64
    }

    /// The next line, or `None` at the end of the input.
    pub(crate) fn next_line(&mut self) -> std::io::Result<Option<Line<'_>>> {
        let pending = std::mem::take(&mut self.pending);
        self.inner.consume(pending);
        self.consumed += pending as u64;
        let (newline, available) = {
            let buf = self.inner.fill_buf()?;
            (memchr::memchr(b'\n', buf), buf.len())
        };
        if available == 0 {
            return Ok(None);
        }
        match newline {
            // The common case: the whole line is in the buffer.
            Some(i) => {
                self.pending = i + 1;
                Ok(Some(classify(&self.inner.buffer()[..i], self.max)))
            }
            None => self.read_spanning_line(),
        }
    }

    /// A line that does not end within the buffer: kept up to the cap, skipped beyond it.
    fn read_spanning_line(&mut self) -> std::io::Result<Option<Line<'_>>> {
        self.line.clear();
        let keep = self.max.saturating_add(1); // room for a `\r` before the newline
        let mut len = 0u64;
        let mut last = 0u8;
        loop {
            let (newline, available) = {
                let buf = self.inner.fill_buf()?;
                (memchr::memchr(b'\n', buf), buf.len())
            };
            if available == 0 {
                break; // the input ends without a newline
            }
            let take = newline.unwrap_or(available);
            if take > 0 {
                let buf = self.inner.buffer();
                last = buf[take - 1];
                let room = keep.saturating_sub(self.line.len()).min(take);
                extend_bounded(&mut self.line, &buf[..room], keep);
            }
            len += take as u64;
            let used = take + usize::from(newline.is_some());
            self.inner.consume(used);
            self.consumed += used as u64;
            if newline.is_some() {
                break;
            }
        }
        if last == b'\r' {
            len -= 1;
        }
        if len <= self.max as u64 {
            return Ok(Some(Line::Text(&self.line[..len as usize])));
        }
        let head = self.line.len().min(DeadLetter::MAX_RAW_BYTES);
        Ok(Some(Line::TooLong {
            len,
            head: &self.line[..head],
        }))
    }
}

/// A line found whole in the buffer (`\n` excluded).
fn classify(line: &[u8], max: usize) -> Line<'_> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.len() <= max {
        Line::Text(line)
    } else {
        Line::TooLong {
            len: line.len() as u64,
            head: &line[..DeadLetter::MAX_RAW_BYTES.min(line.len())],
        }
    }
}

/// Appends `bytes`, growing `line` to at most `limit` bytes of capacity.
fn extend_bounded(line: &mut Vec<u8>, bytes: &[u8], limit: usize) {
    let need = line.len() + bytes.len();
    if need > line.capacity() {
        let grown = (line.capacity() * 2).clamp(need, limit.max(need));
        line.reserve_exact(grown - line.len());
    }
    line.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// All lines of `input`, read through a buffer of `capacity` bytes with cap `max`, as
    /// `Ok(text)` or `Err(length)` for lines over the cap (whose lines are all `x`s).
    fn lines(input: &[u8], capacity: usize, max: usize) -> Vec<Result<Vec<u8>, u64>> {
        let mut reader = LineReader::new(input, capacity, max);
        let mut out = Vec::new();
        while let Some(line) = reader.next_line().unwrap() {
            out.push(match line {
                Line::Text(t) => Ok(t.to_vec()),
                Line::TooLong { len, head } => {
                    assert!(head.len() <= DeadLetter::MAX_RAW_BYTES);
                    assert!(head.iter().all(|&b| b == b'x'), "{head:?}");
                    Err(len)
                }
            });
        }
        out
    }

    #[test]
    fn splits_lines_and_strips_line_endings() {
        for capacity in [1, 2, 3, 7, 64] {
            let got = lines(b"a\r\nbb\n\n\rc\r\nlast\r", capacity, 10);
            let want: Vec<Result<Vec<u8>, u64>> = vec![
                Ok(b"a".to_vec()),
                Ok(b"bb".to_vec()),
                Ok(b"".to_vec()),
                Ok(b"\rc".to_vec()),
                Ok(b"last".to_vec()),
            ];
            assert_eq!(got, want, "capacity {capacity}");
        }
        assert!(lines(b"", 8, 10).is_empty());
        assert_eq!(lines(b"\n", 8, 10), vec![Ok(vec![])]);
    }

    #[test]
    fn lines_over_the_cap_are_skipped_with_their_length() {
        let mut input = b"xxxx\n".to_vec();
        input.extend_from_slice(&[b'x'; 10_000]);
        input.extend_from_slice(b"\r\nxxxxx\nxxxxxx\r\nxxxxx\r\nxxxxxx");
        for capacity in [1, 3, 16, 4096, 1 << 16] {
            let got = lines(&input, capacity, 5);
            let want: Vec<Result<Vec<u8>, u64>> = vec![
                Ok(b"xxxx".to_vec()),
                Err(10_000),
                Ok(b"xxxxx".to_vec()),
                Err(6),
                Ok(b"xxxxx".to_vec()),
                Err(6),
            ];
            assert_eq!(got, want, "capacity {capacity}");
        }
    }

    #[test]
    fn the_line_buffer_never_outgrows_the_cap() {
        let input = vec![b'x'; 1 << 20];
        let mut reader = LineReader::new(&input[..], 1000, 5000);
        match reader.next_line().unwrap() {
            Some(Line::TooLong { len, .. }) => assert_eq!(len, 1 << 20),
            other => panic!("{other:?}"),
        }
        assert!(reader.line.capacity() <= 5001, "{}", reader.line.capacity());
    }

    /// A cap of `usize::MAX` (no cap) keeps every line whole. The room for a `\r` after the
    /// cap overflowed to nothing, and the first line longer than the buffer panicked.
    #[test]
    fn the_largest_cap_keeps_long_lines() {
        let mut input = vec![b'x'; 10_000];
        input.extend_from_slice(b"\r\nyy\n");
        let got = lines(&input, 64, usize::MAX);
        assert_eq!(got, vec![Ok(vec![b'x'; 10_000]), Ok(b"yy".to_vec())]);
    }
}
