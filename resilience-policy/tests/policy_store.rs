//! The `[store]` table and `shared = false`: without a store nothing is shared; with one
//! every policy is shared unless it opts out; bad values name file, line, key and what
//! would be valid; a password never comes from the URL and never shows in an error.

mod common;

use std::time::Duration;

use common::{TempDir, check};
use resilience_policy::{OnUnavailable, PasswordSource, PolicySet, StoreBackend};

#[test]
fn without_a_store_nothing_is_shared() {
    let builtin = PolicySet::builtin();
    assert!(builtin.store().is_none());
    assert!(!builtin.is_shared("db"));
}

#[test]
fn a_profile_names_the_store_and_a_policy_opts_out() {
    let dir = TempDir::new("store");
    dir.write(
        "fleet.toml",
        r#"
[store]
backend = "redis"
url = "redis://127.0.0.1:6379/0"
prefix = "team-a"
on_unavailable = "fail_closed"
password_env = "FLEET_REDIS_PASSWORD"
timeout = "50ms"

[policy.file]
shared = false
"#,
    );
    let set = dir.load(Some("fleet")).unwrap();
    let store = set.store().expect("the profile names a store");
    assert_eq!(store.backend, StoreBackend::Redis);
    assert_eq!(store.url, "redis://127.0.0.1:6379/0");
    assert_eq!(store.prefix, "team-a");
    assert_eq!(store.on_unavailable, OnUnavailable::FailClosed);
    assert_eq!(
        store.password,
        Some(PasswordSource::Env("FLEET_REDIS_PASSWORD".into()))
    );
    assert_eq!(store.timeout, Duration::from_millis(50));
    assert!(store.origin.as_deref().unwrap().ends_with("fleet.toml:2:2"));
    assert!(set.is_shared("db") && set.is_shared("api"));
    assert!(!set.is_shared("file"));
    assert!(
        set.origin("file", "shared")
            .unwrap()
            .contains("fleet.toml:11")
    );
}

#[test]
fn layers_merge_the_store_key_by_key_and_shared_is_inherited() {
    let dir = TempDir::new("store-layers");
    dir.write(
        "default.toml",
        "[store]\nbackend = \"redis\"\nurl = \"redis://127.0.0.1:6379\"\nprefix = \"base\"\n\n[policy.local]\nshared = false\n[policy.child]\nextends = \"local\"\n",
    );
    dir.write("prod.toml", "[store]\nurl = \"redis://10.0.0.5:6379\"\n");
    let set = dir.load(Some("prod")).unwrap();
    let store = set.store().unwrap();
    assert_eq!(store.url, "redis://10.0.0.5:6379");
    assert_eq!(store.prefix, "base");
    assert_eq!(store.on_unavailable, OnUnavailable::Local);
    assert_eq!(store.timeout, Duration::from_millis(100));
    assert!(!set.is_shared("local") && !set.is_shared("child"));
    assert!(set.is_shared("db"));
}

#[test]
fn bad_store_values_name_the_file_line_and_what_is_valid() {
    check(
        &[(
            "p.toml",
            "[store]\nbackend = @\"memcached\"\nurl = \"redis://h\"\n",
        )],
        Some("p"),
        "store.backend",
        &["unknown backend \"memcached\", expected one of: \"redis\""],
    );
    check(
        &[(
            "p.toml",
            "[store]\nbackend = \"redis\"\nurl = \"redis://h\"\non_unavailable = @\"wait\"\n",
        )],
        Some("p"),
        "store.on_unavailable",
        &["expected one of: \"local\", \"fail_closed\""],
    );
    check(
        &[(
            "p.toml",
            "[store]\nbackend = \"redis\"\nurl = @\"http://h\"\n",
        )],
        Some("p"),
        "store.url",
        &["expected a URL starting with redis://"],
    );
    check(
        &[(
            "p.toml",
            "[store]\nbackend = \"redis\"\nurl = \"redis://h\"\n@prefx = \"a\"\n",
        )],
        Some("p"),
        "store.prefx",
        &["unknown key `prefx`", "prefix"],
    );
    check(
        &[(
            "p.toml",
            "[store]\nbackend = \"redis\"\nurl = \"redis://h\"\ntimeout = @\"30s\"\n",
        )],
        Some("p"),
        "store.timeout",
        &["from 1ms to 5s"],
    );
    check(
        &[("p.toml", "[@store]\nbackend = \"redis\"\n")],
        Some("p"),
        "store",
        &["missing `url`"],
    );
    check(
        &[("p.toml", "[policy.db]\nshared = @\"no\"\n")],
        Some("p"),
        "policy.db.shared",
        &["expected true or false"],
    );
}

#[test]
fn a_password_in_the_url_is_refused_and_not_echoed() {
    let dir = TempDir::new("store-secret");
    dir.write(
        "p.toml",
        "[store]\nbackend = \"redis\"\nurl = \"redis://app:s3cr3t-value@127.0.0.1:6379\"\n",
    );
    let err = dir.load(Some("p")).unwrap_err();
    let shown = err.to_string();
    assert!(shown.contains("p.toml:3:7"), "{shown}");
    assert!(shown.contains("password_env"), "{shown}");
    assert!(!shown.contains("s3cr3t"), "{shown}");
    assert!(!format!("{err:?}").contains("s3cr3t"));
}

#[test]
fn the_password_is_read_from_its_source_only_when_asked() {
    let dir = TempDir::new("store-pwfile");
    let secret = dir.write("redis.pass", "from-file\n");
    dir.write(
        "p.toml",
        &format!(
            "[store]\nbackend = \"redis\"\nurl = \"redis://127.0.0.1\"\npassword_file = \"{}\"\n",
            secret.display()
        ),
    );
    let set = dir.load(Some("p")).unwrap();
    let store = set.store().unwrap();
    assert_eq!(store.read_password().unwrap().as_deref(), Some("from-file"));
    assert!(!format!("{store:?} {store}").contains("from-file"));
}
