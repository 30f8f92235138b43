//! Node identity: a long-term ed25519 key pair and the bytes every signature covers.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use thiserror::Error;

/// Length of an ed25519 secret seed and of a public key, in bytes.
pub const KEY_LEN: usize = 32;

/// Why key material could not be used.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum KeyError {
    /// The hex text did not decode.
    #[error("{field}: not valid hex")]
    NotHex {
        /// Which field (Secret key, config key) held the text.
        field: &'static str,
    },
    /// The decoded bytes have the wrong length.
    #[error("{field}: expected {expected} bytes, got {got}")]
    WrongLength {
        /// Which field held the bytes.
        field: &'static str,
        /// Bytes expected.
        expected: usize,
        /// Bytes found.
        got: usize,
    },
    /// The bytes are not a valid curve point.
    #[error("{field}: not a valid ed25519 public key")]
    InvalidPoint {
        /// Which field held the bytes.
        field: &'static str,
    },
}

/// A node's long-term identity key. `Debug` never prints the secret.
#[derive(Clone)]
pub struct NodeKey {
    signing: SigningKey,
}

impl std::fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeKey")
            .field("public", &self.public().to_hex())
            .finish_non_exhaustive()
    }
}

impl NodeKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Self {
        let mut seed = [0u8; KEY_LEN];
        rand::Rng::fill(&mut rand::rngs::OsRng, &mut seed[..]);
        Self::from_seed(seed)
    }

    /// The key for a 32-byte seed (deterministic: tests and simulators use fixed seeds).
    pub fn from_seed(seed: [u8; KEY_LEN]) -> Self {
        Self {
            signing: SigningKey::from_bytes(&seed),
        }
    }

    /// Parses the hex seed stored in an identity Secret; `field` names it in errors.
    pub fn from_hex(text: &str, field: &'static str) -> Result<Self, KeyError> {
        Ok(Self::from_seed(decode_fixed(text.trim(), field)?))
    }

    /// The secret seed as hex, for writing into the identity Secret only.
    pub fn seed_hex(&self) -> String {
        hex::encode(self.signing.to_bytes())
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key())
    }

    /// Signs `domain || message`; the domain keeps a signature of one message kind from
    /// being replayed as another.
    pub fn sign(&self, domain: &[u8], message: &[u8]) -> [u8; 64] {
        self.signing
            .sign(&signing_bytes(domain, message))
            .to_bytes()
    }
}

/// A node's public key, as shown in CR status and carried in every hello.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(VerifyingKey);

// ed25519-dalek's VerifyingKey has no ordering; order by the encoded bytes so keys can
// live in BTreeMap/BTreeSet (deterministic iteration for manifests and ledgers).
impl PartialOrd for PublicKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PublicKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.as_bytes().cmp(other.0.as_bytes())
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.to_hex())
    }
}

impl std::fmt::Display for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl PublicKey {
    /// Lower-case hex of the 32 key bytes.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0.as_bytes())
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        self.0.as_bytes()
    }

    /// Parses a key from raw bytes; `field` names the source in errors.
    pub fn from_bytes(bytes: &[u8], field: &'static str) -> Result<Self, KeyError> {
        let fixed: [u8; KEY_LEN] = bytes.try_into().map_err(|_| KeyError::WrongLength {
            field,
            expected: KEY_LEN,
            got: bytes.len(),
        })?;
        VerifyingKey::from_bytes(&fixed)
            .map(Self)
            .map_err(|_| KeyError::InvalidPoint { field })
    }

    /// Parses a key from hex; `field` names the source in errors.
    pub fn from_hex(text: &str, field: &'static str) -> Result<Self, KeyError> {
        let fixed: [u8; KEY_LEN] = decode_fixed(text.trim(), field)?;
        Self::from_bytes(&fixed, field)
    }

    /// Checks a signature made by [`NodeKey::sign`] over the same domain and message.
    pub fn verify(&self, domain: &[u8], message: &[u8], signature: &[u8]) -> bool {
        let Ok(sig) = <[u8; 64]>::try_from(signature) else {
            return false;
        };
        self.0
            .verify(
                &signing_bytes(domain, message),
                &Signature::from_bytes(&sig),
            )
            .is_ok()
    }

    /// The underlying verifying key, for batch verification.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.0
    }
}

/// The exact bytes a signature covers: a length-prefixed domain tag, then the message.
/// The length prefix makes `("ab", "c")` and `("a", "bc")` sign different bytes.
pub fn signing_bytes(domain: &[u8], message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + domain.len() + message.len());
    // Domain tags are short compile-time constants, so u16 cannot overflow in practice;
    // saturate rather than panic if someone passes something absurd.
    out.extend_from_slice(
        &u16::try_from(domain.len())
            .unwrap_or(u16::MAX)
            .to_be_bytes(),
    );
    out.extend_from_slice(domain);
    out.extend_from_slice(message);
    out
}

fn decode_fixed<const N: usize>(text: &str, field: &'static str) -> Result<[u8; N], KeyError> {
    let bytes = hex::decode(text).map_err(|_| KeyError::NotHex { field })?;
    let got = bytes.len();
    bytes.try_into().map_err(|_| KeyError::WrongLength {
        field,
        expected: N,
        got,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_round_trips_through_hex() {
        let key = NodeKey::from_seed([7; KEY_LEN]);
        let again = NodeKey::from_hex(&key.seed_hex(), "identity.key").expect("valid hex");
        assert_eq!(key.public(), again.public());
    }

    #[test]
    fn signature_binds_domain_and_message() {
        let key = NodeKey::from_seed([1; KEY_LEN]);
        let sig = key.sign(b"hello", b"nonce");
        assert!(key.public().verify(b"hello", b"nonce", &sig));
        assert!(!key.public().verify(b"hell", b"onounce", &sig));
        assert!(!key.public().verify(b"hello", b"nonc3", &sig));
        assert!(
            !NodeKey::from_seed([2; KEY_LEN])
                .public()
                .verify(b"hello", b"nonce", &sig)
        );
    }

    #[test]
    fn bad_key_text_names_the_field() {
        let err = NodeKey::from_hex("zz", "identity.key").expect_err("not hex");
        assert_eq!(err.to_string(), "identity.key: not valid hex");
        let err = PublicKey::from_hex("abcd", "status.publicKey").expect_err("short");
        assert_eq!(
            err.to_string(),
            "status.publicKey: expected 32 bytes, got 2"
        );
    }

    #[test]
    fn debug_never_prints_the_seed() {
        let key = NodeKey::from_seed([9; KEY_LEN]);
        assert!(!format!("{key:?}").contains(&key.seed_hex()));
    }
}
