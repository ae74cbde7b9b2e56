//! The engine's whole state as data, for snapshots: [`RiskEngine::export_state`] copies
//! it out, [`RiskEngine::restore_state`] puts it back. Pure: the adapter that stores the
//! snapshot (Redis, a file) owns the I/O and the encoding; with the `serde` feature the
//! state serializes with exact decimals (strings).

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use super::{AccountEntry, RiskEngine};
use crate::account::AccountSnapshot;
use crate::ids::{AccountId, Symbol};
use crate::market::{GlobalState, MarketSnapshot, MarketView as _};
use crate::pretrade::ExposureCache;

/// One account as the engine holds it: its state and the last applied sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AccountState {
    /// Profile, balance, positions, resting orders, reservations and recent approvals.
    pub snapshot: AccountSnapshot,
    /// The last applied account-event sequence (0: none yet).
    pub last_seq: u64,
}

/// Everything a [`RiskEngine`] holds besides its config: the accounts (ordered by id) and
/// the market (instruments, marks, the global kill switch).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct EngineState {
    /// Every account, ordered by account id.
    pub accounts: Vec<AccountState>,
    /// Instruments, marks and the global kill switch.
    pub market: MarketSnapshot,
}

/// A state that an engine cannot hold; nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// Two accounts with the same id.
    #[error("account {0} appears twice")]
    DuplicateAccount(AccountId),
    /// A position, resting order or reservation names a symbol that is not an instrument
    /// of the state.
    #[error("account {account}: symbol {symbol} is not an instrument of the state")]
    UnknownSymbol {
        /// The account.
        account: AccountId,
        /// The symbol.
        symbol: Symbol,
    },
    /// An instrument filed under another symbol than its own.
    #[error("instrument {found} is filed under {key}")]
    MisfiledInstrument {
        /// The map key.
        key: Symbol,
        /// The instrument's own symbol.
        found: Symbol,
    },
    /// More than one position in a symbol.
    #[error("account {account}: two positions in {symbol}")]
    DuplicatePosition {
        /// The account.
        account: AccountId,
        /// The symbol.
        symbol: Symbol,
    },
}

impl RiskEngine {
    /// A copy of the engine's state: every account (ordered by id) with its last
    /// sequence, and the market. Each account is copied under its own lock, so an
    /// account is never half-updated; for a state consistent across accounts, export
    /// while no events are applied (a check's recent-order bookkeeping may still land).
    #[must_use]
    pub fn export_state(&self) -> EngineState {
        let mut accounts: Vec<AccountState> = self
            .accounts
            .iter()
            .map(|e| AccountState {
                snapshot: e.snapshot.clone(),
                last_seq: e.last_seq,
            })
            .collect();
        accounts.sort_by(|a, b| a.snapshot.account_id.cmp(&b.snapshot.account_id));
        let market = MarketSnapshot {
            global_state: GlobalState(self.market.global_state()),
            instruments: self
                .market
                .symbols
                .iter()
                .filter_map(|l| Some((l.key().clone(), l.value().instrument.clone()?)))
                .collect(),
            marks: self
                .market
                .symbols
                .iter()
                .filter_map(|l| Some((l.key().clone(), l.value().mark?)))
                .collect(),
        };
        EngineState { accounts, market }
    }

    /// Replaces every account and the whole market with `state` (the config stays).
    /// Checked first: on an error nothing changes.
    ///
    /// # Errors
    /// [`RestoreError`] when the state is not one an engine can hold (an account twice,
    /// a position or order in a symbol that is not an instrument of the state).
    pub fn restore_state(&self, state: EngineState) -> Result<(), RestoreError> {
        validate(&state)?;
        let EngineState { accounts, market } = state;
        self.accounts.clear();
        self.market.symbols.clear();
        for (symbol, instrument) in market.instruments {
            self.market.symbols.entry(symbol).or_default().instrument = Some(instrument);
        }
        for (symbol, mark) in market.marks {
            self.market.symbols.entry(symbol).or_default().mark = Some(mark);
        }
        self.market
            .global
            .store(market.global_state.0 as u8, Ordering::Release);
        for account in accounts {
            self.accounts.insert(
                account.snapshot.account_id.clone(),
                AccountEntry {
                    snapshot: account.snapshot,
                    last_seq: account.last_seq,
                    exposure: ExposureCache::default(),
                },
            );
        }
        self.market.bump_epoch();
        Ok(())
    }
}

fn validate(state: &EngineState) -> Result<(), RestoreError> {
    let instruments = &state.market.instruments;
    for (key, instrument) in instruments {
        if instrument.symbol() != key {
            return Err(RestoreError::MisfiledInstrument {
                key: key.clone(),
                found: instrument.symbol().clone(),
            });
        }
    }
    let mut seen = HashSet::new();
    for account in &state.accounts {
        let s = &account.snapshot;
        if !seen.insert(&s.account_id) {
            return Err(RestoreError::DuplicateAccount(s.account_id.clone()));
        }
        let unknown = |symbol: &Symbol| RestoreError::UnknownSymbol {
            account: s.account_id.clone(),
            symbol: symbol.clone(),
        };
        let mut held = HashSet::new();
        for p in &s.positions {
            if !instruments.contains_key(&p.symbol) {
                return Err(unknown(&p.symbol));
            }
            if !held.insert(&p.symbol) {
                return Err(RestoreError::DuplicatePosition {
                    account: s.account_id.clone(),
                    symbol: p.symbol.clone(),
                });
            }
        }
        if let Some(o) = s
            .open_orders
            .iter()
            .find(|o| !instruments.contains_key(&o.symbol))
        {
            return Err(unknown(&o.symbol));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::account::{OpenOrder, RiskProfile};
    use crate::config::RiskConfig;
    use crate::engine::{AccountEvent, EngineEvent, MarketEvent, Seq};
    use crate::ids::{OrderId, UserId};
    use crate::margin::{Tier, TierLadder};
    use crate::market::{Instrument, InstrumentSpec};
    use crate::model::{InstrumentStatus, KycLevel, Side, TradingState};
    use crate::num::{
        Leverage, LotSize, Money, Multiplier, Notional, Price, Quantity, Ratio, SignedQuantity,
    };

    fn new_engine() -> RiskEngine {
        let ladder = TierLadder::new(vec![Tier {
            floor: Notional::lit("0"),
            cap: None,
            maintenance_rate: Ratio::lit("0.005"),
            max_leverage: Leverage::lit("100"),
            active: true,
        }])
        .expect("ladder");
        RiskEngine::new(RiskConfig::new(ladder)).expect("engine")
    }

    fn btc() -> Instrument {
        Instrument::new(InstrumentSpec {
            symbol: Symbol::new("BTCUSDT"),
            tick_size: Price::lit("0.1"),
            lot_size: LotSize::lit("0.001"),
            min_quantity: Quantity::lit("0.001"),
            max_quantity: Quantity::lit("100"),
            contract_multiplier: Multiplier::lit("1"),
            max_leverage: Leverage::lit("100"),
            required_kyc: KycLevel::L0,
            status: InstrumentStatus::Trading,
            price_band: None,
        })
        .expect("instrument")
    }

    fn account(engine: &RiskEngine, id: &str, seq: u64, event: AccountEvent) {
        engine
            .apply(&EngineEvent::Account {
                account_id: AccountId::new(id),
                seq: Seq::lit(seq),
                event,
            })
            .expect("applies");
    }

    /// An engine with an instrument, a mark, a halted global switch and two accounts with
    /// balances, a position and a resting order.
    fn busy_engine() -> RiskEngine {
        let engine = new_engine();
        let at = Utc
            .timestamp_millis_opt(1_700_000_000_123)
            .single()
            .expect("t");
        for event in [
            MarketEvent::Instrument(btc()),
            MarketEvent::Mark {
                symbol: Symbol::new("BTCUSDT"),
                price: Price::lit("50000.5"),
                at,
            },
            MarketEvent::GlobalTradingState(TradingState::Reducing),
        ] {
            engine.apply(&EngineEvent::Market(event)).expect("market");
        }
        for (id, balance) in [("b", "0.000000001"), ("a", "25000.10")] {
            let profile = RiskProfile {
                kyc_level: KycLevel::L2,
                ..RiskProfile::default()
            };
            account(
                &engine,
                id,
                1,
                AccountEvent::ProfileUpsert {
                    user_id: UserId::new("u"),
                    profile,
                },
            );
            account(
                &engine,
                id,
                3,
                AccountEvent::BalanceChange {
                    delta: Money::lit(balance),
                },
            );
        }
        account(
            &engine,
            "a",
            4,
            AccountEvent::PositionUpdate {
                symbol: Symbol::new("BTCUSDT"),
                size: SignedQuantity::lit("-0.5"),
                entry_price: Price::lit("49000"),
                leverage: Leverage::lit("10"),
            },
        );
        account(
            &engine,
            "a",
            5,
            AccountEvent::OrderOpened(OpenOrder {
                order_id: OrderId::new("o-1"),
                symbol: Symbol::new("BTCUSDT"),
                side: Side::Buy,
                quantity: Quantity::lit("0.1"),
                price: Price::lit("48000"),
                leverage: Leverage::lit("10"),
                reduce_only: false,
            }),
        );
        engine
    }

    #[test]
    fn export_then_restore_gives_the_same_state_and_sequences() {
        let engine = busy_engine();
        let state = engine.export_state();
        assert_eq!(state.accounts.len(), 2);
        assert_eq!(state.accounts[0].snapshot.account_id, AccountId::new("a"));
        assert_eq!(state.accounts[0].last_seq, 5);
        let copy = new_engine();
        copy.restore_state(state.clone()).expect("restores");
        assert_eq!(copy.export_state(), state);
        assert_eq!(
            copy.account(&AccountId::new("b")),
            engine.account(&AccountId::new("b"))
        );
        // Sequences carry on: an old event is a duplicate, the next one applies.
        let old = EngineEvent::Account {
            account_id: AccountId::new("a"),
            seq: Seq::lit(5),
            event: AccountEvent::BalanceChange {
                delta: Money::lit("1"),
            },
        };
        assert!(matches!(
            copy.apply(&old),
            Ok(crate::engine::Applied::Duplicate { last_seq: 5 })
        ));
    }

    #[test]
    fn restore_replaces_what_was_held() {
        let engine = busy_engine();
        let empty = new_engine();
        engine
            .restore_state(empty.export_state())
            .expect("restores");
        assert_eq!(engine.account_count(), 0);
        assert_eq!(engine.export_state(), EngineState::default());
    }

    #[test]
    fn a_state_an_engine_cannot_hold_is_refused_and_changes_nothing() {
        let engine = busy_engine();
        let before = engine.export_state();
        let mut orphan = before.clone();
        orphan.market.instruments.clear();
        let e = engine
            .restore_state(orphan)
            .expect_err("positions without instruments");
        assert!(e.to_string().contains("BTCUSDT"), "{e}");
        let mut twice = before.clone();
        twice.accounts.push(twice.accounts[0].clone());
        assert_eq!(
            engine.restore_state(twice),
            Err(RestoreError::DuplicateAccount(AccountId::new("a")))
        );
        assert_eq!(engine.export_state(), before);
    }
}
