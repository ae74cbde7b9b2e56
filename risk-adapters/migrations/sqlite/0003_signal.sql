-- The prop-firm risk-signal service: accounts, closed trades, each account's current
-- result and the history of the signal settings. Decimals are TEXT so they stay exact
-- (SQLite has no decimal type); times of trades are nanoseconds since the epoch (an
-- export's times carry up to nine fractional digits, finer than PostgreSQL's timestamps).

-- Who an account is (the accounts file's columns). A login is stored once: a second
-- listing is a duplicate and changes nothing.
CREATE TABLE accounts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    login TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL,
    challenge_id TEXT,
    initial_balance TEXT,
    group_id TEXT,
    platform TEXT,
    phase TEXT,
    created_at TEXT NOT NULL
);

-- Closed trades, one row per platform ticket (`identifier`): a repeated identifier is a
-- duplicate and changes nothing. `seq` is the arrival order.
CREATE TABLE trades (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    identifier TEXT NOT NULL UNIQUE,
    account_login TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL CHECK (side IN ('BUY', 'SELL')),
    volume TEXT NOT NULL,
    opened_at_ns INTEGER NOT NULL,
    closed_at_ns INTEGER NOT NULL,
    open_price TEXT NOT NULL,
    close_price TEXT NOT NULL,
    stop_loss TEXT,
    take_profit TEXT,
    profit TEXT NOT NULL,
    commission TEXT NOT NULL,
    swap TEXT NOT NULL,
    ingested_at TEXT NOT NULL
);
CREATE INDEX trades_by_account ON trades (account_login, seq);

-- Each account's current result, written in the same transaction as the trades (or the
-- account row, or the settings version) that changed it. `account` is the account object
-- of `risk report --format json` (metrics, score, level, signals, rule status) as JSON
-- text; `config_version` names the `signal_config` row that produced it.
CREATE TABLE account_results (
    account_login TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    challenge_id TEXT,
    trades INTEGER NOT NULL,
    risk_score TEXT NOT NULL,
    risk_level TEXT NOT NULL CHECK (risk_level IN ('LOW', 'MEDIUM', 'HIGH', 'CRITICAL')),
    status TEXT NOT NULL,
    signals TEXT NOT NULL,
    account TEXT NOT NULL,
    config_version INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);

-- The signal settings (`[engine.metrics]` and `[engine.score]`), one row per version:
-- the newest is in force. Version 1 comes from the config file at the first start.
CREATE TABLE signal_config (
    version INTEGER PRIMARY KEY,
    settings TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    created_at TEXT NOT NULL
);
