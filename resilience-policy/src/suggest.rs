//! "Did you mean" for misspelt keys and names.

/// The candidate closest to `input`, if it is close enough to be a likely typo.
pub(crate) fn closest<'a>(input: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let len = input.chars().count();
    let limit = (len / 3).max(2).min(len.saturating_sub(1));
    candidates
        .iter()
        .map(|c| (distance(input, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// "unknown X `input`, did you mean `y`? expected one of: a, b, c"
pub(crate) fn unknown(what: &str, input: &str, candidates: &[&str]) -> String {
    let hint = closest(input, candidates)
        .map(|c| format!(", did you mean `{c}`?"))
        .unwrap_or_else(|| ",".to_owned());
    format!(
        "unknown {what} `{input}`{hint} expected one of: {}",
        candidates.join(", ")
    )
}

/// Levenshtein distance in characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (prev + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_near_misses_only() {
        let keys = ["max_attempts", "initial_delay", "multiplier"];
        assert_eq!(closest("max_attempt", &keys), Some("max_attempts"));
        assert_eq!(closest("multipler", &keys), Some("multiplier"));
        assert_eq!(closest("colour", &keys), None);
        assert_eq!(closest("retyr", &["retry", "timeout"]), Some("retry"));
        assert_eq!(closest("x", &["a"]), None);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("kitten", "sitting"), 3);
    }
}
