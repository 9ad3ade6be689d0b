//! The `VirtualCloudPartner` (`vcp`) resource Spalding keeps for every
//! partner it fetched, and the `VirtualCloudPartnerAdmission` (`vcpa`) an
//! operator creates to trust a partner's certificate, with conversions to the
//! core's [`PartnerRecord`], [`PartnerStatus`] and [`Admission`].

// kube-derive's repeated `printcolumn(type_ = …)` looks like duplicated attributes to clippy.
#![allow(clippy::duplicated_attributes)]

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use spalding_core::certificate::Fingerprint;
use spalding_core::name::PartyName;
use spalding_core::parameters::Parameters;
use spalding_core::partner::{Admission, CertificateRef, PartnerRecord, PartnerStatus};
use spalding_core::spec::Endpoint;

use super::common::MpcParameters;

/// Why a stored object could not be read as the core's type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConversionError {
    /// A party name is not a DNS-1123 label.
    #[error("{object}: party name: {source}")]
    Name {
        /// The object.
        object: String,
        /// What is wrong.
        source: spalding_core::name::NameError,
    },
    /// An endpoint is not a valid https URL.
    #[error("{object}: endpoint: {source}")]
    Endpoint {
        /// The object.
        object: String,
        /// What is wrong.
        source: spalding_core::spec::EndpointError,
    },
    /// Parameters fail validation.
    #[error("{object}: parameters: {source}")]
    Parameters {
        /// The object.
        object: String,
        /// What is wrong.
        source: spalding_core::parameters::ParameterError,
    },
    /// A fingerprint is malformed.
    #[error("{object}: fingerprint: {source}")]
    Fingerprint {
        /// The object.
        object: String,
        /// What is wrong.
        source: spalding_core::certificate::FingerprintError,
    },
    /// An admission names a partner object of another Virtual Cloud.
    #[error("{object}: spec.partner {partner:?} is not a partner of virtual cloud {vc:?}")]
    OtherVirtualCloud {
        /// The admission.
        object: String,
        /// Its spec.partner.
        partner: String,
        /// The VC it was read for.
        vc: String,
    },
}

/// A partner of a Virtual Cloud as fetched from its partner-info document.
/// Written by Spalding; named `<virtual cloud>-<party>`.
#[derive(CustomResource, Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "carbynestack.io",
    version = "v1",
    kind = "VirtualCloudPartner",
    plural = "virtualcloudpartners",
    shortname = "vcp",
    category = "carbynestack",
    namespaced,
    status = "VirtualCloudPartnerStatus",
    derive = "PartialEq",
    doc = "A partner of a Virtual Cloud, as fetched by Spalding from the partner's endpoint.",
    printcolumn(
        name = "Party",
        type_ = "string",
        json_path = ".spec.name",
        description = "The partner's party name"
    ),
    printcolumn(
        name = "Admitted",
        type_ = "boolean",
        json_path = ".status.admitted",
        description = "Admitted here with its current certificate"
    ),
    printcolumn(
        name = "Compatible",
        type_ = "boolean",
        json_path = ".status.compatible",
        description = "Its parameters equal ours"
    ),
    printcolumn(
        name = "Fingerprint",
        type_ = "string",
        json_path = ".status.fingerprint",
        description = "sha256 fingerprint of its current certificate"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct VirtualCloudPartnerSpec {
    /// The partner's party name, a DNS-1123 label.
    #[schemars(pattern(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"), length(min = 1, max = 63))]
    pub name: String,
    /// The partner's Spalding base URL, from the VirtualCloud's spec.
    #[schemars(
        pattern(r"^https://[^\s@?#/]+(/[^\s@?#]*)?$"),
        length(min = 9, max = 2048)
    )]
    pub endpoint: String,
    /// The partner's MPC parameters, as it published them.
    pub parameters: MpcParameters,
    /// The ConfigMap holding the partner's certificate (key tls.crt).
    pub certificate: CertificateReference,
}

/// A reference to the ConfigMap holding a partner's certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CertificateReference {
    /// The ConfigMap's name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The ConfigMap's namespace.
    #[schemars(length(min = 1, max = 63))]
    pub namespace: String,
}

/// What Spalding knows about a partner.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VirtualCloudPartnerStatus {
    /// Whether the partner is admitted here with its current certificate.
    pub admitted: bool,
    /// sha256 fingerprint of the partner's current (last fetched) certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^sha256:[0-9a-f]{64}$"))]
    pub fingerprint: Option<String>,
    /// The fingerprint the admission is bound to, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^sha256:[0-9a-f]{64}$"))]
    pub admitted_fingerprint: Option<String>,
    /// Whether the partner's parameters equal ours.
    pub compatible: bool,
    /// Every parameter mismatch, in words.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub incompatibilities: Vec<String>,
    /// Whether the partner's document says it admitted our current certificate.
    pub partner_admitted_us: bool,
    /// Whether the last fetch of the partner's document succeeded.
    pub reachable: bool,
    /// Why the last fetch failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_fetch_error: Option<String>,
    /// Sequence number of a document accepted from the partner; a document
    /// with a lower one is refused as a rollback. Documents that follow and
    /// say the same to this party (`contentDigest`, `partnerAdmittedUs`),
    /// each of them seen by the operator, leave it as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
    /// Digest (XXH3-128, hex) of what the barrier acts on in the document
    /// numbered `sequence`: parameters, fingerprint, member names and
    /// endpoints, and the complete view once the partner admitted every
    /// member; not its state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^[0-9a-f]{32}$"))]
    pub content_digest: Option<String>,
}

/// An operator's decision to trust a partner's certificate. Named freely;
/// `spec.partner` names the VirtualCloudPartner object (`<virtual cloud>-<party>`).
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[kube(
    group = "carbynestack.io",
    version = "v1",
    kind = "VirtualCloudPartnerAdmission",
    plural = "virtualcloudpartneradmissions",
    shortname = "vcpa",
    category = "carbynestack",
    namespaced,
    status = "VirtualCloudPartnerAdmissionStatus",
    derive = "PartialEq",
    doc = "An operator's admission of a Virtual Cloud partner's certificate.",
    printcolumn(
        name = "Partner",
        type_ = "string",
        json_path = ".spec.partner",
        description = "The admitted VirtualCloudPartner"
    ),
    printcolumn(
        name = "Pinned",
        type_ = "string",
        json_path = ".spec.fingerprint",
        description = "Fingerprint pinned by the operator"
    ),
    printcolumn(
        name = "Fingerprint",
        type_ = "string",
        json_path = ".status.fingerprint",
        description = "Fingerprint an unpinned admission was bound to"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new("self == oldSelf").message("an admission cannot be changed; delete it and create a new one"))]
#[serde(rename_all = "camelCase")]
pub struct VirtualCloudPartnerAdmissionSpec {
    /// The VirtualCloudPartner admitted: `<virtual cloud>-<party>`.
    #[schemars(
        pattern(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"),
        length(min = 3, max = 127)
    )]
    pub partner: String,
    /// The sha256 fingerprint of the partner's certificate, obtained out of
    /// band. When given, the admission holds only while the partner's
    /// certificate has exactly this fingerprint; when omitted, the admission
    /// is bound to the certificate current when it appeared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^sha256:[0-9a-f]{64}$"))]
    pub fingerprint: Option<String>,
}

/// What Spalding recorded about an admission.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VirtualCloudPartnerAdmissionStatus {
    /// The fingerprint an unpinned admission was bound to: the partner's
    /// certificate when the admission appeared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^sha256:[0-9a-f]{64}$"))]
    pub fingerprint: Option<String>,
}

impl From<&PartnerRecord> for VirtualCloudPartnerSpec {
    fn from(r: &PartnerRecord) -> Self {
        VirtualCloudPartnerSpec {
            name: r.name.to_string(),
            endpoint: r.endpoint.to_string(),
            parameters: r.parameters.to_wire().into(),
            certificate: CertificateReference {
                name: r.certificate.name.clone(),
                namespace: r.certificate.namespace.clone(),
            },
        }
    }
}

impl VirtualCloudPartnerSpec {
    /// The core's record, validated; `object` names the object in errors.
    pub fn to_record(&self, object: &str) -> Result<PartnerRecord, ConversionError> {
        let name = PartyName::new(&self.name).map_err(|source| ConversionError::Name {
            object: object.to_owned(),
            source,
        })?;
        let endpoint =
            Endpoint::new(&self.endpoint).map_err(|source| ConversionError::Endpoint {
                object: object.to_owned(),
                source,
            })?;
        let parameters = Parameters::from(self.parameters.clone())
            .validate()
            .map_err(|source| ConversionError::Parameters {
                object: object.to_owned(),
                source,
            })?;
        Ok(PartnerRecord {
            name,
            endpoint,
            parameters,
            certificate: CertificateRef {
                name: self.certificate.name.clone(),
                namespace: self.certificate.namespace.clone(),
            },
        })
    }
}

fn fingerprint(object: &str, raw: Option<&String>) -> Result<Option<Fingerprint>, ConversionError> {
    raw.map(|f| {
        f.parse().map_err(|source| ConversionError::Fingerprint {
            object: object.to_owned(),
            source,
        })
    })
    .transpose()
}

impl From<&PartnerStatus> for VirtualCloudPartnerStatus {
    fn from(s: &PartnerStatus) -> Self {
        VirtualCloudPartnerStatus {
            admitted: s.admitted,
            fingerprint: s.fingerprint.as_ref().map(|f| f.as_str().to_owned()),
            admitted_fingerprint: s
                .admitted_fingerprint
                .as_ref()
                .map(|f| f.as_str().to_owned()),
            compatible: s.compatible,
            incompatibilities: s.incompatibilities.clone(),
            partner_admitted_us: s.partner_admitted_us,
            reachable: s.reachable,
            last_fetch_error: s.last_fetch_error.clone(),
            sequence: s.sequence,
            content_digest: s.content_digest.map(|d| format!("{d:032x}")),
        }
    }
}

impl VirtualCloudPartnerStatus {
    /// The core's status; `object` names the object in errors.
    pub fn to_core(&self, object: &str) -> Result<PartnerStatus, ConversionError> {
        Ok(PartnerStatus {
            admitted: self.admitted,
            fingerprint: fingerprint(object, self.fingerprint.as_ref())?,
            admitted_fingerprint: fingerprint(object, self.admitted_fingerprint.as_ref())?,
            compatible: self.compatible,
            incompatibilities: self.incompatibilities.clone(),
            partner_admitted_us: self.partner_admitted_us,
            reachable: self.reachable,
            last_fetch_error: self.last_fetch_error.clone(),
            sequence: self.sequence,
            // An unreadable digest counts as unknown: the next accepted
            // document is recorded with its own.
            content_digest: self
                .content_digest
                .as_deref()
                .and_then(|d| u128::from_str_radix(d, 16).ok()),
        })
    }
}

impl VirtualCloudPartnerAdmission {
    /// The core's admission, when this admission is for a partner of the
    /// virtual cloud `vc`: `spec.partner` is `<vc>-<party>`, mapped back to
    /// the party name.
    pub fn to_admission(&self, vc: &str) -> Result<Admission, ConversionError> {
        let object = self.metadata.name.clone().unwrap_or_default();
        let party = self
            .spec
            .partner
            .strip_prefix(vc)
            .and_then(|rest| rest.strip_prefix('-'))
            .ok_or_else(|| ConversionError::OtherVirtualCloud {
                object: object.clone(),
                partner: self.spec.partner.clone(),
                vc: vc.to_owned(),
            })?;
        let partner = PartyName::new(party).map_err(|source| ConversionError::Name {
            object: object.clone(),
            source,
        })?;
        Ok(Admission {
            pinned: fingerprint(&object, self.spec.fingerprint.as_ref())?,
            bound: fingerprint(
                &object,
                self.status.as_ref().and_then(|s| s.fingerprint.as_ref()),
            )?,
            name: object,
            partner,
        })
    }
}
