//! The Virtual Cloud state machine: everything one reconcile sees
//! ([`Observed`]), the ordered actions it decides on ([`Plan`], [`Action`]) and
//! the pure function between them, [`decide`].
//!
//! The rules, in short (the long form is in `decide`'s module):
//! - A VC leaves `admission` only through the **group barrier**: for every
//!   partner, in this reconcile, its document was fetched and verified; it is
//!   admitted here with its current fingerprint; its parameters equal ours;
//!   its membership view equals ours; and it reports having admitted every
//!   member's current certificate.
//! - Beyond the barrier the state follows local facts: MAC key share and key
//!   generation (`initializing`), configuration and services (`starting`),
//!   gateways (`ready`).
//! - **Never forward on stale facts.** A partner that cannot be reached makes
//!   the facts stale: the state holds (it may fall back on local facts, never
//!   advance) and no lifecycle action is planned. A fresh contradiction (a
//!   changed certificate, a revoked admission on either side, a changed
//!   membership or parameters) sends the VC back to `admission`; nothing
//!   created is deleted, and the same MAC share is reused when the group forms
//!   again.

mod barrier;
mod conditions;
mod decide;
mod group;
mod publish;
mod rest;
mod sorted;
#[cfg(test)]
mod tests;

pub use decide::decide;

use crate::certificate::{Certificate, Fingerprint};
use crate::condition::Timestamp;
use crate::configuration::Formation;
use crate::document::{DocumentBody, VerifiedDocument};
use crate::name::PartyName;
use crate::partner::{Admission, PartnerRecord, PartnerStatus, StoredPartner};
use crate::ports::{Applied, Event, KeyGeneration, VcKey};
use crate::spec::{Endpoint, SpecError, ValidatedSpec, VirtualCloudStatus};

/// This party's identity: operator configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalIdentity {
    /// This party's name.
    pub name: PartyName,
    /// This party's public Spalding endpoint.
    pub endpoint: Endpoint,
    /// This party's VCP certificate (the key stays with the adapter).
    pub certificate: Certificate,
}

/// The outcome of fetching one partner's document in this reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetch {
    /// Not attempted (the partner is no longer in the spec).
    Skipped,
    /// Fetched and verified.
    Fetched(Box<VerifiedDocument>),
    /// Failed or refused; the reason is safe to show.
    Failed(String),
}

/// What this reconcile knows about one partner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerObservation {
    /// The partner's name.
    pub name: PartyName,
    /// This reconcile's fetch.
    pub fetch: Fetch,
    /// What is stored about it, if anything.
    pub stored: Option<StoredPartner>,
    /// The first sequence number of the run of documents this process saw
    /// in a row up to the fetched one, all saying the same
    /// ([`crate::seen::Run::since`]); `None`: only the fetched one.
    pub seen_since: Option<u64>,
}

/// Everything one reconcile sees. Built by the [`crate::Reconciler`] from the
/// ports, or directly by tests and embedders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// Which VC.
    pub vc: VcKey,
    /// Its `metadata.generation`.
    pub generation: Option<i64>,
    /// Its spec, validated from this party's point of view.
    pub spec: Result<ValidatedSpec, SpecError>,
    /// Its current status.
    pub status: VirtualCloudStatus,
    /// This party.
    pub identity: LocalIdentity,
    /// Every partner in the spec or in storage.
    pub partners: Vec<PartnerObservation>,
    /// Every admission of this VC.
    pub admissions: Vec<Admission>,
    /// Whether the MAC key share Secret exists.
    pub mac_key_exists: bool,
    /// Key generation, if launched.
    pub key_generation: Option<KeyGeneration>,
    /// The configuration last written.
    pub configuration: Option<Formation>,
    /// The foundation services.
    pub services: Option<Applied>,
    /// The Istio gateways.
    pub gateways: Option<Applied>,
    /// The partner-info document body last published.
    pub published: Option<DocumentBody>,
    /// The time to stamp condition transitions with.
    pub now: Timestamp,
}

/// One step of a plan. Executing an action is idempotent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Store a partner's certificate in its ConfigMap.
    StoreCertificate {
        /// The partner.
        partner: PartyName,
        /// Its fetched certificate.
        certificate: Certificate,
    },
    /// Create or update a `VirtualCloudPartner`'s spec.
    UpsertPartner(PartnerRecord),
    /// Write a `VirtualCloudPartner`'s status (admitted, revoked, reachable…).
    UpdatePartnerStatus {
        /// The partner.
        partner: PartyName,
        /// Its new status.
        status: PartnerStatus,
    },
    /// Delete a partner that left the spec, with its certificate.
    RemovePartner {
        /// The partner.
        partner: PartyName,
    },
    /// Bind an unpinned admission to the fingerprint the operator was shown.
    BindAdmission {
        /// The admission object.
        admission: String,
        /// The fingerprint it now vouches for.
        fingerprint: Fingerprint,
    },
    /// Publish a new partner-info document body.
    PublishDocument(Box<DocumentBody>),
    /// Generate this party's MAC key shares and store them, create-only.
    CreateMacKeyShares,
    /// Launch MP-SPDZ key generation.
    LaunchKeyGeneration(Box<Formation>),
    /// Write the Carbyne Stack configuration.
    WriteConfiguration(Box<Formation>),
    /// Create the foundation services.
    CreateServices(Box<Formation>),
    /// Deploy the Istio mutual-TLS gateways.
    DeployGateways(Box<Formation>),
    /// Record an Event on the VC.
    RecordEvent(Event),
    /// Write the VC status.
    UpdateStatus(Box<VirtualCloudStatus>),
}

/// An ordered list of actions. Empty when the VC is at rest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The actions, in execution order.
    pub actions: Vec<Action>,
}

impl Plan {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// The status the plan writes, if any.
    pub fn status(&self) -> Option<&VirtualCloudStatus> {
        self.actions.iter().rev().find_map(|a| match a {
            Action::UpdateStatus(s) => Some(s.as_ref()),
            _ => None,
        })
    }
}
