//! The partner-info document: what each party publishes about a VC at
//! `{endpoint}/v1/virtual-clouds/{vc}` (DESIGN.md, "The partner protocol"),
//! and its verification against what this party expects of a partner.
//!
//! The document holds only public facts: the protocol version, the VC and
//! party names, the endpoint, the parameters, the party's certificate and its
//! fingerprint, the membership as that party sees it (and for each member
//! whether it admitted that member's current certificate) and its state.
//! Signing and the rollback check belong to the transport; this module fixes
//! the canonical bytes they sign.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::certificate::{Certificate, Fingerprint};
use crate::digest::{self, Digest, Fold};
use crate::name::PartyName;
use xxhash_rust::xxh3::xxh3_128_with_seed;

use crate::parameters::ValidatedParameters;
use crate::spec::{Endpoint, MAX_PARTNERS, Partner, State};

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: &str = "spalding.carbynestack.io/v1";

/// One member as the publishing party sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberView {
    /// Party name.
    pub name: PartyName,
    /// Its endpoint.
    pub endpoint: Endpoint,
    /// Fingerprint of the certificate the publisher currently knows for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<Fingerprint>,
    /// The publisher admitted that certificate (always true for itself).
    pub admitted: bool,
}

/// The facts of a document, everything but sequence number and signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentBody {
    /// Always [`PROTOCOL_VERSION`].
    pub protocol: String,
    /// The VC name, the same at every party.
    pub virtual_cloud: String,
    /// The publishing party.
    pub party: PartyName,
    /// The publishing party's own endpoint.
    pub endpoint: Endpoint,
    /// Its parameters (decimal strings on the wire, validated when read).
    pub parameters: ValidatedParameters,
    /// Its VCP certificate (PEM on the wire, parsed when read).
    pub certificate: Certificate,
    /// The fingerprint of that certificate.
    pub fingerprint: Fingerprint,
    /// Every member (itself included), sorted by name.
    pub members: MemberViews,
    /// Its lifecycle state.
    pub state: State,
}

/// The member lines of a [`DocumentBody`], with their digest computed once
/// when the list is built or deserialised: `decide` compares the document it
/// published last with the one it would publish through it, in constant
/// time, on every reconcile. Read-only (it dereferences to a slice), so the
/// digest always describes the list; on the wire it is the plain list.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct MemberViews {
    /// The lines.
    views: Vec<MemberView>,
    /// [`digest::seeds::MEMBER_VIEWS`] fold of every line.
    digest: Digest,
}

impl MemberViews {
    /// Digest of every line (name, endpoint, fingerprint, admission), in order.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// The lines as a list.
    pub fn to_vec(&self) -> Vec<MemberView> {
        self.views.clone()
    }

    /// Changes the list through `change`, then computes the digest again.
    pub fn edit<R>(&mut self, change: impl FnOnce(&mut Vec<MemberView>) -> R) -> R {
        let mut views = std::mem::take(&mut self.views);
        let result = change(&mut views);
        *self = Self::from(views);
        result
    }
}

impl From<Vec<MemberView>> for MemberViews {
    fn from(views: Vec<MemberView>) -> Self {
        let digest = views
            .iter()
            .fold(Fold::new(digest::seeds::MEMBER_VIEWS), |fold, v| {
                let [line, admitted] = digest::member_view_words(
                    &v.name,
                    &v.endpoint,
                    v.fingerprint.as_ref(),
                    v.admitted,
                );
                fold.push(line).push(admitted)
            })
            .finish();
        Self { views, digest }
    }
}

impl From<MemberViews> for Vec<MemberView> {
    fn from(views: MemberViews) -> Self {
        views.views
    }
}

impl FromIterator<MemberView> for MemberViews {
    fn from_iter<I: IntoIterator<Item = MemberView>>(iter: I) -> Self {
        Self::from(iter.into_iter().collect::<Vec<_>>())
    }
}

impl std::ops::Deref for MemberViews {
    type Target = [MemberView];
    fn deref(&self) -> &[MemberView] {
        &self.views
    }
}

impl<'a> IntoIterator for &'a MemberViews {
    type Item = &'a MemberView;
    type IntoIter = std::slice::Iter<'a, MemberView>;
    fn into_iter(self) -> Self::IntoIter {
        self.views.iter()
    }
}

impl fmt::Debug for MemberViews {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.views.fmt(f)
    }
}

impl Serialize for MemberViews {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.views.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for MemberViews {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<MemberView>::deserialize(deserializer).map(Self::from)
    }
}

/// A document as served: the body, a sequence number that grows with every
/// change, and a signature by the party's VCP key over [`canonical_bytes`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartnerDocument {
    /// The facts.
    #[serde(flatten)]
    pub body: DocumentBody,
    /// Grows with every published change; a client refuses to go back.
    pub sequence: u64,
    /// Base64 signature over the canonical bytes, when signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// The bytes a signature covers: the compact JSON of the body and the
/// sequence number, fields in declaration order, no signature.
pub fn canonical_bytes(body: &DocumentBody, sequence: u64) -> Result<Vec<u8>, DocumentError> {
    #[derive(Serialize)]
    struct Signed<'a> {
        #[serde(flatten)]
        body: &'a DocumentBody,
        sequence: u64,
    }
    serde_json::to_vec(&Signed { body, sequence })
        .map_err(|e| DocumentError::Encoding(e.to_string()))
}

/// A document that passed [`PartnerDocument::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedDocument {
    /// The publishing party.
    pub party: PartyName,
    /// Its parameters, validated.
    pub parameters: ValidatedParameters,
    /// Its certificate, parsed; the fingerprint is recomputed.
    pub certificate: Certificate,
    /// Its membership view, sorted by name.
    pub members: Vec<MemberView>,
    /// Its state.
    pub state: State,
    /// The sequence number.
    pub sequence: u64,
    /// [`view_digest`] of the members when the publisher admitted every one of
    /// them; `None` otherwise. Lets the group barrier compare a partner's view
    /// with ours in constant time.
    pub mutual_digest: Option<ViewDigest>,
    /// Digest of what the barrier acts on in the document (see
    /// `content_digest`): not its state, not the progress of an incomplete
    /// view, not its sequence number. Two documents with equal digests and
    /// the same line about the reader lead to the same verdict.
    pub content_digest: ViewDigest,
}

impl VerifiedDocument {
    /// Whether the publisher lists `name` as admitted with `fingerprint`.
    /// `hint` is where the member is expected (tried before searching the
    /// name-sorted members; names are unique, so a hit there is the one a
    /// search would find).
    pub fn admits(&self, name: &PartyName, fingerprint: &Fingerprint, hint: Option<usize>) -> bool {
        hint.and_then(|i| self.members.get(i))
            .filter(|m| m.name == *name)
            .or_else(|| {
                self.members
                    .binary_search_by(|m| m.name.cmp(name))
                    .ok()
                    .and_then(|i| self.members.get(i))
            })
            .is_some_and(|m| m.admitted && m.fingerprint.as_ref() == Some(fingerprint))
    }
}

/// A 128-bit XXH3 digest of what the barrier acts on in a document: the
/// parameters, the certificate's fingerprint, every member's name and
/// endpoint (`members` sorted by name) and the mutual view digest (the whole
/// view once the publisher admitted every member, else none) — not the
/// state, not the progress of a view not yet complete (which members'
/// fingerprints the publisher knows and admitted so far: only the names in a
/// "waiting for" message depend on it), and not the sequence number, which
/// is not in the body. The publisher's line about the reader is compared on
/// its own ([`crate::seen::Said`]). Like [`ViewDigest`] it tells accidental
/// differences apart, which is all the rollback bookkeeping needs
/// ([`crate::partner::PartnerStatus::content_digest`]): the documents it
/// compares were all verified as signed by the partner.
fn content_digest(
    parameters: &ValidatedParameters,
    fingerprint: &Fingerprint,
    members: &[MemberView],
    mutual: Option<ViewDigest>,
) -> Result<ViewDigest, DocumentError> {
    #[derive(Serialize)]
    struct Content<'a> {
        parameters: &'a ValidatedParameters,
        fingerprint: &'a Fingerprint,
        members: Vec<(&'a PartyName, &'a Endpoint)>,
        mutual: Option<[u8; 16]>,
    }
    let bytes = serde_json::to_vec(&Content {
        parameters,
        fingerprint,
        members: members.iter().map(|m| (&m.name, &m.endpoint)).collect(),
        mutual: mutual.map(u128::to_le_bytes),
    })
    .map_err(|e| DocumentError::Encoding(e.to_string()))?;
    Ok(xxh3_128_with_seed(&bytes, 4))
}

/// A 128-bit XXH3 digest of a membership view: names, endpoints and
/// fingerprints in player order.
///
/// Not a cryptographic hash, on purpose: a partner controls its own document
/// and could claim any view it likes, so the digest guards against accidental
/// differences only (a chance of 2^-128), and it is fast enough for the
/// barrier to compare every partner's view on every reconcile.
pub type ViewDigest = u128;

/// The digest of a membership view in which every member is admitted with
/// the given fingerprint. Every party of a formed VC computes the same value.
pub fn view_digest<'a>(
    members: impl Iterator<Item = (&'a PartyName, &'a Endpoint, &'a Fingerprint)>,
) -> ViewDigest {
    // Names and endpoints carry their XXH3 digests, computed when they were
    // parsed; the fingerprint is already a SHA-256 digest, so its two halves
    // are mixed in as they are. Members folded in order: no buffering, no
    // allocation, no hashing here.
    members
        .fold(
            Fold::new(digest::seeds::VIEW),
            |fold, (name, endpoint, fingerprint)| {
                fold.push(digest::admitted_member_word(name, endpoint, fingerprint))
            },
        )
        .finish()
}

/// Why a fetched document was refused. Nothing from a refused document is stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    /// Unknown protocol version.
    #[error("document speaks protocol {found:?}, this Spalding speaks {PROTOCOL_VERSION:?}")]
    Protocol {
        /// What the document said.
        found: String,
    },
    /// The document is about another VC.
    #[error("document describes virtual cloud {found:?}, expected {expected:?}")]
    VirtualCloud {
        /// Expected VC name.
        expected: String,
        /// Found VC name.
        found: String,
    },
    /// The document is from another party.
    #[error("document is published by party {found:?}, expected {expected:?}")]
    Party {
        /// Expected party.
        expected: String,
        /// Found party.
        found: String,
    },
    /// The document claims another endpoint.
    #[error("document claims endpoint {found}, but the spec lists {expected}")]
    Endpoint {
        /// From our spec.
        expected: String,
        /// From the document.
        found: String,
    },
    /// The fingerprint field does not match the certificate.
    #[error("document fingerprint {claimed} does not match its certificate ({actual})")]
    Fingerprint {
        /// What the document says.
        claimed: Box<Fingerprint>,
        /// What the certificate hashes to.
        actual: Box<Fingerprint>,
    },
    /// Too many members, or the same one twice.
    #[error("document membership is malformed: {0}")]
    Members(String),
    /// The document could not be encoded.
    #[error("document could not be encoded: {0}")]
    Encoding(String),
}

impl PartnerDocument {
    /// Checks the document against `partner` of `vc` as our spec names it.
    /// Certificate and parameters were already parsed and validated when the
    /// document was deserialised. Pure: no signature check (the transport does it).
    pub fn verify(&self, vc: &str, partner: &Partner) -> Result<VerifiedDocument, DocumentError> {
        let body = &self.body;
        if body.protocol != PROTOCOL_VERSION {
            return Err(DocumentError::Protocol {
                found: shorten(&body.protocol),
            });
        }
        if body.virtual_cloud != vc {
            return Err(DocumentError::VirtualCloud {
                expected: vc.to_owned(),
                found: shorten(&body.virtual_cloud),
            });
        }
        if body.party != partner.name {
            return Err(DocumentError::Party {
                expected: partner.name.to_string(),
                found: body.party.to_string(),
            });
        }
        if body.endpoint != partner.endpoint {
            return Err(DocumentError::Endpoint {
                expected: partner.endpoint.to_string(),
                found: body.endpoint.to_string(),
            });
        }
        let certificate = &body.certificate;
        if certificate.fingerprint() != &body.fingerprint {
            return Err(DocumentError::Fingerprint {
                claimed: Box::new(body.fingerprint.clone()),
                actual: Box::new(certificate.fingerprint().clone()),
            });
        }
        if body.members.len() > MAX_PARTNERS + 1 {
            return Err(DocumentError::Members(format!(
                "{} members, at most {} are supported",
                body.members.len(),
                MAX_PARTNERS + 1
            )));
        }
        let mut members = body.members.to_vec();
        members.sort_by(|a, b| a.name.cmp(&b.name));
        if let Some(pair) = members.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(DocumentError::Members(format!(
                "{} is listed twice",
                pair[0].name
            )));
        }
        if !members.iter().any(|m| m.name == body.party) {
            return Err(DocumentError::Members(
                "the publisher is not among the members".to_owned(),
            ));
        }
        let mutual_digest = members
            .iter()
            .map(|m| {
                m.fingerprint
                    .as_ref()
                    .filter(|_| m.admitted)
                    .map(|f| (&m.name, &m.endpoint, f))
            })
            .collect::<Option<Vec<_>>>()
            .map(|all| view_digest(all.into_iter()));
        let content_digest = content_digest(
            &body.parameters,
            certificate.fingerprint(),
            &members,
            mutual_digest,
        )?;
        Ok(VerifiedDocument {
            party: body.party.clone(),
            parameters: body.parameters.clone(),
            certificate: certificate.clone(),
            members,
            state: body.state,
            sequence: self.sequence,
            mutual_digest,
            content_digest,
        })
    }
}

/// At most 64 characters of untrusted text, for error messages.
fn shorten(text: &str) -> String {
    text.chars().take(64).collect()
}
