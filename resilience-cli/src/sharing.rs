//! What is shared across processes and where: the `[store]` table as `policy show`,
//! `policy explain` and `debug` print it.
//!
//! The store's URL never holds a password (the loader refuses one), so it is printed as
//! written; the password's source (a variable or a file) is named, never its value.

use resilience_core::PolicySet;
use resilience_core::policy::BreakerMode;
use serde_json::{Value, json};

/// One line per policy: shared through the store, or local to each process.
pub fn summary(set: &PolicySet) -> String {
    let Some(store) = set.store() else {
        return "# shared store: none; breakers, rate limits and health are local to each process\n"
            .to_owned();
    };
    let at = store
        .origin
        .as_deref()
        .map_or(String::new(), |o| format!(" (set at {o})"));
    let mut out = format!("# shared store: {store}{at}\n");
    let (shared, local): (Vec<&str>, Vec<&str>) = set.names().partition(|n| set.is_shared(n));
    out.push_str(&format!(
        "# shared across processes (rate limit, breaker, health): {}\n",
        list(&shared)
    ));
    if !local.is_empty() {
        out.push_str(&format!(
            "# local to each process (shared = false): {}\n",
            list(&local)
        ));
    }
    out
}

/// The sentence `policy explain` ends with for `name`.
pub fn for_policy(set: &PolicySet, name: &str) -> String {
    match set.store() {
        None => "Shared: no; no [store] is configured, so this process alone counts its breaker, bucket and health.\n".to_owned(),
        Some(store) if set.is_shared(name) => {
            let ratio = set
                .get(name)
                .is_some_and(|p| p.circuit_breaker.mode == BreakerMode::Ratio);
            let breaker = if ratio {
                "the breaker stays local to each process (mode = \"ratio\")"
            } else {
                "the breaker's state is the fleet's"
            };
            format!(
                "Shared: yes, through {store}; the rate limit is one bucket for every process (at most burst + rate × t in all), {breaker}, and health is counted per minute in the store.\n"
            )
        }
        Some(_) => format!(
            "Shared: no; `shared = false` keeps `{name}` local to each process although a [store] is configured.\n"
        ),
    }
}

/// The store and the shared policies as JSON.
pub fn json(set: &PolicySet) -> Value {
    match set.store() {
        None => Value::Null,
        Some(store) => json!({
            "backend": store.backend,
            "url": store.url,
            "prefix": store.prefix,
            "on_unavailable": store.on_unavailable,
            "password": store.password,
            "timeout": humantime::format_duration(store.timeout).to_string(),
            "shared": set.names().filter(|n| set.is_shared(n)).collect::<Vec<_>>(),
        }),
    }
}

fn list(names: &[&str]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}
