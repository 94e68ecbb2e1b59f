//! Fleet counters added to Redis, and the fleet report read back (see
//! [`metrics`](crate::metrics)).

use super::*;

impl Inner {
    pub(super) fn index_key(&self) -> String {
        format!("{}:m:index", self.prefix)
    }

    pub(super) async fn flush(&self) -> bool {
        let counts = self.counters.take();
        if counts.is_empty() {
            return true;
        }
        let mut args: Vec<String> = vec![KEEP.as_secs().to_string()];
        for (name, values) in &counts {
            for (counter, n) in COUNTERS.iter().zip(values) {
                if *n > 0 {
                    args.extend([name.clone(), (*counter).to_owned(), n.to_string()]);
                }
            }
        }
        let index = self.index_key();
        let added: Result<i64, _> =
            self.link
                .run(|mut conn| async move {
                    self.add.key(index).arg(&args).invoke_async(&mut conn).await
                })
                .await;
        if added.is_err() {
            self.counters.restore(counts);
        }
        added.is_ok()
    }

    pub(super) async fn fleet_report(&self) -> Option<FleetReport> {
        let workers_key = self.workers_key();
        let pattern = format!("{}:cb:*", self.prefix);
        let (now, workers, breakers): (Vec<String>, Vec<(String, f64)>, Vec<String>) = self
            .link
            .run(|mut conn| async move {
                let now: Vec<String> = redis::cmd("TIME").query_async(&mut conn).await?;
                let workers: Vec<(String, f64)> = redis::cmd("ZRANGE")
                    .arg(&workers_key)
                    .arg(0)
                    .arg(-1)
                    .arg("WITHSCORES")
                    .query_async(&mut conn)
                    .await?;
                let mut breakers = Vec::new();
                let mut cursor = 0u64;
                loop {
                    let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(1000)
                        .query_async(&mut conn)
                        .await?;
                    breakers.extend(keys);
                    if next == 0 {
                        break;
                    }
                    cursor = next;
                }
                Ok((now, workers, breakers))
            })
            .await
            .ok()?;
        let now_ms =
            now.first()?.parse::<u64>().ok()? * 1000 + now.get(1)?.parse::<u64>().ok()? / 1000;
        let mut report = FleetReport::default();
        for (id, at) in workers {
            let age = Duration::from_millis(now_ms.saturating_sub(at as u64));
            if age <= fleet::WORKER_TTL {
                report.workers.push((id, age));
            }
        }
        report.workers.sort_by_key(|(_, age)| *age);
        let states: Vec<i64> = if breakers.is_empty() {
            Vec::new()
        } else {
            let keys = breakers.clone();
            self.link
                .run(|mut conn| async move {
                    let mut call = self.view.prepare_invoke();
                    for key in &keys {
                        call.key(key);
                    }
                    call.invoke_async(&mut conn).await
                })
                .await
                .ok()?
        };
        let head = format!("{}:cb:", self.prefix);
        for (name, row) in breakers.iter().zip(states.chunks_exact(3)) {
            let Some((policy, key)) = name.strip_prefix(&head).and_then(|n| n.split_once(':'))
            else {
                continue;
            };
            report.breakers.push(FleetBreaker {
                policy: policy.to_owned(),
                key: key.to_owned(),
                state: match row[0] {
                    1 if row[2] > 0 => BreakerState::Open,
                    1 | 2 => BreakerState::HalfOpen,
                    _ => BreakerState::Closed,
                },
                failures: row[1].clamp(0, i64::from(u32::MAX)) as u32,
                open_for: Duration::from_micros(row[2].max(0) as u64),
            });
        }
        report
            .breakers
            .sort_by(|a, b| (&a.policy, &a.key).cmp(&(&b.policy, &b.key)));
        let index = self.index_key();
        let sums: Vec<String> = self
            .link
            .run(|mut conn| async move { self.sum.key(index).invoke_async(&mut conn).await })
            .await
            .ok()?;
        let mut rows = sums.split(String::is_empty);
        for row in rows.by_ref() {
            let Some((name, pairs)) = row.split_first() else {
                continue;
            };
            let Some((policy, key)) = name.split_once('|') else {
                continue;
            };
            let counters = pairs
                .chunks_exact(2)
                .filter_map(|kv| Some((kv[0].clone(), kv[1].parse().ok()?)))
                .collect();
            report
                .last_hour
                .insert((policy.to_owned(), key.to_owned()), counters);
        }
        Some(report)
    }
}
