//! Adapters around [`risk_core`]: they translate and transport, and hold no risk logic.
//!
//! Each adapter sits behind a cargo feature so that an embedder builds only what it uses.
//!
//! - `cli`: [`csv_input`] (closed-trade exports and accounts files), [`report`] (the
//!   trade-metrics and risk-score report and its table, JSON and CSV renderings),
//!   [`config_file`] (the `[metrics]` and `[score]` tables of a TOML config file),
//!   [`sample`] (a deterministic generator of realistic exports) and the `risk` binary.

#[cfg(feature = "cli")]
pub mod config_file;
#[cfg(feature = "cli")]
pub mod csv_input;
#[cfg(feature = "cli")]
mod fast_hash;
#[cfg(feature = "cli")]
pub mod report;
#[cfg(feature = "cli")]
pub mod sample;
