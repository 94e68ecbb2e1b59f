//! Layering: a profile is merged over the defaults key by key.
//!
//! A profile that sets `policy.db.retry.max_attempts` changes that one key and keeps every
//! other key of `db` from the layers below, so profiles stay short and only say what
//! differs per environment. Each value keeps its origin, so later errors still point into
//! the file that set it.

use crate::raw::RawFile;

/// Merges `upper` over `base`, key by key.
pub(crate) fn merge(base: &mut RawFile, upper: RawFile) {
    for (name, policy) in upper {
        let entry = base.entry(name).or_default();
        if policy.extends.is_some() {
            entry.extends = policy.extends;
        }
        entry.values.extend(policy.values);
    }
}
