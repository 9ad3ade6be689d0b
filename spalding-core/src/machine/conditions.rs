//! The VC's conditions and Events, computed from the facts `decide` gathered.
//! Conditions that hold carry static messages, so an unchanged status is
//! recognised without allocating; conditions that fail name the partners and
//! what to do.

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::condition::{ConditionDraft, ConditionStatus, reasons, types};
use crate::machine::barrier::{Block, PartnerEval, Verdict};
use crate::machine::decide::Barrier;
use crate::name::PartyName;
use crate::ports::{Event, EventKind, KeyGenerationPhase};
use crate::spec::{State, VirtualCloudStatus};

/// Reasons that deserve a Warning Event when a condition turns to them.
const WARNING_REASONS: &[&str] = &[
    reasons::INVALID_SPEC,
    reasons::FETCH_FAILED,
    reasons::INCOMPATIBLE,
    reasons::CERTIFICATE_CHANGED,
    reasons::MEMBERSHIP_MISMATCH,
    reasons::KEY_GENERATION_FAILED,
];

/// What the conditions are computed from.
pub(crate) struct Facts<'a, 'b> {
    pub evals: &'b [PartnerEval<'a>],
    /// This party's name.
    pub us: &'b PartyName,
    pub barrier: Barrier,
    pub key_phase: Option<&'b KeyGenerationPhase>,
    pub keys_ok: bool,
    pub config_ok: bool,
    pub services_ok: bool,
    pub gateways_ok: bool,
    pub state: State,
}

/// The conditions when everything holds, in the order of [`drafts`]: a VC
/// at rest compares its status with these without drafting anything.
pub(crate) static HOLDING: [ConditionDraft; 9] = [
    holding(types::SPEC_VALID, reasons::VALID, "the spec is valid"),
    holding(
        types::PARTNERS_REACHABLE,
        reasons::FETCHED,
        "every partner's document was fetched and verified",
    ),
    holding(
        types::PARAMETERS_COMPATIBLE,
        reasons::COMPATIBLE,
        "every partner's parameters equal ours",
    ),
    holding(
        types::PARTNERS_ADMITTED,
        reasons::ADMITTED,
        "every partner is admitted with its current certificate",
    ),
    holding(
        types::MUTUALLY_ADMITTED,
        reasons::MUTUAL,
        "every partner sees the same members and admitted each of them",
    ),
    holding(
        types::KEYS_GENERATED,
        reasons::GENERATED,
        "MAC key share stored and HE keys generated",
    ),
    holding(
        types::SERVICES_READY,
        reasons::READY,
        "configuration written and foundation services ready",
    ),
    holding(
        types::GATEWAYS_READY,
        reasons::READY,
        "Istio mutual-TLS gateways deployed",
    ),
    holding(types::READY, reasons::READY, "the virtual cloud is ready"),
];

/// Positions in [`HOLDING`].
const SPEC_VALID: usize = 0;
const REACHABLE: usize = 1;
const COMPATIBLE: usize = 2;
const ADMITTED: usize = 3;
const MUTUAL: usize = 4;
const KEYS: usize = 5;
const SERVICES: usize = 6;
const GATEWAYS: usize = 7;
const READY: usize = 8;

/// A condition that holds, with a static message.
const fn holding(
    type_: &'static str,
    reason: &'static str,
    message: &'static str,
) -> ConditionDraft {
    ConditionDraft {
        type_,
        status: ConditionStatus::True,
        reason,
        message: Cow::Borrowed(message),
    }
}

/// Whether every condition holds, so that [`drafts`] would yield [`HOLDING`]:
/// the VC is ready and every partner was fetched now, is admitted,
/// compatible and ready.
pub(crate) fn all_hold(f: &Facts<'_, '_>) -> bool {
    f.state == State::Ready
        && f.barrier == Barrier::Holds
        && f.keys_ok
        && f.config_ok
        && f.services_ok
        && f.gateways_ok
        && f.evals.iter().all(|e| {
            e.document.is_some()
                && e.fetch_error.is_none()
                && e.admitted
                && e.compatible
                && e.verdict == Verdict::Ready
        })
}

/// Joins `"{name}: {detail}"` parts with `"; "`.
fn list<'x>(parts: impl Iterator<Item = (&'x str, String)>) -> String {
    let mut out = String::new();
    for (name, detail) in parts {
        if !out.is_empty() {
            out.push_str("; ");
        }
        let _ = write!(out, "{name}: {detail}");
    }
    out
}

/// The conditions, in a fixed order.
pub(crate) fn drafts(f: &Facts<'_, '_>) -> Vec<ConditionDraft> {
    let mut out = Vec::with_capacity(9);
    out.push(HOLDING[SPEC_VALID].clone());
    out.push(reachable(f));
    out.push(compatible(f));
    out.push(admitted(f));
    out.push(mutual(f));
    out.push(keys(f));
    out.push(services(f));
    out.push(gateways(f));
    let ready = if f.state == State::Ready {
        HOLDING[READY].clone()
    } else {
        match out.iter().find(|d| d.status != ConditionStatus::True) {
            Some(first) => ConditionDraft::fails(
                types::READY,
                first.reason,
                format!("{}: {}", first.type_, first.message),
            ),
            None => ConditionDraft::fails(
                types::READY,
                reasons::WAITING,
                "waiting for the next reconcile",
            ),
        }
    };
    out.push(ready);
    out
}

fn reachable(f: &Facts<'_, '_>) -> ConditionDraft {
    let failed = f.evals.iter().filter_map(|e| {
        e.fetch_error
            .map(|r| (e.partner.name.as_str(), r.to_owned()))
    });
    let message = list(failed);
    if message.is_empty() {
        HOLDING[REACHABLE].clone()
    } else {
        ConditionDraft::fails(types::PARTNERS_REACHABLE, reasons::FETCH_FAILED, message)
    }
}

fn compatible(f: &Facts<'_, '_>) -> ConditionDraft {
    let incompatible = f
        .evals
        .iter()
        .filter(|e| e.document.is_some() && !e.compatible)
        .map(|e| {
            let detail = e
                .mismatches
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            (e.partner.name.as_str(), detail)
        });
    let message = list(incompatible);
    if !message.is_empty() {
        return ConditionDraft::fails(types::PARAMETERS_COMPATIBLE, reasons::INCOMPATIBLE, message);
    }
    let unknown: Vec<&str> = f
        .evals
        .iter()
        .filter(|e| e.document.is_none() && !e.compatible)
        .map(|e| e.partner.name.as_str())
        .collect();
    if unknown.is_empty() {
        HOLDING[COMPATIBLE].clone()
    } else {
        ConditionDraft::unknown(
            types::PARAMETERS_COMPATIBLE,
            reasons::UNKNOWN,
            format!("parameters of {} are not known yet", unknown.join(", ")),
        )
    }
}

fn admitted(f: &Facts<'_, '_>) -> ConditionDraft {
    let changed = list(
        f.evals
            .iter()
            .filter(|e| !e.admitted && e.admitted_fingerprint.is_some())
            .map(|e| {
                let now = e
                    .fingerprint
                    .map_or(Cow::Borrowed("unknown"), |fp| Cow::Owned(fp.to_string()));
                let admitted = e
                    .admitted_fingerprint
                    .map(ToString::to_string)
                    .unwrap_or_default();
                (
                    e.partner.name.as_str(),
                    format!(
                        "certificate is {now} but the admission is for {admitted}; admit it again"
                    ),
                )
            }),
    );
    if !changed.is_empty() {
        return ConditionDraft::fails(
            types::PARTNERS_ADMITTED,
            reasons::CERTIFICATE_CHANGED,
            changed,
        );
    }
    let awaiting = list(f.evals.iter().filter(|e| !e.admitted).map(|e| {
        let detail = match e.fingerprint {
            Some(fp) => format!("waiting for an admission of certificate {fp}"),
            None => "waiting for its certificate to be fetched".to_owned(),
        };
        (e.partner.name.as_str(), detail)
    }));
    if awaiting.is_empty() {
        HOLDING[ADMITTED].clone()
    } else {
        ConditionDraft::fails(
            types::PARTNERS_ADMITTED,
            reasons::AWAITING_ADMISSION,
            awaiting,
        )
    }
}

fn mutual(f: &Facts<'_, '_>) -> ConditionDraft {
    let blocks = |wanted: &dyn Fn(&Block) -> Option<String>| {
        list(f.evals.iter().filter_map(|e| {
            match &e.verdict {
                Verdict::Blocked(blocks) => blocks
                    .iter()
                    .find_map(wanted)
                    .map(|d| (e.partner.name.as_str(), d)),
                _ => None,
            }
        }))
    };
    let mismatch = blocks(&|b| {
        matches!(b, Block::MembershipMismatch)
            .then(|| "sees a different set of members or endpoints".to_owned())
    });
    if !mismatch.is_empty() {
        return ConditionDraft::fails(
            types::MUTUALLY_ADMITTED,
            reasons::MEMBERSHIP_MISMATCH,
            mismatch,
        );
    }
    // Whether a partner has admitted us is what this party's operator can
    // act on (ask that partner's operator); which other members it has not
    // admitted yet changes with every admission it makes, and naming them
    // would rewrite the status each time (O(N) times per partner), so the
    // message names only us.
    let pending = blocks(&|b| match b {
        Block::AwaitingPartnerAdmission(names) if names.contains(f.us) => Some(format!(
            "has not admitted the current certificate of {}",
            f.us
        )),
        Block::AwaitingPartnerAdmission(_) => {
            Some("has not admitted every other member's current certificate yet".to_owned())
        }
        _ => None,
    });
    if !pending.is_empty() {
        return ConditionDraft::fails(
            types::MUTUALLY_ADMITTED,
            reasons::AWAITING_PARTNER_ADMISSION,
            pending,
        );
    }
    if f.evals.iter().all(|e| e.document.is_some()) {
        HOLDING[MUTUAL].clone()
    } else {
        ConditionDraft::unknown(
            types::MUTUALLY_ADMITTED,
            reasons::WAITING,
            "not every partner's view is known in this reconcile",
        )
    }
}

fn keys(f: &Facts<'_, '_>) -> ConditionDraft {
    let t = types::KEYS_GENERATED;
    if f.keys_ok {
        return HOLDING[KEYS].clone();
    }
    if let Some(KeyGenerationPhase::Failed { reason }) = f.key_phase {
        return ConditionDraft::fails(
            t,
            reasons::KEY_GENERATION_FAILED,
            format!("key generation failed: {reason}"),
        );
    }
    if f.barrier != Barrier::Holds {
        return ConditionDraft::fails(
            t,
            reasons::WAITING,
            "waiting for every party to admit every other",
        );
    }
    let message = match f.key_phase {
        Some(KeyGenerationPhase::Running) => "MP-SPDZ key generation is running",
        _ => "MP-SPDZ key generation is pending",
    };
    ConditionDraft::fails(t, reasons::KEY_GENERATION_RUNNING, message)
}

fn services(f: &Facts<'_, '_>) -> ConditionDraft {
    let t = types::SERVICES_READY;
    if f.config_ok && f.services_ok {
        HOLDING[SERVICES].clone()
    } else if !f.keys_ok {
        ConditionDraft::fails(t, reasons::WAITING, "waiting for key generation")
    } else if f.barrier != Barrier::Holds {
        ConditionDraft::fails(
            t,
            reasons::WAITING,
            "waiting for every party to admit every other",
        )
    } else {
        ConditionDraft::fails(
            t,
            reasons::SERVICES_STARTING,
            "foundation services are starting",
        )
    }
}

fn gateways(f: &Facts<'_, '_>) -> ConditionDraft {
    let t = types::GATEWAYS_READY;
    if f.gateways_ok {
        HOLDING[GATEWAYS].clone()
    } else if !(f.config_ok && f.services_ok) {
        ConditionDraft::fails(t, reasons::WAITING, "waiting for the foundation services")
    } else {
        ConditionDraft::fails(
            t,
            reasons::GATEWAYS_DEPLOYING,
            "deploying Istio mutual-TLS gateways",
        )
    }
}

/// Events for a status change: the state transition, and every condition
/// that newly turned to a warning reason.
pub(crate) fn events(old: &VirtualCloudStatus, new: &VirtualCloudStatus) -> Vec<Event> {
    let mut events = Vec::new();
    if old.state != new.state {
        events.push(Event {
            kind: EventKind::Normal,
            reason: reasons::STATE_CHANGED,
            message: format!("state {} → {}", old.state, new.state),
        });
    }
    for condition in &new.conditions {
        let Some(&reason) = WARNING_REASONS.iter().find(|r| **r == condition.reason) else {
            continue;
        };
        let is_new = !old.conditions.iter().any(|c| {
            c.type_ == condition.type_
                && c.reason == condition.reason
                && c.message == condition.message
        });
        if condition.status != ConditionStatus::True && is_new && condition.type_ != types::READY {
            events.push(Event {
                kind: EventKind::Warning,
                reason,
                message: condition.message.clone(),
            });
        }
    }
    events
}
