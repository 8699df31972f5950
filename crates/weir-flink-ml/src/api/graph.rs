//! `Graph` and `GraphModel`: stages in a DAG with several input and output tables (Flink ML's
//! `GraphBuilder`, `Graph`, `GraphModel`). Tables are named by [`TableId`]s; every node
//! consumes some and produces others, and nodes run in the order they were added.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value as Json};
use weir_core::Job;

use super::model_data::TableData;
use super::persistence::{load_stage, write_metadata};
use super::stage::{Fitted, Stage, StageKind};
use crate::error::MlError;
use crate::param::{ParamMap, WithParams};
use crate::table::Table;

/// Flink ML's class name of [`Graph`].
pub const GRAPH_CLASS: &str = "org.apache.flink.ml.builder.Graph";
/// Flink ML's class name of [`GraphModel`].
pub const GRAPH_MODEL_CLASS: &str = "org.apache.flink.ml.builder.GraphModel";

/// A table of a graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TableId(pub usize);

/// A node's wiring, as saved in `graphData`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeData {
    /// The node's id (its stage is saved under `stages/<id>`).
    pub node_id: usize,
    /// The tables the node consumes.
    pub inputs: Vec<TableId>,
    /// The tables the node produces.
    pub outputs: Vec<TableId>,
}

/// A node: a stage and its wiring.
#[derive(Clone)]
struct Node {
    stage: Box<dyn Stage>,
    data: NodeData,
}

/// Builds graphs: create input table ids, add stages, then build an estimator or a model.
///
/// ```
/// use weir_core::{execute, Config};
/// use weir_flink_ml::api::{GraphBuilder, ModelCollector, Stage};
/// use weir_flink_ml::feature::StandardScaler;
/// use weir_flink_ml::param::{shared::*, WithParams};
/// use weir_flink_ml::table::{DataType, Schema, Table, TableCollector, Value};
/// let mut builder = GraphBuilder::new();
/// let input = builder.create_table_id();
/// let scaled = builder.add_estimator(Box::new(StandardScaler::new()), &[input]);
/// let rescaled = builder.add_estimator(
///     Box::new(StandardScaler::new().set(&INPUT_COL, "output".into()).unwrap()
///         .set(&OUTPUT_COL, "twice".into()).unwrap()),
///     &scaled,
/// );
/// let graph = builder.build_estimator(&[input], &rescaled);
/// let out = TableCollector::new();
/// let sink = out.clone();
/// execute(Config::threads(2), move |job| {
///     let schema = Schema::new([("input", DataType::DenseVector)]);
///     let rows = (0..10).map(|i| vec![Value::DenseVector(vec![i as f64])]).collect();
///     let table = Table::from_rows(job, "rows", schema, rows)?;
///     let fitted = graph.fit(job, vec![table.clone()])?;
///     fitted.transform(job, vec![table])?.remove(0).collect("out", &sink);
///     Ok(())
/// }).unwrap();
/// assert_eq!(out.rows().len(), 10);
/// ```
#[derive(Default)]
pub struct GraphBuilder {
    next_table: usize,
    nodes: Vec<Node>,
}

impl GraphBuilder {
    /// An empty builder.
    pub fn new() -> GraphBuilder {
        GraphBuilder::default()
    }

    /// A new table id (for the graph's inputs).
    pub fn create_table_id(&mut self) -> TableId {
        self.next_table += 1;
        TableId(self.next_table - 1)
    }

    fn add(&mut self, stage: Box<dyn Stage>, inputs: &[TableId], outputs: usize) -> Vec<TableId> {
        let outputs: Vec<TableId> = (0..outputs).map(|_| self.create_table_id()).collect();
        let node_id = self.nodes.len();
        self.nodes.push(Node {
            stage,
            data: NodeData {
                node_id,
                inputs: inputs.to_vec(),
                outputs: outputs.clone(),
            },
        });
        outputs
    }

    /// Adds a transformer (or model) that reads `inputs` and writes one table.
    pub fn add_algo_operator(&mut self, stage: Box<dyn Stage>, inputs: &[TableId]) -> Vec<TableId> {
        self.add(stage, inputs, 1)
    }

    /// Adds an algorithm operator with `outputs` output tables.
    pub fn add_algo_operator_with_outputs(
        &mut self,
        stage: Box<dyn Stage>,
        inputs: &[TableId],
        outputs: usize,
    ) -> Vec<TableId> {
        self.add(stage, inputs, outputs)
    }

    /// Adds an estimator fitted on `inputs`; its model transforms `inputs` into one table.
    pub fn add_estimator(&mut self, stage: Box<dyn Stage>, inputs: &[TableId]) -> Vec<TableId> {
        self.add(stage, inputs, 1)
    }

    /// The graph as an estimator reading `inputs` and producing `outputs`.
    pub fn build_estimator(self, inputs: &[TableId], outputs: &[TableId]) -> Graph {
        Graph {
            nodes: self.nodes,
            inputs: inputs.to_vec(),
            outputs: outputs.to_vec(),
            params: ParamMap::new("Graph", &[]),
        }
    }

    /// The graph as a model (every node a transformer or a model with its data).
    pub fn build_model(self, inputs: &[TableId], outputs: &[TableId]) -> GraphModel {
        GraphModel {
            nodes: self.nodes,
            inputs: inputs.to_vec(),
            outputs: outputs.to_vec(),
            params: ParamMap::new("GraphModel", &[]),
        }
    }
}

/// The tables of a graph being built into a job.
struct Tables<'s>(HashMap<TableId, Table<'s>>);

impl<'s> Tables<'s> {
    fn new(ids: &[TableId], tables: Vec<Table<'s>>, stage: &str) -> Result<Self, MlError> {
        if ids.len() != tables.len() {
            return Err(MlError::Inputs {
                stage: stage.into(),
                expected: ids.len(),
                actual: tables.len(),
            });
        }
        Ok(Tables(ids.iter().copied().zip(tables).collect()))
    }

    fn get(&self, ids: &[TableId]) -> Result<Vec<Table<'s>>, MlError> {
        ids.iter()
            .map(|id| {
                self.0.get(id).cloned().ok_or_else(|| {
                    MlError::Job(format!("table {} is used before a node produces it", id.0))
                })
            })
            .collect()
    }

    fn put(&mut self, ids: &[TableId], tables: Vec<Table<'s>>, stage: &str) -> Result<(), MlError> {
        if ids.len() != tables.len() {
            return Err(MlError::Stage {
                stage: stage.into(),
                message: format!(
                    "produced {} tables, the graph expects {}",
                    tables.len(),
                    ids.len()
                ),
            });
        }
        self.0.extend(ids.iter().copied().zip(tables));
        Ok(())
    }
}

/// A DAG of stages that is fitted as a whole (Flink ML's `Graph`).
#[derive(Clone)]
pub struct Graph {
    nodes: Vec<Node>,
    inputs: Vec<TableId>,
    outputs: Vec<TableId>,
    params: ParamMap,
}

/// A DAG of transformers and models (Flink ML's `GraphModel`).
#[derive(Clone)]
pub struct GraphModel {
    nodes: Vec<Node>,
    inputs: Vec<TableId>,
    outputs: Vec<TableId>,
    params: ParamMap,
}

impl WithParams for Graph {
    fn param_map(&self) -> &ParamMap {
        &self.params
    }
    fn param_map_mut(&mut self) -> &mut ParamMap {
        &mut self.params
    }
}

impl WithParams for GraphModel {
    fn param_map(&self) -> &ParamMap {
        &self.params
    }
    fn param_map_mut(&mut self) -> &mut ParamMap {
        &mut self.params
    }
}

impl Stage for Graph {
    fn class_name(&self) -> &'static str {
        GRAPH_CLASS
    }
    fn kind(&self) -> StageKind {
        StageKind::Estimator
    }
    fn clone_stage(&self) -> Box<dyn Stage> {
        Box::new(self.clone())
    }

    fn fit<'s>(&self, job: &mut Job<'s>, inputs: Vec<Table<'s>>) -> Result<Fitted<'s>, MlError> {
        let mut tables = Tables::new(&self.inputs, inputs, "Graph")?;
        let mut models = Vec::new();
        let mut data = Vec::new();
        for node in &self.nodes {
            let inputs = tables.get(&node.data.inputs)?;
            let (model, outputs) = if node.stage.kind() == StageKind::Estimator {
                let fitted = node.stage.fit(job, inputs.clone())?;
                let outputs = fitted.transform(job, inputs)?;
                data.extend(fitted.model_data);
                (fitted.model, outputs)
            } else {
                (node.stage.clone_stage(), node.stage.transform(job, inputs)?)
            };
            tables.put(&node.data.outputs, outputs, node.stage.short_name())?;
            models.push(Node {
                stage: model,
                data: node.data.clone(),
            });
        }
        Ok(Fitted {
            model: Box::new(GraphModel {
                nodes: models,
                inputs: self.inputs.clone(),
                outputs: self.outputs.clone(),
                params: ParamMap::new("GraphModel", &[]),
            }),
            model_data: data,
        })
    }

    fn save(&self, dir: &Path) -> Result<(), MlError> {
        save_graph(self, &self.nodes, &self.inputs, &self.outputs, dir)
    }
}

impl GraphModel {
    fn run<'s>(
        &self,
        job: &mut Job<'s>,
        inputs: Vec<Table<'s>>,
        mut model_data: Option<std::vec::IntoIter<Table<'s>>>,
    ) -> Result<Vec<Table<'s>>, MlError> {
        let mut tables = Tables::new(&self.inputs, inputs, "GraphModel")?;
        for node in &self.nodes {
            let inputs = tables.get(&node.data.inputs)?;
            let n = node.stage.model_data_tables();
            let outputs = match model_data.as_mut() {
                Some(data) if n > 0 => {
                    node.stage
                        .transform_with(job, inputs, data.by_ref().take(n).collect())?
                }
                _ => node.stage.transform(job, inputs)?,
            };
            tables.put(&node.data.outputs, outputs, node.stage.short_name())?;
        }
        tables.get(&self.outputs)
    }
}

impl Stage for GraphModel {
    fn class_name(&self) -> &'static str {
        GRAPH_MODEL_CLASS
    }
    fn kind(&self) -> StageKind {
        StageKind::Model
    }
    fn clone_stage(&self) -> Box<dyn Stage> {
        Box::new(self.clone())
    }

    fn transform<'s>(
        &self,
        job: &mut Job<'s>,
        inputs: Vec<Table<'s>>,
    ) -> Result<Vec<Table<'s>>, MlError> {
        self.run(job, inputs, None)
    }

    fn transform_with<'s>(
        &self,
        job: &mut Job<'s>,
        inputs: Vec<Table<'s>>,
        model_data: Vec<Table<'s>>,
    ) -> Result<Vec<Table<'s>>, MlError> {
        self.run(job, inputs, Some(model_data.into_iter()))
    }

    fn model_data_tables(&self) -> usize {
        self.nodes.iter().map(|n| n.stage.model_data_tables()).sum()
    }

    fn set_model_data(&mut self, data: Vec<TableData>) -> Result<(), MlError> {
        let mut data = data.into_iter();
        for node in &mut self.nodes {
            let n = node.stage.model_data_tables();
            if n > 0 {
                node.stage.set_model_data(data.by_ref().take(n).collect())?;
            }
        }
        Ok(())
    }

    fn save(&self, dir: &Path) -> Result<(), MlError> {
        save_graph(self, &self.nodes, &self.inputs, &self.outputs, dir)
    }
}

fn save_graph(
    owner: &(impl Stage + ?Sized),
    nodes: &[Node],
    inputs: &[TableId],
    outputs: &[TableId],
    dir: &Path,
) -> Result<(), MlError> {
    let graph_data = json!({
        "nodes": nodes.iter().map(|n| &n.data).collect::<Vec<_>>(),
        "inputs": inputs,
        "outputs": outputs,
    });
    let mut extra = Map::new();
    extra.insert("graphData".into(), graph_data);
    write_metadata(owner, dir, extra)?;
    for node in nodes {
        node.stage.save(&super::pipeline::stage_dir(
            dir,
            node.data.node_id,
            nodes.len(),
        ))?;
    }
    Ok(())
}

/// Loads a saved graph or graph model.
pub(crate) fn load_graph(
    class: &str,
    dir: &Path,
    meta: &Map<String, Json>,
) -> Result<Box<dyn Stage>, MlError> {
    let bad = |message: String| MlError::Saved {
        path: dir.join("metadata"),
        message,
    };
    let data = meta
        .get("graphData")
        .ok_or_else(|| bad("no `graphData`".into()))?;
    let nodes: Vec<NodeData> = serde_json::from_value(data["nodes"].clone())
        .map_err(|e| bad(format!("`graphData.nodes`: {e}")))?;
    let ids = |key: &str| -> Result<Vec<TableId>, MlError> {
        serde_json::from_value(data[key].clone())
            .map_err(|e| bad(format!("`graphData.{key}`: {e}")))
    };
    let (inputs, outputs) = (ids("inputs")?, ids("outputs")?);
    let count = nodes.len();
    let nodes = nodes
        .into_iter()
        .map(|data| {
            let stage = load_stage(&super::pipeline::stage_dir(dir, data.node_id, count))?;
            Ok(Node { stage, data })
        })
        .collect::<Result<Vec<_>, MlError>>()?;
    Ok(if class == GRAPH_CLASS || class == "Graph" {
        Box::new(Graph {
            nodes,
            inputs,
            outputs,
            params: ParamMap::new("Graph", &[]),
        })
    } else {
        Box::new(GraphModel {
            nodes,
            inputs,
            outputs,
            params: ParamMap::new("GraphModel", &[]),
        })
    })
}
