//! The gRPC adapter: `risk.v1.RiskService` on tonic, translating wire <-> core only.
//!
//! * [`proto`]: the generated messages, service trait and client.
//! * [`convert`]: every wire <-> core conversion and all the parsing of wire decimals
//!   (strict, with [`risk_core::num::parse_decimal`]).
//! * [`service`]: the service implementation over a shared [`risk_core::engine::RiskEngine`].
//! * [`server`]: the tonic server with health, reflection, limits and graceful shutdown.

pub mod convert;
pub mod proto;
pub mod server;
pub mod service;
