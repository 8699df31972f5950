//! Flink ML's benchmark data generators (`org.apache.flink.ml.benchmark.datagenerator.*`),
//! with Flink's params and values: rows are drawn from `java.util.Random` seeded as Flink
//! seeds subtask 0, `max(100, numValues / 1000)` rows are drawn, and the table cycles through
//! them (as Flink's `RowGenerator` does per subtask).

use std::sync::Arc;

use weir_core::{op, Job};

use super::java_random::{java_string_hash, subtask_seed, JavaRandom};
use crate::error::MlError;
use crate::param::{Param, ParamMap, ParamSpec, ParamType, Validator};
use crate::table::{Column, DataType, RowBatch, Schema, Table, Value, DEFAULT_BATCH_ROWS};

/// `seed` (null: the hash of the generator's class name, as Flink's `HasSeed`).
pub const SEED: Param<i64> = Param::new(
    "seed",
    "The random seed.",
    None,
    ParamType::Int,
    Validator::Always,
);
/// `numValues`: the number of rows.
pub const NUM_VALUES: Param<i64> = Param::new(
    "numValues",
    "Number of data to be generated.",
    Some("10"),
    ParamType::Int,
    Validator::Gt(0.0),
);
/// `colNames`: one array of column names per output table.
pub const COL_NAMES: Param<Vec<Vec<String>>> = Param::new(
    "colNames",
    "An array of String arrays representing the column names of the generated tables.",
    None,
    ParamType::StringArrayArray,
    Validator::Always,
);
/// `vectorDim`: the size of generated vectors.
pub const VECTOR_DIM: Param<i64> = Param::new(
    "vectorDim",
    "Dimension of vector-typed data to be generated.",
    Some("1"),
    ParamType::Int,
    Validator::Gt(0.0),
);
/// `arraySize`: the size of generated arrays.
pub const ARRAY_SIZE: Param<i64> = Param::new(
    "arraySize",
    "Size of array-typed data to be generated.",
    Some("1"),
    ParamType::Int,
    Validator::Gt(0.0),
);
/// `numDistinctValues`: the number of distinct strings.
pub const NUM_DISTINCT_VALUES: Param<i64> = Param::new(
    "numDistinctValues",
    "Number of distinct values of the data to be generated.",
    Some("10"),
    ParamType::Int,
    Validator::Gt(0.0),
);
/// `arity` (DoubleGenerator): 0 for doubles in [0, 1), else integers in [0, arity).
pub const ARITY: Param<i64> = Param::new(
    "arity",
    "Arity of the generated doubles (0: continuous in [0, 1)).",
    Some("0"),
    ParamType::Int,
    Validator::GtEq(0.0),
);
/// `featureArity` (LabeledPointWithWeightGenerator).
pub const FEATURE_ARITY: Param<i64> = Param::new(
    "featureArity",
    "Arity of each feature (0: continuous in [0, 1)).",
    Some("2"),
    ParamType::Int,
    Validator::GtEq(0.0),
);
/// `labelArity` (LabeledPointWithWeightGenerator).
pub const LABEL_ARITY: Param<i64> = Param::new(
    "labelArity",
    "Arity of the label (0: continuous in [0, 1)).",
    Some("2"),
    ParamType::Int,
    Validator::GtEq(0.0),
);

/// The kinds of generators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GeneratorKind {
    /// `DenseVectorGenerator`: one DenseVector column of doubles in [0, 1).
    DenseVector,
    /// `DenseVectorArrayGenerator`: one DenseVector[] column.
    DenseVectorArray,
    /// `DoubleGenerator`: Double columns.
    Double,
    /// `LabeledPointWithWeightGenerator`: features, label, weight.
    LabeledPointWithWeight,
    /// `RandomStringGenerator`: String columns of decimal integers.
    RandomString,
    /// `RandomStringArrayGenerator`: String[] columns.
    RandomStringArray,
    /// `KMeansModelDataGenerator`: one row of centroids and zero weights (model data).
    KMeansModelData,
}

const PACKAGE: &str = "org.apache.flink.ml.benchmark.datagenerator";

impl GeneratorKind {
    /// All generators.
    pub const ALL: [GeneratorKind; 7] = [
        GeneratorKind::DenseVector,
        GeneratorKind::DenseVectorArray,
        GeneratorKind::Double,
        GeneratorKind::LabeledPointWithWeight,
        GeneratorKind::RandomString,
        GeneratorKind::RandomStringArray,
        GeneratorKind::KMeansModelData,
    ];

    /// Flink's class name.
    pub fn class_name(self) -> &'static str {
        match self {
            GeneratorKind::DenseVector => {
                "org.apache.flink.ml.benchmark.datagenerator.common.DenseVectorGenerator"
            }
            GeneratorKind::DenseVectorArray => {
                "org.apache.flink.ml.benchmark.datagenerator.common.DenseVectorArrayGenerator"
            }
            GeneratorKind::Double => {
                "org.apache.flink.ml.benchmark.datagenerator.common.DoubleGenerator"
            }
            GeneratorKind::LabeledPointWithWeight => {
                "org.apache.flink.ml.benchmark.datagenerator.common.LabeledPointWithWeightGenerator"
            }
            GeneratorKind::RandomString => {
                "org.apache.flink.ml.benchmark.datagenerator.common.RandomStringGenerator"
            }
            GeneratorKind::RandomStringArray => {
                "org.apache.flink.ml.benchmark.datagenerator.common.RandomStringArrayGenerator"
            }
            GeneratorKind::KMeansModelData => {
                "org.apache.flink.ml.benchmark.datagenerator.clustering.KMeansModelDataGenerator"
            }
        }
    }

    fn params(self) -> &'static [&'static ParamSpec] {
        const DENSE: &[&ParamSpec] = &[
            &SEED.spec,
            &NUM_VALUES.spec,
            &COL_NAMES.spec,
            &VECTOR_DIM.spec,
        ];
        const DENSE_ARRAY: &[&ParamSpec] = &[
            &SEED.spec,
            &NUM_VALUES.spec,
            &COL_NAMES.spec,
            &ARRAY_SIZE.spec,
            &VECTOR_DIM.spec,
        ];
        const DOUBLE: &[&ParamSpec] = &[&SEED.spec, &NUM_VALUES.spec, &COL_NAMES.spec, &ARITY.spec];
        const LABELED: &[&ParamSpec] = &[
            &SEED.spec,
            &NUM_VALUES.spec,
            &COL_NAMES.spec,
            &VECTOR_DIM.spec,
            &FEATURE_ARITY.spec,
            &LABEL_ARITY.spec,
        ];
        const STRING: &[&ParamSpec] = &[
            &SEED.spec,
            &NUM_VALUES.spec,
            &COL_NAMES.spec,
            &NUM_DISTINCT_VALUES.spec,
        ];
        const STRING_ARRAY: &[&ParamSpec] = &[
            &SEED.spec,
            &NUM_VALUES.spec,
            &COL_NAMES.spec,
            &ARRAY_SIZE.spec,
            &NUM_DISTINCT_VALUES.spec,
        ];
        const KMEANS: &[&ParamSpec] = &[&SEED.spec, &VECTOR_DIM.spec, &ARRAY_SIZE.spec];
        match self {
            GeneratorKind::DenseVector => DENSE,
            GeneratorKind::DenseVectorArray => DENSE_ARRAY,
            GeneratorKind::Double => DOUBLE,
            GeneratorKind::LabeledPointWithWeight => LABELED,
            GeneratorKind::RandomString => STRING,
            GeneratorKind::RandomStringArray => STRING_ARRAY,
            GeneratorKind::KMeansModelData => KMEANS,
        }
    }

    /// The generator of a class name (fully qualified, or its last segment).
    pub fn find(class_name: &str) -> Option<GeneratorKind> {
        let short = class_name.rsplit('.').next().unwrap_or(class_name);
        GeneratorKind::ALL.into_iter().find(|g| {
            g.class_name() == class_name
                || (!class_name.starts_with(PACKAGE)
                    && g.class_name().ends_with(&format!(".{short}")))
        })
    }
}

/// A configured generator, checked: it knows its schema and its row count.
#[derive(Clone, Debug)]
pub struct DataGenerator {
    kind: GeneratorKind,
    params: ParamMap,
    schema: Schema,
}

impl DataGenerator {
    /// A generator from Flink's `{"className": ..., "paramMap": {...}}`; unknown classes,
    /// unknown params and invalid values are errors, as are column names that do not fit.
    pub fn parse(
        class_name: &str,
        param_map: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<DataGenerator, MlError> {
        let kind = GeneratorKind::find(class_name).ok_or_else(|| {
            MlError::UnknownClass(format!(
                "{class_name} (data generators: {})",
                GeneratorKind::ALL
                    .iter()
                    .map(|g| g.class_name().rsplit('.').next().unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        let short = kind.class_name().rsplit('.').next().unwrap_or_default();
        let short: &'static str = Box::leak(short.to_string().into_boxed_str());
        let mut params = ParamMap::new(short, kind.params());
        params.update_from_json(param_map)?;
        let schema = schema_of(kind, &params)?;
        Ok(DataGenerator {
            kind,
            params,
            schema,
        })
    }

    /// The generator's kind.
    pub fn kind(&self) -> GeneratorKind {
        self.kind
    }

    /// The generated table's schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The number of rows (`numValues`; 1 for model data).
    pub fn num_values(&self) -> u64 {
        if self.kind == GeneratorKind::KMeansModelData {
            return 1;
        }
        self.params.get(&NUM_VALUES).unwrap_or(10).max(1) as u64
    }

    /// Caps `numValues` at `cap` (to run a benchmark file at a smaller scale).
    pub fn cap_num_values(&mut self, cap: u64) {
        if self.kind != GeneratorKind::KMeansModelData && self.num_values() > cap {
            self.params
                .set(&NUM_VALUES, cap as i64)
                .expect("a positive numValues is valid");
        }
    }

    fn seed(&self) -> i64 {
        match self.params.get_opt(&SEED).ok().flatten() {
            Some(seed) => seed,
            // KMeansModelDataGenerator hands an unset seed to a DenseVectorArrayGenerator.
            None if self.kind == GeneratorKind::KMeansModelData => {
                java_string_hash(GeneratorKind::DenseVectorArray.class_name())
            }
            None => java_string_hash(self.kind.class_name()),
        }
    }

    fn int(&self, param: &Param<i64>) -> i64 {
        self.params.get(param).unwrap_or(1)
    }

    /// The distinct rows the table cycles through.
    pub fn pregenerated(&self) -> RowBatch {
        let n = self.num_values();
        let rows = if self.kind == GeneratorKind::KMeansModelData {
            1
        } else {
            (n / 1000).max(100)
        };
        let mut random = JavaRandom::new(subtask_seed(self.seed(), 0));
        let mut batch = RowBatch::empty(&self.schema);
        for _ in 0..rows {
            let row = self.row(&mut random);
            batch
                .push_row(&self.schema, row)
                .expect("generated rows fit their schema");
        }
        batch
    }

    fn row(&self, random: &mut JavaRandom) -> Vec<Value> {
        let dim = self.int(&VECTOR_DIM) as usize;
        let size = self.int(&ARRAY_SIZE) as usize;
        let columns = self.schema.len();
        let mut draw = |arity: i64| {
            if arity > 0 {
                random.next_int(arity as i32) as f64
            } else {
                random.next_double()
            }
        };
        match self.kind {
            GeneratorKind::DenseVector => {
                vec![Value::DenseVector((0..dim).map(|_| draw(0)).collect())]
            }
            GeneratorKind::DenseVectorArray => vec![Value::DenseVectorArray(
                (0..size)
                    .map(|_| (0..dim).map(|_| draw(0)).collect())
                    .collect(),
            )],
            GeneratorKind::Double => {
                let arity = self.int(&ARITY);
                (0..columns).map(|_| Value::Double(draw(arity))).collect()
            }
            GeneratorKind::LabeledPointWithWeight => {
                let (fa, la) = (self.int(&FEATURE_ARITY), self.int(&LABEL_ARITY));
                let features = (0..dim).map(|_| draw(fa)).collect();
                let label = draw(la);
                let weight = draw(0);
                vec![
                    Value::DenseVector(features),
                    Value::Double(label),
                    Value::Double(weight),
                ]
            }
            GeneratorKind::RandomString => {
                let distinct = self.int(&NUM_DISTINCT_VALUES) as i32;
                (0..columns)
                    .map(|_| Value::String(random.next_int(distinct).to_string()))
                    .collect()
            }
            GeneratorKind::RandomStringArray => {
                let distinct = self.int(&NUM_DISTINCT_VALUES) as i32;
                (0..columns)
                    .map(|_| {
                        Value::StringArray(
                            (0..size)
                                .map(|_| random.next_int(distinct).to_string())
                                .collect(),
                        )
                    })
                    .collect()
            }
            GeneratorKind::KMeansModelData => {
                let centroids = (0..size)
                    .map(|_| (0..dim).map(|_| draw(0)).collect())
                    .collect();
                vec![
                    Value::DenseVectorArray(centroids),
                    Value::DenseVector(vec![0.0; size]),
                ]
            }
        }
    }

    /// The generated table as a bounded source `op` of `job`, in batches.
    pub fn to_table<'s>(&self, job: &mut Job<'s>, name: &str) -> Table<'s> {
        let pre = Arc::new(self.pregenerated());
        let n = self.num_values();
        let batch_rows = DEFAULT_BATCH_ROWS as u64;
        let batches = n.div_ceil(batch_rows);
        let stream = job.generate(op(name), Some(batches), move |k| {
            let start = k * batch_rows;
            let len = batch_rows.min(n - start);
            cycle(&pre, start as usize, len as usize)
        });
        Table::new(self.schema.clone(), stream)
    }
}

fn schema_of(kind: GeneratorKind, params: &ParamMap) -> Result<Schema, MlError> {
    let stage = kind.class_name().rsplit('.').next().unwrap_or_default();
    let invalid = |message: String| MlError::InvalidParam {
        stage: stage.to_string(),
        param: "colNames".into(),
        message,
    };
    if kind == GeneratorKind::KMeansModelData {
        return Ok(Schema::new([
            ("centroids", DataType::DenseVectorArray),
            ("weights", DataType::DenseVector),
        ]));
    }
    let names = params.get(&COL_NAMES)?;
    if names.len() != 1 {
        return Err(invalid(format!(
            "must name the columns of exactly one table, got {} tables",
            names.len()
        )));
    }
    let names = &names[0];
    let expect = |n: usize| -> Result<(), MlError> {
        if names.len() == n {
            Ok(())
        } else {
            Err(invalid(format!(
                "must have {n} column name(s), got {}",
                names.len()
            )))
        }
    };
    let typed = |t: DataType| Schema::new(names.iter().map(|n| (n.clone(), t)));
    Ok(match kind {
        GeneratorKind::DenseVector => {
            expect(1)?;
            typed(DataType::DenseVector)
        }
        GeneratorKind::DenseVectorArray => {
            expect(1)?;
            typed(DataType::DenseVectorArray)
        }
        GeneratorKind::Double => typed(DataType::Double),
        GeneratorKind::LabeledPointWithWeight => {
            expect(3)?;
            Schema::new([
                (names[0].clone(), DataType::DenseVector),
                (names[1].clone(), DataType::Double),
                (names[2].clone(), DataType::Double),
            ])
        }
        GeneratorKind::RandomString => typed(DataType::String),
        GeneratorKind::RandomStringArray => typed(DataType::StringArray),
        GeneratorKind::KMeansModelData => unreachable!("handled above"),
    })
}

/// Rows `start..start + len` of the infinite repetition of `pre`.
fn cycle(pre: &RowBatch, start: usize, len: usize) -> RowBatch {
    let n = pre.rows();
    let ranges = || {
        let mut at = start % n;
        let mut left = len;
        std::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            let take = left.min(n - at);
            let range = at..at + take;
            left -= take;
            at = 0;
            Some(range)
        })
    };
    let columns = pre
        .columns()
        .iter()
        .map(|column| match &**column {
            Column::Double(c) => {
                Column::Double(ranges().flat_map(|r| c[r].iter().copied()).collect())
            }
            Column::Long(c) => Column::Long(ranges().flat_map(|r| c[r].iter().copied()).collect()),
            Column::Boolean(c) => {
                Column::Boolean(ranges().flat_map(|r| c[r].iter().copied()).collect())
            }
            Column::String(c) => Column::String(ranges().flat_map(|r| r.map(|i| &c[i])).collect()),
            Column::DenseVector { dim, values } => Column::DenseVector {
                dim: *dim,
                values: ranges()
                    .flat_map(|r| values[r.start * dim..r.end * dim].iter().copied())
                    .collect(),
            },
            Column::SparseVector(c) => {
                Column::SparseVector(ranges().flat_map(|r| c[r].iter().cloned()).collect())
            }
            Column::StringArray(c) => {
                Column::StringArray(ranges().flat_map(|r| c[r].iter().cloned()).collect())
            }
            Column::DoubleArray(c) => {
                Column::DoubleArray(ranges().flat_map(|r| c[r].iter().cloned()).collect())
            }
            Column::DenseVectorArray(c) => {
                Column::DenseVectorArray(ranges().flat_map(|r| c[r].iter().cloned()).collect())
            }
        })
        .collect();
    RowBatch::new(len, columns)
}
