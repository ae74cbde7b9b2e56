//! Embedding riskgate in an order path: load state as events, check orders, apply fills.
//!
//! Run: `cargo run --release -p risk-core --example embed`
#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use chrono::{TimeDelta, TimeZone, Utc};
use risk_core::account::RiskProfile;
use risk_core::config::RiskConfig;
use risk_core::engine::{AccountEvent, EngineEvent, MarketEvent, RiskEngine, Seq};
use risk_core::ids::{AccountId, OrderId, Symbol, TraceId, UserId};
use risk_core::margin::{Tier, TierLadder};
use risk_core::market::{Instrument, InstrumentSpec};
use risk_core::model::{InstrumentStatus, KycLevel, OrderType, Side, TradingState};
use risk_core::num::{
    Leverage, LotSize, Money, Multiplier, Notional, Price, PriceBand, Quantity, RiskScore,
};
use risk_core::pretrade::CheckRequest;

fn main() {
    // Time is always passed in: here a simulated clock.
    let mut now = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
    let tier = |floor: &str, cap: Option<&str>, mmr: &str, lev: &str| Tier {
        floor: Notional::lit(floor),
        cap: cap.map(Notional::lit),
        maintenance_rate: risk_core::num::Ratio::lit(mmr),
        max_leverage: Leverage::lit(lev),
        active: true,
    };
    let ladder = TierLadder::new(vec![
        tier("0", Some("50000"), "0.004", "125"),
        tier("50000", Some("250000"), "0.005", "100"),
        tier("250000", None, "0.01", "50"),
    ])
    .expect("a valid ladder");
    let engine = RiskEngine::new(RiskConfig::new(ladder)).expect("a valid config");

    let btc = Symbol::new("BTCUSDT");
    let account = AccountId::new("ACC-1");
    let events = [
        EngineEvent::Market(MarketEvent::Instrument(
            Instrument::new(InstrumentSpec {
                symbol: btc.clone(),
                tick_size: Price::lit("0.1"),
                lot_size: LotSize::lit("0.001"),
                min_quantity: Quantity::lit("0.001"),
                max_quantity: Quantity::lit("100"),
                contract_multiplier: Multiplier::ONE,
                max_leverage: Leverage::lit("125"),
                required_kyc: KycLevel::L1,
                status: InstrumentStatus::Trading,
                price_band: Some(PriceBand::lit("0.05")),
            })
            .expect("a valid instrument"),
        )),
        EngineEvent::Market(MarketEvent::Mark {
            symbol: btc.clone(),
            price: Price::lit("50000"),
            at: now,
        }),
        EngineEvent::Account {
            account_id: account.clone(),
            seq: Seq::lit(1),
            event: AccountEvent::ProfileUpsert {
                user_id: UserId::new("alice"),
                profile: RiskProfile {
                    kyc_level: KycLevel::L1,
                    exposure_limit: Notional::lit("250000"),
                    frozen: false,
                    max_leverage: Leverage::lit("20"),
                    risk_score: RiskScore::ZERO,
                    trading_state: TradingState::Active,
                },
            },
        },
        EngineEvent::Account {
            account_id: account.clone(),
            seq: Seq::lit(2),
            event: AccountEvent::BalanceChange {
                delta: Money::lit("10000"),
            },
        },
    ];
    for event in &events {
        engine.apply(event).expect("event applies");
    }

    let order = |id: &str, qty: &str, price: &str, lev: &str| CheckRequest {
        user_id: UserId::new("alice"),
        account_id: account.clone(),
        order_id: OrderId::new(id),
        symbol: btc.clone(),
        side: Side::Buy,
        order_type: OrderType::Limit,
        quantity: qty.parse().unwrap(),
        price: Some(price.parse().unwrap()),
        leverage: lev.parse().unwrap(),
        reduce_only: false,
        post_only: false,
        trace_id: TraceId::new(id),
    };
    now += TimeDelta::milliseconds(250);
    for req in [
        order("o-1", "1", "50000", "10"),
        order("o-2", "1", "50000", "10"),
        order("o-3", "0.5", "50000", "25"),
        order("o-4", "0.1", "60000", "10"),
    ] {
        let r = engine.check_and_reserve(&req, now);
        println!(
            "{:<4} {:<9} {:<22} margin={:<8} ratio={:<8} {}",
            req.order_id,
            r.decision,
            r.reject_reason.map_or("-", |x| x.as_str()),
            r.required_initial_margin()
                .map_or("-".into(), |m| m.round_dp(2).to_string()),
            r.projected_margin_ratio()
                .map_or("-".into(), |m| m.round_dp(4).to_string()),
            r.message
        );
    }
}
