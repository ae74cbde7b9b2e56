//! Adapters around [`risk_core`]: they translate and transport, and hold no risk logic.
//!
//! Each adapter sits behind a cargo feature so that an embedder builds only what it uses.

#[cfg(feature = "config")]
pub mod config_file;

#[cfg(feature = "grpc")]
pub mod grpc;
