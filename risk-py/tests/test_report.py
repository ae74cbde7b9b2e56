"""riskgate.risk_report gives what `risk report --format json` prints, from any table.

The expected reports in tests/data were printed by the CLI:

    risk report --trades examples/data/trades.csv --accounts examples/data/accounts.csv --format json
    risk report ... --config risk-py/tests/data/report_config.toml --format json
    risk report --trades ../shared/data/prop_trades_sample.csv --format json

(`cargo run -p risk-adapters --features cli --bin risk -- report ...`). When a built `risk`
binary is found (RISKGATE_RISK_BIN, or target/release/risk or target/debug/risk of the
workspace), the CLI is also run live and must print the committed report.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest

import riskgate

pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")
pl = pytest.importorskip("polars")

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
EXAMPLES = REPO / "examples" / "data"
SAMPLE = REPO / ".." / "shared" / "data" / "prop_trades_sample.csv"
CONFIG = HERE / "data" / "report_config.toml"

# name: (trades file, accounts file, config file)
CASES = {
    "examples": (EXAMPLES / "trades.csv", EXAMPLES / "accounts.csv", None),
    "examples_config": (EXAMPLES / "trades.csv", EXAMPLES / "accounts.csv", CONFIG),
    "sample": (SAMPLE, None, None),
}


def need(path):
    if not path.is_file():
        pytest.skip(f"{path} not present")


def expected(name):
    """The committed CLI report of case `name`."""
    trades, _, _ = CASES[name]
    need(trades)
    return json.loads((HERE / "data" / f"report_{name}.json").read_text())


def risk_binary():
    env = os.environ.get("RISKGATE_RISK_BIN")
    if env:
        return Path(env)
    for profile in ("release", "debug"):
        path = REPO / "target" / profile / "risk"
        if path.is_file():
            return path
    return None


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_committed_reports_are_what_the_cli_prints(name):
    binary = risk_binary()
    if binary is None:
        pytest.skip("no built `risk` binary (cargo build -p risk-adapters --features cli --bin risk)")
    trades, accounts, config = CASES[name]
    need(trades)
    command = [str(binary), "report", "--trades", str(trades), "--format", "json"]
    if accounts is not None:
        command += ["--accounts", str(accounts)]
    if config is not None:
        command += ["--config", str(config)]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    assert json.loads(out) == expected(name)


def readers(path):
    """The same file as every kind of table the package takes."""
    duckdb = pytest.importorskip("duckdb")
    # The whole file decides the types (the examples' bad rows are near the end).
    frame = pl.read_csv(path, try_parse_dates=True, infer_schema_length=None)
    return {
        "polars, parsed dates": frame,
        "polars, text": pl.read_csv(path, infer_schema=False),
        "pandas, NumPy dtypes": pd.read_csv(path),
        "pandas, Arrow dtypes": pd.read_csv(path, dtype_backend="pyarrow"),
        "pyarrow Table": frame.to_arrow(),
        "RecordBatchReader": pa.RecordBatchReader.from_batches(
            frame.to_arrow().schema, frame.to_arrow().to_batches(max_chunksize=500)
        ),
        "DuckDB relation": duckdb.sql(f"select * from read_csv_auto('{path}', all_varchar = true)"),
        "dict of columns": {c: frame[c].to_list() for c in frame.columns},
    }


@pytest.mark.parametrize("name", sorted(CASES))
def test_risk_report_equals_the_cli_for_every_account_user_and_challenge(name):
    want = expected(name)
    trades, accounts, config = CASES[name]
    accounts_frame = None if accounts is None else pl.read_csv(accounts)
    for kind, table in readers(trades).items():
        report = riskgate.risk_report(table, accounts_frame, config=config)
        got = report.to_dict()
        assert len(got["accounts"]) == len(want["accounts"]), kind
        for mine, theirs in zip(got["accounts"], want["accounts"]):
            assert mine == theirs, (kind, theirs["account_login"])
        assert got["users"] == want["users"], kind
        assert got["challenges"] == want["challenges"], kind
        assert got == want, kind
        assert report.accounts == want["accounts"] and report.users == want["users"]
        assert report.challenges == want["challenges"]


def test_the_sample_through_polars_gives_1064_scored_accounts():
    want = expected("sample")
    report = riskgate.risk_report(pl.read_csv(SAMPLE, try_parse_dates=True))
    assert len(report.accounts) == 1_064 == len(want["accounts"])
    first = want["accounts"][0]
    assert report.account(first["account_login"]) == first
    assert report.account(int(first["account_login"])) == first
    with pytest.raises(KeyError):
        report.account("no such login")
    assert json.loads(report.to_json()) == want
    assert "RiskReport(accounts=1064" in repr(report)


def test_bad_rows_are_skipped_and_named_as_the_cli_does():
    want = expected("examples")
    trades = pl.read_csv(EXAMPLES / "trades.csv", infer_schema_length=None)
    report = riskgate.risk_report(trades, pl.read_csv(EXAMPLES / "accounts.csv"))
    assert (report.skipped_rows, report.duplicate_rows) == (want["skipped_rows"], want["duplicate_rows"]) == (3, 2)
    assert report.row_errors == [
        "trades row 3000: column `open_price`: `n/a` is not a decimal number",
        "trades row 3001: column `closed_at`: closed before it was opened",
        "trades row 3002: column `trading_account_login`: empty",
    ]


def test_every_config_form_gives_the_config_file_report():
    want = expected("examples_config")
    trades = pl.read_csv(EXAMPLES / "trades.csv", infer_schema_length=None)
    accounts = pl.read_csv(EXAMPLES / "accounts.csv")
    text = CONFIG.read_text()
    forms = {"Path": CONFIG, "str path": str(CONFIG), "TOML text": text}
    try:
        import tomllib

        forms["dict"] = tomllib.loads(text)
    except ImportError:  # Python < 3.11
        pass
    for form, config in forms.items():
        assert riskgate.risk_report(trades, accounts, config=config).to_dict() == want, form
    assert riskgate.risk_report(trades, accounts).to_dict() == expected("examples")


def test_bad_configs_and_tables_raise_named_errors(tmp_path):
    trades = pl.read_csv(EXAMPLES / "trades.csv", infer_schema_length=None)
    with pytest.raises(riskgate.ConfigError, match="hft_treshold"):
        riskgate.risk_report(trades, config="[engine.metrics]\nhft_treshold = 5\n")
    with pytest.raises(riskgate.ConfigError, match=r"config \(dict\).json: invalid value: integer `0`, expected a nonzero"):
        riskgate.risk_report(trades, config={"engine": {"metrics": {"window_size": 0}}})
    with pytest.raises(riskgate.ConfigError, match="cannot read config file"):
        riskgate.risk_report(trades, config=tmp_path / "missing.toml")
    with pytest.raises(riskgate.InvalidInput, match="trades: the header has no `symbol` column"):
        riskgate.risk_report(trades.drop("symbol"))
    with pytest.raises(riskgate.InvalidInput, match="accounts: the header has no `user_id` column"):
        riskgate.risk_report(trades, pl.DataFrame({"login": ["1"]}))
    with pytest.raises(TypeError, match="trades: expected a DataFrame"):
        riskgate.risk_report(object())
    with pytest.raises(TypeError, match="config: expected"):
        riskgate.risk_report(trades, config=5)  # type: ignore[arg-type]


def test_time_zones_and_units_of_timestamps_are_read_as_utc():
    frame = pl.read_csv(EXAMPLES / "trades.csv", try_parse_dates=True, infer_schema_length=None)
    accounts = pl.read_csv(EXAMPLES / "accounts.csv")
    want = expected("examples")
    # The export's times have microseconds: the units that hold them.
    for unit in ("us", "ns"):
        for tz in ("UTC", "Asia/Kolkata"):
            shifted = frame.with_columns(
                pl.col("opened_at", "closed_at").dt.cast_time_unit(unit).dt.replace_time_zone("UTC").dt.convert_time_zone(tz)
            )
            assert riskgate.risk_report(shifted, accounts).to_dict() == want, (unit, tz)
