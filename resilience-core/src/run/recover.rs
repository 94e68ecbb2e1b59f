//! Connection recovery inside a call: the connector's hook, run within the call's deadline,
//! reported as started and then succeeded, not needed or failed.

use std::sync::Arc;

use tokio::time::Instant;

use super::Run;
use crate::events::EventKind;
use crate::recovery::{Recovered, Recovery, RecoveryCause};
use crate::slot::Slot;
use resilience_policy::ErrorClass;

impl Run<'_> {
    /// Runs the recovery hook within the call's deadline; `true` when it mended the
    /// connection.
    pub(super) async fn recover(
        &self,
        slot: &Slot,
        hook: &Arc<dyn Recovery>,
        class: ErrorClass,
        refresh: bool,
    ) -> bool {
        let cause = RecoveryCause {
            class,
            refresh_credentials: refresh || slot.policy().recovery.credential_refresh,
            operation: self.operation,
        };
        let refresh_credentials = cause.refresh_credentials;
        self.emit(
            slot,
            EventKind::RecoveryStarted {
                class,
                refresh_credentials,
            },
        );
        let deadline = self
            .deadline()
            .unwrap_or_else(|| Instant::now() + slot.hot.total());
        let result = match tokio::time::timeout_at(deadline, hook.recover(cause)).await {
            Ok(result) => result,
            Err(_) => Err("recovery ran past the call's deadline".to_owned()),
        };
        match result {
            Ok(Recovered::Mended) => {
                self.emit(
                    slot,
                    EventKind::RecoverySucceeded {
                        refresh_credentials,
                    },
                );
                if refresh_credentials {
                    self.emit(slot, EventKind::CredentialsRefreshed);
                }
                true
            }
            Ok(Recovered::NotNeeded(reason)) => {
                self.emit(slot, EventKind::RecoveryNotNeeded { reason: &reason });
                false
            }
            Err(error) => {
                self.emit(slot, EventKind::RecoveryFailed { error: &error });
                false
            }
        }
    }
}
