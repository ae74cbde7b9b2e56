//! The report's settings from a TOML config file.
//!
//! Only the `[metrics]` ([`MetricsConfig`]) and `[score]` ([`ScoreConfig`]) tables are
//! read; other tables are ignored, since the same file holds the engine's config. Inside
//! those two tables every key is optional (defaults apply) and an unknown key is an error
//! that names it.

use risk_core::metrics::{MetricsConfig, MetricsConfigError};
use risk_core::score::{ScoreConfig, ScoreConfigError};

/// The settings the report uses.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
pub struct ReportConfig {
    /// The `[metrics]` table.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// The `[score]` table.
    #[serde(default)]
    pub score: ScoreConfig,
}

/// A config file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigFileError {
    /// Not TOML, a wrong type, or an unknown key in `[metrics]` or `[score]`.
    #[error("{file}: {message}")]
    Parse {
        /// The file.
        file: String,
        /// The parser's message (it names the key and shows the line).
        message: String,
    },
    /// A `[metrics]` value is out of range.
    #[error("{file}: [metrics] {source}")]
    Metrics {
        /// The file.
        file: String,
        /// Which setting.
        source: MetricsConfigError,
    },
    /// A `[score]` value is out of range.
    #[error("{file}: [score] {source}")]
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
    /// [`ConfigFileError`] when the text is not valid TOML, a key in `[metrics]` or
    /// `[score]` is unknown or mistyped, or a value is out of range.
    pub fn from_toml(text: &str, file: &str) -> Result<Self, ConfigFileError> {
        let config: Self = toml::from_str(text).map_err(|e| ConfigFileError::Parse {
            file: file.to_owned(),
            message: e.to_string(),
        })?;
        config.validate(file)?;
        Ok(config)
    }

    /// Validates both tables.
    ///
    /// # Errors
    /// [`ConfigFileError::Metrics`] or [`ConfigFileError::Score`].
    pub fn validate(&self, file: &str) -> Result<(), ConfigFileError> {
        self.metrics
            .validate()
            .map_err(|source| ConfigFileError::Metrics {
                file: file.to_owned(),
                source,
            })?;
        self.score
            .validate()
            .map_err(|source| ConfigFileError::Score {
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
    fn partial_tables_and_foreign_tables() {
        let text = "[engine]\nanything = 1\n[metrics]\ninitial_balance = 50000\n[score]\nhft_ratio_max = 0.2\nmin_trades = 3\n";
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
        let e = ReportConfig::from_toml("[score]\nhft_ratio_mx = 0.2\n", "c.toml").unwrap_err();
        assert!(e.to_string().contains("hft_ratio_mx"), "{e}");
        let e = ReportConfig::from_toml("[metrics]\nbalance = 1\n", "c.toml").unwrap_err();
        assert!(e.to_string().contains("balance"), "{e}");
    }

    #[test]
    fn out_of_range_values_are_refused() {
        let e = ReportConfig::from_toml("[metrics]\ninitial_balance = -1\n", "c.toml").unwrap_err();
        assert!(e.to_string().contains("initial_balance"), "{e}");
        let e = ReportConfig::from_toml("[score]\ndrawdown_max = 2\n", "c.toml").unwrap_err();
        assert!(e.to_string().contains("drawdown_max"), "{e}");
    }
}
