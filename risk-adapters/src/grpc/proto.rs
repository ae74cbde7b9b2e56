//! The code generated from `proto/risk/v1/risk.proto` (package `risk.v1`) by build.rs.

/// Messages, enums, the `RiskService` server trait and its client.
#[allow(
    missing_docs,
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used,
    clippy::doc_markdown,
    unreachable_pub
)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/risk.v1.rs"));
}

/// The encoded file descriptor set of `risk.v1`, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/risk_v1_descriptor.bin"));
