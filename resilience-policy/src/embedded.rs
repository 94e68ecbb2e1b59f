//! The policy files compiled into the crate, so zero configuration works and the shipped
//! profiles can be selected without a policy folder.

/// `policies/default.toml`: the presets `db`, `api` and `file`.
pub(crate) const DEFAULT: &str = include_str!("../../policies/default.toml");

/// The shipped profiles, by name.
pub(crate) const PROFILES: [(&str, &str); 3] = [
    ("demo", include_str!("../../policies/demo.toml")),
    ("dev", include_str!("../../policies/dev.toml")),
    ("prod", include_str!("../../policies/prod.toml")),
];

/// The embedded profile called `name`.
pub(crate) fn profile(name: &str) -> Option<&'static str> {
    PROFILES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
}
