//! The names of the FastAPI risk-signal service riskgate replaces, mapped onto this
//! service's: the flat `POST /admin/update-config` keys ([`FLAT_KEYS`], moved into the
//! `metrics` and `score` tables by [`nest`]) and the fields its clients read in the
//! answers of the three GET routes (`trading_account_login`, `risk_signals`, beside the
//! report contract's `risk_score` and `last_trade_at`: [`account_answer`],
//! [`group_answer`]).

use std::collections::BTreeSet;

use serde_json::{Map, Number, Value};

use super::SignalError;
use crate::report::{AccountReport, GroupReport};

/// Where a FastAPI setting goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A decimal setting `table.key`: a JSON number is passed as its exact text (a string
    /// stays as it is).
    Decimal(&'static str, &'static str),
    /// A count `table.key`: a whole JSON number (`50` or `50.0`); `null` where the setting
    /// allows it.
    Count(&'static str, &'static str),
    /// No counterpart here: refused (422) with this reason.
    Refused(&'static str),
}

/// The FastAPI service's `POST /admin/update-config` keys and their riskgate settings
/// (README-signals.md has the table with units and meanings).
pub const FLAT_KEYS: [(&str, Target); 8] = [
    ("window_size", Target::Count("metrics", "window_size")),
    (
        "win_ratio_threshold",
        Target::Refused(
            "riskgate's score has no win-ratio signal (the win ratio is reported as \
             `win_ratio` but never scored), so this setting would change nothing",
        ),
    ),
    (
        "drawdown_threshold",
        Target::Decimal("score", "drawdown_max"),
    ),
    (
        "stop_loss_threshold",
        Target::Decimal("score", "stop_loss_ratio_min"),
    ),
    (
        "take_profit_threshold",
        Target::Refused(
            "riskgate's score has no take-profit signal (the take-profit share is reported \
             as `take_profit_ratio` but never scored), so this setting would change nothing",
        ),
    ),
    ("risk_threshold", Target::Decimal("score", "risk_threshold")),
    (
        "initial_balance",
        Target::Decimal("metrics", "initial_balance"),
    ),
    (
        "hft_duration",
        Target::Count("metrics", "hft_threshold_seconds"),
    ),
];

/// A patch with its flat keys moved into their tables.
#[derive(Debug, Clone, PartialEq)]
pub struct Nested {
    /// `{"metrics": {...}, "score": {...}}` (and whatever else the body held, which
    /// [`super::SignalSettings::patched`] refuses).
    pub patch: Value,
    /// `(riskgate path, FastAPI key)` of every moved key, so an error on the path names
    /// the key the client sent.
    pub renamed: Vec<(String, &'static str)>,
}

fn invalid(field: &str, message: String) -> SignalError {
    SignalError::Invalid {
        field: field.to_owned(),
        message,
    }
}

/// A whole JSON number (`50`, `50.0`) as an integer; other values as they are.
fn count(key: &str, value: &Value) -> Result<Value, SignalError> {
    let Value::Number(n) = value else {
        return Ok(value.clone());
    };
    if n.is_u64() || n.is_i64() {
        return Ok(value.clone());
    }
    match n.as_f64() {
        // Whole and within u32: exact as an i64.
        Some(f) if f.fract() == 0.0 && f.abs() <= f64::from(u32::MAX) => {
            Ok(Value::Number(Number::from(f as i64)))
        }
        _ => Err(invalid(
            key,
            format!("must be a whole number, not {n}; nothing was changed"),
        )),
    }
}

/// Moves the FastAPI keys of `patch` into the `metrics` and `score` tables; the tables
/// given as such are kept. A key with no counterpart, a fractional count, and a FastAPI
/// key given together with the setting it maps onto are refused; anything else (a
/// non-object body, unknown keys) is left for [`super::SignalSettings::patched`] to
/// refuse.
///
/// # Errors
/// [`SignalError::Invalid`] naming the FastAPI key.
pub fn nest(patch: &Value) -> Result<Nested, SignalError> {
    let Value::Object(top) = patch else {
        return Ok(Nested {
            patch: patch.clone(),
            renamed: Vec::new(),
        });
    };
    let is_flat = |k: &str| FLAT_KEYS.iter().any(|(f, _)| *f == k);
    let mut out: Map<String, Value> = top
        .iter()
        .filter(|(k, _)| !is_flat(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut renamed = Vec::new();
    for (key, target) in &FLAT_KEYS {
        let Some(value) = top.get(*key) else {
            continue;
        };
        let (table, setting, value) = match *target {
            Target::Refused(reason) => {
                return Err(invalid(
                    key,
                    format!("has no counterpart in riskgate: {reason}; nothing was changed"),
                ))
            }
            Target::Decimal(table, setting) => {
                let value = match value {
                    Value::Number(n) => Value::String(n.to_string()),
                    other => other.clone(),
                };
                (table, setting, value)
            }
            Target::Count(table, setting) => (table, setting, count(key, value)?),
        };
        let slot = out
            .entry(table.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        // A table that is not an object is refused by `patched`.
        let Value::Object(slot) = slot else {
            continue;
        };
        if slot.contains_key(setting) {
            return Err(invalid(
                key,
                format!(
                    "`{key}` and `{table}.{setting}` set the same setting: give one of them; \
                     nothing was changed"
                ),
            ));
        }
        slot.insert(setting.to_owned(), value);
        renamed.push((format!("{table}.{setting}"), *key));
    }
    Ok(Nested {
        patch: Value::Object(out),
        renamed,
    })
}

/// `error` with its field renamed to the FastAPI key when it is about a moved setting.
pub fn rename(error: SignalError, renamed: &[(String, &'static str)]) -> SignalError {
    match error {
        SignalError::Invalid { field, message } => {
            match renamed.iter().find(|(path, _)| *path == field) {
                Some((path, key)) => SignalError::Invalid {
                    field: (*key).to_owned(),
                    message: format!("(riskgate's `{path}`) {message}"),
                },
                None => SignalError::Invalid { field, message },
            }
        }
        other => other,
    }
}

/// The names of an account's signals (metric signals, then rulebook and detector
/// signals), each once, in the account object's order: the FastAPI `risk_signals`.
#[must_use]
pub fn signal_names(report: &AccountReport) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    let kinds = report
        .score
        .signals
        .iter()
        .map(|s| s.kind.as_str())
        .chain(report.rules.signals.iter().map(|s| s.kind.as_str()));
    for k in kinds {
        if !names.contains(&k) {
            names.push(k);
        }
    }
    names
}

/// The names of the signals of a group's accounts, each once, sorted.
#[must_use]
pub fn group_signal_names<'a>(
    members: impl IntoIterator<Item = &'a AccountReport>,
) -> Vec<&'a str> {
    let names: BTreeSet<&str> = members.into_iter().flat_map(signal_names).collect();
    names.into_iter().collect()
}

/// `object` (JSON object text) with `fields` (`"key":value` pairs) added last.
fn with_fields(object: &str, fields: &str) -> String {
    let body = object.strip_suffix('}').unwrap_or(object);
    if body.ends_with('{') {
        format!("{body}{fields}}}")
    } else {
        format!("{body},{fields}}}")
    }
}

fn json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

/// The answer of `GET /risk-report/{login}`: the account object (`text`) with
/// `trading_account_login` (its login) and `risk_signals` (its signal names) added last.
#[must_use]
pub fn account_answer(report: &AccountReport, text: &str) -> String {
    with_fields(
        text,
        &format!(
            "\"trading_account_login\":{},\"risk_signals\":{}",
            json(report.account.as_str()),
            json(&signal_names(report))
        ),
    )
}

/// The answer of `GET /risk/user/{id}` and `/risk/challenge/{id}`: the group object
/// (`text`) with `trading_account_login` (the login of its riskiest account, the one its
/// score starts from) and `risk_signals` (the signal names of its accounts, sorted) added
/// last.
#[must_use]
pub fn group_answer<'a>(
    group: &GroupReport,
    text: &str,
    members: impl IntoIterator<Item = &'a AccountReport>,
) -> String {
    let riskiest = group.score.accounts.first().map(|a| a.account.as_str());
    with_fields(
        text,
        &format!(
            "\"trading_account_login\":{},\"risk_signals\":{}",
            json(&riskiest),
            json(&group_signal_names(members))
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(e: SignalError) -> (String, String) {
        match e {
            SignalError::Invalid { field, message } => (field, message),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn flat_keys_move_into_their_tables() {
        let n = nest(&json!({
            "window_size": 50,
            "drawdown_threshold": 0.1,
            "stop_loss_threshold": "0.25",
            "risk_threshold": 70,
            "initial_balance": 5000.5,
            "hft_duration": 30.0,
        }))
        .expect("accepted");
        assert_eq!(
            n.patch,
            json!({
                "metrics": {"window_size": 50, "initial_balance": "5000.5", "hft_threshold_seconds": 30},
                "score": {"drawdown_max": "0.1", "stop_loss_ratio_min": "0.25", "risk_threshold": "70"},
            })
        );
        let paths: Vec<(&str, &str)> = n.renamed.iter().map(|(p, k)| (p.as_str(), *k)).collect();
        assert_eq!(
            paths,
            [
                ("metrics.window_size", "window_size"),
                ("score.drawdown_max", "drawdown_threshold"),
                ("score.stop_loss_ratio_min", "stop_loss_threshold"),
                ("score.risk_threshold", "risk_threshold"),
                ("metrics.initial_balance", "initial_balance"),
                ("metrics.hft_threshold_seconds", "hft_duration"),
            ]
        );
        // `null` window: the whole history.
        let n = nest(&json!({"window_size": null})).expect("accepted");
        assert_eq!(n.patch, json!({"metrics": {"window_size": null}}));
    }

    #[test]
    fn mixed_bodies_merge_and_conflicts_are_refused() {
        let n =
            nest(&json!({"score": {"high_from": "60"}, "risk_threshold": 70})).expect("accepted");
        assert_eq!(
            n.patch,
            json!({"score": {"high_from": "60", "risk_threshold": "70"}})
        );
        let (f, m) = field(
            nest(&json!({"score": {"drawdown_max": "0.2"}, "drawdown_threshold": 0.2}))
                .expect_err("refused"),
        );
        assert_eq!(f, "drawdown_threshold");
        assert!(m.contains("`score.drawdown_max`"), "{m}");
    }

    #[test]
    fn keys_without_counterpart_and_fractions_are_refused() {
        for key in ["win_ratio_threshold", "take_profit_threshold"] {
            let mut body = serde_json::Map::new();
            body.insert(key.to_owned(), json!(0.5));
            body.insert("window_size".to_owned(), json!(50));
            let (f, m) = field(nest(&Value::Object(body)).expect_err("refused"));
            assert_eq!(f, key);
            assert!(m.starts_with("has no counterpart in riskgate"), "{m}");
        }
        let (f, m) = field(nest(&json!({"hft_duration": 0.5})).expect_err("refused"));
        assert_eq!(f, "hft_duration");
        assert!(m.contains("whole number"), "{m}");
        let (f, _) = field(nest(&json!({"window_size": 12.5})).expect_err("refused"));
        assert_eq!(f, "window_size");
    }

    #[test]
    fn errors_on_moved_settings_name_the_flat_key() {
        let renamed = vec![("score.drawdown_max".to_owned(), "drawdown_threshold")];
        let e = rename(
            SignalError::Invalid {
                field: "score.drawdown_max".into(),
                message: "must be within 0..=1".into(),
            },
            &renamed,
        );
        assert_eq!(
            field(e),
            (
                "drawdown_threshold".to_owned(),
                "(riskgate's `score.drawdown_max`) must be within 0..=1".to_owned()
            )
        );
        let e = rename(
            SignalError::Invalid {
                field: "score.high_from".into(),
                message: "x".into(),
            },
            &renamed,
        );
        assert_eq!(field(e).0, "score.high_from");
    }

    #[test]
    fn settings_take_the_flat_keys() {
        use crate::signal::SignalSettings;
        use risk_core::Decimal;
        let base = SignalSettings::default();
        let s = base
            .patched(&json!({"window_size": 50, "risk_threshold": 70}))
            .expect("accepted");
        assert_eq!(s.metrics.window_size.map(|w| w.get()), Some(50));
        assert_eq!(s.score.risk_threshold, Decimal::from(70));
        // Everything else as it was.
        let mut back = s.clone();
        back.metrics.window_size = None;
        back.score.risk_threshold = Decimal::from(80);
        assert_eq!(back, base);
        let s = base
            .patched(&json!({
                "drawdown_threshold": 0.15,
                "stop_loss_threshold": 0.3,
                "initial_balance": 5000,
                "hft_duration": 30,
                "score": {"high_from": "60"},
            }))
            .expect("accepted");
        assert_eq!(s.score.drawdown_max, Decimal::new(15, 2));
        assert_eq!(s.score.stop_loss_ratio_min, Decimal::new(3, 1));
        assert_eq!(s.metrics.initial_balance, Decimal::from(5000));
        assert_eq!(s.metrics.hft_threshold_seconds, 30);
        assert_eq!(s.score.high_from, Decimal::from(60));
        // Out of range, or not a value of the setting: 422 on the key sent.
        for (bad, key) in [
            (json!({"drawdown_threshold": 1.5}), "drawdown_threshold"),
            (json!({"risk_threshold": 100.01}), "risk_threshold"),
            (json!({"initial_balance": 0}), "initial_balance"),
            (json!({"hft_duration": 0}), "hft_duration"),
            (json!({"window_size": 0}), "window_size"),
            (json!({"window_size": "fifty"}), "window_size"),
            (json!({"stop_loss_threshold": true}), "stop_loss_threshold"),
        ] {
            let (f, m) = field(base.patched(&bad).expect_err("refused"));
            assert_eq!(f, key, "{bad}: {m}");
            assert!(m.starts_with("(riskgate's `"), "{bad}: {m}");
        }
        let (f, m) = field(base.patched(&json!({"max_lots": 3})).expect_err("refused"));
        assert_eq!(f, "max_lots");
        assert!(m.contains("window_size"), "{m}");
    }

    #[test]
    fn fields_are_added_last() {
        assert_eq!(with_fields("{\"a\":1}", "\"b\":2"), "{\"a\":1,\"b\":2}");
        assert_eq!(with_fields("{}", "\"b\":2"), "{\"b\":2}");
    }
}
