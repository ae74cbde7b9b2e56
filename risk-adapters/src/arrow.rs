//! Trade metrics as Arrow columns, exactly: shared by the report's Parquet rendering and
//! the Python bindings' `to_arrow()`.
//!
//! Counts are `uint64`, days `date32`, decimals `decimal128(38, s)` with `s` the largest
//! scale among the column's values (every value rescaled exactly), or `utf8` with each
//! value's exact text when some value would then need more than 38 digits. Undefined
//! values are null; a decimal column with no defined value is `decimal128(38, 0)`.

use std::sync::{Arc, OnceLock};

use arrow_array::types::Date32Type;
use arrow_array::{ArrayRef, Date32Array, Decimal128Array, StringArray, UInt64Array};
use arrow_schema::DataType;
use risk_core::metrics::{MetricsConfig, TradeFacts, TradeMetrics, TradeValue};
use risk_core::Decimal;

/// What a metric field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// A count (`uint64`).
    Count,
    /// A decimal (`decimal128(38, s)` or exact text).
    Decimal,
    /// A day (`date32`).
    Day,
}

/// The largest magnitude a `decimal128(38, s)` holds, plus one: `10^38`.
const LIMIT: i128 = 10_i128.pow(38);

/// A decimal column: `decimal128(38, s)` when every value fits it exactly, else exact text.
#[must_use]
pub fn decimal_column(values: &[Option<Decimal>]) -> (DataType, ArrayRef) {
    let scale = values
        .iter()
        .flatten()
        .map(Decimal::scale)
        .max()
        .unwrap_or(0);
    let lifted: Option<Vec<Option<i128>>> = values
        .iter()
        .map(|v| match v {
            None => Some(None),
            Some(d) => 10_i128
                .checked_pow(scale - d.scale())
                .and_then(|p| d.mantissa().checked_mul(p))
                .filter(|m| m.abs() < LIMIT)
                .map(Some),
        })
        .collect();
    // A Decimal's scale is at most 28, so it fits an i8 and a precision of 38.
    let exact = i8::try_from(scale)
        .ok()
        .zip(lifted)
        .and_then(|(s, lifted)| {
            Decimal128Array::from(lifted)
                .with_precision_and_scale(38, s)
                .ok()
                .map(|a| (DataType::Decimal128(38, s), Arc::new(a) as ArrayRef))
        });
    exact.unwrap_or_else(|| {
        let text: StringArray = values.iter().map(|v| v.map(|d| d.to_string())).collect();
        (DataType::Utf8, Arc::new(text))
    })
}

/// The column of one metric field of `kind` from each row's value.
#[must_use]
pub fn metric_column(kind: MetricKind, values: &[Option<TradeValue>]) -> (DataType, ArrayRef) {
    match kind {
        MetricKind::Count => {
            let counts: UInt64Array = values
                .iter()
                .map(|v| match v {
                    Some(TradeValue::Count(n)) => Some(*n),
                    _ => None,
                })
                .collect();
            (DataType::UInt64, Arc::new(counts))
        }
        MetricKind::Day => {
            let days: Date32Array = values
                .iter()
                .map(|v| match v {
                    Some(TradeValue::Day(d)) => Some(Date32Type::from_naive_date(*d)),
                    _ => None,
                })
                .collect();
            (DataType::Date32, Arc::new(days))
        }
        MetricKind::Decimal => {
            let decimals: Vec<Option<Decimal>> = values
                .iter()
                .map(|v| match v {
                    Some(TradeValue::Decimal(d)) => Some(*d),
                    _ => None,
                })
                .collect();
            decimal_column(&decimals)
        }
    }
}

/// The kind of a value.
fn kind_of(value: TradeValue) -> MetricKind {
    match value {
        TradeValue::Count(_) => MetricKind::Count,
        TradeValue::Decimal(_) => MetricKind::Decimal,
        TradeValue::Day(_) => MetricKind::Day,
    }
}

/// The kind of metric field `name`, read from the metrics of a win and a loss on two days
/// (which define every field), once.
#[must_use]
pub fn probed_kind(name: &str) -> Option<MetricKind> {
    static KINDS: OnceLock<Vec<(&'static str, MetricKind)>> = OnceLock::new();
    let kinds = KINDS.get_or_init(|| {
        let hour = 3_600_000_000_000_i64;
        let trade = |day: i64, pnl: i64| TradeFacts {
            opened_at_ns: day * 24 * hour,
            closed_at_ns: day * 24 * hour + hour,
            pnl: Decimal::from(pnl),
            stop_loss_set: true,
            take_profit_set: true,
        };
        TradeMetrics::compute_facts(&[trade(0, 10), trade(1, -5)], &MetricsConfig::default())
            .map(|m| {
                m.fields()
                    .into_iter()
                    .filter_map(|(name, v)| v.map(|v| (name, kind_of(v))))
                    .collect()
            })
            .unwrap_or_default()
    });
    kinds.iter().find(|(n, _)| *n == name).map(|(_, k)| *k)
}

/// Every [`TradeMetrics`] field of `rows` as `(name, type, column)`, in
/// [`TradeMetrics::fields`] order. A field's kind is what `kinds` says, else
/// [`probed_kind`], else that of its first defined value, else a decimal.
#[must_use]
pub fn metrics_columns(
    rows: &[&TradeMetrics],
    kinds: impl Fn(&str) -> Option<MetricKind>,
) -> Vec<(&'static str, DataType, ArrayRef)> {
    let fields: Vec<_> = rows.iter().map(|m| m.fields()).collect();
    TradeMetrics::field_names()
        .iter()
        .enumerate()
        .map(|(i, &name)| {
            let values: Vec<Option<TradeValue>> = fields.iter().map(|f| f[i].1).collect();
            let kind = kinds(name)
                .or_else(|| probed_kind(name))
                .or_else(|| values.iter().flatten().next().map(|v| kind_of(*v)))
                .unwrap_or(MetricKind::Decimal);
            let (ty, column) = metric_column(kind, &values);
            (name, ty, column)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::types::Decimal128Type;
    use arrow_array::Array;

    #[test]
    fn decimals_share_the_largest_scale_exactly() {
        let (ty, column) = decimal_column(&[
            Some(Decimal::new(15, 1)),
            None,
            Some(Decimal::new(-1234, 3)),
        ]);
        assert_eq!(ty, DataType::Decimal128(38, 3));
        let column = column.as_primitive::<Decimal128Type>();
        assert_eq!(column.value(0), 1500);
        assert!(column.is_null(1));
        assert_eq!(column.value(2), -1234);
    }

    #[test]
    fn decimals_that_would_need_more_than_38_digits_are_exact_text() {
        let big = Decimal::from_i128_with_scale(79_228_162_514_264_337_593_543_950_335, 0);
        let small = Decimal::from_i128_with_scale(1, 28);
        let (ty, column) = decimal_column(&[Some(big), Some(small)]);
        assert_eq!(ty, DataType::Utf8);
        let column = column.as_string::<i32>();
        assert_eq!(column.value(0), big.to_string());
        assert_eq!(column.value(1), "0.0000000000000000000000000001");
    }

    #[test]
    fn an_undefined_column_is_a_decimal_unless_named() {
        let (ty, column) = decimal_column(&[None, None]);
        assert_eq!(ty, DataType::Decimal128(38, 0));
        assert_eq!(column.null_count(), 2);
        let (ty, _) = metric_column(MetricKind::Day, &[None]);
        assert_eq!(ty, DataType::Date32);
    }

    #[test]
    fn every_field_has_a_probed_kind() {
        for name in TradeMetrics::field_names() {
            assert!(probed_kind(name).is_some(), "{name}");
        }
        assert_eq!(probed_kind("max_daily_loss_day"), Some(MetricKind::Day));
        assert_eq!(probed_kind("trades"), Some(MetricKind::Count));
        assert_eq!(probed_kind("profit_factor"), Some(MetricKind::Decimal));
    }
}
