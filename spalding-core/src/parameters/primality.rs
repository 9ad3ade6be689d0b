//! Primality testing for the gfp prime: trial division by the primes below
//! 2000, then Miller–Rabin with the first twelve primes as bases plus further
//! bases derived deterministically from SHA-256 of the candidate itself.
//!
//! The derived bases depend on the number being tested, so a composite cannot
//! be crafted against a fixed, publicly known set of bases; and since they are
//! derived rather than drawn at random, the core stays deterministic (the same
//! input always gets the same verdict at every party).
//!
//! [`check_remembered`] remembers the last few numbers proven prime: every
//! partner document and every stored partner record carries the VC's prime,
//! so a party validates the same prime many times per reconcile, and the
//! Miller–Rabin rounds were over half of the CPU time of a 16-party
//! simulation. Only primes are remembered (a composite is refused anyway),
//! and at most [`REMEMBERED_PRIMES`] of them, so hostile input cannot grow
//! the memory; the verdict is the same with or without it.

use std::sync::{Mutex, PoisonError};

use num_bigint::BigUint;
use num_integer::Integer;
use num_traits::{One, Zero};
use sha2::{Digest, Sha256};

/// The first twelve primes: the fixed Miller–Rabin bases. Together they are a
/// deterministic test for every number below 318665857834031151167461.
pub(crate) const FIXED_BASES: [u32; 12] = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37];

/// How many bases are derived from SHA-256 of the candidate, in addition to
/// [`FIXED_BASES`].
pub(crate) const DERIVED_BASES: u32 = 20;

/// Trial division uses the primes below this bound.
const TRIAL_DIVISION_BOUND: u32 = 2000;

/// The verdict on a candidate prime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Primality {
    /// The number is prime (certainly for small numbers, with overwhelming
    /// probability otherwise).
    Prime,
    /// The number is 0 or 1, which are neither prime nor composite.
    TooSmall,
    /// The number is divisible by this small prime (and is not that prime).
    SmallFactor(u32),
    /// This Miller–Rabin base witnesses that the number is composite.
    Witness(BigUint),
}

/// The primes below [`TRIAL_DIVISION_BOUND`], by a small sieve.
fn small_primes() -> impl Iterator<Item = u32> {
    let bound = TRIAL_DIVISION_BOUND as usize;
    let mut composite = vec![false; bound];
    let mut primes = Vec::new();
    for n in 2..bound {
        if composite.get(n).copied().unwrap_or(true) {
            continue;
        }
        primes.push(n as u32);
        let mut multiple = n * n;
        while multiple < bound {
            if let Some(slot) = composite.get_mut(multiple) {
                *slot = true;
            }
            multiple += n;
        }
    }
    primes.into_iter()
}

/// `n mod p` for `n` given as little-endian 64-bit limbs and `p > 0`.
fn remainder(limbs: &[u64], p: u32) -> u64 {
    let p = u128::from(p.max(1));
    limbs
        .iter()
        .rev()
        .fold(0u128, |rem, &limb| ((rem << 64) | u128::from(limb)) % p) as u64
}

/// Decides whether `n` is prime: trial division, then Miller–Rabin with the
/// fixed and the derived bases.
pub(crate) fn check(n: &BigUint) -> Primality {
    if n < &BigUint::from(2u32) {
        return Primality::TooSmall;
    }
    // Little-endian 64-bit limbs, reduced by hand: no allocation per prime.
    let limbs = n.to_u64_digits();
    for p in small_primes() {
        if remainder(&limbs, p) == 0 {
            return if n == &BigUint::from(p) {
                Primality::Prime
            } else {
                Primality::SmallFactor(p)
            };
        }
    }
    // No factor below the bound: anything below its square is prime.
    let bound = u64::from(TRIAL_DIVISION_BOUND);
    if n < &BigUint::from(bound * bound) {
        return Primality::Prime;
    }
    let fixed = FIXED_BASES.iter().map(|&b| BigUint::from(b));
    let derived = (0..DERIVED_BASES).map(|counter| derived_base(n, counter));
    match miller_rabin(n, fixed.chain(derived)) {
        Some(witness) => Primality::Witness(witness),
        None => Primality::Prime,
    }
}

/// How many proven primes [`check_remembered`] keeps.
pub(crate) const REMEMBERED_PRIMES: usize = 8;

/// The numbers proven prime most recently, the newest last.
static PROVEN_PRIMES: Mutex<Vec<BigUint>> = Mutex::new(Vec::new());

/// [`check`], answering at once for a number proven prime recently.
pub(crate) fn check_remembered(n: &BigUint) -> Primality {
    let remembered = |n: &BigUint| {
        PROVEN_PRIMES
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(n)
    };
    if remembered(n) {
        return Primality::Prime;
    }
    let verdict = check(n);
    if verdict == Primality::Prime {
        let mut proven = PROVEN_PRIMES.lock().unwrap_or_else(PoisonError::into_inner);
        if !proven.contains(n) {
            if proven.len() >= REMEMBERED_PRIMES {
                proven.remove(0);
            }
            proven.push(n.clone());
        }
    }
    verdict
}

/// Whether `n` is prime, by [`check`].
pub(crate) fn is_prime(n: &BigUint) -> bool {
    check(n) == Primality::Prime
}

/// The base number `counter` derived from `n`:
/// `2 + (SHA-256(bytes_be(n) ‖ counter_be) mod (n − 3))`, so it lies in `[2, n − 2]`.
///
/// Requires `n > 3`; smaller `n` get base 2.
pub(crate) fn derived_base(n: &BigUint, counter: u32) -> BigUint {
    let two = BigUint::from(2u32);
    let three = BigUint::from(3u32);
    if n <= &three {
        return two;
    }
    let mut hasher = Sha256::new();
    hasher.update(n.to_bytes_be());
    hasher.update(counter.to_be_bytes());
    let digest = hasher.finalize();
    let h = BigUint::from_bytes_be(digest.as_slice());
    two + h % (n - three)
}

/// Strong probable-prime test of odd `n > 3` to each base; returns the first
/// base that proves `n` composite, or `None` if `n` passes every base.
///
/// Bases are reduced modulo `n`; a base that reduces to 0, 1 or `n − 1` proves
/// nothing and is skipped. Even `n` or `n ≤ 3` are handled directly (an even
/// `n > 2` is witnessed by base 2).
pub(crate) fn miller_rabin(
    n: &BigUint,
    bases: impl IntoIterator<Item = BigUint>,
) -> Option<BigUint> {
    let one = BigUint::one();
    let two = BigUint::from(2u32);
    if n <= &BigUint::from(3u32) {
        return if n < &two { Some(two) } else { None };
    }
    if n.is_even() {
        return Some(two);
    }
    let n_minus_one = n - &one;
    // n − 1 = d · 2^s with d odd; n − 1 > 0, so trailing_zeros is Some.
    let s = n_minus_one.trailing_zeros().unwrap_or(0);
    let d = &n_minus_one >> s;
    for base in bases {
        let a = &base % n;
        if a.is_zero() || a == one || a == n_minus_one {
            continue;
        }
        let mut x = a.modpow(&d, n);
        if x == one || x == n_minus_one {
            continue;
        }
        let mut passed = false;
        for _ in 1..s {
            x = (&x * &x) % n;
            if x == n_minus_one {
                passed = true;
                break;
            }
            if x == one {
                break;
            }
        }
        if !passed {
            return Some(base);
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn big(s: &str) -> BigUint {
        BigUint::parse_bytes(s.as_bytes(), 10).unwrap()
    }

    #[test]
    fn remembered_verdicts_are_the_checked_ones_and_memory_stays_bounded() {
        // 2^127 − 1 and 2^89 − 1 are prime; 2^67 − 1 = 193707721 · 761838257287.
        let mersenne = |e: u32| (BigUint::one() << e) - 1u32;
        let composite = mersenne(67);
        for _ in 0..2 {
            assert_eq!(check_remembered(&mersenne(127)), Primality::Prime);
            assert_eq!(check_remembered(&mersenne(89)), Primality::Prime);
            assert_eq!(check_remembered(&composite), check(&composite));
            assert_ne!(check_remembered(&composite), Primality::Prime);
        }
        assert!(!PROVEN_PRIMES.lock().unwrap().contains(&composite));
        // Many more primes than are kept: the oldest are forgotten.
        let mut candidate = BigUint::one() << 80u32;
        let mut found = 0;
        while found < 3 * REMEMBERED_PRIMES {
            candidate += 1u32;
            if check_remembered(&candidate) == Primality::Prime {
                found += 1;
            }
        }
        assert!(PROVEN_PRIMES.lock().unwrap().len() <= REMEMBERED_PRIMES);
    }

    /// Deterministic Miller–Rabin on `u64` with the first twelve prime bases,
    /// in plain `u128` arithmetic: an independent reference implementation.
    fn reference_is_prime(n: u64) -> bool {
        if n < 2 {
            return false;
        }
        for p in FIXED_BASES {
            let p = u64::from(p);
            if n.is_multiple_of(p) {
                return n == p;
            }
        }
        let mul = |a: u64, b: u64| ((u128::from(a) * u128::from(b)) % u128::from(n)) as u64;
        let pow = |mut a: u64, mut e: u64| {
            let mut r = 1u64;
            while e > 0 {
                if e & 1 == 1 {
                    r = mul(r, a);
                }
                a = mul(a, a);
                e >>= 1;
            }
            r
        };
        let s = (n - 1).trailing_zeros();
        let d = (n - 1) >> s;
        'bases: for a in FIXED_BASES {
            let mut x = pow(u64::from(a), d);
            if x == 1 || x == n - 1 {
                continue;
            }
            for _ in 1..s {
                x = mul(x, x);
                if x == n - 1 {
                    continue 'bases;
                }
            }
            return false;
        }
        true
    }

    #[test]
    fn small_numbers() {
        assert_eq!(check(&BigUint::zero()), Primality::TooSmall);
        assert_eq!(check(&BigUint::one()), Primality::TooSmall);
        assert_eq!(check(&BigUint::from(2u32)), Primality::Prime);
        assert_eq!(check(&BigUint::from(15u32)), Primality::SmallFactor(3));
        assert_eq!(check(&BigUint::from(1999u32)), Primality::Prime);
        assert!(matches!(
            check(&BigUint::from(2003u32 * 2011)),
            Primality::Witness(_)
        ));
        assert!(is_prime(&BigUint::from(3_999_971u32)));
    }

    #[test]
    fn strong_pseudoprime_to_first_nine_bases_is_caught_by_twelve() {
        // 3825123056546413051 = 149491 · 747451 · 34233211 is a strong
        // pseudoprime to the bases 2, 3, …, 23.
        let n = big("3825123056546413051");
        let first_nine = FIXED_BASES[..9].iter().map(|&b| BigUint::from(b));
        assert_eq!(miller_rabin(&n, first_nine), None);
        let all = FIXED_BASES.iter().map(|&b| BigUint::from(b));
        assert!(miller_rabin(&n, all).is_some());
        assert!(!is_prime(&n));
    }

    #[test]
    fn strong_pseudoprime_to_all_fixed_bases_is_caught_by_derived_bases() {
        // ψ12 = 399165290221 · 798330580441 passes Miller–Rabin for every one
        // of the first twelve prime bases; only the derived bases catch it.
        let n = big("318665857834031151167461");
        let fixed = FIXED_BASES.iter().map(|&b| BigUint::from(b));
        assert_eq!(miller_rabin(&n, fixed), None);
        match check(&n) {
            Primality::Witness(w) => assert!(!FIXED_BASES.iter().any(|&b| w == b.into())),
            other => panic!("expected a derived witness, got {other:?}"),
        }
    }

    #[test]
    fn carmichael_number_above_64_bits_is_refused() {
        // Chernick: (6k+1)(12k+1)(18k+1) with k = 250180, all three factors prime.
        let n = big("20293796286020108881");
        assert_eq!(n, BigUint::from(1_501_081u64 * 3_002_161) * 4_503_241u64);
        assert!(n.bits() > 64);
        assert!(matches!(check(&n), Primality::Witness(_)));
    }

    #[test]
    fn derived_bases_are_in_range_and_deterministic() {
        let n = big("198766463529478683931867765928436695041");
        for counter in 0..DERIVED_BASES {
            let b = derived_base(&n, counter);
            assert!(b >= BigUint::from(2u32) && b <= &n - 2u32);
            assert_eq!(b, derived_base(&n, counter));
        }
        assert_ne!(derived_base(&n, 0), derived_base(&n, 1));
    }

    proptest! {
        #[test]
        fn agrees_with_reference_on_u64(n in any::<u64>()) {
            prop_assert_eq!(is_prime(&BigUint::from(n)), reference_is_prime(n));
        }

        #[test]
        fn agrees_with_reference_on_products(a in 2u32.., b in 2u32..) {
            let n = u64::from(a) * u64::from(b);
            prop_assert!(!is_prime(&BigUint::from(n)));
        }
    }
}
