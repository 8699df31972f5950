//! Parsing one CSV line into a byte record, with `csv_core`, reusing its buffers.
//!
//! File sources read CSV line by line (a record never spans lines, since splits cut at line
//! starts): the line reader caps the length, and each line is parsed on its own. Fields stay
//! bytes until serde decodes them, so a line that is not UTF-8 is a dead letter with a lossy
//! copy of its bytes. A line that ends inside a quoted field (a newline inside quotes) is a
//! dead letter ([`ends_in_quotes`]): parsed on its own it would be a record with wrong
//! fields. Each line is judged on its own, so what a line gives does not depend on where
//! the instances' blocks begin: the lines that continued such a field are read as lines.
//! `read_csv_multiline` reads whole files instead, and joins the lines of a record while a
//! quoted field is open ([`QuoteScan`]); `CsvLine` then parses the joined record.

use serde::de::DeserializeOwned;

/// Field ends a parser starts with (doubled as a line needs more).
const FIRST_ENDS: usize = 64;
/// Buffer bytes a parser keeps between lines; a longer line's buffers are freed after it.
const RETAINED_BYTES: usize = 1 << 20;

/// A reusable parser of single CSV lines (comma-separated, `"` quotes, RFC 4180 doubling).
pub(crate) struct CsvLine {
    parser: csv_core::Reader,
    record: csv::ByteRecord,
    fields: Vec<u8>,
    ends: Vec<usize>,
}

impl CsvLine {
    pub(crate) fn new() -> Self {
        CsvLine {
            // Only `\n` ends a record; the line reader has taken it (and a `\r` before it)
            // off already, so any other `\r` is data.
            parser: csv_core::ReaderBuilder::new()
                .terminator(csv_core::Terminator::Any(b'\n'))
                .build(),
            record: csv::ByteRecord::new(),
            fields: Vec::new(),
            ends: Vec::new(),
        }
    }

    /// The fields of `line` (a line without its line ending).
    pub(crate) fn parse(&mut self, line: &[u8]) -> &csv::ByteRecord {
        self.parser.reset();
        // Unquoting never makes a field longer: the fields fit in the line's length. The
        // field ends grow as a line needs them (one per byte would be 8 bytes a byte).
        if self.fields.len() < line.len() {
            self.fields.resize(line.len(), 0);
        }
        if self.ends.is_empty() {
            self.ends.resize(FIRST_ENDS, 0);
        }
        let (mut out, mut ends, mut input) = (0, 0, line);
        loop {
            let (result, nin, nout, nend) =
                self.parser
                    .read_record(input, &mut self.fields[out..], &mut self.ends[ends..]);
            input = &input[nin..];
            out += nout;
            ends += nend;
            match result {
                // All of the line is in; an empty input says the record ends here.
                csv_core::ReadRecordResult::InputEmpty => debug_assert!(input.is_empty()),
                csv_core::ReadRecordResult::Record | csv_core::ReadRecordResult::End => break,
                csv_core::ReadRecordResult::OutputEndsFull => {
                    self.ends.resize(self.ends.len() * 2, 0);
                }
                csv_core::ReadRecordResult::OutputFull => {
                    self.fields
                        .resize((self.fields.len() * 2).max(FIRST_ENDS), 0);
                }
            }
        }
        self.record.clear();
        let mut start = 0;
        for &end in &self.ends[..ends] {
            self.record.push_field(&self.fields[start..end]);
            start = end;
        }
        // A very long line does not keep its buffers for the rest of the read.
        if self.fields.len() > RETAINED_BYTES {
            self.fields = Vec::new();
        }
        if self.ends.len() * std::mem::size_of::<usize>() > RETAINED_BYTES {
            self.ends = Vec::new();
        }
        &self.record
    }

    /// Decodes `line` into `T`, matching fields to `headers` by name. The error is the reason
    /// for the dead letter.
    pub(crate) fn decode<T: DeserializeOwned>(
        &mut self,
        line: &[u8],
        headers: &csv::ByteRecord,
    ) -> Result<T, String> {
        // Only a line with a quote can leave one open: the others are not scanned twice.
        if memchr::memchr(b'"', line).is_some() && ends_in_quotes(line) {
            return Err(QUOTE_LEFT_OPEN.to_string());
        }
        let record = self.parse(line);
        if record.len() != headers.len() {
            let names: Vec<String> = headers
                .iter()
                .map(|h| String::from_utf8_lossy(h).into_owned())
                .collect();
            return Err(format!(
                "expected {} fields ({}), found {}",
                headers.len(),
                names.join(","),
                record.len()
            ));
        }
        record.deserialize(Some(headers)).map_err(|e| e.to_string())
    }
}

/// Why a CSV line that ends inside a quoted field is a dead letter.
const QUOTE_LEFT_OPEN: &str = "a quoted field is still open at the end of the line: a CSV record \
     must be one line here (the lines that continued it are read as lines of their own); read \
     CSV whose quoted fields hold newlines with `read_csv_multiline`";

/// Where a CSV parser is within a line, for [`ends_in_quotes`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum FieldState {
    /// At the start of a field, where a quote opens a quoted field.
    Start,
    /// In an unquoted field (or after a quoted one closed), where a quote is data.
    Plain,
    /// In a quoted field.
    Quoted,
    /// After a quote in a quoted field: it closed the field, or a second quote follows.
    QuoteInQuoted,
}

/// Whether a quoted field is still open at the end of `line`. The rules are `csv_core`'s,
/// which [`CsvLine`] parses with: a quote opens a quoted field only at the start of a field,
/// and `""` inside one is a quote.
pub(crate) fn ends_in_quotes(line: &[u8]) -> bool {
    QuoteScan::new().line(line).is_open()
}

/// Where a record is after the lines scanned so far: whether a quoted field is open, so
/// that the next line continues the record (the newline between them is part of the field).
#[derive(Clone, Copy)]
pub(crate) struct QuoteScan(FieldState);

impl QuoteScan {
    /// At the start of a record.
    pub(crate) fn new() -> Self {
        QuoteScan(FieldState::Start)
    }

    /// Scans the next line of the record (a newline inside quotes is data, so it leaves the
    /// state as it is).
    pub(crate) fn line(self, line: &[u8]) -> Self {
        let mut state = self.0;
        for &byte in line {
            state = match (state, byte) {
                (FieldState::Start, b'"') => FieldState::Quoted,
                (FieldState::Start | FieldState::Plain, b',') => FieldState::Start,
                (FieldState::Start | FieldState::Plain, _) => FieldState::Plain,
                (FieldState::Quoted, b'"') => FieldState::QuoteInQuoted,
                (FieldState::Quoted, _) => FieldState::Quoted,
                (FieldState::QuoteInQuoted, b'"') => FieldState::Quoted,
                (FieldState::QuoteInQuoted, b',') => FieldState::Start,
                (FieldState::QuoteInQuoted, _) => FieldState::Plain,
            };
        }
        QuoteScan(state)
    }

    /// Whether a quoted field is open: the record goes on on the next line.
    pub(crate) fn is_open(self) -> bool {
        self.0 == FieldState::Quoted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(line: &[u8]) -> Vec<Vec<u8>> {
        CsvLine::new()
            .parse(line)
            .iter()
            .map(<[u8]>::to_vec)
            .collect()
    }

    #[test]
    fn parses_quoted_and_empty_fields_like_the_csv_crate() {
        let mut p = CsvLine::new();
        for line in [
            &b"a,b,c"[..],
            b"",
            b",",
            b"\"x,y\",\"he said \"\"hi\"\"\",z",
            b"\"unterminated,a",
            b"a\rb,c",
            b"\xef\xbb\xbfid,name",
            b"caf\xe9,\x00",
        ] {
            let mut reference = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .terminator(csv::Terminator::Any(b'\n'))
                .from_reader(line);
            let mut want = csv::ByteRecord::new();
            reference.read_byte_record(&mut want).unwrap();
            let got = p.parse(line);
            assert_eq!(
                got.iter().collect::<Vec<_>>(),
                want.iter().collect::<Vec<_>>(),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
        assert_eq!(fields(b"1,2"), vec![b"1".to_vec(), b"2".to_vec()]);
    }

    #[test]
    fn decodes_by_header_name_and_explains_failures() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Row {
            id: u64,
            name: String,
        }
        let headers = csv::ByteRecord::from(vec!["name", "id"]);
        let mut p = CsvLine::new();
        assert_eq!(
            p.decode::<Row>(b"ann,7", &headers),
            Ok(Row {
                id: 7,
                name: "ann".into()
            })
        );
        let e = p.decode::<Row>(b"ann", &headers).unwrap_err();
        assert_eq!(e, "expected 2 fields (name,id), found 1");
        let e = p.decode::<Row>(b"ann,x", &headers).unwrap_err();
        assert!(e.contains("invalid digit"), "{e}");
        let e = p.decode::<Row>(b"caf\xe9,1", &headers).unwrap_err();
        assert!(e.to_lowercase().contains("utf-8"), "{e}");
    }

    /// A line of 200,000 fields (more field ends than a parser starts with) parses whole,
    /// and a line of 3 MiB in two fields does not size the field ends by its bytes, nor
    /// keep its buffers afterwards.
    #[test]
    fn field_ends_grow_as_a_line_needs_them_and_long_lines_do_not_stay_in_memory() {
        let mut p = CsvLine::new();
        let many = vec!["7"; 200_000].join(",");
        let record = p.parse(many.as_bytes());
        assert_eq!(record.len(), 200_000);
        assert!(record.iter().all(|f| f == b"7"));

        let long = format!("{},\"{}\"", "a".repeat(3 << 20), "b");
        let record = p.parse(long.as_bytes());
        assert_eq!(record.len(), 2);
        assert_eq!((record[0].len(), &record[1]), (3 << 20, &b"b"[..]));
        assert!(
            p.fields.capacity() <= RETAINED_BYTES,
            "{}",
            p.fields.capacity()
        );
        assert!(p.ends.len() <= 200_000, "{}", p.ends.len());
        assert_eq!(fields(b"x,y"), vec![b"x".to_vec(), b"y".to_vec()]);
        assert_eq!(
            p.parse(b"x,y").len(),
            2,
            "a parser goes on after freeing its buffers"
        );
    }

    /// A line ends inside quotes exactly when the csv crate, given the line and another
    /// after it, reads a record whose field holds the newline.
    #[test]
    fn a_quoted_field_left_open_at_the_end_of_a_line_is_noticed_as_the_csv_crate_reads_it() {
        let lines: [&[u8]; 14] = [
            b"a,b,c",
            b"1,\"open",
            b"1,\"closed\",2",
            b"\"he said \"\"hi\"\"\",z",
            b"\"ends with an escaped quote \"\"",
            b"\"ends with an escaped quote \"\"\"",
            b"a\"b,c",
            b"a,b\"",
            b"\"x\"y,\"z",
            b"",
            b"\"",
            b"\"\"",
            b",\",\"",
            b"x\",\"y",
        ];
        for line in lines {
            let two_lines = [line, b"\nnext"].concat();
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .terminator(csv::Terminator::Any(b'\n'))
                .from_reader(two_lines.as_slice());
            let mut record = csv::ByteRecord::new();
            reader.read_byte_record(&mut record).unwrap();
            let spans = record.iter().any(|f| f.contains(&b'\n'));
            let text = String::from_utf8_lossy(line);
            assert_eq!(ends_in_quotes(line), spans, "{text}");
        }
    }
}
