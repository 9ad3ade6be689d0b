//! Certificate fingerprints: the SHA-256 of a certificate's DER, written
//! `sha256:<64 lowercase hex digits>` on the wire, in CRDs and to operators.
//!
//! A [`Fingerprint`] is parsed once and kept as its 32 digest bytes next to
//! its text, inline (no heap): the state machine compares fingerprints many
//! times per reconcile, and comparing two 32-byte arrays is a few
//! instructions, while the text is there for display and serialisation
//! without formatting it again.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use thiserror::Error;

const FINGERPRINT_PREFIX: &str = "sha256:";
const FINGERPRINT_HEX_LEN: usize = 64;
const TEXT_LEN: usize = FINGERPRINT_PREFIX.len() + FINGERPRINT_HEX_LEN;

/// `sha256:` followed by the 64 lowercase hex digits of the SHA-256 of a certificate's DER.
///
/// Equality, order and hashing are those of the digest bytes; the order is
/// the same as the order of the text (lowercase hex preserves byte order).
#[derive(Clone)]
pub struct Fingerprint {
    /// The SHA-256 digest.
    digest: [u8; 32],
    /// `sha256:` and the lowercase hex of `digest`, always ASCII.
    text: [u8; TEXT_LEN],
}

/// Why a fingerprint string was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FingerprintError {
    /// The string does not start with `sha256:`.
    #[error("a fingerprint must start with \"sha256:\" (other digest algorithms are not accepted)")]
    UnsupportedAlgorithm,
    /// The hex part has the wrong length.
    #[error(
        "a sha256 fingerprint has 64 hex digits after \"sha256:\", but this one has {found} characters"
    )]
    WrongLength {
        /// Number of characters after the prefix.
        found: usize,
    },
    /// A character of the hex part is not a hex digit.
    #[error("character {position} of the fingerprint's hex digits is not a hex digit 0-9 or a-f")]
    NotHex {
        /// 1-based position within the hex part.
        position: usize,
    },
}

impl Fingerprint {
    /// The fingerprint of a certificate's DER bytes.
    pub fn of_der(der: &[u8]) -> Fingerprint {
        Fingerprint::from_digest(Sha256::digest(der).into())
    }

    /// The fingerprint whose SHA-256 digest is `digest`.
    pub fn from_digest(digest: [u8; 32]) -> Fingerprint {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = [0; TEXT_LEN];
        let (prefix, hex) = text.split_at_mut(FINGERPRINT_PREFIX.len());
        prefix.copy_from_slice(FINGERPRINT_PREFIX.as_bytes());
        for (pair, byte) in hex.chunks_exact_mut(2).zip(digest) {
            pair[0] = HEX[usize::from(byte >> 4)];
            pair[1] = HEX[usize::from(byte & 0x0f)];
        }
        Fingerprint { digest, text }
    }

    /// The 32 bytes of the SHA-256 digest.
    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }

    /// The fingerprint as `sha256:<64 lowercase hex digits>`.
    pub fn as_str(&self) -> &str {
        // Always ASCII, written only by `from_digest`.
        std::str::from_utf8(&self.text).unwrap_or_default()
    }

    /// The 64 lowercase hex digits, without the `sha256:` prefix.
    pub fn hex(&self) -> &str {
        self.as_str()
            .get(FINGERPRINT_PREFIX.len()..)
            .unwrap_or_default()
    }
}

impl PartialEq for Fingerprint {
    fn eq(&self, other: &Self) -> bool {
        self.digest == other.digest
    }
}

impl Eq for Fingerprint {}

impl PartialOrd for Fingerprint {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Fingerprint {
    fn cmp(&self, other: &Self) -> Ordering {
        self.digest.cmp(&other.digest)
    }
}

impl Hash for Fingerprint {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.digest.hash(state);
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Fingerprint").field(&self.as_str()).finish()
    }
}

/// The value of one hex digit, either letter case.
fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

impl FromStr for Fingerprint {
    type Err = FingerprintError;

    /// Accepts `sha256:` (in any letter case) and 64 hex digits (in any letter
    /// case); the result is lowercase.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex_part = match s.get(..FINGERPRINT_PREFIX.len()) {
            Some(prefix) if prefix.eq_ignore_ascii_case(FINGERPRINT_PREFIX) => s
                .get(FINGERPRINT_PREFIX.len()..)
                .ok_or(FingerprintError::UnsupportedAlgorithm)?,
            _ => return Err(FingerprintError::UnsupportedAlgorithm),
        };
        let found = hex_part.chars().count();
        if found != FINGERPRINT_HEX_LEN {
            return Err(FingerprintError::WrongLength { found });
        }
        if let Some(i) = hex_part.chars().position(|c| !c.is_ascii_hexdigit()) {
            return Err(FingerprintError::NotHex { position: i + 1 });
        }
        // 64 ASCII hex digits from here on.
        let mut digest = [0; 32];
        for (byte, pair) in digest.iter_mut().zip(hex_part.as_bytes().chunks_exact(2)) {
            let (high, low) = (hex_value(pair[0]), hex_value(pair[1]));
            *byte = (high.unwrap_or_default() << 4) | low.unwrap_or_default();
        }
        Ok(Fingerprint::from_digest(digest))
    }
}

impl TryFrom<&str> for Fingerprint {
    type Error = FingerprintError;

    fn try_from(value: &str) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AsRef<str> for Fingerprint {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Serialize for Fingerprint {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Fingerprint {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
