//! The account side of pricing: figures that depend on the account and the marks but
//! not on the order, so the engine can cache them between mark updates.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::account::AccountSnapshot;
use crate::config::RiskConfig;
use crate::ids::Symbol;
use crate::margin::TierLadder;
use crate::market::MarketView;
use crate::model::RejectReason;
use crate::num::{add, div, mul, sub, ArithmeticError, Notional};
use crate::Decimal;

/// A failure that stops pricing: missing data or arithmetic overflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stop(pub RejectReason, pub String);

impl From<ArithmeticError> for Stop {
    fn from(e: ArithmeticError) -> Self {
        Self(RejectReason::InvalidRequest, e.to_string())
    }
}

/// An account's positions, open orders and reservations priced at the marks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AccountExposure {
    /// Wallet balance plus unrealized PnL.
    pub margin_balance: Decimal,
    /// Sum of position initial margins (notional at mark / position leverage).
    pub position_im: Decimal,
    /// Sum of open-order initial margins and reserved margin.
    pub order_im: Decimal,
    /// Gross notional of positions, open orders and reservations.
    pub gross: Decimal,
    /// Maintenance margin of every position at its current notional.
    pub maintenance: Decimal,
    /// The oldest mark used, and its symbol: the whole exposure is as fresh as it.
    pub oldest_mark: Option<(DateTime<Utc>, Symbol)>,
}

/// The contract multiplier of `symbol`, failing closed when it is not listed.
pub(crate) fn multiplier<M: MarketView + ?Sized>(
    market: &M,
    symbol: &Symbol,
) -> Result<Decimal, Stop> {
    market.contract_multiplier(symbol).ok_or_else(|| {
        Stop(
            RejectReason::UnknownSymbol,
            format!("account holds {symbol}, which is not a known instrument"),
        )
    })
}

/// Maintenance margin of `notional` on `ladder`.
pub(crate) fn maintenance(ladder: &TierLadder, notional: Decimal) -> Result<Decimal, Stop> {
    let notional =
        Notional::new(notional).map_err(|e| Stop(RejectReason::InvalidRequest, e.to_string()))?;
    Ok(ladder.maintenance_margin(notional)?.get())
}

impl AccountExposure {
    /// Prices the account at the current marks. Staleness is not judged here (the cache
    /// outlives `now`); the caller checks [`AccountExposure::oldest_mark`].
    pub(crate) fn compute<M: MarketView + ?Sized>(
        config: &RiskConfig,
        account: &AccountSnapshot,
        market: &M,
    ) -> Result<Self, Stop> {
        let mut margin_balance = account.wallet_balance.get();
        let mut position_im = Decimal::ZERO;
        let mut gross = Decimal::ZERO;
        let mut maintenance_total = Decimal::ZERO;
        let mut oldest_mark: Option<(DateTime<Utc>, Symbol)> = None;
        for p in &account.positions {
            let mark = market.mark(&p.symbol).ok_or_else(|| {
                Stop(
                    RejectReason::StaleData,
                    format!("no mark price for {}", p.symbol),
                )
            })?;
            if oldest_mark.as_ref().is_none_or(|(at, _)| mark.at < *at) {
                oldest_mark = Some((mark.at, p.symbol.clone()));
            }
            let m = mark.price.get();
            let pm = multiplier(market, &p.symbol)?;
            let size = p.size.get();
            let notional = mul(
                mul(size.abs(), m, "position notional")?,
                pm,
                "position notional",
            )?;
            let pnl = mul(
                mul(size, sub(m, p.entry_price.get(), "pnl")?, "pnl")?,
                pm,
                "pnl",
            )?;
            margin_balance = add(margin_balance, pnl, "margin balance")?;
            position_im = add(
                position_im,
                div(notional, p.leverage.get(), "position initial margin")?,
                "position initial margin",
            )?;
            gross = add(gross, notional, "exposure")?;
            maintenance_total = add(
                maintenance_total,
                maintenance(config.ladder(&p.symbol), notional)?,
                "maintenance margin",
            )?;
        }
        let mut order_im = Decimal::ZERO;
        for o in account.open_orders.iter().filter(|o| !o.reduce_only) {
            let notional = mul(
                mul(o.quantity.get(), o.price.get(), "open order notional")?,
                multiplier(market, &o.symbol)?,
                "open order notional",
            )?;
            order_im = add(
                order_im,
                div(notional, o.leverage.get(), "open order initial margin")?,
                "open order initial margin",
            )?;
            gross = add(gross, notional, "exposure")?;
        }
        for r in &account.reservations {
            order_im = add(order_im, r.amount.get(), "reserved margin")?;
            gross = add(gross, r.notional.get(), "exposure")?;
        }
        Ok(Self {
            margin_balance,
            position_im,
            order_im,
            gross,
            maintenance: maintenance_total,
            oldest_mark,
        })
    }
}

/// The engine's per-account cache of an [`AccountExposure`], valid for one market epoch
/// and one config.
#[derive(Debug, Clone, Default)]
pub(crate) struct ExposureCache {
    entry: Option<(u64, Arc<RiskConfig>, AccountExposure)>,
}

impl ExposureCache {
    /// The cached exposure when it was computed at `epoch` under `config` (the cache
    /// holds the config alive, so pointer identity cannot be reused by another config).
    pub(crate) fn get(&self, epoch: u64, config: &Arc<RiskConfig>) -> Option<&AccountExposure> {
        match &self.entry {
            Some((e, c, exposure)) if *e == epoch && Arc::ptr_eq(c, config) => Some(exposure),
            _ => None,
        }
    }

    /// The cached exposure, computing and storing it first when the cache is not valid
    /// for `epoch` and `config`. A failed computation is not cached.
    pub(crate) fn get_or_compute(
        &mut self,
        epoch: u64,
        config: &Arc<RiskConfig>,
        compute: impl FnOnce() -> Result<AccountExposure, Stop>,
    ) -> Result<&AccountExposure, Stop> {
        if self.get(epoch, config).is_none() {
            self.entry = Some((epoch, Arc::clone(config), compute()?));
        }
        match &self.entry {
            Some((_, _, exposure)) => Ok(exposure),
            None => Err(Stop(
                RejectReason::InvalidRequest,
                "exposure cache is empty".to_owned(),
            )),
        }
    }

    /// Adds a reservation made after the exposure was computed, exactly as
    /// [`AccountExposure::compute`] would count it; forgets the exposure on overflow.
    pub(crate) fn add_reservation(&mut self, reservation: &crate::account::Reservation) {
        if let Some((_, _, e)) = &mut self.entry {
            match (
                add(e.order_im, reservation.amount.get(), "reserved margin"),
                add(e.gross, reservation.notional.get(), "exposure"),
            ) {
                (Ok(order_im), Ok(gross)) => {
                    e.order_im = order_im;
                    e.gross = gross;
                }
                _ => self.entry = None,
            }
        }
    }

    /// Forgets the exposure (the account changed).
    pub(crate) fn clear(&mut self) {
        self.entry = None;
    }
}
