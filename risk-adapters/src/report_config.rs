//! The report's settings from an engine config file.
//!
//! Only the `[engine.metrics]` ([`MetricsConfig`]) and `[engine.score]` ([`ScoreConfig`])
//! tables are read; everything else in the file (ladders, rules, accounts...) is ignored,
//! so a report can use the engine's own config file without it being complete. Inside
//! those two tables every key is optional (defaults apply) and an unknown key is an error
//! that names it.

use risk_core::metrics::{MetricsConfig, MetricsConfigError};
use risk_core::score::{ScoreConfig, ScoreConfigError};

/// The file as the report sees it: only the `[engine]` table matters.
#[derive(serde::Deserialize)]
struct ReportFile {
    #[serde(default)]
    engine: ReportConfig,
}

/// The settings the report uses.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
pub struct ReportConfig {
    /// The `[engine.metrics]` table.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// The `[engine.score]` table.
    #[serde(default)]
    pub score: ScoreConfig,
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
        let config = file.engine;
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
        let config = file.engine;
        config.validate(&file_name)?;
        Ok(config)
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
            })
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
    fn out_of_range_values_are_refused() {
        let e = ReportConfig::from_toml("[engine.metrics]\ninitial_balance = -1\n", "c.toml")
            .unwrap_err();
        assert!(e.to_string().contains("initial_balance"), "{e}");
        let e =
            ReportConfig::from_toml("[engine.score]\ndrawdown_max = 2\n", "c.toml").unwrap_err();
        assert!(e.to_string().contains("drawdown_max"), "{e}");
    }
}
