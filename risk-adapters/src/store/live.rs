//! Live config: the engine runs on what the store holds, and follows every change.
//!
//! * At start, [`LiveConfig::start`] seeds an empty store from the config file, or logs
//!   that the store's config wins over the file's ladders, rules and profiles, then loads
//!   it into the engine.
//! * A write through this process ([`LiveConfig::write`]) is serialized with the others of
//!   this process, committed by the store (which validated it with the core first), and
//!   only then applied to the engine.
//! * Writes by other processes arrive through [`Store::watch`] (LISTEN/NOTIFY on
//!   PostgreSQL, a polled version row on SQLite) and are applied by a full reload.
//!
//! The engine only ever moves forward: a config is applied when its version is above the
//! one in force, so a slow reload can never put back an older config.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use risk_core::config::RiskConfig;
use risk_core::engine::RiskEngine;
use risk_core::ids::UserId;

use super::{Change, Committed, Seed, Snapshot, Store, StoreError, StoredProfile, WriteCtx};

/// The engine, the store, and the version of the store's config in force.
#[derive(Debug)]
pub struct LiveConfig {
    store: Arc<dyn Store>,
    engine: Arc<RiskEngine>,
    /// The limits, metrics and score settings of the config file (not stored).
    base: Arc<RiskConfig>,
    /// The version in force; changed only under `apply_lock`.
    applied: AtomicI64,
    apply_lock: Mutex<()>,
    /// Orders this process's writes, so each applies right after its commit.
    write_lock: tokio::sync::Mutex<()>,
    loaded: AtomicBool,
    /// The stored profiles in force, kept to re-assert them over accounts that arrive
    /// (or change) through engine events after the load.
    profiles: Mutex<HashMap<UserId, StoredProfile>>,
}

/// How often the stored profiles are re-asserted over the engine's accounts.
pub const REASSERT_PROFILES_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

impl LiveConfig {
    /// Seeds an empty store from `seed` (the config file), loads the store's config into
    /// `engine`, and returns the live config. `base` is the file's config: its limits,
    /// metrics and score settings complete the stored ladders and rules.
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be read, or its rows do not build a valid
    /// config.
    pub async fn start(
        store: Arc<dyn Store>,
        engine: Arc<RiskEngine>,
        base: RiskConfig,
        seed: Option<&Seed>,
    ) -> Result<Arc<Self>, StoreError> {
        if let Some(seed) = seed {
            if store.seed_if_empty(seed, &base).await? {
                tracing::info!(
                    backend = store.backend(),
                    tiers = seed.tiers.len(),
                    rules = seed.rules.len(),
                    profiles = seed.profiles.len(),
                    "empty config store seeded from the config file"
                );
            } else {
                tracing::info!(
                    backend = store.backend(),
                    "the config store holds a config: it wins, and the config file's ladders, \
                     rules and account profiles are ignored"
                );
            }
        }
        let live = Arc::new(Self {
            store,
            engine,
            base: Arc::new(base),
            applied: AtomicI64::new(i64::MIN),
            apply_lock: Mutex::new(()),
            write_lock: tokio::sync::Mutex::new(()),
            loaded: AtomicBool::new(false),
            profiles: Mutex::new(HashMap::new()),
        });
        live.reload().await?;
        live.loaded.store(true, Ordering::Release);
        Ok(live)
    }

    /// The store.
    #[must_use]
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The engine.
    #[must_use]
    pub fn engine(&self) -> &Arc<RiskEngine> {
        &self.engine
    }

    /// The config version in force.
    #[must_use]
    pub fn version(&self) -> i64 {
        self.applied.load(Ordering::Acquire)
    }

    /// Whether the store's config has been loaded.
    #[must_use]
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// A write context for `route` by `actor`.
    #[must_use]
    pub fn ctx(&self, route: &str, actor: &str, if_match: Option<i64>) -> WriteCtx {
        WriteCtx {
            route: route.to_owned(),
            actor: actor.to_owned(),
            if_match,
            base: Arc::clone(&self.base),
        }
    }

    /// Runs one store write and applies what it committed. Writes of this process run one
    /// at a time, so each is applied in commit order.
    ///
    /// # Errors
    /// The write's [`StoreError`]; nothing was stored and the engine is unchanged.
    pub async fn write<T, F, Fut>(&self, write: F) -> Result<T, StoreError>
    where
        F: FnOnce(Arc<dyn Store>) -> Fut,
        Fut: Future<Output = Result<Committed<T>, StoreError>>,
    {
        let _serial = self.write_lock.lock().await;
        let committed = write(Arc::clone(&self.store)).await?;
        let in_order = {
            let _apply = self
                .apply_lock
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let applied = self.applied.load(Ordering::Acquire);
            if committed.version == applied.saturating_add(1) {
                self.apply_change(committed.version, &committed.change);
                true
            } else {
                committed.version <= applied
            }
        };
        if !in_order {
            // Another process wrote in between: this change alone would skip its changes.
            if let Err(e) = self.reload().await {
                tracing::error!(error = %e, "reload after a write failed");
            }
        }
        Ok(committed.row)
    }

    /// Reads the whole store and applies it when it is newer than the config in force.
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be read or its rows are invalid; the engine
    /// keeps its config.
    pub async fn reload(&self) -> Result<(), StoreError> {
        let snapshot = self.store.snapshot(&self.base).await?;
        self.apply_snapshot(snapshot);
        Ok(())
    }

    fn apply_snapshot(&self, snapshot: Snapshot) {
        let _apply = self
            .apply_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if snapshot.version <= self.applied.load(Ordering::Acquire) {
            return;
        }
        if let Err(e) = self.engine.replace_config(snapshot.config) {
            // The store built and validated it; the core refusing it now is a bug.
            tracing::error!(error = %e, version = snapshot.version, "stored config refused");
            return;
        }
        let changed = apply_profiles(&self.engine, &snapshot.profiles);
        let count = snapshot.profiles.len();
        *self.profiles.lock().unwrap_or_else(PoisonError::into_inner) = snapshot.profiles;
        self.applied.store(snapshot.version, Ordering::Release);
        tracing::info!(
            version = snapshot.version,
            profiles = count,
            accounts_changed = changed,
            "config loaded from the store"
        );
    }

    fn apply_change(&self, version: i64, change: &Change) {
        match change {
            Change::Config(config) => {
                if let Err(e) = self.engine.replace_config((**config).clone()) {
                    tracing::error!(error = %e, version, "stored config refused");
                    return;
                }
            }
            Change::Profile(user, profile) => {
                let one = HashMap::from([(user.clone(), profile.clone())]);
                apply_profiles(&self.engine, &one);
                self.profiles
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(user.clone(), profile.clone());
            }
        }
        self.applied.store(version, Ordering::Release);
        tracing::info!(version, "config change in force");
    }

    /// Writes the stored profiles over every account of their users again: an account
    /// created (or given another profile) by an engine event after the load runs on its
    /// user's stored profile from then on. Returns the number of accounts changed.
    pub fn reassert_profiles(&self) -> usize {
        let _apply = self
            .apply_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let profiles = self.profiles.lock().unwrap_or_else(PoisonError::into_inner);
        apply_profiles(&self.engine, &profiles)
    }

    /// Follows other writers until the returned task is aborted: every announced version
    /// above the one in force, and every reconnect, triggers a full reload. Every
    /// [`REASSERT_PROFILES_EVERY`] the stored profiles are re-asserted
    /// ([`Self::reassert_profiles`]).
    #[must_use]
    pub fn follow(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Option<i64>>(64);
        let store = Arc::clone(&self.store);
        let watcher = tokio::spawn(async move { store.watch(tx).await });
        let live = Arc::clone(self);
        let reasserting = Arc::clone(self);
        let reassert = tokio::spawn(async move {
            let mut tick = tokio::time::interval(REASSERT_PROFILES_EVERY);
            loop {
                tick.tick().await;
                let changed = reasserting.reassert_profiles();
                if changed > 0 {
                    tracing::info!(accounts = changed, "stored profiles re-asserted");
                }
            }
        });
        tokio::spawn(async move {
            let _stop = AbortOnDrop(vec![watcher, reassert]);
            while let Some(notice) = rx.recv().await {
                // Coalesce a burst of notices into one reload.
                let mut newest = notice;
                let mut full = notice.is_none();
                while let Ok(more) = rx.try_recv() {
                    full |= more.is_none();
                    newest = newest.max(more);
                }
                if !full && newest.is_some_and(|v| v <= live.version()) {
                    continue;
                }
                if let Err(e) = live.reload().await {
                    tracing::error!(error = %e, "config reload failed; the engine keeps its config");
                }
            }
        })
    }
}

/// Aborts its tasks when dropped, so aborting the follower stops its helpers too.
struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// Writes stored profiles into every account of their users; the count changed.
fn apply_profiles(engine: &RiskEngine, profiles: &HashMap<UserId, StoredProfile>) -> usize {
    if profiles.is_empty() {
        return 0;
    }
    engine.update_profiles(|user, profile| {
        profiles
            .get(user)
            .is_some_and(|stored| stored.apply_to(profile))
    })
}
