//! Runs the `risk` binary end to end: the real sample export, the checked-in example data,
//! the generator's determinism, the config file and the output formats.
#![cfg(feature = "cli")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn risk(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_risk"))
        .args(args)
        .output()
        .expect("the risk binary runs")
}

fn ok_stdout(args: &[&str]) -> String {
    let out = risk(args);
    assert!(
        out.status.success(),
        "risk {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("risk-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn real_sample_export_as_json() {
    let path = repo_root().join("../shared/data/prop_trades_sample.csv");
    if !path.exists() {
        println!(
            "note: {} is absent; skipping the real-sample test",
            path.display()
        );
        return;
    }
    let text = ok_stdout(&[
        "report",
        "--trades",
        path.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let accounts = json["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 1_064);
    let trades: u64 = accounts.iter().map(|a| a["trades"].as_u64().unwrap()).sum();
    assert_eq!(trades, 1_084);
    assert_eq!(json["skipped_rows"], 0);
    assert_eq!(json["duplicate_rows"], 0);
    assert_eq!(
        json["users"].as_array().unwrap().len(),
        1_064,
        "every login is its own user"
    );
    assert_eq!(json["challenges"].as_array().unwrap().len(), 0);
    for a in accounts {
        assert!(a["account_login"].is_string());
        assert_eq!(a["user_id"], a["account_login"]);
        assert!(a["challenge_id"].is_null());
        for key in [
            "win_ratio",
            "max_relative_drawdown",
            "stop_loss_ratio",
            "take_profit_ratio",
            "risk_score",
        ] {
            assert!(a[key].is_f64(), "{key} is a number: {a}");
        }
        for key in ["hft_trades", "max_concurrent_trades"] {
            assert!(a[key].is_u64(), "{key}: {a}");
        }
        assert!(a["profit_factor"].is_null() || a["profit_factor"].is_f64());
        assert_eq!(a["profit_factor"].is_null(), a["losses"] == 0, "{a}");
        assert!(a["risk_level"].is_string());
        assert!(a["signals"].is_array());
    }
    // A hand-checked account: 10452073's single trade (row 0 of the export) made
    // -0.09 profit with -0.07 commission, held 18 min 20 s, no stop-loss.
    let a = accounts
        .iter()
        .find(|a| a["account_login"] == "10452073")
        .unwrap();
    assert_eq!(a["trades"], 1);
    assert_eq!(a["net_profit"].as_f64(), Some(-0.16));
    assert_eq!(a["win_ratio"].as_f64(), Some(0.0));
    assert_eq!(a["profit_factor"].as_f64(), Some(0.0));
    assert_eq!(a["hft_trades"], 0);
    assert_eq!(a["average_holding_seconds"].as_f64(), Some(1100.0));
    // The identifier beyond 2^53 did not go through a float: the login kept its digits.
    assert!(accounts
        .iter()
        .all(|a| !a["account_login"].as_str().unwrap().contains('e')));
}

#[test]
fn example_data_report() {
    let root = repo_root();
    let trades = root.join("examples/data/trades.csv");
    let accounts = root.join("examples/data/accounts.csv");
    let args = [
        "report",
        "--trades",
        trades.to_str().unwrap(),
        "--accounts",
        accounts.to_str().unwrap(),
    ];
    let out = risk(&[&args[..], &["--format", "json"]].concat());
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("trades.csv:3002: column `open_price`"),
        "{stderr}"
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["skipped_rows"], 3);
    assert_eq!(json["duplicate_rows"], 2);
    let accounts = json["accounts"].as_array().unwrap();
    let trades: u64 = accounts.iter().map(|a| a["trades"].as_u64().unwrap()).sum();
    assert_eq!(trades, 3_000);
    assert_eq!(json["challenges"].as_array().unwrap().len(), 4);
    let scores: Vec<f64> = accounts
        .iter()
        .map(|a| a["risk_score"].as_f64().unwrap())
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "sorted by score");
    for kind in ["HFT_TRADING", "LAYERING", "LOW_STOP_LOSS_USAGE", "DRAWDOWN"] {
        assert!(
            accounts.iter().any(|a| a["signals"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["kind"] == kind)),
            "the example data shows {kind}"
        );
    }
    // Each user's score is its riskiest account's, plus breadth points.
    for u in json["users"].as_array().unwrap() {
        let top = u["accounts"][0]["risk_score"].as_f64().unwrap();
        assert!(u["risk_score"].as_f64().unwrap() >= top);
    }
    let table = ok_stdout(&args);
    assert!(table.starts_with("ACCOUNTS (32)"), "{table}");
    assert!(table.contains("\nUSERS (20)\n") && table.contains("\nCHALLENGES (4)\n"));
    let csv = ok_stdout(&[&args[..], &["--format", "csv"]].concat());
    assert!(csv.starts_with("account_login,user_id,challenge_id,trades,"));
    assert_eq!(csv.lines().count(), 33);
}

#[test]
fn generator_is_deterministic_and_matches_the_checked_in_data() {
    let dir = scratch("gen");
    let d = dir.to_str().unwrap();
    ok_stdout(&["generate-sample", "--out-dir", d]);
    let root = repo_root();
    for name in ["trades.csv", "accounts.csv"] {
        let fresh = std::fs::read(dir.join(name)).unwrap();
        let kept = std::fs::read(root.join("examples/data").join(name)).unwrap();
        assert!(
            fresh == kept,
            "examples/data/{name} is not what `risk generate-sample` writes"
        );
    }
    ok_stdout(&[
        "generate-sample",
        "--out-dir",
        d,
        "--trades",
        "500",
        "--seed",
        "7",
        "--no-defects",
    ]);
    let json = ok_stdout(&[
        "report",
        "--trades",
        dir.join("trades.csv").to_str().unwrap(),
        "--accounts",
        dir.join("accounts.csv").to_str().unwrap(),
        "--format",
        "json",
    ]);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["skipped_rows"], 0);
    assert_eq!(json["duplicate_rows"], 0);
    let trades: u64 = json["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["trades"].as_u64().unwrap())
        .sum();
    assert_eq!(trades, 500);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn config_file_and_flags() {
    let dir = scratch("cfg");
    let root = repo_root();
    let trades = root.join("examples/data/trades.csv");
    let t = trades.to_str().unwrap();
    let good = dir.join("good.toml");
    std::fs::write(&good, "[engine]\nwhatever = true\n[engine.metrics]\nhft_threshold_seconds = 1\n[engine.score]\nmin_trades = 1\n").unwrap();
    let json = ok_stdout(&[
        "report",
        "--trades",
        t,
        "--config",
        good.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let hft: u64 = json["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["hft_trades"].as_u64().unwrap())
        .sum();
    assert_eq!(hft, 0, "no trade is held under 1 s");
    // The flag overrides the file.
    let json = ok_stdout(&[
        "report",
        "--trades",
        t,
        "--config",
        good.to_str().unwrap(),
        "--hft-seconds",
        "60",
        "--initial-balance",
        "5000",
        "--format",
        "json",
    ]);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let first = &json["accounts"][0];
    assert!(json["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["hft_trades"].as_u64().unwrap() > 0));
    assert_eq!(first["initial_balance"].as_f64(), Some(5000.0));

    // Issue 12: a `.json` config was parsed as TOML. The same settings as JSON give the
    // same report.
    let good_json = dir.join("good.json");
    std::fs::write(
        &good_json,
        r#"{"engine": {"metrics": {"hft_threshold_seconds": 1}, "score": {"min_trades": 1}}}"#,
    )
    .unwrap();
    let from_toml = ok_stdout(&["report", "--trades", t, "--config", good.to_str().unwrap()]);
    let from_json = ok_stdout(&[
        "report",
        "--trades",
        t,
        "--config",
        good_json.to_str().unwrap(),
    ]);
    assert_eq!(from_json, from_toml);

    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[engine.score]\nhft_share_max = 0.5\n").unwrap();
    let out = risk(&["report", "--trades", t, "--config", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("hft_share_max"), "{stderr}");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn missing_file_is_an_error() {
    let out = risk(&["report", "--trades", "/nonexistent/trades.csv"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/trades.csv"));
}

/// Issue 18's migration settings through the binary, each of the seven metrics computed by
/// hand. Account 501 starts at its `account_size` of 2,000; four trades (commission makes
/// net and gross differ):
///
/// | # | open     | close    | profit | commission | SL   | TP  |
/// |---|----------|----------|--------|------------|------|-----|
/// | 1 | 09:00:00 | 09:30:00 | -500   | -5         |      |     |
/// | 2 | 10:00:00 | 10:00:30 | 100    | -3         | 1.05 | 0   |
/// | 3 | 10:00:30 | 11:00:00 | -50    | -2         |      | 1.2 |
/// | 4 | 10:30:00 | 12:00:00 | 30     | -40        | 1.0  | 1.3 |
///
/// `--pnl gross --window 3` keeps trades 2-4 (P&L 100, -50, 30): win ratio 2/3, profit
/// factor 130 / 50 = 2.6, the curve 2,000 -> 2,100 -> 2,050 -> 2,080 draws down
/// 50 / 2,100, stop-loss 2/3 and take-profit 2/3 (a price of 0 is not set), one HFT trade
/// (30 s), at most 2 open at once (2 closes as 3 opens: no overlap; 3 and 4 overlap).
/// Net over the same window (97, -52, -10): win ratio 1/3, profit factor 97 / 62. Gross
/// over the whole history: 2,000 -> 1,500 first, a 25 % drawdown.
#[test]
fn pnl_basis_window_and_account_size_hand_computed() {
    let dir = scratch("migration");
    let trades = dir.join("trades.csv");
    let accounts = dir.join("accounts.csv");
    let row = |id: u32, open: &str, close: &str, profit: &str, fee: &str, sl: &str, tp: &str| {
        format!("{id},{id},0,,1.1,1.2,{fee},0.1,2025-05-05 {open},2025-05-05 {close},1,{sl},{tp},{profit},0,EURUSD,100000,1,0,501\n")
    };
    let text = [
        ",identifier,action,reason,open_price,close_price,commission,lot_size,opened_at,closed_at,pips,price_sl,price_tp,profit,swap,symbol,contract_size,profit_rate,platform,trading_account_login\n".to_owned(),
        row(1, "09:00:00", "09:30:00", "-500", "-5", "", ""),
        row(2, "10:00:00", "10:00:30", "100", "-3", "1.05", "0"),
        row(3, "10:00:30", "11:00:00", "-50", "-2", "", "1.2"),
        row(4, "10:30:00", "12:00:00", "30", "-40", "1.0", "1.3"),
    ]
    .concat();
    std::fs::write(&trades, text).unwrap();
    std::fs::write(
        &accounts,
        "login,account_size,platform,phase,user_id,challenge_id\n501,2000,mt5,phase1,U,C\n502,,mt4,funded,U,C\n",
    )
    .unwrap();
    let run = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec![
            "report",
            "--trades",
            trades.to_str().unwrap(),
            "--accounts",
            accounts.to_str().unwrap(),
            "--initial-balance",
            "50000",
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        serde_json::from_str(&ok_stdout(&args)).unwrap()
    };
    let find = |report: &serde_json::Value, login: &str| -> serde_json::Value {
        report["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["account_login"] == login)
            .unwrap()
            .clone()
    };
    let f = |v: &serde_json::Value| v.as_f64().unwrap();
    // The JSON's numbers are the exact decimals converted to f64.
    let close = |v: &serde_json::Value, expected: f64| {
        let got = f(v);
        assert!((got - expected).abs() < 1e-12, "{got} != {expected}");
    };

    let gross = run(&["--pnl", "gross", "--window", "3"]);
    assert_eq!(gross["pnl_basis"], "gross");
    assert_eq!(gross["window_size"], 3);
    let a = find(&gross, "501");
    assert_eq!(f(&a["initial_balance"]), 2000.0, "account_size");
    assert_eq!(a["trades"], 3);
    close(&a["win_ratio"], 2.0 / 3.0);
    close(&a["profit_factor"], 2.6);
    close(&a["max_relative_drawdown"], 50.0 / 2100.0);
    close(&a["stop_loss_ratio"], 2.0 / 3.0);
    close(&a["take_profit_ratio"], 2.0 / 3.0);
    assert_eq!(a["hft_trades"], 1);
    assert_eq!(a["max_concurrent_trades"], 2);
    assert_eq!(a["last_trade_at"], "2025-05-05T12:00:00Z");
    assert_eq!(
        (a["platform"].as_str(), a["phase"].as_str()),
        (Some("mt5"), Some("phase1"))
    );
    let empty = find(&gross, "502");
    assert_eq!(f(&empty["initial_balance"]), 50000.0, "--initial-balance");
    assert!(empty["last_trade_at"].is_null());
    assert_eq!(empty["phase"], "funded");
    assert_eq!(gross["users"][0]["last_trade_at"], "2025-05-05T12:00:00Z");
    assert_eq!(
        gross["challenges"][0]["last_trade_at"],
        "2025-05-05T12:00:00Z"
    );

    let net = find(&run(&["--window", "3"]), "501");
    close(&net["win_ratio"], 1.0 / 3.0);
    close(&net["profit_factor"], 97.0 / 62.0);

    let whole = find(&run(&["--pnl", "gross"]), "501");
    assert_eq!(whole["trades"], 4);
    close(&whole["max_relative_drawdown"], 0.25);

    // The same settings from the config file; the flags override it.
    let config = dir.join("migration.toml");
    std::fs::write(
        &config,
        "[engine.metrics]\npnl_basis = \"gross\"\nwindow_size = 3\n",
    )
    .unwrap();
    let from_file = find(&run(&["--config", config.to_str().unwrap()]), "501");
    assert_eq!(from_file, a);
    let overridden = find(
        &run(&[
            "--config",
            config.to_str().unwrap(),
            "--pnl",
            "net",
            "--window",
            "10",
        ]),
        "501",
    );
    assert_eq!(overridden["trades"], 4);

    // The table names the settings and shows the accounts file's attributes.
    let table = ok_stdout(&[
        "report",
        "--trades",
        trades.to_str().unwrap(),
        "--accounts",
        accounts.to_str().unwrap(),
        "--pnl",
        "gross",
        "--window",
        "3",
    ]);
    assert!(table.contains("PLATFORM PHASE"), "{table}");
    assert!(table.contains("mt5      phase1"), "{table}");
    assert!(
        table.contains("P&L basis: gross; metrics over the last 3 trades of each account"),
        "{table}"
    );

    // Bad values are refused with the setting's name.
    for (args, needle) in [
        (&["--window", "0"][..], "--window"),
        (&["--pnl", "profit"][..], "net or gross"),
    ] {
        let mut all = vec!["report", "--trades", trades.to_str().unwrap()];
        all.extend_from_slice(args);
        let out = risk(&all);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{needle}: {err}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
