//! `RegexTokenizer`: splits strings into tokens with a regular expression (Flink ML's
//! `org.apache.flink.ml.feature.regextokenizer`).
//!
//! Flink ML compiles `pattern` with `java.util.regex.Pattern`; Weir translates it to the
//! `regex` crate's syntax with Java's meaning where the two differ: `\s`, `\w`, `\d`, `\h`,
//! `\v`, `\p{Punct}` and the other POSIX classes are ASCII-only as in Java, `.` does not
//! match Java's line terminators (`\n`, `\r`, U+0085, U+2028, U+2029), and `\Q...\E`,
//! `\e`, `\cX`, `\0nnn`, `\R` and `\p{IsX}` are rewritten. Java constructs the `regex`
//! crate has no equivalent for (look-around, back-references, atomic groups, possessive
//! quantifiers, `\G`, `\Z`, `\p{InBlock}`) are errors when the stage is built. Known
//! remaining differences: `(?i)` folds Unicode case (Java's folds ASCII only unless `(?u)`),
//! `$` matches only at the very end (Java's also before a final line terminator), and the
//! `d` and `U` flags are ignored.

use regex::Regex;
use weir_core::Job;

use crate::common::stage_macros::{stage, stage_basics};
use crate::common::table_ops::{map_batches, one_input};
use crate::api::{Stage};
use crate::error::MlError;
use crate::param::shared::{INPUT_COL, OUTPUT_COL};
use crate::param::{Param, ParamType, Validator, WithParams};
use crate::table::{Column, DataType, Table};

/// `minTokenLength`: the shortest token kept (in UTF-16 code units, as Java counts).
pub const MIN_TOKEN_LENGTH: Param<i64> = Param::new(
    "minTokenLength",
    "Minimum token length",
    Some("1"),
    ParamType::Int,
    Validator::GtEq(0.0),
);
/// `gaps`: whether `pattern` matches the gaps between tokens (`true`) or the tokens.
pub const GAPS: Param<bool> = Param::new(
    "gaps",
    "Set regex to match gaps or tokens",
    Some("true"),
    ParamType::Boolean,
    Validator::Always,
);
/// `pattern`: the regular expression (Java syntax).
pub const PATTERN: Param<String> = Param::new(
    "pattern",
    "Regex pattern used for tokenizing",
    Some("\"\\\\s+\""),
    ParamType::String,
    Validator::Always,
);
/// `toLowercase`: whether strings are lower-cased before tokenizing.
pub const TO_LOWERCASE: Param<bool> = Param::new(
    "toLowercase",
    "Whether to convert all characters to lowercase before tokenizing",
    Some("true"),
    ParamType::Boolean,
    Validator::Always,
);

stage!(
    /// Splits every string of `inputCol` into the `String[]` of `outputCol` with the regular
    /// expression `pattern` (Java syntax; see the module documentation), after lower-casing
    /// it if `toLowercase`. With `gaps` the pattern matches separators and the tokens are
    /// what Java's `Pattern.split` gives (a leading empty token when a separator starts the
    /// string, none for trailing separators, the whole string when nothing matches);
    /// otherwise the tokens are the pattern's successive matches. Tokens shorter than
    /// `minTokenLength` UTF-16 code units are dropped.
    ///
    /// ```
    /// use weir_core::{execute, Config};
    /// use weir_flink_ml::api::Stage;
    /// use weir_flink_ml::feature::{regex_tokenizer::{GAPS, PATTERN}, RegexTokenizer};
    /// use weir_flink_ml::param::WithParams;
    /// use weir_flink_ml::table::{DataType, Schema, Table, TableCollector, Value};
    /// let tokenizer = RegexTokenizer::new()
    ///     .set(&GAPS, false).unwrap()
    ///     .set(&PATTERN, r"\w+|\p{Punct}".to_string()).unwrap();
    /// let out = TableCollector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     let schema = Schema::new([("input", DataType::String)]);
    ///     let rows = vec![vec![Value::String("Te,st. punct".into())]];
    ///     let table = Table::from_rows(job, "rows", schema, rows)?;
    ///     tokenizer.transform(job, vec![table])?.remove(0).collect("out", &sink);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// let tokens = ["te", ",", "st", ".", "punct"].map(String::from).to_vec();
    /// assert_eq!(out.rows()[0][1], Value::StringArray(tokens));
    /// ```
    RegexTokenizer,
    "org.apache.flink.ml.feature.regextokenizer.RegexTokenizer",
    [
        &INPUT_COL.spec,
        &OUTPUT_COL.spec,
        &MIN_TOKEN_LENGTH.spec,
        &GAPS.spec,
        &PATTERN.spec,
        &TO_LOWERCASE.spec
    ]
);

impl crate::param::HasInputCol for RegexTokenizer {}
impl crate::param::HasOutputCol for RegexTokenizer {}

/// The registry entries of this module.
pub(crate) const CLASSES: &[crate::api::StageClass] = crate::api::stage_classes!(RegexTokenizer);

/// Members of Java's ASCII shorthand classes, as `regex` class items.
fn shorthand_members(c: char) -> Option<&'static str> {
    Some(match c.to_ascii_lowercase() {
        'd' => "0-9",
        's' => r"\t\n\x0B\x0C\r\x20",
        'w' => "a-zA-Z_0-9",
        'h' => r"\x20\t\xA0\x{1680}\x{180E}\x{2000}-\x{200A}\x{202F}\x{205F}\x{3000}",
        'v' => r"\n\x0B\x0C\r\x{85}\x{2028}\x{2029}",
        _ => return None,
    })
}

/// Java's POSIX character class names (ASCII-only in Java) as `regex` ASCII class names.
fn posix_class(name: &str) -> Option<&'static str> {
    Some(match name {
        "Lower" => "lower",
        "Upper" => "upper",
        "ASCII" => "ascii",
        "Alpha" => "alpha",
        "Digit" => "digit",
        "Alnum" => "alnum",
        "Punct" => "punct",
        "Graph" => "graph",
        "Print" => "print",
        "Blank" => "blank",
        "Cntrl" => "cntrl",
        "XDigit" => "xdigit",
        "Space" => "space",
        _ => return None,
    })
}

/// A character as a `regex` literal that means itself inside and outside classes.
fn literal(out: &mut String, c: char) {
    if c.is_ascii_alphanumeric() {
        out.push(c);
    } else {
        out.push_str(&format!(r"\x{{{:X}}}", c as u32));
    }
}

/// The length of the flags of an inline flag group (`(?i)`, `(?s-i:`), if `rest` (the
/// pattern after `(?`) starts one.
fn is_flag_group(rest: &[char]) -> Option<usize> {
    // `rest` starts after "(?"; a flag group is `[idmsuxU-]*` followed by `)` or `:`.
    let end = rest
        .iter()
        .position(|c| !matches!(c, 'i' | 'd' | 'm' | 's' | 'u' | 'x' | 'U' | '-'))?;
    matches!(rest[end], ')' | ':').then_some(end)
}

/// A Java regex in the `regex` crate's syntax (see the module documentation).
pub(crate) fn translate_java_regex(pattern: &str) -> Result<String, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut depth = 0usize;
    let mut dotall = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '\\' => {
                let Some(&e) = chars.get(i) else {
                    return Err("the pattern ends with a lone backslash".into());
                };
                i += 1;
                match e {
                    'd' | 's' | 'w' | 'h' | 'v' | 'D' | 'S' | 'W' | 'H' | 'V' => {
                        let members = shorthand_members(e).expect("a shorthand class");
                        let negated = e.is_ascii_uppercase();
                        if depth > 0 && !negated {
                            out.push_str(members);
                        } else {
                            out.push_str(if negated { "[^" } else { "[" });
                            out.push_str(members);
                            out.push(']');
                        }
                    }
                    'p' | 'P' => {
                        let name: String = if chars.get(i) == Some(&'{') {
                            let end = chars[i..]
                                .iter()
                                .position(|c| *c == '}')
                                .ok_or("an unclosed \\p{")?;
                            let name = chars[i + 1..i + end].iter().collect();
                            i += end + 1;
                            name
                        } else {
                            let name = chars.get(i).ok_or("a \\p without a name")?;
                            i += 1;
                            name.to_string()
                        };
                        let negated = e == 'P';
                        if let Some(posix) = posix_class(&name) {
                            let class = format!("[:{}{posix}:]", if negated { "^" } else { "" });
                            if depth > 0 {
                                out.push_str(&class);
                            } else {
                                out.push('[');
                                out.push_str(&class);
                                out.push(']');
                            }
                        } else if name.starts_with("In") && name.len() > 2 {
                            return Err(format!(
                                "Unicode blocks (\\p{{{name}}}) are not supported"
                            ));
                        } else {
                            let name = name.strip_prefix("Is").unwrap_or(&name);
                            out.push('\\');
                            out.push(e);
                            out.push('{');
                            out.push_str(name);
                            out.push('}');
                        }
                    }
                    'Q' => {
                        let end = (i..chars.len())
                            .find(|j| chars[*j] == '\\' && chars.get(j + 1) == Some(&'E'))
                            .unwrap_or(chars.len());
                        for q in &chars[i..end] {
                            literal(&mut out, *q);
                        }
                        i = (end + 2).min(chars.len());
                    }
                    'E' => {}
                    '0' => {
                        let mut value = 0u32;
                        let mut digits = 0;
                        while digits < 3 {
                            match chars.get(i).and_then(|c| c.to_digit(8)) {
                                Some(d) if value * 8 + d <= 0o377 => {
                                    value = value * 8 + d;
                                    i += 1;
                                    digits += 1;
                                }
                                _ => break,
                            }
                        }
                        if digits == 0 {
                            return Err("an octal escape \\0 without digits".into());
                        }
                        out.push_str(&format!(r"\x{{{value:X}}}"));
                    }
                    '1'..='9' | 'k' => {
                        return Err("back-references are not supported".into());
                    }
                    'c' => {
                        let x = chars.get(i).ok_or("a \\c without a character")?;
                        i += 1;
                        out.push_str(&format!(r"\x{{{:X}}}", (*x as u32) ^ 0x40));
                    }
                    'e' => out.push_str(r"\x1B"),
                    'a' => out.push_str(r"\x07"),
                    'R' if depth == 0 => {
                        out.push_str(r"(?:\r\n|[\n\x0B\x0C\r\x{85}\x{2028}\x{2029}])");
                    }
                    't' | 'n' | 'r' | 'f' | 'x' | 'u' | 'b' | 'B' | 'A' | 'z' => {
                        out.push('\\');
                        out.push(e);
                    }
                    e if e.is_ascii_alphabetic() => {
                        return Err(format!("the escape \\{e} is not supported"));
                    }
                    e => literal(&mut out, e),
                }
            }
            '[' => {
                out.push('[');
                depth += 1;
                if depth > 1 && chars.get(i) == Some(&':') {
                    // Java reads `[:` as a nested class starting with ':', `regex` as a
                    // POSIX class.
                    out.push_str(r"\:");
                    i += 1;
                }
            }
            ']' if depth > 0 => {
                out.push(']');
                depth -= 1;
            }
            '~' if depth > 0 && chars.get(i) == Some(&'~') => {
                // `~~` is a set operation in `regex`, two characters in Java.
                out.push_str(r"\~\~");
                i += 1;
            }
            '.' if depth == 0 && !dotall => {
                out.push_str(r"[^\n\r\x{85}\x{2028}\x{2029}]");
            }
            '(' if depth == 0 && chars.get(i) == Some(&'?') => {
                match is_flag_group(&chars[i + 1..]) {
                    Some(end) => {
                        let flags = &chars[i + 1..i + 1 + end];
                        let on = flags.iter().take_while(|c| **c != '-');
                        if on.clone().any(|c| *c == 's') {
                            dotall = true;
                        }
                        // `d`, `u` and `U` mean other things in `regex` (or nothing).
                        let kept: String = flags
                            .iter()
                            .filter(|c| !matches!(c, 'd' | 'u' | 'U'))
                            .collect();
                        let kept = kept.trim_end_matches('-');
                        let close = chars[i + 1 + end];
                        i += end + 2;
                        if kept.is_empty() {
                            if close == ':' {
                                out.push_str("(?:");
                            }
                        } else {
                            out.push_str("(?");
                            out.push_str(kept);
                            out.push(close);
                        }
                    }
                    None => out.push('('),
                }
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// The number of UTF-16 code units of `s` (Java's `String.length()`).
fn java_length(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.chars().map(char::len_utf16).sum()
    }
}

/// The operator's state.
struct Tokenizing {
    column: usize,
    name: String,
    regex: Regex,
    gaps: bool,
    to_lowercase: bool,
    min_length: usize,
}

impl Tokenizing {
    /// The start of the next search after a match `start..end` (Java's `Matcher.find`: one
    /// character on after an empty match).
    fn next_start(text: &str, start: usize, end: usize) -> usize {
        if end > start {
            end
        } else {
            end + text[end..].chars().next().map_or(1, char::len_utf8)
        }
    }

    /// Java's `Pattern.split(text)` (limit 0), tokens shorter than the minimum dropped.
    fn split(&self, text: &str) -> Vec<String> {
        let mut pieces: Vec<&str> = Vec::new();
        let mut index = 0;
        let mut at = 0;
        while at <= text.len() {
            let Some(m) = self.regex.find_at(text, at) else {
                break;
            };
            at = Self::next_start(text, m.start(), m.end());
            if index == 0 && m.start() == 0 && m.end() == 0 {
                // No leading empty string for a zero-width match at the start.
                continue;
            }
            pieces.push(&text[index..m.start()]);
            index = m.end();
        }
        if index == 0 {
            pieces = vec![text];
        } else {
            pieces.push(&text[index..]);
            while pieces.last().is_some_and(|p| p.is_empty()) {
                pieces.pop();
            }
        }
        pieces
            .into_iter()
            .filter(|p| java_length(p) >= self.min_length)
            .map(String::from)
            .collect()
    }

    /// Every match of the pattern (Java's `Matcher.find` loop), short ones dropped.
    fn find_all(&self, text: &str) -> Vec<String> {
        let mut tokens = Vec::new();
        let mut at = 0;
        while at <= text.len() {
            let Some(m) = self.regex.find_at(text, at) else {
                break;
            };
            at = Self::next_start(text, m.start(), m.end());
            if java_length(m.as_str()) >= self.min_length {
                tokens.push(m.as_str().to_string());
            }
        }
        tokens
    }

    fn tokenize(&self, text: &str) -> Vec<String> {
        let lower;
        let text = if self.to_lowercase {
            lower = text.to_lowercase();
            &lower
        } else {
            text
        };
        if self.gaps {
            self.split(text)
        } else {
            self.find_all(text)
        }
    }
}

impl Stage for RegexTokenizer {
    stage_basics!(Transformer);

    fn transform<'s>(
        &self,
        job: &mut Job<'s>,
        inputs: Vec<Table<'s>>,
    ) -> Result<Vec<Table<'s>>, MlError> {
        let input = one_input(self, inputs)?;
        let name = self.get(&INPUT_COL)?;
        let column = input
            .schema
            .typed_index("RegexTokenizer", &name, &[DataType::String])?;
        let pattern = self.get(&PATTERN)?;
        let invalid = |message: String| MlError::InvalidParam {
            stage: "RegexTokenizer".into(),
            param: PATTERN.name().into(),
            message: format!("is not a supported Java regular expression: {message}"),
        };
        let translated = translate_java_regex(&pattern).map_err(invalid)?;
        let regex = Regex::new(&translated).map_err(|e| invalid(e.to_string()))?;
        let min_length = usize::try_from(self.get(&MIN_TOKEN_LENGTH)?).unwrap_or(0);
        let schema = input
            .schema
            .with_column(&self.get(&OUTPUT_COL)?, DataType::StringArray)?;
        let tokenizing = Tokenizing {
            column,
            name,
            regex,
            gaps: self.get(&GAPS)?,
            to_lowercase: self.get(&TO_LOWERCASE)?,
            min_length,
        };
        Ok(vec![map_batches(job, self, input, schema, move |batch| {
            let Column::String(texts) = batch.column(tokenizing.column) else {
                return Err(format!(
                    "RegexTokenizer: column `{}` is not a String column",
                    tokenizing.name
                ));
            };
            let tokens = texts.iter().map(|t| tokenizing.tokenize(t)).collect();
            Ok(batch.with_column(Column::StringArray(tokens)))
        })])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokenizing(pattern: &str, gaps: bool, min_length: usize) -> Tokenizing {
        Tokenizing {
            column: 0,
            name: "input".into(),
            regex: Regex::new(&translate_java_regex(pattern).unwrap()).unwrap(),
            gaps,
            to_lowercase: false,
            min_length,
        }
    }

    /// Java's `Pattern.split` and `Matcher.find`, with zero-width matches (values from Java).
    #[test]
    fn split_and_find_as_java() {
        let t = tokenizing("", true, 0);
        assert_eq!(t.tokenize("abc"), vec!["a", "b", "c"]);
        let t = tokenizing("x*", true, 0);
        assert_eq!(t.tokenize("axxb"), vec!["a", "", "b"]);
        let t = tokenizing("a*", false, 0);
        assert_eq!(t.tokenize("baaa"), vec!["", "aaa", ""]);
        let t = tokenizing(",", true, 0);
        assert_eq!(t.tokenize(",a,,b,,"), vec!["", "a", "", "b"]);
        assert_eq!(t.tokenize(",,"), Vec::<String>::new());
        assert_eq!(t.tokenize(""), vec![""]);
    }

    #[test]
    fn java_syntax_is_translated() {
        let find = |pattern: &str, text: &str| tokenizing(pattern, false, 0).tokenize(text);
        // ASCII-only classes, as in Java.
        assert_eq!(find(r"\w+", "naïve"), vec!["na", "ve"]);
        assert_eq!(find(r"\S+", "a\u{a0}b c"), vec!["a\u{a0}b", "c"]);
        assert_eq!(find(r"[\s,]+", "a, b"), vec![", "]);
        assert_eq!(find(r"[^\s]+", "a b"), vec!["a", "b"]);
        assert_eq!(find(r"[\S&&[^b]]+", "abc"), vec!["a", "c"]);
        assert_eq!(find(r"\p{Punct}", "a!é"), vec!["!"]);
        assert_eq!(find(r"[\p{Alpha}]+", "ab1é"), vec!["ab"]);
        assert_eq!(find(r"\P{Alpha}+", "ab1é"), vec!["1é"]);
        assert_eq!(find(r"\p{IsLatin}+", "abж"), vec!["ab"]);
        // Quoting, escapes of punctuation, octal and control escapes.
        assert_eq!(find(r"\Q.*\E", "a.*b"), vec![".*"]);
        assert_eq!(find(r"\<\>", "<>"), vec!["<>"]);
        assert_eq!(find(r"\0101\cI", "A\t"), vec!["A\t"]);
        // `.` stops at Java's line terminators; (?s) makes it match them.
        assert_eq!(find(r"a.", "a\u{85}a\rab"), vec!["ab"]);
        assert_eq!(find(r"(?s)a.", "a\r"), vec!["a\r"]);
        assert_eq!(find(r"(?iu)A", "a"), vec!["a"]);
        assert_eq!(find(r"\u0041", "A"), vec!["A"]);
        assert_eq!(find(r"[a~~b]+", "a~~b"), vec!["a~~b"]);
        // Constructs without an equivalent are errors.
        for pattern in [r"(a)\1", r"\G", r"\p{InGreek}", r"\X"] {
            assert!(translate_java_regex(pattern).is_err(), "{pattern}");
        }
        assert!(Regex::new(&translate_java_regex("(?=a)").unwrap()).is_err());
    }
}
