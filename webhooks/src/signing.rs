//! The signature of a delivery: HMAC-SHA256, keyed by the endpoint's secret, over
//! `<timestamp>.<body>`, sent as `Webhook-Signature: t=<timestamp>,v1=<hex digest>`
//! (the timestamp is Unix seconds, also in `Webhook-Timestamp`). A receiver recomputes
//! the digest over the raw body it received, compares in constant time, and refuses a
//! timestamp far from its clock, which stops a captured delivery being replayed later.
//! Each endpoint has one secret, so the header carries one `v1=`. Rotating it
//! ([`crate::Webhooks::rotate_secret`]) replaces it at once, with no overlap: attempts
//! claimed from then on are signed with the new secret only, while an attempt claimed
//! just before (in flight for at most `WEBHOOK_TIMEOUT_MS`) still carries the old one,
//! so a receiver switching secrets should accept either for that long. [`verify`]
//! takes a header with several `v1=` (a format other senders use for overlapping
//! secrets); this one never sends more than one.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// `Webhook-Signature`.
pub const SIGNATURE_HEADER: &str = "webhook-signature";
/// `Webhook-Timestamp`: when the attempt was signed, in Unix seconds.
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// `Webhook-Id`: the event's id, the same on every attempt and replay, for receivers
/// to recognise a delivery they already handled.
pub const ID_HEADER: &str = "webhook-id";
/// `Webhook-Delivery`: the delivery's id (one per endpoint and event).
pub const DELIVERY_HEADER: &str = "webhook-delivery";
/// `Webhook-Event-Type`: e.g. `order.placed`.
pub const EVENT_TYPE_HEADER: &str = "webhook-event-type";

/// The prefix of every secret, so one found in a log or a repository is recognisable.
pub const SECRET_PREFIX: &str = "whsec_";

type HmacSha256 = Hmac<Sha256>;

/// A new signing secret: `whsec_` and 32 random bytes in hex. The whole string, prefix
/// included, is the HMAC key.
pub fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{SECRET_PREFIX}{}", hex::encode(bytes))
}

fn mac(secret: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; this cannot fail.
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The hex HMAC-SHA256 of `<timestamp>.<body>` under `secret`.
pub fn digest(secret: &str, timestamp: i64, body: &[u8]) -> String {
    hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
}

/// The `Webhook-Signature` value of `body` signed at `timestamp`.
pub fn signature_header(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!("t={timestamp},v1={}", digest(secret, timestamp, body))
}

/// Why a signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The header is not `t=<seconds>,v1=<hex>[,v1=<hex>…]`.
    #[error("the signature header is malformed")]
    Malformed,
    /// The timestamp is further from now than the tolerance.
    #[error("the signature's timestamp is outside the tolerance")]
    Stale,
    /// No `v1` digest matches the body.
    #[error("no signature matches the body")]
    Mismatch,
}

/// Checks a `Webhook-Signature` header against the raw `body` as a receiver would:
/// the timestamp within `tolerance_seconds` of `now` (Unix seconds), and one `v1`
/// digest equal, compared in constant time.
pub fn verify(
    secret: &str,
    header: &str,
    body: &[u8],
    now: i64,
    tolerance_seconds: i64,
) -> Result<(), VerifyError> {
    let mut timestamp = None;
    let mut digests = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = Some(value.parse::<i64>().map_err(|_| VerifyError::Malformed)?),
            Some(("v1", value)) => digests.push(hex::decode(value).map_err(|_| VerifyError::Malformed)?),
            Some(_) => {}
            None => return Err(VerifyError::Malformed),
        }
    }
    let timestamp = timestamp.ok_or(VerifyError::Malformed)?;
    if digests.is_empty() {
        return Err(VerifyError::Malformed);
    }
    if (now - timestamp).abs() > tolerance_seconds {
        return Err(VerifyError::Stale);
    }
    let expected = mac(secret, timestamp, body);
    if digests
        .iter()
        .any(|candidate| expected.clone().verify_slice(candidate).is_ok())
    {
        Ok(())
    } else {
        Err(VerifyError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_body_verifies_and_any_change_does_not() {
        let secret = new_secret();
        let body = br#"{"id":"1","type":"order.placed"}"#;
        let header = signature_header(&secret, 1_700_000_000, body);
        assert!(header.starts_with("t=1700000000,v1="));
        assert_eq!(verify(&secret, &header, body, 1_700_000_010, 300), Ok(()));
        assert_eq!(
            verify(
                &secret,
                &header,
                br#"{"id":"2","type":"order.placed"}"#,
                1_700_000_010,
                300
            ),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(&new_secret(), &header, body, 1_700_000_010, 300),
            Err(VerifyError::Mismatch)
        );
        // Moving the timestamp breaks the digest, so it cannot be refreshed by hand.
        let moved = header.replace("t=1700000000", "t=1700000200");
        assert_eq!(
            verify(&secret, &moved, body, 1_700_000_200, 300),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn old_timestamps_and_malformed_headers_are_refused() {
        let secret = new_secret();
        let header = signature_header(&secret, 1_000, b"{}");
        assert_eq!(
            verify(&secret, &header, b"{}", 2_000, 300),
            Err(VerifyError::Stale)
        );
        for bad in ["", "t=1000", "v1=00", "t=x,v1=00", "t=1000,v1=zz", "garbage"] {
            assert_eq!(
                verify(&secret, bad, b"{}", 1_000, 300),
                Err(VerifyError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_digest_is_hmac_sha256_of_timestamp_dot_body() {
        // Computed apart from this code, with Python's hmac module:
        // hmac.new(b"whsec_key", b"42.hello", hashlib.sha256).hexdigest()
        assert_eq!(
            digest("whsec_key", 42, b"hello"),
            "55d63d9d498f97df4b1b70162c3333f8d0998891c36b8af71d1e8254dc93aa50"
        );
    }

    #[test]
    fn secrets_are_prefixed_and_random() {
        let (a, b) = (new_secret(), new_secret());
        assert!(a.starts_with(SECRET_PREFIX) && a.len() == SECRET_PREFIX.len() + 64);
        assert_ne!(a, b);
    }
}
