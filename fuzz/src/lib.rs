//! Fuzz-target logic for riskgate.
//!
//! Each `pub fn` takes the raw fuzzer input and panics when a property fails; the
//! `fuzz_targets/*.rs` binaries only call them, so the same logic runs on stable through
//! `tests/replay.rs` over the committed corpora and regressions.
//!
//! Structured inputs are decoded with `arbitrary` into small input structs with primitive
//! fields (an `i64` mantissa and a `u8` scale per decimal, `u8` selectors per enum) and
//! converted to the core's types here, so risk-core needs no `arbitrary` dependency.
//!
//! One module per target; `input` holds the primitive inputs they share.

mod config_file;
mod grpc_request;
mod input;
mod pretrade_check;
mod tier_ladder;
mod trades_csv;
mod wire_decimal;

pub use config_file::config_file;
pub use grpc_request::{grpc_answers, grpc_frames, grpc_request, FrameKind};
pub use input::Dec;
pub use pretrade_check::{
    pretrade_check, EventIn, InstrumentIn, LimitsIn, OrderIn, PositionIn, PretradeInput, RequestIn,
    RuleIn,
};
pub use tier_ladder::{tier_ladder, LadderIn, LiqIn, TierIn, TierLadderInput};
pub use trades_csv::trades_csv;
pub use wire_decimal::{plain_decimal_value, wire_decimal};
