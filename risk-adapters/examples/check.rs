//! Sends one `PreTradeCheck` to a `risk-server` and prints the answer: a client for trying
//! the server (and its admin API's effect) without grpcurl.
//!
//! ```text
//! cargo run -p risk-adapters --features grpc --example check -- \
//!     --user alice --symbol BTCUSDT --quantity 0.1 --price 50000
//! ```

use anyhow::Context as _;
use clap::Parser;
use pb::risk_service_client::RiskServiceClient;
use risk_adapters::grpc::proto::v1 as pb;

/// One pre-trade check.
#[derive(Debug, Parser)]
struct Args {
    /// Server address.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    addr: String,
    /// The user.
    #[arg(long)]
    user: String,
    /// The account (default `acc-{user}`, as in the demo config).
    #[arg(long)]
    account: Option<String>,
    /// The order id (default: `check-` and the current time in nanoseconds).
    #[arg(long)]
    order_id: Option<String>,
    /// The instrument.
    #[arg(long)]
    symbol: String,
    /// BUY or SELL.
    #[arg(long, default_value = "BUY")]
    side: String,
    /// Quantity (a decimal).
    #[arg(long)]
    quantity: String,
    /// Limit price (a decimal); absent for a MARKET order.
    #[arg(long)]
    price: Option<String>,
    /// Leverage (a decimal).
    #[arg(long, default_value = "10")]
    leverage: String,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let side = pb::Side::from_str_name(&args.side.to_ascii_uppercase())
        .with_context(|| format!("--side {}: expected BUY or SELL", args.side))?;
    let order_id = args.order_id.unwrap_or_else(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("check-{nanos}")
    });
    let order_type = if args.price.is_some() {
        pb::OrderType::Limit
    } else {
        pb::OrderType::Market
    };
    let mut client = RiskServiceClient::connect(args.addr.clone())
        .await
        .with_context(|| format!("connecting to {}", args.addr))?;
    let r = client
        .pre_trade_check(pb::PreTradeCheckRequest {
            account_id: args.account.unwrap_or_else(|| format!("acc-{}", args.user)),
            user_id: args.user,
            order_id: order_id.clone(),
            symbol: args.symbol,
            side: side as i32,
            order_type: order_type as i32,
            quantity: args.quantity,
            price: args.price.unwrap_or_default(),
            leverage: args.leverage,
            reduce_only: false,
            post_only: false,
            trace_id: order_id,
        })
        .await
        .context("PreTradeCheck")?
        .into_inner();
    println!("decision:      {}", r.decision().as_str_name());
    println!("reject_reason: {}", r.reject_reason().as_str_name());
    println!("message:       {}", r.message);
    println!("rule_hits:     {}", r.rule_hits.join(", "));
    Ok(())
}
