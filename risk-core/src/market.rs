//! The market a check reads: instruments, mark prices and the global kill switch.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::ids::Symbol;
use crate::model::{InstrumentStatus, KycLevel, TradingState};
use crate::num::{Leverage, Price, Quantity, Ratio};
use crate::Decimal;

/// A tradable instrument's static definition and status.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct Instrument {
    /// The symbol.
    pub symbol: Symbol,
    /// Prices must be a multiple of this.
    pub tick_size: Price,
    /// Quantities must be a multiple of this.
    pub lot_size: Quantity,
    /// Smallest order quantity.
    pub min_quantity: Quantity,
    /// Largest order quantity (`MAX_ORDER_SIZE_EXCEEDED` above it).
    pub max_quantity: Quantity,
    /// Value of one unit of quantity per unit of price (1 for linear USDT contracts).
    pub contract_multiplier: Decimal,
    /// The instrument's own leverage cap.
    pub max_leverage: Leverage,
    /// KYC level needed to trade it.
    pub required_kyc: KycLevel,
    /// Listing status; maps to the symbol-level kill switch.
    pub status: InstrumentStatus,
    /// Largest allowed relative distance of a limit price from the mark (0.05 = 5%);
    /// `None` disables the band.
    pub price_band: Option<Ratio>,
}

/// A mark price and when it was observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Mark {
    /// The mark price.
    pub price: Price,
    /// Its observation time; a check refuses marks older than the configured maximum age.
    pub at: DateTime<Utc>,
}

/// Read access to market state. Implemented by [`MarketSnapshot`] (plain maps, for the
/// pure check) and by the engine's concurrent market state.
pub trait MarketView {
    /// The global kill-switch state.
    fn global_state(&self) -> TradingState;
    /// The instrument for `symbol`, if listed.
    fn instrument(&self, symbol: &Symbol) -> Option<Instrument>;
    /// The latest mark for `symbol`, if any.
    fn mark(&self, symbol: &Symbol) -> Option<Mark>;
    /// The contract multiplier of `symbol`, if listed. Override to avoid cloning the
    /// instrument.
    fn contract_multiplier(&self, symbol: &Symbol) -> Option<Decimal> {
        self.instrument(symbol).map(|i| i.contract_multiplier)
    }
}

/// An owned, caller-supplied market snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct MarketSnapshot {
    /// The global kill switch.
    pub global_state: GlobalState,
    /// Instruments by symbol.
    pub instruments: HashMap<Symbol, Instrument>,
    /// Marks by symbol.
    pub marks: HashMap<Symbol, Mark>,
}

/// The global kill-switch state, `ACTIVE` by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct GlobalState(pub TradingState);

impl Default for GlobalState {
    fn default() -> Self {
        Self(TradingState::Active)
    }
}

impl MarketView for MarketSnapshot {
    fn global_state(&self) -> TradingState {
        self.global_state.0
    }
    fn instrument(&self, symbol: &Symbol) -> Option<Instrument> {
        self.instruments.get(symbol).cloned()
    }
    fn mark(&self, symbol: &Symbol) -> Option<Mark> {
        self.marks.get(symbol).copied()
    }
    fn contract_multiplier(&self, symbol: &Symbol) -> Option<Decimal> {
        self.instruments.get(symbol).map(|i| i.contract_multiplier)
    }
}
