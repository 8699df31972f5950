//! Dead letters: malformed records, kept with the reason instead of crashing a worker.

use serde::{Deserialize, Serialize};

/// A record an operator could not process, with where it came from and why.
///
/// Build one with [`DeadLetter::new`] (or [`DeadLetter::with_raw_prefix`]), which keeps at
/// most [`DeadLetter::MAX_RAW_BYTES`] of the record, so that a huge bad record costs little.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The operator that rejected the record.
    pub operator: String,
    /// Where the record came from, e.g. `data/events.jsonl:17`.
    pub location: String,
    /// Why it was rejected (serde's message for decoding errors).
    pub reason: String,
    /// The raw record, as far as it could be recovered (lossy UTF-8), cut after
    /// [`DeadLetter::MAX_RAW_BYTES`] with a note giving its full length.
    pub raw: String,
}

impl DeadLetter {
    /// Longest `raw` a dead letter keeps, in bytes; a longer record is cut, with a note
    /// saying how long it was.
    pub const MAX_RAW_BYTES: usize = 4096;

    /// A dead letter for the record `raw` (decoded as lossy UTF-8 and cut to
    /// [`DeadLetter::MAX_RAW_BYTES`]).
    ///
    /// ```
    /// use weir_core::DeadLetter;
    /// let d = DeadLetter::new("parse", "in.jsonl:3", "expected value", &[b'x'; 10_000]);
    /// assert!(d.raw.starts_with("xxxx"));
    /// assert!(d.raw.len() < 4200 && d.raw.ends_with("10000 bytes]"));
    /// let short = DeadLetter::new("parse", "in.jsonl:4", "bad", b"{oops");
    /// assert_eq!(short.raw, "{oops");
    /// ```
    pub fn new(
        operator: impl Into<String>,
        location: impl Into<String>,
        reason: impl Into<String>,
        raw: &[u8],
    ) -> Self {
        Self::with_raw_prefix(operator, location, reason, raw, raw.len() as u64)
    }

    /// A dead letter for a record that was already decoded: its JSON form is the raw text,
    /// written through a bounded buffer (only the first [`DeadLetter::MAX_RAW_BYTES`] are
    /// kept, however large the record).
    ///
    /// ```
    /// use weir_core::DeadLetter;
    /// let d = DeadLetter::for_record("score", "model v1", "no model", &vec![0u8; 5000]);
    /// assert!(d.raw.starts_with("[0,0,") && d.raw.ends_with("10001 bytes]"));
    /// ```
    pub fn for_record<T: serde::Serialize + ?Sized>(
        operator: impl Into<String>,
        location: impl Into<String>,
        reason: impl Into<String>,
        record: &T,
    ) -> Self {
        let mut out = CappedWriter {
            kept: Vec::new(),
            total: 0,
        };
        let _ = serde_json::to_writer(&mut out, record);
        Self::with_raw_prefix(operator, location, reason, &out.kept, out.total)
    }

    /// A dead letter for a record of `len` bytes of which only the first bytes, `prefix`,
    /// were kept (a line over the length cap is never held whole).
    pub fn with_raw_prefix(
        operator: impl Into<String>,
        location: impl Into<String>,
        reason: impl Into<String>,
        prefix: &[u8],
        len: u64,
    ) -> Self {
        DeadLetter {
            operator: operator.into(),
            location: location.into(),
            reason: reason.into(),
            raw: bounded_raw(prefix, len),
        }
    }
}

/// Keeps the first [`DeadLetter::MAX_RAW_BYTES`] bytes written and counts the rest.
struct CappedWriter {
    kept: Vec<u8>,
    total: u64,
}

impl std::io::Write for CappedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let room = DeadLetter::MAX_RAW_BYTES.saturating_sub(self.kept.len());
        self.kept.extend_from_slice(&buf[..buf.len().min(room)]);
        self.total += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// At most [`DeadLetter::MAX_RAW_BYTES`] of `prefix` as text, plus a note when the record
/// (`len` bytes) was cut.
fn bounded_raw(prefix: &[u8], len: u64) -> String {
    let max = DeadLetter::MAX_RAW_BYTES;
    let kept = &prefix[..prefix.len().min(max)];
    let mut cut = (kept.len() as u64) < len;
    let kept = if cut {
        without_partial_char(kept)
    } else {
        kept
    };
    let mut raw = String::from_utf8_lossy(kept).into_owned();
    // Replacement characters take 3 bytes for 1: cut the text too, at a character boundary.
    if raw.len() > max {
        let mut end = max;
        while !raw.is_char_boundary(end) {
            end -= 1;
        }
        raw.truncate(end);
        cut = true;
    }
    if cut {
        raw.push_str(&format!("…[cut; the record has {len} bytes]"));
    }
    raw
}

/// `bytes` without an incomplete UTF-8 sequence at its end (left by cutting a record).
fn without_partial_char(bytes: &[u8]) -> &[u8] {
    let tail = bytes.len().saturating_sub(3);
    for i in (tail..bytes.len()).rev() {
        let b = bytes[i];
        if b & 0b1100_0000 == 0b1000_0000 {
            continue; // a continuation byte: look further back for the lead byte
        }
        let width = match b {
            0xF0..=0xF7 => 4,
            0xE0..=0xEF => 3,
            0xC0..=0xDF => 2,
            _ => 1,
        };
        return if i + width > bytes.len() {
            &bytes[..i]
        } else {
            bytes
        };
    }
    bytes
}

impl std::fmt::Display for DeadLetter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}: {}", self.operator, self.location, self.reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(bytes: &[u8]) -> String {
        DeadLetter::new("op", "f:1", "r", bytes).raw
    }

    #[test]
    fn short_records_are_kept_whole_and_lossy() {
        assert_eq!(raw(b"abc"), "abc");
        assert_eq!(raw(b""), "");
        assert_eq!(raw(b"a\xffb"), "a\u{FFFD}b");
        let exact = vec![b'e'; DeadLetter::MAX_RAW_BYTES];
        assert_eq!(raw(&exact), String::from_utf8(exact).unwrap());
    }

    #[test]
    fn long_records_are_cut_with_their_length() {
        let r = raw(&vec![b'x'; 5000]);
        assert_eq!(
            r,
            format!("{}…[cut; the record has 5000 bytes]", "x".repeat(4096))
        );
        // Not inside a character: 4095 ASCII bytes, then `é` across the cut.
        let mut text = "a".repeat(4095).into_bytes();
        text.extend_from_slice("ééé".as_bytes());
        let r = raw(&text);
        assert!(
            r.starts_with(&"a".repeat(4095)) && !r.contains('\u{FFFD}'),
            "{r}"
        );
        // Invalid bytes grow when decoded; the text is still bounded.
        let r = raw(&vec![0xff; 5000]);
        assert!(r.len() <= DeadLetter::MAX_RAW_BYTES + 40, "{}", r.len());
        assert!(r.ends_with("5000 bytes]"), "{r}");
        let r = raw(&vec![0xff; 4000]);
        assert!(r.len() <= DeadLetter::MAX_RAW_BYTES + 40, "{}", r.len());
        assert!(r.ends_with("4000 bytes]"), "{r}");
    }

    #[test]
    fn a_kept_prefix_reports_the_full_length() {
        let d = DeadLetter::with_raw_prefix("op", "f:9", "too long", b"{\"id\":", 1 << 30);
        assert_eq!(d.raw, "{\"id\":…[cut; the record has 1073741824 bytes]");
    }
}
