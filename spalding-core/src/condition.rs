//! Status conditions in the Kubernetes convention (`type`, `status`, `reason`,
//! `message`, `observedGeneration`, `lastTransitionTime`), the condition types
//! and reasons Spalding uses, and the pure merge that moves
//! `lastTransitionTime` only when a condition's status really changes.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// A point in time in RFC 3339 form, as Kubernetes writes it. The core never
/// reads a clock: the caller passes the time to stamp conditions with.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub String);

impl Timestamp {
    /// Wraps an RFC 3339 string.
    pub fn new(rfc3339: impl Into<String>) -> Self {
        Self(rfc3339.into())
    }
}

/// `True`, `False` or `Unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// Spalding cannot tell yet.
    Unknown,
}

/// One status condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// The condition type, one of [`types`].
    #[serde(rename = "type")]
    pub type_: String,
    /// Whether it holds.
    pub status: ConditionStatus,
    /// A CamelCase reason, one of [`reasons`].
    pub reason: String,
    /// What a person needs to know, in words.
    pub message: String,
    /// The `metadata.generation` this condition was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When `status` last changed.
    pub last_transition_time: Timestamp,
}

/// A condition as [`crate::decide`] computes it, before it is stamped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionDraft {
    /// The condition type.
    pub type_: &'static str,
    /// Whether it holds.
    pub status: ConditionStatus,
    /// The reason.
    pub reason: &'static str,
    /// The message; static where it can be, so an unchanged status costs no allocation.
    pub message: Cow<'static, str>,
}

impl ConditionDraft {
    /// A condition that holds.
    pub fn holds(
        type_: &'static str,
        reason: &'static str,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            type_,
            status: ConditionStatus::True,
            reason,
            message: message.into(),
        }
    }

    /// A condition that does not hold.
    pub fn fails(
        type_: &'static str,
        reason: &'static str,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            type_,
            status: ConditionStatus::False,
            reason,
            message: message.into(),
        }
    }

    /// A condition Spalding cannot evaluate yet.
    pub fn unknown(
        type_: &'static str,
        reason: &'static str,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            type_,
            status: ConditionStatus::Unknown,
            reason,
            message: message.into(),
        }
    }
}

/// Stamps `drafts` against the `previous` conditions: a condition keeps its
/// `lastTransitionTime` unless its status changed (or it is new), in which
/// case it gets `now`. The result follows the order of `drafts`.
///
/// ```
/// use spalding_core::condition::{merge, ConditionDraft, Timestamp, types, reasons};
/// let t0 = Timestamp::new("2026-01-01T00:00:00Z");
/// let t1 = Timestamp::new("2026-01-01T00:05:00Z");
/// let first = merge(&[], vec![ConditionDraft::fails(types::READY, reasons::WAITING, "waiting")], Some(1), &t0);
/// // Same status, new message: the transition time stays.
/// let again = merge(&first, vec![ConditionDraft::fails(types::READY, reasons::WAITING, "still")], Some(1), &t1);
/// assert_eq!(again[0].last_transition_time, t0);
/// // A real transition moves it.
/// let done = merge(&again, vec![ConditionDraft::holds(types::READY, reasons::READY, "ready")], Some(1), &t1);
/// assert_eq!(done[0].last_transition_time, t1);
/// ```
pub fn merge(
    previous: &[Condition],
    drafts: Vec<ConditionDraft>,
    observed_generation: Option<i64>,
    now: &Timestamp,
) -> Vec<Condition> {
    drafts
        .into_iter()
        .map(|draft| {
            let last_transition_time = previous
                .iter()
                .find(|c| c.type_ == draft.type_ && c.status == draft.status)
                .map_or_else(|| now.clone(), |c| c.last_transition_time.clone());
            Condition {
                type_: draft.type_.to_owned(),
                status: draft.status,
                reason: draft.reason.to_owned(),
                message: draft.message.into_owned(),
                observed_generation,
                last_transition_time,
            }
        })
        .collect()
}

/// True when `conditions` equal what [`merge`] would produce from `drafts`,
/// ignoring transition times, which `merge` would keep. Lets `decide` find
/// that nothing changed without allocating.
pub fn unchanged(
    conditions: &[Condition],
    drafts: &[ConditionDraft],
    observed_generation: Option<i64>,
) -> bool {
    conditions.len() == drafts.len()
        && conditions.iter().zip(drafts).all(|(c, d)| {
            c.type_ == d.type_
                && c.status == d.status
                && c.reason == d.reason
                && c.message == d.message
                && c.observed_generation == observed_generation
        })
}

/// Condition types.
pub mod types {
    /// Every partner's document was fetched and verified in this reconcile.
    pub const PARTNERS_REACHABLE: &str = "PartnersReachable";
    /// Every partner's parameters equal ours.
    pub const PARAMETERS_COMPATIBLE: &str = "ParametersCompatible";
    /// This party admitted every partner's current certificate.
    pub const PARTNERS_ADMITTED: &str = "PartnersAdmitted";
    /// Every partner sees the same membership and admitted every member.
    pub const MUTUALLY_ADMITTED: &str = "MutuallyAdmitted";
    /// The MAC key share exists and MP-SPDZ key generation succeeded.
    pub const KEYS_GENERATED: &str = "KeysGenerated";
    /// The Carbyne Stack configuration is written and the services are ready.
    pub const SERVICES_READY: &str = "ServicesReady";
    /// The Istio mutual-TLS gateways are deployed.
    pub const GATEWAYS_READY: &str = "GatewaysReady";
    /// The VC is ready for use.
    pub const READY: &str = "Ready";
    /// The spec is valid.
    pub const SPEC_VALID: &str = "SpecValid";
}

/// Condition reasons.
pub mod reasons {
    /// The spec is valid.
    pub const VALID: &str = "Valid";
    /// The spec is invalid.
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// Every partner answered.
    pub const FETCHED: &str = "Fetched";
    /// A partner's document could not be fetched or was refused.
    pub const FETCH_FAILED: &str = "FetchFailed";
    /// Parameters are equal.
    pub const COMPATIBLE: &str = "Compatible";
    /// Parameters differ.
    pub const INCOMPATIBLE: &str = "Incompatible";
    /// Every partner is admitted with its current certificate.
    pub const ADMITTED: &str = "Admitted";
    /// A partner has no admission.
    pub const AWAITING_ADMISSION: &str = "AwaitingAdmission";
    /// A partner's certificate differs from the admitted one.
    pub const CERTIFICATE_CHANGED: &str = "CertificateChanged";
    /// Every party admitted every other.
    pub const MUTUAL: &str = "Mutual";
    /// A partner sees a different set of members.
    pub const MEMBERSHIP_MISMATCH: &str = "MembershipMismatch";
    /// A partner has not (yet) admitted a member's current certificate.
    pub const AWAITING_PARTNER_ADMISSION: &str = "AwaitingPartnerAdmission";
    /// Key generation was launched and has not finished.
    pub const KEY_GENERATION_RUNNING: &str = "KeyGenerationRunning";
    /// Key generation failed.
    pub const KEY_GENERATION_FAILED: &str = "KeyGenerationFailed";
    /// Keys exist.
    pub const GENERATED: &str = "Generated";
    /// Waits for an earlier step.
    pub const WAITING: &str = "Waiting";
    /// Services are starting.
    pub const SERVICES_STARTING: &str = "ServicesStarting";
    /// Gateways are being deployed.
    pub const GATEWAYS_DEPLOYING: &str = "GatewaysDeploying";
    /// Everything is in place.
    pub const READY: &str = "Ready";
    /// The VC moved to another state (an Event reason).
    pub const STATE_CHANGED: &str = "StateChanged";
    /// Some partners' parameters are not known yet.
    pub const UNKNOWN: &str = "Unknown";
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn status() -> impl Strategy<Value = ConditionStatus> {
        prop_oneof![
            Just(ConditionStatus::True),
            Just(ConditionStatus::False),
            Just(ConditionStatus::Unknown)
        ]
    }

    proptest! {
        /// lastTransitionTime moves exactly when the status changes.
        #[test]
        fn transition_time_moves_only_on_status_change(
            steps in proptest::collection::vec((status(), "[a-z]{0,3}"), 1..20)
        ) {
            let mut conditions: Vec<Condition> = Vec::new();
            for (i, (status, message)) in steps.into_iter().enumerate() {
                let now = Timestamp::new(format!("t{i}"));
                let before = conditions.first().cloned();
                let draft = ConditionDraft { type_: types::READY, status, reason: reasons::WAITING, message: message.into() };
                conditions = merge(&conditions, vec![draft], Some(1), &now);
                let after = &conditions[0];
                match before {
                    Some(b) if b.status == after.status =>
                        prop_assert_eq!(&after.last_transition_time, &b.last_transition_time),
                    _ => prop_assert_eq!(&after.last_transition_time, &now),
                }
            }
        }
    }

    #[test]
    fn unchanged_detects_message_and_generation_changes() {
        let t = Timestamp::new("t");
        let drafts = vec![ConditionDraft::holds(types::READY, reasons::READY, "ok")];
        let merged = merge(&[], drafts.clone(), Some(2), &t);
        assert!(unchanged(&merged, &drafts, Some(2)));
        assert!(!unchanged(&merged, &drafts, Some(3)));
        let other = vec![ConditionDraft::holds(types::READY, reasons::READY, "other")];
        assert!(!unchanged(&merged, &other, Some(2)));
    }
}
