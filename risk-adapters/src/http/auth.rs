//! Admin bearer tokens: `--admin-token-file` holds one `name:token` a line (blank lines
//! and `#` comments skipped). A request's token is compared with every token in constant
//! time (`subtle`), so the answer's timing tells nothing about how much of it matched.

use std::path::Path;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use subtle::ConstantTimeEq as _;

use super::problem::Problem;
use super::AppState;

/// The token file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenFileError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line is not `name:token`.
    #[error("{path}:{line}: {problem}")]
    Line {
        /// The file.
        path: String,
        /// The 1-based line number.
        line: usize,
        /// What is wrong (the token itself is never printed).
        problem: &'static str,
    },
    /// No token in the file.
    #[error("{0}: no `name:token` line")]
    Empty(String),
}

/// The admin tokens.
#[derive(Clone)]
pub struct Tokens {
    entries: Vec<(String, Vec<u8>)>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.entries.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Tokens").field("names", &names).finish()
    }
}

impl Tokens {
    /// Parses the text of a token file; `origin` names it in errors.
    ///
    /// # Errors
    /// [`TokenFileError::Line`] for a malformed line, [`TokenFileError::Empty`].
    pub fn parse(text: &str, origin: &str) -> Result<Self, TokenFileError> {
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |problem| TokenFileError::Line {
                path: origin.to_owned(),
                line: i + 1,
                problem,
            };
            let (name, token) = line
                .split_once(':')
                .ok_or_else(|| err("expected `name:token`"))?;
            let (name, token) = (name.trim(), token.trim());
            if name.is_empty() {
                return Err(err("the name is empty"));
            }
            if token.len() < 16 {
                return Err(err("the token is shorter than 16 characters"));
            }
            if entries.iter().any(|(n, _): &(String, Vec<u8>)| n == name) {
                return Err(err("the name is used twice"));
            }
            entries.push((name.to_owned(), token.as_bytes().to_vec()));
        }
        if entries.is_empty() {
            return Err(TokenFileError::Empty(origin.to_owned()));
        }
        Ok(Self { entries })
    }

    /// Reads a token file.
    ///
    /// # Errors
    /// [`TokenFileError`].
    pub fn load(path: &Path) -> Result<Self, TokenFileError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| TokenFileError::Read {
            path: origin.clone(),
            source,
        })?;
        Self::parse(&text, &origin)
    }

    /// The name of the token equal to `presented`, comparing with every token in constant
    /// time.
    #[must_use]
    pub fn name_of(&self, presented: &[u8]) -> Option<&str> {
        let mut found = None;
        for (name, token) in &self.entries {
            if bool::from(token.as_slice().ct_eq(presented)) {
                found = Some(name.as_str());
            }
        }
        found
    }
}

/// Who may use the admin routes.
#[derive(Debug, Clone)]
pub enum AdminAccess {
    /// Nobody: no token file and no `--insecure-admin` (403).
    Off,
    /// Anybody (`--insecure-admin`, for local experiments only).
    Insecure,
    /// Holders of a token.
    Tokens(std::sync::Arc<Tokens>),
}

/// An authenticated admin: the token's name (`insecure` with `--insecure-admin`).
#[derive(Debug, Clone)]
pub struct Admin(pub String);

impl FromRequestParts<AppState> for Admin {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let tokens = match &state.admin {
            AdminAccess::Tokens(tokens) => tokens,
            AdminAccess::Insecure => return Ok(Self("insecure".to_owned())),
            AdminAccess::Off => {
                return Err(Problem::new(
                    axum::http::StatusCode::FORBIDDEN,
                    "admin-off",
                    "admin routes are off: start risk-server with --admin-token-file FILE",
                ))
            }
        };
        let presented = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
            .ok_or_else(Problem::unauthorized)?;
        tokens
            .name_of(presented)
            .map(|name| Self(name.to_owned()))
            .ok_or_else(Problem::unauthorized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_files_parse_and_compare() {
        let t = Tokens::parse(
            "# ops\nalice:0123456789abcdef\n\nci : fedcba9876543210fedc\n",
            "f",
        )
        .expect("valid");
        assert_eq!(t.name_of(b"0123456789abcdef"), Some("alice"));
        assert_eq!(t.name_of(b"fedcba9876543210fedc"), Some("ci"));
        assert_eq!(t.name_of(b"0123456789abcde"), None);
        assert_eq!(t.name_of(b""), None);
        assert!(!format!("{t:?}").contains("0123"));
        let e = Tokens::parse("x\n", "f").expect_err("no colon").to_string();
        assert_eq!(e, "f:1: expected `name:token`");
        let e = Tokens::parse("a:short\n", "f")
            .expect_err("short")
            .to_string();
        assert!(e.contains("shorter than 16"), "{e}");
        assert!(Tokens::parse("# nothing\n", "f").is_err());
    }
}
