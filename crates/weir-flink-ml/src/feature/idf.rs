//! `IDF`: inverse document frequency weighting of term-frequency vectors (Flink ML's
//! `org.apache.flink.ml.feature.idf`): `idf = ln((numDocs + 1) / (docFreq + 1))` per term.

use serde::{Deserialize, Serialize};
use weir_core::Job;

use super::max_abs_scaler::scale_column;
use crate::common::model_row::{dense_cell, ModelRow};
use crate::common::stage_macros::{model, model_data_methods, stage, stage_basics};
use crate::common::table_ops::{fit_aggregate, map_with_model, one_input, one_input_with_model};
use crate::api::{Fitted, Stage};
use crate::error::MlError;
use crate::param::shared::{INPUT_COL, OUTPUT_COL};
use crate::param::{Param, ParamType, Validator, WithParams};
use crate::table::{Column, DataType, RowBatch, Schema, Table};

/// `minDocFreq`: terms in fewer documents get IDF 0.
pub const MIN_DOC_FREQ: Param<i64> = Param::new(
    "minDocFreq",
    "Minimum number of documents that a term should appear for filtering.",
    Some("0"),
    ParamType::Int,
    Validator::GtEq(0.0),
);

stage!(
    /// Fits an [`IDFModel`]: for every term (element) of the term-frequency vectors of
    /// `inputCol` (dense or sparse, of one size), the number of documents where it is
    /// positive, and from it the IDF `ln((numDocs + 1) / (docFreq + 1))` (0 for terms in
    /// fewer than `minDocFreq` documents).
    ///
    /// ```
    /// use weir_core::{execute, Config};
    /// use weir_flink_ml::api::Stage;
    /// use weir_flink_ml::feature::IDF;
    /// use weir_flink_ml::table::{DataType, Schema, Table, TableCollector, Value};
    /// let out = TableCollector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     let schema = Schema::new([("input", DataType::DenseVector)]);
    ///     let rows: Vec<_> = [[1.0, 2.0], [0.0, 3.0], [0.0, 1.0]]
    ///         .iter()
    ///         .map(|v| vec![Value::DenseVector(v.to_vec())])
    ///         .collect();
    ///     let train = Table::from_rows(job, "train", schema.clone(), rows.clone())?;
    ///     let test = Table::from_rows(job, "test", schema, rows[..1].to_vec())?;
    ///     let fitted = IDF::new().fit(job, vec![train])?;
    ///     fitted.transform(job, vec![test])?.remove(0).collect("out", &sink);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// // Term 0 is in 1 of 3 documents: ln(4 / 2); term 1 in all: ln(4 / 4) = 0.
    /// assert_eq!(out.rows()[0][1], Value::DenseVector(vec![2f64.ln(), 0.0]));
    /// ```
    IDF,
    "org.apache.flink.ml.feature.idf.IDF",
    [&INPUT_COL.spec, &OUTPUT_COL.spec, &MIN_DOC_FREQ.spec]
);

model!(
    /// Multiplies every term frequency of `inputCol` by its IDF into `outputCol`, which has
    /// the input's vector type.
    IDFModel,
    "org.apache.flink.ml.feature.idf.IDFModel",
    [&INPUT_COL.spec, &OUTPUT_COL.spec]
);

/// The registry entries of this module.
pub(crate) const CLASSES: &[crate::api::StageClass] = crate::api::stage_classes!(IDF, IDFModel);

/// The model data: one row.
#[derive(Clone, Debug, PartialEq)]
pub struct IDFModelData {
    /// The IDF of every term.
    pub idf: Vec<f64>,
    /// The number of documents of every term (0 for those below `minDocFreq`; Flink's
    /// `long[]`, stored as a `Double[]` column).
    pub doc_freq: Vec<i64>,
    /// The number of documents.
    pub num_docs: i64,
}

impl IDFModelData {
    /// The model data table's schema (Flink's `idf`, `docFreq`, `numDocs`).
    pub fn schema() -> Schema {
        Schema::new([
            ("idf", DataType::DenseVector),
            ("docFreq", DataType::DoubleArray),
            ("numDocs", DataType::Long),
        ])
    }

    /// The model data as a one-row batch.
    pub fn to_batch(&self) -> RowBatch {
        RowBatch::new(
            1,
            vec![
                dense_cell(self.idf.clone()),
                Column::DoubleArray(vec![self.doc_freq.iter().map(|&d| d as f64).collect()]),
                Column::Long(vec![self.num_docs]),
            ],
        )
    }

    /// The model data from its table.
    pub fn from_batches(schema: &Schema, batches: &[RowBatch]) -> Result<Self, String> {
        let row = ModelRow::single("IDFModel", schema, batches)?;
        Ok(IDFModelData {
            idf: row.vector("idf")?,
            doc_freq: row
                .doubles("docFreq")?
                .into_iter()
                .map(|d| d as i64)
                .collect(),
            num_docs: row.number("numDocs")? as i64,
        })
    }
}

/// Documents seen and per term the documents where it is positive, and the first error.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct DocFreq {
    docs: i64,
    freq: Vec<f64>,
    error: Option<String>,
}

fn size_error(size: usize, expected: usize) -> String {
    format!("IDF: the input vectors have {size} elements, expected {expected}")
}

impl DocFreq {
    fn start(&mut self, size: usize) -> Result<(), String> {
        if self.docs == 0 {
            self.freq = vec![0.0; size];
        } else if self.freq.len() != size {
            return Err(size_error(size, self.freq.len()));
        }
        Ok(())
    }

    fn fold(&mut self, column: usize, batch: &RowBatch) {
        if self.error.is_some() || batch.rows() == 0 {
            return;
        }
        if let Err(e) = self.fold_column(batch.column(column), batch.rows()) {
            self.error = Some(e);
        }
    }

    fn fold_column(&mut self, column: &Column, rows: usize) -> Result<(), String> {
        let positive = |x: f64| if x > 0.0 { 1.0 } else { 0.0 };
        match column {
            Column::DenseVector { dim, values } => {
                self.start(*dim)?;
                if *dim > 0 {
                    for x in values.chunks_exact(*dim) {
                        for (f, &v) in self.freq.iter_mut().zip(x) {
                            *f += positive(v);
                        }
                    }
                }
                self.docs += rows as i64;
            }
            Column::SparseVector(c) => {
                for v in c {
                    self.start(v.size)?;
                    for (&i, &x) in v.indices.iter().zip(&v.values) {
                        self.freq[i] += positive(x);
                    }
                    self.docs += 1;
                }
            }
            other => {
                return Err(format!(
                    "IDF: expected a vector column, got a {} column",
                    other.data_type()
                ))
            }
        }
        Ok(())
    }

    fn merge(&mut self, other: DocFreq) {
        if self.error.is_some() {
            return;
        }
        if other.error.is_some() || self.docs == 0 {
            *self = other;
            return;
        }
        if other.docs == 0 {
            return;
        }
        if other.freq.len() != self.freq.len() {
            self.error = Some(size_error(other.freq.len(), self.freq.len()));
            return;
        }
        for (a, b) in self.freq.iter_mut().zip(other.freq) {
            *a += b;
        }
        self.docs += other.docs;
    }

    fn finish(self, min_doc_freq: i64) -> Result<IDFModelData, String> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.docs == 0 {
            return Err("IDF: the training set is empty".into());
        }
        let n = self.freq.len();
        let (mut idf, mut doc_freq) = (vec![0.0; n], vec![0i64; n]);
        for (i, &df) in self.freq.iter().enumerate() {
            if df >= min_doc_freq as f64 {
                idf[i] = ((self.docs + 1) as f64 / (df + 1.0)).ln();
                doc_freq[i] = df as i64;
            }
        }
        Ok(IDFModelData {
            idf,
            doc_freq,
            num_docs: self.docs,
        })
    }
}

impl Stage for IDF {
    stage_basics!(Estimator);

    fn fit<'s>(&self, job: &mut Job<'s>, inputs: Vec<Table<'s>>) -> Result<Fitted<'s>, MlError> {
        let input = one_input(self, inputs)?;
        let column = input.schema.typed_index(
            "IDF",
            &self.get(&INPUT_COL)?,
            &[DataType::DenseVector, DataType::SparseVector],
        )?;
        let min_doc_freq = self.get(&MIN_DOC_FREQ)?;
        let mut model = IDFModel::new();
        model.params.copy_existing_from(&self.params)?;
        let data = fit_aggregate(
            job,
            self,
            input,
            IDFModelData::schema(),
            DocFreq::default,
            move |acc, batch| acc.fold(column, &batch),
            DocFreq::merge,
            move |acc| Ok(acc.finish(min_doc_freq)?.to_batch()),
        );
        Ok(Fitted {
            model: Box::new(model),
            model_data: vec![data],
        })
    }
}

impl Stage for IDFModel {
    stage_basics!(Model);

    model_data_methods!();

    fn transform_with<'s>(
        &self,
        job: &mut Job<'s>,
        inputs: Vec<Table<'s>>,
        model_data: Vec<Table<'s>>,
    ) -> Result<Vec<Table<'s>>, MlError> {
        let (input, model_data) = one_input_with_model(self, inputs, model_data)?;
        let column = input.schema.typed_index(
            "IDFModel",
            &self.get(&INPUT_COL)?,
            &[DataType::DenseVector, DataType::SparseVector],
        )?;
        let output_type = input.schema.data_type(column);
        let schema = input
            .schema
            .with_column(&self.get(&OUTPUT_COL)?, output_type)?;
        let out = map_with_model(
            job,
            self,
            input,
            model_data,
            schema,
            |schema, batches| Ok(IDFModelData::from_batches(schema, &batches)?.idf),
            move |idf, batch| scale_column("IDFModel", idf, column, batch),
        );
        Ok(vec![out])
    }
}
