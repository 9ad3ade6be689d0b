//! The 128-bit digests `decide` compares instead of walking lists: of party
//! names and endpoints (computed once, when a name or endpoint is parsed, and
//! carried in it), of fingerprints (their SHA-256 bytes, mixed as they are),
//! and order-sensitive folds of them over the members of a formation, a
//! published document or a membership view.
//!
//! Not cryptographic, on purpose: what is compared was written by this party
//! itself (records, formations, its own document) or is a partner's claim
//! about itself, which it controls anyway. The digests tell accidental
//! differences apart (a chance of 2^-128), which is what the comparisons need,
//! and they keep a VC at rest from comparing strings on every reconcile. They
//! never reach a wire format: every digest is computed again on
//! deserialisation.

use xxhash_rust::xxh3::xxh3_128_with_seed;

use crate::certificate::Fingerprint;
use crate::name::PartyName;
use crate::spec::Endpoint;

/// A 128-bit digest.
pub type Digest = u128;

/// Odd 128-bit multiplier of the fold (a bijection on `u128`).
const MULTIPLIER: u128 = 0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835;

/// Seed of the XXH3 digest of party names.
pub(crate) const NAME_SEED: u64 = 1;
/// Seed of the XXH3 digest of endpoints.
pub(crate) const ENDPOINT_SEED: u64 = 2;

/// XXH3-128 of `bytes` with `seed`.
pub(crate) fn of_bytes(bytes: &[u8], seed: u64) -> Digest {
    xxh3_128_with_seed(bytes, seed)
}

/// A fingerprint as one word: its SHA-256 bytes are a digest already, so
/// their two halves are mixed in as they are.
pub(crate) fn fingerprint_word(fingerprint: &Fingerprint) -> Digest {
    let (halves, _) = fingerprint.digest().as_chunks::<16>();
    halves.iter().fold(0, |f: u128, half| {
        f.rotate_left(64) ^ u128::from_le_bytes(*half)
    })
}

/// The word that stands for a missing fingerprint in a fold.
const NO_FINGERPRINT: Digest = 0x6a09_e667_f3bc_c908_bb67_ae85_84ca_a73b;

/// A member's name and endpoint as one word.
pub(crate) fn member_word(name: &PartyName, endpoint: &Endpoint) -> Digest {
    name.digest() ^ endpoint.digest().rotate_left(43)
}

/// A member's name, endpoint and fingerprint as one word: what a membership
/// view says of a member that is admitted with that fingerprint.
pub(crate) fn admitted_member_word(
    name: &PartyName,
    endpoint: &Endpoint,
    fingerprint: &Fingerprint,
) -> Digest {
    with_fingerprint(member_word(name, endpoint), Some(fingerprint))
}

/// A [`member_word`] with the fingerprint known for the member mixed in.
pub(crate) fn with_fingerprint(member: Digest, fingerprint: Option<&Fingerprint>) -> Digest {
    member
        ^ fingerprint
            .map_or(NO_FINGERPRINT, fingerprint_word)
            .rotate_left(86)
}

/// An order-sensitive fold of words into one digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fold(Digest);

impl Fold {
    /// An empty fold; `seed` tells folds of different things apart.
    pub const fn new(seed: Digest) -> Self {
        Self(seed)
    }

    /// Folds in one word.
    #[must_use]
    pub fn push(self, word: Digest) -> Self {
        Self((self.0.rotate_left(17) ^ word).wrapping_mul(MULTIPLIER))
    }

    /// The digest of the words folded in so far.
    pub fn finish(self) -> Digest {
        self.0
    }
}

/// Seeds of the folds, one per kind of list.
pub(crate) mod seeds {
    use super::Digest;
    /// Membership views ([`crate::document::view_digest`]).
    pub const VIEW: Digest = 0;
    /// The players of a formation: names and endpoints.
    pub const PLAYERS: Digest = 0x5be0_cd19_137e_2179_1f83_d9ab_fb41_bd6b;
    /// The certificates of a formation.
    pub const CERTIFICATES: Digest = 0x510e_527f_ade6_82d1_9b05_688c_2b3e_6c1f;
    /// The member lines of a published document.
    pub const MEMBER_VIEWS: Digest = 0x3c6e_f372_fe94_f82b_a54f_f53a_5f1d_36f1;
}

/// The words one line of a published document folds in: its member,
/// whether the publisher admitted it and, only for an admitted line, the
/// fingerprint it knows for it (partners act on nothing else, so a
/// fingerprint learned for a member not admitted yet does not republish;
/// see [`crate::machine`]'s `publish`).
pub(crate) fn member_view_words(
    name: &PartyName,
    endpoint: &Endpoint,
    fingerprint: Option<&Fingerprint>,
    admitted: bool,
) -> [Digest; 2] {
    [
        with_fingerprint(
            member_word(name, endpoint),
            fingerprint.filter(|_| admitted),
        ),
        Digest::from(admitted),
    ]
}
