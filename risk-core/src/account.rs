//! The account snapshot a check reads: risk profile, balance, positions, open orders,
//! margin reservations and the recent-order history used by the erroneous-order controls.

use std::collections::VecDeque;
use std::hash::BuildHasher;

use chrono::{DateTime, Utc};
use hashbrown::HashTable;

use crate::hash::RandomState;
use crate::ids::{AccountId, OrderId, Symbol, UserId};
use crate::model::{KycLevel, Side, TradingState};
use crate::num::{Leverage, Money, Notional, Price, Quantity, RiskScore, SignedQuantity};
use crate::Decimal;

/// One value of the account view, as the adapters render it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewValue<'a> {
    /// An identifier, or an enumeration's name.
    Text(&'a str),
    /// A decimal figure.
    Decimal(Decimal),
    /// A flag.
    Flag(bool),
}

/// The per-account limits and flags a risk team sets. Every field's type holds only
/// valid values, so a profile that exists is valid.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct RiskProfile {
    /// The account's verified KYC level.
    pub kyc_level: KycLevel,
    /// Largest allowed projected exposure (gross notional of positions and open orders).
    pub exposure_limit: Notional,
    /// A frozen account may not place any order.
    pub frozen: bool,
    /// The account's own leverage cap.
    pub max_leverage: Leverage,
    /// Externally computed risk score (0-100), exposed to rules as `risk_score`.
    pub risk_score: RiskScore,
    /// The account-level kill switch.
    pub trading_state: TradingState,
}

impl RiskProfile {
    /// Every field by name, in declaration order: the profile of the account view. The
    /// exhaustive pattern makes a new field fail to compile until it is listed.
    #[must_use]
    pub fn fields(&self) -> [(&'static str, ViewValue<'_>); 6] {
        let Self {
            kyc_level,
            exposure_limit,
            frozen,
            max_leverage,
            risk_score,
            trading_state,
        } = self;
        [
            ("kyc_level", ViewValue::Text(kyc_level.as_str())),
            ("exposure_limit", ViewValue::Decimal(exposure_limit.get())),
            ("frozen", ViewValue::Flag(*frozen)),
            ("max_leverage", ViewValue::Decimal(max_leverage.get())),
            ("risk_score", ViewValue::Decimal(risk_score.get())),
            ("trading_state", ViewValue::Text(trading_state.as_str())),
        ]
    }
}

impl Default for RiskProfile {
    /// A conservative profile: KYC L0, no exposure allowed, 1x leverage, active.
    fn default() -> Self {
        Self {
            kyc_level: KycLevel::L0,
            exposure_limit: Notional::ZERO,
            frozen: false,
            max_leverage: Leverage::ONE,
            risk_score: RiskScore::ZERO,
            trading_state: TradingState::Active,
        }
    }
}

/// An open position in one symbol (one-way mode: at most one per symbol). Entry price
/// and leverage are valid by type; the engine refuses a position whose symbol is not an
/// instrument ([`crate::engine::EventError::UnknownSymbol`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct Position {
    /// The instrument.
    pub symbol: Symbol,
    /// Signed size in instrument units: long is positive.
    pub size: SignedQuantity,
    /// Average entry price.
    pub entry_price: Price,
    /// The leverage the position was opened with; its initial margin is notional / leverage.
    pub leverage: Leverage,
}

impl Position {
    /// Every field by name, in declaration order, for the account view (a new field fails
    /// to compile until listed).
    #[must_use]
    pub fn fields(&self) -> [(&'static str, ViewValue<'_>); 4] {
        let Self {
            symbol,
            size,
            entry_price,
            leverage,
        } = self;
        [
            ("symbol", ViewValue::Text(symbol.as_str())),
            ("size", ViewValue::Decimal(size.get())),
            ("entry_price", ViewValue::Decimal(entry_price.get())),
            ("leverage", ViewValue::Decimal(leverage.get())),
        ]
    }
}

/// A resting order that has not fully filled.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct OpenOrder {
    /// The client order id.
    pub order_id: OrderId,
    /// The instrument.
    pub symbol: Symbol,
    /// Buy or sell.
    pub side: Side,
    /// Unfilled quantity.
    pub quantity: Quantity,
    /// Limit price (resting orders are limit orders).
    pub price: Price,
    /// Requested leverage; the order's initial margin is notional / leverage.
    pub leverage: Leverage,
    /// Reduce-only orders hold no initial margin and add no exposure.
    pub reduce_only: bool,
}

impl OpenOrder {
    /// Every field by name, in declaration order, for the account view (a new field fails
    /// to compile until listed).
    #[must_use]
    pub fn fields(&self) -> [(&'static str, ViewValue<'_>); 7] {
        let Self {
            order_id,
            symbol,
            side,
            quantity,
            price,
            leverage,
            reduce_only,
        } = self;
        [
            ("order_id", ViewValue::Text(order_id.as_str())),
            ("symbol", ViewValue::Text(symbol.as_str())),
            ("side", ViewValue::Text(side.as_str())),
            ("quantity", ViewValue::Decimal(quantity.get())),
            ("price", ViewValue::Decimal(price.get())),
            ("leverage", ViewValue::Decimal(leverage.get())),
            ("reduce_only", ViewValue::Flag(*reduce_only)),
        ]
    }
}

/// Initial margin held for an approved order that the order service has not yet
/// confirmed as open (see [`crate::engine::RiskEngine`] reservations).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Reservation {
    /// The approved order.
    pub order_id: OrderId,
    /// The initial margin held for it.
    pub amount: Money,
    /// The exposure (order notional) held for it.
    pub notional: Notional,
}

impl Reservation {
    /// Every field by name, in declaration order, for the account view (a new field fails
    /// to compile until listed).
    #[must_use]
    pub fn fields(&self) -> [(&'static str, ViewValue<'_>); 3] {
        let Self {
            order_id,
            amount,
            notional,
        } = self;
        [
            ("order_id", ViewValue::Text(order_id.as_str())),
            ("amount", ViewValue::Decimal(amount.get())),
            ("notional", ViewValue::Decimal(notional.get())),
        ]
    }
}

/// A recently approved order, remembered for duplicate-id and rate-limit checks.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RecentOrder {
    /// The client order id.
    pub order_id: OrderId,
    /// When it was approved (the `now` of that check).
    pub at: DateTime<Utc>,
}

/// Approved orders within the duplicate and rate-limit horizons: a time-ordered queue
/// for expiry and rate counting, and an id index so a duplicate lookup costs one hash
/// probe however many orders the horizon holds.
///
/// The index holds, for each id, the number of its latest approval (approvals are
/// numbered from 0 in push order); the queue keeps each approval's id hash beside it, so
/// expiry finds the index slot by that hash and number without hashing or comparing the
/// id again, and the index stores no second copy of the id.
#[derive(Debug, Clone, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(from = "Vec<RecentOrder>", into = "Vec<RecentOrder>")
)]
pub struct RecentOrders {
    by_time: VecDeque<Held>,
    /// How many approvals expiry has taken off the front: approval `n` sits at
    /// `by_time[n - expired]`.
    expired: u64,
    /// Approval numbers, found by the hash of their id.
    latest: HashTable<u64>,
    hasher: RandomState,
}

/// An order id's hash in one [`RecentOrders`]' index (each history seeds its own hasher,
/// so a hash is only good for the history that made it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IdHash(u64);

/// An approval in the queue, with its id's hash.
#[derive(Debug, Clone)]
struct Held {
    order: RecentOrder,
    hash: u64,
}

/// The entry of approval `n` in a queue that has lost `expired` approvals off its front,
/// if it is still held. (A free function so that `push` can read the queue while it
/// holds the index mutably.)
fn held_in(by_time: &VecDeque<Held>, expired: u64, n: u64) -> Option<&Held> {
    let index = usize::try_from(n.checked_sub(expired)?).ok()?;
    by_time.get(index)
}

impl RecentOrders {
    /// The queue entry of approval `n`, if it is still held.
    fn held(&self, n: u64) -> Option<&Held> {
        held_in(&self.by_time, self.expired, n)
    }

    /// The number of `order_id`'s latest approval held, found with its `hash`.
    fn latest_of(&self, order_id: &OrderId, hash: u64) -> Option<u64> {
        self.latest
            .find(hash, |&n| {
                self.held(n)
                    .is_some_and(|h| h.hash == hash && h.order.order_id == *order_id)
            })
            .copied()
    }

    /// The hash of `order_id` in this history's index, for [`Self::seen_after_hashed`] and
    /// [`Self::push_hashed`], so that a check that looks an id up and then remembers it
    /// hashes it once.
    pub(crate) fn id_hash(&self, order_id: &OrderId) -> IdHash {
        IdHash(self.hasher.hash_one(order_id.as_str()))
    }

    /// Remembers an approval. Times are expected in non-decreasing order; an earlier
    /// time is clamped to the latest held so the queue stays ordered.
    pub fn push(&mut self, order_id: OrderId, at: DateTime<Utc>) {
        let hash = self.id_hash(&order_id);
        self.push_hashed(order_id, at, hash);
    }

    /// [`Self::push`] with the id's hash from [`Self::id_hash`] of this same history.
    pub(crate) fn push_hashed(&mut self, order_id: OrderId, at: DateTime<Utc>, hash: IdHash) {
        debug_assert_eq!(hash, self.id_hash(&order_id));
        let IdHash(hash) = hash;
        let at = self.by_time.back().map_or(at, |last| at.max(last.order.at));
        let n = self.expired.saturating_add(self.by_time.len() as u64);
        self.by_time.push_back(Held {
            order: RecentOrder { order_id, at },
            hash,
        });
        let (by_time, expired) = (&self.by_time, self.expired);
        let held = |m: u64| held_in(by_time, expired, m);
        let Some(new) = by_time.back() else {
            return;
        };
        let same_id = |&m: &u64| {
            held(m).is_some_and(|h| h.hash == hash && h.order.order_id == new.order.order_id)
        };
        match self.latest.find_entry(hash, same_id) {
            // Approved again: the index now points at this approval.
            Ok(mut slot) => *slot.get_mut() = n,
            Err(absent) => {
                absent
                    .into_table()
                    .insert_unique(hash, n, |&m| held(m).map_or(0, |h| h.hash));
            }
        }
    }

    /// Forgets approvals at or before `cutoff`.
    pub fn prune(&mut self, cutoff: DateTime<Utc>) {
        while self.by_time.front().is_some_and(|h| h.order.at <= cutoff) {
            let Some(Held { hash, .. }) = self.by_time.pop_front() else {
                break;
            };
            let n = self.expired;
            self.expired = n.saturating_add(1);
            // The id leaves the index only when this was its latest approval.
            if let Ok(slot) = self.latest.find_entry(hash, |&m| m == n) {
                slot.remove();
            }
        }
    }

    /// Whether `order_id` was approved after `cutoff`.
    #[must_use]
    pub fn seen_after(&self, order_id: &OrderId, cutoff: DateTime<Utc>) -> bool {
        self.seen_after_hashed(order_id, self.id_hash(order_id), cutoff)
    }

    /// [`Self::seen_after`] with the id's hash from [`Self::id_hash`] of this same history.
    pub(crate) fn seen_after_hashed(
        &self,
        order_id: &OrderId,
        IdHash(hash): IdHash,
        cutoff: DateTime<Utc>,
    ) -> bool {
        self.latest_of(order_id, hash)
            .and_then(|n| self.held(n))
            .is_some_and(|h| h.order.at > cutoff)
    }

    /// How many approvals came after `cutoff`, counting at most `limit` (the rate check
    /// needs no more, so the cost is bounded by the limit).
    #[must_use]
    pub fn count_after(&self, cutoff: DateTime<Utc>, limit: usize) -> usize {
        self.by_time
            .iter()
            .rev()
            .take(limit)
            .take_while(|h| h.order.at > cutoff)
            .count()
    }

    /// The number of approvals held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.by_time.len()
    }

    /// True when none are held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.by_time.is_empty()
    }

    /// The approvals held, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &RecentOrder> {
        self.by_time.iter().map(|h| &h.order)
    }
}

/// Two histories are equal when they hold the same approvals in the same order (the
/// index follows from them; its hashes depend on each history's seed).
impl PartialEq for RecentOrders {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for RecentOrders {}

impl From<Vec<RecentOrder>> for RecentOrders {
    fn from(orders: Vec<RecentOrder>) -> Self {
        let mut recent = Self::default();
        for o in orders {
            recent.push(o.order_id, o.at);
        }
        recent
    }
}

impl From<RecentOrders> for Vec<RecentOrder> {
    fn from(recent: RecentOrders) -> Self {
        recent.by_time.into_iter().map(|h| h.order).collect()
    }
}

/// Everything the pre-trade check needs to know about one account.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AccountSnapshot {
    /// The account.
    pub account_id: AccountId,
    /// Its owner; a request naming another user is refused.
    pub user_id: UserId,
    /// Limits and flags.
    pub profile: RiskProfile,
    /// Wallet balance (collateral) in the settlement currency, before unrealized PnL.
    pub wallet_balance: Money,
    /// Open positions, at most one per symbol.
    pub positions: Vec<Position>,
    /// Resting orders.
    pub open_orders: Vec<OpenOrder>,
    /// Margin held for approved orders not yet confirmed open.
    pub reservations: Vec<Reservation>,
    /// Approved orders within the duplicate and rate-limit horizons.
    pub recent_orders: RecentOrders,
}

/// The account view every adapter renders (gRPC `GetAccount`, Python
/// `RiskEngine.account`): the snapshot less its recent-order history, with the last applied
/// event sequence. Items render through their `fields()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountView<'a> {
    /// The account.
    pub account_id: &'a AccountId,
    /// Its owner.
    pub user_id: &'a UserId,
    /// Limits and flags ([`RiskProfile::fields`]).
    pub profile: &'a RiskProfile,
    /// Wallet balance, before unrealized PnL.
    pub wallet_balance: Money,
    /// Open positions ([`Position::fields`]).
    pub positions: &'a [Position],
    /// Resting orders ([`OpenOrder::fields`]).
    pub open_orders: &'a [OpenOrder],
    /// Margin held for approved orders ([`Reservation::fields`]).
    pub reservations: &'a [Reservation],
    /// The sequence of the last event applied to the account.
    pub last_seq: u64,
}

impl AccountSnapshot {
    /// The account view, with `last_seq` the last applied event sequence. The exhaustive
    /// pattern makes a new snapshot field fail to compile until it is placed in the view
    /// or left out here.
    #[must_use]
    pub fn view(&self, last_seq: u64) -> AccountView<'_> {
        let Self {
            account_id,
            user_id,
            profile,
            wallet_balance,
            positions,
            open_orders,
            reservations,
            // The engine's own duplicate and rate-limit memory, not account state.
            recent_orders: _,
        } = self;
        AccountView {
            account_id,
            user_id,
            profile,
            wallet_balance: *wallet_balance,
            positions,
            open_orders,
            reservations,
            last_seq,
        }
    }

    /// A new, empty account with the given profile.
    #[must_use]
    pub fn new(account_id: AccountId, user_id: UserId, profile: RiskProfile) -> Self {
        Self {
            account_id,
            user_id,
            profile,
            wallet_balance: Money::ZERO,
            positions: Vec::new(),
            open_orders: Vec::new(),
            reservations: Vec::new(),
            recent_orders: RecentOrders::default(),
        }
    }

    /// The position in `symbol`, if any.
    #[must_use]
    pub fn position(&self, symbol: &Symbol) -> Option<&Position> {
        self.positions.iter().find(|p| &p.symbol == symbol)
    }

    /// The signed position size in `symbol` (zero when flat).
    #[must_use]
    pub fn position_size(&self, symbol: &Symbol) -> SignedQuantity {
        self.position(symbol)
            .map_or(SignedQuantity::ZERO, |p| p.size)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// One step on a history: ids from a small set so that repeats happen, times in
    /// microseconds from the epoch (a push may go back in time: it is clamped).
    #[derive(Debug, Clone)]
    enum Op {
        Push(u8, i64),
        Prune(i64),
        Seen(u8, i64),
        Count(i64, usize),
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            4 => (0u8..12, 0i64..400).prop_map(|(id, t)| Op::Push(id, t)),
            1 => (0i64..400).prop_map(Op::Prune),
            2 => (0u8..12, 0i64..400).prop_map(|(id, t)| Op::Seen(id, t)),
            1 => (0i64..400, 0usize..20).prop_map(|(t, l)| Op::Count(t, l)),
        ]
    }

    fn at(micros: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(micros).unwrap()
    }

    proptest::proptest! {
        /// The indexed history answers as a plain list of approvals scanned in full:
        /// pushes clamp to the latest time, pruning drops the front up to the cutoff, an
        /// id is seen when any approval of it lies after the cutoff, and the rate count
        /// is the newest approvals after the cutoff, at most `limit`.
        #[test]
        fn recent_orders_agree_with_a_list(ops in proptest::collection::vec(op(), 0..200)) {
            let mut recent = RecentOrders::default();
            let mut list: Vec<(OrderId, DateTime<Utc>)> = Vec::new();
            for op in ops {
                match op {
                    Op::Push(id, t) => {
                        let id = OrderId::new(&format!("o-{id}"));
                        recent.push(id.clone(), at(t));
                        let t = list.last().map_or(at(t), |(_, last)| at(t).max(*last));
                        list.push((id, t));
                    }
                    Op::Prune(t) => {
                        recent.prune(at(t));
                        list.retain(|(_, held)| *held > at(t));
                    }
                    Op::Seen(id, t) => {
                        let id = OrderId::new(&format!("o-{id}"));
                        let expected = list.iter().any(|(i, held)| *i == id && *held > at(t));
                        proptest::prop_assert_eq!(recent.seen_after(&id, at(t)), expected);
                    }
                    Op::Count(t, limit) => {
                        let expected = list.iter().filter(|(_, held)| *held > at(t)).count();
                        proptest::prop_assert_eq!(recent.count_after(at(t), limit), expected.min(limit));
                    }
                }
                proptest::prop_assert_eq!(recent.len(), list.len());
                let held: Vec<_> = recent.iter().map(|o| (o.order_id.clone(), o.at)).collect();
                proptest::prop_assert_eq!(&held, &list);
            }
            // Rebuilt from its list (the serde form), the history is equal and answers alike.
            let rebuilt = RecentOrders::from(Vec::<RecentOrder>::from(recent.clone()));
            proptest::prop_assert_eq!(&rebuilt, &recent);
            for id in 0..12 {
                let id = OrderId::new(&format!("o-{id}"));
                proptest::prop_assert_eq!(
                    rebuilt.seen_after(&id, at(-1)),
                    list.iter().any(|(i, _)| *i == id)
                );
            }
        }
    }

    /// The view carries the snapshot's state and sequence; each item lists its fields.
    #[test]
    fn view_lists_the_snapshot_fields() {
        let mut a = AccountSnapshot::new(
            AccountId::new("A1"),
            UserId::new("U1"),
            RiskProfile::default(),
        );
        a.wallet_balance = "250.5".parse().unwrap();
        a.positions.push(Position {
            symbol: Symbol::new("BTCUSDT"),
            size: "-0.5".parse().unwrap(),
            entry_price: "50000".parse().unwrap(),
            leverage: "10".parse().unwrap(),
        });
        a.recent_orders
            .push(OrderId::new("O1"), DateTime::<Utc>::UNIX_EPOCH);
        let view = a.view(7);
        assert_eq!(view.account_id.as_str(), "A1");
        assert_eq!(view.last_seq, 7);
        assert_eq!(view.wallet_balance.get(), Decimal::new(2505, 1));
        let position = view.positions.first().unwrap().fields();
        assert_eq!(
            position,
            [
                ("symbol", ViewValue::Text("BTCUSDT")),
                ("size", ViewValue::Decimal(Decimal::new(-5, 1))),
                ("entry_price", ViewValue::Decimal(Decimal::from(50_000))),
                ("leverage", ViewValue::Decimal(Decimal::from(10))),
            ]
        );
        let profile = view.profile.fields();
        assert_eq!(profile.first(), Some(&("kyc_level", ViewValue::Text("L0"))));
        assert_eq!(
            profile.last(),
            Some(&("trading_state", ViewValue::Text("ACTIVE")))
        );
    }
}
