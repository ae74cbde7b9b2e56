//! The figures a pre-trade check computes, and the names rules use for them.

use crate::Decimal;

/// Everything a check computed about an order, in the settlement currency where money.
///
/// Present on a response whenever the check got far enough to price the order (the
/// account and instrument resolved and every needed mark was fresh).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CheckMetrics {
    /// The mark price of the order's symbol.
    pub mark_price: Decimal,
    /// The price the order is valued at: the limit price, or the mark widened by the
    /// market slippage buffer for a market order.
    pub order_price: Decimal,
    /// Order quantity.
    pub order_quantity: Decimal,
    /// quantity x order price x contract multiplier.
    pub order_notional: Decimal,
    /// The part of the quantity that opens or increases a position (the rest reduces).
    pub opening_quantity: Decimal,
    /// opening quantity x order price x contract multiplier: the notional that needs margin.
    pub opening_notional: Decimal,
    /// Requested leverage.
    pub leverage: Decimal,
    /// The leverage cap in force: min of profile, instrument and tier caps.
    pub max_leverage_allowed: Decimal,
    /// Initial margin the order needs: opening notional / leverage.
    pub required_initial_margin: Decimal,
    /// Wallet balance plus unrealized PnL, before the order.
    pub margin_balance: Decimal,
    /// Margin balance less position and open-order initial margins and reservations.
    pub available_margin: Decimal,
    /// |position after the order fills| x mark x multiplier, in the order's symbol.
    pub projected_position_notional: Decimal,
    /// Gross exposure after the order: positions, open orders, reservations and the
    /// order's opening notional.
    pub projected_exposure: Decimal,
    /// projected exposure / the profile's exposure limit; `None` when the limit is zero.
    pub exposure_utilization: Option<Decimal>,
    /// Maintenance margin over all positions after the order fills.
    pub projected_maintenance_margin: Decimal,
    /// Margin balance after the order fills at its order price.
    pub projected_margin_balance: Decimal,
    /// projected maintenance margin / projected margin balance; `None` when the projected
    /// margin balance is zero or negative while maintenance margin is owed (unbounded).
    pub projected_margin_ratio: Option<Decimal>,
    /// Resting orders on the account before this one.
    pub open_orders: Decimal,
    /// Open positions on the account before this one.
    pub open_positions: Decimal,
    /// |order price - mark| / mark (zero for market orders).
    pub price_deviation: Decimal,
    /// The account's stored risk score.
    pub risk_score: Decimal,
}

impl CheckMetrics {
    /// Every figure by its field name, in declaration order (`None` where undefined): the
    /// one list that the bindings and reports render, so none of them names the fields
    /// by hand.
    #[must_use]
    pub fn fields(&self) -> [(&'static str, Option<Decimal>); 21] {
        let m = self;
        [
            ("mark_price", Some(m.mark_price)),
            ("order_price", Some(m.order_price)),
            ("order_quantity", Some(m.order_quantity)),
            ("order_notional", Some(m.order_notional)),
            ("opening_quantity", Some(m.opening_quantity)),
            ("opening_notional", Some(m.opening_notional)),
            ("leverage", Some(m.leverage)),
            ("max_leverage_allowed", Some(m.max_leverage_allowed)),
            ("required_initial_margin", Some(m.required_initial_margin)),
            ("margin_balance", Some(m.margin_balance)),
            ("available_margin", Some(m.available_margin)),
            (
                "projected_position_notional",
                Some(m.projected_position_notional),
            ),
            ("projected_exposure", Some(m.projected_exposure)),
            ("exposure_utilization", m.exposure_utilization),
            (
                "projected_maintenance_margin",
                Some(m.projected_maintenance_margin),
            ),
            ("projected_margin_balance", Some(m.projected_margin_balance)),
            ("projected_margin_ratio", m.projected_margin_ratio),
            ("open_orders", Some(m.open_orders)),
            ("open_positions", Some(m.open_positions)),
            ("price_deviation", Some(m.price_deviation)),
            ("risk_score", Some(m.risk_score)),
        ]
    }
}

macro_rules! check_metric {
    (|$m:ident| $($(#[$doc:meta])* $variant:ident = $name:literal => $value:expr),+ $(,)?) => {
        /// A check figure a rule can test. Names are the snake_case field names.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
        #[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
        pub enum CheckMetric {
            $($(#[$doc])* $variant),+
        }

        impl CheckMetric {
            /// Every metric.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The metric's config name.
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $name),+ }
            }

            /// The metric's value in `metrics`; `None` when it is undefined for this check.
            #[must_use]
            pub fn value(self, metrics: &CheckMetrics) -> Option<Decimal> {
                let $m = metrics;
                match self { $(Self::$variant => $value),+ }
            }
        }
    };
}

check_metric! {
    |m|
    /// [`CheckMetrics::order_notional`].
    OrderNotional = "order_notional" => Some(m.order_notional),
    /// [`CheckMetrics::order_quantity`].
    OrderQuantity = "order_quantity" => Some(m.order_quantity),
    /// [`CheckMetrics::leverage`].
    Leverage = "leverage" => Some(m.leverage),
    /// [`CheckMetrics::projected_position_notional`].
    ProjectedPositionNotional = "projected_position_notional" => Some(m.projected_position_notional),
    /// [`CheckMetrics::projected_exposure`].
    ProjectedExposure = "projected_exposure" => Some(m.projected_exposure),
    /// [`CheckMetrics::exposure_utilization`].
    ExposureUtilization = "exposure_utilization" => m.exposure_utilization,
    /// [`CheckMetrics::required_initial_margin`].
    RequiredInitialMargin = "required_initial_margin" => Some(m.required_initial_margin),
    /// [`CheckMetrics::available_margin`].
    AvailableMargin = "available_margin" => Some(m.available_margin),
    /// [`CheckMetrics::margin_balance`].
    MarginBalance = "margin_balance" => Some(m.margin_balance),
    /// [`CheckMetrics::projected_margin_ratio`].
    ProjectedMarginRatio = "projected_margin_ratio" => m.projected_margin_ratio,
    /// [`CheckMetrics::open_orders`].
    OpenOrders = "open_orders" => Some(m.open_orders),
    /// [`CheckMetrics::open_positions`].
    OpenPositions = "open_positions" => Some(m.open_positions),
    /// [`CheckMetrics::price_deviation`].
    PriceDeviation = "price_deviation" => Some(m.price_deviation),
    /// [`CheckMetrics::risk_score`].
    RiskScore = "risk_score" => Some(m.risk_score),
}

impl std::fmt::Display for CheckMetric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for CheckMetric {
    type Err = crate::model::UnknownName;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        crate::model::find_by_name(Self::ALL, Self::as_str, "CheckMetric", text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each rule metric's name is a field of [`CheckMetrics::fields`] with the same value.
    #[test]
    fn rule_metrics_are_named_fields() {
        let m = CheckMetrics {
            order_notional: Decimal::from(7),
            risk_score: Decimal::from(3),
            exposure_utilization: None,
            ..CheckMetrics::default()
        };
        let fields = m.fields();
        for metric in CheckMetric::ALL {
            let field = fields.iter().find(|(name, _)| *name == metric.as_str());
            assert_eq!(field.map(|(_, v)| *v), Some(metric.value(&m)), "{metric}");
        }
    }
}
