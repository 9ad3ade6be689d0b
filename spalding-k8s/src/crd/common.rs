//! Schema types shared by the three custom resources: MPC parameters as
//! decimal strings and status conditions in the Kubernetes convention, each
//! mirroring a plain type of `spalding-core` with the schema validation the
//! API server applies before Spalding ever sees an object.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use spalding_core::condition::{Condition, ConditionStatus, Timestamp};
use spalding_core::parameters::Parameters;

/// The MPC field parameters every party of a Virtual Cloud must share.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MpcParameters {
    /// The gfp prime, as a decimal string (the Carbyne Stack default is
    /// 198766463529478683931867765928436695041). Spalding checks that it is prime.
    #[schemars(pattern(r"^[0-9]+$"), length(min = 1, max = 1300))]
    pub prime: String,
    /// Montgomery r = 2^wordSize mod prime, as a decimal string; derived when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^[0-9]+$"), length(min = 1, max = 1300))]
    pub r: Option<String>,
    /// r^-1 mod prime, as a decimal string; derived when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^[0-9]+$"), length(min = 1, max = 1300))]
    pub r_inv: Option<String>,
    /// Montgomery word size in bits; defaults to 64 times the number of
    /// 64-bit words of the prime (128 for the Carbyne Stack default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 8192))]
    pub word_size: Option<u32>,
    /// Bit length of the gf2n field (Carbyne Stack default 40).
    #[schemars(range(min = 1, max = 128))]
    pub gf2n_bit_length: u32,
    /// Storage size of a gf2n element in bytes (Carbyne Stack default 8).
    #[schemars(range(min = 1, max = 16))]
    pub gf2n_storage_size: u32,
}

impl From<MpcParameters> for Parameters {
    fn from(p: MpcParameters) -> Self {
        Parameters {
            prime: p.prime,
            r: p.r,
            r_inv: p.r_inv,
            word_size: p.word_size,
            gf2n_bit_length: p.gf2n_bit_length,
            gf2n_storage_size: p.gf2n_storage_size,
        }
    }
}

impl From<Parameters> for MpcParameters {
    fn from(p: Parameters) -> Self {
        MpcParameters {
            prime: p.prime,
            r: p.r,
            r_inv: p.r_inv,
            word_size: p.word_size,
            gf2n_bit_length: p.gf2n_bit_length,
            gf2n_storage_size: p.gf2n_storage_size,
        }
    }
}

/// Whether a condition holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ConditionState {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// Spalding cannot tell yet.
    Unknown,
}

/// One status condition, following the Kubernetes API conventions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusCondition {
    /// The condition type, e.g. PartnersAdmitted or Ready.
    #[serde(rename = "type")]
    #[schemars(length(min = 1, max = 316))]
    pub type_: String,
    /// Whether the condition holds: True, False or Unknown.
    pub status: ConditionState,
    /// A CamelCase reason for the condition's last transition.
    #[schemars(length(max = 1024))]
    pub reason: String,
    /// What a person needs to know, in words.
    #[schemars(length(max = 32768))]
    pub message: String,
    /// The metadata.generation this condition was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When the status of the condition last changed (RFC 3339).
    #[schemars(extend("format" = "date-time"))]
    pub last_transition_time: String,
}

impl From<&Condition> for StatusCondition {
    fn from(c: &Condition) -> Self {
        StatusCondition {
            type_: c.type_.clone(),
            status: match c.status {
                ConditionStatus::True => ConditionState::True,
                ConditionStatus::False => ConditionState::False,
                ConditionStatus::Unknown => ConditionState::Unknown,
            },
            reason: c.reason.clone(),
            message: c.message.clone(),
            observed_generation: c.observed_generation,
            last_transition_time: c.last_transition_time.0.clone(),
        }
    }
}

impl From<&StatusCondition> for Condition {
    fn from(c: &StatusCondition) -> Self {
        Condition {
            type_: c.type_.clone(),
            status: match c.status {
                ConditionState::True => ConditionStatus::True,
                ConditionState::False => ConditionStatus::False,
                ConditionState::Unknown => ConditionStatus::Unknown,
            },
            reason: c.reason.clone(),
            message: c.message.clone(),
            observed_generation: c.observed_generation,
            last_transition_time: Timestamp::new(c.last_transition_time.clone()),
        }
    }
}
