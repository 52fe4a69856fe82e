//! Reply tokens: the `+t123.5f2c…` in a reply-to address names the item a reply belongs to, and
//! an HMAC over (workspace, item number) with the server's secret makes it tamper-evident.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tandem_core::WorkspaceId;
use tandem_core::mail::split_plus;

type HmacSha256 = Hmac<Sha256>;

/// Signature bytes kept in a token (64 bits: guessing one takes 2^63 tries on average).
const SIG_BYTES: usize = 8;

/// The server's secret for reply tokens.
#[derive(Clone)]
pub struct ReplyKey([u8; 32]);

impl std::fmt::Debug for ReplyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReplyKey(…)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the reply-token key must be 64 hex digits (32 bytes)")]
pub struct BadKey;

impl ReplyKey {
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn from_hex(hex: &str) -> Result<Self, BadKey> {
        let bytes = hex::decode(hex.trim()).map_err(|_| BadKey)?;
        <[u8; 32]>::try_from(bytes.as_slice()).map(Self).map_err(|_| BadKey)
    }

    fn mac(&self, ws: WorkspaceId, number: i64) -> HmacSha256 {
        // Infallible: HMAC takes keys of any length.
        let mut mac = HmacSha256::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!());
        mac.update(b"tandem-reply-token/1");
        mac.update(ws.0.as_bytes());
        mac.update(&number.to_be_bytes());
        mac
    }

    /// The token for an item: `t<number>.<16 hex digits>`.
    pub fn token(&self, ws: WorkspaceId, number: i64) -> String {
        let sig = self.mac(ws, number).finalize().into_bytes();
        format!("t{number}.{}", hex::encode(&sig[..SIG_BYTES]))
    }

    /// The item number a token names, if its signature is right (compared in constant time).
    pub fn verify(&self, ws: WorkspaceId, token: &str) -> Option<i64> {
        let (number, sig) = token.trim().strip_prefix('t')?.split_once('.')?;
        let number: i64 = number.parse().ok().filter(|n| *n > 0)?;
        let sig = hex::decode(sig).ok().filter(|s| s.len() == SIG_BYTES)?;
        self.mac(ws, number).verify_truncated_left(&sig).ok().map(|()| number)
    }

    /// `it@desk.example` → `it+t123.5f2c…@desk.example`.
    pub fn reply_address(&self, base: &str, ws: WorkspaceId, number: i64) -> String {
        let (base, _) = split_plus(base);
        match base.rsplit_once('@') {
            Some((local, domain)) => format!("{local}+{}@{domain}", self.token(ws, number)),
            None => base,
        }
    }

    /// The item number in an address's `+token`, if there is a valid one.
    pub fn verify_address(&self, ws: WorkspaceId, address: &str) -> Option<i64> {
        split_plus(address).1.and_then(|tag| self.verify(ws, &tag))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use uuid::Uuid;

    fn key(n: u8) -> ReplyKey {
        ReplyKey::new([n; 32])
    }

    #[test]
    fn tokens_round_trip_and_reject_tampering() {
        let ws = WorkspaceId(Uuid::from_u128(1));
        let other_ws = WorkspaceId(Uuid::from_u128(2));
        let address = key(1).reply_address("IT@desk.example", ws, 42);
        assert!(address.starts_with("it+t42.") && address.ends_with("@desk.example"), "{address}");
        assert_eq!(key(1).verify_address(ws, &address), Some(42));
        assert_eq!(key(1).verify_address(ws, &address.to_uppercase()), Some(42), "case does not matter");
        for (what, addr) in [
            ("another key", key(2).reply_address("it@desk.example", ws, 42)),
            ("another workspace", key(1).reply_address("it@desk.example", other_ws, 42)),
            ("another number", address.replace("t42.", "t43.")),
            (
                "a short signature",
                address.replacen('.', ".0", 1).chars().take(20).collect::<String>() + "@desk.example",
            ),
            ("no token", "it@desk.example".into()),
            ("garbage", "it+t42.zz@desk.example".into()),
        ] {
            assert_eq!(key(1).verify_address(ws, &addr), None, "{what}: {addr}");
        }
        assert!(ReplyKey::from_hex("00").is_err());
        assert!(ReplyKey::from_hex(&"ab".repeat(32)).is_ok());
    }

    proptest! {
        #[test]
        fn any_single_character_change_breaks_a_token(number in 1i64..1_000_000, at in 0usize..40, c in "[0-9a-z.]") {
            let ws = WorkspaceId(Uuid::from_u128(9));
            let token = key(7).token(ws, number);
            let mut chars: Vec<char> = token.chars().collect();
            let at = at % chars.len();
            let replacement = c.chars().next().unwrap();
            prop_assume!(chars[at] != replacement);
            chars[at] = replacement;
            let tampered: String = chars.into_iter().collect();
            // A changed number is only accepted if it was a leading zero (t042 is t42).
            let accepted = key(7).verify(ws, &tampered);
            prop_assert!(accepted.is_none() || accepted == Some(number));
        }
    }
}
