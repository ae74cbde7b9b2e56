//! The `trades_csv` target: arbitrary bytes through the CSV trade and account readers,
//! sequential and parallel, with the default limits and with small ones.

use std::collections::HashMap;

use risk_adapters::csv_input::{
    read_accounts, read_accounts_with, read_trades_parallel_with, read_trades_with, CsvInputError,
    CsvLimits, TradeFile,
};
use risk_core::num::parse_decimal;
use risk_core::Decimal;

fn data_rows(data: &[u8]) -> Option<u64> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(data);
    reader.byte_headers().ok()?;
    let mut rows = 0;
    for record in reader.byte_records() {
        record.ok()?;
        rows += 1;
    }
    Some(rows)
}

/// Whether `text` is a decimal that `Decimal` prints back exactly: plain notation, no
/// sign on zero, no leading zeros, at most 28 digits.
fn canonical_decimal(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    all_digits(int)
        && (frac.is_empty() || all_digits(frac))
        && !(digits.contains('.') && frac.is_empty())
        && (int == "0" || !int.starts_with('0'))
        && int.len() + frac.len() <= 28
        && !(text.starts_with('-') && digits.bytes().all(|b| b == b'0' || b == b'.'))
}

fn assert_round_trips(value: Decimal, what: &str) {
    let text = value.to_string();
    assert_eq!(
        parse_decimal(&text).map(|d| d.to_string()),
        Ok(text.clone()),
        "{what} {value:?} does not re-parse"
    );
}

/// The parallel read agrees with the sequential one `f` in every respect.
fn assert_parallel_agrees(f: &TradeFile, parallel: Result<TradeFile, CsvInputError>) {
    if let Ok(p) = parallel {
        assert!(p.trades == f.trades, "parallel read differs");
        assert_eq!(
            (p.skipped_rows, p.duplicate_rows),
            (f.skipped_rows, f.duplicate_rows)
        );
        assert_eq!(p.errors, f.errors, "parallel read reports other errors");
    }
}

/// The line an error names exists, and the rows add up to the csv reader's records.
fn assert_rows_add_up(data: &[u8], kept: usize, skipped: u64, duplicate: u64, what: &str) {
    if let Some(rows) = data_rows(data) {
        assert_eq!(
            kept as u64 + skipped + duplicate,
            rows,
            "{what} rows do not add up"
        );
    }
}

/// `data` read as trades with `limits`, checked: good + skipped + duplicate rows = data
/// rows, and the parallel reader on `workers` threads agrees, errors included.
fn read_trades_checked(
    data: &[u8],
    limits: CsvLimits,
    workers: usize,
) -> Result<TradeFile, CsvInputError> {
    let f = read_trades_with(data, "fuzz.csv", limits, |_| {})?;
    assert_rows_add_up(
        data,
        f.trades.len(),
        f.skipped_rows,
        f.duplicate_rows,
        "trade",
    );
    assert_parallel_agrees(
        &f,
        read_trades_parallel_with(data, "fuzz.csv", workers, limits, |_| {}),
    );
    Ok(f)
}

/// `trades_csv` with small row and field limits taken from the input, so that rows are
/// cut: the rows still add up, the readers still agree, errors name existing lines, and
/// no kept text field is over the field limit.
fn trades_csv_bounded(data: &[u8]) {
    let limits = CsvLimits {
        max_row_bytes: 1 + usize::from(data.first().copied().unwrap_or(0) % 128),
        max_field_bytes: 1 + data.len() % 48,
    };
    let lines = 1 + data.iter().filter(|b| **b == b'\n').count() as u64;
    match read_trades_checked(data, limits, 3) {
        Ok(f) => {
            for e in &f.errors {
                assert!((1..=lines).contains(&e.line), "{e} (of {lines} lines)");
            }
            for t in &f.trades {
                for text in [t.id.as_str(), t.account.as_str(), t.symbol.as_str()] {
                    assert!(text.len() <= limits.max_field_bytes, "kept {text:?}");
                }
            }
        }
        Err(CsvInputError::HeaderTooLong { limit, .. }) => {
            assert_eq!(limit, limits.max_row_bytes);
        }
        Err(_) => {}
    }
    if let Ok(a) = read_accounts_with(data, "accounts.csv", limits) {
        assert_rows_add_up(data, a.accounts.len(), a.skipped_rows, 0, "account");
        for e in &a.errors {
            assert!((1..=lines).contains(&e.line), "{e} (of {lines} lines)");
        }
    }
}

/// `trades_csv`: arbitrary bytes through [`read_trades`] (and the parallel reader) and
/// [`read_accounts`], with the default limits and with small ones. Properties: good +
/// skipped + duplicate rows = data rows; the parallel reader agrees, errors included;
/// every money field prints to text that parses back to itself and, where the row wrote
/// it canonically, to that text; with small limits, rows are cut and still add up, errors
/// name lines that exist, and no kept text field is over the limit.
///
/// # Panics
/// When a property fails.
pub fn trades_csv(data: &[u8]) {
    trades_csv_bounded(data);
    if let Ok(f) = read_trades_checked(data, CsvLimits::default(), 2) {
        check_trade_text(data, &f.trades);
        for t in &f.trades {
            for (v, what) in [
                (t.volume, "volume"),
                (t.open_price, "open price"),
                (t.close_price, "close price"),
                (t.profit, "profit"),
                (t.commission, "commission"),
                (t.swap, "swap"),
            ] {
                assert_round_trips(v, what);
            }
            for v in [t.stop_loss, t.take_profit].into_iter().flatten() {
                assert_round_trips(v, "stop/take price");
            }
            // A kept trade's times fit the metrics' nanosecond range.
            assert!(
                risk_core::metrics::epoch_nanos(t.opened_at).is_ok()
                    && risk_core::metrics::epoch_nanos(t.closed_at).is_ok(),
                "kept a trade the metrics cannot time: {t:?}"
            );
        }
    }
    if let Ok(a) = read_accounts(data, "accounts.csv") {
        assert_eq!(a.order.len(), a.accounts.len());
        assert_rows_add_up(data, a.accounts.len(), a.skipped_rows, 0, "account");
        for info in a.accounts.values() {
            if let Some(b) = info.initial_balance {
                assert!(b > Decimal::ZERO);
                assert_round_trips(b, "initial balance");
            }
        }
    }
}

/// Each trade's money cells, where written canonically in a row with its id, print back
/// to the same text.
fn check_trade_text(data: &[u8], trades: &[risk_core::metrics::ClosedTrade]) {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(data);
    let Ok(header) = reader.headers().cloned() else {
        return;
    };
    let col = |name: &str| header.iter().position(|h| h.trim() == name);
    let (Some(c_id), Some(c_profit), Some(c_comm), Some(c_swap)) = (
        col("identifier"),
        col("profit"),
        col("commission"),
        col("swap"),
    ) else {
        return;
    };
    let mut by_id: HashMap<String, Vec<csv::StringRecord>> = HashMap::new();
    for record in reader.records() {
        let Ok(record) = record else { return };
        if let Some(id) = record.get(c_id) {
            by_id.entry(id.trim().to_owned()).or_default().push(record);
        }
    }
    for t in trades {
        let Some(rows) = by_id.get(t.id.as_str()) else {
            continue;
        };
        let matches = |r: &csv::StringRecord| {
            [
                (c_profit, t.profit),
                (c_comm, t.commission),
                (c_swap, t.swap),
            ]
            .iter()
            .all(|&(c, v)| {
                let cell = r.get(c).unwrap_or("").trim();
                !canonical_decimal(cell) || cell == v.to_string()
            })
        };
        // Some row with this id wrote these money fields (duplicates may differ).
        let rows_parsing: Vec<_> = rows
            .iter()
            .filter(|r| {
                [
                    (c_profit, t.profit),
                    (c_comm, t.commission),
                    (c_swap, t.swap),
                ]
                .iter()
                .all(|&(c, v)| parse_decimal(r.get(c).unwrap_or("").trim()) == Ok(v))
            })
            .collect();
        assert!(!rows_parsing.is_empty(), "trade {} matches no row", t.id);
        assert!(
            rows_parsing.iter().any(|r| matches(r)),
            "trade {} money fields print differently from the row",
            t.id
        );
    }
}
