//! The `pretrade_check` target: an arbitrary config, market, account and request through
//! the pure check and through an engine loaded with the same state, which must agree.

use arbitrary::{Arbitrary, Unstructured};
use chrono::{DateTime, Utc};
use risk_core::account::{AccountSnapshot, OpenOrder, Position, RiskProfile};
use risk_core::config::{CheckLimits, CheckLimitsSpec, RateLimit, RiskConfig};
use risk_core::engine::{AccountEvent, EngineEvent, MarketEvent, RiskEngine, Seq};
use risk_core::ids::{AccountId, OrderId, RuleId, Symbol, TraceId, UserId};
use risk_core::margin::{Tier, TierLadder};
use risk_core::market::{Instrument, InstrumentSpec, Mark, MarketSnapshot};
use risk_core::model::{
    Decision, InstrumentStatus, KycLevel, OrderType, RuleAction, Severity, Side, TradingState,
};
use risk_core::num::{
    Leverage, LotSize, Money, Multiplier, Notional, Price, PriceBand, Quantity, Ratio, RiskScore,
    SignedQuantity,
};
use risk_core::pretrade::{check, CheckMetric, CheckRequest};
use risk_core::rules::{Operator, Rule, RuleSet};
use risk_core::Decimal;

use crate::input::{before, ms, now, pick, symbol, Dec};
use crate::tier_ladder::LadderIn;

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
            config.ladders = [(Symbol::new("S0"), l)].into_iter().collect();
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
        config.limits = CheckLimits::new(CheckLimitsSpec {
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
        })
        .ok()?;
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
                Instrument::new(InstrumentSpec {
                    symbol: sym.clone(),
                    tick_size: Price::new(inst.tick.get().abs()).ok()?,
                    lot_size: LotSize::new(inst.lot.get().abs()).ok()?,
                    min_quantity: Quantity::new(inst.min_quantity.get().abs()).ok()?,
                    max_quantity: Quantity::new(inst.max_quantity.get().abs()).ok()?,
                    contract_multiplier: Multiplier::new(inst.multiplier.get()).ok()?,
                    max_leverage: Leverage::new(inst.max_leverage.get().abs()).ok()?,
                    required_kyc: pick(KycLevel::ALL, inst.kyc),
                    status: pick(InstrumentStatus::ALL, inst.status),
                    price_band: match inst.price_band {
                        Some(b) => Some(PriceBand::new(b.get().abs()).ok()?),
                        None => None,
                    },
                })
                .ok()
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
            risk_score: RiskScore::new(self.risk_score.get()).ok()?,
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
            seq: Seq::MIN, // set by the caller
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
pub(crate) fn check_response(
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
            !response.message.to_string().trim().is_empty(),
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
    let mut seqs = (1_u64..).filter_map(|n| Seq::new(n).ok());
    let mut apply = |event: EngineEvent| {
        let event = match event {
            EngineEvent::Account {
                account_id, event, ..
            } => {
                let Some(seq) = seqs.next() else { return };
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
        seq: Seq::MIN,
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
