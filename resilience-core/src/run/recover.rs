//! Connection recovery inside a call: the connector's hook, run within the call's deadline.

use std::sync::Arc;

use tokio::time::Instant;

use super::Run;
use crate::ErrorClass;
use crate::health::Stats;
use crate::recovery::{Recovery, RecoveryCause};
use crate::slot::Slot;

impl Run<'_> {
    /// Runs the recovery hook within the call's deadline; `true` when it succeeded.
    pub(super) async fn recover(
        &self,
        slot: &Slot,
        hook: &Arc<dyn Recovery>,
        class: ErrorClass,
        refresh: bool,
    ) -> bool {
        let cause = RecoveryCause {
            class,
            refresh_credentials: refresh || slot.policy.recovery.credential_refresh,
            operation: self.operation,
        };
        let deadline = self
            .deadline
            .unwrap_or_else(|| Instant::now() + slot.policy.timeout.total);
        let result = match tokio::time::timeout_at(deadline, hook.recover(cause)).await {
            Ok(result) => result,
            Err(_) => Err("recovery ran past the call's deadline".to_owned()),
        };
        match result {
            Ok(()) => {
                Stats::bump(&slot.stats.recoveries);
                slot.meters.recoveries.increment(1);
                tracing::info!(
                    policy = &*slot.policy_name,
                    key = &*slot.key,
                    operation = self.operation,
                    refresh_credentials = cause.refresh_credentials,
                    "connection recovered"
                );
                true
            }
            Err(error) => {
                Stats::bump(&slot.stats.recovery_failures);
                tracing::warn!(policy = &*slot.policy_name, key = &*slot.key, operation = self.operation, %error, "connection recovery failed");
                false
            }
        }
    }
}
