//! Why parameters were refused: one [`ParameterError`] variant per check,
//! with messages in plain words. Decimal input is never echoed when it is
//! malformed; numbers that parsed (public values) are shown in full.

use std::fmt;

use thiserror::Error;

use super::{
    MAX_DECIMAL_DIGITS, MAX_GF2N_BIT_LENGTH, MAX_GF2N_STORAGE_SIZE, MAX_PRIME_BITS, MAX_WORD_SIZE,
    MIN_PRIME_BITS, ParameterField,
};

/// Why a decimal string was refused (the string itself is never echoed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecimalIssue {
    /// The string is empty.
    Empty,
    /// The character at this 1-based position is not an ASCII digit.
    NotADigit {
        /// 1-based position of the first offending character.
        position: usize,
    },
    /// The string is longer than [`MAX_DECIMAL_DIGITS`].
    TooLong {
        /// Its length in characters.
        length: usize,
    },
}

impl fmt::Display for DecimalIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("it is empty"),
            Self::NotADigit { position } => write!(
                f,
                "character {position} is not a digit 0-9 (no signs, spaces or other characters are allowed)"
            ),
            Self::TooLong { length } => write!(
                f,
                "it has {length} characters, more than the maximum of {MAX_DECIMAL_DIGITS}"
            ),
        }
    }
}

/// Why parameters were refused; each check has its own variant.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ParameterError {
    /// `prime`, `r` or `rInv` is not a plain decimal number.
    #[error("{field} is not a decimal number: {issue}")]
    NotDecimal {
        /// The offending field.
        field: ParameterField,
        /// What is wrong with it.
        issue: DecimalIssue,
    },
    /// The prime is larger than [`MAX_PRIME_BITS`].
    #[error("prime has {bits} bits, but it may have at most {MAX_PRIME_BITS} bits")]
    PrimeTooLarge {
        /// Size of the given prime in bits.
        bits: u64,
    },
    /// The prime is smaller than [`MIN_PRIME_BITS`].
    #[error("prime {prime} has {bits} bits, but it must have at least {MIN_PRIME_BITS} bits")]
    PrimeTooSmall {
        /// The given prime, decimal.
        prime: String,
        /// Its size in bits.
        bits: u64,
    },
    /// The "prime" is 0 or 1.
    #[error("prime {prime} is not prime (0 and 1 are not prime numbers)")]
    PrimeBelowTwo {
        /// The given number, decimal.
        prime: String,
    },
    /// The "prime" has a small factor.
    #[error("prime {prime} is not prime (it is divisible by {factor})")]
    PrimeHasFactor {
        /// The given number, decimal.
        prime: String,
        /// A small prime dividing it.
        factor: u32,
    },
    /// The "prime" failed Miller–Rabin.
    #[error(
        "prime {prime} is not prime (the Miller–Rabin test with base {witness} proves it composite)"
    )]
    PrimeIsComposite {
        /// The given number, decimal.
        prime: String,
        /// The Miller–Rabin base that witnesses compositeness, decimal.
        witness: String,
    },
    /// The declared word size is zero or not a multiple of 64.
    #[error("wordSize {word_size} is not a positive multiple of 64")]
    WordSizeNotMultipleOf64 {
        /// The declared word size.
        word_size: u32,
    },
    /// The declared word size is larger than [`MAX_WORD_SIZE`].
    #[error("wordSize {word_size} is larger than the maximum of {MAX_WORD_SIZE}")]
    WordSizeTooLarge {
        /// The declared word size.
        word_size: u32,
    },
    /// `2^wordSize` does not exceed the prime.
    #[error(
        "wordSize {word_size} is too small: 2^{word_size} must exceed the prime, which has {prime_bits} bits"
    )]
    WordSizeTooSmall {
        /// The declared word size.
        word_size: u32,
        /// Size of the prime in bits.
        prime_bits: u64,
    },
    /// `r` is not `2^wordSize mod prime`.
    #[error("r is {declared} but 2^{word_size} mod prime is {expected}")]
    WrongR {
        /// The declared `r`, decimal.
        declared: String,
        /// `2^wordSize mod prime`, decimal.
        expected: String,
        /// The word size in force.
        word_size: u32,
    },
    /// `rInv` is not smaller than the prime.
    #[error("rInv {r_inv} is not smaller than the prime; it must be reduced modulo the prime")]
    RInvNotReduced {
        /// The declared `rInv`, decimal.
        r_inv: String,
    },
    /// `r · rInv mod prime` is not 1.
    #[error("r · rInv mod prime is {product}, not 1 (the inverse of r is {expected})")]
    WrongRInv {
        /// `r · rInv mod prime`, decimal.
        product: String,
        /// The correct `rInv`, decimal.
        expected: String,
    },
    /// The gf2n bit length is outside `1..=MAX_GF2N_BIT_LENGTH`.
    #[error(
        "gf2nBitLength {bit_length} is out of range: it must be between 1 and {MAX_GF2N_BIT_LENGTH}"
    )]
    Gf2nBitLengthOutOfRange {
        /// The declared bit length.
        bit_length: u32,
    },
    /// The gf2n storage size cannot hold an element.
    #[error(
        "gf2nStorageSize {storage_size} bytes cannot hold a {bit_length}-bit gf2n element, which needs at least {needed} bytes"
    )]
    Gf2nStorageTooSmall {
        /// The declared storage size in bytes.
        storage_size: u32,
        /// The declared bit length.
        bit_length: u32,
        /// `⌈bit_length / 8⌉`.
        needed: u32,
    },
    /// The gf2n storage size is larger than [`MAX_GF2N_STORAGE_SIZE`].
    #[error(
        "gf2nStorageSize {storage_size} bytes is larger than the maximum of {MAX_GF2N_STORAGE_SIZE}"
    )]
    Gf2nStorageTooLarge {
        /// The declared storage size in bytes.
        storage_size: u32,
    },
}
