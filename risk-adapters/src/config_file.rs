//! The engine config file (TOML or JSON): engine config plus optional initial state.
//!
//! One format serves `risk-server --config`, the Python `RiskEngine(config)` and
//! `risk report --config` (which reads only its `[engine.metrics]` and `[engine.score]`
//! tables).
//!
//! ```toml
//! [engine]                      # risk_core::config::RiskConfig
//! default_ladder = [ { floor = "0", maintenance_rate = "0.01", max_leverage = "20", active = true } ]
//! [engine.ladders]              # per-symbol ladders
//! [[engine.rules]]              # dynamic rules
//! [engine.limits]               # thresholds and erroneous-order controls
//! [engine.metrics]              # trade-metric settings
//! [engine.score]                # risk-score thresholds
//!
//! [[instruments]]               # initial market state, optional
//! [[marks]]
//! [[accounts]]                  # initial accounts, optional
//! ```
//!
//! Decimals may be written as strings (exact, recommended) or as numbers. Every value is
//! built by the core's validated constructors, so a refusal is the core's, reported with
//! the file and the key path: `demo.toml: instruments[0].contract_multiplier: 0 is not
//! valid: must be greater than zero`. Unknown keys are errors too, and an account
//! position whose symbol is not one of `[[instruments]]` is refused at load. The
//! `[[instruments]]` entries, marks and positions have the same keys as the instrument,
//! mark and position events of the engine's serde form ([`risk_core::engine`]).

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use risk_core::account::{Position, RiskProfile};
use risk_core::config::{ConfigError, RiskConfig};
use risk_core::engine::{AccountEvent, EngineEvent, EventError, MarketEvent, RiskEngine, Seq};
use risk_core::ids::{AccountId, Symbol, UserId};
use risk_core::market::Instrument;
use risk_core::num::{Money, Price};
use serde::{Deserialize, Serialize};

/// A config file could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigFileError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The text is not valid for the format, or a key or value is wrong.
    #[error("{origin}: {message}")]
    Parse {
        /// The file, or `<inline>`.
        origin: String,
        /// Where and what: the parser's message names the key and position.
        message: String,
    },
    /// The engine config does not validate.
    #[error("{origin}: engine: {source}")]
    Invalid {
        /// The file, or `<inline>`.
        origin: String,
        /// What is wrong.
        source: ConfigError,
    },
    /// An initial-state entry could not be applied.
    #[error("{origin}: {what}: {source}")]
    State {
        /// The file, or `<inline>`.
        origin: String,
        /// Which entry.
        what: String,
        /// Why.
        source: EventError,
    },
}

/// A mark in the initial state; `at` defaults to the load time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarkEntry {
    /// The instrument.
    pub symbol: Symbol,
    /// The mark price.
    pub price: Price,
    /// Its observation time (RFC 3339); the load time when absent.
    #[serde(default)]
    pub at: Option<DateTime<Utc>>,
}

/// An account in the initial state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountEntry {
    /// The account id.
    pub id: AccountId,
    /// Its owner.
    pub user_id: UserId,
    /// Wallet balance.
    #[serde(default)]
    pub wallet_balance: Money,
    /// Risk profile.
    pub profile: RiskProfile,
    /// Open positions.
    #[serde(default)]
    pub positions: Vec<Position>,
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// The engine config.
    pub engine: RiskConfig,
    /// Initial instruments.
    #[serde(default)]
    pub instruments: Vec<Instrument>,
    /// Initial marks.
    #[serde(default)]
    pub marks: Vec<MarkEntry>,
    /// Initial accounts.
    #[serde(default)]
    pub accounts: Vec<AccountEntry>,
}

/// The text format of a config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// TOML.
    Toml,
    /// JSON.
    Json,
}

impl Format {
    /// JSON for a `.json` path, TOML otherwise.
    #[must_use]
    pub fn of(path: &Path) -> Self {
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        {
            Self::Json
        } else {
            Self::Toml
        }
    }
}

impl ConfigFile {
    /// Reads and validates a file; the format follows the extension (`.json` or TOML).
    ///
    /// # Errors
    /// [`ConfigFileError`] naming the file, the key and the problem.
    pub fn load(path: &Path) -> Result<Self, ConfigFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, Format::of(path), &path.display().to_string())
    }

    /// Parses and validates text; `origin` names it in errors.
    ///
    /// # Errors
    /// [`ConfigFileError::Parse`] or [`ConfigFileError::Invalid`].
    pub fn parse(text: &str, format: Format, origin: &str) -> Result<Self, ConfigFileError> {
        let parse_error = |message: String| ConfigFileError::Parse {
            origin: origin.to_owned(),
            message,
        };
        let file: Self = match format {
            Format::Toml => {
                let at_line = |e: &toml::de::Error| {
                    e.span().map_or_else(String::new, |span| {
                        let line = text
                            .get(..span.start)
                            .map_or(0, |before| before.matches('\n').count());
                        format!(" (line {})", line.saturating_add(1))
                    })
                };
                let de = toml::Deserializer::parse(text)
                    .map_err(|e| parse_error(format!("{}{}", e.message(), at_line(&e))))?;
                serde_path_to_error::deserialize(de).map_err(|e| {
                    let inner = e.inner();
                    parse_error(at_path(
                        &e.path().to_string(),
                        &format!("{}{}", inner.message(), at_line(inner)),
                    ))
                })?
            }
            Format::Json => {
                let mut de = serde_json::Deserializer::from_str(text);
                serde_path_to_error::deserialize(&mut de).map_err(|e| {
                    parse_error(at_path(&e.path().to_string(), &e.inner().to_string()))
                })?
            }
        };
        file.known_symbols().map_err(parse_error)?;
        file.engine
            .validate()
            .map_err(|source| ConfigFileError::Invalid {
                origin: origin.to_owned(),
                source,
            })?;
        Ok(file)
    }

    /// Refuses an account position whose symbol is not one of the file's instruments.
    fn known_symbols(&self) -> Result<(), String> {
        for (i, a) in self.accounts.iter().enumerate() {
            for (j, p) in a.positions.iter().enumerate() {
                if !self.instruments.iter().any(|x| x.symbol() == &p.symbol) {
                    return Err(format!(
                        "accounts[{i}].positions[{j}].symbol: `{}` is not a known instrument \
                         (list it under [[instruments]])",
                        p.symbol
                    ));
                }
            }
        }
        Ok(())
    }

    /// Serializes to `format`.
    ///
    /// # Errors
    /// [`ConfigFileError::Parse`] when the value cannot be written in that format.
    pub fn to_text(&self, format: Format) -> Result<String, ConfigFileError> {
        let err = |message: String| ConfigFileError::Parse {
            origin: "<serialize>".to_owned(),
            message,
        };
        match format {
            Format::Toml => toml::to_string(self).map_err(|e| err(e.to_string())),
            Format::Json => serde_json::to_string_pretty(self).map_err(|e| err(e.to_string())),
        }
    }

    /// The initial state as engine events, in apply order: instruments, marks (stamped
    /// `now` when the file gives no time), then each account's profile, balance and
    /// positions with sequences 1, 2, 3...
    #[must_use]
    pub fn initial_events(&self, now: DateTime<Utc>) -> Vec<EngineEvent> {
        let mut events = Vec::new();
        events.extend(
            self.instruments
                .iter()
                .map(|i| EngineEvent::Market(MarketEvent::Instrument(i.clone()))),
        );
        events.extend(self.marks.iter().map(|m| {
            EngineEvent::Market(MarketEvent::Mark {
                symbol: m.symbol.clone(),
                price: m.price,
                at: m.at.unwrap_or(now),
            })
        }));
        for a in &self.accounts {
            // 1, 2, 3...: the iterator never ends, so every event gets its sequence.
            let mut seqs = (1_u64..).filter_map(|n| Seq::new(n).ok());
            let mut push = |event| {
                if let Some(seq) = seqs.next() {
                    events.push(EngineEvent::Account {
                        account_id: a.id.clone(),
                        seq,
                        event,
                    });
                }
            };
            push(AccountEvent::ProfileUpsert {
                user_id: a.user_id.clone(),
                profile: a.profile.clone(),
            });
            push(AccountEvent::BalanceChange {
                delta: a.wallet_balance,
            });
            for p in &a.positions {
                push(AccountEvent::PositionUpdate {
                    symbol: p.symbol.clone(),
                    size: p.size,
                    entry_price: p.entry_price,
                    leverage: p.leverage,
                });
            }
        }
        events
    }

    /// Builds an engine from the config and applies the initial state at `now`.
    ///
    /// # Errors
    /// [`ConfigFileError::Invalid`] or [`ConfigFileError::State`].
    pub fn into_engine(
        self,
        now: DateTime<Utc>,
        origin: &str,
    ) -> Result<RiskEngine, ConfigFileError> {
        let events = self.initial_events(now);
        let engine = RiskEngine::new(self.engine).map_err(|source| ConfigFileError::Invalid {
            origin: origin.to_owned(),
            source,
        })?;
        for event in &events {
            engine
                .apply(event)
                .map_err(|source| ConfigFileError::State {
                    origin: origin.to_owned(),
                    what: describe(event),
                    source,
                })?;
        }
        Ok(engine)
    }
}

/// A value read from JSON (a Python dict, an HTTP or Kafka payload) in the core's serde
/// form, with a refusal reported at its key path like the config file's.
///
/// # Errors
/// [`PathError`] naming the key path and the problem.
pub fn from_json_value<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
) -> Result<T, PathError> {
    serde_path_to_error::deserialize(value).map_err(|e| PathError {
        message: at_path(&e.path().to_string(), &e.inner().to_string()),
    })
}

/// A JSON value was refused at a key path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PathError {
    /// `path.to.key: problem`.
    pub message: String,
}

/// `path: message`, with serde's `missing field `x`` said as the core says it
/// (`path.x: is required`) and a core refusal that names its field (`field: ...`) placed
/// under the path (`instruments[0].min_quantity: ...`).
fn at_path(path: &str, message: &str) -> String {
    let join = |field: &str| {
        if path == "." || path.is_empty() {
            field.to_owned()
        } else {
            format!("{path}.{field}")
        }
    };
    if let Some(rest) = message.strip_prefix("missing field `") {
        if let Some((field, tail)) = rest.split_once('`') {
            return format!("{}: is required{tail}", join(field));
        }
    }
    if let Some((field, problem)) = message.split_once(": ") {
        let is_field = !field.is_empty()
            && field
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.');
        if is_field {
            return format!("{}: {problem}", join(field));
        }
    }
    if path == "." || path.is_empty() {
        message.to_owned()
    } else {
        format!("{path}: {message}")
    }
}

fn describe(event: &EngineEvent) -> String {
    match event {
        EngineEvent::Market(MarketEvent::Instrument(i)) => format!("instrument {}", i.symbol()),
        EngineEvent::Market(MarketEvent::Mark { symbol, .. }) => format!("mark {symbol}"),
        EngineEvent::Market(MarketEvent::GlobalTradingState(_)) => {
            "global trading state".to_owned()
        }
        EngineEvent::Account {
            account_id, seq, ..
        } => format!("account {account_id} entry {seq}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEMO: &str = include_str!("../../examples/config/demo.toml");

    #[test]
    fn the_demo_config_loads_and_round_trips() {
        let file =
            ConfigFile::parse(DEMO, Format::Toml, "demo.toml").expect("demo config is valid");
        assert!(!file.accounts.is_empty() && !file.instruments.is_empty());
        for format in [Format::Toml, Format::Json] {
            let text = file.to_text(format).expect("serializes");
            let again = ConfigFile::parse(&text, format, "round-trip").expect("re-parses");
            assert_eq!(again, file, "{format:?}");
        }
    }

    /// Issue 12: the demo config with BTCUSDT's multiplier set to "0" loaded, and the gate
    /// then approved a 99 BTC order with no margin. It is refused at load, naming the key.
    #[test]
    fn a_zero_multiplier_is_refused_at_load_naming_the_key() {
        let zero = DEMO.replacen(
            "contract_multiplier = \"1\"",
            "contract_multiplier = \"0\"",
            1,
        );
        let err = ConfigFile::parse(&zero, Format::Toml, "demo.toml")
            .expect_err("zero multiplier")
            .to_string();
        assert!(
            err.starts_with(
                "demo.toml: instruments[0].contract_multiplier: 0 is not valid: must be greater than zero"
            ),
            "{err}"
        );
        // The same file as JSON says the same.
        let file = ConfigFile::parse(DEMO, Format::Toml, "demo.toml").expect("demo");
        let json = file.to_text(Format::Json).expect("json").replacen(
            "\"contract_multiplier\": \"1\"",
            "\"contract_multiplier\": \"0\"",
            1,
        );
        let err = ConfigFile::parse(&json, Format::Json, "demo.json")
            .expect_err("zero multiplier")
            .to_string();
        assert!(
            err.starts_with(
                "demo.json: instruments[0].contract_multiplier: 0 is not valid: must be greater than zero"
            ),
            "{err}"
        );
    }

    #[test]
    fn a_position_on_an_unknown_symbol_is_refused_at_load() {
        let bad = DEMO.replacen(
            "positions = [ { symbol = \"ETHUSDT\"",
            "positions = [ { symbol = \"DOGEUSDT\"",
            1,
        );
        let err = ConfigFile::parse(&bad, Format::Toml, "x.toml")
            .expect_err("unknown symbol")
            .to_string();
        assert!(
            err.starts_with(
                "x.toml: accounts[0].positions[0].symbol: `DOGEUSDT` is not a known instrument"
            ),
            "{err}"
        );
        let missing = DEMO.replacen(", leverage = \"10\" }", " }", 1);
        let err = ConfigFile::parse(&missing, Format::Toml, "x.toml")
            .expect_err("missing leverage")
            .to_string();
        assert!(
            err.starts_with("x.toml: accounts[0].positions[0].leverage: is required"),
            "{err}"
        );
    }

    #[test]
    fn errors_name_the_key_and_the_problem() {
        let unknown = DEMO.replacen("[engine.limits]", "[engine.limits]\nmax_mark_age = 5", 1);
        let err = ConfigFile::parse(&unknown, Format::Toml, "x.toml")
            .expect_err("unknown key")
            .to_string();
        assert!(
            err.starts_with("x.toml:") && err.contains("max_mark_age"),
            "{err}"
        );
        let bad_ratio = DEMO.replacen(
            "margin_call_ratio = \"0.8\"",
            "margin_call_ratio = \"1.5\"",
            1,
        );
        let err = ConfigFile::parse(&bad_ratio, Format::Toml, "x.toml")
            .expect_err("invalid")
            .to_string();
        assert!(err.contains("margin_call_ratio"), "{err}");
        let bad_ladder = DEMO.replacen(
            "maintenance_rate = \"0.004\"",
            "maintenance_rate = \"1.5\"",
            1,
        );
        let err = ConfigFile::parse(&bad_ladder, Format::Toml, "x.toml")
            .expect_err("invalid ladder")
            .to_string();
        assert!(err.contains("x.toml") && err.contains("1.5"), "{err}");
    }
}
