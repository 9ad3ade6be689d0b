//! Partners and admissions as stored at this party: the
//! `VirtualCloudPartner` record Spalding keeps for every partner (spec and
//! status), the `VirtualCloudPartnerAdmission` an operator creates, and the
//! names of the objects that hold them.

use serde::{Deserialize, Serialize};

use crate::certificate::{Certificate, Fingerprint};
use crate::name::PartyName;
use crate::parameters::ValidatedParameters;
use crate::spec::Endpoint;

/// Name of the `VirtualCloudPartner` object for `partner` of `vc`: `<vc>-<partner>`.
pub fn partner_object_name(vc: &str, partner: &PartyName) -> String {
    format!("{vc}-{partner}")
}

/// Name of the ConfigMap holding `partner`'s certificate: `<vc>-<partner>-cert`.
pub fn certificate_config_map_name(vc: &str, partner: &PartyName) -> String {
    format!("{vc}-{partner}-cert")
}

/// Key of the certificate PEM in the certificate ConfigMap.
pub const CERTIFICATE_KEY: &str = "tls.crt";

/// The spec of a `VirtualCloudPartner`: what was fetched from the partner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartnerRecord {
    /// The partner's party name.
    pub name: PartyName,
    /// Its endpoint, from our VC spec.
    pub endpoint: Endpoint,
    /// Its parameters, as it published them.
    pub parameters: ValidatedParameters,
    /// Where its certificate is stored.
    pub certificate: CertificateRef,
}

/// A reference to the ConfigMap holding a partner's certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateRef {
    /// ConfigMap name.
    pub name: String,
    /// ConfigMap namespace.
    pub namespace: String,
}

/// The status of a `VirtualCloudPartner`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartnerStatus {
    /// Admitted here with its current certificate.
    pub admitted: bool,
    /// Fingerprint of its current (last fetched) certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<Fingerprint>,
    /// Fingerprint the admission is bound to, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admitted_fingerprint: Option<Fingerprint>,
    /// Its parameters equal ours.
    pub compatible: bool,
    /// Every parameter mismatch, in words.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub incompatibilities: Vec<String>,
    /// Its document says it admitted our current certificate.
    pub partner_admitted_us: bool,
    /// The last fetch succeeded.
    pub reachable: bool,
    /// Why the last fetch failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_fetch_error: Option<String>,
    /// Sequence number of a document accepted from the partner; a document
    /// with a lower one is refused as a rollback. Not every accepted number
    /// is recorded: while the documents that follow say the same to us
    /// (content digest and line about us) and this process saw every one of
    /// them, the number stays (see [`crate::seen`]), so a replay after a
    /// restart can only bring back a document that says what this status
    /// records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
    /// Digest of what the barrier acts on in the document numbered
    /// [`Self::sequence`] (`VerifiedDocument::content_digest`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_digest: Option<crate::document::ViewDigest>,
}

/// A partner as stored at this party.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPartner {
    /// The record.
    pub record: PartnerRecord,
    /// Its status, when one was written.
    pub status: Option<PartnerStatus>,
    /// The certificate from the referenced ConfigMap, when it exists and parses.
    pub certificate: Option<Certificate>,
}

/// A `VirtualCloudPartnerAdmission`: an operator's decision to trust a partner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Admission {
    /// The admission object's name.
    pub name: String,
    /// The partner (party name) it admits.
    pub partner: PartyName,
    /// Fingerprint pinned in `spec.fingerprint`, obtained out of band.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned: Option<Fingerprint>,
    /// Fingerprint Spalding bound an unpinned admission to (in its status):
    /// the one shown to the operator when the admission appeared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound: Option<Fingerprint>,
}

impl Admission {
    /// The fingerprint this admission vouches for, if it is settled.
    pub fn fingerprint(&self) -> Option<&Fingerprint> {
        self.pinned.as_ref().or(self.bound.as_ref())
    }
}

/// Whether `name` is [`certificate_config_map_name`]`(vc, partner)`, without allocating.
pub fn is_certificate_config_map_name(name: &str, vc: &str, partner: &PartyName) -> bool {
    name.as_bytes()
        .strip_prefix(vc.as_bytes())
        .and_then(|rest| rest.strip_prefix(b"-"))
        .and_then(|rest| rest.strip_prefix(partner.as_bytes()))
        == Some(b"-cert")
}
