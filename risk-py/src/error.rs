//! The Python exception classes and the mapping from each Rust error family to one of them.
//!
//! ```text
//! RiskgateError(Exception)
//! ├── ConfigError    an engine config, config file or margin ladder was refused
//! ├── InvalidInput   a value could not be converted (wrong type, not a decimal, naive datetime...)
//! └── EventError     the engine refused an event (unknown account, fill mismatch...)
//! ```
//!
//! Every exception carries the Rust error's message unchanged.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::PyErr;
use risk_adapters::config_file::ConfigFileError;
use risk_core::engine::EventError as CoreEventError;
use risk_core::margin::LadderError;
use risk_core::num::ArithmeticError;

create_exception!(
    riskgate,
    RiskgateError,
    PyException,
    "Base class of every error raised by riskgate."
);
create_exception!(
    riskgate,
    ConfigError,
    RiskgateError,
    "An engine config, config file or margin-tier ladder was refused."
);
create_exception!(
    riskgate,
    InvalidInput,
    RiskgateError,
    "A value passed to riskgate could not be converted or is out of range."
);
create_exception!(
    riskgate,
    EventError,
    RiskgateError,
    "The engine refused an event; its state did not change."
);

/// An [`InvalidInput`] with `message`.
pub fn invalid(message: impl Into<String>) -> PyErr {
    InvalidInput::new_err(message.into())
}

/// A config file could not be loaded.
pub fn config_file(err: &ConfigFileError) -> PyErr {
    ConfigError::new_err(err.to_string())
}

/// A ladder did not validate.
pub fn ladder(err: &LadderError) -> PyErr {
    ConfigError::new_err(err.to_string())
}

/// The engine refused an event.
pub fn event(err: &CoreEventError) -> PyErr {
    EventError::new_err(err.to_string())
}

/// Decimal arithmetic overflowed on the caller's numbers.
pub fn arithmetic(err: &ArithmeticError) -> PyErr {
    InvalidInput::new_err(err.to_string())
}
