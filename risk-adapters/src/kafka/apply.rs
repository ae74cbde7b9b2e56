//! Input topics to engine events: the payloads (one struct per schema, the same field
//! names in Avro and JSON), their conversion through the core's checked constructors, and
//! the per-entity versions that make a redelivered or older event a no-op.
//!
//! Topics are not ordered relative to each other, so nothing assumes one sequence per
//! account. Each entity carries its own version and is compared only with itself:
//!
//! | entity | key | version |
//! |---|---|---|
//! | profile field group (KYC, frozen, limits, trading state) | account | `(event_ts_ms, event_id)` |
//! | position | account, symbol | `version` |
//! | wallet | account, currency | `version` |
//! | order, as the order service sees it | account, order id | `version` on `order.command.v1` |
//! | order, as the matching engine sees it | account, order id | `version` on `engine.event.v1` |
//! | instrument | symbol | `version` |
//!
//! Profile fields are versioned one group at a time, so `user.frozen.v1` and
//! `user.kyc.updated.v1` commute whichever arrives first. The engine's own per-account
//! sequence is assigned here (the last applied one plus one): the consumer is the only
//! writer of account events when Kafka feeds the engine.
//!
//! An account event for an account the engine does not know creates it with the
//! conservative default profile (KYC L0, no exposure allowed), so checks on it stay
//! rejected until its profile arrives, and a position that arrives before its user is
//! kept rather than dead-lettered.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use risk_core::account::{OpenOrder, RiskProfile};
use risk_core::engine::{
    AccountEvent, Applied, EngineEvent, EventError, MarketEvent, RiskEngine, Seq,
};
use risk_core::ids::{AccountId, OrderId, Symbol, UserId};
use risk_core::market::{Instrument, InstrumentSpec};
use risk_core::model::{InstrumentStatus, KycLevel, Side, TradingState, UnknownName};
use risk_core::num::{
    self, FieldError, Leverage, LotSize, Money, Multiplier, Notional, NumberError, Price,
    PriceBand, Quantity, RiskScore, SignedQuantity,
};
use risk_core::Decimal;
use serde::{Deserialize, Serialize};

use super::avro::{self, AvroError};
use super::topics::InputTopic;

/// Why a message was not applied: the dead-letter reason.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// The payload does not decode.
    #[error(transparent)]
    Decode(#[from] AvroError),
    /// A number field is malformed or out of range.
    #[error("field `{field}`: {source}")]
    Number {
        /// The field.
        field: &'static str,
        /// Why.
        source: NumberError,
    },
    /// An enumeration field holds an unknown name.
    #[error("field `{field}`: {source}")]
    Name {
        /// The field.
        field: &'static str,
        /// Why.
        source: UnknownName,
    },
    /// A field required by this kind of event is absent or empty.
    #[error("field `{field}` is required {rule}")]
    Missing {
        /// The field.
        field: &'static str,
        /// When it is required.
        rule: &'static str,
    },
    /// A time outside the representable range.
    #[error("field `{field}`: {value} is not a valid epoch-milliseconds time")]
    Time {
        /// The field.
        field: &'static str,
        /// The value.
        value: i64,
    },
    /// A field broke a rule of the core's constructors.
    #[error(transparent)]
    Field(#[from] FieldError),
    /// The engine refused the event.
    #[error("refused by the engine: {0}")]
    Refused(#[from] EventError),
}

/// What applying one message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The engine's state changed.
    Applied,
    /// The entity already had this version or a newer one; nothing changed.
    Duplicate,
    /// A mark not newer than the one held; nothing changed.
    Stale,
    /// A position for an instrument not yet listed: held, and applied when the
    /// instrument arrives.
    Parked,
}

fn dec(field: &'static str, text: &str) -> Result<Decimal, ApplyError> {
    num::parse_decimal(text).map_err(|source| ApplyError::Number { field, source })
}

macro_rules! typed {
    ($name:ident, $ty:ty) => {
        fn $name(field: &'static str, text: &str) -> Result<$ty, ApplyError> {
            <$ty>::new(dec(field, text)?).map_err(|source| ApplyError::Number { field, source })
        }
    };
}
typed!(price, Price);
typed!(quantity, Quantity);
typed!(signed_quantity, SignedQuantity);
typed!(notional, Notional);
typed!(leverage, Leverage);
typed!(price_band, PriceBand);
typed!(lot_size, LotSize);
typed!(multiplier, Multiplier);
typed!(risk_score, RiskScore);
typed!(money, Money);

fn name<T: FromStr<Err = UnknownName>>(field: &'static str, text: &str) -> Result<T, ApplyError> {
    text.parse()
        .map_err(|source| ApplyError::Name { field, source })
}

fn required<'a>(
    field: &'static str,
    value: &'a Option<String>,
    rule: &'static str,
) -> Result<&'a str, ApplyError> {
    value
        .as_deref()
        .filter(|v| !v.is_empty())
        .ok_or(ApplyError::Missing { field, rule })
}

fn non_empty<'a>(field: &'static str, value: &'a str) -> Result<&'a str, ApplyError> {
    if value.is_empty() {
        Err(ApplyError::Missing {
            field,
            rule: "and must not be empty",
        })
    } else {
        Ok(value)
    }
}

fn time_ms(field: &'static str, value: i64) -> Result<DateTime<Utc>, ApplyError> {
    DateTime::<Utc>::from_timestamp_millis(value).ok_or(ApplyError::Time { field, value })
}

/// `user.*.v1` and `risk.exposure.v2`: profile changes. Absent fields keep their value
/// (`user.created.v1` starts from the default profile).
#[derive(Debug, Clone, Deserialize)]
pub struct ProfilePayload {
    /// Unique id of the upstream event.
    pub event_id: String,
    /// When it was emitted, epoch ms.
    pub event_ts_ms: i64,
    /// The account.
    pub account_id: String,
    /// The owner.
    pub user_id: String,
    /// KYC level.
    #[serde(default)]
    pub kyc_level: Option<String>,
    /// Exposure limit.
    #[serde(default)]
    pub exposure_limit: Option<String>,
    /// Leverage cap.
    #[serde(default)]
    pub max_leverage: Option<String>,
    /// Risk score.
    #[serde(default)]
    pub risk_score: Option<String>,
    /// Frozen flag.
    #[serde(default)]
    pub frozen: Option<bool>,
    /// Account kill switch.
    #[serde(default)]
    pub trading_state: Option<String>,
}

/// `position.updated.v1` and `position.closed.v1` (which has no size, price or leverage).
#[derive(Debug, Clone, Deserialize)]
pub struct PositionPayload {
    /// The account.
    pub account_id: String,
    /// The owner.
    pub user_id: String,
    /// The instrument.
    pub symbol: String,
    /// Signed size (updated only).
    #[serde(default)]
    pub size: Option<String>,
    /// Average entry price (updated only).
    #[serde(default)]
    pub entry_price: Option<String>,
    /// Leverage (updated only).
    #[serde(default)]
    pub leverage: Option<String>,
    /// The position's version.
    pub version: i64,
    /// Epoch ms.
    pub event_ts_ms: i64,
}

/// `wallet.balance_changed.v1`.
#[derive(Debug, Clone, Deserialize)]
pub struct BalancePayload {
    /// The account.
    pub account_id: String,
    /// The owner.
    pub user_id: String,
    /// Unique id of the change.
    pub event_id: String,
    /// Wallet currency.
    pub currency: String,
    /// Signed change.
    pub delta: String,
    /// Balance after, informational.
    #[serde(default)]
    pub balance: Option<String>,
    /// The wallet's version.
    pub version: i64,
    /// Epoch ms.
    pub event_ts_ms: i64,
}

/// `order.command.v1` and `engine.event.v1` (the command has `command`, the engine event
/// `type` and the order's figures).
#[derive(Debug, Clone, Deserialize)]
pub struct OrderPayload {
    /// The account.
    pub account_id: String,
    /// The owner.
    pub user_id: String,
    /// Unique id.
    pub event_id: String,
    /// Client order id.
    pub order_id: String,
    /// `CANCEL` or `RELEASE` (order.command.v1).
    #[serde(default)]
    pub command: Option<String>,
    /// `ORDER_OPENED`, `ORDER_FILLED` or `ORDER_CANCELLED` (engine.event.v1).
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// Instrument.
    #[serde(default)]
    pub symbol: Option<String>,
    /// Side.
    #[serde(default)]
    pub side: Option<String>,
    /// Resting or filled quantity.
    #[serde(default)]
    pub quantity: Option<String>,
    /// Limit or fill price.
    #[serde(default)]
    pub price: Option<String>,
    /// Leverage.
    #[serde(default)]
    pub leverage: Option<String>,
    /// Reduce-only.
    #[serde(default)]
    pub reduce_only: Option<bool>,
    /// The order's version on this topic.
    pub version: i64,
    /// Epoch ms.
    pub event_ts_ms: i64,
}

/// `md.instrument.created.v1` and `md.instrument.updated.v1`.
#[derive(Debug, Clone, Deserialize)]
pub struct InstrumentPayload {
    /// Symbol.
    pub symbol: String,
    /// Tick size.
    pub tick_size: String,
    /// Lot size.
    pub lot_size: String,
    /// Smallest quantity.
    pub min_quantity: String,
    /// Largest quantity.
    pub max_quantity: String,
    /// Contract multiplier.
    pub contract_multiplier: String,
    /// Leverage cap.
    pub max_leverage: String,
    /// KYC level needed.
    pub required_kyc: String,
    /// Listing status.
    pub status: String,
    /// Price band.
    #[serde(default)]
    pub price_band: Option<String>,
    /// The definition's version.
    pub version: i64,
    /// Epoch ms.
    pub event_ts_ms: i64,
}

/// `md.mark.v1`.
#[derive(Debug, Clone, Deserialize)]
pub struct MarkPayload {
    /// Symbol.
    pub symbol: String,
    /// Mark price.
    pub price: String,
    /// Observation time, epoch ms.
    pub ts_ms: i64,
}

/// The profile field groups, each versioned on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ProfileField {
    Kyc,
    Frozen,
    Limits,
    State,
}

/// The key of one versioned entity.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Entity {
    Profile(AccountId, ProfileField),
    Position(AccountId, Symbol),
    Wallet(AccountId, String),
    OrderCommand(AccountId, OrderId),
    EngineOrder(AccountId, OrderId),
    Instrument(Symbol),
}

/// An entity version: ordered, compared only with the same entity's.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Version {
    Number(i64),
    Event(i64, String),
}

/// A position held until its instrument is listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Parked {
    account_id: AccountId,
    user_id: UserId,
    symbol: Symbol,
    size: SignedQuantity,
    entry_price: Price,
    leverage: Leverage,
    version: Version,
}

impl Parked {
    fn event(&self) -> AccountEvent {
        AccountEvent::PositionUpdate {
            symbol: self.symbol.clone(),
            size: self.size,
            entry_price: self.entry_price,
            leverage: self.leverage,
        }
    }
}

/// What an [`Applier`] remembers besides the engine's state: every entity's version and
/// the positions held for instruments not yet listed. Serializes (exact decimals) for
/// snapshots; [`Applier::export`] and [`Applier::restore`] take and give it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ApplierState {
    /// Entity versions, ordered by entity.
    versions: Vec<(Entity, Version)>,
    /// Held positions, ordered by account and symbol.
    parked: Vec<Parked>,
}

impl ApplierState {
    /// How many entity versions it holds.
    #[must_use]
    pub fn entity_count(&self) -> usize {
        self.versions.len()
    }

    /// How many positions it holds for instruments not yet listed.
    #[must_use]
    pub fn parked_count(&self) -> usize {
        self.parked.len()
    }
}

/// Applies input-topic messages to an engine, idempotently per entity.
#[derive(Debug)]
pub struct Applier {
    engine: Arc<RiskEngine>,
    versions: HashMap<Entity, Version>,
    parked: HashMap<Entity, Parked>,
}

impl Applier {
    /// An applier writing to `engine`.
    #[must_use]
    pub fn new(engine: Arc<RiskEngine>) -> Self {
        Self {
            engine,
            versions: HashMap::new(),
            parked: HashMap::new(),
        }
    }

    /// An applier writing to `engine` that remembers `state` (taken by [`Applier::export`]
    /// together with the engine's state, which the caller restores).
    #[must_use]
    pub fn restore(engine: Arc<RiskEngine>, state: ApplierState) -> Self {
        let parked = state
            .parked
            .into_iter()
            .map(|p| (Entity::Position(p.account_id.clone(), p.symbol.clone()), p))
            .collect();
        Self {
            engine,
            versions: state.versions.into_iter().collect(),
            parked,
        }
    }

    /// A copy of what this applier remembers, in a stable order. Consistent with the
    /// engine's state when both are taken between two applies.
    #[must_use]
    pub fn export(&self) -> ApplierState {
        let mut versions: Vec<(Entity, Version)> = self
            .versions
            .iter()
            .map(|(e, v)| (e.clone(), v.clone()))
            .collect();
        versions.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut parked: Vec<Parked> = self.parked.values().cloned().collect();
        parked.sort_unstable_by(|a, b| (&a.account_id, &a.symbol).cmp(&(&b.account_id, &b.symbol)));
        ApplierState { versions, parked }
    }

    /// The engine written to.
    #[must_use]
    pub fn engine(&self) -> &Arc<RiskEngine> {
        &self.engine
    }

    /// How many entity versions are held.
    #[must_use]
    pub fn entity_count(&self) -> usize {
        self.versions.len()
    }

    /// Decodes and applies one message of `topic`.
    ///
    /// # Errors
    /// [`ApplyError`] when the payload does not decode, a field is invalid or the engine
    /// refuses the event; nothing changes then, the entity version included.
    pub fn apply(&mut self, topic: InputTopic, payload: &[u8]) -> Result<Outcome, ApplyError> {
        let base = topic.base();
        match topic {
            InputTopic::UserCreated
            | InputTopic::UserUpdated
            | InputTopic::UserVerified
            | InputTopic::UserKycUpdated
            | InputTopic::UserFrozen
            | InputTopic::UserUnfrozen
            | InputTopic::RiskExposure => {
                let mut p: ProfilePayload = avro::decode(base, payload)?;
                match topic {
                    InputTopic::UserFrozen => p.frozen = Some(true),
                    InputTopic::UserUnfrozen => p.frozen = Some(false),
                    InputTopic::UserVerified | InputTopic::UserKycUpdated => {
                        required("kyc_level", &p.kyc_level, "on this topic")?;
                    }
                    _ => {}
                }
                self.profile(&p, topic == InputTopic::UserCreated)
            }
            InputTopic::PositionUpdated | InputTopic::PositionClosed => {
                let p: PositionPayload = avro::decode(base, payload)?;
                self.position(&p, topic == InputTopic::PositionClosed)
            }
            InputTopic::WalletBalanceChanged => {
                let p: BalancePayload = avro::decode(base, payload)?;
                self.balance(&p)
            }
            InputTopic::OrderCommand | InputTopic::EngineEvent => {
                let p: OrderPayload = avro::decode(base, payload)?;
                self.order(&p, topic == InputTopic::EngineEvent)
            }
            InputTopic::InstrumentCreated | InputTopic::InstrumentUpdated => {
                let p: InstrumentPayload = avro::decode(base, payload)?;
                self.instrument(&p)
            }
            InputTopic::Mark => {
                let p: MarkPayload = avro::decode(base, payload)?;
                let event = EngineEvent::Market(MarketEvent::Mark {
                    symbol: Symbol::new(non_empty("symbol", &p.symbol)?),
                    price: price("price", &p.price)?,
                    at: time_ms("ts_ms", p.ts_ms)?,
                });
                Ok(match self.engine.apply(&event)? {
                    Applied::Stale => Outcome::Stale,
                    Applied::Duplicate { .. } => Outcome::Duplicate,
                    Applied::Applied => Outcome::Applied,
                })
            }
        }
    }

    fn is_new(&self, entity: &Entity, version: &Version) -> bool {
        self.versions.get(entity).is_none_or(|held| version > held)
    }

    /// Applies an account event with the next engine sequence, creating the account with
    /// the default profile when the engine does not know it.
    fn apply_account(
        &self,
        account_id: &AccountId,
        user_id: &UserId,
        event: AccountEvent,
    ) -> Result<(), ApplyError> {
        let last = match self.engine.account(account_id) {
            Some((_, seq)) => seq,
            None => {
                self.engine.apply(&EngineEvent::Account {
                    account_id: account_id.clone(),
                    seq: Seq::MIN,
                    event: AccountEvent::ProfileUpsert {
                        user_id: user_id.clone(),
                        profile: RiskProfile::default(),
                    },
                })?;
                1
            }
        };
        self.engine.apply(&EngineEvent::Account {
            account_id: account_id.clone(),
            seq: Seq::new(last + 1)?,
            event,
        })?;
        Ok(())
    }

    fn profile(&mut self, p: &ProfilePayload, created: bool) -> Result<Outcome, ApplyError> {
        let account_id = AccountId::new(non_empty("account_id", &p.account_id)?);
        let user_id = UserId::new(non_empty("user_id", &p.user_id)?);
        non_empty("event_id", &p.event_id)?;
        time_ms("event_ts_ms", p.event_ts_ms)?;
        let version = Version::Event(p.event_ts_ms, p.event_id.clone());
        let held = self.engine.account(&account_id);
        let defaults = RiskProfile::default();
        // `user.created.v1` sets every group (absent fields take the defaults); the
        // others set only the groups whose fields they carry. Everything is converted
        // before anything changes.
        let kyc = p
            .kyc_level
            .as_deref()
            .map(|t| name::<KycLevel>("kyc_level", t))
            .transpose()?
            .or(created.then_some(defaults.kyc_level));
        let frozen = p.frozen.or(created.then_some(defaults.frozen));
        let limit = p
            .exposure_limit
            .as_deref()
            .map(|t| notional("exposure_limit", t))
            .transpose()?;
        let lev = p
            .max_leverage
            .as_deref()
            .map(|t| leverage("max_leverage", t))
            .transpose()?;
        let score = p
            .risk_score
            .as_deref()
            .map(|t| risk_score("risk_score", t))
            .transpose()?;
        let state = p
            .trading_state
            .as_deref()
            .map(|t| name::<TradingState>("trading_state", t))
            .transpose()?
            .or(created.then_some(defaults.trading_state));
        let limits = created || limit.is_some() || lev.is_some() || score.is_some();
        let fresh = |field| self.is_new(&Entity::Profile(account_id.clone(), field), &version);
        let kyc = kyc.filter(|_| fresh(ProfileField::Kyc));
        let frozen = frozen.filter(|_| fresh(ProfileField::Frozen));
        let limits = limits && fresh(ProfileField::Limits);
        let state = state.filter(|_| fresh(ProfileField::State));
        if held.is_some() && kyc.is_none() && frozen.is_none() && !limits && state.is_none() {
            return Ok(Outcome::Duplicate);
        }
        let (mut next, seq) = held.map_or((defaults.clone(), 1), |(s, seq)| (s.profile, seq + 1));
        if let Some(kyc) = kyc {
            next.kyc_level = kyc;
        }
        if let Some(frozen) = frozen {
            next.frozen = frozen;
        }
        if limits {
            let keep = if created { &defaults } else { &next };
            let (l, m, r) = (
                limit.unwrap_or(keep.exposure_limit),
                lev.unwrap_or(keep.max_leverage),
                score.unwrap_or(keep.risk_score),
            );
            next.exposure_limit = l;
            next.max_leverage = m;
            next.risk_score = r;
        }
        if let Some(state) = state {
            next.trading_state = state;
        }
        self.engine.apply(&EngineEvent::Account {
            account_id: account_id.clone(),
            seq: Seq::new(seq)?,
            event: AccountEvent::ProfileUpsert {
                user_id,
                profile: next,
            },
        })?;
        let groups = [
            (ProfileField::Kyc, kyc.is_some()),
            (ProfileField::Frozen, frozen.is_some()),
            (ProfileField::Limits, limits),
            (ProfileField::State, state.is_some()),
        ];
        for (field, set) in groups {
            if set {
                self.versions
                    .insert(Entity::Profile(account_id.clone(), field), version.clone());
            }
        }
        Ok(Outcome::Applied)
    }

    fn position(&mut self, p: &PositionPayload, closed: bool) -> Result<Outcome, ApplyError> {
        let account_id = AccountId::new(non_empty("account_id", &p.account_id)?);
        let user_id = UserId::new(non_empty("user_id", &p.user_id)?);
        let symbol = Symbol::new(non_empty("symbol", &p.symbol)?);
        let entity = Entity::Position(account_id.clone(), symbol.clone());
        let version = Version::Number(p.version);
        if !self.is_new(&entity, &version) {
            return Ok(Outcome::Duplicate);
        }
        let (size, entry_price, lev) = if closed {
            let one = Price::new(Decimal::ONE).map_err(|source| ApplyError::Number {
                field: "entry_price",
                source,
            })?;
            (SignedQuantity::ZERO, one, Leverage::ONE)
        } else {
            (
                signed_quantity("size", required("size", &p.size, "on position.updated")?)?,
                price(
                    "entry_price",
                    required("entry_price", &p.entry_price, "on position.updated")?,
                )?,
                leverage(
                    "leverage",
                    required("leverage", &p.leverage, "on position.updated")?,
                )?,
            )
        };
        let position = Parked {
            account_id: account_id.clone(),
            user_id: user_id.clone(),
            symbol,
            size,
            entry_price,
            leverage: lev,
            version: version.clone(),
        };
        match self.apply_account(&account_id, &user_id, position.event()) {
            Err(ApplyError::Refused(EventError::UnknownSymbol(_))) => {
                // Instruments come on other topics, read in no particular order: hold the
                // position until its instrument is listed (the newest version per entity).
                // A redelivery or an older version of a held position is a duplicate,
                // as it is of an applied one.
                if self
                    .parked
                    .get(&entity)
                    .is_some_and(|held| version <= held.version)
                {
                    return Ok(Outcome::Duplicate);
                }
                self.parked.insert(entity, position);
                return Ok(Outcome::Parked);
            }
            other => other?,
        }
        self.parked.remove(&entity);
        self.versions.insert(entity, version);
        Ok(Outcome::Applied)
    }

    /// Applies the positions held for `symbol`, now listed.
    fn release_parked(&mut self, symbol: &Symbol) -> Result<(), ApplyError> {
        let ready: Vec<Entity> = self
            .parked
            .iter()
            .filter(|(_, p)| &p.symbol == symbol)
            .map(|(e, _)| e.clone())
            .collect();
        for entity in ready {
            if let Some(p) = self.parked.remove(&entity) {
                self.apply_account(&p.account_id, &p.user_id, p.event())?;
                self.versions.insert(entity, p.version);
            }
        }
        Ok(())
    }

    fn balance(&mut self, p: &BalancePayload) -> Result<Outcome, ApplyError> {
        let account_id = AccountId::new(non_empty("account_id", &p.account_id)?);
        let user_id = UserId::new(non_empty("user_id", &p.user_id)?);
        let entity = Entity::Wallet(
            account_id.clone(),
            non_empty("currency", &p.currency)?.to_owned(),
        );
        let version = Version::Number(p.version);
        if !self.is_new(&entity, &version) {
            return Ok(Outcome::Duplicate);
        }
        let delta = money("delta", &p.delta)?;
        self.apply_account(&account_id, &user_id, AccountEvent::BalanceChange { delta })?;
        self.versions.insert(entity, version);
        Ok(Outcome::Applied)
    }

    fn order(&mut self, p: &OrderPayload, from_engine: bool) -> Result<Outcome, ApplyError> {
        let account_id = AccountId::new(non_empty("account_id", &p.account_id)?);
        let user_id = UserId::new(non_empty("user_id", &p.user_id)?);
        let order_id = OrderId::new(non_empty("order_id", &p.order_id)?);
        let entity = if from_engine {
            Entity::EngineOrder(account_id.clone(), order_id.clone())
        } else {
            Entity::OrderCommand(account_id.clone(), order_id.clone())
        };
        let version = Version::Number(p.version);
        if !self.is_new(&entity, &version) {
            return Ok(Outcome::Duplicate);
        }
        let event = if from_engine {
            let kind = required("type", &p.kind, "on engine.event.v1")?;
            let rule = "for ORDER_OPENED and ORDER_FILLED";
            match kind {
                "ORDER_CANCELLED" => AccountEvent::OrderCancelled { order_id },
                "ORDER_OPENED" | "ORDER_FILLED" => {
                    let symbol = Symbol::new(required("symbol", &p.symbol, rule)?);
                    let side = name::<Side>("side", required("side", &p.side, rule)?)?;
                    let qty = quantity("quantity", required("quantity", &p.quantity, rule)?)?;
                    let px = price("price", required("price", &p.price, rule)?)?;
                    let lev = leverage("leverage", required("leverage", &p.leverage, rule)?)?;
                    if kind == "ORDER_OPENED" {
                        AccountEvent::OrderOpened(OpenOrder {
                            order_id,
                            symbol,
                            side,
                            quantity: qty,
                            price: px,
                            leverage: lev,
                            reduce_only: p.reduce_only.unwrap_or(false),
                        })
                    } else {
                        AccountEvent::OrderFilled {
                            order_id,
                            symbol,
                            side,
                            quantity: qty,
                            price: px,
                            leverage: lev,
                        }
                    }
                }
                _ => {
                    return Err(ApplyError::Missing {
                        field: "type",
                        rule: "to be ORDER_OPENED, ORDER_FILLED or ORDER_CANCELLED",
                    })
                }
            }
        } else {
            match required("command", &p.command, "on order.command.v1")? {
                "CANCEL" => AccountEvent::OrderCancelled { order_id },
                "RELEASE" => AccountEvent::ReservationReleased { order_id },
                _ => {
                    return Err(ApplyError::Missing {
                        field: "command",
                        rule: "to be CANCEL or RELEASE",
                    })
                }
            }
        };
        self.apply_account(&account_id, &user_id, event)?;
        self.versions.insert(entity, version);
        Ok(Outcome::Applied)
    }

    fn instrument(&mut self, p: &InstrumentPayload) -> Result<Outcome, ApplyError> {
        let symbol = Symbol::new(non_empty("symbol", &p.symbol)?);
        let entity = Entity::Instrument(symbol.clone());
        let version = Version::Number(p.version);
        if !self.is_new(&entity, &version) {
            return Ok(Outcome::Duplicate);
        }
        let instrument = Instrument::new(InstrumentSpec {
            symbol,
            tick_size: price("tick_size", &p.tick_size)?,
            lot_size: lot_size("lot_size", &p.lot_size)?,
            min_quantity: quantity("min_quantity", &p.min_quantity)?,
            max_quantity: quantity("max_quantity", &p.max_quantity)?,
            contract_multiplier: multiplier("contract_multiplier", &p.contract_multiplier)?,
            max_leverage: leverage("max_leverage", &p.max_leverage)?,
            required_kyc: name::<KycLevel>("required_kyc", &p.required_kyc)?,
            status: name::<InstrumentStatus>("status", &p.status)?,
            price_band: p
                .price_band
                .as_deref()
                .map(|t| price_band("price_band", t))
                .transpose()?,
        })?;
        let symbol = instrument.symbol().clone();
        self.engine
            .apply(&EngineEvent::Market(MarketEvent::Instrument(instrument)))?;
        self.versions.insert(entity, version);
        self.release_parked(&symbol)?;
        Ok(Outcome::Applied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config_file::{ConfigFile, Format};

    fn engine() -> Arc<RiskEngine> {
        let file = ConfigFile::parse(super::super::feed::DEMO, Format::Toml, "demo").expect("demo");
        Arc::new(RiskEngine::new(file.engine).expect("engine"))
    }

    /// An applier whose engine lists ETHUSDT (positions need a listed instrument).
    fn applier() -> Applier {
        let mut a = Applier::new(engine());
        let eth = r#"{"symbol":"ETHUSDT","tick_size":"0.01","lot_size":"0.001","min_quantity":"0.001",
            "max_quantity":"1000","contract_multiplier":"1","max_leverage":"100","required_kyc":"L0",
            "status":"TRADING","version":1,"event_ts_ms":1}"#;
        a.apply(InputTopic::InstrumentCreated, eth.as_bytes())
            .expect("instrument");
        a
    }

    fn profile_of(a: &Applier, account: &str) -> RiskProfile {
        a.engine()
            .account(&AccountId::new(account))
            .expect("account")
            .0
            .profile
    }

    const CREATED: &str = r#"{"event_id":"u1","event_ts_ms":1000,"account_id":"acc-1","user_id":"u-1",
        "kyc_level":"L1","exposure_limit":"50000","max_leverage":"20","risk_score":"10"}"#;
    const FROZEN: &str =
        r#"{"event_id":"f1","event_ts_ms":3000,"account_id":"acc-1","user_id":"u-1"}"#;
    const KYC: &str = r#"{"event_id":"k1","event_ts_ms":2000,"account_id":"acc-1","user_id":"u-1","kyc_level":"L2"}"#;

    fn position(version: i64, size: &str) -> String {
        format!(
            r#"{{"account_id":"acc-1","user_id":"u-1","symbol":"ETHUSDT","size":"{size}",
            "entry_price":"3000","leverage":"10","version":{version},"event_ts_ms":1}}"#
        )
    }

    #[test]
    fn profile_groups_commute_whatever_the_topic_order() {
        let orders: [&[(InputTopic, &str)]; 3] = [
            &[
                (InputTopic::UserCreated, CREATED),
                (InputTopic::UserKycUpdated, KYC),
                (InputTopic::UserFrozen, FROZEN),
            ],
            &[
                (InputTopic::UserFrozen, FROZEN),
                (InputTopic::UserKycUpdated, KYC),
                (InputTopic::UserCreated, CREATED),
            ],
            &[
                (InputTopic::UserKycUpdated, KYC),
                (InputTopic::UserFrozen, FROZEN),
                (InputTopic::UserCreated, CREATED),
            ],
        ];
        let mut results = Vec::new();
        for order in orders {
            let mut a = Applier::new(engine());
            for (topic, json) in order {
                a.apply(*topic, json.as_bytes()).expect("applies");
            }
            results.push(profile_of(&a, "acc-1"));
        }
        assert!(results[0].frozen);
        assert_eq!(results[0].kyc_level, KycLevel::L2);
        assert_eq!(results[0].exposure_limit, Notional::lit("50000"));
        assert_eq!(results[0], results[1]);
        assert_eq!(results[0], results[2]);
    }

    #[test]
    fn redelivered_and_older_versions_are_ignored() {
        let mut a = applier();
        let p = InputTopic::PositionUpdated;
        assert_eq!(
            a.apply(p, position(2, "5").as_bytes()).ok(),
            Some(Outcome::Applied)
        );
        assert_eq!(
            a.apply(p, position(2, "5").as_bytes()).ok(),
            Some(Outcome::Duplicate)
        );
        assert_eq!(
            a.apply(p, position(1, "9").as_bytes()).ok(),
            Some(Outcome::Duplicate)
        );
        let closed = r#"{"account_id":"acc-1","user_id":"u-1","symbol":"ETHUSDT","version":3,"event_ts_ms":1}"#;
        assert_eq!(
            a.apply(InputTopic::PositionClosed, closed.as_bytes()).ok(),
            Some(Outcome::Applied)
        );
        let (snap, _) = a
            .engine()
            .account(&AccountId::new("acc-1"))
            .expect("account");
        assert!(snap.positions.is_empty());
        let deposit = |v: i64| {
            format!(
                r#"{{"account_id":"acc-1","user_id":"u-1","event_id":"d{v}","currency":"USDT",
                "delta":"100","version":{v},"event_ts_ms":1}}"#
            )
        };
        let w = InputTopic::WalletBalanceChanged;
        for v in [1, 2, 2, 1, 3] {
            a.apply(w, deposit(v).as_bytes()).expect("applies");
        }
        let (snap, _) = a
            .engine()
            .account(&AccountId::new("acc-1"))
            .expect("account");
        assert_eq!(snap.wallet_balance, Money::lit("300"));
    }

    #[test]
    fn a_position_before_its_user_is_kept_and_the_account_stays_conservative() {
        let mut a = applier();
        a.apply(InputTopic::PositionUpdated, position(1, "-2").as_bytes())
            .expect("applies");
        assert_eq!(profile_of(&a, "acc-1"), RiskProfile::default());
        a.apply(InputTopic::UserCreated, CREATED.as_bytes())
            .expect("applies");
        let (snap, _) = a
            .engine()
            .account(&AccountId::new("acc-1"))
            .expect("account");
        assert_eq!(snap.positions.len(), 1);
        assert_eq!(snap.profile.kyc_level, KycLevel::L1);
    }

    #[test]
    fn a_position_before_its_instrument_is_held_until_the_instrument_arrives() {
        let mut a = Applier::new(engine());
        let p = InputTopic::PositionUpdated;
        assert_eq!(
            a.apply(p, position(1, "4").as_bytes()).ok(),
            Some(Outcome::Parked)
        );
        assert_eq!(
            a.apply(p, position(2, "5").as_bytes()).ok(),
            Some(Outcome::Parked)
        );
        // A redelivery or an older version of the held position is a duplicate.
        for (version, size) in [(2, "5"), (1, "9")] {
            assert_eq!(
                a.apply(p, position(version, size).as_bytes()).ok(),
                Some(Outcome::Duplicate)
            );
        }
        assert_eq!(a.parked.len(), 1);
        let id = AccountId::new("acc-1");
        let held = a.engine().account(&id).expect("account").0;
        assert!(held.positions.is_empty());
        let eth = r#"{"symbol":"ETHUSDT","tick_size":"0.01","lot_size":"0.001","min_quantity":"0.001",
            "max_quantity":"1000","contract_multiplier":"1","max_leverage":"100","required_kyc":"L0",
            "status":"TRADING","version":1,"event_ts_ms":1}"#;
        a.apply(InputTopic::InstrumentCreated, eth.as_bytes())
            .expect("instrument");
        let snap = a.engine().account(&id).expect("account").0;
        assert_eq!(snap.positions.len(), 1);
        assert_eq!(snap.positions[0].size.get(), Decimal::new(5, 0));
        assert_eq!(
            a.apply(p, position(2, "5").as_bytes()).ok(),
            Some(Outcome::Duplicate)
        );
    }

    #[test]
    fn bad_messages_name_the_field_and_change_nothing() {
        let mut a = Applier::new(engine());
        let e = a
            .apply(InputTopic::PositionUpdated, b"\x01garbage")
            .expect_err("garbage");
        assert!(matches!(e, ApplyError::Decode(_)), "{e}");
        let e = a
            .apply(InputTopic::PositionUpdated, position(1, "abc").as_bytes())
            .expect_err("bad size");
        assert!(e.to_string().contains("`size`"), "{e}");
        let fill = r#"{"account_id":"acc-1","user_id":"u-1","event_id":"e1","order_id":"o1",
            "type":"ORDER_FILLED","symbol":"NOPE","side":"BUY","quantity":"1","price":"1",
            "leverage":"1","version":1,"event_ts_ms":1}"#;
        a.apply(InputTopic::UserCreated, CREATED.as_bytes())
            .expect("applies");
        let e = a
            .apply(InputTopic::EngineEvent, fill.as_bytes())
            .expect_err("unknown symbol");
        assert!(matches!(e, ApplyError::Refused(_)), "{e}");
        // The refused fill's version was not recorded: a corrected redelivery applies.
        assert_eq!(a.entity_count(), 4);
        let e = a
            .apply(
                InputTopic::UserVerified,
                br#"{"event_id":"v","event_ts_ms":1,"account_id":"acc-1","user_id":"u-1"}"#,
            )
            .expect_err("no kyc");
        assert!(e.to_string().contains("kyc_level"), "{e}");
    }

    #[test]
    fn marks_and_instruments_apply_and_stale_marks_are_reported() {
        let mut a = Applier::new(engine());
        let mark = |ts: i64| format!(r#"{{"symbol":"ETHUSDT","price":"3000.5","ts_ms":{ts}}}"#);
        assert_eq!(
            a.apply(InputTopic::Mark, mark(2).as_bytes()).ok(),
            Some(Outcome::Applied)
        );
        assert_eq!(
            a.apply(InputTopic::Mark, mark(1).as_bytes()).ok(),
            Some(Outcome::Stale)
        );
        let inst = r#"{"symbol":"XUSDT","tick_size":"0.1","lot_size":"1","min_quantity":"1",
            "max_quantity":"10","contract_multiplier":"1","max_leverage":"10","required_kyc":"L0",
            "status":"TRADING","version":1,"event_ts_ms":1}"#;
        assert_eq!(
            a.apply(InputTopic::InstrumentCreated, inst.as_bytes()).ok(),
            Some(Outcome::Applied)
        );
        assert_eq!(
            a.apply(InputTopic::InstrumentUpdated, inst.as_bytes()).ok(),
            Some(Outcome::Duplicate)
        );
    }
}
