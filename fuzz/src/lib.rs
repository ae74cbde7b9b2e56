//! Fuzz-target logic for riskgate.
//!
//! Each `pub fn` takes the raw fuzzer input and panics when a property fails; the
//! `fuzz_targets/*.rs` binaries only call them, so the same logic runs on stable through
//! `tests/replay.rs` over the committed corpora and regressions.
//!
//! Structured inputs are decoded with `arbitrary` into small input structs with primitive
//! fields (an `i64` mantissa and a `u8` scale per decimal, `u8` selectors per enum) and
//! converted to the core's types here, so risk-core needs no `arbitrary` dependency.

use std::collections::HashMap;

use arbitrary::{Arbitrary, Unstructured};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use risk_adapters::config_file::{ConfigFile, Format};
use risk_adapters::csv_input::{
    read_accounts, read_accounts_with, read_trades_parallel_with, read_trades_with, CsvInputError,
    CsvLimits, TradeFile,
};
use risk_core::account::{AccountSnapshot, OpenOrder, Position, RiskProfile};
use risk_core::config::{CheckLimits, RateLimit, RiskConfig};
use risk_core::engine::{AccountEvent, EngineEvent, MarketEvent, RiskEngine};
use risk_core::ids::{AccountId, OrderId, RuleId, Symbol, TraceId, UserId};
use risk_core::margin::{Tier, TierLadder};
use risk_core::market::{Instrument, Mark, MarketSnapshot};
use risk_core::model::{
    Decision, InstrumentStatus, KycLevel, OrderType, RuleAction, Severity, Side, TradingState,
};
use risk_core::num::{
    parse_decimal, Leverage, Money, Notional, Price, Quantity, Ratio, SignedQuantity,
};
use risk_core::pretrade::{check, CheckMetric, CheckRequest};
use risk_core::rules::{Operator, Rule, RuleSet};
use risk_core::Decimal;

// ---------------------------------------------------------------------------------------
// Primitive inputs
// ---------------------------------------------------------------------------------------

/// A decimal as an `i64` mantissa and a scale. Scales 0..=28 are used as they are; a few
/// selectors above give the extremes (`Decimal::MAX`, `Decimal::MIN`, the smallest step)
/// so that overflow paths are reached.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub struct Dec {
    mantissa: i64,
    scale: u8,
}

impl Dec {
    fn get(self) -> Decimal {
        match self.scale % 36 {
            s @ 0..=28 => Decimal::new(self.mantissa, u32::from(s)),
            29 => Decimal::MAX,
            30 => Decimal::MIN,
            31 => Decimal::new(1, 28),
            // Small, "realistic" values: mantissa folded to 0..100_000 at scale 2.
            _ => Decimal::new(self.mantissa.rem_euclid(10_000_000), 2),
        }
    }
}

fn pick<T: Copy>(all: &[T], selector: u8) -> T {
    all[usize::from(selector) % all.len()]
}

fn symbol(selector: u8) -> Symbol {
    // Three symbols: two listed instruments and one that may be unknown.
    Symbol::new(["S0", "S1", "S2"][usize::from(selector % 3)])
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0)
        .single()
        .unwrap_or_default()
}

fn ms(millis: u32) -> TimeDelta {
    TimeDelta::milliseconds(i64::from(millis))
}

/// `at - age`, or `at` when that is not representable.
fn before(at: DateTime<Utc>, age: u32) -> DateTime<Utc> {
    at.checked_sub_signed(ms(age % 20_000)).unwrap_or(at)
}

// ---------------------------------------------------------------------------------------
// Tier ladders
// ---------------------------------------------------------------------------------------

/// One tier: floors are chained from the previous cap unless `raw_floor` is set.
#[derive(Debug, Clone, Arbitrary)]
pub struct TierIn {
    raw_floor: Option<Dec>,
    cap: Option<Dec>,
    rate: Dec,
    leverage: Dec,
    inactive: bool,
}

/// A ladder definition.
#[derive(Debug, Clone, Arbitrary)]
pub struct LadderIn {
    tiers: Vec<TierIn>,
}

impl LadderIn {
    /// The tiers, or `None` when a field is outside its newtype's range (that is the
    /// newtype's check, not the ladder's).
    fn tiers(&self) -> Option<Vec<Tier>> {
        let mut out = Vec::new();
        let mut floor = Decimal::ZERO;
        for t in self.tiers.iter().take(8) {
            let f = t.raw_floor.map_or(floor, Dec::get);
            let cap = match t.cap {
                Some(c) => Some(Notional::new(c.get().abs()).ok()?),
                None => None,
            };
            out.push(Tier {
                floor: Notional::new(f).ok()?,
                cap,
                maintenance_rate: Ratio::new(t.rate.get().abs()).ok()?,
                max_leverage: Leverage::new(t.leverage.get().abs()).ok()?,
                active: !t.inactive,
            });
            floor = cap.map_or(f, Notional::get);
        }
        Some(out)
    }

    fn ladder(&self) -> Option<TierLadder> {
        TierLadder::new(self.tiers()?).ok()
    }
}

/// Notionals to probe a ladder at: every boundary, a step either side, and extremes.
fn probe_points(ladder: &TierLadder, extra: &[Dec]) -> Vec<Decimal> {
    let step = Decimal::new(1, 8);
    let mut points = vec![Decimal::ZERO, step, Decimal::ONE, Decimal::MAX];
    for t in ladder.tiers() {
        for b in [Some(t.floor), t.cap].into_iter().flatten() {
            let b = b.get();
            points.push(b);
            points.extend(b.checked_sub(step).filter(|v| *v >= Decimal::ZERO));
            points.extend(b.checked_add(step));
        }
    }
    points.extend(extra.iter().map(|d| d.get().abs()));
    points.sort();
    points.dedup();
    points
}

/// Checks every lookup of a valid ladder.
fn check_ladder(ladder: &TierLadder, extra: &[Dec], liq: &[LiqIn]) {
    let tiers = ladder.tiers();
    assert!(!tiers.is_empty());
    assert_eq!(tiers[0].floor, Notional::ZERO);
    assert_eq!(ladder.maintenance_amount(0), Money::ZERO);
    let points = probe_points(ladder, extra);
    let mut previous: Option<Decimal> = None;
    for &p in &points {
        let n = Notional::new(p).unwrap_or(Notional::ZERO);
        let k = ladder.tier_index(n);
        assert!(k < tiers.len());
        assert!(tiers[k].floor <= n, "tier {k} floor above {n}");
        if k + 1 < tiers.len() {
            assert!(tiers[k].cap.is_some_and(|c| n < c), "{n} beyond tier {k}");
        }
        assert_eq!(ladder.max_leverage_at(n), tiers[k].max_leverage);
        assert_eq!(
            ladder.is_open_at(n),
            ladder.open_limit().is_none_or(|l| n <= l)
        );
        let Ok(mm) = ladder.maintenance_margin(n) else {
            // Overflow is an error, and then it stays an error further up (monotone).
            previous = None;
            continue;
        };
        let mm = mm.get();
        // Decimal keeps 28 significant digits: where `N * MMR_k` and `cum_k` need more
        // (huge notionals, rates with many decimals) the result is rounded at the scale
        // of the notional's last kept digit. Within that the shape must hold; realistic
        // ladders compute exactly, so this is no looser for them.
        // At tiny notionals the rounding is one unit of Decimal's last place (1e-28),
        // which `p * 1e-27` cannot express: the slack is at least that unit.
        let slack = (p * Decimal::new(1, 27)).max(Decimal::new(1, 28));
        assert!(mm >= -slack, "negative maintenance {mm} at {n}");
        assert!(
            p.checked_add(slack).is_none_or(|top| mm <= top),
            "maintenance {mm} above notional {n}"
        );
        if let (Some(prev), Some(top)) = (previous, mm.checked_add(slack)) {
            assert!(
                prev <= top,
                "maintenance decreases before {n}: {prev} > {mm}"
            );
        }
        previous = Some(mm);
    }
    // Continuity: at each boundary the lower tier's formula gives the ladder's value.
    for (k, t) in tiers.iter().enumerate() {
        let Some(cap) = t.cap else { continue };
        if k + 1 == tiers.len() {
            continue;
        }
        let Ok(at_cap) = ladder.maintenance_margin(cap) else {
            continue;
        };
        let from_below = cap
            .get()
            .checked_mul(t.maintenance_rate.get())
            .and_then(|g| g.checked_sub(ladder.maintenance_amount(k).get()));
        if let Some(from_below) = from_below {
            // Exact unless the product needed more than 28 digits and was rounded.
            let tolerance = Decimal::new(1, 20).max(cap.get() * Decimal::new(1, 26));
            assert!(
                (from_below - at_cap.get()).abs() <= tolerance,
                "discontinuous at {cap}: {from_below} from below, {at_cap} above"
            );
        }
    }
    for l in liq.iter().take(4) {
        check_liquidation(ladder, l);
    }
}

/// An isolated position for the liquidation-price check.
#[derive(Debug, Clone, Arbitrary)]
pub struct LiqIn {
    short: bool,
    quantity: Dec,
    entry: Dec,
    margin: Dec,
    multiplier: Dec,
}

fn check_liquidation(ladder: &TierLadder, l: &LiqIn) {
    let side = if l.short { Side::Sell } else { Side::Buy };
    let (Ok(quantity), Ok(entry)) = (
        Quantity::new(l.quantity.get().abs()),
        Price::new(l.entry.get().abs()),
    ) else {
        return;
    };
    let margin = l.margin.get();
    let multiplier = l.multiplier.get();
    let Ok(result) = ladder.liquidation_price_isolated(
        side,
        quantity,
        entry,
        Money::new(margin).unwrap_or_default(),
        multiplier,
    ) else {
        return;
    };
    let Some(price) = result else { return };
    assert!(price.get() > Decimal::ZERO);
    // Equity meets maintenance at the price: margin + s * size * (P - entry) = MM(size * P),
    // up to the rounding of the final divisions (relative to the entry notional).
    let size = quantity.get() * multiplier.abs();
    let check = || -> Option<(Decimal, Decimal, Decimal)> {
        let notional = size.checked_mul(price.get())?;
        let entry_notional = size.checked_mul(entry.get())?;
        let pnl = side
            .sign()
            .checked_mul(notional.checked_sub(entry_notional)?)?;
        let equity = margin.checked_add(pnl)?;
        let mm = ladder
            .maintenance_margin(Notional::new(notional).ok()?)
            .ok()?
            .get();
        let scale = entry_notional
            .abs()
            .max(margin.abs())
            .max(notional)
            .max(Decimal::ONE);
        Some((equity, mm, scale))
    };
    if let Some((equity, mm, scale)) = check() {
        // Values near 1e28 lose digits in every operation: only check where they fit.
        if scale < Decimal::from(10_i64.pow(15)) && size >= Decimal::new(1, 6) {
            // The price is rounded to its last decimal place: at the position's size that
            // moves equity and maintenance by up to size * (1 + rate) * one unit of it.
            let price_step = Decimal::new(1, price.get().scale());
            let rounding = size.checked_mul(price_step * Decimal::TWO);
            let Some(rounding) = rounding else { return };
            let tolerance = scale * Decimal::new(1, 12) / size.min(Decimal::ONE) + rounding;
            assert!(
                (equity - mm).abs() <= tolerance,
                "liquidation price {price}: equity {equity} vs maintenance {mm}"
            );
        }
    }
}

/// Input of the `tier_ladder` target.
#[derive(Debug, Clone, Arbitrary)]
pub struct TierLadderInput {
    ladder: LadderIn,
    probes: Vec<Dec>,
    positions: Vec<LiqIn>,
}

/// `tier_ladder`: arbitrary tiers through [`TierLadder::new`]; a valid ladder is probed
/// everywhere (tier lookup, leverage, maintenance margin non-negative, non-decreasing,
/// continuous at boundaries, liquidation price balancing equity and maintenance).
///
/// # Panics
/// When a property fails.
pub fn tier_ladder(data: &[u8]) {
    let Ok(input) = TierLadderInput::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let Some(tiers) = input.ladder.tiers() else {
        return;
    };
    match TierLadder::new(tiers.clone()) {
        Ok(ladder) => {
            assert_eq!(ladder.tiers(), tiers.as_slice());
            // The documented invariants hold for every ladder that exists.
            for (k, t) in tiers.iter().enumerate() {
                assert!(t.maintenance_rate.get() > Decimal::ZERO);
                assert!(t.maintenance_rate.get() < Decimal::ONE);
                if k > 0 {
                    let p = &tiers[k - 1];
                    assert_eq!(p.cap, Some(t.floor));
                    assert!(p.maintenance_rate <= t.maintenance_rate);
                    assert!(p.max_leverage >= t.max_leverage);
                    assert!(p.active || !t.active);
                }
            }
            check_ladder(&ladder, &input.probes, &input.positions);
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

// ---------------------------------------------------------------------------------------
// Pre-trade check
// ---------------------------------------------------------------------------------------

/// A dynamic rule.
#[derive(Debug, Clone, Arbitrary)]
pub struct RuleIn {
    id: u8,
    metric: u8,
    operator: u8,
    threshold: Dec,
    severity: u8,
    warn: bool,
    kyc: Option<u8>,
    symbol: Option<u8>,
    inactive: bool,
}

/// The check limits.
#[derive(Debug, Clone, Arbitrary)]
pub struct LimitsIn {
    max_mark_age_ms: u32,
    margin_call_ratio: Dec,
    liquidation_ratio: Dec,
    market_slippage: Dec,
    rate_limit: Option<(u8, u16)>,
    duplicate_horizon_ms: u32,
    halted_allows_exits: bool,
}

/// An instrument and its mark.
#[derive(Debug, Clone, Arbitrary)]
pub struct InstrumentIn {
    tick: Dec,
    lot: Dec,
    min_quantity: Dec,
    max_quantity: Dec,
    multiplier: Dec,
    max_leverage: Dec,
    kyc: u8,
    status: u8,
    price_band: Option<Dec>,
    mark: Option<(Dec, u32)>,
}

/// A position.
#[derive(Debug, Clone, Arbitrary)]
pub struct PositionIn {
    symbol: u8,
    size: Dec,
    entry: Dec,
    leverage: Dec,
}

/// A resting order.
#[derive(Debug, Clone, Arbitrary)]
pub struct OrderIn {
    id: u8,
    symbol: u8,
    sell: bool,
    quantity: Dec,
    price: Dec,
    leverage: Dec,
    reduce_only: bool,
}

/// An engine event applied after the initial state.
#[derive(Debug, Clone, Arbitrary)]
pub enum EventIn {
    /// A new mark.
    Mark(u8, Dec, u32),
    /// The global kill switch.
    Global(u8),
    /// A balance change.
    Balance(Dec),
    /// A position update.
    Position(PositionIn),
    /// An order opened.
    Opened(OrderIn),
    /// An order cancelled.
    Cancelled(u8),
    /// An order filled.
    Filled(OrderIn),
    /// The account kill switch.
    AccountState(u8),
    /// A reservation released.
    Released(u8),
}

/// The order to check.
#[derive(Debug, Clone, Arbitrary)]
pub struct RequestIn {
    order_id: u8,
    symbol: u8,
    sell: bool,
    market: bool,
    quantity: Dec,
    price: Option<Dec>,
    leverage: Dec,
    reduce_only: bool,
    post_only: bool,
    other_account: bool,
    reserve: bool,
}

/// Input of the `pretrade_check` target.
#[derive(Debug, Clone, Arbitrary)]
pub struct PretradeInput {
    default_ladder: LadderIn,
    s0_ladder: Option<LadderIn>,
    rules: Vec<RuleIn>,
    limits: LimitsIn,
    global_state: u8,
    instruments: [Option<InstrumentIn>; 2],
    kyc: u8,
    exposure_limit: Dec,
    frozen: bool,
    max_leverage: Dec,
    risk_score: Dec,
    trading_state: u8,
    wallet: Dec,
    positions: Vec<PositionIn>,
    orders: Vec<OrderIn>,
    events: Vec<EventIn>,
    request: RequestIn,
    /// Requests checked after the first (the engine's reserving path).
    more: Vec<RequestIn>,
    /// Where the check's clock stands: mostly a fixed day, sometimes near the ends of
    /// the representable range (the core is told `now`, so it must cope with any).
    clock: u8,
    clock_offset_ms: u32,
}

fn flat_ladder() -> Option<TierLadder> {
    TierLadder::new(vec![Tier {
        floor: Notional::ZERO,
        cap: None,
        maintenance_rate: Ratio::new(Decimal::new(1, 2)).ok()?,
        max_leverage: Leverage::new(Decimal::from(20)).ok()?,
        active: true,
    }])
    .ok()
}

impl PretradeInput {
    fn config(&self) -> Option<RiskConfig> {
        let default_ladder = self.default_ladder.ladder().or_else(flat_ladder)?;
        let mut config = RiskConfig::new(default_ladder);
        if let Some(l) = self.s0_ladder.as_ref().and_then(LadderIn::ladder) {
            config.ladders = HashMap::from([(Symbol::new("S0"), l)]);
        }
        let rules = self
            .rules
            .iter()
            .take(6)
            .map(|r| Rule {
                id: RuleId::new(&format!("r{}", r.id % 8)),
                metric: pick(CheckMetric::ALL, r.metric),
                operator: pick(Operator::ALL, r.operator),
                threshold: r.threshold.get(),
                severity: pick(Severity::ALL, r.severity),
                action: if r.warn {
                    RuleAction::Warn
                } else {
                    RuleAction::Reject
                },
                kyc_level: r.kyc.map(|k| pick(KycLevel::ALL, k)),
                symbol: r.symbol.map(symbol),
                active: !r.inactive,
            })
            .collect();
        config.rules = RuleSet::new(rules).ok()?;
        let l = &self.limits;
        config.limits = CheckLimits {
            max_mark_age_ms: u64::from(l.max_mark_age_ms),
            margin_call_ratio: Ratio::new(l.margin_call_ratio.get().abs()).ok()?,
            liquidation_ratio: Ratio::new(l.liquidation_ratio.get().abs()).ok()?,
            market_slippage: Ratio::new(l.market_slippage.get().abs()).ok()?,
            rate_limit: l.rate_limit.map(|(max_orders, window_ms)| RateLimit {
                max_orders: u32::from(max_orders),
                window_ms: u64::from(window_ms),
            }),
            duplicate_horizon_ms: u64::from(l.duplicate_horizon_ms),
            halted_allows_exits: l.halted_allows_exits,
        };
        config.validate().ok()?;
        Some(config)
    }

    fn market(&self) -> MarketSnapshot {
        let mut m = MarketSnapshot {
            global_state: risk_core::market::GlobalState(pick(
                TradingState::ALL,
                self.global_state,
            )),
            ..MarketSnapshot::default()
        };
        for (i, inst) in self.instruments.iter().enumerate() {
            let Some(inst) = inst else { continue };
            let sym = Symbol::new(["S0", "S1"][i]);
            let built = (|| -> Option<Instrument> {
                Some(Instrument {
                    symbol: sym.clone(),
                    tick_size: Price::new(inst.tick.get().abs()).ok()?,
                    lot_size: Quantity::new(inst.lot.get().abs()).ok()?,
                    min_quantity: Quantity::new(inst.min_quantity.get().abs()).ok()?,
                    max_quantity: Quantity::new(inst.max_quantity.get().abs()).ok()?,
                    contract_multiplier: inst.multiplier.get(),
                    max_leverage: Leverage::new(inst.max_leverage.get().abs()).ok()?,
                    required_kyc: pick(KycLevel::ALL, inst.kyc),
                    status: pick(InstrumentStatus::ALL, inst.status),
                    price_band: match inst.price_band {
                        Some(b) => Some(Ratio::new(b.get().abs()).ok()?),
                        None => None,
                    },
                })
            })();
            let Some(built) = built else { continue };
            m.instruments.insert(sym.clone(), built);
            if let Some((price, age)) = inst.mark {
                if let Ok(price) = Price::new(price.get().abs()) {
                    m.marks.insert(
                        sym,
                        Mark {
                            price,
                            at: before(self.now(), age),
                        },
                    );
                }
            }
        }
        m
    }

    fn now(&self) -> DateTime<Utc> {
        let offset = ms(self.clock_offset_ms);
        match self.clock % 8 {
            0 => DateTime::<Utc>::MIN_UTC.checked_add_signed(offset),
            1 => DateTime::<Utc>::MAX_UTC.checked_sub_signed(offset),
            _ => None,
        }
        .unwrap_or_else(now)
    }

    fn profile(&self) -> Option<RiskProfile> {
        Some(RiskProfile {
            kyc_level: pick(KycLevel::ALL, self.kyc),
            exposure_limit: Notional::new(self.exposure_limit.get().abs()).ok()?,
            frozen: self.frozen,
            max_leverage: Leverage::new(self.max_leverage.get().abs()).ok()?,
            risk_score: self.risk_score.get(),
            trading_state: pick(TradingState::ALL, self.trading_state),
        })
    }
}

fn position(p: &PositionIn) -> Option<Position> {
    Some(Position {
        symbol: symbol(p.symbol),
        size: SignedQuantity::new(p.size.get()).ok()?,
        entry_price: Price::new(p.entry.get().abs()).ok()?,
        leverage: Leverage::new(p.leverage.get().abs()).ok()?,
    })
}

fn open_order(o: &OrderIn) -> Option<OpenOrder> {
    Some(OpenOrder {
        order_id: OrderId::new(&format!("o{}", o.id % 8)),
        symbol: symbol(o.symbol),
        side: if o.sell { Side::Sell } else { Side::Buy },
        quantity: Quantity::new(o.quantity.get().abs()).ok()?,
        price: Price::new(o.price.get().abs()).ok()?,
        leverage: Leverage::new(o.leverage.get().abs()).ok()?,
        reduce_only: o.reduce_only,
    })
}

fn request(r: &RequestIn) -> CheckRequest {
    CheckRequest {
        user_id: UserId::new("U1"),
        account_id: AccountId::new(if r.other_account { "A2" } else { "A1" }),
        order_id: OrderId::new(&format!("q{}", r.order_id % 8)),
        symbol: symbol(r.symbol),
        side: if r.sell { Side::Sell } else { Side::Buy },
        order_type: if r.market {
            OrderType::Market
        } else {
            OrderType::Limit
        },
        quantity: r.quantity.get(),
        price: r.price.map(Dec::get),
        leverage: r.leverage.get(),
        reduce_only: r.reduce_only,
        post_only: r.post_only,
        trace_id: TraceId::new("T"),
    }
}

fn event_from(e: &EventIn, now: DateTime<Utc>) -> Option<EngineEvent> {
    let account = |event| {
        Some(EngineEvent::Account {
            account_id: AccountId::new("A1"),
            seq: 0, // set by the caller
            event,
        })
    };
    match e {
        EventIn::Mark(s, price, age) => Some(EngineEvent::Market(MarketEvent::Mark {
            symbol: symbol(*s),
            price: Price::new(price.get().abs()).ok()?,
            at: before(now, *age),
        })),
        EventIn::Global(s) => Some(EngineEvent::Market(MarketEvent::GlobalTradingState(pick(
            TradingState::ALL,
            *s,
        )))),
        EventIn::Balance(d) => account(AccountEvent::BalanceChange {
            delta: Money::new(d.get()).ok()?,
        }),
        EventIn::Position(p) => {
            let p = position(p)?;
            account(AccountEvent::PositionUpdate {
                symbol: p.symbol,
                size: p.size,
                entry_price: p.entry_price,
                leverage: p.leverage,
            })
        }
        EventIn::Opened(o) => account(AccountEvent::OrderOpened(open_order(o)?)),
        EventIn::Cancelled(id) => account(AccountEvent::OrderCancelled {
            order_id: OrderId::new(&format!("o{}", id % 8)),
        }),
        EventIn::Filled(o) => {
            let o = open_order(o)?;
            account(AccountEvent::OrderFilled {
                order_id: o.order_id,
                symbol: o.symbol,
                side: o.side,
                quantity: o.quantity,
                price: o.price,
                leverage: o.leverage,
            })
        }
        EventIn::AccountState(s) => {
            account(AccountEvent::TradingState(pick(TradingState::ALL, *s)))
        }
        EventIn::Released(id) => account(AccountEvent::ReservationReleased {
            order_id: OrderId::new(&format!("q{}", id % 8)),
        }),
    }
}

/// The properties every check response has, whatever the input.
fn check_response(
    response: &risk_core::pretrade::CheckResponse,
    account: Option<&AccountSnapshot>,
    request: &CheckRequest,
) {
    assert_eq!(response.trace_id, request.trace_id);
    assert_eq!(response.order_id, request.order_id);
    if response.decision == Decision::Rejected {
        assert!(
            response.reject_reason.is_some(),
            "rejected without a reason"
        );
        assert!(
            !response.message.trim().is_empty(),
            "rejected without a message"
        );
        return;
    }
    assert!(response.reject_reason.is_none(), "accepted with a reason");
    let (Some(metrics), Some(account)) = (&response.metrics, account) else {
        return;
    };
    if metrics.opening_quantity.is_zero() {
        return;
    }
    assert!(
        metrics.required_initial_margin <= metrics.available_margin,
        "accepted with initial margin {} above available {}",
        metrics.required_initial_margin,
        metrics.available_margin
    );
    assert!(
        metrics.projected_exposure <= account.profile.exposure_limit.get(),
        "accepted with exposure {} above the limit {}",
        metrics.projected_exposure,
        account.profile.exposure_limit
    );
    assert!(
        metrics.leverage <= metrics.max_leverage_allowed,
        "accepted at leverage {} above the cap {}",
        metrics.leverage,
        metrics.max_leverage_allowed
    );
    assert!(metrics.leverage <= account.profile.max_leverage.get());
    assert_eq!(
        response.required_initial_margin(),
        Some(metrics.required_initial_margin)
    );
}

/// `pretrade_check`: an arbitrary config, market, account and request through the pure
/// [`check`] and through a [`RiskEngine`] loaded with the same state plus arbitrary
/// events. Properties: a rejection names a reason and a message; an accepted opening order
/// fits its margin, exposure limit and leverage cap; the engine answers exactly as the
/// pure check does on the engine's own snapshot.
///
/// # Panics
/// When a property fails.
pub fn pretrade_check(data: &[u8]) {
    let Ok(input) = PretradeInput::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let Some(config) = input.config() else { return };
    let Some(profile) = input.profile() else {
        return;
    };
    let market = input.market();
    let mut account = AccountSnapshot::new(AccountId::new("A1"), UserId::new("U1"), profile);
    account.wallet_balance = Money::new(input.wallet.get()).unwrap_or_default();
    let mut seen = Vec::new();
    for p in input.positions.iter().take(3).filter_map(position) {
        // One position per symbol, as the engine keeps them; zero sizes are no position.
        if !p.size.get().is_zero() && !seen.contains(&p.symbol) {
            seen.push(p.symbol.clone());
            account.positions.push(p);
        }
    }
    let mut order_ids = Vec::new();
    for o in input.orders.iter().take(3).filter_map(open_order) {
        if !order_ids.contains(&o.order_id) {
            order_ids.push(o.order_id.clone());
            account.open_orders.push(o);
        }
    }
    let now = input.now();

    // The pure check on the snapshot as built.
    let req = request(&input.request);
    let own = (req.account_id == account.account_id).then_some(&account);
    let pure = check(&config, own, &market, &req, now);
    check_response(&pure, own, &req);

    // The engine, loaded through events.
    let Ok(engine) = RiskEngine::new(config.clone()) else {
        return;
    };
    let mut seq = 0_u64;
    let mut apply = |event: EngineEvent| {
        let event = match event {
            EngineEvent::Account {
                account_id, event, ..
            } => {
                seq += 1;
                EngineEvent::Account {
                    account_id,
                    seq,
                    event,
                }
            }
            other => other,
        };
        // Errors are fine (a refused event changes nothing); panics are not.
        let _ = engine.apply(&event);
    };
    for inst in market.instruments.values() {
        apply(EngineEvent::Market(MarketEvent::Instrument(inst.clone())));
    }
    for (symbol, mark) in &market.marks {
        apply(EngineEvent::Market(MarketEvent::Mark {
            symbol: symbol.clone(),
            price: mark.price,
            at: mark.at,
        }));
    }
    apply(EngineEvent::Market(MarketEvent::GlobalTradingState(
        market.global_state.0,
    )));
    let account_event = |event| EngineEvent::Account {
        account_id: account.account_id.clone(),
        seq: 0,
        event,
    };
    apply(account_event(AccountEvent::ProfileUpsert {
        user_id: account.user_id.clone(),
        profile: account.profile.clone(),
    }));
    apply(account_event(AccountEvent::BalanceChange {
        delta: account.wallet_balance,
    }));
    for p in &account.positions {
        apply(account_event(AccountEvent::PositionUpdate {
            symbol: p.symbol.clone(),
            size: p.size,
            entry_price: p.entry_price,
            leverage: p.leverage,
        }));
    }
    for o in &account.open_orders {
        apply(account_event(AccountEvent::OrderOpened(o.clone())));
    }
    for e in input
        .events
        .iter()
        .take(8)
        .filter_map(|e| event_from(e, now))
    {
        apply(e);
    }

    // With nothing applied in between, the engine answers as the pure check on its
    // own snapshot, on both paths. (Both change the engine afterwards: an accepted order
    // is remembered for the duplicate and rate checks, and `check_and_reserve` also holds
    // its margin; so each request is compared against the snapshot just before it.)
    for r in std::iter::once(&input.request).chain(input.more.iter().take(4)) {
        let req = request(r);
        let snapshot = engine.account(&req.account_id).map(|(a, _)| a);
        let reference = check(&config, snapshot.as_ref(), engine.market(), &req, now);
        let from_engine = if r.reserve {
            engine.check_and_reserve(&req, now)
        } else {
            engine.check(&req, now)
        };
        assert_eq!(
            from_engine, reference,
            "engine (reserve: {}) and pure check disagree",
            r.reserve
        );
        check_response(&from_engine, snapshot.as_ref(), &req);
    }
}

// ---------------------------------------------------------------------------------------
// CSV ingestion
// ---------------------------------------------------------------------------------------

fn data_rows(data: &[u8]) -> Option<u64> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(data);
    reader.byte_headers().ok()?;
    let mut rows = 0;
    for record in reader.byte_records() {
        record.ok()?;
        rows += 1;
    }
    Some(rows)
}

/// Whether `text` is a decimal that `Decimal` prints back exactly: plain notation, no
/// sign on zero, no leading zeros, at most 28 digits.
fn canonical_decimal(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    all_digits(int)
        && (frac.is_empty() || all_digits(frac))
        && !(digits.contains('.') && frac.is_empty())
        && (int == "0" || !int.starts_with('0'))
        && int.len() + frac.len() <= 28
        && !(text.starts_with('-') && digits.bytes().all(|b| b == b'0' || b == b'.'))
}

fn assert_round_trips(value: Decimal, what: &str) {
    let text = value.to_string();
    assert_eq!(
        parse_decimal(&text).map(|d| d.to_string()),
        Ok(text.clone()),
        "{what} {value:?} does not re-parse"
    );
}

/// The parallel read agrees with the sequential one `f` in every respect.
fn assert_parallel_agrees(f: &TradeFile, parallel: Result<TradeFile, CsvInputError>) {
    if let Ok(p) = parallel {
        assert!(p.trades == f.trades, "parallel read differs");
        assert_eq!(
            (p.skipped_rows, p.duplicate_rows),
            (f.skipped_rows, f.duplicate_rows)
        );
        assert_eq!(p.errors, f.errors, "parallel read reports other errors");
    }
}

/// The line an error names exists, and the rows add up to the csv reader's records.
fn assert_rows_add_up(data: &[u8], kept: usize, skipped: u64, duplicate: u64, what: &str) {
    if let Some(rows) = data_rows(data) {
        assert_eq!(
            kept as u64 + skipped + duplicate,
            rows,
            "{what} rows do not add up"
        );
    }
}

/// `data` read as trades with `limits`, checked: good + skipped + duplicate rows = data
/// rows, and the parallel reader on `workers` threads agrees, errors included.
fn read_trades_checked(
    data: &[u8],
    limits: CsvLimits,
    workers: usize,
) -> Result<TradeFile, CsvInputError> {
    let f = read_trades_with(data, "fuzz.csv", limits, |_| {})?;
    assert_rows_add_up(
        data,
        f.trades.len(),
        f.skipped_rows,
        f.duplicate_rows,
        "trade",
    );
    assert_parallel_agrees(
        &f,
        read_trades_parallel_with(data, "fuzz.csv", workers, limits, |_| {}),
    );
    Ok(f)
}

/// `trades_csv` with small row and field limits taken from the input, so that rows are
/// cut: the rows still add up, the readers still agree, errors name existing lines, and
/// no kept text field is over the field limit.
fn trades_csv_bounded(data: &[u8]) {
    let limits = CsvLimits {
        max_row_bytes: 1 + usize::from(data.first().copied().unwrap_or(0) % 128),
        max_field_bytes: 1 + data.len() % 48,
    };
    let lines = 1 + data.iter().filter(|b| **b == b'\n').count() as u64;
    match read_trades_checked(data, limits, 3) {
        Ok(f) => {
            for e in &f.errors {
                assert!((1..=lines).contains(&e.line), "{e} (of {lines} lines)");
            }
            for t in &f.trades {
                for text in [t.id.as_str(), t.account.as_str(), t.symbol.as_str()] {
                    assert!(text.len() <= limits.max_field_bytes, "kept {text:?}");
                }
            }
        }
        Err(CsvInputError::HeaderTooLong { limit, .. }) => {
            assert_eq!(limit, limits.max_row_bytes);
        }
        Err(_) => {}
    }
    if let Ok(a) = read_accounts_with(data, "accounts.csv", limits) {
        assert_rows_add_up(data, a.accounts.len(), a.skipped_rows, 0, "account");
        for e in &a.errors {
            assert!((1..=lines).contains(&e.line), "{e} (of {lines} lines)");
        }
    }
}

/// `trades_csv`: arbitrary bytes through [`read_trades`] (and the parallel reader) and
/// [`read_accounts`], with the default limits and with small ones. Properties: good +
/// skipped + duplicate rows = data rows; the parallel reader agrees, errors included;
/// every money field prints to text that parses back to itself and, where the row wrote
/// it canonically, to that text; with small limits, rows are cut and still add up, errors
/// name lines that exist, and no kept text field is over the limit.
///
/// # Panics
/// When a property fails.
pub fn trades_csv(data: &[u8]) {
    trades_csv_bounded(data);
    if let Ok(f) = read_trades_checked(data, CsvLimits::default(), 2) {
        check_trade_text(data, &f.trades);
        for t in &f.trades {
            for (v, what) in [
                (t.volume, "volume"),
                (t.open_price, "open price"),
                (t.close_price, "close price"),
                (t.profit, "profit"),
                (t.commission, "commission"),
                (t.swap, "swap"),
            ] {
                assert_round_trips(v, what);
            }
            for v in [t.stop_loss, t.take_profit].into_iter().flatten() {
                assert_round_trips(v, "stop/take price");
            }
            // A kept trade's times fit the metrics' nanosecond range.
            assert!(
                risk_core::metrics::epoch_nanos(t.opened_at).is_ok()
                    && risk_core::metrics::epoch_nanos(t.closed_at).is_ok(),
                "kept a trade the metrics cannot time: {t:?}"
            );
        }
    }
    if let Ok(a) = read_accounts(data, "accounts.csv") {
        assert_eq!(a.order.len(), a.accounts.len());
        assert_rows_add_up(data, a.accounts.len(), a.skipped_rows, 0, "account");
        for info in a.accounts.values() {
            if let Some(b) = info.initial_balance {
                assert!(b > Decimal::ZERO);
                assert_round_trips(b, "initial balance");
            }
        }
    }
}

/// Each trade's money cells, where written canonically in a row with its id, print back
/// to the same text.
fn check_trade_text(data: &[u8], trades: &[risk_core::metrics::ClosedTrade]) {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(data);
    let Ok(header) = reader.headers().cloned() else {
        return;
    };
    let col = |name: &str| header.iter().position(|h| h.trim() == name);
    let (Some(c_id), Some(c_profit), Some(c_comm), Some(c_swap)) = (
        col("identifier"),
        col("profit"),
        col("commission"),
        col("swap"),
    ) else {
        return;
    };
    let mut by_id: HashMap<String, Vec<csv::StringRecord>> = HashMap::new();
    for record in reader.records() {
        let Ok(record) = record else { return };
        if let Some(id) = record.get(c_id) {
            by_id.entry(id.trim().to_owned()).or_default().push(record);
        }
    }
    for t in trades {
        let Some(rows) = by_id.get(t.id.as_str()) else {
            continue;
        };
        let matches = |r: &csv::StringRecord| {
            [
                (c_profit, t.profit),
                (c_comm, t.commission),
                (c_swap, t.swap),
            ]
            .iter()
            .all(|&(c, v)| {
                let cell = r.get(c).unwrap_or("").trim();
                !canonical_decimal(cell) || cell == v.to_string()
            })
        };
        // Some row with this id wrote these money fields (duplicates may differ).
        let rows_parsing: Vec<_> = rows
            .iter()
            .filter(|r| {
                [
                    (c_profit, t.profit),
                    (c_comm, t.commission),
                    (c_swap, t.swap),
                ]
                .iter()
                .all(|&(c, v)| parse_decimal(r.get(c).unwrap_or("").trim()) == Ok(v))
            })
            .collect();
        assert!(!rows_parsing.is_empty(), "trade {} matches no row", t.id);
        assert!(
            rows_parsing.iter().any(|r| matches(r)),
            "trade {} money fields print differently from the row",
            t.id
        );
    }
}

// ---------------------------------------------------------------------------------------
// Config files
// ---------------------------------------------------------------------------------------

/// `config_file`: arbitrary text through [`ConfigFile::parse`] as TOML and as JSON; a
/// valid config re-serialises in both formats to text that parses to an equal config.
///
/// # Panics
/// When a property fails.
pub fn config_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for format in [Format::Toml, Format::Json] {
        let Ok(file) = ConfigFile::parse(text, format, "fuzz") else {
            continue;
        };
        for out in [Format::Toml, Format::Json] {
            let written = file
                .to_text(out)
                .unwrap_or_else(|e| panic!("a parsed config does not serialise to {out:?}: {e}"));
            let again = ConfigFile::parse(&written, out, "round-trip").unwrap_or_else(|e| {
                panic!("serialised config does not re-parse as {out:?}: {e}\n{written}")
            });
            assert_eq!(again, file, "round trip through {out:?} changed the config");
        }
    }
}

// ---------------------------------------------------------------------------------------
// gRPC wire: decimals, requests and events as the server decodes and converts them
// ---------------------------------------------------------------------------------------

/// Field paths the wire decimals are parsed for (a conversion error must name the one it
/// was given).
const DECIMAL_FIELDS: [&str; 6] = [
    "quantity",
    "price",
    "leverage",
    "mark.price",
    "instrument.contract_multiplier",
    "account.profile_upsert.profile.risk_score",
];

/// The exact value of `text` when it is a plain decimal: an optional sign, digits with
/// an optional decimal point (`1`, `1.5`, `.5`, `5.`), and an optional exponent
/// (`e`/`E`, optional sign, digits). `Err(())` when the text is not such a decimal;
/// `Ok(None)` when it is but its value has no exact `Decimal` (more than 96 bits of
/// significant digits, or a scale beyond 28 that trailing zeros cannot absorb).
///
/// This is a reference written independently of rust_decimal's parsers, from the grammar
/// alone, so that the wire parser can be checked against it.
#[allow(clippy::result_unit_err)]
pub fn plain_decimal_value(text: &str) -> Result<Option<Decimal>, ()> {
    let (negative, rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (significand, exponent) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let (int, frac) = significand.split_once('.').unwrap_or((significand, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || !digits(frac) || int.len() + frac.len() == 0 {
        return Err(());
    }
    let exponent: i64 = match exponent {
        None => 0,
        Some(e) => {
            let unsigned = e.strip_prefix(['+', '-']).unwrap_or(e);
            if unsigned.is_empty() || !digits(unsigned) {
                return Err(());
            }
            let magnitude = unsigned.trim_start_matches('0');
            // Beyond a few digits the value is zero or out of range anyway.
            let magnitude: i64 = if magnitude.len() > 6 {
                1_000_000
            } else {
                magnitude.parse().unwrap_or(0)
            };
            if e.starts_with('-') {
                -magnitude
            } else {
                magnitude
            }
        }
    };
    // value = digits x 10^(exponent - frac.len()), digits without leading zeros.
    let all: String = format!("{int}{frac}");
    let mut significant = all.trim_start_matches('0').to_owned();
    if significant.is_empty() {
        return Ok(Some(Decimal::ZERO));
    }
    let mut scale = i64::try_from(frac.len()).unwrap_or(i64::MAX) - exponent;
    // Trailing zeros can absorb a scale above 28, or digits beyond 96 bits, or a negative
    // scale (by appending zeros).
    while scale > 0 && significant.ends_with('0') && (scale > 28 || !fits_96_bits(&significant)) {
        significant.pop();
        scale -= 1;
    }
    while scale < 0 && significant.len() <= 29 {
        significant.push('0');
        scale += 1;
    }
    if !(0..=28).contains(&scale) || !fits_96_bits(&significant) {
        return Ok(None);
    }
    let mantissa: i128 = significant.parse().map_err(|_| ())?;
    let mantissa = if negative { -mantissa } else { mantissa };
    let scale = u32::try_from(scale).map_err(|_| ())?;
    Ok(Decimal::try_from_i128_with_scale(mantissa, scale).ok())
}

/// Whether a string of digits (no leading zeros) is below 2^96, a `Decimal`'s mantissa.
fn fits_96_bits(digits: &str) -> bool {
    digits.len() <= 29 && digits.parse::<u128>().is_ok_and(|m| m < (1_u128 << 96))
}

/// Whether `text` is a plain decimal without exponent whose digits, as written, make a
/// `Decimal` at the text's own scale: at most 28 decimal places and a mantissa below 2^96.
fn fits_own_scale(text: &str) -> bool {
    if text.contains(['e', 'E']) || plain_decimal_value(text).is_err() {
        return false;
    }
    let unsigned = text.trim_start_matches(['+', '-']);
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits = format!("{int}{frac}");
    let digits = digits.trim_start_matches('0');
    frac.len() <= 28 && (digits.is_empty() || fits_96_bits(digits))
}

/// The properties of one wire decimal: an accepted text is a plain decimal whose exact
/// value is the one returned, rust_decimal's strict parser agrees, and the value's
/// renderings parse back to it; a refusal names the field and is short. Returns the value.
fn check_wire_decimal(field: &str, text: &str) -> Option<Decimal> {
    use risk_adapters::grpc::convert::{decimal, optional_decimal};
    let reference = plain_decimal_value(text);
    match decimal(field, text) {
        Ok(value) => {
            let exact = reference
                .unwrap_or_else(|()| panic!("{field}: accepted {text:?}, not a plain decimal"));
            assert_eq!(
                exact,
                Some(value),
                "{field}: {text:?} was read as {value}, not its exact value"
            );
            if !text.contains(['e', 'E']) {
                assert_eq!(
                    Decimal::from_str_exact(text),
                    Ok(value),
                    "{field}: rust_decimal reads {text:?} differently"
                );
            }
            // The value's own text (what the server echoes) parses back to it, keeping its
            // scale; so does the normalised text the responses carry.
            let printed = value.to_string();
            let again = decimal(field, &printed)
                .unwrap_or_else(|e| panic!("{field}: {value} prints as {printed:?}: {e}"));
            assert_eq!(again, value);
            assert_eq!(again.to_string(), printed, "{field}: scale lost");
            assert_eq!(Decimal::from_str_exact(&printed), Ok(value));
            let normal = value.normalize().to_string();
            assert_eq!(decimal(field, &normal), Ok(value), "{field}: {normal:?}");
            assert_eq!(optional_decimal(field, text), Ok(Some(value)));
            Some(value)
        }
        Err(e) => {
            assert_eq!(e.field, field, "the error names another field: {e}");
            let shown = e.to_string();
            assert!(shown.starts_with(&format!("{field}: ")), "{shown}");
            assert!(!e.problem.trim().is_empty(), "{field}: no problem given");
            assert!(shown.len() < 200, "{field}: message too long: {shown}");
            if text.is_empty() {
                assert_eq!(optional_decimal(field, text), Ok(None));
            } else {
                assert_eq!(optional_decimal(field, text), Err(e.clone()));
            }
            // A plain decimal without exponent that fits a Decimal at its own scale is
            // never refused (the wire parser is strict, not partial).
            let fits = text.len() <= risk_core::num::MAX_DECIMAL_TEXT && fits_own_scale(text);
            assert!(!fits, "{field}: refused the plain decimal {text:?}: {e}");
            None
        }
    }
}

/// `wire_decimal`: arbitrary text through the gRPC adapter's decimal parser
/// (`convert::decimal` / `convert::optional_decimal`), for a field chosen by the input's
/// length. Properties: an accepted text is a plain decimal (sign, digits, point, exponent;
/// nothing else) and the value is its exact value, as rust_decimal's strict parser reads
/// it; the value prints to text that parses back to the same value and scale; a refusal
/// names the field it was given, briefly; a plain decimal that fits is never refused.
///
/// # Panics
/// When a property fails.
pub fn wire_decimal(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let field = DECIMAL_FIELDS[data.len() % DECIMAL_FIELDS.len()];
    check_wire_decimal(field, &text);
}

/// The `risk.v1` message descriptors, to check that an error's field path exists.
fn descriptors() -> &'static prost_types::FileDescriptorSet {
    use prost::Message as _;
    static SET: std::sync::OnceLock<prost_types::FileDescriptorSet> = std::sync::OnceLock::new();
    SET.get_or_init(|| {
        prost_types::FileDescriptorSet::decode(risk_adapters::grpc::proto::FILE_DESCRIPTOR_SET)
            .expect("the compiled descriptor set decodes")
    })
}

fn message_descriptor(full_name: &str) -> Option<&'static prost_types::DescriptorProto> {
    let name = full_name.strip_prefix(".risk.v1.")?;
    descriptors()
        .file
        .iter()
        .filter(|f| f.package() == "risk.v1")
        .flat_map(|f| &f.message_type)
        .find(|m| m.name() == name)
}

/// Whether `path` (`quantity`, `account.profile_upsert.profile.kyc_level`, or a oneof's
/// name such as `event`) names a field of the message `root` (`.risk.v1.Name`).
fn field_path_exists(root: &str, path: &str) -> bool {
    let Some(mut message) = message_descriptor(root) else {
        return false;
    };
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        if let Some(field) = message.field.iter().find(|f| f.name() == *part) {
            if last {
                return true;
            }
            match message_descriptor(field.type_name()) {
                Some(inner) => message = inner,
                None => return false,
            }
        } else {
            return last && message.oneof_decl.iter().any(|o| o.name() == *part);
        }
    }
    false
}

/// The properties of converting one decoded `PreTradeCheckRequest`: a refusal names a
/// field of the request that is at fault and becomes REJECTED / INVALID_REQUEST; a
/// converted request carries the wire's ids, enums and the exact decimal values.
fn check_wire_request(
    wire: &risk_adapters::grpc::proto::v1::PreTradeCheckRequest,
) -> Option<CheckRequest> {
    use risk_adapters::grpc::convert;
    use risk_adapters::grpc::proto::v1 as pb;
    match convert::check_request(wire) {
        Err(e) => {
            assert!(
                field_path_exists(".risk.v1.PreTradeCheckRequest", &e.field),
                "refusal names no field of the request: {e}"
            );
            // The named field really is at fault.
            let at_fault = match e.field.as_str() {
                "side" => !matches!(
                    pb::Side::try_from(wire.side),
                    Ok(pb::Side::Buy | pb::Side::Sell)
                ),
                "order_type" => !matches!(
                    pb::OrderType::try_from(wire.order_type),
                    Ok(pb::OrderType::Market | pb::OrderType::Limit)
                ),
                "quantity" => convert::decimal("quantity", &wire.quantity).is_err(),
                "price" => convert::optional_decimal("price", &wire.price).is_err(),
                "leverage" => convert::decimal("leverage", &wire.leverage).is_err(),
                _ => false,
            };
            assert!(at_fault, "{e} but the field is fine: {wire:?}");
            let answer = convert::invalid_request(&e, &wire.trace_id);
            assert_eq!(answer.decision(), pb::RiskDecision::Rejected);
            assert_eq!(answer.reject_reason(), pb::RejectReason::InvalidRequest);
            assert_eq!(answer.message, e.to_string());
            assert_eq!(answer.trace_id, wire.trace_id);
            assert!(answer.required_initial_margin.is_empty() && answer.rule_hits.is_empty());
            None
        }
        Ok(request) => {
            assert_eq!(request.user_id.as_str(), wire.user_id);
            assert_eq!(request.account_id.as_str(), wire.account_id);
            assert_eq!(request.order_id.as_str(), wire.order_id);
            assert_eq!(request.symbol.as_str(), wire.symbol);
            assert_eq!(request.trace_id.as_str(), wire.trace_id);
            assert_eq!(request.side.as_str(), wire.side().as_str_name());
            assert_eq!(request.order_type.as_str(), wire.order_type().as_str_name());
            assert_eq!(
                (request.reduce_only, request.post_only),
                (wire.reduce_only, wire.post_only)
            );
            let exact = |text: &str| plain_decimal_value(text).ok().flatten();
            assert_eq!(Some(request.quantity), exact(&wire.quantity), "quantity");
            assert_eq!(Some(request.leverage), exact(&wire.leverage), "leverage");
            if wire.price.is_empty() {
                assert_eq!(request.price, None);
            } else {
                assert_eq!(request.price, exact(&wire.price), "price");
            }
            Some(request)
        }
    }
}

/// Checks that a converted core value equals the exact value of its wire text.
#[track_caller]
fn assert_wire_value(value: Decimal, text: &str, what: &str) {
    assert_eq!(
        Some(value),
        plain_decimal_value(text).ok().flatten(),
        "{what}: {text:?} converted to {value}"
    );
}

/// The properties of converting one decoded `AccountOrMarketEvent`: a refusal names a
/// field path of the event; a converted event carries the wire's values exactly.
fn check_wire_event(
    wire: &risk_adapters::grpc::proto::v1::AccountOrMarketEvent,
    now: DateTime<Utc>,
) -> Option<EngineEvent> {
    use risk_adapters::grpc::convert;
    use risk_adapters::grpc::proto::v1::account_event::Change;
    use risk_adapters::grpc::proto::v1::account_or_market_event::Event;
    let event = match convert::event(wire, now) {
        Err(e) => {
            assert!(
                field_path_exists(".risk.v1.AccountOrMarketEvent", &e.field),
                "refusal names no field of the event: {e}"
            );
            assert!(e.to_string().len() < 240, "message too long: {e}");
            return None;
        }
        Ok(event) => event,
    };
    match (wire.event.as_ref(), &event) {
        (Some(Event::Mark(m)), EngineEvent::Market(MarketEvent::Mark { symbol, price, at })) => {
            assert_eq!(symbol.as_str(), m.symbol);
            assert_wire_value(price.get(), &m.price, "mark.price");
            if m.at_unix_ms == 0 {
                assert_eq!(*at, now);
            } else {
                assert_eq!(at.timestamp_millis(), m.at_unix_ms);
            }
        }
        (Some(Event::Instrument(w)), EngineEvent::Market(MarketEvent::Instrument(i))) => {
            assert_eq!(i.symbol.as_str(), w.symbol);
            assert_wire_value(i.tick_size.get(), &w.tick_size, "tick_size");
            assert_wire_value(i.lot_size.get(), &w.lot_size, "lot_size");
            assert_wire_value(i.min_quantity.get(), &w.min_quantity, "min_quantity");
            assert_wire_value(i.max_quantity.get(), &w.max_quantity, "max_quantity");
            assert_wire_value(i.contract_multiplier, &w.contract_multiplier, "multiplier");
            assert_wire_value(i.max_leverage.get(), &w.max_leverage, "max_leverage");
            match i.price_band {
                None => assert!(w.price_band.is_empty()),
                Some(b) => assert_wire_value(b.get(), &w.price_band, "price_band"),
            }
        }
        (
            Some(Event::GlobalTradingState(_)),
            EngineEvent::Market(MarketEvent::GlobalTradingState(_)),
        ) => {}
        (
            Some(Event::Account(a)),
            EngineEvent::Account {
                account_id,
                seq,
                event,
            },
        ) => {
            assert_eq!((account_id.as_str(), *seq), (a.account_id.as_str(), a.seq));
            match (a.change.as_ref(), event) {
                (
                    Some(Change::ProfileUpsert(w)),
                    AccountEvent::ProfileUpsert { user_id, profile },
                ) => {
                    assert_eq!(user_id.as_str(), w.user_id);
                    let p = w.profile.as_ref().expect("converted without a profile");
                    assert_wire_value(
                        profile.exposure_limit.get(),
                        &p.exposure_limit,
                        "exposure_limit",
                    );
                    assert_wire_value(profile.max_leverage.get(), &p.max_leverage, "max_leverage");
                    if p.risk_score.is_empty() {
                        assert_eq!(profile.risk_score, Decimal::ZERO);
                    } else {
                        assert_wire_value(profile.risk_score, &p.risk_score, "risk_score");
                    }
                    assert_eq!(profile.frozen, p.frozen);
                }
                (Some(Change::BalanceChange(w)), AccountEvent::BalanceChange { delta }) => {
                    assert_wire_value(delta.get(), &w.delta, "delta");
                }
                (
                    Some(Change::PositionUpdate(w)),
                    AccountEvent::PositionUpdate {
                        symbol,
                        size,
                        entry_price,
                        leverage,
                    },
                ) => {
                    assert_eq!(symbol.as_str(), w.symbol);
                    assert_wire_value(size.get(), &w.size, "size");
                    assert_wire_value(entry_price.get(), &w.entry_price, "entry_price");
                    assert_wire_value(leverage.get(), &w.leverage, "leverage");
                }
                (Some(Change::OrderOpened(w)), AccountEvent::OrderOpened(o)) => {
                    assert_eq!(
                        (o.order_id.as_str(), o.symbol.as_str()),
                        (w.order_id.as_str(), w.symbol.as_str())
                    );
                    assert_wire_value(o.quantity.get(), &w.quantity, "quantity");
                    assert_wire_value(o.price.get(), &w.price, "price");
                    assert_wire_value(o.leverage.get(), &w.leverage, "leverage");
                    assert_eq!(o.reduce_only, w.reduce_only);
                }
                (
                    Some(Change::OrderFilled(w)),
                    AccountEvent::OrderFilled {
                        order_id,
                        symbol,
                        quantity,
                        price,
                        leverage,
                        ..
                    },
                ) => {
                    assert_eq!(
                        (order_id.as_str(), symbol.as_str()),
                        (w.order_id.as_str(), w.symbol.as_str())
                    );
                    assert_wire_value(quantity.get(), &w.quantity, "quantity");
                    assert_wire_value(price.get(), &w.price, "price");
                    assert_wire_value(leverage.get(), &w.leverage, "leverage");
                }
                (Some(Change::OrderCancelled(w)), AccountEvent::OrderCancelled { order_id })
                | (
                    Some(Change::ReservationReleased(w)),
                    AccountEvent::ReservationReleased { order_id },
                ) => {
                    assert_eq!(order_id.as_str(), w.order_id);
                }
                (Some(Change::TradingState(_)), AccountEvent::TradingState(_)) => {}
                (w, c) => panic!("account change {w:?} converted to {c:?}"),
            }
        }
        (w, c) => panic!("event {w:?} converted to {c:?}"),
    }
    Some(event)
}

/// The demo config the server ships with (`examples/config/demo.toml`): three accounts,
/// BTCUSDT, ETHUSDT and SOLUSDT with marks, ladders, limits and rules.
fn demo_config() -> &'static ConfigFile {
    static DEMO: std::sync::OnceLock<ConfigFile> = std::sync::OnceLock::new();
    DEMO.get_or_init(|| {
        ConfigFile::parse(
            include_str!("../../examples/config/demo.toml"),
            Format::Toml,
            "demo.toml",
        )
        .expect("the demo config parses")
    })
}

/// What one frame of a `grpc_request` input is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// A `PreTradeCheckRequest`, checked with `RiskEngine::check`.
    Check,
    /// A `PreTradeCheckRequest`, checked with `RiskEngine::check_and_reserve`.
    CheckAndReserve,
    /// An `AccountOrMarketEvent`, applied to the engine.
    Event,
}

impl FrameKind {
    fn of(tag: u8) -> Self {
        match tag % 3 {
            0 => Self::Check,
            1 => Self::CheckAndReserve,
            _ => Self::Event,
        }
    }

    fn tag(self) -> u8 {
        match self {
            Self::Check => 0,
            Self::CheckAndReserve => 1,
            Self::Event => 2,
        }
    }
}

/// Encodes frames the way `grpc_request` reads them: per frame a kind byte, the payload's
/// length as two little-endian bytes, and the payload (protobuf bytes).
///
/// # Panics
/// When a payload is longer than 65,535 bytes.
#[must_use]
pub fn grpc_frames(frames: &[(FrameKind, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (kind, payload) in frames {
        let len = u16::try_from(payload.len()).expect("a frame holds at most 65,535 bytes");
        out.push(kind.tag());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(payload);
    }
    out
}

/// Runs a `grpc_request` input and returns the wire answer to each check frame (`None`
/// for a frame that does not decode as a request). See [`grpc_request`].
///
/// # Panics
/// When a property fails.
#[must_use]
pub fn grpc_answers(
    data: &[u8],
) -> Vec<Option<risk_adapters::grpc::proto::v1::PreTradeCheckResponse>> {
    use prost::Message as _;
    use risk_adapters::grpc::convert;
    use risk_adapters::grpc::proto::v1 as pb;

    let now = now();
    let engine = demo_config()
        .clone()
        .into_engine(now, "demo.toml")
        .expect("the demo config loads");
    let mut answers = Vec::new();
    let mut rest = data;
    for _ in 0..16 {
        let [tag, lo, hi, tail @ ..] = rest else {
            break;
        };
        let len = usize::from(u16::from_le_bytes([*lo, *hi])).min(tail.len());
        let (payload, after) = tail.split_at(len);
        rest = after;
        let kind = FrameKind::of(*tag);

        // Every payload is decoded as both messages; what decodes re-encodes to itself.
        let request = pb::PreTradeCheckRequest::decode(payload).ok();
        let event = pb::AccountOrMarketEvent::decode(payload).ok();
        if let Some(r) = &request {
            let again = pb::PreTradeCheckRequest::decode(r.encode_to_vec().as_slice());
            assert_eq!(again.as_ref(), Ok(r), "request does not re-encode");
        }
        if let Some(e) = &event {
            let again = pb::AccountOrMarketEvent::decode(e.encode_to_vec().as_slice());
            assert_eq!(again.as_ref(), Ok(e), "event does not re-encode");
        }
        let converted_request = request.as_ref().map(|r| (r, check_wire_request(r)));
        let converted_event = event.as_ref().and_then(|e| check_wire_event(e, now));

        match kind {
            FrameKind::Event => {
                if let Some(e) = converted_event {
                    // Refused events change nothing; either way no panic.
                    if let Err(err) = engine.apply(&e) {
                        assert!(!err.to_string().trim().is_empty());
                    }
                }
            }
            FrameKind::Check | FrameKind::CheckAndReserve => {
                let Some((wire, converted)) = converted_request else {
                    answers.push(None);
                    continue;
                };
                let answer = match converted {
                    None => {
                        let e = convert::check_request(wire).expect_err("refused above");
                        convert::invalid_request(&e, &wire.trace_id)
                    }
                    Some(request) => {
                        let snapshot = engine.account(&request.account_id).map(|(a, _)| a);
                        let reference = check(
                            &engine.config(),
                            snapshot.as_ref(),
                            engine.market(),
                            &request,
                            now,
                        );
                        let response = if kind == FrameKind::CheckAndReserve {
                            engine.check_and_reserve(&request, now)
                        } else {
                            engine.check(&request, now)
                        };
                        assert_eq!(response, reference, "engine and pure check disagree");
                        check_response(&response, snapshot.as_ref(), &request);
                        let answer = convert::check_response(&response);
                        assert_ne!(answer.decision(), pb::RiskDecision::Unspecified);
                        assert_eq!(
                            answer.decision() == pb::RiskDecision::Rejected,
                            answer.reject_reason() != pb::RejectReason::Unspecified,
                            "{answer:?}"
                        );
                        assert_eq!(answer.trace_id, wire.trace_id);
                        if let Some(im) = response.required_initial_margin() {
                            assert_eq!(
                                convert::decimal(
                                    "required_initial_margin",
                                    &answer.required_initial_margin
                                ),
                                Ok(im)
                            );
                        }
                        if let Some(ratio) = response.projected_margin_ratio() {
                            assert_eq!(
                                convert::decimal(
                                    "projected_margin_ratio",
                                    &answer.projected_margin_ratio
                                ),
                                Ok(ratio)
                            );
                        }
                        answer
                    }
                };
                answers.push(Some(answer));
            }
        }
    }
    answers
}

/// `grpc_request`: arbitrary bytes as frames of protobuf messages, each decoded as a
/// `PreTradeCheckRequest` and as an `AccountOrMarketEvent` with prost (as the server's
/// codec does) and converted by the gRPC adapter; a frame's kind decides whether the
/// request is checked (plain or reserving) or the event applied, on an engine loaded from
/// the demo config. Properties: decoded messages re-encode to themselves; a conversion
/// error names a real field (per the compiled descriptor) that is at fault, and a refused
/// request is answered REJECTED / INVALID_REQUEST with the error and the trace id; a
/// converted request or event carries the exact values of its wire decimals; the engine
/// answers as the pure check on its snapshot, approves only within margin, exposure and
/// leverage limits and rejects only with a reason and message; the wire answer's decimals
/// parse back to the core's values.
///
/// # Panics
/// When a property fails.
pub fn grpc_request(data: &[u8]) {
    let _ = grpc_answers(data);
}
