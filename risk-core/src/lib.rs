//! # risk-core
//!
//! A pure, I/O-free pre-trade risk engine.
//!
//! The crate performs no I/O: it opens no files or sockets, spawns no threads of its own
//! and never reads the system clock. Time is always passed in as `now`. Callers hand in
//! snapshots and events, and get decisions and events back as plain data; the adapters
//! (`risk-adapters`, `risk-py`) own transport, persistence and runtimes.
//!
//! Money is exact: every amount is a [`rust_decimal::Decimal`] inside a newtype from
//! [`num`], and arithmetic that can overflow is checked.
//!
//! Besides the pre-trade path, [`metrics`] computes prop-firm trade metrics over closed
//! trades (a batch calculator and an incremental accumulator that agree on any arrival
//! order) and [`score`] turns them into account, user and challenge risk scores;
//! [`rulebook`] checks accounts against prop-firm challenge rules and detects abuse across
//! accounts (hedging, copy trading, martingale).
#![forbid(unsafe_code)]
// Every overflow is a checked error or a documented saturation, never a panic or a wrap.
#![warn(clippy::arithmetic_side_effects)]

pub mod account;
pub mod config;
pub mod engine;
mod fixed;
pub mod hash;
pub mod ids;
pub mod margin;
pub mod market;
pub mod metrics;
pub mod model;
pub mod num;
pub mod pretrade;
pub mod rulebook;
pub mod rules;
pub mod score;

pub use rust_decimal::Decimal;

/// The top-level README's Rust examples, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
