//! The pre-trade check: request, response, computed metrics and the phased evaluation.

mod check_metrics;
mod evaluate;
mod exposure;
mod message;
mod request;
mod response;

pub use check_metrics::{CheckMetric, CheckMetrics};
pub use evaluate::{check, check_reference};
pub(crate) use evaluate::{check_with, cutoff, ExposureSource, Hold, Ledger};
pub(crate) use exposure::ExposureCache;
pub use message::CheckMessage;
pub use request::CheckRequest;
pub use response::{CheckResponse, RiskEvent};
