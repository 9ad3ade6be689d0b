//! The `VirtualCloud` custom resource (short name `vc`): the spec a user
//! writes (parameters and partners) and the status Spalding reports, with
//! conversions to and from the core's kube-independent
//! [`spalding_core::spec::VirtualCloudSpec`] and
//! [`spalding_core::spec::VirtualCloudStatus`].

// kube-derive's repeated `printcolumn(type_ = …)` looks like duplicated attributes to clippy.
#![allow(clippy::duplicated_attributes)]

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use spalding_core::spec::{self, PartnerEntry, State};

use super::common::{MpcParameters, StatusCondition};

/// A Virtual Cloud formed with other Carbyne Stack Virtual Cloud Providers.
/// The name is the same at every party.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[kube(
    group = "carbynestack.io",
    version = "v1",
    kind = "VirtualCloud",
    plural = "virtualclouds",
    shortname = "vc",
    category = "carbynestack",
    namespaced,
    status = "VirtualCloudStatus",
    derive = "PartialEq",
    doc = "A Carbyne Stack Virtual Cloud formed by this party and its partners.",
    validation = Rule::new("self.metadata.name.size() <= 63").message("a VirtualCloud name has at most 63 characters: Spalding uses it as a label value"),
    printcolumn(name = "State", type_ = "string", json_path = ".status.state", description = "The lifecycle state"),
    printcolumn(name = "Player", type_ = "integer", json_path = ".status.playerId", description = "This party's player number"),
    printcolumn(name = "Players", type_ = "integer", json_path = ".status.playerCount", description = "Number of players"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct VirtualCloudSpec {
    /// The MPC field parameters every party must share.
    pub parameters: MpcParameters,
    /// The other parties of the Virtual Cloud; this party is not listed.
    #[schemars(length(min = 1, max = 128))]
    #[x_kube(validation = Rule::new("self.all(p, self.exists_one(q, q.name == p.name))").message("partner names must be unique"))]
    #[x_kube(validation = Rule::new("self.all(p, self.exists_one(q, q.endpoint == p.endpoint))").message("partner endpoints must be unique"))]
    pub partners: Vec<VirtualCloudPartnerEntry>,
}

/// One partner of a Virtual Cloud.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct VirtualCloudPartnerEntry {
    /// The partner's party name, a DNS-1123 label (lowercase letters, digits and '-').
    #[schemars(pattern(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"), length(min = 1, max = 63))]
    pub name: String,
    /// The partner's Spalding base URL, https only; its partner-info
    /// document is served at {endpoint}/v1/virtual-clouds/{name}.
    #[schemars(
        pattern(r"^https://[^\s@?#/]+(/[^\s@?#]*)?$"),
        length(min = 9, max = 2048)
    )]
    pub endpoint: String,
}

/// The lifecycle state of a Virtual Cloud.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum VirtualCloudState {
    /// Partners are fetched and admitted; waits until every party admitted every other.
    #[default]
    Admission,
    /// MAC key shares and HE keys are being generated.
    Initializing,
    /// Configuration is written and the foundation services start.
    Starting,
    /// Services run and are exposed through the gateways.
    Ready,
}

/// What Spalding reports about a Virtual Cloud.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VirtualCloudStatus {
    /// The lifecycle state: admission, initializing, starting or ready.
    #[serde(default)]
    pub state: VirtualCloudState,
    /// This party's player number (0-based; player 0 is the Carbyne Stack master).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub player_id: Option<u32>,
    /// Number of players, this party included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub player_count: Option<u32>,
    /// The metadata.generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Conditions saying what holds and what is missing.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<StatusCondition>,
    /// No partner-info document of this VC was published with a higher
    /// sequence number: where numbering continues if the document's
    /// ConfigMap is lost (see `spalding_core::sequence`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_sequence: Option<u64>,
}

impl From<VirtualCloudState> for State {
    fn from(s: VirtualCloudState) -> Self {
        match s {
            VirtualCloudState::Admission => State::Admission,
            VirtualCloudState::Initializing => State::Initializing,
            VirtualCloudState::Starting => State::Starting,
            VirtualCloudState::Ready => State::Ready,
        }
    }
}

impl From<State> for VirtualCloudState {
    fn from(s: State) -> Self {
        match s {
            State::Admission => VirtualCloudState::Admission,
            State::Initializing => VirtualCloudState::Initializing,
            State::Starting => VirtualCloudState::Starting,
            State::Ready => VirtualCloudState::Ready,
        }
    }
}

impl From<&VirtualCloudSpec> for spec::VirtualCloudSpec {
    fn from(s: &VirtualCloudSpec) -> Self {
        spec::VirtualCloudSpec {
            parameters: s.parameters.clone().into(),
            partners: s
                .partners
                .iter()
                .map(|p| PartnerEntry {
                    name: p.name.clone(),
                    endpoint: p.endpoint.clone(),
                })
                .collect(),
        }
    }
}

impl From<&VirtualCloudStatus> for spec::VirtualCloudStatus {
    fn from(s: &VirtualCloudStatus) -> Self {
        spec::VirtualCloudStatus {
            state: s.state.into(),
            player_id: s.player_id,
            player_count: s.player_count,
            observed_generation: s.observed_generation,
            conditions: s.conditions.iter().map(Into::into).collect(),
        }
    }
}

impl From<&spec::VirtualCloudStatus> for VirtualCloudStatus {
    fn from(s: &spec::VirtualCloudStatus) -> Self {
        VirtualCloudStatus {
            state: s.state.into(),
            player_id: s.player_id,
            player_count: s.player_count,
            observed_generation: s.observed_generation,
            conditions: s.conditions.iter().map(Into::into).collect(),
            document_sequence: None,
        }
    }
}
