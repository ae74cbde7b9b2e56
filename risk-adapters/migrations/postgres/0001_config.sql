-- The config plane: risk profiles, rules and margin tiers, the config version and the
-- admin audit.

CREATE TABLE config_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO config_version (id, version) VALUES (1, 0);

CREATE TABLE risk_profiles (
    id BIGSERIAL PRIMARY KEY,
    user_id TEXT NOT NULL UNIQUE,
    kyc_level TEXT NOT NULL CHECK (kyc_level IN ('L0', 'L1', 'L2')),
    exposure_limit_usdt NUMERIC(30, 8) NOT NULL,
    frozen BOOLEAN NOT NULL DEFAULT FALSE,
    risk_score NUMERIC(10, 4) NOT NULL DEFAULT 0,
    max_leverage NUMERIC(30, 8) NOT NULL,
    last_margin_call TIMESTAMPTZ,
    last_event_id TEXT,
    last_event_ts TIMESTAMPTZ,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE risk_rules (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    metric TEXT NOT NULL,
    operator TEXT NOT NULL,
    threshold NUMERIC(30, 8) NOT NULL,
    severity TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('REJECT', 'WARN')),
    kyc_level TEXT CHECK (kyc_level IN ('L0', 'L1', 'L2')),
    symbol TEXT,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE margin_tiers (
    id BIGSERIAL PRIMARY KEY,
    symbol TEXT,
    tier INTEGER NOT NULL CHECK (tier >= 1),
    max_notional NUMERIC(30, 8),
    maintenance_margin_pct NUMERIC(10, 4) NOT NULL,
    max_leverage NUMERIC(30, 8) NOT NULL,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
-- One row per (symbol, tier); NULL (the default ladder) counts as one symbol.
CREATE UNIQUE INDEX margin_tiers_symbol_tier ON margin_tiers (COALESCE(symbol, ''), tier);

CREATE TABLE admin_audit (
    id BIGSERIAL PRIMARY KEY,
    route TEXT NOT NULL,
    token_name TEXT NOT NULL,
    before JSONB,
    after JSONB,
    config_version BIGINT NOT NULL,
    at TIMESTAMPTZ NOT NULL
);
