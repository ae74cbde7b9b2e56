//! `risk`: trade metrics and risk scores over prop-firm closed-trade exports.
//!
//! ```text
//! risk report --trades FILE [--accounts FILE] [--config FILE]
//!             [--format table|json|csv|html|parquet] [--out FILE] [--initial-balance N]
//!             [--hft-seconds N] [--pnl net|gross] [--window N]   (parquet: feature `parquet`, needs --out)
//! risk generate-sample [--trades N] [--users N] [--seed N] [--out-dir DIR] [--no-defects]
//!                      [--plant]
//! risk ingest --trades FILE [--accounts FILE] [--config FILE] --database URL    (signal)
//! risk feed --brokers HOST:PORT --scenario demo [--marks-per-second N --secs S]   (kafka)
//! risk tail --brokers HOST:PORT --topic risk.pretrade_decision.v1 [--max N]        (kafka)
//! ```

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use risk_adapters::csv_input::{
    read_accounts_path, read_trade_batch_path, read_trades_path, BatchFile, RowError, TradeFile,
};
use risk_adapters::report::{
    build_report, build_report_batch, write_csv, write_html, write_json, write_table, ReportInput,
};
use risk_adapters::report_config::ReportConfig;
use risk_adapters::sample::{generate, generate_planted, SampleConfig, PLANTED_RULEBOOK};
use risk_core::metrics::PnlBasis;
use risk_core::Decimal;

/// Trade metrics and risk scores over prop-firm closed-trade exports.
#[derive(Debug, Parser)]
#[command(name = "risk", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Compute metrics and risk scores per account, user and challenge.
    Report(ReportArgs),
    /// Write a deterministic, realistic example export and accounts file.
    GenerateSample(SampleArgs),
    /// Store an export (and accounts file) in the risk-signal service's database, each
    /// account's result updated as `risk-server` does (needs the `signal` feature).
    #[cfg(feature = "signal")]
    Ingest(IngestArgs),
    /// Write a scenario's instruments, users, balances, positions and marks to the Kafka
    /// input topics (needs the `kafka` feature).
    #[cfg(feature = "kafka")]
    Feed(FeedArgs),
    /// Print a topic's messages (Avro single-object or JSON) as JSON lines, from the start
    /// (needs the `kafka` feature).
    #[cfg(feature = "kafka")]
    Tail(TailArgs),
}

#[cfg(feature = "kafka")]
#[derive(Debug, clap::Args)]
struct TailArgs {
    /// Kafka brokers.
    #[arg(long, value_name = "HOST:PORT")]
    brokers: String,
    /// The topic's base name (its schema's name), e.g. risk.pretrade_decision.v1.
    #[arg(long)]
    topic: String,
    /// Environment suffix of the topic name.
    #[arg(long, default_value = "")]
    topic_suffix: String,
    /// Stop after this many messages.
    #[arg(long, default_value_t = 10)]
    max: usize,
    /// Stop when no message arrived for this many seconds.
    #[arg(long, default_value_t = 5)]
    idle_secs: u64,
}

#[cfg(feature = "kafka")]
fn tail(args: &TailArgs) -> Result<()> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    use risk_adapters::kafka::{avro, client_config};
    let name = format!("{}{}", args.topic, args.topic_suffix);
    let consumer: BaseConsumer = client_config(&args.brokers)
        .set("group.id", "risk-tail")
        .set("enable.auto.commit", "false")
        .create()?;
    let mut tpl = rdkafka::TopicPartitionList::new();
    let metadata = consumer.fetch_metadata(Some(&name), std::time::Duration::from_secs(10))?;
    for t in metadata.topics() {
        for p in t.partitions() {
            tpl.add_partition_offset(&name, p.id(), rdkafka::Offset::Beginning)?;
        }
    }
    consumer.assign(&tpl)?;
    let (mut n, mut last) = (0, Instant::now());
    let out = io::stdout();
    let mut out = out.lock();
    while n < args.max && last.elapsed().as_secs() < args.idle_secs {
        let Some(message) = consumer.poll(std::time::Duration::from_millis(100)) else {
            continue;
        };
        let message = message?;
        last = Instant::now();
        n += 1;
        let payload = message.payload().unwrap_or_default();
        match avro::decode::<serde_json::Value>(&args.topic, payload) {
            Ok(value) => writeln!(out, "{value}")?,
            Err(e) => writeln!(
                out,
                "{}",
                serde_json::json!({ "undecodable": e.to_string() })
            )?,
        }
    }
    Ok(())
}

#[cfg(feature = "kafka")]
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Scenario {
    /// examples/config/demo.toml: three instruments, three accounts, their marks.
    Demo,
}

#[cfg(feature = "kafka")]
#[derive(Debug, clap::Args)]
struct FeedArgs {
    /// Kafka brokers.
    #[arg(long, value_name = "HOST:PORT")]
    brokers: String,
    /// What to write.
    #[arg(long, value_enum, default_value_t = Scenario::Demo)]
    scenario: Scenario,
    /// Environment suffix of every topic name.
    #[arg(long, default_value = "")]
    topic_suffix: String,
    /// Fresh marks per second after the scenario (0: none).
    #[arg(long, default_value_t = 0)]
    marks_per_second: u32,
    /// For how many seconds to write fresh marks.
    #[arg(long, default_value_t = 0)]
    secs: u64,
}

#[cfg(feature = "kafka")]
fn feed(args: &FeedArgs) -> Result<()> {
    use risk_adapters::kafka::feed::Feeder;
    use risk_adapters::kafka::Topics;
    let timeout = std::time::Duration::from_secs(30);
    let feeder = Feeder::connect(&args.brokers, Topics::new(&args.topic_suffix), timeout)?;
    let now = || chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now());
    let Scenario::Demo = args.scenario;
    let count = feeder.demo(now, args.marks_per_second, args.secs, timeout)?;
    eprintln!("risk feed: {count} messages written to {}", args.brokers);
    Ok(())
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    /// A table for a terminal.
    Table,
    /// The JSON report contract.
    Json,
    /// One CSV row per account.
    Csv,
    /// One self-contained HTML page with charts (use with `--out`).
    Html,
    /// The accounts table as Parquet, values exact and typed (needs `--out`).
    #[cfg(feature = "parquet")]
    Parquet,
}

#[derive(Debug, clap::Args)]
struct ReportArgs {
    /// The closed-trades export (CSV).
    #[arg(long, value_name = "FILE")]
    trades: PathBuf,
    /// Accounts file (header `login,user_id,challenge_id`; optional `initial_balance`,
    /// `account_size` (the initial balance when `initial_balance` is not given),
    /// `platform`, `phase`, `group_id`).
    #[arg(long, value_name = "FILE")]
    accounts: Option<PathBuf>,
    /// Engine config file (TOML, or JSON for a `.json` name); its `[engine.metrics]`,
    /// `[engine.score]`, `[rulebook]`, `[rulebooks."<challenge_id>"]`, `[detectors]` and
    /// `[rule_weights]` tables are used.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Write the report to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Initial balance of every account's balance curve (the accounts file's
    /// `initial_balance` or `account_size` overrides it).
    #[arg(long, value_name = "N")]
    initial_balance: Option<Decimal>,
    /// HFT threshold in seconds (trades held strictly less are HFT).
    #[arg(long, value_name = "N")]
    hft_seconds: Option<u32>,
    /// A trade's P&L: `net` (profit + commission + swap, the default) or `gross` (profit
    /// alone). Overrides `pnl_basis` in `[engine.metrics]`.
    #[arg(long, value_name = "BASIS")]
    pnl: Option<PnlBasis>,
    /// Score each account on its N most recent closed trades (by close time) instead of
    /// its whole history; the challenge rules still judge every trade. Overrides
    /// `window_size` in `[engine.metrics]`.
    #[arg(long, value_name = "N")]
    window: Option<NonZeroU32>,
}

#[cfg(feature = "signal")]
#[derive(Debug, clap::Args)]
struct IngestArgs {
    /// The closed-trades export (CSV), read as `risk report` reads it.
    #[arg(long, value_name = "FILE")]
    trades: PathBuf,
    /// Accounts file (header `login,user_id,challenge_id`, optional `initial_balance`,
    /// `group_id`), stored before the trades.
    #[arg(long, value_name = "FILE")]
    accounts: Option<PathBuf>,
    /// Engine config file: the rulebook tables and, for a database without settings yet,
    /// the `[engine.metrics]` and `[engine.score]` tables (as `risk-server --config`).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The database: sqlite://PATH (created when missing) or postgres://...
    #[arg(long, value_name = "URL")]
    database: String,
    /// Trades per transaction.
    #[arg(long, default_value_t = 5_000)]
    batch: usize,
}

#[cfg(feature = "signal")]
fn ingest(args: &IngestArgs) -> Result<()> {
    use risk_adapters::signal::{self, IngestOutcome, SignalService, SignalSettings};
    let config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config file {}", path.display()))?;
            ReportConfig::from_file_text(&text, path)?
        }
        None => ReportConfig::default(),
    };
    let started = now();
    let accounts = args
        .accounts
        .as_deref()
        .map(read_accounts_path)
        .transpose()?;
    if let Some(a) = &accounts {
        print_row_errors(&a.errors, a.skipped_rows);
    }
    let bar = progress_bar(&args.trades);
    let file = read_trades_path(&args.trades, |bytes| bar.set_position(bytes))?;
    bar.finish_and_clear();
    print_row_errors(&file.errors, file.skipped_rows);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let (accounts_out, trades_out, counts) = runtime.block_on(async {
        let store = signal::store::open(&args.database)
            .await
            .with_context(|| format!("--database {}", args.database))?;
        let service = SignalService::start(
            store,
            SignalSettings {
                metrics: config.metrics,
                score: config.score,
            },
            config.rules,
        )
        .await?;
        let mut accounts_out = IngestOutcome::default();
        if let Some(mut a) = accounts {
            let listed: Vec<_> = a
                .order
                .iter()
                .filter_map(|login| a.accounts.remove(login).map(|info| (login.clone(), info)))
                .collect();
            accounts_out = service.ingest_accounts(&listed).await?;
            accounts_out.rejected += a.skipped_rows;
        }
        let bar = if io::stderr().is_terminal() {
            ProgressBar::new(file.trades.len() as u64)
        } else {
            ProgressBar::hidden()
        };
        if let Ok(style) =
            ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} trades ({eta}) storing")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        let mut trades_out = IngestOutcome {
            duplicates: file.duplicate_rows,
            rejected: file.skipped_rows,
            ..IngestOutcome::default()
        };
        for chunk in file.trades.chunks(args.batch.max(1)) {
            let out = service.ingest_trades(chunk).await?;
            for r in &out.rejections {
                eprintln!("risk: refused {}", r.reason);
            }
            trades_out.accepted += out.accepted;
            trades_out.duplicates += out.duplicates;
            trades_out.rejected += out.rejected;
            trades_out.accounts_changed += out.accounts_changed;
            trades_out.levels_raised += out.levels_raised;
            trades_out.events += out.events;
            bar.inc(chunk.len() as u64);
        }
        bar.finish_and_clear();
        anyhow::Ok((accounts_out, trades_out, service.counts()))
    })?;
    if args.accounts.is_some() {
        eprintln!(
            "risk: accounts: {} accepted, {} duplicate, {} rejected",
            accounts_out.accepted, accounts_out.duplicates, accounts_out.rejected
        );
    }
    eprintln!(
        "risk: trades: {} accepted, {} duplicate, {} rejected; {} result updates, {} level rises; in {} ms",
        trades_out.accepted,
        trades_out.duplicates,
        trades_out.rejected,
        trades_out.accounts_changed + accounts_out.accounts_changed,
        trades_out.levels_raised + accounts_out.levels_raised,
        started.elapsed().as_millis()
    );
    eprintln!(
        "risk: {} now holds {} trades and {} account results (settings version {})",
        args.database, counts.trades, counts.accounts, counts.config_version
    );
    Ok(())
}

#[derive(Debug, clap::Args)]
struct SampleArgs {
    /// Number of good trade rows.
    #[arg(long, default_value_t = 3_000)]
    trades: u64,
    /// Number of users (default: one per 150 trades, at least 6).
    #[arg(long)]
    users: Option<u64>,
    /// Random seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Directory for trades.csv and accounts.csv.
    #[arg(long, value_name = "DIR", default_value = "examples/data")]
    out_dir: PathBuf,
    /// Do not add the few malformed and repeated rows.
    #[arg(long)]
    no_defects: bool,
    /// Plant the rulebook patterns in added accounts, keep the others clean, and write
    /// planted.csv (the expected signals) and rulebook.toml (the config they are for).
    #[arg(long)]
    plant: bool,
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Report(args) => report(&args),
        Command::GenerateSample(args) => sample(&args),
        #[cfg(feature = "signal")]
        Command::Ingest(args) => ingest(&args),
        #[cfg(feature = "kafka")]
        Command::Feed(args) => feed(&args),
        #[cfg(feature = "kafka")]
        Command::Tail(args) => tail(&args),
    }
}

/// The clock is read only here, in the binary, to report timings.
#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
    Instant::now()
}

/// CPU time used by the whole process so far (every thread, user + system), in
/// milliseconds, from the process CPU-time clock. Reported beside wall times because on a
/// shared machine the wall clock also counts waiting.
#[cfg(unix)]
fn cpu_ms() -> Option<f64> {
    use rustix::time::{clock_gettime, ClockId};
    let t = clock_gettime(ClockId::ProcessCPUTime);
    Some(t.tv_sec as f64 * 1e3 + t.tv_nsec as f64 / 1e6)
}

/// No process CPU-time clock is read on this platform.
#[cfg(not(unix))]
fn cpu_ms() -> Option<f64> {
    None
}

/// The process's peak resident memory so far (`VmHWM`), in MB, where the kernel reports
/// it (Linux): shown per phase, so that a memory peak can be told to the read or the report.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024.0 / 1e6)
}

fn print_row_errors(errors: &[RowError], total: u64) {
    const SHOWN: usize = 20;
    for e in errors.iter().take(SHOWN) {
        eprintln!("risk: skipped {e}");
    }
    if total > SHOWN as u64 {
        eprintln!("risk: ... and {} more skipped rows", total - SHOWN as u64);
    }
}

fn progress_bar(path: &Path) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let len = std::fs::metadata(path).map_or(0, |m| m.len());
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{bar:30}] {bytes}/{total_bytes} ({eta}) reading {wide_msg}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(path.display().to_string());
    bar
}

/// A trades export as `risk report` read it: full trades for the HTML page, the compact
/// batch otherwise.
enum Read {
    Trades(TradeFile),
    Batch(BatchFile),
}

fn report(args: &ReportArgs) -> Result<()> {
    #[cfg(feature = "parquet")]
    if matches!(args.format, Format::Parquet) && args.out.is_none() {
        anyhow::bail!("--format parquet writes a file: give it with --out FILE");
    }
    let mut config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config file {}", path.display()))?;
            ReportConfig::from_file_text(&text, path)?
        }
        None => ReportConfig::default(),
    };
    if let Some(b) = args.initial_balance {
        config.metrics.initial_balance = b;
    }
    if let Some(s) = args.hft_seconds {
        config.metrics.hft_threshold_seconds = s;
    }
    if let Some(basis) = args.pnl {
        config.metrics.pnl_basis = basis;
    }
    if let Some(n) = args.window {
        config.metrics.window_size = Some(n);
    }
    config.validate("command line")?;

    let started = now();
    let cpu_started = cpu_ms();
    let accounts = args
        .accounts
        .as_deref()
        .map(read_accounts_path)
        .transpose()?;
    if let Some(a) = &accounts {
        print_row_errors(&a.errors, a.skipped_rows);
    }
    let bar = progress_bar(&args.trades);
    // The HTML page charts the trades themselves; every other format needs only the
    // report's compact rows, read without building a `ClosedTrade` per row.
    let progress = |bytes| bar.set_position(bytes);
    let read = if matches!(args.format, Format::Html) {
        Read::Trades(read_trades_path(&args.trades, progress)?)
    } else {
        Read::Batch(read_trade_batch_path(
            &args.trades,
            config.metrics.pnl_basis,
            progress,
        )?)
    };
    bar.finish_and_clear();
    let (errors, skipped_rows, duplicate_rows, rows) = match &read {
        Read::Trades(f) => (&f.errors, f.skipped_rows, f.duplicate_rows, f.trades.len()),
        Read::Batch(f) => (&f.errors, f.skipped_rows, f.duplicate_rows, f.batch.len()),
    };
    print_row_errors(errors, skipped_rows);
    let read_done = now();
    let cpu_read = cpu_ms();
    let peak_read = peak_rss_mb();

    let input = ReportInput {
        accounts: accounts.as_ref(),
        metrics: config.metrics,
        score: config.score,
        skipped_rows,
        duplicate_rows,
        rules: config.rules,
    };
    let (report, trades) = match read {
        Read::Trades(f) => (build_report(&f.trades, &input)?, f.trades),
        Read::Batch(f) => (build_report_batch(f.batch, &input)?, Vec::new()),
    };
    let computed = now();
    let cpu_computed = cpu_ms();
    let peak_computed = peak_rss_mb();
    // CPU time is shown only for phases long enough for it to mean something beside the
    // wall time.
    let cpu = |wall: std::time::Duration, a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if wall.as_millis() >= 100 => format!(" ({:.0} ms CPU)", b - a),
        _ => String::new(),
    };
    if report.unlisted_accounts > 0 {
        eprintln!(
            "risk: {} traded logins are not in the accounts file; each is its own user",
            report.unlisted_accounts
        );
    }
    eprintln!(
        "risk: read {rows} trades ({} skipped, {} duplicate rows) in {:.0} ms{}; metrics and scores for {} accounts in {:.0} ms{}{}",
        report.skipped_rows,
        report.duplicate_rows,
        read_done.duration_since(started).as_secs_f64() * 1e3,
        cpu(read_done.duration_since(started), cpu_started, cpu_read),
        report.accounts.len(),
        computed.duration_since(read_done).as_secs_f64() * 1e3,
        cpu(computed.duration_since(read_done), cpu_read, cpu_computed),
        match (peak_read, peak_computed) {
            (Some(r), Some(c)) => format!("; peak memory {r:.0} MB after reading, {c:.0} MB after the metrics"),
            _ => String::new(),
        },
    );

    #[cfg(feature = "parquet")]
    if let (Format::Parquet, Some(path)) = (args.format, &args.out) {
        let file =
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        risk_adapters::report::write_parquet(&report, BufWriter::new(file))
            .with_context(|| format!("cannot write {}", path.display()))?;
        return Ok(());
    }
    let mut out: BufWriter<Box<dyn Write>> = BufWriter::new(match &args.out {
        Some(path) => Box::new(
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        ),
        None => Box::new(io::stdout().lock()),
    });
    match args.format {
        Format::Table => write_table(&report, &mut out)?,
        Format::Json => write_json(&report, &mut out)?,
        Format::Csv => write_csv(&report, &mut out)?,
        // Written above, to its file.
        #[cfg(feature = "parquet")]
        Format::Parquet => {}
        Format::Html => write_html(
            &report,
            &trades,
            &input.rules,
            input.score.drawdown_max,
            &mut out,
        )?,
    }
    out.flush()?;
    Ok(())
}

fn sample(args: &SampleArgs) -> Result<()> {
    std::fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("cannot create {}", args.out_dir.display()))?;
    let create = |name: &str| -> Result<BufWriter<File>> {
        let path = args.out_dir.join(name);
        let file =
            File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(BufWriter::with_capacity(1 << 20, file))
    };
    let (mut trades, mut accounts) = (create("trades.csv")?, create("accounts.csv")?);
    let config = SampleConfig {
        trades: args.trades,
        users: args.users,
        seed: args.seed,
        defects: !args.no_defects,
    };
    let summary = if args.plant {
        let mut planted = create("planted.csv")?;
        let summary = generate_planted(&config, &mut trades, &mut accounts, &mut planted)?;
        planted.flush()?;
        let path = args.out_dir.join("rulebook.toml");
        std::fs::write(&path, PLANTED_RULEBOOK)
            .with_context(|| format!("cannot write {}", path.display()))?;
        summary
    } else {
        generate(&config, &mut trades, &mut accounts)?
    };
    trades.flush()?;
    accounts.flush()?;
    eprintln!(
        "risk: wrote {} trades (+{} malformed, +{} repeated rows) for {} accounts of {} users to {}",
        summary.trades,
        summary.malformed_rows,
        summary.duplicate_rows,
        summary.accounts,
        summary.users,
        args.out_dir.display()
    );
    Ok(())
}
