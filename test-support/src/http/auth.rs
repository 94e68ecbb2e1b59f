//! The server's credential check: one secret, accepted in the forms APIs use.
//!
//! `Authorization: Bearer <secret>`, `Authorization: Basic base64(<user>:<secret>)` for
//! any user, an `X-Api-Key: <secret>` header or an `api_key=<secret>` query parameter.
//! With no secret set, everything is accepted.

use axum::http::HeaderMap;

/// Whether the request carries `secret` in one of the accepted forms.
pub(crate) fn accepts(secret: &str, headers: &HeaderMap, query: &[(String, String)]) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(auth) = header("authorization") {
        if auth.strip_prefix("Bearer ") == Some(secret) {
            return true;
        }
        if let Some(encoded) = auth.strip_prefix("Basic ")
            && let Some(decoded) = decode_base64(encoded.trim())
            && let Some((_, password)) = decoded.split_once(':')
            && password == secret
        {
            return true;
        }
    }
    header("x-api-key") == Some(secret) || query.iter().any(|(k, v)| k == "api_key" && v == secret)
}

/// Standard base64 with padding, as `Basic` credentials are written; `None` if invalid.
fn decode_base64(text: &str) -> Option<String> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut count = 0u32;
    let mut out = Vec::new();
    for byte in text.trim_end_matches('=').bytes() {
        let value = ALPHABET.iter().position(|&c| c == byte)? as u32;
        bits = (bits << 6) | value;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_decode() {
        // "user:s3cret" and "a:b"
        assert_eq!(
            decode_base64("dXNlcjpzM2NyZXQ=").as_deref(),
            Some("user:s3cret")
        );
        assert_eq!(decode_base64("YTpi").as_deref(), Some("a:b"));
        assert_eq!(decode_base64("not base64!"), None);
    }
}
