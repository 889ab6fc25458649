//! Signed HTTP requests between agentd and other systems: the Standard Webhooks scheme
//! (<https://www.standardwebhooks.com>) that outbound webhooks sign with and trigger URLs
//! accept, and GitHub's `X-Hub-Signature-256` that trigger URLs accept too. Comparisons
//! are constant-time (`Mac::verify_slice`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The prefix of a Standard Webhooks signing secret; the rest is the key in base64.
pub const SECRET_PREFIX: &str = "whsec_";
/// How far a Standard Webhooks timestamp may be from now, either way (the spec's 5 min).
pub const TIMESTAMP_TOLERANCE_S: i64 = 5 * 60;
/// Bytes of key in a secret this server generates (the spec asks for 24 to 64).
const SECRET_KEY_BYTES: usize = 32;

/// Why a signed request was not accepted. Deliberately coarse: a caller learns that the
/// signature failed, not which part of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature header is missing")]
    Missing,
    #[error("the signature header is malformed")]
    Malformed,
    #[error("the timestamp is outside the tolerance of {TIMESTAMP_TOLERANCE_S} s")]
    Stale,
    #[error("no signature matches")]
    Mismatch,
}

/// A new Standard Webhooks secret, `whsec_<base64 of 32 random bytes>`.
pub fn new_standard_secret() -> String {
    let key: [u8; SECRET_KEY_BYTES] = rand::random();
    format!("{SECRET_PREFIX}{}", BASE64.encode(key))
}

/// The HMAC key a Standard Webhooks secret stands for: the base64 after `whsec_`.
fn standard_key(secret: &str) -> Result<Vec<u8>, SignatureError> {
    let encoded = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    BASE64.decode(encoded).map_err(|_| SignatureError::Malformed)
}

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length.
    HmacSha256::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC accepts every key length"))
}

fn standard_mac(key: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
    let mut mac = mac(key);
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `webhook-signature` header value for a message: `v1,<base64 HMAC-SHA256 of
/// "{msg_id}.{timestamp}.{body}">`.
pub fn standard_sign(secret: &str, msg_id: &str, timestamp: i64, body: &[u8]) -> Result<String, SignatureError> {
    let key = standard_key(secret)?;
    let tag = standard_mac(&key, msg_id, timestamp, body).finalize().into_bytes();
    Ok(format!("v1,{}", BASE64.encode(tag)))
}

/// The three Standard Webhooks headers of a request, as received.
#[derive(Debug, Clone, Copy)]
pub struct StandardHeaders<'a> {
    pub id: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// Checks a Standard Webhooks request: the timestamp within the tolerance of `now` (Unix
/// seconds) and one of the space-separated `v1,` signatures matching under `secret`.
pub fn standard_verify(
    secret: &str,
    headers: StandardHeaders<'_>,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let (Some(id), Some(timestamp), Some(signatures)) = (headers.id, headers.timestamp, headers.signature) else {
        return Err(SignatureError::Missing);
    };
    let timestamp: i64 = timestamp.trim().parse().map_err(|_| SignatureError::Malformed)?;
    if (now - timestamp).abs() > TIMESTAMP_TOLERANCE_S {
        return Err(SignatureError::Stale);
    }
    let key = standard_key(secret)?;
    let expected = standard_mac(&key, id, timestamp, body);
    let mut any = false;
    for candidate in signatures.split(' ').filter(|s| !s.is_empty()) {
        let Some(encoded) = candidate.strip_prefix("v1,") else { continue };
        any = true;
        if let Ok(tag) = BASE64.decode(encoded)
            && expected.clone().verify_slice(&tag).is_ok()
        {
            return Ok(());
        }
    }
    Err(if any { SignatureError::Mismatch } else { SignatureError::Malformed })
}

/// Checks GitHub's `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`, keyed by
/// the secret's text as it is.
pub fn github_verify(secret: &str, header: Option<&str>, body: &[u8]) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let hex_tag = header.trim().strip_prefix("sha256=").ok_or(SignatureError::Malformed)?;
    let tag = hex::decode(hex_tag).map_err(|_| SignatureError::Malformed)?;
    let mut mac = mac(secret.as_bytes());
    mac.update(body);
    mac.verify_slice(&tag).map_err(|_| SignatureError::Mismatch)
}

/// GitHub's header for `body` under `secret` (for tests and for documentation examples).
pub fn github_sign(secret: &str, body: &[u8]) -> String {
    let mut mac = mac(secret.as_bytes());
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example of the Standard Webhooks specification's reference libraries.
    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TS: i64 = 1614265330;
    const SPEC_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SPEC_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn headers<'a>(id: &'a str, ts: &'a str, sig: &'a str) -> StandardHeaders<'a> {
        StandardHeaders { id: Some(id), timestamp: Some(ts), signature: Some(sig) }
    }

    #[test]
    fn signs_as_the_specification_example() {
        assert_eq!(standard_sign(SPEC_SECRET, SPEC_ID, SPEC_TS, SPEC_BODY).unwrap(), SPEC_SIGNATURE);
    }

    #[test]
    fn verifies_one_of_several_signatures_within_the_tolerance() {
        let ts = SPEC_TS.to_string();
        let several = format!("v1,bm90IGl0 {SPEC_SIGNATURE}");
        assert_eq!(standard_verify(SPEC_SECRET, headers(SPEC_ID, &ts, &several), SPEC_BODY, SPEC_TS + 10), Ok(()));
        assert_eq!(
            standard_verify(SPEC_SECRET, headers(SPEC_ID, &ts, SPEC_SIGNATURE), SPEC_BODY, SPEC_TS + 301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            standard_verify(SPEC_SECRET, headers(SPEC_ID, &ts, SPEC_SIGNATURE), b"{}", SPEC_TS),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            standard_verify(SPEC_SECRET, headers(SPEC_ID, &ts, "v2,abc"), SPEC_BODY, SPEC_TS),
            Err(SignatureError::Malformed)
        );
        let missing = StandardHeaders { id: Some(SPEC_ID), timestamp: None, signature: Some(SPEC_SIGNATURE) };
        assert_eq!(standard_verify(SPEC_SECRET, missing, SPEC_BODY, SPEC_TS), Err(SignatureError::Missing));
    }

    #[test]
    fn new_secrets_sign_and_verify() {
        let secret = new_standard_secret();
        assert!(secret.starts_with(SECRET_PREFIX));
        let sig = standard_sign(&secret, "msg_1", 100, b"x").unwrap();
        assert_eq!(standard_verify(&secret, headers("msg_1", "100", &sig), b"x", 100), Ok(()));
    }

    #[test]
    fn github_signatures() {
        // GitHub's documented example: secret "It's a Secret to Everybody", body "Hello, World!".
        let secret = "It's a Secret to Everybody";
        let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(github_sign(secret, b"Hello, World!"), sig);
        assert_eq!(github_verify(secret, Some(sig), b"Hello, World!"), Ok(()));
        assert_eq!(github_verify(secret, Some(sig), b"Hello, World?"), Err(SignatureError::Mismatch));
        assert_eq!(github_verify(secret, Some("sha1=00"), b""), Err(SignatureError::Malformed));
        assert_eq!(github_verify(secret, None, b""), Err(SignatureError::Missing));
    }
}
