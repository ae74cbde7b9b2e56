//! A hostile CSV file costs a bounded amount of memory: a 32 MiB field is read through
//! without the process's peak memory growing by more than a few MiB, while the same file
//! read without the row limit grows it by the whole field (the control that shows the
//! measurement sees such growth). Linux only (the peak is `VmHWM` in /proc/self/status);
//! the only test in its binary, so nothing else moves the peak meanwhile.
#![cfg(all(feature = "cli", target_os = "linux"))]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::Read;

use risk_adapters::csv_input::{read_trades, read_trades_with, CsvLimits};

const HEADER: &str = ",identifier,action,reason,open_price,close_price,commission,lot_size,opened_at,closed_at,pips,price_sl,price_tp,profit,swap,symbol,contract_size,profit_rate,platform,trading_account_login\n";

fn row(id: &str) -> String {
    format!(
        "0,{id},0,,1.1,1.2,0,0.1,2025-05-05 10:00:00,2025-05-05 10:01:00,1,,,10,0,EURUSD,1,1,0,7\n"
    )
}

const FIELD: usize = 32 << 20;

/// The file, generated as it is read: a header, a good row, a row whose `reason` field is
/// `FIELD` bytes (quoted, with line breaks), a good row.
struct Hostile {
    head: Vec<u8>,
    filler: usize,
    tail: Vec<u8>,
}

impl Hostile {
    fn new() -> Self {
        Self {
            head: format!("{HEADER}{}0,2,0,\"", row("1")).into_bytes(),
            filler: FIELD,
            tail: format!("\",1.1,1.2,0,0.1,2025-05-05 10:00:00,2025-05-05 10:01:00,1,,,10,0,EURUSD,1,1,0,7\n{}", row("3")).into_bytes(),
        }
    }
}

impl Read for Hostile {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if !self.head.is_empty() {
            let n = self.head.len().min(out.len());
            out[..n].copy_from_slice(&self.head[..n]);
            self.head.drain(..n);
            return Ok(n);
        }
        if self.filler > 0 {
            let n = self.filler.min(out.len());
            for (i, b) in out[..n].iter_mut().enumerate() {
                *b = if (self.filler - i).is_multiple_of(80) {
                    b'\n'
                } else {
                    b'x'
                };
            }
            self.filler -= n;
            return Ok(n);
        }
        let n = self.tail.len().min(out.len());
        out[..n].copy_from_slice(&self.tail[..n]);
        self.tail.drain(..n);
        Ok(n)
    }
}

/// The process's peak resident memory so far, in bytes.
fn peak() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("a number of kB");
    kib * 1024
}

#[test]
fn a_32_mib_field_costs_a_bounded_amount_of_memory() {
    let before = peak();
    let f = read_trades(Hostile::new(), "hostile.csv", |_| {}).expect("read");
    let bounded = peak() - before;
    let ids: Vec<_> = f.trades.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["1", "3"]);
    assert_eq!(f.skipped_rows, 1);
    assert_eq!(
        f.errors[0].to_string(),
        "hostile.csv:3: column `reason`: the row is longer than the limit of 65536 bytes"
    );
    assert!(
        bounded < 8 << 20,
        "reading grew the peak by {bounded} bytes"
    );

    // Control: without a row limit the csv reader buffers the whole field.
    let unlimited = CsvLimits {
        max_row_bytes: usize::MAX,
        ..CsvLimits::default()
    };
    let before = peak();
    let f = read_trades_with(Hostile::new(), "hostile.csv", unlimited, |_| {}).expect("read");
    let unbounded = peak() - before;
    // (The long field is in a column the reader does not use: the row is a good trade.)
    assert_eq!(f.trades.len(), 3);
    eprintln!("peak grew by {bounded} bytes with the row limit, {unbounded} without");
    assert!(
        unbounded >= FIELD as u64,
        "the measurement did not see the unbounded read: {unbounded} bytes"
    );
}
