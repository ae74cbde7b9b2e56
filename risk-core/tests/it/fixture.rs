//! A realistic market and account for the check tests.
//!
//! BTCUSDT uses the USDⓈ-M style bracket ladder (0.40% / 125x up to 50k notional, then
//! 0.50% / 100x, 1% / 50x, 2.5% / 20x, 5% / 10x); every other symbol uses a flat 1% / 20x
//! default ladder.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use risk_core::account::{AccountSnapshot, Position, RiskProfile};
use risk_core::config::{CheckLimits, CheckLimitsSpec, RiskConfig};
use risk_core::engine::{AccountEvent, EngineEvent, MarketEvent, RiskEngine, Seq};
use risk_core::ids::{AccountId, OrderId, RuleId, Symbol, TraceId, UserId};
use risk_core::margin::{Tier, TierLadder};
use risk_core::market::{Instrument, InstrumentSpec, Mark, MarketSnapshot};
use risk_core::model::{
    InstrumentStatus, KycLevel, OrderType, RuleAction, Severity, Side, TradingState,
};
use risk_core::num::{
    Leverage, LotSize, Money, Multiplier, Notional, Price, PriceBand, Quantity, Ratio, RiskScore,
    SignedQuantity,
};
use risk_core::pretrade::{CheckMetric, CheckRequest};
use risk_core::rules::{Operator, Rule, RuleSet};
use risk_core::Decimal;

pub fn d(text: &str) -> Decimal {
    text.parse().expect("decimal literal")
}

pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0)
        .single()
        .expect("valid time")
}

pub fn tier(floor: &str, cap: Option<&str>, mmr: &str, lev: &str) -> Tier {
    Tier {
        floor: Notional::lit(floor),
        cap: cap.map(Notional::lit),
        maintenance_rate: Ratio::lit(mmr),
        max_leverage: Leverage::lit(lev),
        active: true,
    }
}

pub fn btc_ladder() -> TierLadder {
    TierLadder::new(vec![
        tier("0", Some("50000"), "0.004", "125"),
        tier("50000", Some("250000"), "0.005", "100"),
        tier("250000", Some("1000000"), "0.01", "50"),
        tier("1000000", Some("10000000"), "0.025", "20"),
        tier("10000000", None, "0.05", "10"),
    ])
    .expect("valid ladder")
}

pub fn default_ladder() -> TierLadder {
    TierLadder::new(vec![tier("0", None, "0.01", "20")]).expect("valid ladder")
}

pub fn config() -> RiskConfig {
    let mut config = RiskConfig::new(default_ladder());
    config.ladders = [(Symbol::new("BTCUSDT"), btc_ladder())]
        .into_iter()
        .collect();
    config
}

pub fn rule(
    id: &str,
    metric: CheckMetric,
    op: Operator,
    threshold: &str,
    action: RuleAction,
) -> Rule {
    Rule {
        id: RuleId::new(id),
        metric,
        operator: op,
        threshold: d(threshold),
        severity: Severity::High,
        action,
        kyc_level: None,
        symbol: None,
        active: true,
    }
}

pub fn with_rules(rules: Vec<Rule>) -> RiskConfig {
    let mut c = config();
    c.rules = RuleSet::new(rules).expect("valid rules");
    c
}

pub fn instrument(symbol: &str, tick: &str, lot: &str, max_qty: &str) -> Instrument {
    Instrument::new(InstrumentSpec {
        symbol: Symbol::new(symbol),
        tick_size: Price::lit(tick),
        lot_size: LotSize::lit(lot),
        min_quantity: Quantity::lit(lot),
        max_quantity: Quantity::lit(max_qty),
        contract_multiplier: Multiplier::ONE,
        max_leverage: Leverage::lit("125"),
        required_kyc: KycLevel::L1,
        status: InstrumentStatus::Trading,
        price_band: Some(PriceBand::lit("0.05")),
    })
    .expect("a valid instrument")
}

pub fn market() -> MarketSnapshot {
    let at = now() - TimeDelta::seconds(1);
    let mut m = MarketSnapshot::default();
    for (inst, mark) in [
        (instrument("BTCUSDT", "0.1", "0.001", "100"), "50000"),
        (instrument("ETHUSDT", "0.01", "0.01", "10000"), "3000"),
    ] {
        m.marks.insert(
            inst.symbol().clone(),
            Mark {
                price: Price::lit(mark),
                at,
            },
        );
        m.instruments.insert(inst.symbol().clone(), inst);
    }
    m
}

pub fn profile() -> RiskProfile {
    RiskProfile {
        kyc_level: KycLevel::L1,
        exposure_limit: Notional::lit("1000000"),
        frozen: false,
        max_leverage: Leverage::lit("50"),
        risk_score: RiskScore::lit("10"),
        trading_state: TradingState::Active,
    }
}

pub fn account() -> AccountSnapshot {
    let mut a = AccountSnapshot::new(AccountId::new("A1"), UserId::new("U1"), profile());
    a.wallet_balance = Money::lit("10000");
    a
}

pub fn position(symbol: &str, size: &str, entry: &str, lev: &str) -> Position {
    Position {
        symbol: Symbol::new(symbol),
        size: SignedQuantity::lit(size),
        entry_price: Price::lit(entry),
        leverage: Leverage::lit(lev),
    }
}

/// Buy 0.1 BTCUSDT limit 50,000 at 10x: notional 5,000, initial margin 500.
pub fn request() -> CheckRequest {
    CheckRequest {
        user_id: UserId::new("U1"),
        account_id: AccountId::new("A1"),
        order_id: OrderId::new("O1"),
        symbol: Symbol::new("BTCUSDT"),
        side: Side::Buy,
        order_type: OrderType::Limit,
        quantity: d("0.1"),
        price: Some(d("50000")),
        leverage: d("10"),
        reduce_only: false,
        post_only: false,
        trace_id: TraceId::new("T1"),
    }
}

/// An engine loaded with [`market`] and [`account`] through events.
pub fn engine(config: RiskConfig) -> RiskEngine {
    let engine = RiskEngine::new(config).expect("valid config");
    let m = market();
    for inst in m.instruments.values() {
        engine
            .apply(&EngineEvent::Market(MarketEvent::Instrument(inst.clone())))
            .expect("instrument");
    }
    for (symbol, mark) in &m.marks {
        engine
            .apply(&EngineEvent::Market(MarketEvent::Mark {
                symbol: symbol.clone(),
                price: mark.price,
                at: mark.at,
            }))
            .expect("mark");
    }
    let a = account();
    let account_id = a.account_id.clone();
    engine
        .apply(&EngineEvent::Account {
            account_id: account_id.clone(),
            seq: Seq::lit(1),
            event: AccountEvent::ProfileUpsert {
                user_id: a.user_id.clone(),
                profile: a.profile.clone(),
            },
        })
        .expect("profile");
    engine
        .apply(&EngineEvent::Account {
            account_id,
            seq: Seq::lit(2),
            event: AccountEvent::BalanceChange {
                delta: a.wallet_balance,
            },
        })
        .expect("balance");
    engine
}

/// Default check limits changed by `change`.
pub fn limits(change: impl FnOnce(&mut CheckLimitsSpec)) -> CheckLimits {
    let mut spec = CheckLimitsSpec::default();
    change(&mut spec);
    CheckLimits::new(spec).expect("valid limits")
}
