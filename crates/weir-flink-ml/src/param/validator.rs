//! Flink ML's `ParamValidators`, as data: every validator can say what it expects.

use serde_json::Value as Json;

/// A check on a param's value.
#[derive(Clone, Copy, Debug)]
pub enum Validator {
    /// Anything (Flink's `alwaysTrue`).
    Always,
    /// `value > bound`.
    Gt(f64),
    /// `value >= bound`.
    GtEq(f64),
    /// `value < bound`.
    Lt(f64),
    /// `value <= bound`.
    LtEq(f64),
    /// `lower <(=) value <(=) upper`.
    InRange {
        /// The lower bound.
        lower: f64,
        /// The upper bound.
        upper: f64,
        /// Whether `lower` itself is allowed.
        lower_inclusive: bool,
        /// Whether `upper` itself is allowed.
        upper_inclusive: bool,
    },
    /// One of the given strings (Flink's `inArray`).
    InArray(&'static [&'static str]),
    /// An array whose every element is one of the given strings (Flink's `isSubSet`).
    IsSubSet(&'static [&'static str]),
    /// Not null (Flink's `notNull`).
    NotNull,
    /// A non-empty array, not null (Flink's `nonEmptyArray`).
    NonEmptyArray,
    /// A non-empty array whose numbers are all `> 0` (as used for arities and sizes).
    NonEmptyPositiveArray,
}

impl Validator {
    /// `inRange(lower, upper)` with both bounds inclusive, Flink's default.
    pub const fn in_range(lower: f64, upper: f64) -> Validator {
        Validator::InRange {
            lower,
            upper,
            lower_inclusive: true,
            upper_inclusive: true,
        }
    }

    /// Whether `value` passes. As in Flink, null passes only `Always`.
    pub fn accepts(&self, value: &Json) -> bool {
        let number = value.as_f64();
        match self {
            Validator::Always => true,
            Validator::NotNull => !value.is_null(),
            Validator::NonEmptyArray => value.as_array().is_some_and(|a| !a.is_empty()),
            Validator::NonEmptyPositiveArray => value.as_array().is_some_and(|a| {
                !a.is_empty() && a.iter().all(|x| x.as_f64().is_some_and(|x| x > 0.0))
            }),
            _ if value.is_null() => false,
            Validator::Gt(b) => number.is_some_and(|x| x > *b),
            Validator::GtEq(b) => number.is_some_and(|x| x >= *b),
            Validator::Lt(b) => number.is_some_and(|x| x < *b),
            Validator::LtEq(b) => number.is_some_and(|x| x <= *b),
            Validator::InRange {
                lower,
                upper,
                lower_inclusive,
                upper_inclusive,
            } => number.is_some_and(|x| {
                (x > *lower || (*lower_inclusive && x == *lower))
                    && (x < *upper || (*upper_inclusive && x == *upper))
            }),
            Validator::InArray(allowed) => one_of(value, allowed),
            Validator::IsSubSet(allowed) => value
                .as_array()
                .is_some_and(|a| a.iter().all(|v| one_of(v, allowed))),
        }
    }

    /// What the validator expects, for error messages.
    pub fn expects(&self) -> String {
        match self {
            Validator::Always => "any value".into(),
            Validator::NotNull => "a value (not null)".into(),
            Validator::NonEmptyArray => "a non-empty array".into(),
            Validator::NonEmptyPositiveArray => "a non-empty array of numbers > 0".into(),
            Validator::Gt(b) => format!("a number > {b}"),
            Validator::GtEq(b) => format!("a number >= {b}"),
            Validator::Lt(b) => format!("a number < {b}"),
            Validator::LtEq(b) => format!("a number <= {b}"),
            Validator::InRange {
                lower,
                upper,
                lower_inclusive,
                upper_inclusive,
            } => format!(
                "a number in {}{lower}, {upper}{}",
                if *lower_inclusive { "[" } else { "(" },
                if *upper_inclusive { "]" } else { ")" }
            ),
            Validator::InArray(allowed) => format!("one of {}", allowed.join(", ")),
            Validator::IsSubSet(allowed) => format!("a subset of {}", allowed.join(", ")),
        }
    }
}

fn one_of(value: &Json, allowed: &[&str]) -> bool {
    match value {
        Json::String(s) => allowed.contains(&s.as_str()),
        Json::Number(n) => allowed.contains(&n.to_string().as_str()),
        _ => false,
    }
}
