//! `<NAME>_RESILIENCE_CONFIG`: one policy's settings from a file an environment variable
//! names, merged last.
//!
//! The system this framework grew from calls its presets `DB_RESILIENCE_CONFIG`,
//! `API_RESILIENCE_CONFIG` and `FILE_RESILIENCE_CONFIG`, and people coming from it set
//! those. Here the variable for a policy is its name upper-cased, `-` written `_`, plus
//! `_RESILIENCE_CONFIG`; its value is the path of a TOML file holding that one policy's
//! tables (`[retry]`, `[circuit_breaker]`, ..., and `extends`), merged key by key over the
//! profile. A variable for a policy no file defines is an error: a setting that silently
//! does nothing is worse than none.

use std::path::PathBuf;

/// The suffix every such variable ends with.
pub(crate) const SUFFIX: &str = "_RESILIENCE_CONFIG";

/// The variable naming the override file of `policy` (`db` → `DB_RESILIENCE_CONFIG`).
pub fn variable(policy: &str) -> String {
    format!("{}{SUFFIX}", policy.to_ascii_uppercase().replace('-', "_"))
}

/// Every `*_RESILIENCE_CONFIG` variable set (non-empty), sorted: the variable and the
/// file it names.
pub(crate) fn set_variables() -> Vec<(String, PathBuf)> {
    let mut vars: Vec<(String, PathBuf)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v)))
        .filter(|(k, v)| k.ends_with(SUFFIX) && k.len() > SUFFIX.len() && !v.is_empty())
        .map(|(k, v)| (k, PathBuf::from(v)))
        .collect();
    vars.sort();
    vars
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_are_the_upper_cased_name() {
        assert_eq!(variable("db"), "DB_RESILIENCE_CONFIG");
        assert_eq!(variable("api"), "API_RESILIENCE_CONFIG");
        assert_eq!(variable("orders-v2"), "ORDERS_V2_RESILIENCE_CONFIG");
    }
}
