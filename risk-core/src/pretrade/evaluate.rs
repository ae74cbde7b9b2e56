//! The check itself: one pure function, phases in the order of the design notes.

use std::borrow::Cow;

use chrono::{DateTime, Utc};

use crate::account::AccountSnapshot;
use crate::config::RiskConfig;
use crate::ids::Symbol;
use crate::margin::TierLadder;
use crate::market::{Instrument, MarketView};
use crate::model::{Decision, OrderType, RejectReason, RuleAction, Side, TradingState};
use crate::num::{self, Notional};
use crate::pretrade::exposure::{maintenance, AccountExposure, ExposureCache, Stop};
use crate::pretrade::{CheckMetrics, CheckRequest, CheckResponse};
use crate::Decimal;
use std::sync::Arc;

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
    check_with(
        config,
        account,
        market,
        request,
        now,
        ExposureSource::Compute,
    )
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
    now.checked_sub_signed(horizon)
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// [`check`] with the account exposure taken from `source`.
pub(crate) fn check_with<M: MarketView + ?Sized>(
    config: &RiskConfig,
    account: Option<&AccountSnapshot>,
    market: &M,
    request: &CheckRequest,
    now: DateTime<Utc>,
    source: ExposureSource<'_>,
) -> CheckResponse {
    let mut response = CheckResponse {
        decision: Decision::Approved,
        reject_reason: None,
        message: Cow::Borrowed("approved"),
        projected_margin_ratio: None,
        required_initial_margin: None,
        liquidation_risk: false,
        margin_call: false,
        rule_hits: Vec::new(),
        trace_id: request.trace_id.clone(),
        account_id: request.account_id.clone(),
        order_id: request.order_id.clone(),
        symbol: request.symbol.clone(),
        checked_at: now,
        metrics: None,
    };
    let mut gate = Gate::default();
    evaluate(
        config,
        account,
        market,
        request,
        now,
        source,
        &mut gate,
        &mut response,
    );
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
        response.message = Cow::Borrowed("approved with warnings: see rule_hits");
    }
    response
}

/// Remembers the first failure only.
#[derive(Default)]
struct Gate {
    first: Option<(RejectReason, Cow<'static, str>)>,
}

impl Gate {
    fn fail(&mut self, reason: RejectReason, message: impl FnOnce() -> String) {
        if self.first.is_none() {
            self.first = Some((reason, Cow::Owned(message())));
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn evaluate<M: MarketView + ?Sized>(
    config: &RiskConfig,
    account: Option<&AccountSnapshot>,
    market: &M,
    request: &CheckRequest,
    now: DateTime<Utc>,
    source: ExposureSource<'_>,
    gate: &mut Gate,
    response: &mut CheckResponse,
) {
    // 1. validate
    let order = match request.validate() {
        Ok(order) => order,
        Err(message) => return gate.fail(RejectReason::InvalidRequest, || message),
    };
    // 2. resolve
    let Some(account) = account else {
        return gate.fail(RejectReason::UnknownAccount, || {
            format!("account {} is not known", request.account_id)
        });
    };
    if account.user_id != request.user_id {
        return gate.fail(RejectReason::InvalidRequest, || {
            format!(
                "account {} does not belong to user {}",
                request.account_id, request.user_id
            )
        });
    }
    let Some(instrument) = market.instrument(&request.symbol) else {
        return gate.fail(RejectReason::UnknownSymbol, || {
            format!("symbol {} is not a known instrument", request.symbol)
        });
    };
    let limits = &config.limits;
    let position = account.position_size(&request.symbol).get();
    let quantity = order.quantity.get();
    // The part of the order that closes an opposite position; the rest opens.
    let reducible = if position.is_sign_negative() == (request.side == Side::Buy) {
        position.abs()
    } else {
        Decimal::ZERO
    };
    // q - min(r, q) lies in [0, q]: it cannot saturate.
    let opening_quantity = quantity
        .saturating_sub(reducible.min(quantity))
        .max(Decimal::ZERO);
    let reduces = opening_quantity.is_zero() && !reducible.is_zero();

    // 3. kill switch, frozen, KYC
    let levels = [
        ("global", market.global_state()),
        ("account", account.profile.trading_state),
        ("symbol", instrument.status().trading_state()),
    ];
    let strictest = levels
        .iter()
        .map(|(_, s)| *s)
        .max()
        .unwrap_or(TradingState::Active);
    let allowed = match strictest {
        TradingState::Active => true,
        TradingState::Reducing => reduces,
        TradingState::Halted => limits.halted_allows_exits() && reduces,
    };
    if !allowed {
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
            format!("{level} trading state is {strictest}: only position-reducing orders may pass")
        });
    }
    if account.profile.frozen {
        gate.fail(RejectReason::UserFrozen, || {
            format!("account {} is frozen", account.account_id)
        });
    }
    if account.profile.kyc_level < instrument.required_kyc() {
        gate.fail(RejectReason::KycInsufficient, || {
            format!(
                "{} requires KYC {}, account has {}",
                instrument.symbol(),
                instrument.required_kyc(),
                account.profile.kyc_level
            )
        });
    }

    // 4. duplicate order id, rate limit
    // `now` is the caller's: near the start of time the cutoff saturates instead of
    // overflowing (everything seen so far is then inside the window).
    let dup_cutoff = cutoff(now, limits.duplicate_horizon());
    let duplicate = account
        .recent_orders
        .seen_after(&request.order_id, dup_cutoff)
        || account
            .open_orders
            .iter()
            .any(|o| o.order_id == request.order_id)
        || account
            .reservations
            .iter()
            .any(|r| r.order_id == request.order_id);
    if duplicate {
        gate.fail(RejectReason::DuplicateOrder, || {
            format!("order id {} was already used", request.order_id)
        });
    }
    if let Some(rate) = limits.rate_limit() {
        let recent = account
            .recent_orders
            .count_after(cutoff(now, rate.window()), rate.max_orders as usize);
        if recent >= rate.max_orders as usize {
            gate.fail(RejectReason::RateLimited, || {
                format!(
                    "{recent} orders in the last {} ms (limit {})",
                    rate.window_ms, rate.max_orders
                )
            });
        }
    }

    // 5-11 need prices; reduce-only and the static order limits do not, but keep their
    // phase order, so run freshness first and remember a stop.
    // The traded symbol's ladder, looked up once for the whole check.
    let ladder = config.ladder(&request.symbol);
    let priced = {
        let price_on = |exposure: &AccountExposure| {
            price(
                config,
                ladder,
                account,
                exposure,
                market,
                request,
                &instrument,
                &order,
                opening_quantity,
                now,
            )
        };
        match source {
            ExposureSource::Compute => {
                AccountExposure::compute(config, account, market).and_then(|e| price_on(&e))
            }
            ExposureSource::Cache {
                cache,
                epoch,
                config: held,
            } => cache
                .get_or_compute(epoch, held, || {
                    AccountExposure::compute(config, account, market)
                })
                .and_then(price_on),
        }
    };
    let metrics = match priced {
        Ok(metrics) => Some(metrics),
        Err(Stop(reason, message)) => {
            gate.fail(reason, || message);
            None
        }
    };

    // 6. reduce-only
    if request.reduce_only && !reduces {
        gate.fail(RejectReason::ReduceOnlyViolation, || {
            format!(
                "reduce-only {} {} would open or flip the position of {}",
                request.side, quantity, position
            )
        });
    }

    // 7. order limits
    if quantity < instrument.min_quantity().get() {
        gate.fail(RejectReason::InvalidRequest, || {
            format!(
                "quantity {quantity} is below the minimum {} for {}",
                instrument.min_quantity(),
                instrument.symbol()
            )
        });
    }
    if !is_multiple(quantity, instrument.lot_size().get()) {
        gate.fail(RejectReason::InvalidRequest, || {
            format!(
                "quantity {quantity} is not a multiple of the lot size {}",
                instrument.lot_size()
            )
        });
    }
    if let Some(price) = order.limit_price {
        if !is_multiple(price.get(), instrument.tick_size().get()) {
            gate.fail(RejectReason::InvalidRequest, || {
                format!(
                    "price {price} is not a multiple of the tick size {}",
                    instrument.tick_size()
                )
            });
        }
    }
    if quantity > instrument.max_quantity().get() {
        gate.fail(RejectReason::MaxOrderSizeExceeded, || {
            format!(
                "quantity {quantity} exceeds the maximum {} for {}",
                instrument.max_quantity(),
                instrument.symbol()
            )
        });
    }
    let Some(metrics) = metrics else { return };
    if let (Some(band), OrderType::Limit) = (instrument.price_band(), request.order_type) {
        if metrics.price_deviation > band.get() {
            gate.fail(RejectReason::PriceOutOfBand, || {
                format!(
                    "price {} deviates {} from the mark {}, band is {}",
                    metrics.order_price,
                    metrics.price_deviation.round_dp(6),
                    metrics.mark_price,
                    band
                )
            });
        }
    }

    let opens = !opening_quantity.is_zero();
    // 8. leverage
    if opens && metrics.leverage > metrics.max_leverage_allowed {
        gate.fail(RejectReason::MaxLeverageExceeded, || {
            format!(
                "leverage {} exceeds the cap {} (profile {}, instrument {}, tier at notional {})",
                metrics.leverage,
                metrics.max_leverage_allowed,
                account.profile.max_leverage,
                instrument.max_leverage(),
                metrics.projected_position_notional.round_dp(2)
            )
        });
    }
    if opens
        && Notional::new(metrics.projected_position_notional).is_ok_and(|n| !ladder.is_open_at(n))
    {
        gate.fail(RejectReason::MaxLeverageExceeded, || {
            format!(
                "projected position notional {} is beyond the largest the margin ladder allows ({})",
                metrics.projected_position_notional.round_dp(2),
                ladder.open_limit().map_or_else(|| "unbounded".to_owned(), |l| l.to_string())
            )
        });
    }
    // 9. exposure
    let limit = account.profile.exposure_limit.get();
    if opens && metrics.projected_exposure > limit {
        gate.fail(RejectReason::ExposureLimitExceeded, || {
            format!(
                "projected exposure {} exceeds the limit {limit}",
                metrics.projected_exposure.round_dp(2)
            )
        });
    }
    // 10. margin
    if opens && metrics.required_initial_margin > metrics.available_margin {
        gate.fail(RejectReason::InsufficientMargin, || {
            format!(
                "required initial margin {} exceeds available margin {}",
                metrics.required_initial_margin.round_dp(2),
                metrics.available_margin.round_dp(2)
            )
        });
    }
    // 11. projected margin ratio
    let ratio = metrics.projected_margin_ratio;
    response.liquidation_risk = ratio.is_none_or(|r| r >= limits.liquidation_ratio().get());
    response.margin_call = ratio.is_none_or(|r| r >= limits.margin_call_ratio().get());
    if opens && response.liquidation_risk {
        gate.fail(RejectReason::LiquidationRisk, || match ratio {
            Some(r) => format!(
                "projected margin ratio {} reaches the liquidation threshold {}",
                r.round_dp(4),
                limits.liquidation_ratio()
            ),
            None => "projected margin balance is not positive while maintenance margin is owed"
                .to_owned(),
        });
    }
    // 12. rules
    config.rules.evaluate(
        &metrics,
        account.profile.kyc_level,
        &request.symbol,
        &mut response.rule_hits,
    );
    if let Some(hit) = response
        .rule_hits
        .iter()
        .find(|h| h.action == RuleAction::Reject)
    {
        gate.fail(RejectReason::RiskRuleViolation, || {
            format!(
                "rule {} fired: {} = {} {} {}",
                hit.rule_id, hit.metric, hit.value, hit.operator, hit.threshold
            )
        });
    }
    response.projected_margin_ratio = ratio;
    response.required_initial_margin = Some(metrics.required_initial_margin);
    response.metrics = Some(metrics);
}

/// `value` is a whole multiple of `step` (a zero step allows anything).
fn is_multiple(value: Decimal, step: Decimal) -> bool {
    step.is_zero() || value.checked_rem(step).is_some_and(|r| r.is_zero())
}

/// Phase 5 and the arithmetic of phases 7-11: prices the order against fresh marks,
/// on top of the account's exposure (computed here, or handed in from the engine's cache).
#[allow(clippy::too_many_arguments)]
fn price<M: MarketView + ?Sized>(
    config: &RiskConfig,
    ladder: &TierLadder,
    account: &AccountSnapshot,
    exposure: &AccountExposure,
    market: &M,
    request: &CheckRequest,
    instrument: &Instrument,
    order: &super::request::ValidOrder,
    opening_quantity: Decimal,
    now: DateTime<Utc>,
) -> Result<CheckMetrics, Stop> {
    use num::{add, div, mul, sub};
    let max_age = config.limits.max_mark_age();
    let stale = |symbol: &Symbol, at: DateTime<Utc>| -> Result<(), Stop> {
        let age = now.signed_duration_since(at);
        if age > max_age {
            return Err(Stop(
                RejectReason::StaleData,
                format!(
                    "mark for {symbol} is {} ms old (max {} ms)",
                    age.num_milliseconds(),
                    max_age.num_milliseconds()
                ),
            ));
        }
        Ok(())
    };
    let mark = market.mark(&request.symbol).ok_or_else(|| {
        Stop(
            RejectReason::StaleData,
            format!("no mark price for {}", request.symbol),
        )
    })?;
    stale(&request.symbol, mark.at)?;
    if let Some((at, symbol)) = &exposure.oldest_mark {
        stale(symbol, *at)?;
    }
    let mark = mark.price.get();
    let mult = instrument.contract_multiplier().get();
    let quantity = order.quantity.get();
    let side_sign = request.side.sign();
    let order_price = match order.limit_price {
        Some(p) => p.get(),
        None => mul(
            mark,
            add(
                Decimal::ONE,
                mul(side_sign, config.limits.market_slippage().get(), "slippage")?,
                "slippage",
            )?,
            "market order price",
        )?,
    };
    let order_notional = mul(
        mul(quantity, order_price, "order notional")?,
        mult,
        "order notional",
    )?
    .abs();
    let opening_notional = mul(
        mul(opening_quantity, order_price, "opening notional")?,
        mult,
        "opening notional",
    )?
    .abs();
    let signed_quantity = mul(side_sign, quantity, "signed quantity")?;
    let position = account.position_size(&request.symbol).get();
    let projected_size = add(position, signed_quantity, "projected position")?;
    let projected_position_notional = mul(
        mul(projected_size.abs(), mark, "projected notional")?,
        mult,
        "projected notional",
    )?;
    // Swap this symbol's maintenance margin at the current size for the projected one.
    let current_notional = mul(
        mul(position.abs(), mark, "position notional")?,
        mult,
        "position notional",
    )?;
    let current_mm = if position.is_zero() {
        Decimal::ZERO
    } else {
        maintenance(ladder, current_notional)?
    };
    let projected_mm = add(
        sub(exposure.maintenance, current_mm, "maintenance margin")?,
        maintenance(ladder, projected_position_notional)?,
        "maintenance margin",
    )?;
    let margin_balance = exposure.margin_balance;
    let available_margin = sub(
        sub(margin_balance, exposure.position_im, "available margin")?,
        exposure.order_im,
        "available margin",
    )?;
    let required_initial_margin = div(
        opening_notional,
        order.leverage.get(),
        "required initial margin",
    )?;
    let projected_exposure = add(exposure.gross, opening_notional, "projected exposure")?;
    let limit = account.profile.exposure_limit.get();
    let exposure_utilization = if limit.is_zero() {
        None
    } else {
        Some(div(projected_exposure, limit, "exposure utilization")?)
    };
    let fill_pnl = mul(
        mul(
            signed_quantity,
            sub(mark, order_price, "fill pnl")?,
            "fill pnl",
        )?,
        mult,
        "fill pnl",
    )?;
    let projected_margin_balance = add(margin_balance, fill_pnl, "projected margin balance")?;
    let projected_margin_ratio = if projected_mm.is_zero() {
        Some(Decimal::ZERO)
    } else if projected_margin_balance <= Decimal::ZERO {
        None
    } else {
        Some(div(
            projected_mm,
            projected_margin_balance,
            "projected margin ratio",
        )?)
    };
    let price_deviation = match order.limit_price {
        Some(p) => div(
            sub(p.get(), mark, "price deviation")?.abs(),
            mark,
            "price deviation",
        )?,
        None => Decimal::ZERO,
    };
    let tier_cap = ladder.max_leverage_at(
        Notional::new(projected_position_notional)
            .map_err(|e| Stop(RejectReason::InvalidRequest, e.to_string()))?,
    );
    let max_leverage_allowed = account
        .profile
        .max_leverage
        .get()
        .min(instrument.max_leverage().get())
        .min(tier_cap.get());
    Ok(CheckMetrics {
        mark_price: mark,
        order_price,
        order_quantity: quantity,
        order_notional,
        opening_quantity,
        opening_notional,
        leverage: order.leverage.get(),
        max_leverage_allowed,
        required_initial_margin,
        margin_balance,
        available_margin,
        projected_position_notional,
        projected_exposure,
        exposure_utilization,
        projected_maintenance_margin: projected_mm,
        projected_margin_balance,
        projected_margin_ratio,
        open_orders: Decimal::from(account.open_orders.len()),
        open_positions: Decimal::from(account.positions.len()),
        price_deviation,
        risk_score: account.profile.risk_score.get(),
    })
}
