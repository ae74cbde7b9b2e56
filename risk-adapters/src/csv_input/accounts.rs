//! Reading an accounts file: login to owner, challenge, initial balance and the
//! platform's account attributes.
//!
//! Required columns: `login`, `user_id`, `challenge_id`. Optional: `initial_balance`,
//! `account_size` (a firm's export names the starting balance so; an `initial_balance`
//! given on the same row wins), `platform`, `phase` (kept as text and carried into the
//! report) and `group_id`. Column order does not matter, so the export header
//! `login,account_size,platform,phase,user_id,challenge_id` reads as it is.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use risk_core::ids::{AccountId, ChallengeId, UserId};
use risk_core::Decimal;

use super::bounded::RowInfo;
use super::error::{CsvInputError, RowError};
use super::fields::{
    csv_error, find_columns, open_reader, row_info, row_too_long, trim_header, Cells, Row,
};
use super::{CsvLimits, MAX_KEPT_ROW_ERRORS};

/// What the accounts file says about one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountInfo {
    /// The owner.
    pub user: UserId,
    /// The challenge, `None` when unknown.
    pub challenge: Option<ChallengeId>,
    /// The account's starting balance: the `initial_balance` column, else
    /// `account_size`; `None` for the configured default.
    pub initial_balance: Option<Decimal>,
    /// The `account_size` column as given (> 0), `None` when absent or empty.
    pub account_size: Option<Decimal>,
    /// The `platform` column as given (e.g. `mt5`), `None` when absent or empty.
    pub platform: Option<String>,
    /// The `phase` column as given (e.g. `phase1`, `funded`), `None` when absent or empty.
    pub phase: Option<String>,
    /// The group linking its user to others, `None` when not given.
    pub group: Option<String>,
}

/// The accounts file: login to owner, challenge and initial balance.
#[derive(Debug, Clone, Default)]
pub struct AccountsFile {
    /// Every good row, by login.
    pub accounts: HashMap<AccountId, AccountInfo>,
    /// Logins in file order.
    pub order: Vec<AccountId>,
    /// The first [`MAX_KEPT_ROW_ERRORS`] bad rows.
    pub errors: Vec<RowError>,
    /// All bad rows.
    pub skipped_rows: u64,
}

const ACCOUNT_COLUMNS: [&str; 3] = ["login", "user_id", "challenge_id"];

fn open(path: &Path) -> Result<std::fs::File, CsvInputError> {
    std::fs::File::open(path).map_err(|source| CsvInputError::Open {
        file: path.display().to_string(),
        source,
    })
}

/// Reads an accounts file from a path; see [`read_accounts`].
///
/// # Errors
/// [`CsvInputError`] when the file cannot be opened or read, or lacks a required column.
pub fn read_accounts_path(path: &Path) -> Result<AccountsFile, CsvInputError> {
    read_accounts(open(path)?, &path.display().to_string())
}

/// Reads an accounts file: `login`, `user_id`, `challenge_id` in any order, and optionally
/// `initial_balance`, `account_size` (the initial balance when `initial_balance` is not
/// given on the row; both must be positive amounts), `platform`, `phase` and `group_id`.
///
/// # Errors
/// [`CsvInputError`] when the source cannot be read or lacks a required column.
pub fn read_accounts<R: Read>(source: R, file: &str) -> Result<AccountsFile, CsvInputError> {
    read_accounts_with(source, file, CsvLimits::default())
}

/// [`read_accounts`] with explicit [`CsvLimits`].
///
/// # Errors
/// As [`read_accounts`].
pub fn read_accounts_with<R: Read>(
    source: R,
    file: &str,
    limits: CsvLimits,
) -> Result<AccountsFile, CsvInputError> {
    let (mut reader, header) = open_reader(source, file, limits)?;
    let [c_login, c_user, c_challenge] = find_columns(&header, &ACCOUNT_COLUMNS, file)?;
    let optional = |name: &[u8]| header.iter().position(|h| trim_header(h) == name);
    let c_balance = optional(b"initial_balance");
    let c_size = optional(b"account_size");
    let c_platform = optional(b"platform");
    let c_phase = optional(b"phase");
    let c_group = optional(b"group_id");
    let mut out = AccountsFile::default();
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(csv_error(file, e)),
        }
        let RowInfo { line, cut } = row_info(&mut reader, &record);
        if let Some(field) = cut {
            out.skipped_rows += 1;
            if out.errors.len() < MAX_KEPT_ROW_ERRORS {
                out.errors
                    .push(row_too_long(&header, file, line, field, limits));
            }
            continue;
        }
        let row = Row {
            cells: Cells::Record {
                record: &record,
                text: std::str::from_utf8(record.as_slice()).ok(),
            },
            header: &header,
            file,
            line,
            max_field: limits.max_field_bytes,
        };
        let parsed = (|| -> Result<(AccountId, AccountInfo), RowError> {
            let login = AccountId::new(row.text(c_login)?);
            if out.accounts.contains_key(&login) {
                return Err(row.error(c_login, format!("login {login} is listed twice")));
            }
            let user = UserId::new(row.text(c_user)?);
            let challenge = row.str(c_challenge)?;
            let challenge = (!challenge.is_empty()).then(|| ChallengeId::new(challenge));
            // A positive amount, or `None` for an absent column or an empty cell.
            let positive = |column: Option<usize>, what: &str| -> Result<_, RowError> {
                match column {
                    Some(c) if !row.str(c)?.is_empty() => {
                        let b = row.number(c)?;
                        if b <= Decimal::ZERO {
                            return Err(row.error(c, format!("{what} {b} is not positive")));
                        }
                        Ok(Some(b))
                    }
                    _ => Ok(None),
                }
            };
            let explicit = positive(c_balance, "initial balance")?;
            let account_size = positive(c_size, "account size")?;
            let text = |column: Option<usize>| -> Result<Option<String>, RowError> {
                match column {
                    Some(c) => Ok(Some(row.str(c)?.trim())
                        .filter(|v| !v.is_empty())
                        .map(str::to_owned)),
                    None => Ok(None),
                }
            };
            let group = text(c_group)?;
            let platform = text(c_platform)?;
            let phase = text(c_phase)?;
            Ok((
                login,
                AccountInfo {
                    user,
                    challenge,
                    initial_balance: explicit.or(account_size),
                    account_size,
                    platform,
                    phase,
                    group,
                },
            ))
        })();
        match parsed {
            Ok((login, info)) => {
                out.order.push(login.clone());
                out.accounts.insert(login, info);
            }
            Err(e) => {
                out.skipped_rows += 1;
                if out.errors.len() < MAX_KEPT_ROW_ERRORS {
                    out.errors.push(e);
                }
            }
        }
    }
    Ok(out)
}
