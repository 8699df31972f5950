//! `FeatureHasher`: hashes numeric and categorical columns into one sparse vector (Flink ML's
//! `org.apache.flink.ml.feature.featurehasher`).

use std::io::Write;

use weir_core::Job;

use crate::common::stage_macros::{stage, stage_basics};
use crate::common::table_ops::{map_batches, one_input};
use crate::api::{Stage};
use crate::error::MlError;
use crate::param::shared::{CATEGORICAL_COLS, INPUT_COLS, NUM_FEATURES, OUTPUT_COL};
use crate::param::WithParams;
use crate::table::{Column, DataType, RowBatch, SparseVector, Table};

stage!(
    /// Hashes the columns of `inputCols` into a sparse vector of size `numFeatures` in
    /// `outputCol`, as Flink ML does with Guava's `murmur3_32(0).hashUnencodedChars`:
    ///
    /// - a numeric column (`Long`, `Double`) adds its value at the index of its name's hash;
    /// - a categorical column (those of `categoricalCols`, and every `String` or `Boolean`
    ///   column) adds 1.0 at the index of the hash of `"name=value"`, the value written as
    ///   Java writes it (`true`, `0.5`, `1.0E-5`).
    ///
    /// The index of a hash `h` is `floorMod(abs(h), numFeatures)`; values at one index add
    /// up. Numeric columns come first, then categorical ones, each in `inputCols` order. A NaN
    /// (Weir's missing number) is left out, as Flink ML leaves out nulls.
    ///
    /// ```
    /// use weir_core::{execute, Config};
    /// use weir_flink_ml::api::Stage;
    /// use weir_flink_ml::feature::FeatureHasher;
    /// use weir_flink_ml::param::{shared::{INPUT_COLS, NUM_FEATURES}, WithParams};
    /// use weir_flink_ml::table::{DataType, SparseVector, Schema, Table, TableCollector, Value};
    /// let hasher = FeatureHasher::new()
    ///     .set(&INPUT_COLS, vec!["f0".into(), "f1".into(), "f2".into()]).unwrap()
    ///     .set(&NUM_FEATURES, 1000).unwrap();
    /// let out = TableCollector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     let schema = Schema::new([
    ///         ("f0", DataType::String), ("f1", DataType::Double), ("f2", DataType::Boolean),
    ///     ]);
    ///     let rows = vec![vec![Value::String("a".into()), Value::Double(1.0), Value::Boolean(true)]];
    ///     let table = Table::from_rows(job, "rows", schema, rows)?;
    ///     hasher.transform(job, vec![table])?.remove(0).collect("out", &sink);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// let expected = SparseVector::new(1000, vec![607, 635, 913], vec![1.0; 3]).unwrap();
    /// assert_eq!(out.rows()[0][3], Value::SparseVector(expected));
    /// ```
    FeatureHasher,
    "org.apache.flink.ml.feature.featurehasher.FeatureHasher",
    [
        &INPUT_COLS.spec,
        &OUTPUT_COL.spec,
        &CATEGORICAL_COLS.spec,
        &NUM_FEATURES.spec
    ]
);

impl crate::param::HasInputCols for FeatureHasher {}
impl crate::param::HasOutputCol for FeatureHasher {}
impl crate::param::HasCategoricalCols for FeatureHasher {}
impl crate::param::HasNumFeatures for FeatureHasher {}

/// The registry entries of this module.
pub(crate) const CLASSES: &[crate::api::StageClass] = crate::api::stage_classes!(FeatureHasher);

/// Guava's `murmur3_32(0).hashUnencodedChars` of UTF-16 code units: MurmurHash3 (x86, 32
/// bits, seed 0) of their little-endian bytes.
fn murmur3_utf16(chars: &[u16]) -> i32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    fn mix_k1(k1: u32) -> u32 {
        k1.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2)
    }
    let mut h1: u32 = 0;
    let mut pairs = chars.chunks_exact(2);
    for pair in &mut pairs {
        let k1 = pair[0] as u32 | ((pair[1] as u32) << 16);
        h1 ^= mix_k1(k1);
        h1 = h1.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    if let [last] = pairs.remainder() {
        h1 ^= mix_k1(*last as u32);
    }
    h1 ^= (2 * chars.len()) as u32;
    h1 ^= h1 >> 16;
    h1 = h1.wrapping_mul(0x85eb_ca6b);
    h1 ^= h1 >> 13;
    h1 = h1.wrapping_mul(0xc2b2_ae35);
    h1 ^= h1 >> 16;
    h1 as i32
}

/// Flink ML's index of a hash: `Math.floorMod(Math.abs(h), numFeatures)`.
fn index_of(chars: &[u16], num_features: i64) -> usize {
    let h = murmur3_utf16(chars).wrapping_abs() as i64;
    h.rem_euclid(num_features) as usize
}

fn utf16(s: &str) -> Vec<u16> {
    s.encode_utf16().collect()
}

/// The shortest decimal digits that read back as `a` (finite, > 0) and the decimal exponent
/// of the first: `a = 0.d1d2... * 10^(exp + 1)`. `scratch` is a buffer.
fn shortest_digits(a: f64, scratch: &mut Vec<u8>, digits: &mut Vec<u8>) -> i32 {
    use serde_json::ser::Formatter;
    // serde_json writes doubles with Ryu: the shortest digits, as `123.45`, `1e-7` or
    // `1.5e300`.
    scratch.clear();
    serde_json::ser::CompactFormatter
        .write_f64(scratch, a)
        .expect("writing to a Vec");
    let (mantissa, exponent) = match scratch.iter().position(|b| *b == b'e' || *b == b'E') {
        Some(e) => (
            &scratch[..e],
            std::str::from_utf8(&scratch[e + 1..])
                .ok()
                .and_then(|t| t.parse::<i32>().ok())
                .expect("Ryu writes an integer exponent"),
        ),
        None => (&scratch[..], 0),
    };
    digits.clear();
    // The position of the decimal point among the mantissa's digits.
    let mut point = None;
    let mut seen = 0i32;
    let mut first = None;
    for b in mantissa {
        match b {
            b'.' => point = Some(seen),
            b'0'..=b'9' => {
                if first.is_none() && *b != b'0' {
                    first = Some(seen);
                }
                if first.is_some() {
                    digits.push(*b);
                }
                seen += 1;
            }
            _ => {}
        }
    }
    while digits.len() > 1 && digits.last() == Some(&b'0') {
        digits.pop();
    }
    let point = point.unwrap_or(seen);
    point - first.expect("a nonzero double has a nonzero digit") - 1 + exponent
}

/// Java's `Double.toString(x)` (the shortest decimal that reads back as `x`), appended to
/// `out` (ASCII); `scratch` and `digits` are buffers.
fn java_double(x: f64, out: &mut Vec<u8>, scratch: &mut Vec<u8>, digits: &mut Vec<u8>) {
    if x.is_nan() {
        out.extend_from_slice(b"NaN");
        return;
    }
    if x.is_infinite() {
        out.extend_from_slice(if x > 0.0 { b"Infinity" } else { b"-Infinity" });
        return;
    }
    if x.is_sign_negative() {
        out.push(b'-');
    }
    let a = x.abs();
    if a == 0.0 {
        out.extend_from_slice(b"0.0");
        return;
    }
    let mut exponent = shortest_digits(a, scratch, digits);
    if digits.len() == 1 && a < f64::MIN_POSITIVE {
        // Java prints at least two digits and, when one digit would do, the two closest to
        // `x` that still read back as it. Only subnormals have such wide rounding intervals
        // that those differ (Double.MIN_VALUE is `4.9E-324`, not `5.0E-324`).
        let two = format!("{a:.1e}");
        if two.parse::<f64>() == Ok(a) {
            let (mantissa, e) = two.split_once('e').expect("`{:e}` has an exponent");
            digits.clear();
            digits.extend(mantissa.bytes().filter(u8::is_ascii_digit));
            while digits.len() > 1 && digits.last() == Some(&b'0') {
                digits.pop();
            }
            exponent = e.parse().expect("`{:e}` has an integer exponent");
        }
    }
    let (first, rest) = digits.split_at(1);
    if (1e-3..1e7).contains(&a) {
        if exponent >= 0 {
            let e = exponent as usize;
            out.extend_from_slice(first);
            if rest.len() <= e {
                out.extend_from_slice(rest);
                out.extend(std::iter::repeat_n(b'0', e - rest.len()));
                out.extend_from_slice(b".0");
            } else {
                out.extend_from_slice(&rest[..e]);
                out.push(b'.');
                out.extend_from_slice(&rest[e..]);
            }
        } else {
            out.extend_from_slice(b"0.");
            out.extend(std::iter::repeat_n(b'0', (-exponent - 1) as usize));
            out.extend_from_slice(digits);
        }
    } else {
        out.extend_from_slice(first);
        out.push(b'.');
        out.extend_from_slice(if rest.is_empty() { b"0" } else { rest });
        out.push(b'E');
        write!(out, "{exponent}").expect("writing to a Vec");
    }
}

/// A categorical column: its index, name prefix (`"name="` in UTF-16) and, for booleans,
/// the indices of `false` and `true`.
struct Categorical {
    column: usize,
    prefix: Vec<u16>,
    booleans: Option<[usize; 2]>,
}

/// The operator's state.
struct Hasher {
    /// Numeric columns and the index of their name.
    numeric: Vec<(usize, usize)>,
    categorical: Vec<Categorical>,
    num_features: i64,
    entries: Vec<(usize, f64)>,
    chars: Vec<u16>,
    /// The text of a value (ASCII).
    text: Vec<u8>,
    scratch: Vec<u8>,
    digits: Vec<u8>,
}

impl Hasher {
    /// The index of `prefix` followed by the text in `self.text`.
    fn text_index(&mut self, prefix: &[u16]) -> usize {
        self.chars.clear();
        self.chars.extend_from_slice(prefix);
        self.chars.extend(self.text.iter().map(|b| *b as u16));
        index_of(&self.chars, self.num_features)
    }

    fn apply(&mut self, batch: RowBatch) -> Result<RowBatch, String> {
        let rows = batch.rows();
        let mut out = Vec::with_capacity(rows);
        let categorical = std::mem::take(&mut self.categorical);
        for i in 0..rows {
            self.entries.clear();
            for (column, index) in &self.numeric {
                let x = batch.column(*column).number(i).unwrap_or(f64::NAN);
                if !x.is_nan() {
                    self.entries.push((*index, x));
                }
            }
            for c in &categorical {
                let index = match (batch.column(c.column), c.booleans) {
                    (Column::Boolean(v), Some(indices)) => indices[v[i] as usize],
                    (Column::String(v), _) => {
                        self.chars.clear();
                        self.chars.extend_from_slice(&c.prefix);
                        self.chars.extend(v[i].encode_utf16());
                        index_of(&self.chars, self.num_features)
                    }
                    (Column::Long(v), _) => {
                        self.text.clear();
                        write!(self.text, "{}", v[i]).expect("writing to a Vec");
                        self.text_index(&c.prefix)
                    }
                    (Column::Double(v), _) => {
                        if v[i].is_nan() {
                            continue;
                        }
                        self.text.clear();
                        java_double(v[i], &mut self.text, &mut self.scratch, &mut self.digits);
                        self.text_index(&c.prefix)
                    }
                    (other, _) => {
                        return Err(format!(
                            "FeatureHasher: a {} column cannot be hashed",
                            other.data_type()
                        ))
                    }
                };
                self.entries.push((index, 1.0));
            }
            // Sum the values of one index in the order they came (Flink's TreeMap).
            self.entries.sort_by_key(|(index, _)| *index);
            let mut indices = Vec::with_capacity(self.entries.len());
            let mut values: Vec<f64> = Vec::with_capacity(self.entries.len());
            for (index, value) in &self.entries {
                if indices.last() == Some(index) {
                    *values.last_mut().expect("one value per index") += value;
                } else {
                    indices.push(*index);
                    values.push(*value);
                }
            }
            out.push(SparseVector {
                size: self.num_features as usize,
                indices,
                values,
            });
        }
        self.categorical = categorical;
        Ok(batch.with_column(Column::SparseVector(out)))
    }
}

impl Stage for FeatureHasher {
    stage_basics!(Transformer);

    fn transform<'s>(
        &self,
        job: &mut Job<'s>,
        inputs: Vec<Table<'s>>,
    ) -> Result<Vec<Table<'s>>, MlError> {
        let input = one_input(self, inputs)?;
        let cols = self.get(&INPUT_COLS)?;
        let listed = self.get(&CATEGORICAL_COLS)?;
        if let Some(c) = listed.iter().find(|c| !cols.contains(c)) {
            return Err(MlError::InvalidParam {
                stage: "FeatureHasher".into(),
                param: CATEGORICAL_COLS.name().into(),
                message: format!(
                    "lists `{c}`, which is not in inputCols: CategoricalCols must be included \
                     in inputCols!"
                ),
            });
        }
        let num_features = self.get(&NUM_FEATURES)?;
        let mut numeric = Vec::new();
        let mut categorical = Vec::new();
        for name in &cols {
            let column = input.schema.typed_index(
                "FeatureHasher",
                name,
                &[
                    DataType::Long,
                    DataType::Double,
                    DataType::String,
                    DataType::Boolean,
                ],
            )?;
            let data_type = input.schema.data_type(column);
            if listed.contains(name) || !data_type.is_numeric() {
                let prefix = utf16(&format!("{name}="));
                let booleans = (data_type == DataType::Boolean).then(|| {
                    [false, true].map(|b| index_of(&utf16(&format!("{name}={b}")), num_features))
                });
                categorical.push(Categorical {
                    column,
                    prefix,
                    booleans,
                });
            } else {
                numeric.push((column, index_of(&utf16(name), num_features)));
            }
        }
        let schema = input
            .schema
            .with_column(&self.get(&OUTPUT_COL)?, DataType::SparseVector)?;
        let mut hasher = Hasher {
            numeric,
            categorical,
            num_features,
            entries: Vec::new(),
            chars: Vec::new(),
            text: Vec::new(),
            scratch: Vec::new(),
            digits: Vec::new(),
        };
        Ok(vec![map_batches(job, self, input, schema, move |batch| {
            hasher.apply(batch)
        })])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(s: &str) -> i32 {
        murmur3_utf16(&utf16(s))
    }

    /// Values of Guava's `murmur3_32(0).hashUnencodedChars` computed in Java.
    #[test]
    fn murmur3_matches_guava() {
        assert_eq!(hash("0"), 384918240);
        assert_eq!(hash("1"), -126235597);
        assert_eq!(hash("a"), 1867108634);
        assert_eq!(hash("hello"), -675079799);
        assert_eq!(hash("f0=0.5"), -44627770);
    }

    fn java(x: f64) -> String {
        let (mut out, mut scratch, mut digits) = (Vec::new(), Vec::new(), Vec::new());
        java_double(x, &mut out, &mut scratch, &mut digits);
        String::from_utf8(out).unwrap()
    }

    /// Java's `Double.toString`.
    #[test]
    fn doubles_print_as_in_java() {
        assert_eq!(java(1.0), "1.0");
        assert_eq!(java(-2.25), "-2.25");
        assert_eq!(java(0.5), "0.5");
        assert_eq!(java(100.0), "100.0");
        assert_eq!(java(0.001), "0.001");
        assert_eq!(java(0.0001), "1.0E-4");
        assert_eq!(java(1.0e-5), "1.0E-5");
        assert_eq!(java(9999999.0), "9999999.0");
        assert_eq!(java(1.0e7), "1.0E7");
        assert_eq!(java(1.23456789e8), "1.23456789E8");
        assert_eq!(java(-0.0), "-0.0");
        assert_eq!(java(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(java(f64::NAN), "NaN");
        assert_eq!(java(f64::NEG_INFINITY), "-Infinity");
        assert_eq!(java(123.456), "123.456");
        assert_eq!(java(1.5e300), "1.5E300");
        assert_eq!(java(1e16), "1.0E16");
        assert_eq!(java(1.25e-7), "1.25E-7");
        assert_eq!(java(0.00123), "0.00123");
        assert_eq!(java(5e-324), "4.9E-324");
        assert_eq!(java(f64::MAX), "1.7976931348623157E308");
        assert_eq!(java(1234567.125), "1234567.125");
        // Shortest digits, as `{:e}` gives them, over many magnitudes.
        let mut x = 1.2345678901234567e-12;
        while x < 1e12 {
            let text = java(x);
            assert_eq!(text.replace('E', "e").parse::<f64>().unwrap(), x, "{text}");
            let rust = format!("{x:e}");
            let digits = |t: &str| {
                let m = t.split(['e', 'E']).next().unwrap().replace(['.', '-'], "");
                m.trim_start_matches('0').trim_end_matches('0').to_string()
            };
            assert_eq!(digits(&text), digits(&rust), "{text} vs {rust}");
            x *= 7.3;
        }
    }
}
