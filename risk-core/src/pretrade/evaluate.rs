//! The check itself: one pure function that resolves the order's context once, prices
//! it once, and runs the phases of the design notes as small named steps over the two.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::account::{AccountSnapshot, IdHash};
use crate::config::{CheckLimits, RiskConfig};
use crate::fixed::Fx;
use crate::margin::TierLadder;
use crate::market::{InstrumentFx, InstrumentTerms, Mark, MarketView};
use crate::model::{Decision, OrderType, RejectReason, RuleAction, Side, TradingState};
use crate::num::{
    cmp_decimal, is_multiple, ArithmeticError, Leverage, Money, Notional, Price, Quantity, Ratio,
    SignedQuantity,
};
use crate::pretrade::exposure::{AccountExposure, ExposureCache, Stop};
use crate::pretrade::message::Detail;
use crate::pretrade::request::ValidOrder;
use crate::pretrade::{CheckMessage, CheckMetrics, CheckRequest, CheckResponse};
use crate::rules::RuleHits;
use crate::Decimal;

/// Runs a pre-trade check: a pure function of the config, the account (if known), the
/// market, the request and `now`.
///
/// Phases run cheapest and most certain first; the first failing phase decides the
/// reject reason, but the order is still priced and rules still evaluated whenever the
/// data allows, so `rule_hits` and `metrics` explain a reject too:
///
/// 1. validate the request (`INVALID_REQUEST`)
/// 2. resolve account and instrument (`UNKNOWN_ACCOUNT`, `UNKNOWN_SYMBOL`)
/// 3. kill switch at global, account and symbol level (`TRADING_HALTED`,
///    `INSTRUMENT_NOT_TRADING`), frozen account (`USER_FROZEN`), KYC (`KYC_INSUFFICIENT`)
/// 4. duplicate order id and order rate (`DUPLICATE_ORDER`, `RATE_LIMITED`)
/// 5. mark freshness for the order's symbol and every position (`STALE_DATA`)
/// 6. reduce-only (`REDUCE_ONLY_VIOLATION`)
/// 7. order limits: min quantity, lot and tick multiples (`INVALID_REQUEST`), max
///    quantity (`MAX_ORDER_SIZE_EXCEEDED`), price band against the mark (`PRICE_OUT_OF_BAND`)
/// 8. leverage against min(profile, instrument, tier cap at the projected notional)
///    (`MAX_LEVERAGE_EXCEEDED`)
/// 9. projected exposure against the profile's limit (`EXPOSURE_LIMIT_EXCEEDED`)
/// 10. required initial margin against available margin (`INSUFFICIENT_MARGIN`)
/// 11. projected margin ratio (`LIQUIDATION_RISK`; a margin-call flag below that)
/// 12. dynamic rules (`RISK_RULE_VIOLATION` for REJECT rules, `FLAGGED` for WARN rules)
///
/// An order that only reduces a position (its opening quantity is zero) skips phases 8
/// to 11: it needs no margin and adds no exposure. Any arithmetic overflow is
/// `INVALID_REQUEST`; nothing here panics.
pub fn check<M: MarketView + ?Sized>(
    config: &RiskConfig,
    account: Option<&AccountSnapshot>,
    market: &M,
    request: &CheckRequest,
    now: DateTime<Utc>,
) -> CheckResponse {
    check_with::<true, M, _>(config, account, market, request, now)
}

/// [`check`] with `Decimal`'s own comparison where [`check`] screens and compares rule
/// thresholds as integers prepared when the rule set was built
/// ([`crate::rules::RuleSet::evaluate`]). It is the reference the fast path is held to
/// (same response, to the last digit of every figure); use [`check`].
pub fn check_reference<M: MarketView + ?Sized>(
    config: &RiskConfig,
    account: Option<&AccountSnapshot>,
    market: &M,
    request: &CheckRequest,
    now: DateTime<Utc>,
) -> CheckResponse {
    check_with::<false, M, _>(config, account, market, request, now)
}

/// Where the account's exposure comes from: computed for this check, or the engine's
/// per-account cache for the current market epoch and config.
pub(crate) enum ExposureSource<'a> {
    /// Price every position now (the pure check).
    Compute,
    /// Use, or fill, the engine's cache.
    Cache {
        /// The account's cache.
        cache: &'a mut ExposureCache,
        /// The market epoch read before the check.
        epoch: u64,
        /// The config in force, as held by the engine.
        config: &'a Arc<RiskConfig>,
    },
}

/// `now - horizon`, or the earliest representable time when that would overflow: `now`
/// comes from the caller and may lie anywhere in chrono's range.
pub(crate) fn cutoff(now: DateTime<Utc>, horizon: chrono::TimeDelta) -> DateTime<Utc> {
    use chrono::Timelike;
    // The common case, a horizon of milliseconds to minutes that ends on the same day
    // (and `now` not in a leap second): the time of day moves back, the date stays, with
    // none of the calendar arithmetic of `checked_sub_signed`, which gives the same. The
    // UTC fields are read from the naive value (`DateTime`'s own accessors first apply
    // the zero offset through that same calendar arithmetic).
    const NANOS: i64 = 1_000_000_000;
    let naive = now.naive_utc();
    let time = naive.time();
    let of_day = i64::from(time.num_seconds_from_midnight())
        .checked_mul(NANOS)
        .and_then(|n| n.checked_add(i64::from(time.nanosecond())));
    let same_day = of_day
        .zip(horizon.num_nanoseconds())
        .filter(|&(_, h)| h >= 0 && time.nanosecond() < 1_000_000_000)
        .and_then(|(of_day, h)| of_day.checked_sub(h))
        .filter(|&left| left >= 0)
        .and_then(|left| {
            let secs = u32::try_from(left.checked_div(NANOS)?).ok()?;
            let nanos = u32::try_from(left.checked_rem(NANOS)?).ok()?;
            chrono::NaiveTime::from_num_seconds_from_midnight_opt(secs, nanos)
        });
    match same_day {
        Some(time) => naive.date().and_time(time).and_utc(),
        None => now
            .checked_sub_signed(horizon)
            .unwrap_or(DateTime::<Utc>::MIN_UTC),
    }
}

/// The margin and exposure an order holds from its approval until the order service
/// confirms it: its initial margin and opening notional, as the check priced them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hold {
    /// The initial margin.
    pub amount: Money,
    /// The opening notional.
    pub notional: Notional,
}

/// The account side of a check: the snapshot the phases read, where its exposure comes
/// from, and what an accepted order records.
pub(crate) trait Ledger {
    /// The account (if known) and its exposure source, for the phases.
    fn parts(&mut self) -> (Option<&AccountSnapshot>, ExposureSource<'_>);
    /// Records an accepted order, with what it would hold if reserved (`None` when it was
    /// not priced or opens nothing) and its id's hash in the account's recent orders, as
    /// the duplicate phase worked it out (`None` when that phase did not run).
    fn accepted(
        &mut self,
        request: &CheckRequest,
        now: DateTime<Utc>,
        hold: Option<Hold>,
        id_hash: Option<IdHash>,
    );
}

/// The pure check's account: read only, its exposure computed, nothing recorded.
impl Ledger for Option<&AccountSnapshot> {
    fn parts(&mut self) -> (Option<&AccountSnapshot>, ExposureSource<'_>) {
        (*self, ExposureSource::Compute)
    }

    fn accepted(&mut self, _: &CheckRequest, _: DateTime<Utc>, _: Option<Hold>, _: Option<IdHash>) {
    }
}

/// [`check`] over a [`Ledger`]: the phases read its parts, and an accepted order is
/// recorded through it before the response is returned. The response is returned from
/// here alone, so that a caller which returns it in turn (the engine) needs no copy.
pub(crate) fn check_with<const FIXED: bool, M: MarketView + ?Sized, L: Ledger>(
    config: &RiskConfig,
    mut ledger: L,
    market: &M,
    request: &CheckRequest,
    now: DateTime<Utc>,
) -> CheckResponse {
    let mut response = CheckResponse {
        decision: Decision::Approved,
        reject_reason: None,
        message: CheckMessage::from_static("approved"),
        liquidation_risk: false,
        margin_call: false,
        rule_hits: RuleHits::new(),
        trace_id: request.trace_id.clone(),
        account_id: request.account_id.clone(),
        order_id: request.order_id.clone(),
        symbol: request.symbol.clone(),
        checked_at: now,
        metrics: None,
    };
    let mut gate = Gate::default();
    let mut id_hash = None;
    let hold = {
        let (account, source) = ledger.parts();
        run_phases::<FIXED, M>(
            config,
            account,
            market,
            request,
            now,
            source,
            &mut gate,
            &mut response,
            &mut id_hash,
        )
    };
    if let Some((reason, message)) = gate.first {
        response.decision = Decision::Rejected;
        response.reject_reason = Some(reason);
        response.message = message;
    } else if response
        .rule_hits
        .iter()
        .any(|h| h.action == RuleAction::Warn)
    {
        response.decision = Decision::Flagged;
        response.message = CheckMessage::from_static("approved with warnings: see rule_hits");
    }
    if response.is_accepted() {
        ledger.accepted(request, now, hold, id_hash);
    }
    response
}

/// Remembers the first failure only: the phase that decides the reject reason.
#[derive(Default)]
struct Gate {
    first: Option<(RejectReason, CheckMessage)>,
}

impl Gate {
    /// Records a failure unless an earlier phase already failed (the message is only
    /// built when it is kept; it holds the figures, and is written out when displayed).
    fn fail(&mut self, reason: RejectReason, message: impl FnOnce() -> CheckMessage) {
        if self.first.is_none() {
            self.first = Some((reason, message()));
        }
    }

    /// Records a stop (a phase that could not go on).
    fn stop(&mut self, Stop(reason, message): Stop) {
        self.fail(reason, || message);
    }
}

/// What the phases know about the order once its account and instrument are resolved
/// (phase 2). Each figure is read from the snapshots once, here.
struct OrderContext<'a> {
    request: &'a CheckRequest,
    order: ValidOrder,
    account: &'a AccountSnapshot,
    /// What the check reads of the instrument, copied out under the market's lookup.
    instrument: InstrumentTerms,
    /// The order's mark, read with the instrument (phase 5 judges it).
    mark: Option<Mark>,
    /// The margin ladder of the order's symbol.
    ladder: &'a TierLadder,
    /// The account's position in the order's symbol (zero when flat).
    position: SignedQuantity,
    /// The part of the order that opens or increases a position; the rest closes an
    /// opposite position.
    opening_quantity: Quantity,
    /// The order only closes: nothing opens and something closes.
    reduces: bool,
}

impl OrderContext<'_> {
    /// Whether any part of the order opens a position: only then do leverage, exposure,
    /// margin and margin-ratio limits apply.
    fn opens(&self) -> bool {
        !self.opening_quantity.is_zero()
    }
}

/// The order priced at the marks on top of the account's exposure (phase 5 and the
/// arithmetic of phases 7-11), computed once for every later phase and the metrics.
struct PricingContext {
    mark: Price,
    /// The limit price, or the mark widened by the market slippage buffer.
    order_price: Price,
    order_notional: Notional,
    opening_notional: Notional,
    projected_position_notional: Notional,
    max_leverage_allowed: Leverage,
    required_initial_margin: Money,
    margin_balance: Money,
    available_margin: Money,
    exposure_limit: Notional,
    projected_exposure: Notional,
    exposure_utilization: Option<Ratio>,
    projected_maintenance_margin: Money,
    projected_margin_balance: Money,
    /// `None`: the projected margin balance is not positive while margin is owed.
    projected_margin_ratio: Option<Decimal>,
    price_deviation: Ratio,
    /// The limit comparisons of phases 8-10, made where the figures are at hand (on
    /// integers in [`price_fixed`]): the order's leverage above `max_leverage_allowed`,
    /// the projected exposure above the limit, the required margin above the available.
    over: Over,
}

/// Which of the limits of phases 8-10 the priced order exceeds (see [`PricingContext`]).
#[derive(Clone, Copy)]
struct Over {
    leverage: bool,
    exposure: bool,
    margin: bool,
}

/// The phases in order. Phases 1 and 2 end the check when they fail; later phases record
/// their failure and the check goes on as far as the data allows, so that `rule_hits`
/// and `metrics` explain a reject too.
#[allow(clippy::too_many_arguments)]
fn run_phases<const FIXED: bool, M: MarketView + ?Sized>(
    config: &RiskConfig,
    account: Option<&AccountSnapshot>,
    market: &M,
    request: &CheckRequest,
    now: DateTime<Utc>,
    source: ExposureSource<'_>,
    gate: &mut Gate,
    response: &mut CheckResponse,
    id_hash: &mut Option<IdHash>,
) -> Option<Hold> {
    let limits = &config.limits;
    let order = match request.validate() {
        Ok(order) => order,
        Err(message) => {
            gate.fail(RejectReason::InvalidRequest, || message);
            return None;
        }
    };
    let ctx = match resolve(config, account, market, request, order) {
        Ok(ctx) => ctx,
        Err(stop) => {
            gate.stop(stop);
            return None;
        }
    };
    check_trading_state(&ctx, market.global_state(), limits, gate);
    check_account_state(&ctx, gate);
    *id_hash = Some(check_duplicate(&ctx, limits, now, gate));
    check_rate_limit(&ctx, limits, now, gate);
    // Phases 5-11 need prices; reduce-only and the static order limits do not but keep
    // their place in the order, so price first (freshness decides there) and remember
    // a stop.
    let priced = with_exposure(source, config, ctx.account, market, |exposure| {
        let mark = check_freshness(&ctx, exposure, limits, now)?;
        // The fixed-point step where every figure fits it; `Decimal` otherwise, and always
        // for the reference.
        let fast = if FIXED {
            price_fixed(&ctx, exposure, mark, limits)
        } else {
            None
        };
        match fast {
            Some(pricing) => Ok(pricing),
            None => Ok(price(&ctx, exposure, mark, limits)?),
        }
    });
    let priced = priced.map_err(|stop| gate.stop(stop)).ok();
    check_reduce_only(&ctx, gate);
    check_order_limits::<FIXED>(&ctx, gate);
    let pricing = priced?;
    check_price_band(&ctx, &pricing, gate);
    check_leverage(&ctx, &pricing, gate);
    check_exposure(&ctx, &pricing, gate);
    check_margin(&ctx, &pricing, gate);
    (response.liquidation_risk, response.margin_call) =
        check_margin_ratio(&ctx, &pricing, limits, gate);
    // Built in its place in the response, not moved there after the rules read it.
    let metrics = response.metrics.insert(metrics(&ctx, &pricing));
    check_rules::<FIXED>(config, &ctx, metrics, &mut response.rule_hits, gate);
    (!pricing.opening_notional.is_zero()).then_some(Hold {
        amount: pricing.required_initial_margin,
        notional: pricing.opening_notional,
    })
}

/// Phase 2: the account (owned by the request's user) and the instrument, and what the
/// order does to the account's position in it.
#[inline]
fn resolve<'a, M: MarketView + ?Sized>(
    config: &'a RiskConfig,
    account: Option<&'a AccountSnapshot>,
    market: &M,
    request: &'a CheckRequest,
    order: ValidOrder,
) -> Result<OrderContext<'a>, Stop> {
    let Some(account) = account else {
        return Err(Stop(
            RejectReason::UnknownAccount,
            CheckMessage::from(Detail::UnknownAccount(request.account_id.clone())),
        ));
    };
    if account.user_id != request.user_id {
        return Err(Stop(
            RejectReason::InvalidRequest,
            CheckMessage::from(Detail::NotOwner(
                request.account_id.clone(),
                request.user_id.clone(),
            )),
        ));
    }
    let (instrument, mark) = market.terms_and_mark(&request.symbol);
    let Some(instrument) = instrument else {
        return Err(Stop(
            RejectReason::UnknownSymbol,
            CheckMessage::from(Detail::UnknownSymbol(request.symbol.clone())),
        ));
    };
    let position = account.position_size(&request.symbol);
    // The part of the order that closes an opposite position; the rest opens.
    let closable = if position.is_short() == (request.side == Side::Buy) {
        position.abs()
    } else {
        Quantity::ZERO
    };
    let opening_quantity = order.quantity.saturating_sub(closable);
    Ok(OrderContext {
        request,
        order,
        account,
        instrument,
        mark,
        ladder: config.ladder(&request.symbol),
        position,
        opening_quantity,
        reduces: opening_quantity.is_zero() && !closable.is_zero(),
    })
}

/// Phase 3, kill switch: the strictest of the global, account and symbol trading states
/// (`TRADING_HALTED`, `INSTRUMENT_NOT_TRADING`).
#[inline]
fn check_trading_state(
    ctx: &OrderContext<'_>,
    global: TradingState,
    limits: &CheckLimits,
    gate: &mut Gate,
) {
    let levels = [
        ("global", global),
        ("account", ctx.account.profile.trading_state),
        ("symbol", ctx.instrument.status().trading_state()),
    ];
    let strictest = levels
        .iter()
        .map(|(_, s)| *s)
        .max()
        .unwrap_or(TradingState::Active);
    let allowed = match strictest {
        TradingState::Active => true,
        TradingState::Reducing => ctx.reduces,
        TradingState::Halted => limits.halted_allows_exits() && ctx.reduces,
    };
    if allowed {
        return;
    }
    let level = levels
        .iter()
        .find(|(_, s)| *s == strictest)
        .map_or("global", |(l, _)| *l);
    let reason = if level == "symbol" {
        RejectReason::InstrumentNotTrading
    } else {
        RejectReason::TradingHalted
    };
    gate.fail(reason, || {
        CheckMessage::from(Detail::TradingState(level, strictest))
    });
}

/// Phase 3, account state: frozen (`USER_FROZEN`) and KYC (`KYC_INSUFFICIENT`).
#[inline]
fn check_account_state(ctx: &OrderContext<'_>, gate: &mut Gate) {
    let profile = &ctx.account.profile;
    if profile.frozen {
        gate.fail(RejectReason::UserFrozen, || {
            CheckMessage::from(Detail::Frozen(ctx.account.account_id.clone()))
        });
    }
    if profile.kyc_level < ctx.instrument.required_kyc() {
        gate.fail(RejectReason::KycInsufficient, || {
            CheckMessage::from(Detail::Kyc {
                symbol: ctx.request.symbol.clone(),
                required: ctx.instrument.required_kyc(),
                held: profile.kyc_level,
            })
        });
    }
}

/// Phase 4: the order id is new within the duplicate horizon, among resting orders and
/// among reservations (`DUPLICATE_ORDER`). Returns the id's hash in the account's recent
/// orders, for recording the order if it is accepted.
#[inline]
fn check_duplicate(
    ctx: &OrderContext<'_>,
    limits: &CheckLimits,
    now: DateTime<Utc>,
    gate: &mut Gate,
) -> IdHash {
    let id = &ctx.request.order_id;
    let account = ctx.account;
    let hash = account.recent_orders.id_hash(id);
    // `now` is the caller's: near the start of time the cutoff saturates instead of
    // overflowing (everything seen so far is then inside the window).
    let duplicate =
        account
            .recent_orders
            .seen_after_hashed(id, hash, cutoff(now, limits.duplicate_horizon()))
            || account.open_orders.iter().any(|o| &o.order_id == id)
            || account.reservations.iter().any(|r| &r.order_id == id);
    if duplicate {
        gate.fail(RejectReason::DuplicateOrder, || {
            CheckMessage::from(Detail::Duplicate(id.clone()))
        });
    }
    hash
}

/// Phase 4: the account's order rate within the window (`RATE_LIMITED`).
#[inline]
fn check_rate_limit(
    ctx: &OrderContext<'_>,
    limits: &CheckLimits,
    now: DateTime<Utc>,
    gate: &mut Gate,
) {
    let Some(rate) = limits.rate_limit() else {
        return;
    };
    let max = rate.max_orders as usize;
    let recent = ctx
        .account
        .recent_orders
        .count_after(cutoff(now, rate.window()), max);
    if recent >= max {
        gate.fail(RejectReason::RateLimited, || {
            CheckMessage::from(Detail::RateLimited {
                recent,
                window_ms: rate.window_ms,
                max_orders: rate.max_orders,
            })
        });
    }
}

/// The account's exposure from `source`, handed to `f`.
#[inline]
fn with_exposure<M: MarketView + ?Sized, T>(
    source: ExposureSource<'_>,
    config: &RiskConfig,
    account: &AccountSnapshot,
    market: &M,
    f: impl FnOnce(&AccountExposure) -> Result<T, Stop>,
) -> Result<T, Stop> {
    match source {
        ExposureSource::Compute => {
            AccountExposure::compute(config, account, market).and_then(|e| f(&e))
        }
        ExposureSource::Cache {
            cache,
            epoch,
            config: held,
        } => cache
            .get_or_compute(epoch, held, || {
                AccountExposure::compute(config, account, market)
            })
            .and_then(f),
    }
}

/// Phase 5: the order's mark and every mark the exposure used are fresh (`STALE_DATA`).
/// Returns the order's mark.
#[inline]
fn check_freshness(
    ctx: &OrderContext<'_>,
    exposure: &AccountExposure,
    limits: &CheckLimits,
    now: DateTime<Utc>,
) -> Result<Price, Stop> {
    let symbol = &ctx.request.symbol;
    let max_age = limits.max_mark_age();
    // `now - at > max_age` exactly when `at < now - max_age`: one subtraction for every
    // mark (the age itself is only worked out for the message). Near the start of time
    // the cutoff saturates, and no mark is then older than the limit, as before.
    let stale_before = cutoff(now, max_age);
    let fresh = |symbol: &crate::ids::Symbol, at: DateTime<Utc>| -> Result<(), Stop> {
        if at < stale_before {
            let age = now.signed_duration_since(at);
            return Err(Stop(
                RejectReason::StaleData,
                CheckMessage::from(Detail::StaleMark {
                    symbol: symbol.clone(),
                    age_ms: age.num_milliseconds(),
                    max_ms: max_age.num_milliseconds(),
                }),
            ));
        }
        Ok(())
    };
    let mark = ctx.mark.ok_or_else(|| {
        Stop(
            RejectReason::StaleData,
            CheckMessage::from(Detail::NoMark(symbol.clone())),
        )
    })?;
    fresh(symbol, mark.at)?;
    if let Some((at, symbol)) = &exposure.oldest_mark {
        fresh(symbol, *at)?;
    }
    Ok(mark.price)
}

/// The arithmetic of phases 7-11: the order at `mark` on top of `exposure`.
#[inline]
fn price(
    ctx: &OrderContext<'_>,
    exposure: &AccountExposure,
    mark: Price,
    limits: &CheckLimits,
) -> Result<PricingContext, ArithmeticError> {
    let multiplier = ctx.instrument.contract_multiplier();
    let order = &ctx.order;
    let side = ctx.request.side;
    let order_price = match order.limit_price {
        Some(price) => price,
        None => mark.widened(side, limits.market_slippage())?,
    };
    let order_notional = order_price.notional(order.quantity, multiplier)?;
    let opening_notional = order_price.notional(ctx.opening_quantity, multiplier)?;
    let fill = order.quantity.signed(side);
    let projected_size = ctx.position.checked_add(fill)?;
    let projected_position_notional = mark.notional(projected_size.abs(), multiplier)?;
    // Swap this symbol's maintenance margin at the current size for the projected one.
    let current_mm = if ctx.position.is_zero() {
        Money::ZERO
    } else {
        ctx.ladder
            .maintenance_margin(mark.notional(ctx.position.abs(), multiplier)?)?
    };
    // One tier lookup for the projected notional's margin and leverage cap (the
    // subtraction first, so an overflow names what it always named).
    let without_current = exposure.maintenance.checked_sub(current_mm)?;
    let (projected_mm, tier_leverage) = ctx
        .ladder
        .maintenance_margin_and_max_leverage(projected_position_notional)?;
    let projected_maintenance_margin = without_current.checked_add(projected_mm)?;
    let margin_balance = exposure.margin_balance;
    let available_margin = margin_balance
        .checked_sub(exposure.position_im)?
        .checked_sub(exposure.order_im)?;
    let required_initial_margin = opening_notional.margin_at(order.leverage)?;
    let projected_exposure = exposure.gross.checked_add(opening_notional)?;
    let exposure_limit = ctx.account.profile.exposure_limit;
    let exposure_utilization = projected_exposure.share_of(exposure_limit)?;
    let projected_margin_balance =
        margin_balance.checked_add(fill.pnl(order_price, mark, multiplier)?)?;
    let projected_margin_ratio = if projected_maintenance_margin.is_zero() {
        Some(Decimal::ZERO)
    } else if projected_margin_balance <= Money::ZERO {
        None
    } else {
        Some(projected_maintenance_margin.checked_div(projected_margin_balance)?)
    };
    let price_deviation = match order.limit_price {
        Some(price) => price.deviation_from(mark)?,
        None => Ratio::ZERO,
    };
    let max_leverage_allowed = ctx
        .account
        .profile
        .max_leverage
        .min(ctx.instrument.max_leverage())
        .min(tier_leverage);
    Ok(PricingContext {
        mark,
        order_price,
        order_notional,
        opening_notional,
        projected_position_notional,
        max_leverage_allowed,
        required_initial_margin,
        margin_balance,
        available_margin,
        exposure_limit,
        projected_exposure,
        exposure_utilization,
        projected_maintenance_margin,
        projected_margin_balance,
        projected_margin_ratio,
        price_deviation,
        over: Over {
            leverage: order.leverage > max_leverage_allowed,
            exposure: projected_exposure > exposure_limit,
            margin: required_initial_margin > available_margin,
        },
    })
}

/// [`price`] on exact fixed point ([`Fx`]): the same figures to the last digit, each at
/// the scale `Decimal` arithmetic gives it, with the additions, subtractions and
/// multiplications on `i64` mantissas, and the four quotients (initial margin, exposure
/// utilization, margin ratio, price deviation) on integers when they are exact and by
/// `Decimal` when they are not ([`Fx::quotient`]); the leverage caps' minimum and the
/// limit comparisons of phases 8-10 on integers too ([`Fx::cmp_value`]). `None` when a
/// figure falls outside what [`Fx`] computes exactly, or where [`price`] would fail: the
/// caller then runs [`price`], which decides (and names any overflow) as before.
#[inline]
fn price_fixed(
    ctx: &OrderContext<'_>,
    exposure: &AccountExposure,
    mark: Price,
    limits: &CheckLimits,
) -> Option<PricingContext> {
    let instrument = ctx.instrument.fixed()?;
    let profile = exposure.profile?;
    let multiplier = instrument.multiplier();
    let order = &ctx.order;
    let side = ctx.request.side;
    let mark_fx = Fx::new(mark.get())?;
    let notional = |price: Fx, quantity: Fx| price.mul(quantity)?.mul(multiplier);
    let order_price = match order.limit_price {
        Some(price) => Fx::new(price.get())?,
        None => {
            // As `Price::widened`: `mark x (1 + sign x slippage)`, positive.
            let slippage = Fx::new(limits.market_slippage().get())?;
            let factor = Fx::ONE.add(Fx::new(side.sign())?.mul(slippage)?)?;
            let widened = mark_fx.mul(factor)?;
            if !widened.is_positive() {
                return None;
            }
            widened
        }
    };
    let quantity = Fx::new(order.quantity.get())?;
    let order_notional = notional(order_price, quantity)?;
    let opening_notional = notional(order_price, Fx::new(ctx.opening_quantity.get())?)?;
    let fill = match side {
        Side::Buy => quantity,
        Side::Sell => quantity.neg()?,
    };
    let position = Fx::new(ctx.position.get())?;
    let projected_size = position.add(fill)?;
    let projected_position_notional = notional(mark_fx, projected_size.abs()?)?;
    let current_mm = if position.is_zero() {
        Fx::ZERO
    } else {
        ctx.ladder
            .maintenance_margin_fx(notional(mark_fx, position.abs()?)?)?
            .0
    };
    let figures = exposure.fixed?;
    let without_current = figures.maintenance.sub(current_mm)?;
    let (projected_mm, tier_leverage) = ctx
        .ladder
        .maintenance_margin_fx(projected_position_notional)?;
    let projected_maintenance_margin = without_current.add(projected_mm)?;
    let margin_balance = figures.margin_balance;
    let available_margin = margin_balance
        .sub(figures.position_im)?
        .sub(figures.order_im)?;
    let leverage = Fx::new(order.leverage.get())?;
    // An exact quotient stays an integer for the margin comparison below.
    let (required_initial_margin, required_fx) = match opening_notional.div_exact(leverage) {
        Some(q) => (q.get(), Some(q)),
        None => (opening_notional.quotient(leverage)?, None),
    };
    let projected_exposure = figures.gross.add(opening_notional)?;
    let exposure_limit = ctx.account.profile.exposure_limit;
    let limit_fx = profile.exposure_limit;
    let exposure_utilization = if limit_fx.is_zero() {
        None
    } else {
        Some(Ratio::in_range(projected_exposure.quotient(limit_fx)?))
    };
    // As `SignedQuantity::pnl`: `size x (mark - entry) x multiplier`.
    let pnl = fill.mul(mark_fx.sub(order_price)?)?.mul(multiplier)?;
    let projected_margin_balance = margin_balance.add(pnl)?;
    let projected_margin_ratio = if projected_maintenance_margin.is_zero() {
        Some(Decimal::ZERO)
    } else if !projected_margin_balance.is_positive() {
        None
    } else {
        Some(projected_maintenance_margin.quotient(projected_margin_balance)?)
    };
    let price_deviation = match order.limit_price {
        // As `Price::deviation_from`: `|price - mark| / mark`.
        Some(_) => Ratio::in_range(order_price.sub(mark_fx)?.abs()?.quotient(mark_fx)?),
        None => Ratio::ZERO,
    };
    // As `Ord::min` chained in `price`: the first of two equal caps is kept (its scale
    // is what the response shows); compared on integers.
    let min = |a: (Leverage, Fx), b: (Leverage, Fx)| if a.1.cmp_value(b.1).is_gt() { b } else { a };
    let (profile_cap, instrument_cap) = (
        ctx.account.profile.max_leverage,
        ctx.instrument.max_leverage(),
    );
    let (max_leverage_allowed, max_leverage_fx) = min(
        min(
            (profile_cap, profile.max_leverage),
            (instrument_cap, instrument.max_leverage()),
        ),
        tier_leverage,
    );
    Some(PricingContext {
        mark,
        order_price: Price::in_range(order_price.get()),
        order_notional: Notional::in_range(order_notional.get()),
        opening_notional: Notional::in_range(opening_notional.get()),
        projected_position_notional: Notional::in_range(projected_position_notional.get()),
        max_leverage_allowed,
        required_initial_margin: Money::in_range(required_initial_margin),
        margin_balance: exposure.margin_balance,
        available_margin: Money::in_range(available_margin.get()),
        exposure_limit,
        projected_exposure: Notional::in_range(projected_exposure.get()),
        exposure_utilization,
        projected_maintenance_margin: Money::in_range(projected_maintenance_margin.get()),
        projected_margin_balance: Money::in_range(projected_margin_balance.get()),
        projected_margin_ratio,
        price_deviation,
        over: Over {
            leverage: leverage.cmp_value(max_leverage_fx).is_gt(),
            exposure: projected_exposure.cmp_value(limit_fx).is_gt(),
            margin: match required_fx {
                Some(q) => q.cmp_value(available_margin).is_gt(),
                None => cmp_decimal(required_initial_margin, available_margin.get()).is_gt(),
            },
        },
    })
}

/// Phase 6: a reduce-only order must only reduce (`REDUCE_ONLY_VIOLATION`).
#[inline]
fn check_reduce_only(ctx: &OrderContext<'_>, gate: &mut Gate) {
    if ctx.request.reduce_only && !ctx.reduces {
        gate.fail(RejectReason::ReduceOnlyViolation, || {
            CheckMessage::from(Detail::ReduceOnly {
                side: ctx.request.side,
                quantity: ctx.order.quantity.get(),
                position: ctx.position.get(),
            })
        });
    }
}

/// Whether `value` is a whole multiple of `step`: on 64-bit integers ([`Fx`]) when the
/// two fit (`step_fx` is `step` prepared when the instrument entered; `None` in the
/// reference), by [`is_multiple`] otherwise (the same answer either way).
#[inline(always)]
fn multiple(value: Decimal, step: Decimal, step_fx: Option<Fx>) -> bool {
    match (step_fx.and_then(|_| Fx::new(value)), step_fx) {
        (Some(v), Some(s)) => v
            .is_multiple_of(s)
            .unwrap_or_else(|| is_multiple(value, step)),
        _ => is_multiple(value, step),
    }
}

/// Phase 7, static limits: minimum quantity, lot and tick multiples (`INVALID_REQUEST`),
/// maximum quantity (`MAX_ORDER_SIZE_EXCEEDED`).
#[inline]
fn check_order_limits<const FIXED: bool>(ctx: &OrderContext<'_>, gate: &mut Gate) {
    let instrument = &ctx.instrument;
    // The reference reads no prepared figure, so the differential test guards them.
    let fixed = if FIXED { instrument.fixed() } else { None };
    let quantity = ctx.order.quantity;
    if quantity < instrument.min_quantity() {
        gate.fail(RejectReason::InvalidRequest, || {
            CheckMessage::from(Detail::BelowMinQuantity {
                quantity: quantity.get(),
                min: instrument.min_quantity().get(),
                symbol: ctx.request.symbol.clone(),
            })
        });
    }
    if !multiple(
        quantity.get(),
        instrument.lot_size().get(),
        fixed.map(InstrumentFx::lot),
    ) {
        gate.fail(RejectReason::InvalidRequest, || {
            CheckMessage::from(Detail::NotLotMultiple {
                quantity: quantity.get(),
                lot: instrument.lot_size().get(),
            })
        });
    }
    if let Some(price) = ctx.order.limit_price {
        if !multiple(
            price.get(),
            instrument.tick_size().get(),
            fixed.map(InstrumentFx::tick),
        ) {
            gate.fail(RejectReason::InvalidRequest, || {
                CheckMessage::from(Detail::NotTickMultiple {
                    price: price.get(),
                    tick: instrument.tick_size().get(),
                })
            });
        }
    }
    if quantity > instrument.max_quantity() {
        gate.fail(RejectReason::MaxOrderSizeExceeded, || {
            CheckMessage::from(Detail::AboveMaxQuantity {
                quantity: quantity.get(),
                max: instrument.max_quantity().get(),
                symbol: ctx.request.symbol.clone(),
            })
        });
    }
}

/// Phase 7, price band: a limit price within the instrument's band around the mark
/// (`PRICE_OUT_OF_BAND`).
#[inline]
fn check_price_band(ctx: &OrderContext<'_>, pricing: &PricingContext, gate: &mut Gate) {
    let (Some(band), OrderType::Limit) = (ctx.instrument.price_band(), ctx.request.order_type)
    else {
        return;
    };
    if cmp_decimal(pricing.price_deviation.get(), band.get()).is_gt() {
        gate.fail(RejectReason::PriceOutOfBand, || {
            CheckMessage::from(Detail::OutOfBand {
                price: pricing.order_price.get(),
                deviation: pricing.price_deviation.get(),
                mark: pricing.mark.get(),
                band: band.get(),
            })
        });
    }
}

/// Phase 8: the requested leverage within min(profile, instrument, tier cap at the
/// projected notional), and the projected notional within the ladder's open range
/// (`MAX_LEVERAGE_EXCEEDED`).
#[inline]
fn check_leverage(ctx: &OrderContext<'_>, pricing: &PricingContext, gate: &mut Gate) {
    if !ctx.opens() {
        return;
    }
    let projected = pricing.projected_position_notional;
    if pricing.over.leverage {
        gate.fail(RejectReason::MaxLeverageExceeded, || {
            CheckMessage::from(Detail::Leverage {
                leverage: ctx.order.leverage.get(),
                cap: pricing.max_leverage_allowed.get(),
                profile: ctx.account.profile.max_leverage.get(),
                instrument: ctx.instrument.max_leverage().get(),
                projected: projected.get(),
            })
        });
    }
    if !ctx.ladder.is_open_at(projected) {
        gate.fail(RejectReason::MaxLeverageExceeded, || {
            CheckMessage::from(Detail::BeyondLadder {
                projected: projected.get(),
                open_limit: ctx.ladder.open_limit().map(|l| l.get()),
            })
        });
    }
}

/// Phase 9: projected exposure within the profile's limit (`EXPOSURE_LIMIT_EXCEEDED`).
#[inline]
fn check_exposure(ctx: &OrderContext<'_>, pricing: &PricingContext, gate: &mut Gate) {
    if ctx.opens() && pricing.over.exposure {
        gate.fail(RejectReason::ExposureLimitExceeded, || {
            CheckMessage::from(Detail::Exposure {
                projected: pricing.projected_exposure.get(),
                limit: pricing.exposure_limit.get(),
            })
        });
    }
}

/// Phase 10: required initial margin within available margin (`INSUFFICIENT_MARGIN`).
#[inline]
fn check_margin(ctx: &OrderContext<'_>, pricing: &PricingContext, gate: &mut Gate) {
    if ctx.opens() && pricing.over.margin {
        gate.fail(RejectReason::InsufficientMargin, || {
            CheckMessage::from(Detail::Margin {
                required: pricing.required_initial_margin.get(),
                available: pricing.available_margin.get(),
            })
        });
    }
}

/// Phase 11: the projected margin ratio against the liquidation threshold
/// (`LIQUIDATION_RISK`). Returns whether it reaches the liquidation and the margin-call
/// thresholds (an unbounded ratio reaches both), whatever the order does.
#[inline]
fn check_margin_ratio(
    ctx: &OrderContext<'_>,
    pricing: &PricingContext,
    limits: &CheckLimits,
    gate: &mut Gate,
) -> (bool, bool) {
    let ratio = pricing.projected_margin_ratio;
    let liquidation_risk =
        ratio.is_none_or(|r| cmp_decimal(r, limits.liquidation_ratio().get()).is_ge());
    let margin_call =
        ratio.is_none_or(|r| cmp_decimal(r, limits.margin_call_ratio().get()).is_ge());
    if ctx.opens() && liquidation_risk {
        gate.fail(RejectReason::LiquidationRisk, || match ratio {
            Some(r) => CheckMessage::from(Detail::MarginRatio {
                ratio: r,
                threshold: limits.liquidation_ratio().get(),
            }),
            None => CheckMessage::from_static(
                "projected margin balance is not positive while maintenance margin is owed",
            ),
        });
    }
    (liquidation_risk, margin_call)
}

/// Phase 12: dynamic rules; a REJECT rule that fires is `RISK_RULE_VIOLATION` (WARN rules
/// turn an approval into FLAGGED when the decision is made).
#[inline]
fn check_rules<const FIXED: bool>(
    config: &RiskConfig,
    ctx: &OrderContext<'_>,
    metrics: &CheckMetrics,
    hits: &mut RuleHits,
    gate: &mut Gate,
) {
    let (kyc, symbol) = (ctx.account.profile.kyc_level, &ctx.request.symbol);
    if FIXED {
        config.rules.evaluate(metrics, kyc, symbol, hits);
    } else {
        config.rules.evaluate_reference(metrics, kyc, symbol, hits);
    }
    if let Some(hit) = hits.iter().find(|h| h.action == RuleAction::Reject) {
        gate.fail(RejectReason::RiskRuleViolation, || {
            CheckMessage::from(Detail::RuleFired(hit.clone()))
        });
    }
}

/// The figures of the check, as rules and callers see them.
#[inline]
fn metrics(ctx: &OrderContext<'_>, pricing: &PricingContext) -> CheckMetrics {
    let account = ctx.account;
    CheckMetrics {
        mark_price: pricing.mark.get(),
        order_price: pricing.order_price.get(),
        order_quantity: ctx.order.quantity.get(),
        order_notional: pricing.order_notional.get(),
        opening_quantity: ctx.opening_quantity.get(),
        opening_notional: pricing.opening_notional.get(),
        leverage: ctx.order.leverage.get(),
        max_leverage_allowed: pricing.max_leverage_allowed.get(),
        required_initial_margin: pricing.required_initial_margin.get(),
        margin_balance: pricing.margin_balance.get(),
        available_margin: pricing.available_margin.get(),
        projected_position_notional: pricing.projected_position_notional.get(),
        projected_exposure: pricing.projected_exposure.get(),
        exposure_utilization: pricing.exposure_utilization.map(Ratio::get),
        projected_maintenance_margin: pricing.projected_maintenance_margin.get(),
        projected_margin_balance: pricing.projected_margin_balance.get(),
        projected_margin_ratio: pricing.projected_margin_ratio,
        open_orders: Decimal::from(account.open_orders.len()),
        open_positions: Decimal::from(account.positions.len()),
        price_deviation: pricing.price_deviation.get(),
        risk_score: account.profile.risk_score.get(),
    }
}

#[cfg(test)]
mod tests {
    use super::cutoff;
    use chrono::{DateTime, TimeDelta, Utc};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]
        /// The same-day shortcut gives what `checked_sub_signed` gives (saturated at the
        /// start of time): horizons from nothing to days, times near midnight, in leap
        /// seconds and at the ends of chrono's range.
        #[test]
        fn cutoff_is_chrono_subtraction(
            secs in prop_oneof![
                -1_000_000_000_i64..1_000_000_000,
                Just(DateTime::<Utc>::MIN_UTC.timestamp()),
                Just(DateTime::<Utc>::MAX_UTC.timestamp()),
                (0_i64..100_000).prop_map(|d| d.saturating_mul(86_400)),
                (0_i64..100_000).prop_map(|d| d.saturating_mul(86_400).saturating_add(86_399)),
            ],
            nanos in prop_oneof![0_u32..1_000_000_000, 999_999_000_u32..2_000_000_000],
            horizon_ms in prop_oneof![0_i64..1_000, 0_i64..100_000_000, Just(i64::MAX / 1_000_000_000), -1_000_i64..0],
            extra_nanos in 0_i64..1_000_000,
        ) {
            let Some(now) = DateTime::<Utc>::from_timestamp(secs, nanos) else {
                return Ok(());
            };
            let horizon = TimeDelta::milliseconds(horizon_ms);
            let horizon = horizon.checked_add(&TimeDelta::nanoseconds(extra_nanos)).unwrap_or(horizon);
            let want = now
                .checked_sub_signed(horizon)
                .unwrap_or(DateTime::<Utc>::MIN_UTC);
            prop_assert_eq!(cutoff(now, horizon), want, "{} - {}", now, horizon);
        }
    }
}
