//! [`RiskEngine`]: the concurrent, stateful face of the core, for embedding.
//!
//! * The config sits behind an [`ArcSwap`]: readers never block, a replacement is atomic,
//!   and a config that fails validation is refused while the old one stays in force.
//! * Account state sits in a [`DashMap`]. A check holds its account's entry for the
//!   duration of the check, so two concurrent checks on one account are serialized and
//!   [`RiskEngine::check_and_reserve`] can never let both spend the same free margin.
//! * Market state (instruments, marks, the global kill switch) is concurrent too.
//! * State changes arrive as [`EngineEvent`]s. Account events carry a per-account
//!   sequence number; an event whose sequence is not above the last applied one is
//!   ignored and reported as [`Applied::Duplicate`]. A mark older than the one held is
//!   ignored as [`Applied::Stale`]. Sequences start at 1 ([`Seq`] cannot be 0), must
//!   increase, and may have gaps.
//! * Events are valid by construction (every field is a validated newtype, an
//!   [`Instrument`] checks its fields when built); what needs the engine's state is
//!   checked on apply: a position, fill or resting order naming a symbol that is not an
//!   instrument is refused with [`EventError::UnknownSymbol`].
//!
//! # The serde form of an event
//!
//! With the `serde` feature, an [`EngineEvent`] reads and writes as one flat JSON (or
//! TOML) object tagged by `type`. It is the one form that the Python bindings
//! (`RiskEngine.apply`) and the service adapters (HTTP, Kafka) accept, and its payloads
//! are the config file's: an `instrument` event's keys are an `[[instruments]]` entry's,
//! a `profile` is an `[[accounts]]` entry's `profile`. Decimals are strings (exact) or
//! numbers; names of enumerations are the wire names, any case. Every value goes through
//! the same validated constructors as the Rust API, so a refusal names the key and the
//! rule (`contract_multiplier: 0 is not valid: must be greater than zero`).
//!
//! ```json
//! {"type": "instrument", "symbol": "BTCUSDT", "tick_size": "0.1", "lot_size": "0.001",
//!  "min_quantity": "0.001", "max_quantity": "100", "contract_multiplier": "1",
//!  "max_leverage": "125", "required_kyc": "L1", "status": "TRADING", "price_band": "0.05"}
//! {"type": "mark", "symbol": "BTCUSDT", "price": "50000", "at": "2026-01-05T12:00:00Z"}
//! {"type": "global_trading_state", "state": "HALTED"}
//! {"type": "profile_upsert", "account_id": "acc-1", "seq": 1, "user_id": "alice",
//!  "profile": {"kyc_level": "L2", "exposure_limit": "500000", "max_leverage": "50"}}
//! {"type": "balance_change", "account_id": "acc-1", "seq": 2, "delta": "25000"}
//! {"type": "position_update", "account_id": "acc-1", "seq": 3, "symbol": "BTCUSDT",
//!  "size": "-0.5", "entry_price": "49000", "leverage": "10"}
//! {"type": "order_opened", "account_id": "acc-1", "seq": 4, "order_id": "o-1",
//!  "symbol": "BTCUSDT", "side": "BUY", "quantity": "0.1", "price": "49500",
//!  "leverage": "10", "reduce_only": false}
//! {"type": "order_filled", "account_id": "acc-1", "seq": 5, "order_id": "o-1",
//!  "symbol": "BTCUSDT", "side": "BUY", "quantity": "0.1", "price": "49500", "leverage": "10"}
//! {"type": "order_cancelled", "account_id": "acc-1", "seq": 6, "order_id": "o-2"}
//! {"type": "reservation_released", "account_id": "acc-1", "seq": 7, "order_id": "o-3"}
//! {"type": "trading_state", "account_id": "acc-1", "seq": 8, "state": "REDUCING"}
//! ```
//!
//! A key that does not belong to the event's type, a missing required key (`leverage:
//! is required`) and `seq: 0` are refused. `reduce_only` defaults to false.

use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use dashmap::DashMap;

use crate::account::{AccountSnapshot, IdHash, OpenOrder, Position, Reservation, RiskProfile};
use crate::config::{ConfigError, RiskConfig};
use crate::hash::RandomState;
use crate::ids::{AccountId, OrderId, Symbol, UserId};
use crate::market::{Instrument, InstrumentTerms, Mark, MarketView};
use crate::model::{Side, TradingState};
use crate::num::{
    self, ArithmeticError, FieldError, Leverage, Money, Multiplier, Price, Quantity, SignedQuantity,
};
use crate::pretrade::{self, CheckRequest, CheckResponse, ExposureCache, ExposureSource, Hold};
use crate::Decimal;

#[cfg(feature = "serde")]
mod form;
mod state;

pub use state::{AccountState, EngineState, RestoreError};

/// A per-account event sequence number. Sequences start at 1: zero is not a sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seq(NonZeroU64);

impl Seq {
    /// The first sequence number, 1.
    pub const MIN: Self = Self(NonZeroU64::MIN);

    /// The rule a sequence number must follow, in words.
    pub const RULE: &'static str = "at least 1 (sequences start at 1)";

    /// A sequence number.
    ///
    /// # Errors
    /// [`FieldError`] naming `seq` when `value` is 0.
    pub fn new(value: u64) -> Result<Self, FieldError> {
        NonZeroU64::new(value)
            .map(Self)
            .ok_or_else(|| FieldError::rule("seq", value, Self::RULE))
    }

    /// A sequence number from a literal, for tests and examples.
    ///
    /// # Panics
    /// When `value` is 0.
    #[must_use]
    #[allow(clippy::expect_used)]
    pub fn lit(value: u64) -> Self {
        Self::new(value).expect("a sequence number is at least 1")
    }

    /// The number.
    #[must_use]
    pub const fn get(self) -> u64 {
        self.0.get()
    }
}

impl TryFrom<u64> for Seq {
    type Error = FieldError;
    fn try_from(value: u64) -> Result<Self, FieldError> {
        Self::new(value)
    }
}

impl From<Seq> for u64 {
    fn from(seq: Seq) -> u64 {
        seq.get()
    }
}

impl std::fmt::Display for Seq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

/// A state change for the engine. Its serde form is described in the [module
/// docs](self#the-serde-form-of-an-event).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(try_from = "form::EventForm", into = "form::EventForm")
)]
pub enum EngineEvent {
    /// A market-wide change.
    Market(MarketEvent),
    /// A change to one account, with its per-account sequence number.
    Account {
        /// The account.
        account_id: AccountId,
        /// Strictly increasing per account; duplicates and older events are ignored.
        seq: Seq,
        /// The change.
        event: AccountEvent,
    },
}

/// A market-wide change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarketEvent {
    /// A new mark price; ignored when not newer than the mark held.
    Mark {
        /// The instrument.
        symbol: Symbol,
        /// The mark.
        price: Price,
        /// Its observation time.
        at: DateTime<Utc>,
    },
    /// An instrument listed or changed (replaces the whole definition).
    Instrument(Instrument),
    /// The global kill switch.
    GlobalTradingState(TradingState),
}

/// A change to one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountEvent {
    /// Creates the account, or replaces its owner and profile. The only event accepted
    /// for an account the engine does not know.
    ProfileUpsert {
        /// The owner.
        user_id: UserId,
        /// The profile.
        profile: RiskProfile,
    },
    /// Adds `delta` (deposit, withdrawal, fee, funding) to the wallet balance.
    BalanceChange {
        /// The signed change.
        delta: Money,
    },
    /// Replaces the position in a symbol (reconciliation); a zero size removes it.
    PositionUpdate {
        /// The instrument.
        symbol: Symbol,
        /// Signed size.
        size: SignedQuantity,
        /// Average entry price.
        entry_price: Price,
        /// Position leverage.
        leverage: Leverage,
    },
    /// An order now rests on the book. Releases the margin reserved for it at approval.
    OrderOpened(OpenOrder),
    /// A resting order was cancelled. Releases any reservation under its id.
    OrderCancelled {
        /// The order.
        order_id: OrderId,
    },
    /// An order (resting or not) filled, fully or partly. Reduces the resting quantity,
    /// releases its reservation, and applies the fill to the position with average-entry
    /// accounting; the closed part's realized PnL goes to the wallet.
    OrderFilled {
        /// The order.
        order_id: OrderId,
        /// The instrument.
        symbol: Symbol,
        /// The side.
        side: Side,
        /// The filled quantity.
        quantity: Quantity,
        /// The fill price.
        price: Price,
        /// Leverage for a position this fill opens (an existing position keeps its own).
        leverage: Leverage,
    },
    /// The account-level kill switch.
    TradingState(TradingState),
    /// The order service dropped an approved order without placing it: release its margin.
    ReservationReleased {
        /// The order.
        order_id: OrderId,
    },
}

/// What applying an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The state changed.
    Applied,
    /// The account event's sequence was not above the last applied one; nothing changed.
    Duplicate {
        /// The last sequence applied for the account.
        last_seq: u64,
    },
    /// The mark was not newer than the one held; nothing changed.
    Stale,
}

/// An event was refused; the state did not change and the sequence did not advance.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// An account event other than a profile upsert for an unknown account.
    #[error("account {0} is not known: send a profile upsert first")]
    UnknownAccount(AccountId),
    /// A position, fill or resting order for a symbol that is not a known instrument.
    #[error("symbol {0} is not a known instrument")]
    UnknownSymbol(Symbol),
    /// A fill for an order whose resting side or symbol differ from the fill's.
    #[error("fill for order {order_id} does not match the resting order: {problem}")]
    FillMismatch {
        /// The order.
        order_id: OrderId,
        /// What differs.
        problem: String,
    },
    /// An order opened under an id that already rests.
    #[error("order {0} is already open")]
    OrderAlreadyOpen(OrderId),
    /// The event's arithmetic overflowed.
    #[error(transparent)]
    Arithmetic(#[from] ArithmeticError),
}

/// The engine's concurrent market state; a [`MarketView`] for the check.
#[derive(Debug, Default)]
pub struct MarketState {
    /// Each symbol's instrument and latest mark in one entry, so that a check finds both
    /// with one lookup (and takes one shard read lock, not two).
    symbols: DashMap<Symbol, Listing, RandomState>,
    global: AtomicU8,
    /// Bumped by every applied mark or instrument change; accounts' cached exposures are
    /// valid for one epoch.
    epoch: AtomicU64,
}

/// What the market holds for one symbol: an instrument, a mark, or both (a mark may
/// arrive before its instrument).
#[derive(Debug, Default)]
struct Listing {
    instrument: Option<Instrument>,
    mark: Option<Mark>,
}

impl MarketState {
    /// Marks every cached account exposure out of date; called after the change is
    /// visible, so a check that reads the new epoch also sees the new state.
    fn bump_epoch(&self) -> Applied {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        Applied::Applied
    }
}

fn state_from_u8(v: u8) -> TradingState {
    match v {
        0 => TradingState::Active,
        1 => TradingState::Reducing,
        _ => TradingState::Halted,
    }
}

impl MarketView for MarketState {
    fn global_state(&self) -> TradingState {
        state_from_u8(self.global.load(Ordering::Acquire))
    }
    fn instrument(&self, symbol: &Symbol) -> Option<Instrument> {
        self.symbols.get(symbol)?.instrument.clone()
    }
    fn mark(&self, symbol: &Symbol) -> Option<Mark> {
        self.symbols.get(symbol)?.mark
    }
    fn contract_multiplier(&self, symbol: &Symbol) -> Option<Multiplier> {
        self.symbols
            .get(symbol)?
            .instrument
            .as_ref()
            .map(Instrument::contract_multiplier)
    }
    fn instrument_and_mark(&self, symbol: &Symbol) -> (Option<Instrument>, Option<Mark>) {
        self.symbols
            .get(symbol)
            .map_or((None, None), |l| (l.instrument.clone(), l.mark))
    }
    fn terms_and_mark(&self, symbol: &Symbol) -> (Option<InstrumentTerms>, Option<Mark>) {
        self.symbols.get(symbol).map_or((None, None), |l| {
            (l.instrument.as_ref().map(|i| *i.terms()), l.mark)
        })
    }
}

#[derive(Debug)]
struct AccountEntry {
    snapshot: AccountSnapshot,
    last_seq: u64,
    exposure: ExposureCache,
}

/// A check on a held account: the exposure comes from the account's cache, and an
/// accepted order is remembered for the duplicate and rate controls (and reserved when
/// asked) under the same entry lock as the check.
struct Booking<'a> {
    snapshot: &'a mut AccountSnapshot,
    exposure: &'a mut ExposureCache,
    /// The market epoch read before the check.
    epoch: u64,
    config: &'a Arc<RiskConfig>,
    reserve: bool,
}

impl pretrade::Ledger for Booking<'_> {
    fn parts(&mut self) -> (Option<&AccountSnapshot>, ExposureSource<'_>) {
        let source = ExposureSource::Cache {
            cache: &mut *self.exposure,
            epoch: self.epoch,
            config: self.config,
        };
        (Some(&*self.snapshot), source)
    }

    fn accepted(
        &mut self,
        request: &CheckRequest,
        now: DateTime<Utc>,
        hold: Option<Hold>,
        id_hash: Option<IdHash>,
    ) {
        let recent = &mut self.snapshot.recent_orders;
        recent.prune(pretrade::cutoff(now, self.config.limits.history_horizon()));
        // The duplicate phase hashed the id in this same history (the entry lock is held).
        let hash = id_hash.unwrap_or_else(|| recent.id_hash(&request.order_id));
        recent.push_hashed(request.order_id.clone(), now, hash);
        if let (true, Some(hold)) = (self.reserve, hold) {
            let reservation = Reservation {
                order_id: request.order_id.clone(),
                amount: hold.amount,
                notional: hold.notional,
            };
            self.exposure.add_reservation(&reservation);
            self.snapshot.reservations.push(reservation);
        }
    }
}

/// Shards of the account map. A check holds its account's shard write lock, so checks on
/// two accounts that share a shard run one at a time; dashmap's default (four per core,
/// 8 on two cores) makes that one chance in 8 for any two accounts, this one in 64, for
/// 64 cache-padded locks (8 KiB).
const ACCOUNT_SHARDS: usize = 64;

/// The concurrent risk engine. `Send + Sync`: share it behind an `Arc`.
#[derive(Debug)]
pub struct RiskEngine {
    config: ArcSwap<RiskConfig>,
    accounts: DashMap<AccountId, AccountEntry, RandomState>,
    market: MarketState,
}

impl RiskEngine {
    /// An engine with `config`, no accounts and an empty market.
    ///
    /// # Errors
    /// [`ConfigError`] when the config does not validate.
    pub fn new(config: RiskConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            config: ArcSwap::from_pointee(config),
            accounts: DashMap::with_hasher_and_shard_amount(RandomState::default(), ACCOUNT_SHARDS),
            market: MarketState::default(),
        })
    }

    /// The config in force.
    #[must_use]
    pub fn config(&self) -> Arc<RiskConfig> {
        self.config.load_full()
    }

    /// Replaces the config atomically; checks already running finish on the old one.
    ///
    /// # Errors
    /// [`ConfigError`] when `config` does not validate; the old config stays in force.
    pub fn replace_config(&self, config: RiskConfig) -> Result<(), ConfigError> {
        config.validate()?;
        self.config.store(Arc::new(config));
        Ok(())
    }

    /// The market state (a [`MarketView`]).
    #[must_use]
    pub fn market(&self) -> &MarketState {
        &self.market
    }

    /// A copy of an account's current state, with the last applied sequence.
    #[must_use]
    pub fn account(&self, account_id: &AccountId) -> Option<(AccountSnapshot, u64)> {
        self.accounts
            .get(account_id)
            .map(|e| (e.snapshot.clone(), e.last_seq))
    }

    /// Rewrites the risk profiles of the accounts held, in place, for a config store that
    /// owns profiles per user: `update` sees each account's owner and profile and returns
    /// whether it changed the profile. Sequences do not advance (a store is not the
    /// account's event source); a changed account's cached exposure is dropped. Returns
    /// the number of accounts changed.
    pub fn update_profiles(
        &self,
        mut update: impl FnMut(&UserId, &mut RiskProfile) -> bool,
    ) -> usize {
        let mut changed: usize = 0;
        for mut entry in self.accounts.iter_mut() {
            let AccountEntry {
                snapshot, exposure, ..
            } = &mut *entry;
            if update(&snapshot.user_id, &mut snapshot.profile) {
                exposure.clear();
                changed = changed.saturating_add(1);
            }
        }
        changed
    }

    /// The number of accounts held.
    #[must_use]
    pub fn account_count(&self) -> usize {
        self.accounts.len()
    }

    /// Checks an order. An accepted order is remembered for the duplicate-id and
    /// order-rate controls; no margin is reserved.
    pub fn check(&self, request: &CheckRequest, now: DateTime<Utc>) -> CheckResponse {
        self.check_inner(request, now, false)
    }

    /// Checks an order and, when it is accepted, reserves its initial margin and exposure
    /// atomically with the check, so concurrent checks on the account see it. The
    /// reservation is released by [`AccountEvent::OrderOpened`],
    /// [`AccountEvent::OrderFilled`], [`AccountEvent::OrderCancelled`] or
    /// [`AccountEvent::ReservationReleased`] for the same order id.
    pub fn check_and_reserve(&self, request: &CheckRequest, now: DateTime<Utc>) -> CheckResponse {
        self.check_inner(request, now, true)
    }

    fn check_inner(
        &self,
        request: &CheckRequest,
        now: DateTime<Utc>,
        reserve: bool,
    ) -> CheckResponse {
        let config = self.config.load();
        let Some(mut entry) = self.accounts.get_mut(&request.account_id) else {
            return pretrade::check(&config, None, &self.market, request, now);
        };
        // Read the epoch before pricing: a mark that lands meanwhile makes the next
        // check recompute, never this one reuse a stale exposure.
        let epoch = self.market.epoch.load(Ordering::Acquire);
        let AccountEntry {
            snapshot, exposure, ..
        } = &mut *entry;
        let booking = Booking {
            snapshot,
            exposure,
            epoch,
            config: &config,
            reserve,
        };
        pretrade::check_with::<true, _, _>(&config, booking, &self.market, request, now)
    }

    /// Applies one event.
    ///
    /// # Errors
    /// [`EventError`] when the event cannot apply; nothing changes.
    pub fn apply(&self, event: &EngineEvent) -> Result<Applied, EventError> {
        self.apply_with_seq(event).map(|(applied, _)| applied)
    }

    /// Applies one event and returns, with the outcome, the account's last applied
    /// sequence as this apply left it (`None` for a market event): read under the same
    /// lock as the apply, so a concurrent later event cannot show through.
    ///
    /// # Errors
    /// [`EventError`] when the event cannot apply; nothing changes.
    pub fn apply_with_seq(
        &self,
        event: &EngineEvent,
    ) -> Result<(Applied, Option<u64>), EventError> {
        match event {
            EngineEvent::Market(event) => Ok((self.apply_market(event), None)),
            EngineEvent::Account {
                account_id,
                seq,
                event,
            } => self
                .apply_account(account_id, seq.get(), event)
                .map(|(applied, last)| (applied, Some(last))),
        }
    }

    /// Refuses a symbol that is not a listed instrument.
    fn known_symbol(&self, symbol: &Symbol) -> Result<(), EventError> {
        if self
            .market
            .symbols
            .get(symbol)
            .is_some_and(|l| l.instrument.is_some())
        {
            Ok(())
        } else {
            Err(EventError::UnknownSymbol(symbol.clone()))
        }
    }

    fn apply_market(&self, event: &MarketEvent) -> Applied {
        match event {
            MarketEvent::Mark { symbol, price, at } => {
                let mut listing = self.market.symbols.entry(symbol.clone()).or_default();
                if listing.mark.is_some_and(|held| held.at >= *at) {
                    return Applied::Stale;
                }
                listing.mark = Some(Mark {
                    price: *price,
                    at: *at,
                });
                self.market.bump_epoch()
            }
            MarketEvent::Instrument(instrument) => {
                self.market
                    .symbols
                    .entry(instrument.symbol().clone())
                    .or_default()
                    .instrument = Some(instrument.clone());
                self.market.bump_epoch()
            }
            MarketEvent::GlobalTradingState(state) => {
                self.market.global.store(*state as u8, Ordering::Release);
                Applied::Applied
            }
        }
    }

    fn apply_account(
        &self,
        account_id: &AccountId,
        seq: u64,
        event: &AccountEvent,
    ) -> Result<(Applied, u64), EventError> {
        if let AccountEvent::ProfileUpsert { user_id, profile } = event {
            let mut entry =
                self.accounts
                    .entry(account_id.clone())
                    .or_insert_with(|| AccountEntry {
                        snapshot: AccountSnapshot::new(
                            account_id.clone(),
                            user_id.clone(),
                            profile.clone(),
                        ),
                        last_seq: 0,
                        exposure: ExposureCache::default(),
                    });
            if seq <= entry.last_seq && entry.last_seq != 0 {
                let last_seq = entry.last_seq;
                return Ok((Applied::Duplicate { last_seq }, last_seq));
            }
            entry.snapshot.user_id = user_id.clone();
            entry.snapshot.profile = profile.clone();
            entry.last_seq = seq;
            entry.exposure.clear();
            return Ok((Applied::Applied, seq));
        }
        let mut entry = self
            .accounts
            .get_mut(account_id)
            .ok_or_else(|| EventError::UnknownAccount(account_id.clone()))?;
        if seq <= entry.last_seq {
            let last_seq = entry.last_seq;
            return Ok((Applied::Duplicate { last_seq }, last_seq));
        }
        // Every arm validates before it changes anything, so a refused event leaves no trace.
        let account = &mut entry.snapshot;
        match event {
            AccountEvent::ProfileUpsert { .. } => {} // handled above
            AccountEvent::BalanceChange { delta } => {
                account.wallet_balance = account.wallet_balance.checked_add(*delta)?;
            }
            AccountEvent::PositionUpdate {
                symbol,
                size,
                entry_price,
                leverage,
            } => {
                self.known_symbol(symbol)?;
                account.positions.retain(|p| &p.symbol != symbol);
                if !size.get().is_zero() {
                    account.positions.push(Position {
                        symbol: symbol.clone(),
                        size: *size,
                        entry_price: *entry_price,
                        leverage: *leverage,
                    });
                }
            }
            AccountEvent::OrderOpened(order) => {
                self.known_symbol(&order.symbol)?;
                if account
                    .open_orders
                    .iter()
                    .any(|o| o.order_id == order.order_id)
                {
                    return Err(EventError::OrderAlreadyOpen(order.order_id.clone()));
                }
                account
                    .reservations
                    .retain(|r| r.order_id != order.order_id);
                account.open_orders.push(order.clone());
            }
            AccountEvent::OrderCancelled { order_id } => {
                account.open_orders.retain(|o| &o.order_id != order_id);
                account.reservations.retain(|r| &r.order_id != order_id);
            }
            AccountEvent::OrderFilled {
                order_id,
                symbol,
                side,
                quantity,
                price,
                leverage,
            } => {
                let multiplier = self
                    .market
                    .contract_multiplier(symbol)
                    .ok_or_else(|| EventError::UnknownSymbol(symbol.clone()))?;
                apply_fill(
                    account, order_id, symbol, *side, *quantity, *price, *leverage, multiplier,
                )?;
            }
            AccountEvent::TradingState(state) => account.profile.trading_state = *state,
            AccountEvent::ReservationReleased { order_id } => {
                account.reservations.retain(|r| &r.order_id != order_id)
            }
        }
        entry.last_seq = seq;
        entry.exposure.clear();
        Ok((Applied::Applied, seq))
    }
}

/// Applies a fill to the resting order, the reservation, the position and the wallet.
/// Validates everything before changing anything.
#[allow(clippy::too_many_arguments)]
fn apply_fill(
    account: &mut AccountSnapshot,
    order_id: &OrderId,
    symbol: &Symbol,
    side: Side,
    quantity: Quantity,
    price: Price,
    leverage: Leverage,
    multiplier: Multiplier,
) -> Result<(), EventError> {
    use num::{add, div, mul, sub};
    let resting = account
        .open_orders
        .iter()
        .position(|o| &o.order_id == order_id);
    if let Some(i) = resting {
        let o = &account.open_orders[i];
        let problem = if &o.symbol != symbol {
            Some(format!("symbol {} vs {}", symbol, o.symbol))
        } else if o.side != side {
            Some(format!("side {} vs {}", side, o.side))
        } else if quantity > o.quantity {
            Some(format!(
                "fill quantity {} exceeds the resting {}",
                quantity, o.quantity
            ))
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(EventError::FillMismatch {
                order_id: order_id.clone(),
                problem,
            });
        }
    }
    let old = account.position(symbol).cloned();
    let size = old.as_ref().map_or(Decimal::ZERO, |p| p.size.get());
    let q = mul(side.sign(), quantity.get(), "fill")?;
    let new_size = add(size, q, "position size")?;
    let (entry, realized) = match &old {
        None => (price.get(), Decimal::ZERO),
        Some(p) if size.is_sign_negative() == q.is_sign_negative() => {
            // Increase: average the entry.
            let cost = add(
                mul(size.abs(), p.entry_price.get(), "entry")?,
                mul(q.abs(), price.get(), "entry")?,
                "entry",
            )?;
            (div(cost, new_size.abs(), "entry")?, Decimal::ZERO)
        }
        Some(p) => {
            // Reduce, close or flip: realize PnL on the closed part.
            let closed = q.abs().min(size.abs());
            let pnl = mul(
                mul(
                    mul(closed, sub(price.get(), p.entry_price.get(), "pnl")?, "pnl")?,
                    if size.is_sign_negative() {
                        Decimal::NEGATIVE_ONE
                    } else {
                        Decimal::ONE
                    },
                    "pnl",
                )?,
                multiplier.get(),
                "pnl",
            )?;
            let entry =
                if new_size.is_zero() || new_size.is_sign_negative() == size.is_sign_negative() {
                    p.entry_price.get()
                } else {
                    price.get()
                };
            (entry, pnl)
        }
    };
    let wallet = add(account.wallet_balance.get(), realized, "wallet balance")?;
    // The fill was checked against the resting quantity above.
    let remaining = resting.map_or(Quantity::ZERO, |i| {
        account.open_orders[i].quantity.saturating_sub(quantity)
    });
    // Validated: now change.
    if let Some(i) = resting {
        if remaining.is_zero() {
            account.open_orders.remove(i);
        } else {
            account.open_orders[i].quantity = remaining;
        }
    }
    account.reservations.retain(|r| &r.order_id != order_id);
    account.wallet_balance = Money::from_decimal(wallet);
    account.positions.retain(|p| &p.symbol != symbol);
    if !new_size.is_zero() {
        account.positions.push(Position {
            symbol: symbol.clone(),
            size: SignedQuantity::from_decimal(new_size),
            entry_price: Price::new(entry).unwrap_or(price),
            leverage: old.map_or(leverage, |p| p.leverage),
        });
    }
    Ok(())
}
