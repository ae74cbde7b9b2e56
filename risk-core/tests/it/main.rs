//! Integration tests for risk-core: one binary, a module per topic.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod engine;
mod fixture;
mod pretrade;
mod props;
mod regression;
