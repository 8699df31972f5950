//! [`StringColumn`]: the strings of a `String` column stored flat, one buffer of text and
//! where each string ends, so that a batch of strings is two allocations rather than one per
//! row (building, cloning and freeing a batch cost a copy, not a `malloc`/`free` per string).

use std::fmt;
use std::ops::{Index, Range};

use serde::de::{SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Strings stored one after another in one buffer.
///
/// Reads like a `Vec<String>` of its strings (`len`, `[i]` as `&str`, `iter` of `&str`),
/// compares and serialises as that list, and is built with `push`, `collect` or `From` a
/// vector.
///
/// ```
/// use weir_flink_ml::table::StringColumn;
/// let mut c: StringColumn = ["a", "bc"].into_iter().collect();
/// c.push("");
/// assert_eq!((c.len(), &c[1], &c[2]), (3, "bc", ""));
/// assert_eq!(c.iter().collect::<Vec<_>>(), ["a", "bc", ""]);
/// assert_eq!(c, StringColumn::from(vec!["a".to_string(), "bc".into(), "".into()]));
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StringColumn {
    /// The strings, concatenated.
    text: String,
    /// Where each string ends in `text` (its start is the end of the one before).
    ends: Vec<usize>,
}

impl StringColumn {
    /// No strings.
    pub fn new() -> StringColumn {
        StringColumn::default()
    }

    /// No strings, with room for `rows` strings of `bytes` bytes in all.
    pub fn with_capacity(rows: usize, bytes: usize) -> StringColumn {
        StringColumn {
            text: String::with_capacity(bytes),
            ends: Vec::with_capacity(rows),
        }
    }

    /// The number of strings.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are no strings.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The bytes of all strings together.
    pub fn text_len(&self) -> usize {
        self.text.len()
    }

    /// Appends a string.
    pub fn push(&mut self, s: &str) {
        self.text.push_str(s);
        self.ends.push(self.text.len());
    }

    /// String `i`, if there is one.
    pub fn get(&self, i: usize) -> Option<&str> {
        let end = *self.ends.get(i)?;
        Some(&self.text[self.start(i)..end])
    }

    fn start(&self, i: usize) -> usize {
        if i == 0 {
            0
        } else {
            self.ends[i - 1]
        }
    }

    /// The strings in order.
    pub fn iter(&self) -> StringIter<'_> {
        StringIter {
            text: &self.text,
            ends: self.ends.iter(),
            start: 0,
        }
    }

    /// Strings `range`, copied.
    pub fn slice(&self, range: Range<usize>) -> StringColumn {
        let (start, end) = (self.start(range.start), self.start(range.end));
        StringColumn {
            text: self.text[start..end].to_string(),
            ends: self.ends[range].iter().map(|e| e - start).collect(),
        }
    }

    /// The strings whose `keep` flag is set (a string without a flag is dropped).
    pub fn filter(&self, keep: &[bool]) -> StringColumn {
        self.iter()
            .zip(keep)
            .filter_map(|(s, k)| k.then_some(s))
            .collect()
    }

    /// Appends the strings of `other`.
    pub fn append(&mut self, other: &StringColumn) {
        let offset = self.text.len();
        self.text.push_str(&other.text);
        self.ends.extend(other.ends.iter().map(|e| e + offset));
    }

    /// The strings as owned strings.
    pub fn to_vec(&self) -> Vec<String> {
        self.iter().map(str::to_string).collect()
    }
}

impl Index<usize> for StringColumn {
    type Output = str;

    fn index(&self, i: usize) -> &str {
        let end = self.ends[i];
        &self.text[self.start(i)..end]
    }
}

/// The strings of a [`StringColumn`] in order.
#[derive(Clone, Debug)]
pub struct StringIter<'a> {
    text: &'a str,
    ends: std::slice::Iter<'a, usize>,
    /// Where the next string from the front starts.
    start: usize,
}

impl<'a> Iterator for StringIter<'a> {
    type Item = &'a str;

    #[inline]
    fn next(&mut self) -> Option<&'a str> {
        let end = *self.ends.next()?;
        let s = &self.text[self.start..end];
        self.start = end;
        Some(s)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.ends.size_hint()
    }
}

impl DoubleEndedIterator for StringIter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let end = *self.ends.next_back()?;
        let start = self.ends.as_slice().last().copied().unwrap_or(self.start);
        Some(&self.text[start..end])
    }
}

impl ExactSizeIterator for StringIter<'_> {}

impl<'a> IntoIterator for &'a StringColumn {
    type Item = &'a str;
    type IntoIter = StringIter<'a>;

    fn into_iter(self) -> StringIter<'a> {
        self.iter()
    }
}

impl<'a> Extend<&'a str> for StringColumn {
    fn extend<I: IntoIterator<Item = &'a str>>(&mut self, iter: I) {
        for s in iter {
            self.push(s);
        }
    }
}

impl Extend<String> for StringColumn {
    fn extend<I: IntoIterator<Item = String>>(&mut self, iter: I) {
        for s in iter {
            self.push(&s);
        }
    }
}

impl<'a> FromIterator<&'a str> for StringColumn {
    fn from_iter<I: IntoIterator<Item = &'a str>>(iter: I) -> StringColumn {
        let iter = iter.into_iter();
        let mut c = StringColumn::with_capacity(iter.size_hint().0, 0);
        c.extend(iter);
        c
    }
}

impl<'a> FromIterator<&'a String> for StringColumn {
    fn from_iter<I: IntoIterator<Item = &'a String>>(iter: I) -> StringColumn {
        iter.into_iter().map(String::as_str).collect()
    }
}

impl FromIterator<String> for StringColumn {
    fn from_iter<I: IntoIterator<Item = String>>(iter: I) -> StringColumn {
        let iter = iter.into_iter();
        let mut c = StringColumn::with_capacity(iter.size_hint().0, 0);
        c.extend(iter);
        c
    }
}

impl From<Vec<String>> for StringColumn {
    fn from(strings: Vec<String>) -> StringColumn {
        let bytes = strings.iter().map(String::len).sum();
        let mut c = StringColumn::with_capacity(strings.len(), bytes);
        c.extend(strings.iter().map(String::as_str));
        c
    }
}

impl From<Vec<&str>> for StringColumn {
    fn from(strings: Vec<&str>) -> StringColumn {
        strings.into_iter().collect()
    }
}

impl From<StringColumn> for Vec<String> {
    fn from(strings: StringColumn) -> Vec<String> {
        strings.to_vec()
    }
}

impl fmt::Debug for StringColumn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Serialised as the list of its strings (as a `Vec<String>` is).
impl Serialize for StringColumn {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for StringColumn {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Strings;

        impl<'de> Visitor<'de> for Strings {
            type Value = StringColumn;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of strings")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StringColumn, A::Error> {
                let mut c = StringColumn::with_capacity(seq.size_hint().unwrap_or(0), 0);
                while let Some(s) = seq.next_element::<std::borrow::Cow<'de, str>>()? {
                    c.push(&s);
                }
                Ok(c)
            }
        }

        deserializer.deserialize_seq(Strings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> StringColumn {
        ["", "a", "héllo", "", "日本語", "z"].into_iter().collect()
    }

    #[test]
    fn reads_as_its_strings() {
        let c = sample();
        let expected = ["", "a", "héllo", "", "日本語", "z"];
        assert_eq!(c.len(), 6);
        assert_eq!(c.iter().collect::<Vec<_>>(), expected);
        assert_eq!(c.iter().rev().collect::<Vec<_>>(), {
            let mut r = expected.to_vec();
            r.reverse();
            r
        });
        let mut it = c.iter();
        assert_eq!(
            (it.next(), it.next_back(), it.len()),
            (Some(""), Some("z"), 4)
        );
        assert_eq!(it.collect::<Vec<_>>(), ["a", "héllo", "", "日本語"]);
        for (i, s) in expected.iter().enumerate() {
            assert_eq!(&c[i], *s);
            assert_eq!(c.get(i), Some(*s));
        }
        assert_eq!(c.get(6), None);
        assert_eq!(c.to_vec(), expected);
        assert_eq!(format!("{c:?}"), format!("{expected:?}"));
    }

    #[test]
    fn slices_filters_and_appends() {
        let c = sample();
        assert_eq!(c.slice(2..5).to_vec(), ["héllo", "", "日本語"]);
        assert_eq!(c.slice(0..0).len(), 0);
        assert_eq!(c.slice(6..6).len(), 0);
        assert_eq!(
            c.filter(&[true, false, true, true, false, true]).to_vec(),
            ["", "héllo", "", "z"]
        );
        let mut a = c.slice(0..3);
        a.append(&c.slice(3..6));
        assert_eq!(a, c);
        let mut e = StringColumn::new();
        e.append(&c);
        assert_eq!(e, c);
    }

    #[test]
    fn serialises_as_a_list_of_strings() {
        let c = sample();
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(json, serde_json::to_string(&c.to_vec()).unwrap());
        let back: StringColumn = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);
        let escaped: StringColumn = serde_json::from_str(r#"["a\"b", "\u00e9"]"#).unwrap();
        assert_eq!(escaped.to_vec(), ["a\"b", "é"]);
    }
}
