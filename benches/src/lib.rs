//! Realistic, generated state for riskgate's benchmarks.
//!
//! The scenario of the speed targets: an account with 10 open positions and 5 open
//! orders, a 10-tier ladder for the traded symbol and 20 active rules with mixed scopes.
//! Everything is deterministic so runs compare.
//!
//! Engine benches need a fresh order id per check (an approved id is a duplicate for
//! the duplicate horizon). They draw ids from a pre-built [`OrderIds`] pool and advance a
//! simulated clock 1 µs per check; the scenario's duplicate horizon is 1 ms, so the
//! horizon holds about 1,000 recent orders per account and the pool never repeats inside
//! it. Marks are allowed to be an hour old so long runs on the simulated clock stay fresh.
#![allow(clippy::expect_used)]

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use risk_core::account::{AccountSnapshot, OpenOrder, Position, RiskProfile};
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

/// The fixed "now" of every scenario.
#[must_use]
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0)
        .single()
        .expect("valid time")
}

/// The traded symbol.
pub const SYMBOL: &str = "SYM00";

/// A ladder of `n` tiers: caps grow quadratically (50k, 200k, 450k, ...), rates rise,
/// leverage falls.
#[must_use]
pub fn ladder(n: usize) -> TierLadder {
    let mut tiers = Vec::with_capacity(n);
    let mut floor = Decimal::ZERO;
    for i in 0..n {
        let cap = if i + 1 == n {
            None
        } else {
            Some(Decimal::from(50_000u64 * (i as u64 + 1).pow(2)))
        };
        let rate = Decimal::new(4 + i64::try_from(i).unwrap_or(0) * 3, 3).min(Decimal::new(45, 2));
        let max_lev = (Decimal::ONE / rate / Decimal::TWO)
            .floor()
            .max(Decimal::ONE)
            .min(Decimal::from(125));
        tiers.push(Tier {
            floor: Notional::new(floor).expect("floor"),
            cap: cap.map(|c| Notional::new(c).expect("cap")),
            maintenance_rate: Ratio::new(rate).expect("rate"),
            max_leverage: Leverage::new(max_lev).expect("leverage"),
            active: true,
        });
        floor = cap.unwrap_or(floor);
    }
    TierLadder::new(tiers).expect("a valid generated ladder")
}

/// `n` active rules with mixed scopes (all, by KYC level, by symbol) that do not fire on
/// the approve path.
#[must_use]
pub fn rules(n: usize) -> RuleSet {
    let metrics = [
        CheckMetric::OrderNotional,
        CheckMetric::Leverage,
        CheckMetric::ProjectedExposure,
        CheckMetric::ExposureUtilization,
        CheckMetric::ProjectedMarginRatio,
        CheckMetric::OpenOrders,
        CheckMetric::PriceDeviation,
        CheckMetric::RiskScore,
    ];
    let rules = (0..n)
        .map(|i| Rule {
            id: RuleId::new(&format!("rule-{i:03}")),
            metric: metrics[i % metrics.len()],
            operator: Operator::Gt,
            threshold: Decimal::from(1_000_000_000u64),
            severity: Severity::Medium,
            action: if i % 2 == 0 {
                RuleAction::Reject
            } else {
                RuleAction::Warn
            },
            kyc_level: (i % 3 == 1).then_some(KycLevel::L1),
            symbol: (i % 3 == 2).then(|| Symbol::new(&format!("SYM{:02}", i % 10))),
            active: true,
        })
        .collect();
    RuleSet::new(rules).expect("unique ids")
}

fn instrument(symbol: &Symbol) -> Instrument {
    Instrument::new(InstrumentSpec {
        symbol: symbol.clone(),
        tick_size: Price::lit("0.1"),
        lot_size: LotSize::lit("0.001"),
        min_quantity: Quantity::lit("0.001"),
        max_quantity: Quantity::lit("1000"),
        contract_multiplier: Multiplier::ONE,
        max_leverage: Leverage::lit("125"),
        required_kyc: KycLevel::L1,
        status: InstrumentStatus::Trading,
        price_band: Some(PriceBand::lit("0.05")),
    })
    .expect("a valid instrument")
}

/// The whole scenario: config, market, one account, and the approve request.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// 10-tier ladder for every symbol, 20 rules.
    pub config: RiskConfig,
    /// 10 symbols with fresh marks.
    pub market: MarketSnapshot,
    /// 10 positions, 5 open orders, 1,000,000 wallet.
    pub account: AccountSnapshot,
    /// A limit buy that passes every phase with no rule hit.
    pub approve: CheckRequest,
}

/// Builds the scenario with `tiers` ladder tiers and `rule_count` rules.
#[must_use]
pub fn scenario(tiers: usize, rule_count: usize) -> Scenario {
    let mut config = RiskConfig::new(ladder(tiers));
    config.rules = rules(rule_count);
    config.limits = CheckLimits::new(CheckLimitsSpec {
        rate_limit: None,
        duplicate_horizon_ms: 1,
        max_mark_age_ms: 3_600_000,
        ..CheckLimitsSpec::default()
    })
    .expect("valid limits");
    let symbols: Vec<Symbol> = (0..10)
        .map(|i| Symbol::new(&format!("SYM{i:02}")))
        .collect();
    config.ladders = symbols.iter().map(|s| (s.clone(), ladder(tiers))).collect();
    let mut market = MarketSnapshot::default();
    for (i, s) in symbols.iter().enumerate() {
        market.instruments.insert(s.clone(), instrument(s));
        let price = Price::new(Decimal::from(1_000 * (i as u64 + 1))).expect("price");
        market.marks.insert(
            s.clone(),
            Mark {
                price,
                at: now() - TimeDelta::milliseconds(100),
            },
        );
    }
    let profile = RiskProfile {
        kyc_level: KycLevel::L1,
        exposure_limit: Notional::lit("100000000"),
        frozen: false,
        max_leverage: Leverage::lit("50"),
        risk_score: RiskScore::lit("20"),
        trading_state: TradingState::Active,
    };
    let mut account =
        AccountSnapshot::new(AccountId::new("ACC-0001"), UserId::new("USER-1"), profile);
    account.wallet_balance = Money::lit("1000000");
    for (i, s) in symbols.iter().enumerate() {
        let size = if i % 2 == 0 { "2.5" } else { "-1.5" };
        account.positions.push(Position {
            symbol: s.clone(),
            size: SignedQuantity::lit(size),
            entry_price: Price::new(Decimal::from(1_000 * (i as u64 + 1) - 10)).expect("entry"),
            leverage: Leverage::lit("10"),
        });
    }
    for i in 0..5 {
        account.open_orders.push(OpenOrder {
            order_id: OrderId::new(&format!("open-{i}")),
            symbol: symbols[i * 2].clone(),
            side: Side::Buy,
            quantity: Quantity::lit("0.5"),
            price: Price::new(Decimal::from(1_000 * (i as u64 * 2 + 1) - 20)).expect("price"),
            leverage: Leverage::lit("10"),
            reduce_only: false,
        });
    }
    let approve = CheckRequest {
        user_id: UserId::new("USER-1"),
        account_id: account.account_id.clone(),
        order_id: OrderId::new("bench-order"),
        symbol: Symbol::new(SYMBOL),
        side: Side::Buy,
        order_type: OrderType::Limit,
        quantity: Decimal::new(1, 0),
        price: Some(Decimal::from(1_000)),
        leverage: Decimal::from(10),
        reduce_only: false,
        post_only: false,
        trace_id: TraceId::new("trace"),
    };
    Scenario {
        config,
        market,
        account,
        approve,
    }
}

impl Scenario {
    /// The three most expensive reject paths: each fails only in a late phase, after the
    /// order has been fully priced.
    #[must_use]
    pub fn late_rejects(&self) -> [(&'static str, CheckRequest); 3] {
        let base = &self.approve;
        [
            // Phase 10: 2,000 BTC-equivalents at 1x need far more than the wallet.
            (
                "insufficient_margin",
                CheckRequest {
                    quantity: Decimal::from(999),
                    leverage: Decimal::ONE,
                    ..base.clone()
                },
            ),
            // Phase 11 via a buy at the top of the band with huge size and leverage.
            (
                "max_leverage",
                CheckRequest {
                    leverage: Decimal::from(60),
                    ..base.clone()
                },
            ),
            // Phase 12: a rule that fires.
            (
                "rule_violation",
                CheckRequest {
                    trace_id: TraceId::new("rule"),
                    ..base.clone()
                },
            ),
        ]
    }

    /// The config with one extra REJECT rule that fires on the approve order.
    #[must_use]
    pub fn config_with_firing_rule(&self) -> RiskConfig {
        let mut rules = self.config.rules.rules().to_vec();
        rules.push(Rule {
            id: RuleId::new("zz-fires"),
            metric: CheckMetric::OrderNotional,
            operator: Operator::Ge,
            threshold: Decimal::ONE,
            severity: Severity::High,
            action: RuleAction::Reject,
            kyc_level: None,
            symbol: None,
            active: true,
        });
        let mut config = self.config.clone();
        config.rules = RuleSet::new(rules).expect("unique ids");
        config
    }

    /// An engine loaded with this scenario's market and `accounts` copies of the account
    /// (ids `ACC-0001`, `ACC-0002`, ...).
    #[must_use]
    pub fn engine(&self, accounts: usize) -> RiskEngine {
        let engine = RiskEngine::new(self.config.clone()).expect("valid config");
        for i in self.market.instruments.values() {
            engine
                .apply(&EngineEvent::Market(MarketEvent::Instrument(i.clone())))
                .expect("instrument");
        }
        for (s, m) in &self.market.marks {
            engine
                .apply(&EngineEvent::Market(MarketEvent::Mark {
                    symbol: s.clone(),
                    price: m.price,
                    at: m.at,
                }))
                .expect("mark");
        }
        for n in 1..=accounts {
            let id = account_id(n);
            let a = &self.account;
            let mut seq = 0;
            let mut apply = |event| {
                seq += 1;
                engine
                    .apply(&EngineEvent::Account {
                        account_id: id.clone(),
                        seq: Seq::lit(seq),
                        event,
                    })
                    .expect("account event");
            };
            apply(AccountEvent::ProfileUpsert {
                user_id: a.user_id.clone(),
                profile: a.profile.clone(),
            });
            apply(AccountEvent::BalanceChange {
                delta: a.wallet_balance,
            });
            for p in &a.positions {
                apply(AccountEvent::PositionUpdate {
                    symbol: p.symbol.clone(),
                    size: p.size,
                    entry_price: p.entry_price,
                    leverage: p.leverage,
                });
            }
            for o in &a.open_orders {
                apply(AccountEvent::OrderOpened(o.clone()));
            }
        }
        engine
    }
}

/// The id of the `n`th scenario account (1-based).
#[must_use]
pub fn account_id(n: usize) -> AccountId {
    AccountId::new(&format!("ACC-{n:04}"))
}

/// A pool of distinct order ids, cycled, so a bench loop allocates none.
#[derive(Debug)]
pub struct OrderIds {
    ids: Vec<OrderId>,
    next: usize,
}

impl OrderIds {
    /// `n` ids `o-0` .. `o-{n-1}`.
    #[must_use]
    pub fn new(n: usize) -> Self {
        Self {
            ids: (0..n).map(|i| OrderId::new(&format!("o-{i}"))).collect(),
            next: 0,
        }
    }

    /// The next id and the simulated time of the check that uses it (1 µs apart).
    pub fn next(&mut self, tick: &mut i64) -> (OrderId, DateTime<Utc>) {
        let id = self.ids[self.next].clone();
        self.next = (self.next + 1) % self.ids.len();
        *tick += 1;
        (id, now() + TimeDelta::microseconds(*tick))
    }
}

/// `n` closed trades in the prop-firm export format, generated by `risk generate-sample`'s
/// generator (seed 7) and parsed by the CSV reader: realistic accounts, HFT bursts,
/// layering and missing stop-losses.
#[must_use]
pub fn closed_trades(n: u64) -> Vec<risk_core::metrics::ClosedTrade> {
    use risk_adapters::{csv_input, sample};
    let config = sample::SampleConfig {
        trades: n,
        users: None,
        seed: 7,
        defects: false,
    };
    let (mut trades, mut accounts) = (Vec::new(), Vec::new());
    sample::generate(&config, &mut trades, &mut accounts).expect("in-memory generation");
    csv_input::read_trades(trades.as_slice(), "generated", |_| {})
        .expect("generated CSV parses")
        .trades
}
