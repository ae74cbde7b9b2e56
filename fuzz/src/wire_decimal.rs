//! The `wire_decimal` target: arbitrary text through the gRPC adapter's decimal parser,
//! checked against a reference written from the decimal grammar alone.

use risk_core::Decimal;

/// Field paths the wire decimals are parsed for (a conversion error must name the one it
/// was given).
const DECIMAL_FIELDS: [&str; 6] = [
    "quantity",
    "price",
    "leverage",
    "mark.price",
    "instrument.contract_multiplier",
    "account.profile_upsert.profile.risk_score",
];

/// The exact value of `text` when it is a plain decimal: an optional sign, digits with
/// an optional decimal point (`1`, `1.5`, `.5`, `5.`), and an optional exponent
/// (`e`/`E`, optional sign, digits). `Err(())` when the text is not such a decimal;
/// `Ok(None)` when it is but its value has no exact `Decimal` (more than 96 bits of
/// significant digits, or a scale beyond 28 that trailing zeros cannot absorb).
///
/// This is a reference written independently of rust_decimal's parsers, from the grammar
/// alone, so that the wire parser can be checked against it.
#[allow(clippy::result_unit_err)]
pub fn plain_decimal_value(text: &str) -> Result<Option<Decimal>, ()> {
    let (negative, rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (significand, exponent) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let (int, frac) = significand.split_once('.').unwrap_or((significand, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || !digits(frac) || int.len() + frac.len() == 0 {
        return Err(());
    }
    let exponent: i64 = match exponent {
        None => 0,
        Some(e) => {
            let unsigned = e.strip_prefix(['+', '-']).unwrap_or(e);
            if unsigned.is_empty() || !digits(unsigned) {
                return Err(());
            }
            let magnitude = unsigned.trim_start_matches('0');
            // Beyond a few digits the value is zero or out of range anyway.
            let magnitude: i64 = if magnitude.len() > 6 {
                1_000_000
            } else {
                magnitude.parse().unwrap_or(0)
            };
            if e.starts_with('-') {
                -magnitude
            } else {
                magnitude
            }
        }
    };
    // value = digits x 10^(exponent - frac.len()), digits without leading zeros.
    let all: String = format!("{int}{frac}");
    let mut significant = all.trim_start_matches('0').to_owned();
    if significant.is_empty() {
        return Ok(Some(Decimal::ZERO));
    }
    let mut scale = i64::try_from(frac.len()).unwrap_or(i64::MAX) - exponent;
    // Trailing zeros can absorb a scale above 28, or digits beyond 96 bits, or a negative
    // scale (by appending zeros).
    while scale > 0 && significant.ends_with('0') && (scale > 28 || !fits_96_bits(&significant)) {
        significant.pop();
        scale -= 1;
    }
    while scale < 0 && significant.len() <= 29 {
        significant.push('0');
        scale += 1;
    }
    if !(0..=28).contains(&scale) || !fits_96_bits(&significant) {
        return Ok(None);
    }
    let mantissa: i128 = significant.parse().map_err(|_| ())?;
    let mantissa = if negative { -mantissa } else { mantissa };
    let scale = u32::try_from(scale).map_err(|_| ())?;
    Ok(Decimal::try_from_i128_with_scale(mantissa, scale).ok())
}

/// Whether a string of digits (no leading zeros) is below 2^96, a `Decimal`'s mantissa.
fn fits_96_bits(digits: &str) -> bool {
    digits.len() <= 29 && digits.parse::<u128>().is_ok_and(|m| m < (1_u128 << 96))
}

/// Whether `text` is a plain decimal without exponent whose digits, as written, make a
/// `Decimal` at the text's own scale: at most 28 decimal places and a mantissa below 2^96.
fn fits_own_scale(text: &str) -> bool {
    if text.contains(['e', 'E']) || plain_decimal_value(text).is_err() {
        return false;
    }
    let unsigned = text.trim_start_matches(['+', '-']);
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits = format!("{int}{frac}");
    let digits = digits.trim_start_matches('0');
    frac.len() <= 28 && (digits.is_empty() || fits_96_bits(digits))
}

/// The properties of one wire decimal: an accepted text is a plain decimal whose exact
/// value is the one returned, rust_decimal's strict parser agrees, and the value's
/// renderings parse back to it; a refusal names the field and is short. Returns the value.
fn check_wire_decimal(field: &str, text: &str) -> Option<Decimal> {
    use risk_adapters::grpc::convert::{decimal, optional_decimal};
    let reference = plain_decimal_value(text);
    match decimal(field, text) {
        Ok(value) => {
            let exact = reference
                .unwrap_or_else(|()| panic!("{field}: accepted {text:?}, not a plain decimal"));
            assert_eq!(
                exact,
                Some(value),
                "{field}: {text:?} was read as {value}, not its exact value"
            );
            if !text.contains(['e', 'E']) {
                assert_eq!(
                    Decimal::from_str_exact(text),
                    Ok(value),
                    "{field}: rust_decimal reads {text:?} differently"
                );
            }
            // The value's own text (what the server echoes) parses back to it, keeping its
            // scale; so does the normalised text the responses carry.
            let printed = value.to_string();
            let again = decimal(field, &printed)
                .unwrap_or_else(|e| panic!("{field}: {value} prints as {printed:?}: {e}"));
            assert_eq!(again, value);
            assert_eq!(again.to_string(), printed, "{field}: scale lost");
            assert_eq!(Decimal::from_str_exact(&printed), Ok(value));
            let normal = value.normalize().to_string();
            assert_eq!(decimal(field, &normal), Ok(value), "{field}: {normal:?}");
            assert_eq!(optional_decimal(field, text), Ok(Some(value)));
            Some(value)
        }
        Err(e) => {
            assert_eq!(e.field, field, "the error names another field: {e}");
            let shown = e.to_string();
            assert!(shown.starts_with(&format!("{field}: ")), "{shown}");
            assert!(!e.problem.trim().is_empty(), "{field}: no problem given");
            // Bounded in characters: the refused text is cut to 64 characters, which may be
            // up to four bytes each.
            assert!(
                shown.chars().count() < 200,
                "{field}: message too long: {shown}"
            );
            if text.is_empty() {
                assert_eq!(optional_decimal(field, text), Ok(None));
            } else {
                assert_eq!(optional_decimal(field, text), Err(e.clone()));
            }
            // A plain decimal without exponent that fits a Decimal at its own scale is
            // never refused (the wire parser is strict, not partial).
            let fits = text.len() <= risk_core::num::MAX_DECIMAL_TEXT && fits_own_scale(text);
            assert!(!fits, "{field}: refused the plain decimal {text:?}: {e}");
            None
        }
    }
}

/// `wire_decimal`: arbitrary text through the gRPC adapter's decimal parser
/// (`convert::decimal` / `convert::optional_decimal`), for a field chosen by the input's
/// length. Properties: an accepted text is a plain decimal (sign, digits, point, exponent;
/// nothing else) and the value is its exact value, as rust_decimal's strict parser reads
/// it; the value prints to text that parses back to the same value and scale; a refusal
/// names the field it was given, briefly; a plain decimal that fits is never refused.
///
/// # Panics
/// When a property fails.
pub fn wire_decimal(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let field = DECIMAL_FIELDS[data.len() % DECIMAL_FIELDS.len()];
    check_wire_decimal(field, &text);
}
