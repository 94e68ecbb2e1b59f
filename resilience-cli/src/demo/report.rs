//! The six claims the demo makes, and the checks that earn them.
//!
//! A claim is printed with ✅ only when at least one check backs it and every check
//! behind it passed; otherwise it is printed with ❌ and the first failed check's reason.
//! Which check earns which claim is decided where the check is made (each scenario tags
//! its checks), so the summary can never claim more than was measured.

/// One line of the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Claim {
    /// Scenario 1: reset and black-holed connections are retried with backoff.
    Retry,
    /// Scenario 6: an outage opens the breaker, calls fail fast, it closes by itself.
    Breaker,
    /// Scenario 4: calls over the rate wait; none is lost; the measured rate holds.
    RateLimit,
    /// Scenario 2: a backend terminated mid-read; the read resumes, rows arrive once.
    Recovery,
    /// Scenarios 3 and 6: slow network and an outage do not stop the pipeline.
    Degradation,
    /// Scenario 5: a connector configured without any policy works on the presets.
    ZeroConfig,
}

impl Claim {
    /// Every claim, in the order the summary prints them.
    pub(crate) const ALL: [Claim; 6] = [
        Claim::Retry,
        Claim::Breaker,
        Claim::RateLimit,
        Claim::Recovery,
        Claim::Degradation,
        Claim::ZeroConfig,
    ];

    /// The summary line's text.
    pub(crate) fn text(&self) -> &'static str {
        match self {
            Claim::Retry => "Automatic retry on connection timeouts",
            Claim::Breaker => "Circuit breaker protection during outages",
            Claim::RateLimit => "Rate limiting prevents database overload",
            Claim::Recovery => "Connection recovery handles network failures",
            Claim::Degradation => "Graceful degradation maintains pipeline reliability",
            Claim::ZeroConfig => "Zero configuration - resilience works automatically",
        }
    }
}

/// The outcome of one check: what was measured, or why it failed.
#[derive(Debug, Clone)]
pub(crate) struct Check {
    /// The claim this check backs.
    pub claim: Claim,
    /// What the check looked at.
    pub name: &'static str,
    /// `Ok(evidence)` or `Err(reason)`.
    pub result: Result<String, String>,
}

impl Check {
    /// A check that passed or failed on `result`; prints its line.
    pub(crate) fn new(claim: Claim, name: &'static str, result: Result<String, String>) -> Check {
        match &result {
            Ok(evidence) => println!("   ✓ {name}: {evidence}"),
            Err(reason) => println!("   ✗ {name}: {reason}"),
        }
        Check {
            claim,
            name,
            result,
        }
    }

    /// Passes when `ok`, with `evidence`; fails with `reason` otherwise.
    pub(crate) fn expect(
        claim: Claim,
        name: &'static str,
        ok: bool,
        evidence: String,
        reason: String,
    ) -> Check {
        Check::new(claim, name, if ok { Ok(evidence) } else { Err(reason) })
    }
}

/// Every check made.
#[derive(Debug, Default)]
pub(crate) struct Report {
    checks: Vec<Check>,
}

impl Report {
    /// Adds checks.
    pub(crate) fn extend(&mut self, checks: impl IntoIterator<Item = Check>) {
        self.checks.extend(checks);
    }

    /// Why `claim` is not earned, or `None` when it is.
    pub(crate) fn failure(&self, claim: Claim) -> Option<String> {
        let mut backing = self.checks.iter().filter(|c| c.claim == claim).peekable();
        if backing.peek().is_none() {
            return Some("no check ran".to_owned());
        }
        backing.find_map(|c| {
            c.result
                .as_ref()
                .err()
                .map(|reason| format!("{}: {reason}", c.name))
        })
    }

    /// The `status` column of the results file.
    pub(crate) fn status(&self) -> String {
        let failed: Vec<&str> = Claim::ALL
            .iter()
            .filter(|c| self.failure(**c).is_some())
            .map(Claim::text)
            .collect();
        if failed.is_empty() {
            "All operations completed successfully".to_owned()
        } else {
            format!("Failed: {}", failed.join("; "))
        }
    }

    /// Prints the six lines; returns the claims not earned.
    pub(crate) fn print_summary(&self) -> Vec<Claim> {
        let mut failed = Vec::new();
        for claim in Claim::ALL {
            match self.failure(claim) {
                None => println!("✅ {}", claim.text()),
                Some(reason) => {
                    println!("❌ {} ({reason})", claim.text());
                    failed.push(claim);
                }
            }
        }
        failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(claim: Claim, ok: bool) -> Check {
        Check {
            claim,
            name: "c",
            result: if ok {
                Ok("fine".into())
            } else {
                Err("broken".into())
            },
        }
    }

    #[test]
    fn a_claim_needs_a_check_and_every_check_passing() {
        let mut report = Report::default();
        assert_eq!(
            report.failure(Claim::Retry).as_deref(),
            Some("no check ran")
        );
        report.extend([check(Claim::Retry, true), check(Claim::Breaker, true)]);
        assert!(report.failure(Claim::Retry).is_none());
        report.extend([check(Claim::Retry, false)]);
        assert_eq!(report.failure(Claim::Retry).as_deref(), Some("c: broken"));
        assert!(
            report
                .status()
                .starts_with("Failed: Automatic retry on connection timeouts; ")
        );
    }

    #[test]
    fn all_passing_reads_as_success() {
        let mut report = Report::default();
        report.extend(Claim::ALL.map(|c| check(c, true)));
        assert_eq!(report.status(), "All operations completed successfully");
        assert!(report.print_summary().is_empty());
    }
}
