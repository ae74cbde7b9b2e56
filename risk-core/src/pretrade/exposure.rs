//! The account side of pricing: figures that depend on the account and the marks but
//! not on the order, so the engine can cache them between mark updates.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::account::{AccountSnapshot, RiskProfile};
use crate::config::RiskConfig;
use crate::fixed::Fx;
use crate::ids::Symbol;
use crate::market::MarketView;
use crate::model::RejectReason;
use crate::num::{ArithmeticError, Money, Multiplier, Notional};
use crate::pretrade::message::Detail;
use crate::pretrade::CheckMessage;

/// A failure that stops pricing: missing data or arithmetic overflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stop(pub RejectReason, pub CheckMessage);

impl From<ArithmeticError> for Stop {
    fn from(e: ArithmeticError) -> Self {
        Self(RejectReason::InvalidRequest, e.into())
    }
}

/// An account's positions, open orders and reservations priced at the marks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AccountExposure {
    /// Wallet balance plus unrealized PnL.
    pub margin_balance: Money,
    /// Sum of position initial margins (notional at mark / position leverage).
    pub position_im: Money,
    /// Sum of open-order initial margins and reserved margin.
    pub order_im: Money,
    /// Gross notional of positions, open orders and reservations.
    pub gross: Notional,
    /// Maintenance margin of every position at its current notional.
    pub maintenance: Money,
    /// The oldest mark used, and its symbol: the whole exposure is as fresh as it.
    pub oldest_mark: Option<(DateTime<Utc>, Symbol)>,
    /// The figures above taken apart for the fixed-point pricing step once, here where
    /// the positions and marks enter pricing; `None` when one does not fit [`Fx`].
    pub fixed: Option<ExposureFx>,
    /// The profile's limits taken apart once per computation (a profile change clears
    /// the engine's cache); `None` when one does not fit [`Fx`].
    pub profile: Option<ProfileFx>,
}

/// The account profile's limits as [`Fx`], for the fixed-point pricing step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProfileFx {
    /// The profile's leverage cap.
    pub max_leverage: Fx,
    /// The profile's exposure limit.
    pub exposure_limit: Fx,
}

impl ProfileFx {
    /// The limits of `profile`, or `None` when one does not fit [`Fx`].
    fn of(profile: &RiskProfile) -> Option<Self> {
        Some(Self {
            max_leverage: Fx::new(profile.max_leverage.get())?,
            exposure_limit: Fx::new(profile.exposure_limit.get())?,
        })
    }
}

/// An [`AccountExposure`]'s figures as [`Fx`], for the fixed-point pricing step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ExposureFx {
    /// [`AccountExposure::margin_balance`].
    pub margin_balance: Fx,
    /// [`AccountExposure::position_im`].
    pub position_im: Fx,
    /// [`AccountExposure::order_im`].
    pub order_im: Fx,
    /// [`AccountExposure::gross`].
    pub gross: Fx,
    /// [`AccountExposure::maintenance`].
    pub maintenance: Fx,
}

impl ExposureFx {
    /// The figures of `e`, or `None` when one does not fit [`Fx`].
    fn of(e: &AccountExposure) -> Option<Self> {
        Some(Self {
            margin_balance: Fx::new(e.margin_balance.get())?,
            position_im: Fx::new(e.position_im.get())?,
            order_im: Fx::new(e.order_im.get())?,
            gross: Fx::new(e.gross.get())?,
            maintenance: Fx::new(e.maintenance.get())?,
        })
    }
}

/// The contract multiplier of `symbol`, failing closed when it is not listed.
pub(crate) fn multiplier<M: MarketView + ?Sized>(
    market: &M,
    symbol: &Symbol,
) -> Result<Multiplier, Stop> {
    market.contract_multiplier(symbol).ok_or_else(|| {
        Stop(
            RejectReason::UnknownSymbol,
            CheckMessage::from(Detail::UnlistedHolding(symbol.clone())),
        )
    })
}

impl AccountExposure {
    /// Prices the account at the current marks. Staleness is not judged here (the cache
    /// outlives `now`); the caller checks [`AccountExposure::oldest_mark`].
    pub(crate) fn compute<M: MarketView + ?Sized>(
        config: &RiskConfig,
        account: &AccountSnapshot,
        market: &M,
    ) -> Result<Self, Stop> {
        let mut margin_balance = account.wallet_balance;
        let mut position_im = Money::ZERO;
        let mut gross = Notional::ZERO;
        let mut maintenance = Money::ZERO;
        let mut oldest_mark: Option<(DateTime<Utc>, Symbol)> = None;
        for p in &account.positions {
            let mark = market.mark(&p.symbol).ok_or_else(|| {
                Stop(
                    RejectReason::StaleData,
                    CheckMessage::from(Detail::NoMark(p.symbol.clone())),
                )
            })?;
            if oldest_mark.as_ref().is_none_or(|(at, _)| mark.at < *at) {
                oldest_mark = Some((mark.at, p.symbol.clone()));
            }
            let multiplier = multiplier(market, &p.symbol)?;
            let notional = mark.price.notional(p.size.abs(), multiplier)?;
            let pnl = p.size.pnl(p.entry_price, mark.price, multiplier)?;
            margin_balance = margin_balance.checked_add(pnl)?;
            position_im = position_im.checked_add(notional.margin_at(p.leverage)?)?;
            gross = gross.checked_add(notional)?;
            maintenance =
                maintenance.checked_add(config.ladder(&p.symbol).maintenance_margin(notional)?)?;
        }
        let mut order_im = Money::ZERO;
        for o in account.open_orders.iter().filter(|o| !o.reduce_only) {
            let notional = o
                .price
                .notional(o.quantity, multiplier(market, &o.symbol)?)?;
            order_im = order_im.checked_add(notional.margin_at(o.leverage)?)?;
            gross = gross.checked_add(notional)?;
        }
        for r in &account.reservations {
            order_im = order_im.checked_add(r.amount)?;
            gross = gross.checked_add(r.notional)?;
        }
        let mut exposure = Self {
            margin_balance,
            position_im,
            order_im,
            gross,
            maintenance,
            oldest_mark,
            fixed: None,
            profile: ProfileFx::of(&account.profile),
        };
        exposure.fixed = ExposureFx::of(&exposure);
        Ok(exposure)
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
                CheckMessage::from_static("exposure cache is empty"),
            )),
        }
    }

    /// Adds a reservation made after the exposure was computed, exactly as
    /// [`AccountExposure::compute`] would count it; forgets the exposure on overflow.
    pub(crate) fn add_reservation(&mut self, reservation: &crate::account::Reservation) {
        if let Some((_, _, e)) = &mut self.entry {
            match (
                e.order_im.checked_add(reservation.amount),
                e.gross.checked_add(reservation.notional),
            ) {
                (Ok(order_im), Ok(gross)) => {
                    e.order_im = order_im;
                    e.gross = gross;
                    e.fixed = ExposureFx::of(e);
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
