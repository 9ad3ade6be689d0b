//! MPC field parameters of a Virtual Cloud: their wire form (decimal strings),
//! their mathematical validation (primality, Montgomery `r` and `rInv`, gf2n
//! sizes) and the field-by-field compatibility check between two parties.
//!
//! [`Parameters`] is what users write and parties exchange; [`Parameters::validate`]
//! turns it into [`ValidatedParameters`], which holds big integers with every
//! field present (omitted `r`, `rInv` and `wordSize` are derived). Validation
//! is mathematical, not textual: the prime must be prime (trial division, then
//! Miller–Rabin with fixed and with hash-derived bases, see
//! [`is_probable_prime`]), `r` must be `2^wordSize mod prime` and
//! `r · rInv ≡ 1 (mod prime)`. Two parties are compatible when their
//! validated parameters are equal; [`compatibility`] lists every field that
//! differs.
//!
//! Every input is bounded before any arithmetic (decimals have at most
//! [`MAX_DECIMAL_DIGITS`] digits, the prime at most [`MAX_PRIME_BITS`] bits), so
//! hostile parameters cannot cost much to refuse.

mod error;
mod mismatch;
mod primality;
#[cfg(test)]
mod tests;

use std::fmt;

use num_bigint::BigUint;
use num_traits::One;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use self::error::{DecimalIssue, ParameterError};
pub use self::mismatch::{Mismatch, compatibility};
use self::primality::Primality;

/// The default gfp prime of Carbyne Stack (128 bits).
pub const CARBYNE_STACK_DEFAULT_PRIME: &str = "198766463529478683931867765928436695041";
/// `r = 2^128 mod p` for the Carbyne Stack default prime.
pub const CARBYNE_STACK_DEFAULT_R: &str = "141515903391459779531506841503331516415";
/// `rInv = r^-1 mod p` for the Carbyne Stack default prime.
pub const CARBYNE_STACK_DEFAULT_R_INV: &str = "133854242216446749056083838363708373830";
/// The Montgomery word size of the Carbyne Stack default, in bits.
pub const CARBYNE_STACK_DEFAULT_WORD_SIZE: u32 = 128;
/// The default gf2n bit length of Carbyne Stack.
pub const CARBYNE_STACK_DEFAULT_GF2N_BIT_LENGTH: u32 = 40;
/// The default gf2n storage size of Carbyne Stack, in bytes.
pub const CARBYNE_STACK_DEFAULT_GF2N_STORAGE_SIZE: u32 = 8;

/// The smallest accepted prime size, in bits.
pub const MIN_PRIME_BITS: u64 = 64;
/// The largest accepted prime size, in bits.
pub const MAX_PRIME_BITS: u64 = 4096;
/// The longest accepted decimal (a 4096-bit number has 1234 digits; leading zeros are tolerated).
pub const MAX_DECIMAL_DIGITS: usize = 1300;
/// The largest accepted Montgomery word size, in bits.
pub const MAX_WORD_SIZE: u32 = 8192;
/// The largest accepted gf2n bit length.
pub const MAX_GF2N_BIT_LENGTH: u32 = 128;
/// The largest accepted gf2n storage size, in bytes.
pub const MAX_GF2N_STORAGE_SIZE: u32 = 16;

/// Parameters as written by users and exchanged between parties.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Parameters {
    /// The gfp prime, decimal.
    pub prime: String,
    /// Montgomery `r = 2^wordSize mod prime`, decimal; derived when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r: Option<String>,
    /// `r^-1 mod prime`, decimal; derived when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r_inv: Option<String>,
    /// Montgomery word size in bits; defaults to 64·⌈bits(prime)/64⌉ (128 for the CS default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub word_size: Option<u32>,
    /// Bit length of the gf2n field.
    pub gf2n_bit_length: u32,
    /// Storage size of a gf2n element in bytes.
    pub gf2n_storage_size: u32,
}

/// Parameters after validation: big integers, all fields present.
///
/// Equality compares the prime, the word size and the gf2n sizes: `r` and
/// `rInv` are functions of the first two once validated (the only way to
/// build this type), so comparing them again would only cost time.
#[derive(Debug, Clone)]
pub struct ValidatedParameters {
    prime: BigUint,
    r: BigUint,
    r_inv: BigUint,
    word_size: u32,
    gf2n_bit_length: u32,
    gf2n_storage_size: u32,
}

impl PartialEq for ValidatedParameters {
    fn eq(&self, other: &Self) -> bool {
        self.word_size == other.word_size
            && self.gf2n_bit_length == other.gf2n_bit_length
            && self.gf2n_storage_size == other.gf2n_storage_size
            // Digit by digit, inline: `decide` compares parameters several
            // times per partner on every reconcile.
            && self.prime.iter_u64_digits().eq(other.prime.iter_u64_digits())
    }
}

impl Eq for ValidatedParameters {}

/// A field of the parameters; its `Display` is the wire name (`prime`, `rInv`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ParameterField {
    /// `prime`
    Prime,
    /// `r`
    R,
    /// `rInv`
    RInv,
    /// `wordSize`
    WordSize,
    /// `gf2nBitLength`
    Gf2nBitLength,
    /// `gf2nStorageSize`
    Gf2nStorageSize,
}

impl ParameterField {
    /// Every field, in wire order.
    pub const ALL: [ParameterField; 6] = [
        Self::Prime,
        Self::R,
        Self::RInv,
        Self::WordSize,
        Self::Gf2nBitLength,
        Self::Gf2nStorageSize,
    ];

    /// The field's name in the wire form.
    pub const fn wire_name(self) -> &'static str {
        match self {
            Self::Prime => "prime",
            Self::R => "r",
            Self::RInv => "rInv",
            Self::WordSize => "wordSize",
            Self::Gf2nBitLength => "gf2nBitLength",
            Self::Gf2nStorageSize => "gf2nStorageSize",
        }
    }
}

impl fmt::Display for ParameterField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.wire_name())
    }
}

/// Parses a strict decimal: ASCII digits only, at most [`MAX_DECIMAL_DIGITS`].
fn parse_decimal(field: ParameterField, s: &str) -> Result<BigUint, ParameterError> {
    let issue = if s.is_empty() {
        Some(DecimalIssue::Empty)
    } else if s.len() > MAX_DECIMAL_DIGITS {
        Some(DecimalIssue::TooLong {
            length: s.chars().count(),
        })
    } else {
        s.chars()
            .position(|c| !c.is_ascii_digit())
            .map(|i| DecimalIssue::NotADigit { position: i + 1 })
    };
    if let Some(issue) = issue {
        return Err(ParameterError::NotDecimal { field, issue });
    }
    // Only digits remain, so parsing cannot fail; stay total anyway.
    BigUint::parse_bytes(s.as_bytes(), 10).ok_or(ParameterError::NotDecimal {
        field,
        issue: DecimalIssue::NotADigit { position: 1 },
    })
}

/// Whether `n` is prime: trial division by the primes below 2000, then
/// Miller–Rabin with the first 12 primes as bases and 20 more bases derived
/// from SHA-256 of `n` (deterministic, and not predictable before `n` is
/// fixed). Composites are refused with certainty below
/// 318665857834031151167461 and with overwhelming probability above.
pub fn is_probable_prime(n: &BigUint) -> bool {
    primality::is_prime(n)
}

/// The default word size for a prime of `bits` bits: `64·⌈bits/64⌉`.
fn default_word_size(bits: u64) -> u32 {
    let words = bits.div_ceil(64).max(1);
    u32::try_from(words * 64).unwrap_or(u32::MAX)
}

fn check_prime(prime: &BigUint) -> Result<(), ParameterError> {
    match primality::check_remembered(prime) {
        Primality::Prime => Ok(()),
        Primality::TooSmall => Err(ParameterError::PrimeBelowTwo {
            prime: prime.to_string(),
        }),
        Primality::SmallFactor(factor) => Err(ParameterError::PrimeHasFactor {
            prime: prime.to_string(),
            factor,
        }),
        Primality::Witness(witness) => Err(ParameterError::PrimeIsComposite {
            prime: prime.to_string(),
            witness: witness.to_string(),
        }),
    }
}

fn check_word_size_syntax(word_size: u32) -> Result<(), ParameterError> {
    if word_size == 0 || !word_size.is_multiple_of(64) {
        return Err(ParameterError::WordSizeNotMultipleOf64 { word_size });
    }
    if word_size > MAX_WORD_SIZE {
        return Err(ParameterError::WordSizeTooLarge { word_size });
    }
    Ok(())
}

fn check_gf2n(bit_length: u32, storage_size: u32) -> Result<(), ParameterError> {
    if !(1..=MAX_GF2N_BIT_LENGTH).contains(&bit_length) {
        return Err(ParameterError::Gf2nBitLengthOutOfRange { bit_length });
    }
    let needed = bit_length.div_ceil(8);
    if storage_size < needed {
        return Err(ParameterError::Gf2nStorageTooSmall {
            storage_size,
            bit_length,
            needed,
        });
    }
    if storage_size > MAX_GF2N_STORAGE_SIZE {
        return Err(ParameterError::Gf2nStorageTooLarge { storage_size });
    }
    Ok(())
}

impl Parameters {
    /// The Carbyne Stack defaults in wire form, with `r`, `rInv` and `wordSize` spelled out.
    pub fn carbyne_stack_default() -> Parameters {
        Parameters {
            prime: CARBYNE_STACK_DEFAULT_PRIME.to_owned(),
            r: Some(CARBYNE_STACK_DEFAULT_R.to_owned()),
            r_inv: Some(CARBYNE_STACK_DEFAULT_R_INV.to_owned()),
            word_size: Some(CARBYNE_STACK_DEFAULT_WORD_SIZE),
            gf2n_bit_length: CARBYNE_STACK_DEFAULT_GF2N_BIT_LENGTH,
            gf2n_storage_size: CARBYNE_STACK_DEFAULT_GF2N_STORAGE_SIZE,
        }
    }

    /// Checks the parameters mathematically and derives omitted `r`, `rInv`
    /// and `wordSize`.
    ///
    /// Cheap checks (syntax, sizes, gf2n) run before the primality test, so
    /// malformed input is refused without big-number work.
    pub fn validate(&self) -> Result<ValidatedParameters, ParameterError> {
        let prime = parse_decimal(ParameterField::Prime, &self.prime)?;
        let bits = prime.bits();
        if bits > MAX_PRIME_BITS {
            return Err(ParameterError::PrimeTooLarge { bits });
        }
        let declared_r = self
            .r
            .as_deref()
            .map(|s| parse_decimal(ParameterField::R, s))
            .transpose()?;
        let declared_r_inv = self
            .r_inv
            .as_deref()
            .map(|s| parse_decimal(ParameterField::RInv, s))
            .transpose()?;
        let word_size = match self.word_size {
            Some(word_size) => {
                check_word_size_syntax(word_size)?;
                if u64::from(word_size) < bits {
                    return Err(ParameterError::WordSizeTooSmall {
                        word_size,
                        prime_bits: bits,
                    });
                }
                word_size
            }
            None => default_word_size(bits),
        };
        check_gf2n(self.gf2n_bit_length, self.gf2n_storage_size)?;

        check_prime(&prime)?;
        if bits < MIN_PRIME_BITS {
            return Err(ParameterError::PrimeTooSmall {
                prime: prime.to_string(),
                bits,
            });
        }

        // 2^wordSize > prime (checked above), so r is a true reduction; the
        // prime is odd, so r is never 0 and is invertible.
        let r = (BigUint::one() << word_size) % &prime;
        if let Some(declared) = declared_r
            && declared != r
        {
            return Err(ParameterError::WrongR {
                declared: declared.to_string(),
                expected: r.to_string(),
                word_size,
            });
        }
        // p is prime and r ≠ 0, so r^(p-2) is the inverse (Fermat); modinv
        // agrees and is faster.
        let r_inv = r
            .modinv(&prime)
            .unwrap_or_else(|| r.modpow(&(&prime - 2u32), &prime));
        if let Some(declared) = declared_r_inv {
            if declared >= prime {
                return Err(ParameterError::RInvNotReduced {
                    r_inv: declared.to_string(),
                });
            }
            if declared != r_inv {
                let product = (&r * &declared) % &prime;
                return Err(ParameterError::WrongRInv {
                    product: product.to_string(),
                    expected: r_inv.to_string(),
                });
            }
        }

        Ok(ValidatedParameters {
            prime,
            r,
            r_inv,
            word_size,
            gf2n_bit_length: self.gf2n_bit_length,
            gf2n_storage_size: self.gf2n_storage_size,
        })
    }
}

impl ValidatedParameters {
    /// The Carbyne Stack defaults (the 128-bit prime, word size 128, gf2n 40 / 8).
    pub fn carbyne_stack_default() -> ValidatedParameters {
        ValidatedParameters {
            prime: BigUint::from(198_766_463_529_478_683_931_867_765_928_436_695_041_u128),
            r: BigUint::from(141_515_903_391_459_779_531_506_841_503_331_516_415_u128),
            r_inv: BigUint::from(133_854_242_216_446_749_056_083_838_363_708_373_830_u128),
            word_size: CARBYNE_STACK_DEFAULT_WORD_SIZE,
            gf2n_bit_length: CARBYNE_STACK_DEFAULT_GF2N_BIT_LENGTH,
            gf2n_storage_size: CARBYNE_STACK_DEFAULT_GF2N_STORAGE_SIZE,
        }
    }

    /// The gfp prime.
    pub fn prime(&self) -> &BigUint {
        &self.prime
    }

    /// Montgomery `r = 2^wordSize mod prime`.
    pub fn r(&self) -> &BigUint {
        &self.r
    }

    /// `r^-1 mod prime`.
    pub fn r_inv(&self) -> &BigUint {
        &self.r_inv
    }

    /// Montgomery word size in bits.
    pub fn word_size(&self) -> u32 {
        self.word_size
    }

    /// Bit length of the gf2n field.
    pub fn gf2n_bit_length(&self) -> u32 {
        self.gf2n_bit_length
    }

    /// Storage size of a gf2n element in bytes.
    pub fn gf2n_storage_size(&self) -> u32 {
        self.gf2n_storage_size
    }

    /// The normalised wire form: `r`, `rInv` and `wordSize` always present,
    /// decimals without leading zeros.
    pub fn to_wire(&self) -> Parameters {
        Parameters {
            prime: self.prime.to_string(),
            r: Some(self.r.to_string()),
            r_inv: Some(self.r_inv.to_string()),
            word_size: Some(self.word_size),
            gf2n_bit_length: self.gf2n_bit_length,
            gf2n_storage_size: self.gf2n_storage_size,
        }
    }

    /// Whether a partner with `other` parameters is compatible (all fields equal).
    pub fn is_compatible_with(&self, other: &ValidatedParameters) -> bool {
        self == other
    }
}

/// The Carbyne Stack defaults; see [`ValidatedParameters::carbyne_stack_default`].
pub fn carbyne_stack_default() -> ValidatedParameters {
    ValidatedParameters::carbyne_stack_default()
}

impl TryFrom<&Parameters> for ValidatedParameters {
    type Error = ParameterError;

    fn try_from(value: &Parameters) -> Result<Self, Self::Error> {
        value.validate()
    }
}

impl TryFrom<Parameters> for ValidatedParameters {
    type Error = ParameterError;

    fn try_from(value: Parameters) -> Result<Self, Self::Error> {
        value.validate()
    }
}

impl From<&ValidatedParameters> for Parameters {
    fn from(value: &ValidatedParameters) -> Self {
        value.to_wire()
    }
}

impl From<ValidatedParameters> for Parameters {
    fn from(value: ValidatedParameters) -> Self {
        value.to_wire()
    }
}

impl Serialize for ValidatedParameters {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_wire().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ValidatedParameters {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Parameters::deserialize(deserializer)?
            .validate()
            .map_err(serde::de::Error::custom)
    }
}
