//! Compatibility of two parties' parameters: every differing field, as a
//! [`Mismatch`] with both values in normalised wire form.

use std::borrow::Cow;
use std::fmt;

use num_bigint::BigUint;
use serde::{Deserialize, Serialize};

use super::{ParameterField, ValidatedParameters};

/// One field on which two parties' parameters differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mismatch {
    /// The differing field.
    pub field: ParameterField,
    /// Our value, in normalised wire form (full decimal).
    pub ours: String,
    /// The partner's value, in normalised wire form (full decimal).
    pub theirs: String,
}

/// Values longer than this are abbreviated in messages.
const ABBREVIATE_ABOVE: usize = 24;

/// `12345678…123456` for long ASCII values, unchanged otherwise.
pub(super) fn abbreviate(value: &str) -> Cow<'_, str> {
    match (value.get(..8), value.get(value.len().saturating_sub(6)..)) {
        (Some(head), Some(tail)) if value.len() > ABBREVIATE_ABOVE && value.is_ascii() => {
            Cow::Owned(format!("{head}…{tail}"))
        }
        _ => Cow::Borrowed(value),
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} differs: ours is {}, theirs is {}",
            self.field,
            abbreviate(&self.ours),
            abbreviate(&self.theirs)
        )
    }
}

/// Every field on which `ours` and `theirs` differ, in wire field order; empty
/// when the parties are compatible. Equal parameters cost only comparisons (no
/// allocation); strings are built only for mismatches.
pub fn compatibility(ours: &ValidatedParameters, theirs: &ValidatedParameters) -> Vec<Mismatch> {
    let mut mismatches = Vec::new();
    let mut big = |field, a: &BigUint, b: &BigUint| {
        if a != b {
            mismatches.push(Mismatch {
                field,
                ours: a.to_string(),
                theirs: b.to_string(),
            });
        }
    };
    big(ParameterField::Prime, &ours.prime, &theirs.prime);
    big(ParameterField::R, &ours.r, &theirs.r);
    big(ParameterField::RInv, &ours.r_inv, &theirs.r_inv);
    let small = [
        (ParameterField::WordSize, ours.word_size, theirs.word_size),
        (
            ParameterField::Gf2nBitLength,
            ours.gf2n_bit_length,
            theirs.gf2n_bit_length,
        ),
        (
            ParameterField::Gf2nStorageSize,
            ours.gf2n_storage_size,
            theirs.gf2n_storage_size,
        ),
    ];
    for (field, a, b) in small {
        if a != b {
            mismatches.push(Mismatch {
                field,
                ours: a.to_string(),
                theirs: b.to_string(),
            });
        }
    }
    mismatches
}
