//! Malformed values: wrong types, out-of-range numbers, bad durations and names, and rules
//! between two keys. Each error names the file, line, column and key, and says what would
//! be valid. `@` in a case marks where the error must point (it is removed before the file
//! is written).

mod common;

use common::{check, default};

#[test]
fn wrong_type_for_a_count() {
    default(
        "[policy.db.retry]\nmax_attempts = @\"three\"\n",
        "policy.db.retry.max_attempts",
        &["expected an integer of at least 1, got string \"three\""],
    );
}

#[test]
fn zero_attempts() {
    default(
        "[policy.db.retry]\nmax_attempts = @0\n",
        "policy.db.retry.max_attempts",
        &["must be at least 1, got 0"],
    );
}

#[test]
fn negative_count() {
    default(
        "[policy.api.rate_limit]\nburst = @-5\n",
        "policy.api.rate_limit.burst",
        &["must be at least 1, got -5"],
    );
}

#[test]
fn zero_requests_per_minute() {
    default(
        "[policy.file.rate_limit]\nrequests_per_minute = @0\n",
        "policy.file.rate_limit.requests_per_minute",
        &["must be at least 1, got 0"],
    );
}

#[test]
fn zero_recovery_attempts_in_a_dotted_key() {
    default(
        "policy.db.recovery.max_attempts = @0\n",
        "policy.db.recovery.max_attempts",
        &["must be at least 1, got 0"],
    );
}

#[test]
fn negative_min_per_second() {
    default(
        "[policy.db.retry.budget]\nmin_per_second = @-1\n",
        "policy.db.retry.budget.min_per_second",
        &["must be at least 0, got -1"],
    );
}

#[test]
fn negative_duration() {
    default(
        "[policy.db.retry]\ninitial_delay = @\"-1s\"\n",
        "policy.db.retry.initial_delay",
        &[
            "durations cannot be negative",
            "\"500ms\", \"1s\" or \"2m\"",
        ],
    );
}

#[test]
fn a_duration_past_a_year() {
    default(
        "[policy.db.timeout]\ntotal = @\"300000000000y\"\n",
        "policy.db.timeout.total",
        &["longer than the longest allowed, 365 days"],
    );
}

#[test]
fn unparsable_duration() {
    default(
        "[policy.db.retry]\nmax_delay = @\"soon\"\n",
        "policy.db.retry.max_delay",
        &[
            "invalid duration \"soon\"",
            "expected a duration string such as",
        ],
    );
}

#[test]
fn duration_written_as_a_number() {
    default(
        "[policy.db.timeout]\ntotal = @30\n",
        "policy.db.timeout.total",
        &[
            "expected a duration string such as \"500ms\"",
            "got integer 30",
        ],
    );
}

#[test]
fn zero_timeout() {
    default(
        "[policy.db.timeout]\nattempt = @\"0s\"\n",
        "policy.db.timeout.attempt",
        &["must be greater than zero, got \"0s\""],
    );
}

#[test]
fn multiplier_below_one() {
    default(
        "[policy.db.retry]\nmultiplier = @0.5\n",
        "policy.db.retry.multiplier",
        &["must be a finite number of at least 1.0, got 0.5"],
    );
}

#[test]
fn infinite_multiplier() {
    default(
        "[policy.db]\nretry.multiplier = @inf\n",
        "policy.db.retry.multiplier",
        &["must be a finite number of at least 1.0, got inf"],
    );
}

#[test]
fn bad_jitter() {
    default(
        "[policy.db.retry]\njitter = @\"random\"\n",
        "policy.db.retry.jitter",
        &[
            "unknown jitter `random`",
            "expected one of: none, full, equal, decorrelated",
        ],
    );
}

#[test]
fn misspelt_error_class() {
    default(
        "[policy.db.retry]\nretry_on = [\"timeout\", @\"conection\"]\n",
        "policy.db.retry.retry_on",
        &[
            "unknown error class `conection`, did you mean `connection`?",
            "connection, timeout, transient, throttled, auth, config, invalid_input, data, unknown",
        ],
    );
}

#[test]
fn classes_not_an_array() {
    default(
        "[policy.db.circuit_breaker]\nignore = @\"auth\"\n",
        "policy.db.circuit_breaker.ignore",
        &["expected an array of error classes", "got string \"auth\""],
    );
}

#[test]
fn bad_when_limited() {
    default(
        "[policy.db.rate_limit]\nwhen_limited = @\"drop\"\n",
        "policy.db.rate_limit.when_limited",
        &[
            "unknown when_limited value `drop`",
            "expected one of: wait, reject",
        ],
    );
}

#[test]
fn wrong_type_for_a_flag() {
    default(
        "[policy.db.circuit_breaker]\nenabled = @\"yes\"\n",
        "policy.db.circuit_breaker.enabled",
        &["expected true or false, got string \"yes\""],
    );
}

#[test]
fn budget_ratio_out_of_range() {
    default(
        "[policy.db.retry.budget]\nratio = @2000.0\n",
        "policy.db.retry.budget.ratio",
        &["must be from 0.0 to 1000.0, got 2000.0"],
    );
}

#[test]
fn max_delay_below_initial_delay() {
    default(
        "[policy.db.retry]\ninitial_delay = \"10s\"\nmax_delay = @\"5s\"\n",
        "policy.db.retry.max_delay",
        &[
            "must not be below `retry.initial_delay` (10s, set at",
            "got 5s",
        ],
    );
}

#[test]
fn initial_delay_raised_by_a_profile_above_max_delay() {
    // The profile's edit is the one that broke the rule, so the error points there.
    check(
        &[
            ("default.toml", "[policy.db.retry]\nmax_delay = \"5s\"\n"),
            ("qa.toml", "[policy.db.retry]\ninitial_delay = @\"10s\"\n"),
        ],
        Some("qa"),
        "policy.db.retry.initial_delay",
        &["must not be above `retry.max_delay` (5s, set at", "got 10s"],
    );
}

#[test]
fn attempt_timeout_above_total() {
    default(
        "[policy.db.timeout]\ntotal = \"10s\"\nattempt = @\"20s\"\n",
        "policy.db.timeout.attempt",
        &["must not be above `timeout.total` (10s, set at", "got 20s"],
    );
}

#[test]
fn total_lowered_below_the_default_attempt_timeout() {
    // `api` leaves its timeouts to the schema defaults.
    default(
        "[policy.api.timeout]\ntotal = @\"10s\"\n",
        "policy.api.timeout.total",
        &["must not be below `timeout.attempt` (30s, the default), got 10s"],
    );
}

#[test]
fn total_lowered_below_an_attempt_timeout_set_in_another_file() {
    default(
        "[policy.db.timeout]\ntotal = @\"10s\"\n",
        "policy.db.timeout.total",
        &["must not be below `timeout.attempt` (30s, set at <built-in default.toml>:"],
    );
}

#[test]
fn inherited_value_breaks_a_rule_in_the_child() {
    // The parent's later edit is blamed, and the message names the child that broke.
    default(
        "[policy.fast]\nextends = \"base\"\nretry.initial_delay = \"2s\"\n\n[policy.base]\nretry.max_delay = @\"1s\"\n",
        "policy.base.retry.max_delay",
        &[
            "must not be below `retry.initial_delay` (2s, set at",
            "(inherited by policy `fast`)",
        ],
    );
}

#[test]
fn unknown_breaker_mode() {
    default(
        "[policy.db.circuit_breaker]\nmode = @\"percentage\"\n",
        "policy.db.circuit_breaker.mode",
        &["unknown breaker mode `percentage`", "consecutive, ratio"],
    );
}

#[test]
fn failure_ratio_out_of_range() {
    default(
        "[policy.db.circuit_breaker]\nfailure_ratio = @1.5\n",
        "policy.db.circuit_breaker.failure_ratio",
        &["must be above 0.0 and at most 1.0", "got 1.5"],
    );
    default(
        "[policy.db.circuit_breaker]\nfailure_ratio = @0\n",
        "policy.db.circuit_breaker.failure_ratio",
        &["must be above 0.0 and at most 1.0", "got 0"],
    );
}
