//! The one-pass parse of a quote-free row in the export's usual shape: each field is read
//! where it starts and the byte that ends it checked, with no split into fields before
//! and no second pass over a cell. Any other row (a cell to trim, a decimal or time of
//! another form, a bad or short row, a field over the limit) is left to the general
//! row parse (`Ingest::row`), which decides it and words its error; so this parse accepts
//! a row only when that one would keep it with the same values.

use chrono::NaiveDate;
use risk_core::model::Side;
use risk_core::Decimal;

use super::fields::decimal_prefix;
use super::trades::{IdKey, Parsed};

/// What the reader takes from a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// A column the reader does not use.
    Skip,
    /// `identifier`.
    Id,
    /// `action`.
    Side,
    /// A decimal; the index into [`Fields::numbers`].
    Number(usize),
    /// `price_sl` or `price_tp`: the index into [`Fields::prices`].
    Price(usize),
    /// `opened_at` (0) or `closed_at` (1).
    Time(usize),
    /// `trading_account_login`.
    Login,
    /// `symbol`.
    Symbol,
}

/// The decimals of [`Fields::numbers`], in this order.
const NUMBERS: usize = 6;
const LOTS: usize = 0;
const OPEN: usize = 1;
const CLOSE: usize = 2;
const PROFIT: usize = 3;
const COMMISSION: usize = 4;
const SWAP: usize = 5;

/// What each column of a trades export is, up to the last one the reader uses.
#[derive(Debug, Clone)]
pub(super) struct RowPlan {
    slots: Vec<Slot>,
}

impl RowPlan {
    /// The plan for the columns of [`TRADE_COLUMNS`](super::TRADE_COLUMNS) found at
    /// `cols`.
    pub(super) fn new(cols: &[usize; 14]) -> Self {
        let [c_id, c_action, c_open, c_close, c_comm, c_lots, c_opened, c_closed, c_sl, c_tp, c_profit, c_swap, c_symbol, c_login] =
            *cols;
        let used = cols.iter().max().map_or(0, |&c| c + 1);
        let mut slots = vec![Slot::Skip; used];
        for (col, slot) in [
            (c_id, Slot::Id),
            (c_action, Slot::Side),
            (c_lots, Slot::Number(LOTS)),
            (c_open, Slot::Number(OPEN)),
            (c_close, Slot::Number(CLOSE)),
            (c_profit, Slot::Number(PROFIT)),
            (c_comm, Slot::Number(COMMISSION)),
            (c_swap, Slot::Number(SWAP)),
            (c_sl, Slot::Price(0)),
            (c_tp, Slot::Price(1)),
            (c_opened, Slot::Time(0)),
            (c_closed, Slot::Time(1)),
            (c_symbol, Slot::Symbol),
            (c_login, Slot::Login),
        ] {
            slots[col] = slot;
        }
        Self { slots }
    }

    /// The row that starts at `text[at]` (a byte after a line end, or the text's first),
    /// parsed in one pass into `f` (all of whose values are overwritten) when every used
    /// cell has its usual shape: `None` otherwise. `text` is valid UTF-8 as a whole
    /// (`whole`) and holds no quote. Gives where the record ends (the index of its line
    /// end, or the text's length).
    pub(super) fn parse_into<'t>(
        &self,
        f: &mut Fields<'t>,
        text: &'t [u8],
        whole: &'t str,
        at: usize,
        max_field: usize,
        days: &mut DayCache,
    ) -> Option<usize> {
        let mut p = at;
        let last = self.slots.len().checked_sub(1)?;
        for (col, &slot) in self.slots.iter().enumerate() {
            let end = match slot {
                Slot::Skip => skip(text, p),
                Slot::Id => {
                    let end = cell_end(text, p);
                    f.id = name(whole, p, end)?;
                    end
                }
                Slot::Login => {
                    let end = cell_end(text, p);
                    f.login = name(whole, p, end)?;
                    end
                }
                Slot::Symbol => {
                    let end = cell_end(text, p);
                    f.symbol = name(whole, p, end)?;
                    end
                }
                Slot::Side => {
                    f.side = match text.get(p) {
                        Some(b'0') => Side::Buy,
                        Some(b'1') => Side::Sell,
                        _ => return None,
                    };
                    p + 1
                }
                Slot::Number(k) => {
                    let (value, n) = decimal_prefix(&text[p..]);
                    f.numbers[k] = value?;
                    p + n
                }
                Slot::Price(k) => {
                    let (value, n) = decimal_prefix(&text[p..]);
                    // Empty (n = 0) or zero: not set.
                    f.prices[k] = if n == 0 {
                        None
                    } else {
                        let price = value?;
                        (!price.is_zero()).then_some(price)
                    };
                    p + n
                }
                Slot::Time(k) => {
                    let (ns, n) = days.time(&text[p..])?;
                    f.times[k] = ns;
                    p + n
                }
            };
            if slot != Slot::Skip && end - p > max_field {
                return None;
            }
            match text.get(end) {
                Some(b',') if col < last => p = end + 1,
                Some(b',') => {
                    // Columns the reader does not use, up to the line end.
                    let rest = &text[end..];
                    let record_end =
                        memchr::memchr2(b'\n', b'\r', rest).map_or(text.len(), |i| end + i);
                    return f.finish(record_end);
                }
                Some(b'\n' | b'\r') | None if col == last => return f.finish(end),
                // A short row, or a cell of another shape.
                _ => return None,
            }
        }
        None
    }
}

/// The end of a plain cell from `at`: the first byte at or below `,` (`,`, a line end,
/// a space or another byte the caller refuses when it is not `,` or a line end), or the
/// text's end. Eight bytes at a time while eight remain.
#[inline]
fn cell_end(text: &[u8], at: usize) -> usize {
    let mut end = at;
    while let Some(word) = text.get(end..end + 8) {
        let word = u64::from_le_bytes(word.try_into().unwrap_or([0; 8]));
        // The high bit of each byte below 0x2D (`,` + 1); exact for the lowest such
        // byte, which is the one wanted (a byte of 0x80 or above never borrows).
        let low = word.wrapping_sub(0x2D2D_2D2D_2D2D_2D2D) & !word & 0x8080_8080_8080_8080;
        if low != 0 {
            return end + (low.trailing_zeros() / 8) as usize;
        }
        end += 8;
    }
    while end < text.len() && text[end] > b',' {
        end += 1;
    }
    end
}

/// The end of an unused cell from `at`: its `,`, line end or the text's end.
#[inline]
fn skip(text: &[u8], at: usize) -> usize {
    let end = cell_end(text, at);
    match text.get(end) {
        None | Some(b',' | b'\n' | b'\r') => end,
        // Some other byte (a space, `+`, ...): look further.
        Some(_) => {
            memchr::memchr3(b',', b'\n', b'\r', &text[end..]).map_or(text.len(), |i| end + i)
        }
    }
}

/// The cell `whole[from..to]` as a name (id, login, symbol) the general parse would keep
/// as it is: non-empty, and starting and ending with an ASCII byte (a cell made only of
/// bytes above `,` holds no ASCII space, so trimming it changes nothing).
#[inline]
fn name(whole: &str, from: usize, to: usize) -> Option<&str> {
    let cell = whole.get(from..to)?;
    let b = cell.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) if first.is_ascii() && last.is_ascii() => Some(cell),
        _ => None,
    }
}

/// A row's values as [`RowPlan::parse_into`] read them.
#[derive(Debug, Clone, Copy)]
pub(super) struct Fields<'t> {
    id: &'t str,
    login: &'t str,
    symbol: &'t str,
    side: Side,
    numbers: [Decimal; NUMBERS],
    prices: [Option<Decimal>; 2],
    /// `opened_at` and `closed_at` in nanoseconds since the epoch.
    times: [i64; 2],
}

impl Default for Fields<'_> {
    fn default() -> Self {
        Self {
            id: "",
            login: "",
            symbol: "",
            side: Side::Buy,
            numbers: [Decimal::ZERO; NUMBERS],
            prices: [None; 2],
            times: [0; 2],
        }
    }
}

impl<'t> Fields<'t> {
    /// `end` (where the row ends), unless the row closed before it opened (the general
    /// parse words that error).
    fn finish(&self, end: usize) -> Option<usize> {
        (self.times[1] >= self.times[0]).then_some(end)
    }

    /// The row's id, its kind, and its values as the general parse gives them.
    #[inline]
    pub(super) fn parsed(&self) -> (&'t str, IdKey, Parsed<'t>) {
        let n = &self.numbers;
        let parsed = Parsed {
            login: self.login,
            symbol: self.symbol,
            side: self.side,
            volume: n[LOTS],
            opened_at_ns: self.times[0],
            closed_at_ns: self.times[1],
            open_price: n[OPEN],
            close_price: n[CLOSE],
            stop_loss: self.prices[0],
            take_profit: self.prices[1],
            profit: n[PROFIT],
            commission: n[COMMISSION],
            swap: n[SWAP],
        };
        (self.id, IdKey::of(self.id), parsed)
    }
}

/// The last date part (`YYYY-MM-DD`, as two words) of a time read in one pass, and its
/// midnight in seconds since the epoch.
#[derive(Debug, Default)]
pub(super) struct DayCache(Option<(u64, u16, i64)>);

impl DayCache {
    /// `YYYY-MM-DD HH:MM:SS` (or `T` for the space) with an optional fraction of 1 to 9
    /// digits and an optional `Z` or `+00:00` at the start of `cell`, as nanoseconds since
    /// the epoch, and the bytes it took; `None` when the time has another form or does
    /// not fit the metrics' range (`Row::time` then decides). What follows is the
    /// caller's to check.
    #[inline]
    pub(super) fn time(&mut self, cell: &[u8]) -> Option<(i64, usize)> {
        let head: &[u8; 19] = cell.get(..19)?.try_into().ok()?;
        let shaped = head[4] == b'-'
            && head[7] == b'-'
            && (head[10] == b' ' || head[10] == b'T')
            && head[13] == b':'
            && head[16] == b':';
        if !shaped {
            return None;
        }
        // Two digits at `at`, tested together.
        let two = |at: usize| -> Option<i64> {
            let (tens, ones) = (head[at].wrapping_sub(b'0'), head[at + 1].wrapping_sub(b'0'));
            (tens < 10 && ones < 10).then(|| i64::from(tens) * 10 + i64::from(ones))
        };
        let date = u64::from_le_bytes(head[..8].try_into().ok()?);
        let tail = u16::from_le_bytes(head[8..10].try_into().ok()?);
        let midnight = match self.0 {
            Some((d, t, midnight)) if d == date && t == tail => midnight,
            _ => {
                let year = two(0)? * 100 + two(2)?;
                let month = u32::try_from(two(5)?).ok()?;
                let day = u32::try_from(two(8)?).ok()?;
                let midnight = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?
                    .and_hms_opt(0, 0, 0)?
                    .and_utc()
                    .timestamp();
                self.0 = Some((date, tail, midnight));
                midnight
            }
        };
        let (hour, minute, second) = (two(11)?, two(14)?, two(17)?);
        if hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        let mut n = 19;
        let mut nanos = 0_i64;
        if cell.get(19) == Some(&b'.') {
            // 1 to 9 digits, scaled to nanoseconds in the same pass.
            let mut scale = 1_000_000_000_i64;
            n = 20;
            while let Some(d) = cell
                .get(n)
                .map(|c| c.wrapping_sub(b'0'))
                .filter(|&d| d < 10)
            {
                if n == 29 {
                    return None;
                }
                scale /= 10;
                nanos += i64::from(d) * scale;
                n += 1;
            }
            if n == 20 {
                return None;
            }
        }
        match cell.get(n) {
            Some(b'Z') => n += 1,
            Some(b'+') if cell.get(n..n + 6) == Some(b"+00:00") => n += 6,
            _ => {}
        }
        let seconds = midnight + hour * 3600 + minute * 60 + second;
        let ns = seconds.checked_mul(1_000_000_000)?.checked_add(nanos)?;
        Some((ns, n))
    }
}
