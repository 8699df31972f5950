//! Tables: named, typed columns (`schema`) over a stream of column batches (`batch`,
//! `column`), the unit every stage consumes and produces. See `docs/flink-ml.md` for why
//! Weir uses its own columnar batches rather than Arrow record batches.

mod batch;
mod column;
mod data_type;
mod schema;
mod strings;
#[allow(clippy::module_inception)]
mod table;
mod value;
mod vector;

pub use batch::{json_row, RowBatch};
pub use column::{Column, VectorRef};
pub use data_type::DataType;
pub use schema::{Field, Schema};
pub use strings::{StringColumn, StringIter};
pub use table::{Table, TableCollector, DEFAULT_BATCH_ROWS};
pub use value::Value;
pub use vector::SparseVector;
