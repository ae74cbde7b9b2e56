//! Reading an accounts file: login to owner, challenge and initial balance.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use risk_core::ids::{AccountId, ChallengeId, UserId};
use risk_core::Decimal;

use super::bounded::{BoundedRows, RowInfo};
use super::error::{CsvInputError, RowError};
use super::fields::{check_header, find_columns, row_info, row_too_long, trim_header, Row};
use super::{CsvLimits, MAX_KEPT_ROW_ERRORS};

/// What the accounts file says about one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountInfo {
    /// The owner.
    pub user: UserId,
    /// The challenge, `None` when unknown.
    pub challenge: Option<ChallengeId>,
    /// The account's starting balance, `None` for the configured default.
    pub initial_balance: Option<Decimal>,
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

/// Reads an accounts file (`login,user_id,challenge_id[,initial_balance]`).
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
    let csv_err = |source| CsvInputError::Csv {
        file: file.to_owned(),
        source,
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(BoundedRows::new(source, limits.max_row_bytes));
    let header = reader.byte_headers().map_err(csv_err)?.clone();
    check_header(&mut reader, file, limits)?;
    let [c_login, c_user, c_challenge] = find_columns(&header, &ACCOUNT_COLUMNS, file)?;
    let c_balance = header
        .iter()
        .position(|h| trim_header(h) == b"initial_balance");
    let mut out = AccountsFile::default();
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(csv_err(e)),
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
            record: &record,
            text: std::str::from_utf8(record.as_slice()).ok(),
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
            let initial_balance = match c_balance {
                Some(c) if !row.str(c)?.is_empty() => {
                    let b = row.number(c)?;
                    if b <= Decimal::ZERO {
                        return Err(row.error(c, format!("initial balance {b} is not positive")));
                    }
                    Some(b)
                }
                _ => None,
            };
            Ok((
                login,
                AccountInfo {
                    user,
                    challenge,
                    initial_balance,
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
