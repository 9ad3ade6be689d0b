//! Party names: validated and normalised to DNS-1123 labels, so they can be
//! part of Kubernetes object names and give every party the same player order.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::digest;

/// Longest DNS-1123 label.
pub const MAX_NAME_LENGTH: usize = 63;

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Nothing was given.
    #[error("name is empty")]
    Empty,
    /// Longer than a DNS-1123 label may be.
    #[error("name is {length} characters long, at most {MAX_NAME_LENGTH} are allowed")]
    TooLong {
        /// Length after normalisation.
        length: usize,
    },
    /// A character outside `a-z`, `0-9` and `-`.
    #[error("name {name:?} contains {character:?}; only letters, digits and '-' are allowed")]
    InvalidCharacter {
        /// The normalised name (names are public).
        name: String,
        /// The first offending character.
        character: char,
    },
    /// Starts or ends with `-`.
    #[error("name {name:?} must start and end with a letter or digit")]
    BadEdge {
        /// The normalised name.
        name: String,
    },
}

/// The name of a party (a Virtual Cloud Provider), normalised to a lowercase
/// DNS-1123 label. `"Party-1"` and `"party-1"` are the same party.
///
/// ```
/// use spalding_core::name::PartyName;
/// let name: PartyName = "Party-1".parse().unwrap();
/// assert_eq!(name.as_str(), "party-1");
/// assert!("party_1".parse::<PartyName>().is_err());
/// ```
///
/// Held inline in 64 bytes (a label has at most 63), so names clone without
/// allocating and compare as eight machine words: the state machine sorts,
/// walks and matches partners by name on every reconcile. Next to them, the
/// name's 128-bit XXH3 digest, computed once here, which the digests of
/// formations and membership views fold in (see [`crate::digest`]).
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PartyName {
    /// The name's bytes, zero-padded; the last byte holds the length. Names
    /// never contain a zero byte, so comparing whole arrays word by word
    /// orders names exactly as comparing the strings does.
    bytes: [u8; MAX_NAME_LENGTH + 1],
    /// XXH3-128 of the name's bytes; a function of `bytes`, never serialised.
    digest: u128,
}

impl PartyName {
    /// Validates and normalises `raw` (surrounding whitespace trimmed, ASCII lowercased).
    pub fn new(raw: &str) -> Result<Self, NameError> {
        let name = raw.trim().to_ascii_lowercase();
        if name.is_empty() {
            return Err(NameError::Empty);
        }
        if name.len() > MAX_NAME_LENGTH {
            return Err(NameError::TooLong { length: name.len() });
        }
        if let Some(character) = name
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Err(NameError::InvalidCharacter { name, character });
        }
        if name.starts_with('-') || name.ends_with('-') {
            return Err(NameError::BadEdge { name });
        }
        let mut bytes = [0; MAX_NAME_LENGTH + 1];
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        bytes[MAX_NAME_LENGTH] = u8::try_from(name.len()).unwrap_or(u8::MAX);
        let digest = digest::of_bytes(name.as_bytes(), digest::NAME_SEED);
        Ok(Self { bytes, digest })
    }

    /// The name's 128-bit digest (XXH3), computed when it was parsed.
    pub fn digest(&self) -> u128 {
        self.digest
    }

    /// The normalised name.
    pub fn as_str(&self) -> &str {
        // Always ASCII, written only by `new`.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    /// The normalised name's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        let len = usize::from(self.bytes[MAX_NAME_LENGTH]);
        self.bytes.get(..len).unwrap_or_default()
    }

    /// The name as eight big-endian words, in string order.
    fn words(&self) -> impl Iterator<Item = u64> + '_ {
        let (words, _) = self.bytes.as_chunks::<8>();
        words.iter().map(|w| u64::from_be_bytes(*w))
    }
}

impl PartialEq for PartyName {
    fn eq(&self, other: &Self) -> bool {
        // Four 16-byte lanes compared at once, without a call to `memcmp`.
        let (ours, _) = self.bytes.as_chunks::<16>();
        let (theirs, _) = other.bytes.as_chunks::<16>();
        ours.iter().zip(theirs).fold(0, |diff, (a, b)| {
            diff | (u128::from_ne_bytes(*a) ^ u128::from_ne_bytes(*b))
        }) == 0
    }
}

impl Eq for PartyName {}

impl Hash for PartyName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.bytes.hash(state);
    }
}

impl PartialOrd for PartyName {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PartyName {
    fn cmp(&self, other: &Self) -> Ordering {
        self.words()
            .zip(other.words())
            .find(|(a, b)| a != b)
            .map_or(Ordering::Equal, |(a, b)| a.cmp(&b))
    }
}

impl fmt::Debug for PartyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PartyName").field(&self.as_str()).finish()
    }
}

impl FromStr for PartyName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<String> for PartyName {
    type Error = NameError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(&value)
    }
}

impl From<PartyName> for String {
    fn from(value: PartyName) -> Self {
        value.as_str().to_owned()
    }
}

impl fmt::Display for PartyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn normalises_case_and_whitespace() {
        assert_eq!(PartyName::new("  Party-1 ").unwrap().as_str(), "party-1");
    }

    #[test]
    fn refuses_each_kind_of_bad_name() {
        assert_eq!(PartyName::new(" "), Err(NameError::Empty));
        assert!(matches!(
            PartyName::new(&"a".repeat(64)),
            Err(NameError::TooLong { length: 64 })
        ));
        assert!(matches!(
            PartyName::new("a.b"),
            Err(NameError::InvalidCharacter { character: '.', .. })
        ));
        assert!(matches!(
            PartyName::new("-a"),
            Err(NameError::BadEdge { .. })
        ));
        assert!(matches!(
            PartyName::new("a-"),
            Err(NameError::BadEdge { .. })
        ));
    }

    proptest! {
        #[test]
        fn never_panics_and_accepted_names_are_dns_labels(raw in "\\PC{0,80}") {
            if let Ok(name) = PartyName::new(&raw) {
                let s = name.as_str();
                prop_assert!(!s.is_empty() && s.len() <= MAX_NAME_LENGTH);
                prop_assert!(s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
                prop_assert_eq!(PartyName::new(s).unwrap(), name.clone());
            }
        }

        /// The inline representation orders, equates and serialises names
        /// exactly as their strings.
        #[test]
        fn order_and_wire_form_are_the_strings(
            a in "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?",
            b in "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?",
        ) {
            let (x, y) = (PartyName::new(&a).unwrap(), PartyName::new(&b).unwrap());
            prop_assert_eq!(x.cmp(&y), a.cmp(&b));
            prop_assert_eq!(x == y, a == b);
            prop_assert_eq!(x.as_str(), a.as_str());
            prop_assert_eq!(serde_json::to_string(&x).unwrap(), serde_json::to_string(&a).unwrap());
            prop_assert_eq!(format!("{x:?}"), format!("PartyName({a:?})"));
            prop_assert_eq!(x.digest() == y.digest(), a == b);
            let back: PartyName = serde_json::from_str(&serde_json::to_string(&x).unwrap()).unwrap();
            prop_assert_eq!(back.digest(), x.digest());
        }

        /// A name that extends another sorts after it.
        #[test]
        fn prefixes_sort_first(a in "[a-z0-9]{1,40}", tail in "[a-z0-9]{1,20}") {
            let (x, y) = (PartyName::new(&a).unwrap(), PartyName::new(&format!("{a}{tail}")).unwrap());
            prop_assert!(x < y);
        }
    }
}
