-- The prop-firm risk-signal service: accounts, closed trades, each account's current
-- result and the history of the signal settings. Decimals are NUMERIC (exact, the
-- scale as written); times of trades are nanoseconds since the epoch (an
-- export's times carry up to nine fractional digits, finer than PostgreSQL's timestamps).

-- Who an account is (the accounts file's columns). A login is stored once: a second
-- listing is a duplicate and changes nothing.
CREATE TABLE accounts (
    seq BIGSERIAL PRIMARY KEY,
    login TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL,
    challenge_id TEXT,
    initial_balance NUMERIC,
    group_id TEXT,
    platform TEXT,
    phase TEXT,
    created_at TIMESTAMPTZ NOT NULL
);

-- Closed trades, one row per platform ticket (`identifier`): a repeated identifier is a
-- duplicate and changes nothing. `seq` is the arrival order.
CREATE TABLE trades (
    seq BIGSERIAL PRIMARY KEY,
    identifier TEXT NOT NULL UNIQUE,
    account_login TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL CHECK (side IN ('BUY', 'SELL')),
    volume NUMERIC NOT NULL,
    opened_at_ns BIGINT NOT NULL,
    closed_at_ns BIGINT NOT NULL,
    open_price NUMERIC NOT NULL,
    close_price NUMERIC NOT NULL,
    stop_loss NUMERIC,
    take_profit NUMERIC,
    profit NUMERIC NOT NULL,
    commission NUMERIC NOT NULL,
    swap NUMERIC NOT NULL,
    ingested_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX trades_by_account ON trades (account_login, seq);

-- Each account's current result, written in the same transaction as the trades (or the
-- account row, or the settings version) that changed it. `account` is the account object
-- of `risk report --format json` (metrics, score, level, signals, rule status) as JSON
-- text (TEXT, not JSONB, so its key order is kept); `config_version` names the `signal_config` row that produced it.
CREATE TABLE account_results (
    account_login TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    challenge_id TEXT,
    trades BIGINT NOT NULL,
    risk_score NUMERIC NOT NULL,
    risk_level TEXT NOT NULL CHECK (risk_level IN ('LOW', 'MEDIUM', 'HIGH', 'CRITICAL')),
    status TEXT NOT NULL,
    signals JSONB NOT NULL,
    account TEXT NOT NULL,
    config_version BIGINT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- The signal settings (`[engine.metrics]` and `[engine.score]`), one row per version:
-- the newest is in force. Version 1 comes from the config file at the first start.
CREATE TABLE signal_config (
    version BIGINT PRIMARY KEY,
    settings JSONB NOT NULL,
    updated_by TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
