//! The formed group and what Carbyne Stack services read from it.
//!
//! Once the group barrier holds, [`crate::decide`] describes the Virtual Cloud
//! as a [`Formation`]: the parameters, every member in player order with its
//! admitted certificate, and this party's player number. Key generation,
//! configuration, services and gateways are all built from a formation;
//! adapters record the formation they applied so the next reconcile can see
//! that nothing is left to do. The functions here render the parts of the
//! Carbyne Stack configuration whose format is fixed by the reference.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::certificate::Certificate;
use crate::digest::{self, Digest, Fold};
use crate::name::PartyName;
use crate::parameters::ValidatedParameters;
use crate::spec::Endpoint;

/// Name of the ConfigMap Klyshko reads the player id and count from.
pub const VCP_CONFIG_MAP: &str = "cs-vcp-config";
/// Name of the ConfigMap holding the engine parameters (the prime).
pub const ENGINE_PARAMS_CONFIG_MAP: &str = "io.carbynestack.engine.params";
/// Name of the Secret holding this party's MAC key shares.
pub const MAC_KEY_SECRET: &str = "io.carbynestack.engine.params.secret";
/// Key of the gfp MAC key share (decimal) in [`MAC_KEY_SECRET`].
pub const MAC_KEY_SHARE_P: &str = "mac_key_share_p";
/// Key of the gf2n MAC key share (hex) in [`MAC_KEY_SECRET`].
pub const MAC_KEY_SHARE_2: &str = "mac_key_share_2";

/// One member of a formed VC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FormedMember {
    /// Party name.
    pub name: PartyName,
    /// Spalding base URL.
    pub endpoint: Endpoint,
    /// The certificate admitted for it (this party's own for itself).
    pub certificate: Certificate,
}

/// A Virtual Cloud whose group barrier held: who plays, in which order, with
/// which parameters and certificates. Serialisable, so adapters can record
/// the formation they applied next to what they applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Formation {
    /// This party's player number.
    pub player_id: u32,
    /// The shared parameters.
    pub parameters: ValidatedParameters,
    /// Every member in player order.
    pub members: FormedMembers,
}

/// The members of a [`Formation`], in player order, with two digests
/// computed once when the list is built or deserialised: of the players
/// (names and endpoints) and of their certificates. `decide` compares an
/// applied formation with the group through them, in constant time, on every
/// reconcile. Read-only (it dereferences to a slice), so the digests always
/// describe the list; on the wire it is the plain list.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct FormedMembers {
    /// The members.
    members: Vec<FormedMember>,
    /// [`digest::seeds::PLAYERS`] fold of every member's name and endpoint.
    players: Digest,
    /// [`digest::seeds::CERTIFICATES`] fold of every member's certificate fingerprint.
    certificates: Digest,
}

impl FormedMembers {
    /// Digest of the players: every member's name and endpoint, in order.
    pub fn players_digest(&self) -> Digest {
        self.players
    }

    /// Digest of every member's certificate, in order.
    pub fn certificates_digest(&self) -> Digest {
        self.certificates
    }

    /// The members as a list.
    pub fn to_vec(&self) -> Vec<FormedMember> {
        self.members.clone()
    }

    /// Changes the list through `change`, then computes the digests again.
    pub fn edit<R>(&mut self, change: impl FnOnce(&mut Vec<FormedMember>) -> R) -> R {
        let mut members = std::mem::take(&mut self.members);
        let result = change(&mut members);
        *self = Self::from(members);
        result
    }
}

impl From<Vec<FormedMember>> for FormedMembers {
    fn from(members: Vec<FormedMember>) -> Self {
        let (players, certificates) = members.iter().fold(
            (
                Fold::new(digest::seeds::PLAYERS),
                Fold::new(digest::seeds::CERTIFICATES),
            ),
            |(players, certificates), m| {
                (
                    players.push(digest::member_word(&m.name, &m.endpoint)),
                    certificates.push(digest::fingerprint_word(m.certificate.fingerprint())),
                )
            },
        );
        Self {
            members,
            players: players.finish(),
            certificates: certificates.finish(),
        }
    }
}

impl From<FormedMembers> for Vec<FormedMember> {
    fn from(members: FormedMembers) -> Self {
        members.members
    }
}

impl FromIterator<FormedMember> for FormedMembers {
    fn from_iter<I: IntoIterator<Item = FormedMember>>(iter: I) -> Self {
        Self::from(iter.into_iter().collect::<Vec<_>>())
    }
}

impl std::ops::Deref for FormedMembers {
    type Target = [FormedMember];
    fn deref(&self) -> &[FormedMember] {
        &self.members
    }
}

impl<'a> IntoIterator for &'a FormedMembers {
    type Item = &'a FormedMember;
    type IntoIter = std::slice::Iter<'a, FormedMember>;
    fn into_iter(self) -> Self::IntoIter {
        self.members.iter()
    }
}

impl fmt::Debug for FormedMembers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.members.fmt(f)
    }
}

impl Serialize for FormedMembers {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.members.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for FormedMembers {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<FormedMember>::deserialize(deserializer).map(Self::from)
    }
}

impl Formation {
    /// Number of players.
    pub fn player_count(&self) -> u32 {
        u32::try_from(self.members.len()).unwrap_or(u32::MAX)
    }

    /// Whether this party is player 0, the Carbyne Stack master.
    pub fn is_master(&self) -> bool {
        self.player_id == 0
    }

    /// The same players, numbers and parameters; certificates may differ.
    /// What key generation, services and gateways depend on: a partner that
    /// rotates its certificate does not force new HE keys.
    pub fn same_players(&self, other: &Formation) -> bool {
        self.player_id == other.player_id
            && self.parameters == other.parameters
            && self.members.len() == other.members.len()
            && self
                .members
                .iter()
                .zip(&other.members)
                .all(|(a, b)| a.name == b.name && a.endpoint == b.endpoint)
    }

    /// Members other than this party, in player order.
    pub fn partners(&self) -> impl Iterator<Item = &FormedMember> {
        let me = usize::try_from(self.player_id).unwrap_or(usize::MAX);
        self.members
            .iter()
            .enumerate()
            .filter(move |(i, _)| *i != me)
            .map(|(_, m)| m)
    }

    /// The data of the ConfigMap [`VCP_CONFIG_MAP`].
    pub fn vcp_config(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("playerCount".to_owned(), self.player_count().to_string()),
            ("playerId".to_owned(), self.player_id.to_string()),
        ])
    }

    /// The data of the ConfigMap [`ENGINE_PARAMS_CONFIG_MAP`].
    pub fn engine_params(&self) -> BTreeMap<String, String> {
        BTreeMap::from([("prime".to_owned(), self.parameters.prime().to_string())])
    }

    /// The `cacert` entry of the TLS Secret: every partner's admitted
    /// certificate, one PEM block each, in player order.
    pub fn cacert(&self) -> String {
        self.partners().map(|m| m.certificate.pem()).collect()
    }
}
