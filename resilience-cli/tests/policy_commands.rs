//! `resilient policy check | show | explain`, and `--help` on every command.

mod common;

use common::{Scratch, run_in, text};

#[test]
fn help_works_everywhere() {
    let dir = Scratch::new("help");
    for args in [
        &["--help"][..],
        &["sync", "--help"],
        &["health", "--help"],
        &["metrics", "--help"],
        &["debug", "--help"],
        &["demo", "--help"],
        &["policy", "--help"],
        &["policy", "check", "--help"],
        &["policy", "show", "--help"],
        &["policy", "explain", "--help"],
    ] {
        let out = run_in(dir.path(), args);
        let (stdout, _) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(stdout.contains("Usage:"), "{args:?}: {stdout}");
    }
    let out = run_in(dir.path(), &["sync", "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2), "unknown flags are usage errors");
}

#[test]
fn check_accepts_the_builtin_and_shipped_profiles() {
    let dir = Scratch::new("check");
    for profile in ["dev", "prod", "demo"] {
        let out = run_in(
            dir.path(),
            &["policy", "check", "--profile", profile, "--json"],
        );
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(v["profile"], profile);
        assert!(v["policies"].as_array().unwrap().iter().any(|p| p == "db"));
    }
}

#[test]
fn malformed_policy_file_names_file_line_and_column() {
    let dir = Scratch::new("badpolicy");
    std::fs::write(
        dir.path().join("default.toml"),
        "[policy.db.retry]\nmax_attempts = 3\nmax_atempts = 4\n",
    )
    .unwrap();
    let out = run_in(dir.path(), &["policy", "check", "--dir", "."]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("default.toml:3:1"), "{stderr}");
    assert!(stderr.contains("max_atempts"), "{stderr}");

    std::fs::write(dir.path().join("default.toml"), "[policy.db.retry\n").unwrap();
    let out = run_in(dir.path(), &["policy", "show", "--dir", "."]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("default.toml:1:"), "{stderr}");
    assert!(stdout.is_empty(), "nothing is shown from invalid files");
}

#[test]
fn unknown_profile_lists_the_valid_ones() {
    let dir = Scratch::new("profile");
    let out = run_in(dir.path(), &["policy", "check", "--profile", "staging"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("unknown profile `staging`"), "{stderr}");
    assert!(stderr.contains("demo, dev, prod"), "{stderr}");
}

#[test]
fn show_prints_policies_that_load_back_identically() {
    let dir = Scratch::new("show");
    let out = run_in(dir.path(), &["policy", "show", "--profile", "prod"]);
    let (shown, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(shown.contains("[policy.db.retry]"), "{shown}");
    std::fs::write(dir.path().join("default.toml"), &shown).unwrap();
    let again = run_in(dir.path(), &["policy", "show", "--dir", "."]);
    let (reshown, stderr) = text(&again);
    assert_eq!(again.status.code(), Some(0), "{stderr}");
    // The values are the same; where they come from is now ./default.toml.
    let body = |s: &str| {
        s.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split("  # ").next().unwrap())
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        body(&reshown),
        body(&shown),
        "show output is a valid policy file for the same set"
    );
    assert!(
        shown.contains("max_attempts = 3  # <built-in default.toml>:"),
        "{shown}"
    );
    assert!(
        reshown.contains("max_attempts = 3  # ./default.toml:"),
        "{reshown}"
    );
}

#[test]
fn show_says_where_each_value_came_from_including_the_seed_variables() {
    let dir = Scratch::new("showorigin");
    std::fs::write(dir.path().join("db.toml"), "[retry]\nmax_attempts = 6\n").unwrap();
    let out = common::resilient()
        .current_dir(dir.path())
        .env("DB_RESILIENCE_CONFIG", "db.toml")
        .args(["policy", "show", "--profile", "prod"])
        .output()
        .unwrap();
    let (shown, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let db_retry = shown
        .split("[policy.db.retry]")
        .nth(1)
        .unwrap_or_else(|| panic!("{shown}"));
    assert!(
        db_retry.contains("max_attempts = 6  # db.toml:2:16 (DB_RESILIENCE_CONFIG)"),
        "{shown}"
    );
    let out = common::resilient()
        .current_dir(dir.path())
        .env("DB_RESILIENCE_CONFIG", "db.toml")
        .args(["policy", "show", "--json"])
        .output()
        .unwrap();
    let (shown, _) = text(&out);
    let v: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(v["policy"]["db"]["retry"]["max_attempts"], 6);
    assert_eq!(
        v["origin"]["db"]["retry.max_attempts"],
        "db.toml:2:16 (DB_RESILIENCE_CONFIG)"
    );
}

#[test]
fn explain_gives_delays_worst_case_and_rate_arithmetic() {
    let dir = Scratch::new("explain");
    let out = run_in(dir.path(), &["policy", "explain", "db", "--json"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["max_attempts"], 3);
    assert_eq!(v["delays"][1]["max_secs"], 2.0);
    assert_eq!(v["worst_case_call_secs"], 120.0);
    assert_eq!(v["sustained_per_second"], 5.0);
    assert_eq!(v["refill_secs"], 10.0);

    let out = run_in(dir.path(), &["policy", "explain", "db"]);
    let (stdout, _) = text(&out);
    assert!(
        stdout.contains("before retry 1 (attempt 2): base 1s, with jitter between 0s and 1s"),
        "{stdout}"
    );
    assert!(stdout.contains("burst 50"), "{stdout}");

    let out = run_in(dir.path(), &["policy", "explain", "dbx"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("unknown policy `dbx`, expected one of: api, db, file"),
        "{stderr}"
    );
}

#[test]
fn check_of_a_folder_checks_every_profile_in_it() {
    let dir = Scratch::new("checkfolder");
    std::fs::write(
        dir.path().join("default.toml"),
        "[policy.db.retry]\nmax_attempts = 4\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("staging.toml"),
        "[policy.db.timeout]\nattempt = \"5m\"\n",
    )
    .unwrap();
    let out = run_in(dir.path(), &["policy", "check", "--dir", "."]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("staging.toml:2:11"), "{stderr}");
    assert!(
        stderr.contains("must not be above `timeout.total`"),
        "{stderr}"
    );

    std::fs::write(
        dir.path().join("staging.toml"),
        "[policy.db.timeout]\nattempt = \"50s\"\n",
    )
    .unwrap();
    let out = run_in(dir.path(), &["policy", "check", "--dir", "."]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    for profile in ["demo", "dev", "prod", "staging"] {
        assert!(
            stdout.contains(&format!("ok: profile {profile}: 3 policies")),
            "{profile}: {stdout}"
        );
    }
    let out = run_in(dir.path(), &["policy", "check", "--dir", ".", "--json"]);
    let (stdout, _) = text(&out);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        v["profiles_checked"].as_array().unwrap().len(),
        4,
        "{stdout}"
    );
}

#[test]
fn show_and_explain_say_what_is_shared_and_where() {
    let dir = Scratch::new("store");
    std::fs::write(
        dir.path().join("fleet.toml"),
        "[store]\nbackend = \"redis\"\nurl = \"redis://127.0.0.1:6379\"\nprefix = \"team-a\"\npassword_env = \"FLEET_PW\"\n\n[policy.file]\nshared = false\n",
    )
    .unwrap();
    let out = run_in(
        dir.path(),
        &["policy", "show", "--dir", ".", "--profile", "fleet"],
    );
    let (shown, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        shown.contains("# shared store: redis at redis://127.0.0.1:6379, prefix `team-a`"),
        "{shown}"
    );
    assert!(shown.contains("password from $FLEET_PW"), "{shown}");
    assert!(shown.contains("fleet.toml:1:2"), "{shown}");
    assert!(
        shown.contains("(rate limit, breaker, health): api, db\n"),
        "{shown}"
    );
    assert!(shown.contains("(shared = false): file\n"), "{shown}");

    let out = run_in(
        dir.path(),
        &[
            "policy",
            "explain",
            "file",
            "--dir",
            ".",
            "--profile",
            "fleet",
        ],
    );
    let (explained, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        explained.contains("Shared: no; `shared = false`"),
        "{explained}"
    );
    let out = run_in(
        dir.path(),
        &[
            "policy",
            "explain",
            "db",
            "--dir",
            ".",
            "--profile",
            "fleet",
            "--json",
        ],
    );
    let (json, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["shared"], true);
    assert_eq!(v["store"]["prefix"], "team-a");

    let out = run_in(dir.path(), &["policy", "show", "--profile", "prod"]);
    let (local, _) = text(&out);
    assert!(local.contains("# shared store: none"), "{local}");
}
