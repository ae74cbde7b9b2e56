//! Tests of CSV ingestion: the export format, row errors and their lines, limits, and the
//! parallel reader against the sequential one.

#![allow(clippy::unwrap_used)]
use super::trades::numeric_id;
use super::*;
use risk_core::ids::{AccountId, ChallengeId};
use risk_core::metrics::PnlBasis;
use risk_core::model::Side;
use risk_core::Decimal;

const HEADER: &str = ",identifier,action,reason,open_price,close_price,commission,lot_size,opened_at,closed_at,pips,price_sl,price_tp,profit,swap,symbol,contract_size,profit_rate,platform,trading_account_login\n";

fn read(body: &str) -> TradeFile {
    read_trades(format!("{HEADER}{body}").as_bytes(), "t.csv", |_| {}).unwrap()
}

#[test]
fn parses_the_export_format_exactly() {
    let f = read(
        "0,1742642088741327865,1,16.0,3332.9,3332.88,-0.07,0.01,2025-05-05 23:41:50.000000,2025-05-06 00:00:10.5,0.2,0,3300.5,4.899999999999999,0.0,XAUUSD,100.0,1.0,0,10452073\n",
    );
    assert_eq!(f.skipped_rows, 0, "{:?}", f.errors);
    let t = &f.trades[0];
    assert_eq!(t.id.as_str(), "1742642088741327865");
    assert_eq!(t.account.as_str(), "10452073");
    assert_eq!(t.side, Side::Sell);
    assert_eq!(t.profit.to_string(), "4.899999999999999");
    assert_eq!(t.stop_loss, None, "0 means not set");
    assert_eq!(t.take_profit, Some("3300.5".parse().unwrap()));
    assert_eq!(t.closed_at.to_rfc3339(), "2025-05-06T00:00:10.500+00:00");
    assert_eq!(
        t.opened_at,
        parse_timestamp("2025-05-05T23:41:50Z").unwrap()
    );
}

#[test]
fn times_beyond_the_metrics_range_are_row_errors() {
    let row = |id: u32, opened: &str, closed: &str| {
        format!("{id},{id},0,,1.1,1.2,0,0.1,{opened},{closed},1,,,10,0,EURUSD,1,1,0,7\n")
    };
    let body = [
        row(1, "2262-04-11 23:47:16", "2262-04-11 23:47:16.854775807"),
        row(2, "2262-04-11 23:47:16", "2262-04-11 23:47:16.854775808"),
        row(3, "1677-09-21 00:12:43", "2025-05-05 10:00:00"),
        row(4, "2025-05-05 10:00:00", "2025-05-05 10:01:00"),
    ]
    .concat();
    let f = read(&body);
    let kept: Vec<_> = f.trades.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(kept, ["1", "4"], "the last nanosecond is in range");
    let where_: Vec<_> = f
        .errors
        .iter()
        .map(|e| (e.line, e.column.as_str()))
        .collect();
    assert_eq!(where_, [(3, "closed_at"), (4, "opened_at")]);
    assert!(
        f.errors[0]
            .to_string()
            .ends_with("`2262-04-11 23:47:16.854775808` is outside the supported range 1677-09-21 to 2262-04-11"),
        "{}",
        f.errors[0]
    );
}

#[test]
fn bad_rows_are_reported_with_line_and_column_and_skipped() {
    let good =
        "1,1,0,,1.1,1.2,0,0.1,2025-05-05 10:00:00,2025-05-05 10:01:00,1,,,10,0,EURUSD,1,1,0,7\n";
    let body = [
        good,
        "2,2,0,,abc,1.2,0,0.1,2025-05-05 10:00:00,2025-05-05 10:01:00,1,,,10,0,EURUSD,1,1,0,7\n",
        "3,3,0,,1.1,1.2,0,0.1,2025-05-05 10:00:00,2025-05-05 09:01:00,1,,,10,0,EURUSD,1,1,0,7\n",
        "4,4,0,,1.1,1.2,0,0.1,2025-05-05 10:00:00,2025-05-05 10:01:00,1,,,10,0,EURUSD,1,1,0,\n",
        "5,5,0,,1.1,1.2,0,0.1,2025-13-05 10:00:00,2025-05-05 10:01:00,1,,,10,0,EURUSD,1,1,0,7\n",
        "6,1,0,,1.1,1.2,0,0.1,2025-05-05 10:00:00,2025-05-05 10:01:00,1,,,10,0,EURUSD,1,1,0,7\n",
        "7,7,2,,1.1,1.2,0,0.1,2025-05-05 10:00:00,2025-05-05 10:01:00,1,,,10,0,EURUSD,1,1,0,7\n",
        "8,8,0,,1.1\n",
        good.replace("1,1,0", "9,9,1").as_str(),
    ]
    .concat();
    let f = read(&body);
    assert_eq!(f.trades.len(), 2);
    assert_eq!(f.duplicate_rows, 1);
    assert_eq!(f.skipped_rows, 6);
    let where_: Vec<_> = f
        .errors
        .iter()
        .map(|e| (e.line, e.column.as_str()))
        .collect();
    assert_eq!(
        where_,
        [
            (3, "open_price"),
            (4, "closed_at"),
            (5, "trading_account_login"),
            (6, "opened_at"),
            (8, "action"),
            (9, "trading_account_login"),
        ]
    );
    assert!(f.errors[0]
        .to_string()
        .starts_with("t.csv:3: column `open_price`:"));
}

#[test]
fn numeric_and_text_ids_deduplicate_as_text() {
    assert_eq!(
        numeric_id("1742642088741327865"),
        Some(1_742_642_088_741_327_865)
    );
    assert_eq!(numeric_id("007"), None);
    assert_eq!(numeric_id("0"), Some(0));
    assert_eq!(numeric_id("18446744073709551616"), None);
    assert_eq!(numeric_id("12a"), None);
    let row = |id: &str| {
        format!("0,{id},0,,1.1,1.2,0,0.1,2025-05-05 10:00:00,2025-05-05 10:01:00,1,,,10,0,EURUSD,1,1,0,7\n")
    };
    let f = read(
        &[
            row("7"),
            row("007"),
            row("7"),
            row("007"),
            row("A-1"),
            row("A-1"),
        ]
        .concat(),
    );
    assert_eq!(f.trades.len(), 3);
    assert_eq!(f.duplicate_rows, 3);
    // A bad row does not claim its id: the corrected re-send is kept.
    let bad = |id: &str| row(id).replace("1.1,1.2", "x,1.2");
    let f = read(&[bad("8"), row("8"), bad("B"), row("B"), row("8")].concat());
    assert_eq!(
        (f.trades.len(), f.skipped_rows, f.duplicate_rows),
        (2, 2, 1)
    );
}

// The sample generator is the `cli` feature's.
#[cfg(feature = "cli")]
#[test]
fn parallel_read_equals_sequential_read() {
    let mut text = Vec::new();
    let mut accounts = Vec::new();
    let config = crate::sample::SampleConfig {
        trades: 2_000,
        ..Default::default()
    };
    crate::sample::generate(&config, &mut text, &mut accounts).unwrap();
    let text = String::from_utf8(text).unwrap();
    let first_id = text
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .nth(1)
        .unwrap()
        .to_owned();
    let row = |id: &str, price: &str| {
        format!("0,{id},0,,{price},1.2,0,0.1,2025-05-05 10:00:00,2025-05-05 10:01:00,1,,,10,0,EURUSD,1,1,0,7\n")
    };
    let mut lines: Vec<String> = text.lines().map(|l| format!("{l}\n")).collect();
    // Early: a bad row whose id is re-sent correctly in a later chunk.
    lines.insert(5, row("777000111", "bad"));
    lines.insert(1500, row("777000111", "1.1"));
    // Late: a good repeat and a bad repeat of the very first id, and a text id twice.
    lines.push(row(&first_id, "1.1"));
    lines.push(row(&first_id, "bad"));
    lines.insert(300, row("T-1", "1.1"));
    lines.push(row("T-1", "1.1"));
    // Rows over the limit, early and late (one repeating an id kept elsewhere): each is
    // one skipped row in every chunking.
    let long = "9".repeat(MAX_ROW_BYTES);
    lines.insert(40, row("777000222", &long));
    lines.insert(1800, row(&first_id, &long));
    let text = lines.concat();
    let sequential = read_trades(text.as_bytes(), "s.csv", |_| {}).unwrap();
    assert_eq!(sequential.trades.len(), 2_002);
    assert_eq!(sequential.duplicate_rows, 2 + 3);
    assert_eq!(sequential.skipped_rows, 3 + 1 + 2);
    let too_long: Vec<_> = sequential
        .errors
        .iter()
        .filter(|e| e.message.contains("longer than the limit"))
        .map(|e| (e.line, e.column.as_str()))
        .collect();
    assert_eq!(too_long, [(41, "open_price"), (1801, "open_price")]);
    for workers in 1..=5 {
        let parallel = read_trades_parallel(text.as_bytes(), "s.csv", workers, |_| {}).unwrap();
        assert!(
            parallel.trades == sequential.trades,
            "{workers} workers: trades differ"
        );
        assert_eq!(parallel.errors, sequential.errors, "{workers} workers");
        assert_eq!(
            (parallel.skipped_rows, parallel.duplicate_rows),
            (sequential.skipped_rows, sequential.duplicate_rows),
            "{workers} workers"
        );
    }
}

/// Found by the `trades_csv` fuzz target: a header ended by a lone `\r` (which the
/// csv reader takes as a line end) made the parallel reader treat the first data row
/// as part of the header and drop it.
#[test]
fn parallel_read_ends_the_header_where_the_csv_reader_does() {
    let row = |id: &str| {
        format!("0,{id},0,,1.1,1.2,0,0.1,2025-05-05 10:00:00,2025-05-05 10:01:00,1,,,10,0,EURUSD,1,1,0,7")
    };
    let header = HEADER.trim_end();
    for (after_header, between) in [("\r", "\n"), ("\r", "\r"), ("\r\n", "\r\n")] {
        let text = format!(
            "{header}{after_header}{}{between}{}{between}{}\n",
            row("1"),
            row("2"),
            row("3")
        );
        let sequential = read_trades(text.as_bytes(), "s.csv", |_| {}).unwrap();
        assert_eq!(sequential.trades.len(), 3, "{after_header:?}");
        let parallel = read_trades_parallel(text.as_bytes(), "s.csv", 2, |_| {}).unwrap();
        assert!(parallel.trades == sequential.trades, "{after_header:?}");
        assert_eq!(parallel.skipped_rows, sequential.skipped_rows);
    }
}

/// Found by the `trades_csv` fuzz target: a row starting with a UTF-8 byte-order mark
/// at a chunk boundary lost the mark in the parallel reader (each chunk's csv reader
/// strips one at its start), so the two readers disagreed.
#[test]
fn parallel_read_keeps_a_byte_order_mark_at_a_chunk_start() {
    let row = |id: &str| {
        format!("0,{id},0,,1.1,1.2,0,0.1,2025-05-05 10:00:00,2025-05-05 10:01:00,1,,,10,0,EURUSD,1,1,0,7\n")
    };
    for tail in ["\u{feff}".to_owned(), format!("\u{feff}{}", row("3"))] {
        let text = format!("{HEADER}{}{}{tail}", row("1"), row("2"));
        let sequential = read_trades(text.as_bytes(), "s.csv", |_| {}).unwrap();
        for workers in 2..=4 {
            let parallel = read_trades_parallel(text.as_bytes(), "s.csv", workers, |_| {}).unwrap();
            assert!(parallel.trades == sequential.trades, "{workers} workers");
            assert_eq!(
                (parallel.skipped_rows, parallel.duplicate_rows),
                (sequential.skipped_rows, sequential.duplicate_rows),
                "{workers} workers"
            );
        }
    }
}

fn trade_row(id: &str) -> String {
    format!(
        "0,{id},0,,1.1,1.2,0,0.1,2025-05-05 10:00:00,2025-05-05 10:01:00,1,,,10,0,EURUSD,1,1,0,7\n"
    )
}

/// Sequential and parallel (2 to 4 workers) reads of `text` agree on everything, and so
/// do the batch reads (1 to 4 workers, both P&L bases); the sequential result.
fn read_both_ways(text: &[u8], limits: CsvLimits) -> TradeFile {
    let sequential = read_trades_with(text, "b.csv", limits, |_| {}).unwrap();
    for workers in 2..=4 {
        let parallel = read_trades_parallel_with(text, "b.csv", workers, limits, |_| {}).unwrap();
        assert!(parallel.trades == sequential.trades, "{workers} workers");
        assert_eq!(parallel.errors, sequential.errors, "{workers} workers");
        assert_eq!(
            (parallel.skipped_rows, parallel.duplicate_rows),
            (sequential.skipped_rows, sequential.duplicate_rows),
            "{workers} workers"
        );
    }
    for basis in [PnlBasis::Net, PnlBasis::Gross] {
        for batch in batch_reads(text, basis, limits) {
            let batch = batch.unwrap();
            assert_eq!(
                batch_view(&batch.batch),
                trades_view(&sequential.trades, basis)
            );
            assert_eq!(batch.errors, sequential.errors);
            assert_eq!(
                (batch.skipped_rows, batch.duplicate_rows),
                (sequential.skipped_rows, sequential.duplicate_rows)
            );
        }
    }
    sequential
}

/// The batch reads of `text`: sequential, then in place on 1 to 4 workers.
fn batch_reads(
    text: &[u8],
    basis: PnlBasis,
    limits: CsvLimits,
) -> Vec<Result<BatchFile, CsvInputError>> {
    let mut out = vec![read_trade_batch(text, "b.csv", basis, limits, |_| {})];
    for workers in 1..=4 {
        out.push(read_trade_batch_parallel(
            text,
            "b.csv",
            workers,
            basis,
            limits,
            |_| {},
        ));
    }
    out
}

/// A batch's rows with their login and symbol names, as text (decimals with their
/// scale): what [`trades_view`] gives for the same trades.
fn batch_view(batch: &TradeBatch) -> Vec<String> {
    batch
        .rows()
        .map(|r| {
            format!(
                "{} {} {} {} {:?} {:?} {:?} {} {}",
                batch.accounts[r.account as usize],
                batch.symbols[r.symbol as usize],
                r.opened_at_ns,
                r.closed_at_ns,
                r.pnl,
                r.lots,
                r.side(),
                r.stop_loss_set(),
                r.take_profit_set()
            )
        })
        .collect()
}

/// What a batch row should hold for each of `trades`, on `basis`, as [`batch_view`]
/// writes it.
fn trades_view(trades: &[risk_core::metrics::ClosedTrade], basis: PnlBasis) -> Vec<String> {
    trades
        .iter()
        .map(|t| {
            format!(
                "{} {} {} {} {:?} {:?} {:?} {} {}",
                t.account,
                t.symbol,
                t.opened_at.timestamp_nanos_opt().unwrap(),
                t.closed_at.timestamp_nanos_opt().unwrap(),
                t.pnl(basis).ok(),
                t.volume,
                t.side,
                t.has_stop_loss(),
                t.has_take_profit()
            )
        })
        .collect()
}

/// A net P&L that does not fit (or would round) is kept as `None` by the batch, the
/// error [`ClosedTrade::net_pnl`](risk_core::metrics::ClosedTrade::net_pnl) gives; on the
/// gross basis the profit is the P&L as it is.
#[test]
fn a_net_pnl_that_does_not_fit_is_none_in_the_batch() {
    let row = trade_row("1").replace(",10,0,EURUSD", ",79228162514264337593543950335,0.5,EURUSD");
    let text = format!("{HEADER}{row}{}", trade_row("2"));
    read_both_ways(text.as_bytes(), CsvLimits::default());
    let net = read_trade_batch(
        text.as_bytes(),
        "b.csv",
        PnlBasis::Net,
        CsvLimits::default(),
        |_| {},
    )
    .unwrap();
    assert_eq!(net.batch.parts[0][0].pnl, None);
    assert_eq!(net.batch.parts[0][1].pnl, Some(Decimal::from(10)));
    let gross = read_trade_batch(
        text.as_bytes(),
        "b.csv",
        PnlBasis::Gross,
        CsvLimits::default(),
        |_| {},
    )
    .unwrap();
    assert_eq!(gross.batch.parts[0][0].pnl, Some(Decimal::MAX));
}

/// Text ids, numeric ids and repeats of both across chunks: the batch reads keep the
/// first of each, as the trade reads do, and number logins and symbols once each.
#[test]
fn batch_reads_deduplicate_text_and_numeric_ids_across_chunks() {
    let mut rows = String::new();
    for k in 0..400 {
        let id = match k % 4 {
            0 => format!("{}", k % 150),
            1 => format!("T-{}", k % 90),
            2 => format!("00{}", k % 70),
            _ => format!("{}", 1_000_000 + k),
        };
        let login = ["7", "8", "9"][k % 3];
        let symbol = ["EURUSD", "XAUUSD"][k % 2];
        rows.push_str(
            &trade_row(&id)
                .replace(",0,7\n", &format!(",0,{login}\n"))
                .replace("EURUSD", symbol),
        );
    }
    let text = format!("{HEADER}{rows}");
    let f = read_both_ways(text.as_bytes(), CsvLimits::default());
    assert!(f.duplicate_rows > 100, "{}", f.duplicate_rows);
    let batch = read_trade_batch_parallel(
        text.as_bytes(),
        "b.csv",
        4,
        PnlBasis::Net,
        CsvLimits::default(),
        |_| {},
    )
    .unwrap();
    let logins: Vec<_> = batch.batch.accounts.iter().map(|a| a.as_str()).collect();
    assert_eq!(logins, ["7", "8", "9"]);
    assert_eq!(batch.batch.symbols.len(), 2);
}

/// The real export (`shared/data`) ends its lines with CRLF: the csv reader's record
/// positions put each row on the line before (the `\n` of the previous line end is
/// read with the next record), and the parallel reader disagreed with the sequential
/// one. Blank lines moved the reported line back as well.
#[test]
fn row_errors_name_the_rows_own_line_with_crlf_and_blank_lines() {
    let row = |id: &str, price: &str| trade_row(id).replace("1.1,1.2", &format!("{price},1.2"));
    let crlf = |r: String| r.replace('\n', "\r\n");
    let text = [
        crlf(HEADER.to_owned()),
        crlf(row("1", "x")),
        crlf(row("2", "1.1")),
        "\r\n\n".to_owned(),
        crlf(row("3", "y")),
        row("4", "z"),
        row("5", "1.1").replace('\n', "\r"),
        row("6", "w"),
    ]
    .concat();
    let f = read_both_ways(text.as_bytes(), CsvLimits::default());
    let lines: Vec<_> = f.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, [2, 6, 7, 8]);
    assert_eq!(f.trades.len(), 2);
}

#[test]
fn a_10_mb_field_between_good_rows_is_one_row_error() {
    let huge = "X".repeat(10 << 20);
    let bad = trade_row("2").replace("EURUSD", &huge);
    let text = format!("{HEADER}{}{bad}{}", trade_row("1"), trade_row("3"));
    let f = read_both_ways(text.as_bytes(), CsvLimits::default());
    let ids: Vec<_> = f.trades.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["1", "3"]);
    assert_eq!((f.skipped_rows, f.duplicate_rows), (1, 0));
    assert_eq!(
        f.errors[0].to_string(),
        "b.csv:3: column `symbol`: the row is longer than the limit of 65536 bytes"
    );
}

#[test]
fn a_long_quoted_field_with_line_breaks_is_cut_and_later_lines_stay_right() {
    // 200,000 lines inside one quoted field, then a bad row: its line is still exact.
    let quoted = format!("\"{}\"", "ab\n".repeat(200_000));
    let long = trade_row("2").replace("EURUSD", &quoted);
    let late_bad = trade_row("4").replace("1.1,1.2", "x,1.2");
    let text = format!(
        "{HEADER}{}{long}{}{late_bad}",
        trade_row("1"),
        trade_row("3")
    );
    let f = read_trades(text.as_bytes(), "q.csv", |_| {}).unwrap();
    let ids: Vec<_> = f.trades.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["1", "3"]);
    let where_: Vec<_> = f
        .errors
        .iter()
        .map(|e| (e.line, e.column.as_str()))
        .collect();
    assert_eq!(where_, [(3, "symbol"), (200_005, "open_price")]);
}

#[test]
fn an_unterminated_quote_costs_one_row_error() {
    // The csv reader would read the rest of the file into the quoted field: it is one
    // row, cut at the limit, and the rows before it are kept.
    let body = format!("{}0,2,0,,\"{}\n", trade_row("1"), "1.1,".repeat(40_000));
    let f = read_both_ways(format!("{HEADER}{body}").as_bytes(), CsvLimits::default());
    assert_eq!((f.trades.len(), f.skipped_rows), (1, 1));
    assert_eq!(
        (f.errors[0].line, f.errors[0].column.as_str()),
        (3, "open_price")
    );
}

#[test]
fn the_row_limit_is_exact_and_counts_quotes_and_delimiters() {
    let header = HEADER.trim_end();
    let limit = header.len();
    // A row padded to `len` bytes through its unused `reason` column, quoted.
    let padded = |id: &str, len: usize| {
        let row = trade_row(id);
        let pad = len - (row.trim_end().len() + 2);
        row.replacen(",0,,", &format!(",0,\"{}\",", "r".repeat(pad)), 1)
    };
    let text = format!(
        "{header}\r\n{}{}{}",
        padded("1", limit),
        padded("2", limit + 1),
        trade_row("3")
    );
    let limits = CsvLimits {
        max_row_bytes: limit,
        ..CsvLimits::default()
    };
    let f = read_both_ways(text.as_bytes(), limits);
    let ids: Vec<_> = f.trades.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["1", "3"], "{:?}", f.errors);
    assert_eq!(f.errors.len(), 1);
    assert_eq!(
        (f.errors[0].line, f.errors[0].column.as_str()),
        (3, "trading_account_login")
    );
    assert_eq!(
        f.errors[0].message,
        format!("the row is longer than the limit of {limit} bytes")
    );
    // One byte less and the header itself is too long.
    let limits = CsvLimits {
        max_row_bytes: limit - 1,
        ..limits
    };
    let e = read_trades_with(text.as_bytes(), "e.csv", limits, |_| {}).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "e.csv: the header row is longer than the limit of {} bytes",
            limit - 1
        )
    );
}

#[test]
fn fields_the_reader_uses_are_bounded() {
    let id = "7".repeat(MAX_FIELD_BYTES + 1);
    let ok_id = "8".repeat(MAX_FIELD_BYTES);
    let comment = "c".repeat(10 * MAX_FIELD_BYTES);
    let text = format!(
        "{HEADER}{}{}{}",
        trade_row(&id),
        trade_row(&ok_id),
        // An unused column (`reason`) may be longer than the field limit.
        trade_row("9").replacen(",0,,", &format!(",0,{comment},"), 1)
    );
    let f = read_both_ways(text.as_bytes(), CsvLimits::default());
    let ids: Vec<_> = f.trades.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, [ok_id.as_str(), "9"]);
    assert_eq!(
        f.errors[0].to_string(),
        "b.csv:2: column `identifier`: the field is 1025 bytes, longer than the limit of 1024"
    );
}

#[test]
fn a_10_mb_field_in_the_accounts_file_is_one_row_error() {
    let huge = "u".repeat(10 << 20);
    let text = format!("login,user_id,challenge_id\n1,u1,c1\n2,{huge},c1\n3,u3,\n");
    let a = read_accounts(text.as_bytes(), "a.csv").unwrap();
    assert_eq!(a.order, [AccountId::new("1"), AccountId::new("3")]);
    assert_eq!(a.skipped_rows, 1);
    assert_eq!(
        a.errors[0].to_string(),
        "a.csv:3: column `user_id`: the row is longer than the limit of 65536 bytes"
    );
    let long_user = "u".repeat(MAX_FIELD_BYTES + 1);
    let text = format!("login,user_id,challenge_id\n1,{long_user},c1\n2,u2,\n");
    let a = read_accounts(text.as_bytes(), "a.csv").unwrap();
    assert_eq!(a.order, [AccountId::new("2")]);
    assert_eq!(a.errors[0].column, "user_id");
    let header = format!("login,user_id,challenge_id,{}\n", "x".repeat(MAX_ROW_BYTES));
    assert!(matches!(
        read_accounts(header.as_bytes(), "a.csv"),
        Err(CsvInputError::HeaderTooLong {
            limit: MAX_ROW_BYTES,
            ..
        })
    ));
}

#[test]
fn invalid_utf8_names_its_column() {
    let mut text = HEADER.as_bytes().to_vec();
    text.extend_from_slice(
        b"0,1,0,,1.1,1.2,0,0.1,2025-05-05 10:00:00,2025-05-05 10:01:00,1,,,10,0,EUR\xC3,1,1,0,7\n",
    );
    // Two fields that are only valid UTF-8 when glued together.
    text.extend_from_slice(
        b"0,2,0,,1.1,1.2,0,0.1,2025-05-05 10:00:00,2025-05-05 10:01:00,1,,,10,0,\xC3,\xA91,1,0,7\n",
    );
    let f = read_trades(text.as_slice(), "u.csv", |_| {}).unwrap();
    assert_eq!(f.trades.len(), 0);
    let cols: Vec<_> = f.errors.iter().map(|e| e.column.as_str()).collect();
    assert_eq!(cols, ["symbol", "symbol"]);
}

proptest::proptest! {
    /// Arbitrary rows never stop the read nor panic, and every record is accounted
    /// for exactly once, sequentially or split across workers.
    #[test]
    fn arbitrary_rows_are_counted_once(
        rows in proptest::collection::vec(
            proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::string::string_regex("[0-9]{1,3}").unwrap(),
                    proptest::string::string_regex("-?[0-9]{1,4}\\.[0-9]{0,3}").unwrap(),
                    proptest::string::string_regex("2025-05-0[1-3] 1[0-2]:[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,6})?").unwrap(),
                    proptest::string::string_regex("[ -~]{0,8}").unwrap(),
                ],
                0..24,
            ),
            0..40,
        ),
        workers in 1_usize..4,
    ) {
        let body: String = rows
            .iter()
            .map(|r| format!("{}\n", r.join(",").replace('"', "")))
            .collect();
        let text = format!("{HEADER}{body}");
        let records = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(text.as_bytes())
            .byte_records()
            .count() as u64;
        let f = read_trades(text.as_bytes(), "p.csv", |_| {}).unwrap();
        proptest::prop_assert_eq!(f.trades.len() as u64 + f.skipped_rows + f.duplicate_rows, records);
        let p = read_trades_parallel(text.as_bytes(), "p.csv", workers, |_| {}).unwrap();
        proptest::prop_assert!(p.trades == f.trades);
        proptest::prop_assert_eq!((p.skipped_rows, p.duplicate_rows), (f.skipped_rows, f.duplicate_rows));
    }
}

#[test]
fn missing_column_is_fatal() {
    let e = read_trades("identifier,action\n1,0\n".as_bytes(), "x.csv", |_| {});
    assert!(matches!(
        e,
        Err(CsvInputError::MissingColumn {
            column: "open_price",
            ..
        })
    ));
}

#[test]
fn accounts_file() {
    let text = "login,user_id,challenge_id,initial_balance\n1,u1,c1,50000\n2,u1,,\n3,u2,c1,-5\n1,u3,c2,\n4,,c1,\n";
    let a = read_accounts(text.as_bytes(), "a.csv").unwrap();
    assert_eq!(a.order.len(), 2);
    assert_eq!(a.skipped_rows, 3);
    let one = &a.accounts[&AccountId::new("1")];
    assert_eq!(one.initial_balance, Some(Decimal::from(50_000)));
    assert_eq!(one.challenge, Some(ChallengeId::new("c1")));
    assert_eq!(a.accounts[&AccountId::new("2")].challenge, None);
    let b = read_accounts("login,user_id,challenge_id\n9,u9,c9\n".as_bytes(), "b.csv").unwrap();
    assert_eq!(b.accounts[&AccountId::new("9")].initial_balance, None);
    assert_eq!(b.accounts[&AccountId::new("9")].group, None);
    let g = read_accounts(
        "login,user_id,challenge_id,group_id\n1,u1,c1,g7\n2,u2,c1,\n".as_bytes(),
        "g.csv",
    )
    .unwrap();
    assert_eq!(
        g.accounts[&AccountId::new("1")].group.as_deref(),
        Some("g7")
    );
    assert_eq!(g.accounts[&AccountId::new("2")].group, None);
}

/// The firm's export header (`login,account_size,platform,phase,user_id,challenge_id`):
/// `account_size` is the initial balance unless `initial_balance` is given too; platform
/// and phase are kept; a size that is not a positive amount is a row error naming the
/// column, and the good rows around it are kept.
#[test]
fn accounts_file_with_account_size_platform_and_phase() {
    let text = "login,account_size,platform,phase,user_id,challenge_id
\
                1,5000,mt5,phase1,u1,c1
\
                2,,ctrader, ,u1,
\
                3,0,mt5,funded,u2,c1
\
                4,abc,mt4,phase2,u2,c1
\
                5,25000.50,mt4,funded,u3,c2
";
    let a = read_accounts(text.as_bytes(), "a.csv").unwrap();
    let order: Vec<_> = a.order.iter().map(AccountId::as_str).collect();
    assert_eq!(order, ["1", "2", "5"]);
    assert_eq!(a.skipped_rows, 2);
    let one = &a.accounts[&AccountId::new("1")];
    assert_eq!(one.initial_balance, Some(Decimal::from(5_000)));
    assert_eq!(one.account_size, Some(Decimal::from(5_000)));
    assert_eq!(
        (one.platform.as_deref(), one.phase.as_deref()),
        (Some("mt5"), Some("phase1"))
    );
    let two = &a.accounts[&AccountId::new("2")];
    assert_eq!((two.initial_balance, two.account_size), (None, None));
    assert_eq!(
        (two.platform.as_deref(), two.phase.as_deref()),
        (Some("ctrader"), None)
    );
    assert_eq!(
        a.accounts[&AccountId::new("5")].initial_balance,
        Some(Decimal::new(2_500_050, 2))
    );
    let errors: Vec<String> = a.errors.iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 2);
    assert!(errors[0].contains("a.csv:4"), "{errors:?}");
    assert!(errors[0].contains("account_size"), "{errors:?}");
    assert!(
        errors[0].contains("account size 0 is not positive"),
        "{errors:?}"
    );
    assert!(
        errors[1].contains("a.csv:5") && errors[1].contains("account_size"),
        "{errors:?}"
    );

    // An explicit initial_balance wins over account_size.
    let both = read_accounts(
        "login,user_id,challenge_id,account_size,initial_balance
7,u7,c7,5000,6000
8,u8,c7,5000,
"
        .as_bytes(),
        "b.csv",
    )
    .unwrap();
    let seven = &both.accounts[&AccountId::new("7")];
    assert_eq!(seven.initial_balance, Some(Decimal::from(6_000)));
    assert_eq!(seven.account_size, Some(Decimal::from(5_000)));
    assert_eq!(
        both.accounts[&AccountId::new("8")].initial_balance,
        Some(Decimal::from(5_000))
    );
}

#[test]
fn timestamps() {
    for ok in [
        "2025-05-05 23:41:50",
        "2025-05-05 23:41:50.1",
        "2025-05-05 23:41:50.123456789",
        "2025-05-05T23:41:50Z",
        "2025-05-06T01:41:50+02:00",
    ] {
        assert!(parse_timestamp(ok).is_some(), "{ok}");
    }
    assert_eq!(
        parse_timestamp("2025-05-06T01:41:50+02:00"),
        parse_timestamp("2025-05-05 23:41:50")
    );
    for bad in [
        "",
        "2025-05-05",
        "2025-02-30 00:00:00",
        "2025-05-05 24:00:00",
        "2025-05-05 10:00:00.",
        "2025-05-05 10:00:00.1234567890",
        "2025-05-05 10:00:00 junk",
        "x025-05-05 10:00:00",
    ] {
        assert!(parse_timestamp(bad).is_none(), "{bad}");
    }
}

proptest::proptest! {
    /// The fast time path (with its one-day cache, over times read in turn) gives what
    /// `parse_timestamp` gives whenever it answers, and answers for the export's usual
    /// times.
    #[test]
    fn cached_times_are_parse_timestamp(
        texts in proptest::collection::vec(
            proptest::string::string_regex(
                "20[0-9]{2}-[01][0-9]-[0-3][0-9][ T][0-2][0-9]:[0-6][0-9]:[0-6][0-9](\\.[0-9]{0,11})?(Z|\\+00:00|x)?|[-0-9 :.T]{17,22}",
            )
            .unwrap(),
            1..8,
        ),
    ) {
        let mut cache = super::fields::DateCache::default();
        for text in &texts {
            let slow = parse_timestamp(text);
            match cache.parse(text.as_bytes()) {
                Some(fast) => proptest::prop_assert_eq!(Some(fast), slow, "{}", text),
                None => {
                    let b = text.as_bytes();
                    let frac = b.get(19..).unwrap_or_default();
                    let usual = b.len() <= 29 && frac.first().is_none_or(|&c| c == b'.')
                        && frac.iter().skip(1).all(u8::is_ascii_digit) && frac.len() != 1;
                    proptest::prop_assert!(slow.is_none() || !usual, "{}", text);
                }
            }
        }
    }

    /// A numeric id is the integer the text reads as, for canonical decimal text of up
    /// to 19 digits only.
    #[test]
    fn numeric_ids_are_canonical_integers(text in "[0-9a]{0,21}") {
        let canonical = !text.is_empty() && text.len() <= 19 && text.bytes().all(|b| b.is_ascii_digit())
            && !(text.starts_with('0') && text.len() > 1);
        let expected = canonical.then(|| text.parse::<u64>().unwrap());
        proptest::prop_assert_eq!(numeric_id(&text), expected, "{}", text);
    }
}

proptest::proptest! {
    /// The fast decimal path gives exactly what `parse_decimal` gives (the same mantissa,
    /// scale and sign, not merely an equal value) whenever it answers, and answers for
    /// the export's usual numbers.
    #[test]
    fn plain_decimals_are_parse_decimal_bit_for_bit(
        text in proptest::string::string_regex("[-+]?[0-9]{0,21}(\\.[0-9]{0,21})?|[-+ .0-9eE]{0,8}").unwrap(),
    ) {
        if let Some(fast) = super::fields::plain_decimal(text.as_bytes()) {
            let slow = risk_core::num::parse_decimal(&text).unwrap();
            proptest::prop_assert_eq!(fast.serialize(), slow.serialize(), "{}", text);
        }
        // The prefix read in a row (more bytes after the cell, so that the digits are
        // read eight at a time as far as they go) is the prefix read in the cell alone.
        let alone = super::fields::decimal_prefix(text.as_bytes());
        for tail in [",", ",12345678,1", "x9999999999", ".5", " 2025-05-05 10:00:00"] {
            let in_row = super::fields::decimal_prefix(format!("{text}{tail}").as_bytes());
            let (a, b) = (alone.0.map(|d| d.serialize()), in_row.0.map(|d| d.serialize()));
            if tail == ".5" {
                // A point after the cell may extend it: only the digits before agree.
                if !text.contains('.') && alone.1 == text.len() && alone.0.is_some() && text.bytes().last().is_some_and(|b| b.is_ascii_digit()) {
                    proptest::prop_assert_eq!(in_row.1, text.len() + 2, "{}", text);
                }
            } else {
                proptest::prop_assert_eq!((a, alone.1), (b, in_row.1), "{}{}", text, tail);
            }
        }
        let usual = text.strip_prefix('-').unwrap_or(&text);
        let (int, frac) = usual.split_once('.').unwrap_or((usual, "1"));
        let digits = int.len() + frac.len();
        if !int.is_empty() && !frac.is_empty() && digits <= 19 && usual.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && usual.matches('.').count() <= 1 && !(text.starts_with('-') && usual.bytes().all(|b| b == b'0' || b == b'.'))
        {
            proptest::prop_assert!(super::fields::plain_decimal(text.as_bytes()).is_some(), "{}", text);
        }
    }

    /// Quote-free text of every shape (rows short and long, bad cells, blank lines, lone
    /// `\r` and CRLF line ends, byte-order marks and invalid UTF-8 in mid-file, small row
    /// and field limits) reads the same through the rows split in place, on 1 to 4
    /// workers, as through the csv reader: the same trades (decimals to the scale), the
    /// same row errors with their lines, the same counts.
    #[test]
    fn split_rows_read_as_the_csv_reader_reads_them(
        rows in proptest::collection::vec(
            (
                proptest::collection::vec(
                    proptest::prop_oneof![
                        4 => proptest::string::string_regex("[0-9]{1,3}").unwrap(),
                        4 => proptest::string::string_regex("-?[0-9]{1,4}\\.[0-9]{0,3}").unwrap(),
                        3 => proptest::string::string_regex("2025-05-0[1-3][ T]1[0-2]:[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,10})?Z?").unwrap(),
                        1 => proptest::string::string_regex(" ?[0-9.e+-]{0,6} ?").unwrap(),
                        1 => proptest::string::string_regex("[ -!#-~]{0,8}").unwrap(),
                        1 => proptest::sample::select(vec!["\u{feff}".to_owned(), "\u{e9}".to_owned(), "buy".to_owned(), "1.0".to_owned(), String::new()]),
                    ],
                    0..24,
                ),
                proptest::sample::select(vec!["\n", "\r\n", "\r", "\n\n", "\r\n\r\n", "\n\r"]),
            ),
            0..40,
        ),
        bad_byte_row in proptest::option::of(0_usize..40),
        max_row_bytes in proptest::prop_oneof![proptest::strategy::Just(MAX_ROW_BYTES), 1_usize..400],
        max_field_bytes in proptest::prop_oneof![proptest::strategy::Just(MAX_FIELD_BYTES), 1_usize..30],
    ) {
        let limits = CsvLimits { max_row_bytes, max_field_bytes };
        let mut text = HEADER.as_bytes().to_vec();
        for (i, (cells, end)) in rows.iter().enumerate() {
            text.extend_from_slice(cells.join(",").as_bytes());
            if bad_byte_row == Some(i) {
                text.push(0xFF);
            }
            text.extend_from_slice(end.as_bytes());
        }
        let sequential = read_trades_with(text.as_slice(), "q.csv", limits, |_| {});
        if let Ok(sequential) = &sequential {
            let batch = read_trade_batch(text.as_slice(), "q.csv", PnlBasis::Net, limits, |_| {}).unwrap();
            proptest::prop_assert_eq!(batch_view(&batch.batch), trades_view(&sequential.trades, PnlBasis::Net));
            proptest::prop_assert_eq!(&batch.errors, &sequential.errors);
        }
        for workers in 1..=4 {
            let split = read_trades_parallel_with(&text, "q.csv", workers, limits, |_| {});
            match (&sequential, &split) {
                (Ok(sequential), Ok(split)) => {
                    proptest::prop_assert_eq!(format!("{:?}", split.trades), format!("{:?}", sequential.trades), "{} workers", workers);
                    for basis in [PnlBasis::Net, PnlBasis::Gross] {
                        let batch = read_trade_batch_parallel(&text, "q.csv", workers, basis, limits, |_| {}).unwrap();
                        proptest::prop_assert_eq!(batch_view(&batch.batch), trades_view(&sequential.trades, basis));
                        proptest::prop_assert_eq!(&batch.errors, &sequential.errors);
                        proptest::prop_assert_eq!(
                            (batch.skipped_rows, batch.duplicate_rows),
                            (sequential.skipped_rows, sequential.duplicate_rows)
                        );
                    }
                    proptest::prop_assert_eq!(&split.errors, &sequential.errors, "{} workers", workers);
                    proptest::prop_assert_eq!(
                        (split.skipped_rows, split.duplicate_rows),
                        (sequential.skipped_rows, sequential.duplicate_rows)
                    );
                }
                // A header over a small row limit stops both reads, the same way.
                (Err(a), Err(b)) => proptest::prop_assert_eq!(a.to_string(), b.to_string()),
                _ => proptest::prop_assert!(false, "one read failed and the other did not"),
            }
        }
    }
}

/// The usual trade ids repeat across rows in this proptest's vocabulary rarely; a sample
/// export with repeats across every chunking and a bad row re-sent later reads the same
/// through the split rows as through the csv reader, decimals to the scale.
#[test]
fn split_rows_keep_decimal_scales_and_the_first_id() {
    let rows = [
        trade_row("1").replace("1.1,1.2", "1.10,1.200"),
        trade_row("2").replace("1.1,1.2", "x,1.2"),
        trade_row("1"),
        trade_row("2").replace("1.1,1.2", "007.50,-0.0"),
        trade_row("3").replace(",0.1,", ",1e-1,"),
    ]
    .concat();
    let text = format!("{HEADER}{rows}");
    let f = read_both_ways(text.as_bytes(), CsvLimits::default());
    let ids: Vec<_> = f.trades.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["1", "2", "3"]);
    assert_eq!(f.trades[0].open_price.to_string(), "1.10");
    assert_eq!(f.trades[1].open_price.to_string(), "7.50");
    assert_eq!(f.trades[2].volume.to_string(), "0.1");
    assert_eq!((f.skipped_rows, f.duplicate_rows), (1, 1));
    for workers in 1..=4 {
        let split = read_trades_parallel(text.as_bytes(), "b.csv", workers, |_| {}).unwrap();
        assert_eq!(format!("{:?}", split.trades), format!("{:?}", f.trades));
    }
}

/// The columns of [`HEADER`], rotated left by `by` (so that the last column the reader
/// uses is followed by unused ones when `by` is not 0).
fn rotated_header(by: usize) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = HEADER.trim_end().split(',').collect();
    let len = names.len();
    names.rotate_left(by % len);
    names
}

/// A cell for column `name` of a row of the one-pass parse's vocabulary: mostly the
/// usual shapes (which it reads), with every kind of near miss (which it leaves to the
/// general parse).
fn usual_cell(name: &str) -> proptest::strategy::BoxedStrategy<String> {
    use proptest::prelude::*;
    let re = |r: &str| proptest::string::string_regex(r).unwrap().boxed();
    let decimal = || {
        prop_oneof![
            40 => re("-?[0-9]{1,5}(\\.[0-9]{1,6})?"),
            1 => re("[0-9]{17,21}|[0-9]{10}\\.[0-9]{8,11}"),
            1 => proptest::sample::select(vec!["-0", "-0.00", "1.", ".5", "-", "1e2", " 1.5", "1.5 ", "+1", "1.2.3", "\u{e9}", ""])
                .prop_map(str::to_owned),
        ]
        .boxed()
    };
    match name {
        "identifier" => prop_oneof![
            30 => re("[1-9][0-9]{0,2}"),
            1 => re("0[0-9]{0,2}|[0-9]{19,21}|T-[a-z]{1,2}|[a-z0-9]{1,3}\u{e9}|\u{e9}[0-9]"),
            1 => proptest::sample::select(vec![" 12", "12 ", "", "1\u{a0}", "1 2", "1+2"]).prop_map(str::to_owned),
        ]
        .boxed(),
        "action" => prop_oneof![
            40 => re("[01]"),
            1 => proptest::sample::select(vec!["buy", "1.0", "0.0", "2", "", " 1", "01"]).prop_map(str::to_owned),
        ]
        .boxed(),
        "open_price" | "close_price" | "commission" | "lot_size" | "profit" | "swap" => decimal(),
        "price_sl" | "price_tp" => prop_oneof![
            10 => Just(String::new()),
            1 => proptest::sample::select(vec!["0", "0.00", "-0.0"]).prop_map(str::to_owned),
            15 => decimal(),
        ]
        .boxed(),
        "opened_at" | "closed_at" => prop_oneof![
            40 => re("2025-05-0[1-2][ T]1[0-1]:[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,6})?"),
            2 => re("20[0-9]{2}-[01][0-9]-[0-3][0-9][ T][0-2][0-9]:[0-6][0-9]:[0-6][0-9](\\.[0-9]{0,10})?(Z|\\+00:00|\\+01:00|Zx| )?"),
            1 => proptest::sample::select(vec![
                "2262-04-11 23:47:16.854775807",
                "2262-04-11 23:47:16.854775808",
                "1677-09-21 00:12:43.145224192",
                "1677-09-21 00:12:43.145224191",
                "9999-12-31 23:59:59",
                "0000-01-01 00:00:00",
                "2025-02-29 10:00:00",
                "2025-05-01 24:00:00",
                "2025-05-01 23:60:00",
                "2025-05-01 23:59:60",
                "2025-05-01 10:00:00.",
                "2025-05-01 10:00:00.1234567891",
                " 2025-05-01 10:00:00",
                "2025-05-01",
            ])
            .prop_map(str::to_owned),
        ]
        .boxed(),
        "symbol" => prop_oneof![
            30 => proptest::sample::select(vec!["EURUSD", "NDX100", "XAUUSD.r"]).prop_map(str::to_owned),
            1 => proptest::sample::select(vec!["", " EURUSD", "EUR USD", "\u{e9}X", "X\u{e9}", "X\u{a0}"]).prop_map(str::to_owned),
        ]
        .boxed(),
        "trading_account_login" => prop_oneof![
            30 => re("1[0-9]{0,2}"),
            1 => proptest::sample::select(vec!["", "7 ", "\u{3000}7", "a-b"]).prop_map(str::to_owned),
        ]
        .boxed(),
        _ => re("[ -!#-+\\--~]{0,5}"),
    }
}

/// A row of [`usual_cell`]s for `header`, its line end, and sometimes one column less or
/// one more.
fn usual_row(header: Vec<&'static str>) -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let cells: Vec<_> = header.iter().map(|name| usual_cell(name)).collect();
    (
        cells,
        prop_oneof![8 => Just(0_i8), 1 => Just(-1_i8), 1 => Just(1_i8)],
        proptest::sample::select(vec!["\n", "\n", "\n", "\r\n", "\r", "\n\n"]),
    )
        .prop_map(|(mut cells, extra, end)| {
            match extra {
                -1 => {
                    cells.pop();
                }
                1 => cells.push("x".to_owned()),
                _ => {}
            }
            format!("{}{end}", cells.join(","))
        })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Rows of the export's usual shape, mostly good, with near misses of every kind in
    /// every cell (which the one-pass parse must leave to the general one), in the
    /// header's column order or rotated (unused columns after the last used one), with
    /// repeated ids, small limits and a last row without a line end: the rows split in
    /// place (1 to 4 workers, trades and batch) read as the csv reader reads them, to
    /// the scale of every decimal.
    #[test]
    fn usual_rows_read_as_the_csv_reader_reads_them(
        (by, rows) in proptest::strategy::Strategy::prop_flat_map(0_usize..20, |by| {
            (
                proptest::strategy::Just(by),
                proptest::collection::vec(usual_row(rotated_header(by)), 0..30),
            )
        }),
        cut_last_end in proptest::bool::ANY,
        max_row_bytes in proptest::prop_oneof![4 => proptest::strategy::Just(MAX_ROW_BYTES), 1 => 190_usize..320],
        max_field_bytes in proptest::prop_oneof![4 => proptest::strategy::Just(MAX_FIELD_BYTES), 1 => 0_usize..12],
    ) {
        use proptest::prelude::*;
        let limits = CsvLimits { max_row_bytes, max_field_bytes };
        let mut text = format!("{}\n{}", rotated_header(by).join(","), rows.concat());
        if cut_last_end {
            while text.ends_with(['\n', '\r']) {
                text.pop();
            }
        }
        let text = text.as_bytes();
        let sequential = read_trades_with(text, "u.csv", limits, |_| {}).unwrap();
        for workers in 1..=4 {
            let split = read_trades_parallel_with(text, "u.csv", workers, limits, |_| {}).unwrap();
            prop_assert_eq!(format!("{:?}", split.trades), format!("{:?}", sequential.trades), "{} workers", workers);
            prop_assert_eq!(&split.errors, &sequential.errors, "{} workers", workers);
            prop_assert_eq!(
                (split.skipped_rows, split.duplicate_rows),
                (sequential.skipped_rows, sequential.duplicate_rows)
            );
            for basis in [PnlBasis::Net, PnlBasis::Gross] {
                let batch = read_trade_batch_parallel(text, "u.csv", workers, basis, limits, |_| {}).unwrap();
                prop_assert_eq!(batch_view(&batch.batch), trades_view(&sequential.trades, basis));
                prop_assert_eq!(&batch.errors, &sequential.errors);
                prop_assert_eq!(
                    (batch.skipped_rows, batch.duplicate_rows),
                    (sequential.skipped_rows, sequential.duplicate_rows)
                );
            }
        }
    }
}

/// The one-pass parse reads the rows of the export's usual shape (a test that it is
/// taken at all, so that the property test above compares it): every row of a generated
/// sample, and none of a row with a cell to trim.
#[cfg(feature = "cli")]
#[test]
fn the_one_pass_parse_reads_the_usual_rows() {
    let mut text = Vec::new();
    let config = crate::sample::SampleConfig {
        trades: 500,
        defects: false,
        ..Default::default()
    };
    crate::sample::generate(&config, &mut text, &mut Vec::<u8>::new()).unwrap();
    let header_end = text.iter().position(|&b| b == b'\n').unwrap() + 1;
    let (_, header) =
        super::fields::open_reader(&text[..header_end], "s.csv", CsvLimits::default()).unwrap();
    let cols = super::fields::find_columns(&header, &TRADE_COLUMNS, "s.csv").unwrap();
    let plan = super::fast::RowPlan::new(&cols);
    let body = &text[header_end..];
    let whole = std::str::from_utf8(body).unwrap();
    let mut days = super::fast::DayCache::default();
    let mut fields = super::fast::Fields::default();
    let (mut at, mut rows) = (0, 0);
    while at < body.len() {
        let end = plan
            .parse_into(&mut fields, body, whole, at, MAX_FIELD_BYTES, &mut days)
            .unwrap_or_else(|| panic!("row at byte {at} not read in one pass"));
        at = end + 1;
        rows += 1;
    }
    assert_eq!(rows, 500);
    let padded =
        b"0,1,0,,1.1,1.2,0,0.1,2025-05-05 10:00:00,2025-05-05 10:01:00,1,,,10,0, EURUSD,1,1,0,7\n";
    let whole = std::str::from_utf8(padded).unwrap();
    assert!(plan
        .parse_into(&mut fields, padded, whole, 0, MAX_FIELD_BYTES, &mut days)
        .is_none());
}

proptest::proptest! {
    /// A name's packed key is its bytes in a zeroed 16-byte buffer with the length in the
    /// last byte, for every length up to 15 (none above).
    #[test]
    fn packed_names_are_their_bytes_and_length(name in "[ -~]{0,17}|[a-z\u{e9}\u{3000}]{0,9}") {
        let b = name.as_bytes();
        let expected = (b.len() < 16).then(|| {
            let mut buf = [0_u8; 16];
            buf[..b.len()].copy_from_slice(b);
            buf[15] = b.len() as u8;
            u128::from_le_bytes(buf)
        });
        proptest::prop_assert_eq!(super::batch::packed(&name), expected, "{:?}", name);
    }
}
