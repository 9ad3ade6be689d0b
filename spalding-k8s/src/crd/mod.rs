//! Spalding's custom resources, group `carbynestack.io`, version `v1`:
//! [`VirtualCloud`] (`vc`), [`VirtualCloudPartner`] (`vcp`) and
//! [`VirtualCloudPartnerAdmission`] (`vcpa`). The schemas carry a description
//! on every field and the validation the API server applies (DNS-1123 names,
//! `https://` endpoints, decimal strings, fingerprints, CEL rules for unique
//! partners and immutable admissions). The types mirror the core's plain,
//! kube-independent types and convert to and from them; [`crds_yaml`] renders
//! the definitions as `spalding crd` prints them and `deploy/crds.yaml` holds them.

mod common;
mod partner;
#[cfg(test)]
mod tests;
mod virtual_cloud;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

pub use self::common::{ConditionState, MpcParameters, StatusCondition};
pub use self::partner::{
    CertificateReference, ConversionError, VirtualCloudPartner, VirtualCloudPartnerAdmission,
    VirtualCloudPartnerAdmissionSpec, VirtualCloudPartnerAdmissionStatus, VirtualCloudPartnerSpec,
    VirtualCloudPartnerStatus,
};
pub use self::virtual_cloud::{
    VirtualCloud, VirtualCloudPartnerEntry, VirtualCloudSpec, VirtualCloudState, VirtualCloudStatus,
};

/// The API group of Spalding's resources.
pub const GROUP: &str = "carbynestack.io";

/// The three custom resource definitions.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![
        VirtualCloud::crd(),
        VirtualCloudPartner::crd(),
        VirtualCloudPartnerAdmission::crd(),
    ]
}

/// Why the definitions could not be rendered.
#[derive(Debug, thiserror::Error)]
#[error("rendering the custom resource definitions as YAML: {0}")]
pub struct RenderError(#[from] serde_norway::Error);

/// The three definitions as one multi-document YAML stream, as `kubectl apply` reads it.
pub fn crds_yaml() -> Result<String, RenderError> {
    let mut out = String::new();
    for crd in crds() {
        out.push_str("---\n");
        out.push_str(&serde_norway::to_string(&crd)?);
    }
    Ok(out)
}
