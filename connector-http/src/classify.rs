//! Declarative classification: which answers are failures, and of which class.
//!
//! APIs disagree on how they say "slow down" or "try again": a 429, a 503, a 200 whose
//! body says `"error": "rate_limited"`. The pipeline file lists rules, tried in order;
//! the first whose conditions all hold decides. When none does, the defaults apply:
//!
//! | answer | class |
//! |---|---|
//! | 2xx | success |
//! | 429 | throttled |
//! | 502, 503, 504 | transient |
//! | 408 | timeout |
//! | 401, 403 | auth |
//! | other 4xx | invalid_input |
//! | anything else | unknown (not retried) |
//!
//! Transport failures are not answers and are classified by kind: connection errors
//! (refused, reset, cut short) are `connection`, timeouts `timeout`.

use reqwest::header::HeaderMap;
use resilience_core::ErrorClass;
use serde::Deserialize;

/// What a matching rule makes of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The answer is a page.
    Success,
    /// A failure worth retrying.
    Transient,
    /// The server asks to slow down.
    Throttled,
    /// Credentials refused.
    Auth,
    /// The request cannot work as configured.
    Config,
    /// The request is wrong (unknown path, bad parameter).
    InvalidInput,
    /// The data is wrong.
    Data,
    /// The server gave up waiting.
    Timeout,
}

impl Action {
    /// The error class, or `None` for success.
    pub fn class(self) -> Option<ErrorClass> {
        Some(match self {
            Action::Success => return None,
            Action::Transient => ErrorClass::Transient,
            Action::Throttled => ErrorClass::Throttled,
            Action::Auth => ErrorClass::Auth,
            Action::Config => ErrorClass::Config,
            Action::InvalidInput => ErrorClass::InvalidInput,
            Action::Data => ErrorClass::Data,
            Action::Timeout => ErrorClass::Timeout,
        })
    }
}

/// One rule: conditions that must all hold, and the action when they do. A rule with
/// no condition is refused when the settings are checked.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Status codes, any of which matches.
    #[serde(default)]
    pub status: Vec<u16>,
    /// A header that must be present (name, case-insensitive).
    pub header: Option<String>,
    /// A text the body must contain.
    pub body_contains: Option<String>,
    /// A JSON pointer into the body (`/error/code`) that must exist ...
    pub body_field: Option<String>,
    /// ... and, when given, hold this value (compared as text).
    pub body_value: Option<String>,
    /// What the answer is then.
    pub action: Action,
}

impl Rule {
    /// Whether the rule has at least one condition.
    pub fn has_condition(&self) -> bool {
        !self.status.is_empty()
            || self.header.is_some()
            || self.body_contains.is_some()
            || self.body_field.is_some()
    }

    fn matches(&self, status: u16, headers: &HeaderMap, body: &[u8]) -> bool {
        if !self.status.is_empty() && !self.status.contains(&status) {
            return false;
        }
        if let Some(name) = &self.header
            && !headers.contains_key(name.as_str())
        {
            return false;
        }
        if let Some(text) = &self.body_contains
            && !String::from_utf8_lossy(body).contains(text.as_str())
        {
            return false;
        }
        if let Some(pointer) = &self.body_field {
            let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) else {
                return false;
            };
            let Some(found) = json.pointer(pointer) else {
                return false;
            };
            if let Some(expected) = &self.body_value {
                let text = match found {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                if &text != expected {
                    return false;
                }
            }
        }
        true
    }
}

/// The class of an answer: the first matching rule's, else the default. `None` is
/// success.
pub fn classify(
    rules: &[Rule],
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<ErrorClass> {
    if let Some(rule) = rules.iter().find(|r| r.matches(status, headers, body)) {
        return rule.action.class();
    }
    default_class(status)
}

/// The default class of a status code (`None`: success).
pub fn default_class(status: u16) -> Option<ErrorClass> {
    match status {
        200..=299 => None,
        429 => Some(ErrorClass::Throttled),
        502..=504 => Some(ErrorClass::Transient),
        408 => Some(ErrorClass::Timeout),
        401 | 403 => Some(ErrorClass::Auth),
        400..=499 => Some(ErrorClass::InvalidInput),
        _ => Some(ErrorClass::Unknown),
    }
}

/// The class of a transport failure.
pub fn transport_class(error: &reqwest::Error) -> ErrorClass {
    if error.is_timeout() {
        ErrorClass::Timeout
    } else if error.is_builder() {
        ErrorClass::Config
    } else {
        ErrorClass::Connection
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(toml_text: &str) -> Rule {
        serde_json::from_value(serde_json::from_str(toml_text).unwrap()).unwrap()
    }

    #[test]
    fn defaults_follow_the_status() {
        let h = HeaderMap::new();
        let class = |s| classify(&[], s, &h, b"");
        assert_eq!(class(200), None);
        assert_eq!(class(429), Some(ErrorClass::Throttled));
        assert_eq!(class(503), Some(ErrorClass::Transient));
        assert_eq!(class(408), Some(ErrorClass::Timeout));
        assert_eq!(class(401), Some(ErrorClass::Auth));
        assert_eq!(class(403), Some(ErrorClass::Auth));
        assert_eq!(class(404), Some(ErrorClass::InvalidInput));
        assert_eq!(class(500), Some(ErrorClass::Unknown));
    }

    #[test]
    fn the_first_matching_rule_decides() {
        let rules = [
            rule(
                r#"{"status": [200], "body_field": "/error/code", "body_value": "rate_limited", "action": "throttled"}"#,
            ),
            rule(r#"{"status": [500], "body_contains": "try again", "action": "transient"}"#),
            rule(r#"{"header": "x-maintenance", "action": "transient"}"#),
            rule(r#"{"status": [404], "action": "success"}"#),
        ];
        let h = HeaderMap::new();
        let limited = br#"{"error": {"code": "rate_limited"}}"#;
        assert_eq!(
            classify(&rules, 200, &h, limited),
            Some(ErrorClass::Throttled)
        );
        assert_eq!(classify(&rules, 200, &h, br#"{"data": []}"#), None);
        assert_eq!(
            classify(&rules, 500, &h, b"please try again"),
            Some(ErrorClass::Transient)
        );
        assert_eq!(
            classify(&rules, 500, &h, b"boom"),
            Some(ErrorClass::Unknown)
        );
        let mut maintenance = HeaderMap::new();
        maintenance.insert("x-maintenance", "1".parse().unwrap());
        assert_eq!(
            classify(&rules, 400, &maintenance, b""),
            Some(ErrorClass::Transient)
        );
        assert_eq!(classify(&rules, 404, &h, b""), None);
        assert!(rules.iter().all(Rule::has_condition));
        assert!(!rule(r#"{"action": "data"}"#).has_condition());
    }
}
