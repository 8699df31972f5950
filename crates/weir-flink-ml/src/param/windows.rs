//! Flink ML's windowing strategies (`org.apache.flink.ml.common.window.Windows`): how a
//! windowed AlgoOperator cuts its input into mini-batches, as the `windows` param holds them,
//! in Flink's JSON form (`WindowsParam`): `{"class": "<Java class>"}` plus `size` or `gap`
//! (milliseconds for the time-based ones, rows for `CountTumblingWindows`).

use serde_json::{json, Value as Json};

use super::param::ParamValue;

const PACKAGE: &str = "org.apache.flink.ml.common.window.";

/// A windowing strategy.
///
/// ```
/// use weir_flink_ml::param::Windows;
/// let json = serde_json::json!({"class": "org.apache.flink.ml.common.window.CountTumblingWindows", "size": 5});
/// let windows = Windows::from_json(&json).unwrap();
/// assert_eq!(windows, Windows::CountTumbling { size: 5 });
/// assert_eq!(windows.to_json(), json);
/// assert_eq!(Windows::default(), Windows::Global);
/// assert!(Windows::from_json(&serde_json::json!({"class": "Tumbling"})).is_err());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Windows {
    /// `GlobalWindows`: the whole (bounded) input is one window.
    #[default]
    Global,
    /// `CountTumblingWindows`: every `size` rows in arrival order are a window (a last,
    /// incomplete window is never processed, as in Flink).
    CountTumbling {
        /// Rows per window.
        size: i64,
    },
    /// `EventTimeTumblingWindows` of `size` milliseconds.
    EventTimeTumbling {
        /// The window length in milliseconds.
        size: i64,
    },
    /// `ProcessingTimeTumblingWindows` of `size` milliseconds.
    ProcessingTimeTumbling {
        /// The window length in milliseconds.
        size: i64,
    },
    /// `EventTimeSessionWindows` with a `gap` in milliseconds.
    EventTimeSession {
        /// The session gap in milliseconds.
        gap: i64,
    },
    /// `ProcessingTimeSessionWindows` with a `gap` in milliseconds.
    ProcessingTimeSession {
        /// The session gap in milliseconds.
        gap: i64,
    },
}

impl Windows {
    /// The short name of the strategy's Java class (`GlobalWindows`, ...).
    pub fn class_name(&self) -> &'static str {
        match self {
            Windows::Global => "GlobalWindows",
            Windows::CountTumbling { .. } => "CountTumblingWindows",
            Windows::EventTimeTumbling { .. } => "EventTimeTumblingWindows",
            Windows::ProcessingTimeTumbling { .. } => "ProcessingTimeTumblingWindows",
            Windows::EventTimeSession { .. } => "EventTimeSessionWindows",
            Windows::ProcessingTimeSession { .. } => "ProcessingTimeSessionWindows",
        }
    }

    /// Reads Flink's JSON form; the error says what is wrong.
    pub fn from_json(json: &Json) -> Result<Windows, String> {
        let object = json
            .as_object()
            .ok_or_else(|| format!("windows must be a JSON object, got {json}"))?;
        let class = object
            .get("class")
            .and_then(Json::as_str)
            .ok_or("windows need a `class` string")?;
        let short = class.strip_prefix(PACKAGE).unwrap_or(class);
        let field = |name: &str| -> Result<i64, String> {
            let value = object
                .get(name)
                .and_then(Json::as_i64)
                .ok_or_else(|| format!("{short} needs an integer `{name}`"))?;
            if value <= 0 {
                return Err(format!(
                    "the `{name}` of {short} must be positive, got {value}"
                ));
            }
            Ok(value)
        };
        let (windows, extra) = match short {
            "GlobalWindows" => (Windows::Global, None),
            "CountTumblingWindows" => (
                Windows::CountTumbling {
                    size: field("size")?,
                },
                Some("size"),
            ),
            "EventTimeTumblingWindows" => (
                Windows::EventTimeTumbling {
                    size: field("size")?,
                },
                Some("size"),
            ),
            "ProcessingTimeTumblingWindows" => (
                Windows::ProcessingTimeTumbling {
                    size: field("size")?,
                },
                Some("size"),
            ),
            "EventTimeSessionWindows" => (
                Windows::EventTimeSession { gap: field("gap")? },
                Some("gap"),
            ),
            "ProcessingTimeSessionWindows" => (
                Windows::ProcessingTimeSession { gap: field("gap")? },
                Some("gap"),
            ),
            other => {
                return Err(format!(
                    "unsupported windows class {other} (Flink's are GlobalWindows, \
                     CountTumblingWindows, EventTimeTumblingWindows, \
                     ProcessingTimeTumblingWindows, EventTimeSessionWindows and \
                     ProcessingTimeSessionWindows of package {PACKAGE})"
                ))
            }
        };
        if let Some(key) = object
            .keys()
            .find(|k| k.as_str() != "class" && Some(k.as_str()) != extra)
        {
            return Err(format!("{short} has no field `{key}`"));
        }
        Ok(windows)
    }

    /// Flink's JSON form.
    pub fn to_json(&self) -> Json {
        let class = format!("{PACKAGE}{}", self.class_name());
        match *self {
            Windows::Global => json!({ "class": class }),
            Windows::CountTumbling { size }
            | Windows::EventTimeTumbling { size }
            | Windows::ProcessingTimeTumbling { size } => json!({ "class": class, "size": size }),
            Windows::EventTimeSession { gap } | Windows::ProcessingTimeSession { gap } => {
                json!({ "class": class, "gap": gap })
            }
        }
    }
}

impl ParamValue for Windows {
    fn from_json(json: &Json) -> Option<Self> {
        Windows::from_json(json).ok()
    }
    fn to_json(&self) -> Json {
        Windows::to_json(self)
    }
}
