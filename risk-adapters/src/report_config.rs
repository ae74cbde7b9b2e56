//! The report's settings from an engine config file.
//!
//! Only the `[engine.metrics]` ([`MetricsConfig`]) and `[engine.score]` ([`ScoreConfig`])
//! tables are read; everything else in the file (ladders, rules, accounts...) is ignored,
//! so a report can use the engine's own config file without it being complete. Inside
//! those two tables every key is optional (defaults apply) and an unknown key is an error
//! that names it.
//!
//! The prop-firm rulebook has its own top-level tables ([`RuleSettings`]):
//!
//! ```toml
//! [rulebook]                    # the default for every account; without it the standard
//! daily_loss_limit = "0.05"     # rulebook applies (risk_core::rulebook::Rulebook::standard);
//! max_loss_limit = "0.10"       # with it, only the rules it names are checked
//! max_loss_mode = "trailing"
//! news_blackout = [ { start = "2025-05-07T12:28:00Z", end = "2025-05-07T12:35:00Z" } ]
//! [rulebooks."challenge-100k"]  # replaces [rulebook] for that challenge's accounts
//! profit_target = "0.10"
//! [detectors]                   # cross-account detector thresholds
//! copy_window_seconds = 5
//! [rule_weights]                # score points per rulebook signal
//! martingale = 40
//! ```
//!
//! Times are RFC 3339 strings. A value out of range is refused with the key's name.

use std::collections::BTreeMap;

use risk_core::ids::ChallengeId;
use risk_core::metrics::{MetricsConfig, MetricsConfigError};
use risk_core::rulebook::{DetectorConfig, RuleWeights, Rulebook, RulebookConfigError, Rulebooks};
use risk_core::score::{ScoreConfig, ScoreConfigError};

/// The file as the report sees it: the `[engine]` table and the rulebook tables.
#[derive(serde::Deserialize)]
struct ReportFile {
    #[serde(default)]
    engine: EngineTables,
    #[serde(default)]
    rulebook: Option<Rulebook>,
    #[serde(default)]
    rulebooks: BTreeMap<String, Rulebook>,
    #[serde(default)]
    detectors: DetectorConfig,
    #[serde(default)]
    rule_weights: RuleWeights,
}

/// The two `[engine]` tables the report reads.
#[derive(Default, serde::Deserialize)]
struct EngineTables {
    #[serde(default)]
    metrics: MetricsConfig,
    #[serde(default)]
    score: ScoreConfig,
}

/// The settings the report uses.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportConfig {
    /// The `[engine.metrics]` table.
    pub metrics: MetricsConfig,
    /// The `[engine.score]` table.
    pub score: ScoreConfig,
    /// The `[rulebook]`, `[rulebooks."<challenge_id>"]`, `[detectors]` and
    /// `[rule_weights]` tables.
    pub rules: RuleSettings,
}

/// The rulebook's settings in a report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleSettings {
    /// The default rulebook and the per-challenge ones.
    pub rulebooks: Rulebooks,
    /// Thresholds of the cross-account detectors.
    pub detectors: DetectorConfig,
    /// Score points per rulebook signal.
    pub weights: RuleWeights,
}

/// A config file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportConfigError {
    /// Not TOML, a wrong type, or an unknown key in `[engine.metrics]` or `[engine.score]`.
    #[error("{file}: {message}")]
    Parse {
        /// The file.
        file: String,
        /// The parser's message (it names the key and shows the line).
        message: String,
    },
    /// A `[engine.metrics]` value is out of range.
    #[error("{file}: [engine.metrics] {source}")]
    Metrics {
        /// The file.
        file: String,
        /// Which setting.
        source: MetricsConfigError,
    },
    /// A `[detectors]` or `[rule_weights]` value is out of range (rulebook values are
    /// checked while parsing and reported as [`ReportConfigError::Parse`]).
    #[error("{file}: [{table}] {source}")]
    Rules {
        /// The file.
        file: String,
        /// `detectors` or `rule_weights`.
        table: &'static str,
        /// Which setting.
        source: RulebookConfigError,
    },
    /// A `[engine.score]` value is out of range.
    #[error("{file}: [engine.score] {source}")]
    Score {
        /// The file.
        file: String,
        /// Which setting.
        source: ScoreConfigError,
    },
}

impl ReportConfig {
    /// Parses and validates a config file's text. `file` names it in errors.
    ///
    /// # Errors
    /// [`ReportConfigError`] when the text is not valid TOML, a key in `[engine.metrics]` or
    /// `[engine.score]` is unknown or mistyped, or a value is out of range.
    pub fn from_toml(text: &str, file_name: &str) -> Result<Self, ReportConfigError> {
        let file: ReportFile = toml::from_str(text).map_err(|e| ReportConfigError::Parse {
            file: file_name.to_owned(),
            message: e.to_string(),
        })?;
        Self::assemble(file, file_name)
    }

    /// The settings of a parsed file, validated.
    fn assemble(file: ReportFile, file_name: &str) -> Result<Self, ReportConfigError> {
        let config = ReportConfig {
            metrics: file.engine.metrics,
            score: file.engine.score,
            rules: RuleSettings {
                rulebooks: Rulebooks {
                    default: file.rulebook.unwrap_or_default(),
                    per_challenge: file
                        .rulebooks
                        .into_iter()
                        .map(|(id, book)| (ChallengeId::new(&id), book))
                        .collect(),
                },
                detectors: file.detectors,
                weights: file.rule_weights,
            },
        };
        config.validate(file_name)?;
        Ok(config)
    }

    /// Parses and validates a config file's text in the format its name says: JSON for a
    /// `.json` file, TOML otherwise (as the engine's config loader decides).
    ///
    /// # Errors
    /// As [`ReportConfig::from_toml`], for either format.
    pub fn from_file_text(text: &str, path: &std::path::Path) -> Result<Self, ReportConfigError> {
        let file_name = path.display().to_string();
        let is_json = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        if !is_json {
            return Self::from_toml(text, &file_name);
        }
        let file: ReportFile =
            serde_json::from_str(text).map_err(|e| ReportConfigError::Parse {
                file: file_name.clone(),
                message: e.to_string(),
            })?;
        Self::assemble(file, &file_name)
    }

    /// Validates both tables.
    ///
    /// # Errors
    /// [`ReportConfigError::Metrics`] or [`ReportConfigError::Score`].
    pub fn validate(&self, file: &str) -> Result<(), ReportConfigError> {
        self.metrics
            .validate()
            .map_err(|source| ReportConfigError::Metrics {
                file: file.to_owned(),
                source,
            })?;
        self.score
            .validate()
            .map_err(|source| ReportConfigError::Score {
                file: file.to_owned(),
                source,
            })?;
        let rules = |table| {
            move |source| ReportConfigError::Rules {
                file: file.to_owned(),
                table,
                source,
            }
        };
        self.rules
            .detectors
            .validate()
            .map_err(rules("detectors"))?;
        self.rules.weights.validate().map_err(rules("rule_weights"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use risk_core::Decimal;

    #[test]
    fn a_json_file_is_read_as_json() {
        let path = std::path::Path::new("engine.json");
        let json = r#"{"engine": {"metrics": {"initial_balance": "50000"}, "ladders": {}}}"#;
        let c = ReportConfig::from_file_text(json, path).expect("JSON config");
        assert_eq!(c.metrics.initial_balance, risk_core::Decimal::from(50_000));
        let e =
            ReportConfig::from_file_text("[engine.metrics]\n", path).expect_err("TOML in .json");
        assert!(e.to_string().starts_with("engine.json: "), "{e}");
        let toml = "[engine.metrics]\ninitial_balance = 7\n";
        let c = ReportConfig::from_file_text(toml, std::path::Path::new("c.toml")).expect("TOML");
        assert_eq!(c.metrics.initial_balance, risk_core::Decimal::from(7));
    }

    #[test]
    fn partial_tables_and_foreign_tables() {
        let text = "[engine]\nanything = 1\n[engine.metrics]\ninitial_balance = 50000\n[engine.score]\nhft_ratio_max = 0.2\nmin_trades = 3\n[[accounts]]\nid = 1\n";
        let c = ReportConfig::from_toml(text, "c.toml").unwrap();
        assert_eq!(c.metrics.initial_balance, Decimal::from(50_000));
        assert_eq!(c.metrics.hft_threshold_seconds, 60);
        assert_eq!(c.score.hft_ratio_max, Decimal::new(2, 1));
        assert_eq!(c.score.min_trades, 3);
        assert_eq!(c.score.drawdown_max, ScoreConfig::default().drawdown_max);
        assert_eq!(
            ReportConfig::from_toml("", "e.toml").unwrap(),
            ReportConfig::default()
        );
    }

    #[test]
    fn unknown_keys_are_named() {
        let e =
            ReportConfig::from_toml("[engine.score]\nhft_ratio_mx = 0.2\n", "c.toml").unwrap_err();
        assert!(e.to_string().contains("hft_ratio_mx"), "{e}");
        let e = ReportConfig::from_toml("[engine.metrics]\nbalance = 1\n", "c.toml").unwrap_err();
        assert!(e.to_string().contains("balance"), "{e}");
    }

    #[test]
    fn rulebook_tables() {
        let text = r#"
[rulebook]
daily_loss_limit = "0.04"
max_loss_limit = 0.1
max_loss_mode = "trailing"
trailing_lock_at_initial = true
weekend_holding = false
news_blackout = [ { start = "2025-05-07T12:28:00Z", end = "2025-05-07T12:35:00Z" } ]
[rulebooks."c-50k"]
profit_target = "0.1"
[detectors]
copy_window_seconds = 20
[rule_weights]
martingale = 40
"#;
        let c = ReportConfig::from_toml(text, "r.toml").unwrap();
        let d = c.rules.rulebooks.default.spec();
        assert_eq!(d.daily_loss_limit, Some(Decimal::new(4, 2)));
        assert_eq!(d.max_loss_limit, Some(Decimal::new(1, 1)));
        assert_eq!(d.max_loss_mode, risk_core::rulebook::MaxLossMode::Trailing);
        assert_eq!(d.weekend_holding, Some(false));
        assert_eq!(d.news_blackout.len(), 1);
        assert_eq!(d.profit_target, None, "a rule left out is not checked");
        let c50 = c
            .rules
            .rulebooks
            .for_challenge(Some(&ChallengeId::new("c-50k")));
        assert_eq!(c50.spec().profit_target, Some(Decimal::new(1, 1)));
        assert_eq!(
            c50.spec().daily_loss_limit,
            None,
            "replaces, does not merge"
        );
        assert_eq!(c.rules.detectors.copy_window_seconds, 20);
        assert_eq!(c.rules.weights.martingale, Decimal::from(40));
        // No [rulebook]: the standard one.
        let plain = ReportConfig::from_toml("", "e.toml").unwrap();
        assert_eq!(plain.rules.rulebooks.default, Rulebook::standard());
    }

    #[test]
    fn rulebook_errors_name_the_key() {
        for (text, needle) in [
            ("[rulebook]\ndaily_loss_limit = 1.5\n", "daily_loss_limit"),
            ("[rulebook]\nmax_los_limit = 0.1\n", "max_los_limit"),
            (
                "[rulebooks.c1]\nnews_blackout = [ { start = \"2025-05-07T12:00:00Z\", end = \"2025-05-07T11:00:00Z\" } ]\n",
                "news_blackout[0].end",
            ),
            ("[detectors]\ncopy_min_share = 2\n", "copy_min_share"),
            ("[rule_weights]\ncopy_trading = 500\n", "copy_trading"),
        ] {
            let e = ReportConfig::from_toml(text, "c.toml").unwrap_err();
            assert!(e.to_string().contains(needle), "{needle}: {e}");
        }
    }

    #[test]
    fn pnl_basis_and_window_size() {
        use risk_core::metrics::PnlBasis;
        let text = "[engine.metrics]\npnl_basis = \"gross\"\nwindow_size = 100\n";
        let c = ReportConfig::from_toml(text, "c.toml").unwrap();
        assert_eq!(c.metrics.pnl_basis, PnlBasis::Gross);
        assert_eq!(c.metrics.window_size.map(|n| n.get()), Some(100));
        let plain = ReportConfig::from_toml("", "c.toml").unwrap();
        assert_eq!(plain.metrics.pnl_basis, PnlBasis::Net);
        assert_eq!(plain.metrics.window_size, None, "absent: the whole history");
        let json = r#"{"engine": {"metrics": {"pnl_basis": "net", "window_size": null}}}"#;
        let c = ReportConfig::from_file_text(json, std::path::Path::new("c.json")).unwrap();
        assert_eq!(c.metrics.window_size, None);
        for (text, needle) in [
            ("[engine.metrics]\nwindow_size = 0\n", "window_size"),
            ("[engine.metrics]\nwindow_size = -5\n", "window_size"),
            ("[engine.metrics]\npnl_basis = \"profit\"\n", "net or gross"),
        ] {
            let e = ReportConfig::from_toml(text, "c.toml").unwrap_err();
            assert!(e.to_string().contains(needle), "{needle}: {e}");
        }
    }

    #[test]
    fn out_of_range_values_are_refused() {
        let e = ReportConfig::from_toml("[engine.metrics]\ninitial_balance = -1\n", "c.toml")
            .unwrap_err();
        assert!(e.to_string().contains("initial_balance"), "{e}");
        let e =
            ReportConfig::from_toml("[engine.score]\ndrawdown_max = 2\n", "c.toml").unwrap_err();
        assert!(e.to_string().contains("drawdown_max"), "{e}");
    }
}
