-- The config plane: risk profiles, rules and margin tiers, the config version and the
-- admin audit. Decimals are TEXT so they stay exact (SQLite has no decimal type); the
-- store checks their scale against the PostgreSQL columns so both backends hold the same.

CREATE TABLE config_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO config_version (id, version) VALUES (1, 0);

CREATE TABLE risk_profiles (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL UNIQUE,
    kyc_level TEXT NOT NULL CHECK (kyc_level IN ('L0', 'L1', 'L2')),
    exposure_limit_usdt TEXT NOT NULL,
    frozen INTEGER NOT NULL DEFAULT 0,
    risk_score TEXT NOT NULL DEFAULT '0',
    max_leverage TEXT NOT NULL,
    last_margin_call TEXT,
    last_event_id TEXT,
    last_event_ts TEXT,
    version INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE risk_rules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    metric TEXT NOT NULL,
    operator TEXT NOT NULL,
    threshold TEXT NOT NULL,
    severity TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('REJECT', 'WARN')),
    kyc_level TEXT CHECK (kyc_level IN ('L0', 'L1', 'L2')),
    symbol TEXT,
    active INTEGER NOT NULL DEFAULT 1,
    version INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE margin_tiers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    symbol TEXT,
    tier INTEGER NOT NULL CHECK (tier >= 1),
    max_notional TEXT,
    maintenance_margin_pct TEXT NOT NULL,
    max_leverage TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    version INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
-- One row per (symbol, tier); NULL (the default ladder) counts as one symbol.
CREATE UNIQUE INDEX margin_tiers_symbol_tier ON margin_tiers (COALESCE(symbol, ''), tier);

CREATE TABLE admin_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    route TEXT NOT NULL,
    token_name TEXT NOT NULL,
    before TEXT,
    after TEXT,
    config_version INTEGER NOT NULL,
    at TEXT NOT NULL
);
