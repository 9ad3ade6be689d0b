//! The ports through which the core acts on the world: [`Cluster`] (the
//! Kubernetes objects of one party), [`PartnerTransport`] (fetching partner
//! documents), [`MpcLauncher`] (MP-SPDZ key generation) and [`Entropy`]
//! (randomness for MAC key shares). Adapters implement them: `spalding-k8s`
//! against Kubernetes and HTTPS, [`crate::memory`] in memory. With the `mocks`
//! feature, mockall mocks (`MockCluster`, …) are available to other crates.

use async_trait::async_trait;

use crate::certificate::{Certificate, Fingerprint};
use crate::configuration::Formation;
use crate::document::{DocumentBody, PartnerDocument};
use crate::mac::MacKeyShares;
use crate::name::PartyName;
use crate::partner::{Admission, PartnerRecord, PartnerStatus, StoredPartner};
use crate::spec::{Endpoint, VirtualCloudSpec, VirtualCloudStatus};

/// Identifies a VC: its namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VcKey {
    /// Namespace.
    pub namespace: String,
    /// Name, the same at every party.
    pub name: String,
}

impl VcKey {
    /// A key from namespace and name.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

/// A `VirtualCloud` object as read from the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualCloudObject {
    /// `metadata.generation`.
    pub generation: Option<i64>,
    /// The spec as written.
    pub spec: VirtualCloudSpec,
    /// The status as last written.
    pub status: VirtualCloudStatus,
}

/// Something an adapter applied from a [`Formation`], and whether it is ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The formation it was built from.
    pub formation: Formation,
    /// Whether it reports ready.
    pub ready: bool,
}

/// Where MP-SPDZ key generation stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyGenerationPhase {
    /// Created, not yet running.
    Pending,
    /// Running (and retrying while partners start).
    Running,
    /// HE keys are on the volume.
    Succeeded,
    /// Gave up; the reason is for people.
    Failed {
        /// Why.
        reason: String,
    },
}

/// Key generation as observed: what it was launched for and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyGeneration {
    /// The formation it was launched for.
    pub formation: Formation,
    /// Its phase.
    pub phase: KeyGenerationPhase,
}

/// The outcome of a create-only write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateOutcome {
    /// The object was created.
    Created,
    /// It existed already and was left untouched.
    AlreadyExisted,
}

/// An event to record on the VC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Normal or warning.
    pub kind: EventKind,
    /// CamelCase reason.
    pub reason: &'static str,
    /// What happened.
    pub message: String,
}

/// Kubernetes event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Something expected happened.
    Normal,
    /// Something needs attention.
    Warning,
}

/// An error of the cluster adapter; the message says what failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation}: {message}")]
pub struct ClusterError {
    /// What was attempted, e.g. "update status of vc foo".
    pub operation: String,
    /// What went wrong.
    pub message: String,
    /// Whether retrying soon may help (conflicts, timeouts).
    pub transient: bool,
}

/// A fetch that failed, in words safe to show (never secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TransportError(pub String);

/// An error of the MPC launcher.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LauncherError(pub String);

/// The entropy source failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EntropyError(pub String);

/// The objects of one party's cluster that Spalding reads and writes.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Cluster: Send + Sync {
    /// The VC, or `None` when it does not exist (any more).
    async fn virtual_cloud(&self, vc: &VcKey) -> Result<Option<VirtualCloudObject>, ClusterError>;
    /// Every `VirtualCloudPartner` of the VC.
    async fn partners(&self, vc: &VcKey) -> Result<Vec<StoredPartner>, ClusterError>;
    /// Every `VirtualCloudPartnerAdmission` of the VC.
    async fn admissions(&self, vc: &VcKey) -> Result<Vec<Admission>, ClusterError>;
    /// Whether the MAC key share Secret exists.
    async fn mac_key_shares_exist(&self, vc: &VcKey) -> Result<bool, ClusterError>;
    /// Creates the MAC key share Secret unless it exists; never replaces it.
    async fn create_mac_key_shares(
        &self,
        vc: &VcKey,
        shares: &MacKeyShares,
    ) -> Result<CreateOutcome, ClusterError>;
    /// The configuration last written, as the formation it was rendered from.
    async fn configuration(&self, vc: &VcKey) -> Result<Option<Formation>, ClusterError>;
    /// Writes the Carbyne Stack configuration for `formation`.
    async fn write_configuration(
        &self,
        vc: &VcKey,
        formation: &Formation,
    ) -> Result<(), ClusterError>;
    /// The foundation services, if created.
    async fn services(&self, vc: &VcKey) -> Result<Option<Applied>, ClusterError>;
    /// Creates or updates the foundation services for `formation`.
    async fn create_services(&self, vc: &VcKey, formation: &Formation) -> Result<(), ClusterError>;
    /// The Istio gateways, if deployed.
    async fn gateways(&self, vc: &VcKey) -> Result<Option<Applied>, ClusterError>;
    /// Deploys the Istio gateways for `formation`.
    async fn deploy_gateways(&self, vc: &VcKey, formation: &Formation) -> Result<(), ClusterError>;
    /// The partner-info document body last published.
    async fn published_document(&self, vc: &VcKey) -> Result<Option<DocumentBody>, ClusterError>;
    /// Publishes a new document body (the adapter numbers and signs it).
    async fn publish_document(&self, vc: &VcKey, body: &DocumentBody) -> Result<(), ClusterError>;
    /// Stores `partner`'s certificate in its ConfigMap.
    async fn store_certificate(
        &self,
        vc: &VcKey,
        partner: &PartyName,
        certificate: &Certificate,
    ) -> Result<(), ClusterError>;
    /// Creates or updates a `VirtualCloudPartner`'s spec.
    async fn upsert_partner(&self, vc: &VcKey, record: &PartnerRecord) -> Result<(), ClusterError>;
    /// Writes a `VirtualCloudPartner`'s status.
    async fn update_partner_status(
        &self,
        vc: &VcKey,
        partner: &PartyName,
        status: &PartnerStatus,
    ) -> Result<(), ClusterError>;
    /// Deletes a partner no longer in the spec, and its certificate ConfigMap.
    async fn remove_partner(&self, vc: &VcKey, partner: &PartyName) -> Result<(), ClusterError>;
    /// Records in an unpinned admission's status the fingerprint it is bound to.
    async fn bind_admission(
        &self,
        vc: &VcKey,
        admission: &str,
        fingerprint: &Fingerprint,
    ) -> Result<(), ClusterError>;
    /// Records an Event on the VC.
    async fn record_event(&self, vc: &VcKey, event: &Event) -> Result<(), ClusterError>;
    /// Writes the VC's status.
    async fn update_status(
        &self,
        vc: &VcKey,
        status: &VirtualCloudStatus,
    ) -> Result<(), ClusterError>;
}

/// Fetches partner documents.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PartnerTransport: Send + Sync {
    /// Fetches the document of `vc` from the partner at `endpoint`. Returns
    /// only documents whose transport-level checks (signature, rollback,
    /// limits) passed; the core verifies the content.
    async fn fetch(&self, vc: &str, endpoint: &Endpoint)
    -> Result<PartnerDocument, TransportError>;
}

/// Runs MP-SPDZ key generation.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait MpcLauncher: Send + Sync {
    /// Key generation as it stands, if launched.
    async fn key_generation(&self, vc: &VcKey) -> Result<Option<KeyGeneration>, LauncherError>;
    /// Launches key generation for `formation`, replacing one for another formation.
    async fn launch_key_generation(
        &self,
        vc: &VcKey,
        formation: &Formation,
    ) -> Result<(), LauncherError>;
}

/// The document could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SignError(pub String);

/// Signs partner-info documents with the party's VCP key. Implemented where
/// the key lives (`spalding-k8s`); the core only fixes the signed bytes
/// ([`crate::document::canonical_bytes`]).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait DocumentSigner: Send + Sync {
    /// The signed document for `body` with sequence number `sequence`.
    fn sign(&self, body: &DocumentBody, sequence: u64) -> Result<PartnerDocument, SignError>;
}

/// A source of cryptographically secure random bytes.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Entropy: Send + Sync {
    /// Fills `dest` with random bytes.
    fn fill(&self, dest: &mut [u8]) -> Result<(), EntropyError>;
}
