//! `HashingTF`: maps a sequence of terms to their term frequencies with the hashing trick
//! (Flink ML's `org.apache.flink.ml.feature.hashingtf`).
//!
//! The hash is Guava's `murmur3_32(0)` as Flink ML calls it: MurmurHash3 (x86, 32 bits,
//! seed 0) of a string's UTF-16 code units in little-endian order (`hashUnencodedChars`), and
//! of a `Double`'s `doubleToLongBits` as 8 little-endian bytes (`hashLong`). It is computed
//! here by a small function checked against values from Java (no dependency: the `murmur3`
//! crates hash byte streams, which would need every term re-encoded as UTF-16 bytes first).

use weir_core::Job;

use crate::common::stage_macros::{stage, stage_basics};
use crate::common::table_ops::{map_batches, one_input};
use crate::api::{Stage};
use crate::error::MlError;
use crate::param::shared::{INPUT_COL, NUM_FEATURES, OUTPUT_COL};
use crate::param::{Param, ParamType, Validator, WithParams};
use crate::table::{Column, DataType, RowBatch, SparseVector, Table};

/// `binary`: whether every non-zero term frequency is set to 1.0.
pub const BINARY: Param<bool> = Param::new(
    "binary",
    "Whether each dimension of the output vector is binary or not.",
    Some("false"),
    ParamType::Boolean,
    Validator::Always,
);

stage!(
    /// Counts the terms of every array of `inputCol` (`String[]` or `Double[]`) into a sparse
    /// vector of size `numFeatures` in `outputCol`: the count of a term goes to the index
    /// `nonNegativeMod(murmur3_32(term), numFeatures)`, terms of one index add up, and with
    /// `binary` every non-zero count is 1.0.
    ///
    /// A string hashes as Guava's `hashUnencodedChars` (its UTF-16 code units), a double as
    /// `hashLong(Double.doubleToLongBits(x))` (so `0.0` and `-0.0` differ, and every NaN is
    /// the canonical NaN).
    ///
    /// ```
    /// use weir_core::{execute, Config};
    /// use weir_flink_ml::api::Stage;
    /// use weir_flink_ml::feature::HashingTF;
    /// use weir_flink_ml::param::{shared::NUM_FEATURES, WithParams};
    /// use weir_flink_ml::table::{DataType, SparseVector, Schema, Table, TableCollector, Value};
    /// let tf = HashingTF::new().set(&NUM_FEATURES, 16).unwrap();
    /// let out = TableCollector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     let schema = Schema::new([("input", DataType::StringArray)]);
    ///     let terms = ["a", "b", "c", "a", "b", "a"].map(String::from).to_vec();
    ///     let table = Table::from_rows(job, "rows", schema, vec![vec![Value::StringArray(terms)]])?;
    ///     tf.transform(job, vec![table])?.remove(0).collect("out", &sink);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// let expected = SparseVector::new(16, vec![1, 7, 10], vec![1.0, 2.0, 3.0]).unwrap();
    /// assert_eq!(out.rows()[0][1], Value::SparseVector(expected));
    /// ```
    HashingTF,
    "org.apache.flink.ml.feature.hashingtf.HashingTF",
    [
        &INPUT_COL.spec,
        &OUTPUT_COL.spec,
        &NUM_FEATURES.spec,
        &BINARY.spec
    ]
);

impl crate::param::HasInputCol for HashingTF {}
impl crate::param::HasOutputCol for HashingTF {}
impl crate::param::HasNumFeatures for HashingTF {}

/// The registry entries of this module.
pub(crate) const CLASSES: &[crate::api::StageClass] = crate::api::stage_classes!(HashingTF);

const C1: u32 = 0xcc9e_2d51;
const C2: u32 = 0x1b87_3593;

fn mix_k1(k1: u32) -> u32 {
    k1.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2)
}

fn mix_h1(h1: u32, k1: u32) -> u32 {
    (h1 ^ k1)
        .rotate_left(13)
        .wrapping_mul(5)
        .wrapping_add(0xe654_6b64)
}

fn fmix(mut h1: u32, length: u32) -> i32 {
    h1 ^= length;
    h1 ^= h1 >> 16;
    h1 = h1.wrapping_mul(0x85eb_ca6b);
    h1 ^= h1 >> 13;
    h1 = h1.wrapping_mul(0xc2b2_ae35);
    h1 ^= h1 >> 16;
    h1 as i32
}

/// Guava's `murmur3_32(0).hashUnencodedChars(s)`: MurmurHash3 (x86, 32 bits, seed 0) of the
/// UTF-16 code units of `s`, little-endian, two units per block.
pub(crate) fn hash_unencoded_chars(s: &str) -> i32 {
    let mut h1 = 0u32;
    let mut units = 0u32;
    if s.is_ascii() {
        // One code unit per byte.
        let bytes = s.as_bytes();
        let mut pairs = bytes.chunks_exact(2);
        for pair in &mut pairs {
            h1 = mix_h1(h1, mix_k1(pair[0] as u32 | ((pair[1] as u32) << 16)));
        }
        if let [last] = pairs.remainder() {
            h1 ^= mix_k1(*last as u32);
        }
        units = bytes.len() as u32;
    } else {
        let mut pending = None;
        for unit in s.encode_utf16() {
            units += 1;
            match pending.take() {
                None => pending = Some(unit),
                Some(first) => {
                    h1 = mix_h1(h1, mix_k1(first as u32 | ((unit as u32) << 16)));
                }
            }
        }
        if let Some(last) = pending {
            h1 ^= mix_k1(last as u32);
        }
    }
    fmix(h1, 2 * units)
}

/// Guava's `murmur3_32(0).hashLong(x)`: the 8 little-endian bytes of `x`.
pub(crate) fn hash_long(x: i64) -> i32 {
    let h1 = mix_h1(0, mix_k1(x as u32));
    let h1 = mix_h1(h1, mix_k1((x >> 32) as u32));
    fmix(h1, 8)
}

/// Guava's `murmur3_32(0).hashInt(x)`: the 4 little-endian bytes of `x`.
#[cfg(test)]
fn hash_int(x: i32) -> i32 {
    fmix(mix_h1(0, mix_k1(x as u32)), 4)
}

/// Java's `Double.doubleToLongBits` (every NaN is the canonical NaN).
fn double_to_long_bits(x: f64) -> i64 {
    if x.is_nan() {
        0x7ff8_0000_0000_0000
    } else {
        x.to_bits() as i64
    }
}

/// Flink ML's `nonNegativeMod(x, mod)`.
fn non_negative_mod(x: i32, modulus: i32) -> u32 {
    x.rem_euclid(modulus) as u32
}

/// The operator's state: the input column, the size, `binary`, and a buffer of indices.
struct Hashing {
    column: usize,
    column_name: String,
    num_features: i32,
    binary: bool,
    indices: Vec<u32>,
}

impl Hashing {
    /// The sparse vector of the indices in `self.indices` (in any order, with repeats).
    fn vector(&mut self) -> SparseVector {
        self.indices.sort_unstable();
        let mut indices: Vec<usize> = Vec::with_capacity(self.indices.len());
        let mut values: Vec<f64> = Vec::with_capacity(self.indices.len());
        for &index in &self.indices {
            if indices.last() == Some(&(index as usize)) {
                if !self.binary {
                    *values.last_mut().expect("one value per index") += 1.0;
                }
            } else {
                indices.push(index as usize);
                values.push(1.0);
            }
        }
        SparseVector {
            size: self.num_features as usize,
            indices,
            values,
        }
    }

    fn apply(&mut self, batch: RowBatch) -> Result<RowBatch, String> {
        let n = self.num_features;
        let mut out = Vec::with_capacity(batch.rows());
        match batch.column(self.column) {
            Column::StringArray(rows) => {
                for terms in rows {
                    self.indices.clear();
                    self.indices.extend(
                        terms
                            .iter()
                            .map(|t| non_negative_mod(hash_unencoded_chars(t), n)),
                    );
                    out.push(self.vector());
                }
            }
            Column::DoubleArray(rows) => {
                for terms in rows {
                    self.indices.clear();
                    self.indices.extend(
                        terms
                            .iter()
                            .map(|x| non_negative_mod(hash_long(double_to_long_bits(*x)), n)),
                    );
                    out.push(self.vector());
                }
            }
            other => {
                return Err(format!(
                    "HashingTF: column `{}` is a {} column; Supported options are Array and \
                     Iterable (String[] or Double[])",
                    self.column_name,
                    other.data_type()
                ))
            }
        }
        Ok(batch.with_column(Column::SparseVector(out)))
    }
}

impl Stage for HashingTF {
    stage_basics!(Transformer);

    fn transform<'s>(
        &self,
        job: &mut Job<'s>,
        inputs: Vec<Table<'s>>,
    ) -> Result<Vec<Table<'s>>, MlError> {
        let input = one_input(self, inputs)?;
        let column_name = self.get(&INPUT_COL)?;
        let column = input.schema.typed_index(
            "HashingTF",
            &column_name,
            &[DataType::StringArray, DataType::DoubleArray],
        )?;
        let num_features =
            i32::try_from(self.get(&NUM_FEATURES)?).map_err(|_| MlError::InvalidParam {
                stage: "HashingTF".into(),
                param: NUM_FEATURES.name().into(),
                message: "must fit in a Java int".into(),
            })?;
        let schema = input
            .schema
            .with_column(&self.get(&OUTPUT_COL)?, DataType::SparseVector)?;
        let mut hashing = Hashing {
            column,
            column_name,
            num_features,
            binary: self.get(&BINARY)?,
            indices: Vec::new(),
        };
        Ok(vec![map_batches(job, self, input, schema, move |batch| {
            hashing.apply(batch)
        })])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values of Guava's `murmur3_32(0)` computed in Java.
    #[test]
    fn murmur3_matches_guava() {
        assert_eq!(hash_unencoded_chars("0"), 384918240);
        assert_eq!(hash_unencoded_chars("1"), -126235597);
        assert_eq!(hash_unencoded_chars("a"), 1867108634);
        assert_eq!(hash_unencoded_chars("hello"), -675079799);
        assert_eq!(hash_unencoded_chars("f0=0.5"), -44627770);
        assert_eq!(hash_int(1), -68075478);
        assert_eq!(hash_long(1), 1392991556);
        assert_eq!(hash_long(double_to_long_bits(1.0)), -142385009);
        let n = 262144;
        for (term, index) in [
            ("0", 90848),
            ("1", 117811),
            ("9", 167146),
            ("42", 68930),
            ("a", 119066),
            ("hello", 203145),
        ] {
            assert_eq!(
                non_negative_mod(hash_unencoded_chars(term), n),
                index,
                "{term}"
            );
        }
        // Non-ASCII terms hash their UTF-16 code units (a surrogate pair is two).
        let ascii_path = hash_unencoded_chars("hello");
        let mut h1 = 0u32;
        let units: Vec<u16> = "hello".encode_utf16().collect();
        for pair in units.chunks_exact(2) {
            h1 = mix_h1(h1, mix_k1(pair[0] as u32 | ((pair[1] as u32) << 16)));
        }
        h1 ^= mix_k1(units[4] as u32);
        assert_eq!(fmix(h1, 10), ascii_path);
    }
}
