//! Adapters around [`risk_core`]: they translate and transport, and hold no risk logic.
//!
//! Each adapter sits behind a cargo feature so that an embedder builds only what it uses.
//!
//! - `config`: [`config_file`], the engine config file (TOML/JSON) shared by `risk-server`,
//!   the Python bindings and `risk report`.
//! - `report`: [`csv_input`] (closed-trade exports and accounts files), [`report`] (the
//!   trade-metrics and risk-score report and its table, JSON and CSV renderings),
//!   [`report_config`] (the `[engine.metrics]` and `[engine.score]` tables of a config
//!   file).
//! - `cli`: `report` plus [`sample`] (a deterministic generator of realistic exports) and
//!   the `risk` binary.
//! - `signal`: [`signal`], the prop-firm risk-signal service's core (accounts, trades and
//!   per-account results in the store, kept up to date incrementally).
//! - `grpc`: [`grpc`], the `risk.v1.RiskService` server on tonic (health, reflection,
//!   limits, graceful shutdown) and the `risk-server` binary.
//! - `kafka`: [`kafka`], the data plane: state topics in (Avro or JSON) with dead letters
//!   and at-least-once offsets, decision events out (Avro single-object encoding).
//! - `store`: [`store`], risk profiles, rules and margin tiers in SQLite or PostgreSQL
//!   (sqlx), validated by the core on every write, and the live config that follows them.
//! - `http`: [`http`], the admin REST API on axum (OpenAPI, Swagger UI, health, metrics).
//! - `arrow`: [`arrow`], trade metrics as exact Arrow columns (the Python bindings'
//!   `to_arrow()` and the Parquet report).
//! - `parquet`: `cli` plus the report as Parquet (`risk report --format parquet`).
//! - `webhooks`: [`webhook`], Standard Webhooks delivery of the outbox's events
//!   (subscriptions, a dispatcher with retries and dead letters, an SSRF guard).
// The list above links every feature's module; a build with only some features leaves the
// others' links unresolved. CI builds the docs with all features, where each must resolve.
#![cfg_attr(
    not(all(
        feature = "arrow",
        feature = "cli",
        feature = "grpc",
        feature = "http",
        feature = "kafka",
        feature = "signal",
        feature = "store",
        feature = "webhooks"
    )),
    allow(rustdoc::broken_intra_doc_links)
)]

#[cfg(feature = "arrow")]
pub mod arrow;
#[cfg(feature = "config")]
pub mod config_file;
#[cfg(feature = "report")]
pub mod csv_input;
#[cfg(feature = "grpc")]
pub mod grpc;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "kafka")]
pub mod kafka;
#[cfg(feature = "report")]
pub mod report;
#[cfg(feature = "report")]
pub mod report_config;
#[cfg(feature = "cli")]
pub mod sample;
#[cfg(feature = "signal")]
pub mod signal;
#[cfg(feature = "redis")]
pub mod snapshot;
#[cfg(feature = "store")]
pub mod store;
#[cfg(feature = "webhooks")]
pub mod webhook;
