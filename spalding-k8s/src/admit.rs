//! `spalding admit`: what an operator sees before admitting a partner —
//! its fingerprint, certificate, parameters and compatibility, read from the
//! `VirtualCloudPartner` record the operator keeps and the certificate
//! ConfigMap it points to — and the `VirtualCloudPartnerAdmission` pinned
//! to that fingerprint.
//!
//! [`show`] reads, [`check`] refuses (a fingerprint given out of band that
//! differs from the record's, a partner not fetched yet, an admission that
//! already exists for another certificate) and [`admit`] creates. Nothing is
//! written unless every check passed.

use std::fmt::Write as _;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde::Serialize;
use spalding_core::certificate::{Certificate, CertificateSummary};
use spalding_core::partner::CERTIFICATE_KEY;

use crate::cluster::VIRTUAL_CLOUD_LABEL;
use crate::crd::{
    MpcParameters, VirtualCloudPartner, VirtualCloudPartnerAdmission,
    VirtualCloudPartnerAdmissionSpec,
};
use crate::inspect::subject_alternative_names;

/// Why a partner could not be shown or admitted.
#[derive(Debug, thiserror::Error)]
pub enum AdmitError {
    /// An API call failed.
    #[error("{operation}: {source}")]
    Api {
        /// What was attempted.
        operation: String,
        /// Why it failed.
        source: kube::Error,
    },
    /// The VC has no record of this partner.
    #[error(
        "virtual cloud {namespace}/{vc} has no partner {party}: is it in the VirtualCloud's \
         spec.partners, and is `spalding operator` running?"
    )]
    NoPartner {
        /// The namespace.
        namespace: String,
        /// The VC.
        vc: String,
        /// The party asked for.
        party: String,
    },
    /// The partner's document was never fetched, so there is no certificate to admit.
    #[error(
        "partner {party} has not been fetched yet, so there is no certificate to admit{}",
        reason.as_ref().map(|r| format!(" (last fetch: {r})")).unwrap_or_default()
    )]
    NotFetched {
        /// The party.
        party: String,
        /// Why its last fetch failed, if it did.
        reason: Option<String>,
    },
    /// The fingerprint given out of band is not the partner's.
    #[error(
        "refusing to admit {party}: its certificate's fingerprint is {actual}, not the {expected} \
         you were given; nothing was created. Check the fingerprint with the partner's operator."
    )]
    FingerprintMismatch {
        /// The party.
        party: String,
        /// What `--fingerprint` said.
        expected: String,
        /// What the record shows.
        actual: String,
    },
    /// An admission for another (or no pinned) certificate exists; admissions are immutable.
    #[error(
        "admission {admission} already exists for {}; admissions cannot change: delete it \
         (kubectl delete virtualcloudpartneradmission {admission} -n {namespace}) and admit again",
        pinned.as_deref().map_or("whichever certificate it was bound to".to_owned(), |f| format!("certificate {f}"))
    )]
    AdmittedOtherwise {
        /// The namespace.
        namespace: String,
        /// The admission's name.
        admission: String,
        /// Its pinned fingerprint.
        pinned: Option<String>,
    },
    /// The stored certificate does not match the record (it is being replaced).
    #[error(
        "the stored certificate of {party} ({stored}) is not the one its record shows ({shown}); \
         the partner is changing its certificate: try again shortly"
    )]
    CertificateChanging {
        /// The party.
        party: String,
        /// The stored certificate's fingerprint.
        stored: String,
        /// The record's fingerprint.
        shown: String,
    },
}

/// The partner's certificate, as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateView {
    /// Subject, issuer, serial and validity.
    #[serde(flatten)]
    pub summary: CertificateSummary,
    /// DNS names and addresses it is issued for.
    pub subject_alternative_names: Vec<String>,
}

/// What an operator is shown about a partner before admitting it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PartnerView {
    /// The namespace.
    pub namespace: String,
    /// The VC.
    pub virtual_cloud: String,
    /// The party.
    pub party: String,
    /// The `VirtualCloudPartner` record's name, which an admission names.
    pub record: String,
    /// Its endpoint.
    pub endpoint: String,
    /// Its current certificate's fingerprint, once fetched.
    pub fingerprint: Option<String>,
    /// Its current certificate, once stored.
    pub certificate: Option<CertificateView>,
    /// Its parameters.
    pub parameters: MpcParameters,
    /// Its parameters equal ours.
    pub compatible: bool,
    /// Where they differ.
    pub incompatibilities: Vec<String>,
    /// Its last fetch succeeded.
    pub reachable: bool,
    /// Why its last fetch failed.
    pub last_fetch_error: Option<String>,
    /// It reports having admitted our certificate.
    pub partner_admitted_us: bool,
    /// The existing admission, if any: its pinned fingerprint (`None` if unpinned).
    pub existing_admission: Option<Option<String>>,
    /// Admitted here with its current certificate.
    pub admitted: bool,
}

/// What [`admit`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admitted {
    /// The admission was created.
    Created {
        /// Its name.
        name: String,
        /// The fingerprint it is pinned to.
        fingerprint: String,
    },
    /// An admission pinned to this fingerprint existed already.
    AlreadyAdmitted {
        /// Its name.
        name: String,
    },
}

fn api_error(operation: String) -> impl FnOnce(kube::Error) -> AdmitError {
    move |source| AdmitError::Api { operation, source }
}

/// Reads what [`PartnerView`] shows about `party` of `vc` in `namespace`.
pub async fn show(
    client: &Client,
    namespace: &str,
    vc: &str,
    party: &str,
) -> Result<PartnerView, AdmitError> {
    let records: Api<VirtualCloudPartner> = Api::namespaced(client.clone(), namespace);
    let wanted = party.to_ascii_lowercase();
    let record = records
        .list(&ListParams::default().labels(&format!("{VIRTUAL_CLOUD_LABEL}={vc}")))
        .await
        .map_err(api_error(format!("list partners of {namespace}/{vc}")))?
        .items
        .into_iter()
        .find(|r| r.spec.name == wanted)
        .ok_or_else(|| AdmitError::NoPartner {
            namespace: namespace.to_owned(),
            vc: vc.to_owned(),
            party: party.to_owned(),
        })?;
    let name = record.name_any();
    let status = record.status.clone().unwrap_or_default();
    let certificate = certificate(client, &record).await?;
    if let (Some(stored), Some(shown)) = (&certificate, &status.fingerprint)
        && stored.fingerprint().as_str() != shown
    {
        return Err(AdmitError::CertificateChanging {
            party: record.spec.name.clone(),
            stored: stored.fingerprint().to_string(),
            shown: shown.clone(),
        });
    }
    let admissions: Api<VirtualCloudPartnerAdmission> = Api::namespaced(client.clone(), namespace);
    let existing = admissions
        .get_opt(&name)
        .await
        .map_err(api_error(format!("read admission {namespace}/{name}")))?
        .map(|a| a.spec.fingerprint);
    Ok(PartnerView {
        namespace: namespace.to_owned(),
        virtual_cloud: vc.to_owned(),
        party: record.spec.name.clone(),
        record: name,
        endpoint: record.spec.endpoint.clone(),
        fingerprint: status.fingerprint,
        certificate: certificate.map(|c| CertificateView {
            subject_alternative_names: subject_alternative_names(&c),
            summary: c.summary().clone(),
        }),
        parameters: record.spec.parameters.clone(),
        compatible: status.compatible,
        incompatibilities: status.incompatibilities,
        reachable: status.reachable,
        last_fetch_error: status.last_fetch_error,
        partner_admitted_us: status.partner_admitted_us,
        existing_admission: existing,
        admitted: status.admitted,
    })
}

/// The certificate the record points to, if stored and parsable.
async fn certificate(
    client: &Client,
    record: &VirtualCloudPartner,
) -> Result<Option<Certificate>, AdmitError> {
    let reference = &record.spec.certificate;
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), &reference.namespace);
    let map = maps
        .get_opt(&reference.name)
        .await
        .map_err(api_error(format!(
            "read certificate {}/{}",
            reference.namespace, reference.name
        )))?;
    Ok(map
        .and_then(|m| m.data)
        .and_then(|d| d.get(CERTIFICATE_KEY).cloned())
        .and_then(|pem| Certificate::from_pem(&pem).ok()))
}

/// Whether `view` may be admitted, pinned to its fingerprint, given the
/// fingerprint the operator obtained out of band (if any). Returns the
/// fingerprint to pin.
pub fn check(view: &PartnerView, expected: Option<&str>) -> Result<String, AdmitError> {
    let actual = view
        .fingerprint
        .clone()
        .ok_or_else(|| AdmitError::NotFetched {
            party: view.party.clone(),
            reason: view.last_fetch_error.clone(),
        })?;
    if let Some(expected) = expected
        && !expected.trim().eq_ignore_ascii_case(&actual)
    {
        return Err(AdmitError::FingerprintMismatch {
            party: view.party.clone(),
            expected: expected.trim().to_owned(),
            actual,
        });
    }
    match &view.existing_admission {
        Some(Some(pinned)) if *pinned == actual => {}
        Some(pinned) => {
            return Err(AdmitError::AdmittedOtherwise {
                namespace: view.namespace.clone(),
                admission: view.record.clone(),
                pinned: pinned.clone(),
            });
        }
        None => {}
    }
    Ok(actual)
}

/// Creates the admission of `view` pinned to `fingerprint` (from [`check`]).
pub async fn admit(
    client: &Client,
    view: &PartnerView,
    fingerprint: &str,
) -> Result<Admitted, AdmitError> {
    if view.existing_admission.is_some() {
        return Ok(Admitted::AlreadyAdmitted {
            name: view.record.clone(),
        });
    }
    let mut admission = VirtualCloudPartnerAdmission::new(
        &view.record,
        VirtualCloudPartnerAdmissionSpec {
            partner: view.record.clone(),
            fingerprint: Some(fingerprint.to_owned()),
        },
    );
    admission.metadata.namespace = Some(view.namespace.clone());
    let admissions: Api<VirtualCloudPartnerAdmission> =
        Api::namespaced(client.clone(), &view.namespace);
    admissions
        .create(&PostParams::default(), &admission)
        .await
        .map_err(api_error(format!(
            "create admission {}/{}",
            view.namespace, view.record
        )))?;
    Ok(Admitted::Created {
        name: view.record.clone(),
        fingerprint: fingerprint.to_owned(),
    })
}

fn yes(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

impl PartnerView {
    /// A human-readable report of the partner.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Partner {} of virtual cloud {}/{}",
            self.party, self.namespace, self.virtual_cloud
        );
        let _ = writeln!(out, "  endpoint:            {}", self.endpoint);
        let _ = writeln!(
            out,
            "  fingerprint:         {}",
            self.fingerprint.as_deref().unwrap_or("- (not fetched yet)")
        );
        match &self.certificate {
            Some(c) => {
                let s = &c.summary;
                let _ = writeln!(out, "  certificate:");
                let _ = writeln!(out, "    subject:           {}", s.subject);
                let _ = writeln!(out, "    issuer:            {}", s.issuer);
                let sans = if c.subject_alternative_names.is_empty() {
                    "-".to_owned()
                } else {
                    c.subject_alternative_names.join(", ")
                };
                let _ = writeln!(out, "    SANs:              {sans}");
                let _ = writeln!(
                    out,
                    "    valid:             {} to {}",
                    s.not_before, s.not_after
                );
            }
            None => {
                let _ = writeln!(out, "  certificate:         - (not stored yet)");
            }
        }
        let p = &self.parameters;
        let _ = writeln!(out, "  parameters:");
        let _ = writeln!(out, "    prime:             {}", p.prime);
        let _ = writeln!(out, "    gf2nBitLength:     {}", p.gf2n_bit_length);
        let _ = writeln!(out, "    gf2nStorageSize:   {}", p.gf2n_storage_size);
        let _ = writeln!(
            out,
            "  compatible:          {}",
            if self.compatible { "yes" } else { "NO" }
        );
        for mismatch in &self.incompatibilities {
            let _ = writeln!(out, "    {mismatch}");
        }
        let _ = writeln!(out, "  reachable:           {}", yes(self.reachable));
        if let Some(error) = &self.last_fetch_error {
            let _ = writeln!(out, "    last fetch failed: {error}");
        }
        let _ = writeln!(
            out,
            "  admitted us:         {}",
            yes(self.partner_admitted_us)
        );
        let admission = match &self.existing_admission {
            None => "none".to_owned(),
            Some(Some(f)) => format!("{} (pinned to {f})", self.record),
            Some(None) => format!("{} (not pinned)", self.record),
        };
        let _ = writeln!(out, "  admission:           {admission}");
        out
    }
}

#[cfg(test)]
mod tests;
