//! The config store: one suite, run against SQLite and the machine's PostgreSQL.

mod common;

use std::sync::Arc;

use risk_adapters::config_file::{ConfigFile, Format};
use risk_adapters::store::{
    self, ListQuery, NewRule, ProfilePatch, RulePatch, Seed, Store, StoreError, TierPatch, WriteCtx,
};
use risk_core::config::RiskConfig;
use risk_core::ids::Symbol;

const DEMO: &str = include_str!("../../examples/config/demo.toml");

fn demo() -> ConfigFile {
    ConfigFile::parse(DEMO, Format::Toml, "demo.toml").expect("demo config")
}

fn ctx(base: &RiskConfig, if_match: Option<i64>) -> WriteCtx {
    WriteCtx {
        route: "test".to_owned(),
        actor: "tester".to_owned(),
        if_match,
        base: Arc::new(base.clone()),
    }
}

fn tiny() -> NewRule {
    NewRule {
        name: "tiny".into(),
        metric: "order_notional".into(),
        operator: ">".into(),
        threshold: "1000".into(),
        severity: "HIGH".into(),
        action: "REJECT".into(),
        kyc_level: None,
        symbol: None,
        active: true,
    }
}

async fn seeded(store: &Arc<dyn Store>) -> RiskConfig {
    let file = demo();
    assert!(store
        .seed_if_empty(&Seed::from_file(&file), &file.engine)
        .await
        .expect("seed"));
    file.engine
}

fn all() -> ListQuery {
    ListQuery {
        limit: 1000,
        ..ListQuery::default()
    }
}

/// The seed copies the file's ladders, rules and profiles; the config the store builds
/// from them is the file's own; a second seed does nothing.
async fn seed_round_trips(store: Arc<dyn Store>) {
    let file = demo();
    let base = seeded(&store).await;
    let snap = store.snapshot(&base).await.expect("snapshot");
    assert!(snap.holds_config);
    assert_eq!(snap.config, file.engine);
    assert_eq!(snap.profiles.len(), 3);
    let alice = &snap.profiles[&risk_core::ids::UserId::new("alice")];
    assert_eq!(alice.profile, file.accounts[0].profile);
    assert!(!store
        .seed_if_empty(&Seed::from_file(&file), &base)
        .await
        .expect("second seed"));
    assert_eq!(store.version().await.expect("version"), snap.version);
    let tiers = store.list_tiers(&all()).await.expect("tiers");
    assert_eq!(tiers.len(), 2 + 5 + 3);
    let btc2 = tiers
        .iter()
        .find(|t| t.symbol.as_deref() == Some("BTCUSDT") && t.tier == 2)
        .expect("BTCUSDT tier 2");
    assert_eq!(btc2.maintenance_margin_pct.to_string(), "0.5");
    assert_eq!(
        btc2.max_notional.map(|d| d.to_string()),
        Some("250000".into())
    );
}

/// Create, read, list (filtered and paged) and patch a rule; the 404, 409, 412 and 422
/// answers leave the store as it was.
async fn rules_crud(store: Arc<dyn Store>) {
    let base = seeded(&store).await;
    let v0 = store.version().await.expect("version");
    let created = store
        .create_rule(&tiny(), &ctx(&base, None))
        .await
        .expect("create");
    assert_eq!(created.version, v0 + 1);
    assert!(matches!(
        &created.change,
        store::Change::Config(c) if c.rules.rules().iter().any(|r| r.id.as_str() == "tiny")
    ));
    let row = store.rule(created.row.id).await.expect("get");
    assert_eq!(row, created.row);
    assert_eq!((row.threshold.to_string(), row.version), ("1000".into(), 1));

    // Conflicts and invalid values change nothing.
    assert!(matches!(
        store.create_rule(&tiny(), &ctx(&base, None)).await,
        Err(StoreError::Conflict { field: "name", .. })
    ));
    let mut unknown = tiny();
    unknown.name = "x".into();
    unknown.metric = "order_colour".into();
    match store.create_rule(&unknown, &ctx(&base, None)).await {
        Err(StoreError::Invalid { field, message }) => {
            assert_eq!(field, "metric");
            assert!(message.contains("order_colour"), "{message}");
        }
        other => panic!("unknown metric: {other:?}"),
    }
    let patch = RulePatch {
        threshold: Some("a lot".into()),
        ..RulePatch::default()
    };
    assert!(matches!(
        store.patch_rule(row.id, &patch, &ctx(&base, None)).await,
        Err(StoreError::Invalid { field, .. }) if field == "threshold"
    ));
    assert_eq!(store.version().await.expect("version"), v0 + 1);

    // If-Match.
    let patch = RulePatch {
        threshold: Some("2000".into()),
        symbol: Some(Some("BTCUSDT".into())),
        ..RulePatch::default()
    };
    assert!(matches!(
        store.patch_rule(row.id, &patch, &ctx(&base, Some(7))).await,
        Err(StoreError::VersionMismatch {
            expected: 7,
            actual: 1,
            ..
        })
    ));
    let patched = store
        .patch_rule(row.id, &patch, &ctx(&base, Some(1)))
        .await
        .expect("patch");
    assert_eq!(patched.row.version, 2);
    assert_eq!(patched.row.symbol.as_deref(), Some("BTCUSDT"));
    assert_eq!(patched.row.threshold.to_string(), "2000");
    assert!(matches!(
        store.patch_rule(row.id, &patch, &ctx(&base, Some(1))).await,
        Err(StoreError::VersionMismatch { actual: 2, .. })
    ));
    assert!(matches!(
        store.patch_rule(999_999, &patch, &ctx(&base, None)).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.rule(999_999).await,
        Err(StoreError::NotFound { .. })
    ));

    // Filters and pages.
    let btc = store
        .list_rules(&ListQuery {
            limit: 10,
            symbol: Some("BTCUSDT".into()),
            ..ListQuery::default()
        })
        .await
        .expect("filter");
    assert_eq!(
        btc.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        ["tiny"]
    );
    let inactive = store
        .list_rules(&ListQuery {
            limit: 10,
            active: Some(false),
            ..ListQuery::default()
        })
        .await
        .expect("filter");
    assert!(inactive.is_empty());
    let first = store
        .list_rules(&ListQuery {
            limit: 2,
            ..ListQuery::default()
        })
        .await
        .expect("page 1");
    let second = store
        .list_rules(&ListQuery {
            limit: 10,
            after_id: first.last().map(|r| r.id),
            ..ListQuery::default()
        })
        .await
        .expect("page 2");
    assert_eq!(first.len() + second.len(), 6);
    assert!(first.iter().all(|a| second.iter().all(|b| a.id < b.id)));

    // Audit: every committed write, with the token's name, before and after.
    let audit = store.audit(10).await.expect("audit");
    assert_eq!(audit[0].config_version, v0 + 2);
    assert_eq!(audit[0].token_name, "tester");
    assert!(audit[0]
        .before
        .as_deref()
        .is_some_and(|b| b.contains("\"1000\"")));
    assert!(audit[0]
        .after
        .as_deref()
        .is_some_and(|a| a.contains("\"2000\"")));
    assert_eq!(audit[1].before, None);
}

/// A tier whose rate falls below the tier under it is refused by the core: 422, and
/// neither the row nor the version changes. A valid change reaches the built config.
async fn tiers_are_validated_by_the_core(store: Arc<dyn Store>) {
    let base = seeded(&store).await;
    let q = ListQuery {
        limit: 10,
        symbol: Some("BTCUSDT".into()),
        ..ListQuery::default()
    };
    let btc = store.list_tiers(&q).await.expect("list");
    let tier2 = btc.iter().find(|t| t.tier == 2).expect("tier 2").clone();
    let v0 = store.version().await.expect("version");
    let lower = TierPatch {
        maintenance_margin_pct: Some("0.3".into()),
        ..TierPatch::default()
    };
    match store.patch_tier(tier2.id, &lower, &ctx(&base, None)).await {
        Err(StoreError::Invalid { field, message }) => {
            assert_eq!(field, "margin_tiers[BTCUSDT tier 2].maintenance_margin_pct");
            assert!(message.contains("rates must not decrease"), "{message}");
        }
        other => panic!("expected 422: {other:?}"),
    }
    assert_eq!(store.tier(tier2.id).await.expect("tier"), tier2);
    assert_eq!(store.version().await.expect("version"), v0);

    let higher = TierPatch {
        maintenance_margin_pct: Some("0.6".into()),
        ..TierPatch::default()
    };
    let ok = store
        .patch_tier(tier2.id, &higher, &ctx(&base, Some(tier2.version)))
        .await
        .expect("valid");
    let store::Change::Config(config) = &ok.change else {
        panic!("a tier write changes the config")
    };
    let rate = config.ladders[&Symbol::new("BTCUSDT")].tiers()[1].maintenance_rate;
    assert_eq!(rate.get().to_string(), "0.006");

    // The default ladder filter, and a tier that breaks the ladder's numbering.
    let default = store
        .list_tiers(&ListQuery {
            limit: 10,
            symbol: Some("*".into()),
            ..ListQuery::default()
        })
        .await
        .expect("default ladder");
    assert_eq!(default.len(), 2);
    assert!(default.iter().all(|t| t.symbol.is_none()));
    let gap = risk_adapters::store::NewTier {
        symbol: Some("ETHUSDT".into()),
        tier: 5,
        max_notional: None,
        maintenance_margin_pct: "2".into(),
        max_leverage: "10".into(),
        active: true,
    };
    assert!(matches!(
        store.create_tier(&gap, &ctx(&base, None)).await,
        Err(StoreError::Invalid { field, .. }) if field.ends_with(".tier")
    ));
    let mut dup = gap.clone();
    dup.tier = 3;
    assert!(matches!(
        store.create_tier(&dup, &ctx(&base, None)).await,
        Err(StoreError::Conflict { field: "tier", .. })
    ));
}

/// Profiles: patch, 404, 412, and scale checks.
async fn profiles(store: Arc<dyn Store>) {
    let base = seeded(&store).await;
    let alice = store.profile("alice").await.expect("alice");
    assert_eq!(alice.kyc_level, "L2");
    assert!(!alice.frozen);
    let freeze = ProfilePatch {
        frozen: Some(true),
        ..ProfilePatch::default()
    };
    let done = store
        .patch_profile("alice", &freeze, &ctx(&base, Some(alice.version)))
        .await
        .expect("freeze");
    assert!(done.row.frozen);
    assert!(matches!(
        &done.change,
        store::Change::Profile(u, p) if u.as_str() == "alice" && p.profile.frozen
    ));
    assert!(matches!(
        store
            .patch_profile("nobody", &freeze, &ctx(&base, None))
            .await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store
            .patch_profile("alice", &freeze, &ctx(&base, Some(alice.version)))
            .await,
        Err(StoreError::VersionMismatch { .. })
    ));
    let bad = ProfilePatch {
        max_leverage: Some("0.5".into()),
        ..ProfilePatch::default()
    };
    assert!(matches!(
        store.patch_profile("alice", &bad, &ctx(&base, None)).await,
        Err(StoreError::Invalid { field, .. }) if field == "max_leverage"
    ));
    let too_fine = ProfilePatch {
        exposure_limit_usdt: Some("1.123456789".into()),
        ..ProfilePatch::default()
    };
    assert!(matches!(
        store.patch_profile("alice", &too_fine, &ctx(&base, None)).await,
        Err(StoreError::Invalid { field, .. }) if field == "exposure_limit_usdt"
    ));
    let page = store
        .list_profiles(&ListQuery {
            limit: 2,
            ..ListQuery::default()
        })
        .await
        .expect("list");
    assert_eq!(
        page.iter().map(|p| p.user_id.as_str()).collect::<Vec<_>>(),
        ["alice", "bob"]
    );
}

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let store = risk_adapters::store::open(&super::common::sqlite_url())
                        .await
                        .expect("sqlite store");
                    super::$name(store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let url = super::common::postgres_url().await;
                    let store = risk_adapters::store::open(&url)
                        .await
                        .expect("postgres store");
                    super::$name(store).await;
                    super::common::drop_postgres(&url).await;
                }
            )*
        }
    };
}

both_backends!(
    seed_round_trips,
    rules_crud,
    tiers_are_validated_by_the_core,
    profiles
);
