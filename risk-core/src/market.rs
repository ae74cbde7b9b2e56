//! The market a check reads: instruments, mark prices and the global kill switch.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::fixed::Fx;
use crate::ids::Symbol;
use crate::model::{InstrumentStatus, KycLevel, TradingState};
use crate::num::{FieldError, Leverage, LotSize, Multiplier, Price, PriceBand, Quantity};

/// A tradable instrument's static definition and status, valid by construction.
///
/// Every field is a newtype that holds only valid values (tick, lot and multiplier
/// greater than zero, leverage at least 1, band strictly between 0 and 1), and
/// [`Instrument::new`] checks what involves two fields (`min_quantity <= max_quantity`)
/// and the symbol, so an `Instrument` that exists is valid. Serde reads it through the
/// same constructor.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(try_from = "InstrumentSpec", into = "InstrumentSpec")
)]
pub struct Instrument {
    symbol: Symbol,
    /// Every other field, with the fixed-point figures prepared once here where the
    /// instrument enters (listed or updated).
    terms: InstrumentTerms,
}

/// What a check reads of an [`Instrument`]: every field but the symbol (the check has
/// the request's, equal to it), with the fixed-point figures prepared when the
/// instrument entered. `Copy`, so that a check copies it out under the market's lookup
/// and writes nothing shared (cloning the instrument bumps its symbol's reference count,
/// a cache line every thread checking that symbol writes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstrumentTerms {
    tick_size: Price,
    lot_size: LotSize,
    min_quantity: Quantity,
    max_quantity: Quantity,
    contract_multiplier: Multiplier,
    max_leverage: Leverage,
    required_kyc: KycLevel,
    status: InstrumentStatus,
    price_band: Option<PriceBand>,
    fixed: Option<InstrumentFx>,
}

impl InstrumentTerms {
    /// The prepared fixed-point figures, `None` when one does not fit [`Fx`].
    #[inline]
    pub(crate) fn fixed(&self) -> Option<&InstrumentFx> {
        self.fixed.as_ref()
    }
    /// The price step.
    #[must_use]
    pub fn tick_size(&self) -> Price {
        self.tick_size
    }
    /// The quantity step.
    #[must_use]
    pub fn lot_size(&self) -> LotSize {
        self.lot_size
    }
    /// The smallest order quantity.
    #[must_use]
    pub fn min_quantity(&self) -> Quantity {
        self.min_quantity
    }
    /// The largest order quantity.
    #[must_use]
    pub fn max_quantity(&self) -> Quantity {
        self.max_quantity
    }
    /// The contract multiplier.
    #[must_use]
    pub fn contract_multiplier(&self) -> Multiplier {
        self.contract_multiplier
    }
    /// The instrument's leverage cap.
    #[must_use]
    pub fn max_leverage(&self) -> Leverage {
        self.max_leverage
    }
    /// The KYC level needed to trade it.
    #[must_use]
    pub fn required_kyc(&self) -> KycLevel {
        self.required_kyc
    }
    /// The listing status.
    #[must_use]
    pub fn status(&self) -> InstrumentStatus {
        self.status
    }
    /// The price band, if any.
    #[must_use]
    pub fn price_band(&self) -> Option<PriceBand> {
        self.price_band
    }
}

/// An [`Instrument`]'s figures as [`Fx`], for the fixed-point check step: mantissas and
/// scales kept apart (40 bytes, not four padded `Fx`), as a check copies them out with the rest of the terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InstrumentFx {
    /// Mantissas: multiplier, leverage cap, tick, lot.
    m: [i64; 4],
    /// Their scales, in the same order.
    s: [u8; 4],
}

impl InstrumentFx {
    /// The figures of `spec`, or `None` when one does not fit [`Fx`] (the check then
    /// takes the `Decimal` path).
    fn of(spec: &InstrumentSpec) -> Option<Self> {
        let all = [
            Fx::new(spec.contract_multiplier.get())?,
            Fx::new(spec.max_leverage.get())?,
            Fx::new(spec.tick_size.get())?,
            Fx::new(spec.lot_size.get())?,
        ];
        let (mut m, mut s) = ([0; 4], [0; 4]);
        for ((x, mi), si) in all.into_iter().zip(&mut m).zip(&mut s) {
            let (xm, xs) = x.parts();
            *mi = xm;
            *si = u8::try_from(xs).ok()?;
        }
        Some(Self { m, s })
    }

    /// Figure `i` (an index below 4) as [`Fx`].
    #[inline(always)]
    fn at(&self, i: usize) -> Fx {
        Fx::from_parts(self.m[i], u32::from(self.s[i]))
    }
    /// The contract multiplier.
    #[inline(always)]
    pub(crate) fn multiplier(&self) -> Fx {
        self.at(0)
    }
    /// The instrument's leverage cap.
    #[inline(always)]
    pub(crate) fn max_leverage(&self) -> Fx {
        self.at(1)
    }
    /// The price step.
    #[inline(always)]
    pub(crate) fn tick(&self) -> Fx {
        self.at(2)
    }
    /// The quantity step.
    #[inline(always)]
    pub(crate) fn lot(&self) -> Fx {
        self.at(3)
    }
}

/// The fields of an [`Instrument`], before the checks that involve more than one of them.
/// Its serde form is the instrument's (config files, events, Python dicts).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct InstrumentSpec {
    /// The symbol; must not be empty.
    pub symbol: Symbol,
    /// Prices must be a multiple of this.
    pub tick_size: Price,
    /// Quantities must be a multiple of this.
    pub lot_size: LotSize,
    /// Smallest order quantity.
    pub min_quantity: Quantity,
    /// Largest order quantity (`MAX_ORDER_SIZE_EXCEEDED` above it); at least `min_quantity`.
    pub max_quantity: Quantity,
    /// Value of one unit of quantity per unit of price (1 for linear USDT contracts).
    pub contract_multiplier: Multiplier,
    /// The instrument's own leverage cap.
    pub max_leverage: Leverage,
    /// KYC level needed to trade it.
    pub required_kyc: KycLevel,
    /// Listing status; maps to the symbol-level kill switch.
    pub status: InstrumentStatus,
    /// Largest allowed relative distance of a limit price from the mark (0.05 = 5%);
    /// `None` disables the band.
    #[cfg_attr(feature = "serde", serde(default))]
    pub price_band: Option<PriceBand>,
}

impl Instrument {
    /// Builds an instrument from its fields.
    ///
    /// # Errors
    /// [`FieldError`] naming `symbol` when it is empty, or `min_quantity` when it
    /// exceeds `max_quantity`.
    pub fn new(spec: InstrumentSpec) -> Result<Self, FieldError> {
        if spec.symbol.is_empty() {
            return Err(FieldError::rule("symbol", "\"\"", "non-empty"));
        }
        if spec.min_quantity > spec.max_quantity {
            return Err(FieldError::rule(
                "min_quantity",
                spec.min_quantity,
                format!("at most max_quantity ({})", spec.max_quantity),
            ));
        }
        let terms = InstrumentTerms {
            tick_size: spec.tick_size,
            lot_size: spec.lot_size,
            min_quantity: spec.min_quantity,
            max_quantity: spec.max_quantity,
            contract_multiplier: spec.contract_multiplier,
            max_leverage: spec.max_leverage,
            required_kyc: spec.required_kyc,
            status: spec.status,
            price_band: spec.price_band,
            fixed: InstrumentFx::of(&spec),
        };
        Ok(Self {
            symbol: spec.symbol,
            terms,
        })
    }

    /// What a check reads of the instrument.
    #[must_use]
    pub fn terms(&self) -> &InstrumentTerms {
        &self.terms
    }

    /// The fields, to inspect or to change and rebuild with [`Instrument::new`].
    #[must_use]
    pub fn spec(&self) -> InstrumentSpec {
        let t = &self.terms;
        InstrumentSpec {
            symbol: self.symbol.clone(),
            tick_size: t.tick_size,
            lot_size: t.lot_size,
            min_quantity: t.min_quantity,
            max_quantity: t.max_quantity,
            contract_multiplier: t.contract_multiplier,
            max_leverage: t.max_leverage,
            required_kyc: t.required_kyc,
            status: t.status,
            price_band: t.price_band,
        }
    }

    /// The symbol.
    #[must_use]
    pub fn symbol(&self) -> &Symbol {
        &self.symbol
    }
    /// The price step.
    #[must_use]
    pub fn tick_size(&self) -> Price {
        self.terms.tick_size
    }
    /// The quantity step.
    #[must_use]
    pub fn lot_size(&self) -> LotSize {
        self.terms.lot_size
    }
    /// The smallest order quantity.
    #[must_use]
    pub fn min_quantity(&self) -> Quantity {
        self.terms.min_quantity
    }
    /// The largest order quantity.
    #[must_use]
    pub fn max_quantity(&self) -> Quantity {
        self.terms.max_quantity
    }
    /// The contract multiplier.
    #[must_use]
    pub fn contract_multiplier(&self) -> Multiplier {
        self.terms.contract_multiplier
    }
    /// The instrument's leverage cap.
    #[must_use]
    pub fn max_leverage(&self) -> Leverage {
        self.terms.max_leverage
    }
    /// The KYC level needed to trade it.
    #[must_use]
    pub fn required_kyc(&self) -> KycLevel {
        self.terms.required_kyc
    }
    /// The listing status.
    #[must_use]
    pub fn status(&self) -> InstrumentStatus {
        self.terms.status
    }
    /// The price band, if any.
    #[must_use]
    pub fn price_band(&self) -> Option<PriceBand> {
        self.terms.price_band
    }
}

impl TryFrom<InstrumentSpec> for Instrument {
    type Error = FieldError;
    fn try_from(spec: InstrumentSpec) -> Result<Self, FieldError> {
        Self::new(spec)
    }
}

impl From<Instrument> for InstrumentSpec {
    fn from(instrument: Instrument) -> Self {
        instrument.spec()
    }
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
    fn contract_multiplier(&self, symbol: &Symbol) -> Option<Multiplier> {
        self.instrument(symbol).map(|i| i.contract_multiplier())
    }
    /// The instrument and the latest mark for `symbol`, which every check reads. Override
    /// to find both with one lookup.
    fn instrument_and_mark(&self, symbol: &Symbol) -> (Option<Instrument>, Option<Mark>) {
        (self.instrument(symbol), self.mark(symbol))
    }
    /// What a check reads of `symbol`'s instrument, and its latest mark: what every check
    /// reads. Override to find both with one lookup and copy the terms out of the held
    /// instrument instead of cloning it.
    fn terms_and_mark(&self, symbol: &Symbol) -> (Option<InstrumentTerms>, Option<Mark>) {
        let (instrument, mark) = self.instrument_and_mark(symbol);
        (instrument.map(|i| i.terms), mark)
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
    fn contract_multiplier(&self, symbol: &Symbol) -> Option<Multiplier> {
        self.instruments
            .get(symbol)
            .map(|i| i.contract_multiplier())
    }
    fn terms_and_mark(&self, symbol: &Symbol) -> (Option<InstrumentTerms>, Option<Mark>) {
        (
            self.instruments.get(symbol).map(|i| i.terms),
            self.mark(symbol),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A view with only the required methods: the provided `terms_and_mark` runs.
    struct Plain(MarketSnapshot);

    impl MarketView for Plain {
        fn global_state(&self) -> TradingState {
            self.0.global_state()
        }
        fn instrument(&self, symbol: &Symbol) -> Option<Instrument> {
            self.0.instrument(symbol)
        }
        fn mark(&self, symbol: &Symbol) -> Option<Mark> {
            self.0.mark(symbol)
        }
    }

    #[test]
    fn terms_are_the_instruments_fields_by_either_lookup() {
        let symbol = Symbol::new("BTCUSDT");
        let instrument = Instrument::new(InstrumentSpec {
            symbol: symbol.clone(),
            tick_size: Price::lit("0.1"),
            lot_size: LotSize::lit("0.001"),
            min_quantity: Quantity::lit("0.002"),
            max_quantity: Quantity::lit("100"),
            contract_multiplier: Multiplier::lit("0.5"),
            max_leverage: Leverage::lit("20"),
            required_kyc: KycLevel::L2,
            status: InstrumentStatus::ReduceOnly,
            price_band: Some(PriceBand::lit("0.05")),
        })
        .expect("valid");
        let mark = Mark {
            price: Price::lit("50000"),
            at: DateTime::<Utc>::UNIX_EPOCH,
        };
        let mut snapshot = MarketSnapshot::default();
        snapshot
            .instruments
            .insert(symbol.clone(), instrument.clone());
        snapshot.marks.insert(symbol.clone(), mark);
        let terms = *instrument.terms();
        let spec = instrument.spec();
        assert_eq!(
            (
                terms.tick_size(),
                terms.lot_size(),
                terms.min_quantity(),
                terms.max_quantity(),
                terms.contract_multiplier(),
                terms.max_leverage(),
                terms.required_kyc(),
                terms.status(),
                terms.price_band(),
            ),
            (
                spec.tick_size,
                spec.lot_size,
                spec.min_quantity,
                spec.max_quantity,
                spec.contract_multiplier,
                spec.max_leverage,
                spec.required_kyc,
                spec.status,
                spec.price_band,
            )
        );
        assert!(terms.fixed().is_some());
        let want = (Some(terms), Some(mark));
        assert_eq!(snapshot.terms_and_mark(&symbol), want);
        let plain = Plain(snapshot);
        assert_eq!(plain.terms_and_mark(&symbol), want);
        assert_eq!(plain.terms_and_mark(&Symbol::new("ETHUSDT")), (None, None));
    }
}
