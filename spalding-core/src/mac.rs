//! This party's MAC key shares: drawn uniformly from the gfp field and from
//! gf2n of the configured bit length, as MP-SPDZ does locally, with the
//! randomness supplied through the [`Entropy`] port. The global MAC key is the
//! sum of all parties' shares and nobody knows it.
//!
//! Shares are secret: [`MacKeyShares`] has no `Serialize`, its `Debug` is
//! redacted, and the only way to the values is the explicit renderers the
//! adapters call when they write the Secret.

use std::fmt;

use num_bigint::BigUint;

use crate::parameters::ValidatedParameters;
use crate::ports::{Entropy, EntropyError};

/// Most rejection-sampling rounds before giving up. With a prime of `b` bits a
/// draw of `b` bits is accepted with probability above 1/2, so reaching this
/// bound means the entropy source is broken, not unlucky.
const MAX_DRAWS: usize = 256;

/// This party's gfp and gf2n MAC key shares.
#[derive(Clone, PartialEq, Eq)]
pub struct MacKeyShares {
    gfp: BigUint,
    gf2n: u128,
}

impl fmt::Debug for MacKeyShares {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MacKeyShares(<redacted>)")
    }
}

/// Why shares could not be generated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MacKeyError {
    /// The entropy source failed.
    #[error("entropy source failed: {0}")]
    Entropy(#[from] EntropyError),
    /// The entropy source kept returning out-of-range values.
    #[error("entropy source returned {MAX_DRAWS} values outside the field in a row; it is broken")]
    Exhausted,
    /// A stored share does not parse.
    #[error("stored MAC key share {0} is malformed")]
    Malformed(&'static str),
}

impl MacKeyShares {
    /// Draws fresh shares: gfp uniform in `[0, prime)` by rejection sampling,
    /// gf2n uniform over `gf2nBitLength` bits.
    pub fn generate(
        parameters: &ValidatedParameters,
        entropy: &dyn Entropy,
    ) -> Result<Self, MacKeyError> {
        let prime = parameters.prime();
        let bits = prime.bits();
        let len = usize::try_from(bits.div_ceil(8)).map_err(|_| MacKeyError::Exhausted)?;
        let excess = u32::try_from(len as u64 * 8 - bits).unwrap_or(0);
        let mut buf = vec![0u8; len];
        let mut gfp = None;
        for _ in 0..MAX_DRAWS {
            entropy.fill(&mut buf)?;
            if let Some(first) = buf.first_mut() {
                *first &= 0xffu8.checked_shr(excess).unwrap_or(0);
            }
            let candidate = BigUint::from_bytes_be(&buf);
            if &candidate < prime {
                gfp = Some(candidate);
                break;
            }
        }
        buf.iter_mut().for_each(|b| *b = 0);
        let gfp = gfp.ok_or(MacKeyError::Exhausted)?;
        let mut wide = [0u8; 16];
        entropy.fill(&mut wide)?;
        let bit_length = parameters.gf2n_bit_length().min(128);
        let mask = u128::MAX.checked_shr(128 - bit_length).unwrap_or(0);
        let gf2n = u128::from_be_bytes(wide) & mask;
        Ok(Self { gfp, gf2n })
    }

    /// Parses shares as stored in the Secret (gfp decimal, gf2n hex).
    pub fn from_stored(gfp_decimal: &str, gf2n_hex: &str) -> Result<Self, MacKeyError> {
        let gfp = BigUint::parse_bytes(gfp_decimal.trim().as_bytes(), 10)
            .ok_or(MacKeyError::Malformed("mac_key_share_p"))?;
        let hex = gf2n_hex.trim();
        let hex = hex.strip_prefix("0x").unwrap_or(hex);
        let gf2n =
            u128::from_str_radix(hex, 16).map_err(|_| MacKeyError::Malformed("mac_key_share_2"))?;
        Ok(Self { gfp, gf2n })
    }

    /// The gfp share as a decimal, the format of `mac_key_share_p`.
    pub fn gfp_decimal(&self) -> String {
        self.gfp.to_str_radix(10)
    }

    /// The gf2n share as lowercase hex, the format of `mac_key_share_2`.
    pub fn gf2n_hex(&self) -> String {
        format!("{:x}", self.gf2n)
    }

    /// Whether the gfp share lies in `[0, prime)`.
    pub fn fits(&self, parameters: &ValidatedParameters) -> bool {
        &self.gfp < parameters.prime()
            && (parameters.gf2n_bit_length() >= 128
                || self.gf2n >> parameters.gf2n_bit_length() == 0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use num_bigint::BigUint;

    use super::*;
    use crate::memory::InsecureSeededEntropy;
    use crate::parameters::carbyne_stack_default;

    const DRAWS: u64 = 4000;
    /// Chi-square critical value for 15 degrees of freedom at p = 0.001.
    const CHI2_15_P001: f64 = 37.70;

    fn chi_square(counts: &[u64; 16]) -> f64 {
        let expected = DRAWS as f64 / 16.0;
        counts
            .iter()
            .map(|&c| (c as f64 - expected).powi(2) / expected)
            .sum()
    }

    #[test]
    fn shares_are_in_range_and_differ_across_seeds() {
        let p = carbyne_stack_default();
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..64 {
            let s = MacKeyShares::generate(&p, &InsecureSeededEntropy::new(seed)).unwrap();
            assert!(s.fits(&p));
            assert!(s.gf2n < 1 << 40);
            assert!(
                seen.insert((s.gfp_decimal(), s.gf2n_hex())),
                "seed {seed} repeated a share"
            );
        }
    }

    /// The gfp share falls into 16 equal slices of [0, p), and the gf2n
    /// share's top 4 bits take 16 values, equally often: a chi-square test
    /// over 4000 draws from one seeded source (deterministic, not flaky).
    #[test]
    fn shares_are_uniform() {
        let p = carbyne_stack_default();
        let entropy = InsecureSeededEntropy::new(0x5ba1_d146);
        let (mut gfp, mut gf2n) = ([0u64; 16], [0u64; 16]);
        for _ in 0..DRAWS {
            let s = MacKeyShares::generate(&p, &entropy).unwrap();
            let slice = (&s.gfp * BigUint::from(16u8)) / p.prime();
            gfp[usize::try_from(slice).unwrap()] += 1;
            gf2n[usize::try_from(s.gf2n >> 36).unwrap()] += 1;
        }
        assert!(chi_square(&gfp) < CHI2_15_P001, "gfp {gfp:?}");
        assert!(chi_square(&gf2n) < CHI2_15_P001, "gf2n {gf2n:?}");
    }

    #[test]
    fn stored_shares_round_trip_and_debug_is_redacted() {
        let s = MacKeyShares::from_stored("42", "0xff").unwrap();
        assert_eq!(
            (s.gfp_decimal(), s.gf2n_hex()),
            ("42".to_owned(), "ff".to_owned())
        );
        assert_eq!(format!("{s:?}"), "MacKeyShares(<redacted>)");
        assert!(MacKeyShares::from_stored("x", "ff").is_err());
    }
}
