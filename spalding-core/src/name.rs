//! Party names: validated and normalised to DNS-1123 labels, so they can be
//! part of Kubernetes object names and give every party the same player order.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

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
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PartyName(String);

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
        Ok(Self(name))
    }

    /// The normalised name.
    pub fn as_str(&self) -> &str {
        &self.0
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
        value.0
    }
}

impl fmt::Display for PartyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
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
    }
}
