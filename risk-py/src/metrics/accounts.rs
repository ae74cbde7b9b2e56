//! The account column of the batch function (Python strings, a packed NumPy column or
//! Arrow arrays) and the grouping of rows by account.

use std::collections::hash_map::Entry;
use std::hash::{Hash, Hasher};

use pyo3::prelude::*;
use risk_core::hash::HashMap;

use arrow_array::{Array, LargeStringArray, StringArray, StringViewArray};

use super::columns::Words;
use crate::error::invalid;

/// The account column as the Python layer hands it over.
pub(super) enum Accounts<'a> {
    /// One Python string per row.
    Text(Vec<String>),
    /// A native-endian `i64` per row (NumPy integer arrays), named by its decimal text.
    Int(Words<'a>),
    /// NumPy fixed-width unicode (`<U`): `width` bytes of UCS-4 per row, NUL-padded.
    Ucs4 { data: &'a [u8], width: usize },
    /// NumPy fixed-width bytes (`S`): `width` bytes per row, NUL-padded, UTF-8.
    Utf8 { data: &'a [u8], width: usize },
    /// Arrow integers (as `int64`), one slice per chunk, named by their decimal text.
    ArrowInt(Vec<&'a [i64]>),
    /// Arrow strings (plain, large, views or dictionary-encoded), one per chunk.
    ArrowText(Vec<Text<'a>>),
}

/// The strings of an Arrow array.
#[derive(Clone, Copy)]
pub(super) enum Strings<'a> {
    /// `utf8`.
    Plain(&'a StringArray),
    /// `large_utf8`.
    Large(&'a LargeStringArray),
    /// `utf8_view`.
    View(&'a StringViewArray),
}

impl<'a> Strings<'a> {
    /// Value `i` (the caller checked it is in range and not null).
    #[inline]
    fn value(self, i: usize) -> &'a str {
        match self {
            Self::Plain(a) => a.value(i),
            Self::Large(a) => a.value(i),
            Self::View(a) => a.value(i),
        }
    }

    /// The number of values.
    fn len(self) -> usize {
        match self {
            Self::Plain(a) => a.len(),
            Self::Large(a) => a.len(),
            Self::View(a) => a.len(),
        }
    }
}

/// One chunk of an Arrow string account column.
pub(super) enum Text<'a> {
    /// The strings themselves.
    Direct(Strings<'a>),
    /// Dictionary-encoded: row `i` is `values[keys[i]]`.
    Dictionary {
        /// Each row's index into `values` (in range for every row).
        keys: Vec<usize>,
        /// The dictionary.
        values: Strings<'a>,
    },
}

impl<'a> Text<'a> {
    /// The number of rows.
    fn len(&self) -> usize {
        match self {
            Self::Direct(s) => s.len(),
            Self::Dictionary { keys, .. } => keys.len(),
        }
    }

    /// Row `i`'s account.
    #[inline]
    fn value(&self, i: usize) -> &'a str {
        match self {
            Self::Direct(s) => s.value(i),
            Self::Dictionary { keys, values } => values.value(keys.get(i).copied().unwrap_or(0)),
        }
    }
}

impl<'a> Accounts<'a> {
    /// A packed NumPy column: `kind` is `"int64"`, `"ucs4"` or `"utf8"`, `width` the bytes
    /// per value.
    pub(super) fn packed(kind: &str, data: &'a [u8], width: usize) -> PyResult<Self> {
        let fits = |w: usize| {
            if w == 0 || !data.len().is_multiple_of(w) {
                Err(invalid(format!(
                    "accounts: a {}-byte buffer does not hold {w}-byte values",
                    data.len()
                )))
            } else {
                Ok(())
            }
        };
        match kind {
            "int64" if width == 8 => {
                fits(8)?;
                Ok(Self::Int(Words(data)))
            }
            "ucs4" if width.is_multiple_of(4) => fits(width).map(|()| Self::Ucs4 { data, width }),
            "utf8" => fits(width).map(|()| Self::Utf8 { data, width }),
            other => Err(invalid(format!(
                "accounts: unknown packed column {other:?} of width {width}"
            ))),
        }
    }

    /// The number of rows.
    pub(super) fn len(&self) -> usize {
        match self {
            Self::Text(text) => text.len(),
            Self::Int(ints) => ints.0.len() / 8,
            Self::Ucs4 { data, width } | Self::Utf8 { data, width } => data.len() / width,
            Self::ArrowInt(chunks) => chunks.iter().map(|c| c.len()).sum(),
            Self::ArrowText(chunks) => chunks.iter().map(Text::len).sum(),
        }
    }

    /// The chunk holding row `row` of chunks of `lens`, and the row within it.
    fn locate(lens: impl Iterator<Item = usize>, row: usize) -> (usize, usize) {
        let mut start = 0;
        for (i, len) in lens.enumerate() {
            if row < start + len {
                return (i, row - start);
            }
            start += len;
        }
        (usize::MAX, 0)
    }

    /// The raw value of fixed-width row `row`.
    fn cell(data: &[u8], width: usize, row: usize) -> &[u8] {
        data.get(row * width..(row + 1) * width).unwrap_or_default()
    }

    /// The account's name as text (once per account, not per row).
    pub(super) fn name(&self, row: usize) -> PyResult<String> {
        let bad = |what: &str| invalid(format!("accounts[{row}]: not valid {what}"));
        match self {
            Self::Text(text) => Ok(text.get(row).cloned().unwrap_or_default()),
            Self::Int(ints) => Ok(ints.i64(row).to_string()),
            Self::Ucs4 { data, width } => {
                let units: Vec<u32> = Self::cell(data, *width, row)
                    .chunks_exact(4)
                    .map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                let len = units.iter().rposition(|&u| u != 0).map_or(0, |i| i + 1);
                units[..len]
                    .iter()
                    .map(|&u| char::from_u32(u).ok_or_else(|| bad("unicode")))
                    .collect()
            }
            Self::Utf8 { data, width } => {
                let cell = Self::cell(data, *width, row);
                let len = cell.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
                std::str::from_utf8(&cell[..len])
                    .map(str::to_owned)
                    .map_err(|_| bad("UTF-8"))
            }
            Self::ArrowInt(chunks) => {
                let (c, i) = Self::locate(chunks.iter().map(|c| c.len()), row);
                Ok(chunks
                    .get(c)
                    .and_then(|c| c.get(i))
                    .copied()
                    .unwrap_or_default()
                    .to_string())
            }
            Self::ArrowText(chunks) => {
                let (c, i) = Self::locate(chunks.iter().map(Text::len), row);
                Ok(chunks
                    .get(c)
                    .map(|c| c.value(i).to_owned())
                    .unwrap_or_default())
            }
        }
    }

    /// Rows grouped by account.
    pub(super) fn groups(&self) -> Groups {
        let n = self.len();
        match self {
            Self::Text(text) => Groups::by(n, text.iter().map(String::as_str)),
            Self::Int(ints) => Groups::by(n, (0..n).map(|i| ints.i64(i))),
            Self::Ucs4 { data, width } | Self::Utf8 { data, width } => {
                Groups::by(n, (0..n).map(|i| Padded(Self::cell(data, *width, i))))
            }
            Self::ArrowInt(chunks) => Groups::by(n, chunks.iter().flat_map(|c| c.iter().copied())),
            Self::ArrowText(chunks) => Groups::by(
                n,
                chunks
                    .iter()
                    .flat_map(|c| (0..c.len()).map(move |i| c.value(i))),
            ),
        }
    }
}

/// A NUL-padded fixed-width value. Equality is on every byte; the hash stops at the
/// first all-zero 8-byte word, so the padding of a wide column (`<U21` holding 8
/// characters is 84 bytes, 52 of them zeros) is not hashed. Values that differ only after
/// an inner zero word hash alike and are still told apart by equality.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Padded<'a>(&'a [u8]);

impl Hash for Padded<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for chunk in self.0.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            let word = u64::from_ne_bytes(word);
            if word == 0 {
                break;
            }
            state.write_u64(word);
        }
    }
}

/// Which account each row belongs to.
pub(super) struct Groups {
    /// The group of each row.
    pub(super) of_row: Vec<u32>,
    /// The first row of each group (which names it).
    pub(super) first_row: Vec<usize>,
}

impl Groups {
    /// Groups `n` rows by their `keys`, in row order. Exports are often sorted by account,
    /// so a row with the previous row's key skips the hash table.
    fn by<K: Hash + Eq + Copy>(n: usize, keys: impl Iterator<Item = K>) -> Self {
        let mut index: HashMap<K, u32> = HashMap::default();
        let mut groups = Self {
            of_row: Vec::with_capacity(n),
            first_row: Vec::new(),
        };
        let mut last: Option<(K, u32)> = None;
        for (row, k) in keys.enumerate() {
            let group = match last {
                Some((previous, group)) if previous == k => group,
                _ => match index.entry(k) {
                    Entry::Occupied(e) => *e.get(),
                    Entry::Vacant(e) => {
                        // n < 2^32 is checked by the caller.
                        let group = u32::try_from(groups.first_row.len()).unwrap_or(u32::MAX);
                        groups.first_row.push(row);
                        *e.insert(group)
                    }
                },
            };
            last = Some((k, group));
            groups.of_row.push(group);
        }
        groups
    }
}
