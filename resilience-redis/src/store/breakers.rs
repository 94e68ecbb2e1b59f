//! The shared breakers' local views, refreshed from Redis (see [`breaker`](crate::breaker)).

use super::*;

impl Inner {
    pub(super) fn find_view(&self, policy: &str, key: &str) -> Option<Arc<View>> {
        let views = self.views.read().unwrap_or_else(|p| p.into_inner());
        views
            .get(policy)?
            .get(key)
            .map(|(_, view)| Arc::clone(view))
    }

    /// The view of a breaker, created (CLOSED) on first use.
    pub(super) fn view_of(&self, policy: &str, key: &str) -> Arc<View> {
        if let Some(view) = self.find_view(policy, key) {
            return view;
        }
        let mut views = self.views.write().unwrap_or_else(|p| p.into_inner());
        let (_, view) = views
            .entry(policy.to_owned())
            .or_default()
            .entry(key.to_owned())
            .or_insert_with(|| {
                let name = self.breaker_key(policy, key);
                (name, Arc::new(View::new(self.origin)))
            });
        Arc::clone(view)
    }

    /// Refreshes every view from Redis in one round trip.
    pub(super) async fn poll(&self) {
        let (keys, views): (Vec<String>, Vec<Arc<View>>) = {
            let views = self.views.read().unwrap_or_else(|p| p.into_inner());
            views
                .values()
                .flat_map(HashMap::values)
                .map(|(name, view)| (name.clone(), Arc::clone(view)))
                .unzip()
        };
        if keys.is_empty() {
            return;
        }
        let reply: Result<Vec<i64>, _> = self
            .link
            .run(|mut conn| async move {
                let mut call = self.view.prepare_invoke();
                for key in &keys {
                    call.key(key);
                }
                call.invoke_async(&mut conn).await
            })
            .await;
        if let Ok(reply) = reply {
            for (view, row) in views.iter().zip(reply.chunks_exact(3)) {
                view.update(row[0], row[1], row[2]);
            }
            self.polls.fetch_add(1, Ordering::Release);
        }
    }

    pub(super) async fn lease(&self, breaker: BreakerRef<'_>) -> Lease {
        let view = self.view_of(breaker.policy, breaker.key);
        let key = self.breaker_key(breaker.policy, breaker.key);
        let needed = breaker.settings.success_threshold.get();
        let recovery = breaker.settings.recovery_timeout.as_micros() as u64;
        let reply: Result<Vec<i64>, _> = self
            .link
            .run(|mut conn| async move {
                self.lease
                    .key(key)
                    .arg(needed)
                    .arg(recovery)
                    .invoke_async(&mut conn)
                    .await
            })
            .await;
        match reply.as_deref() {
            Ok([state, failures, left, granted]) => {
                view.update(*state, *failures, *left);
                if *granted == 1 {
                    Lease::Granted
                } else {
                    let retry_in = Duration::from_micros((*left).max(0) as u64);
                    Lease::Refused {
                        retry_in: retry_in.max(POLL),
                    }
                }
            }
            // Redis away: the local breaker alone decides (the rate limit says what
            // `on_unavailable` does).
            _ => Lease::Granted,
        }
    }

    pub(super) async fn record(&self, breaker: String, view: Arc<View>, args: [u64; 4]) {
        let reply: Result<Vec<i64>, _> = self
            .link
            .run(|mut conn| async move {
                self.record
                    .key(breaker)
                    .arg(&args[..])
                    .invoke_async(&mut conn)
                    .await
            })
            .await;
        if let Ok([state, failures, left]) = reply.as_deref() {
            view.update(*state, *failures, *left);
        }
    }
}

/// Whether the fleet shares this breaker: `mode = "consecutive"` (a `ratio` breaker's
/// sliding window stays local to each process).
pub(super) fn shares(breaker: BreakerRef<'_>) -> bool {
    breaker.settings.mode == BreakerMode::Consecutive
}
