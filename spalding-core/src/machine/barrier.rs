//! The group barrier, partner by partner: what this reconcile knows about each
//! partner (its current fingerprint, admission, compatibility, view of the
//! group) and the resulting [`Verdict`]. Pure and linear in the number of
//! partners: a partner's whole view is compared through its digest.

use crate::certificate::{Certificate, Fingerprint};
use crate::document::{VerifiedDocument, ViewDigest};
use crate::machine::sorted::Run;
use crate::machine::{Fetch, LocalIdentity, PartnerObservation};
use crate::name::PartyName;
use crate::parameters::{Mismatch, ValidatedParameters, compatibility};
use crate::partner::{Admission, PartnerStatus};
use crate::seen::{self, Said};
use crate::spec::{Endpoint, Partner};

/// What blocks a partner, from the freshest facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Block {
    /// No admission, or one that is not settled yet.
    AwaitingAdmission,
    /// The certificate differs from every admitted fingerprint.
    CertificateChanged,
    /// Parameters differ.
    Incompatible,
    /// Its view of the members differs from ours.
    MembershipMismatch,
    /// It has not admitted these members' current certificates.
    AwaitingPartnerAdmission(Vec<PartyName>),
}

/// One member of the group as this party sees it now, in player order.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GroupMember<'a> {
    /// Name.
    pub name: &'a PartyName,
    /// Endpoint.
    pub endpoint: &'a Endpoint,
    /// Current certificate: ours, fetched now, or last stored.
    pub certificate: Option<&'a Certificate>,
    /// Current fingerprint (also known when only the status stored it).
    pub fingerprint: Option<&'a Fingerprint>,
}

/// The barrier's verdict on one partner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Every condition holds on fresh facts.
    Ready,
    /// Not fetched in this reconcile: nothing fresh is known.
    Unknown,
    /// Fresh facts say no; the first blocking reasons in barrier order.
    Blocked(Vec<Block>),
}

/// One partner as evaluated in this reconcile.
#[derive(Debug)]
pub(crate) struct PartnerEval<'a> {
    /// The partner from the spec.
    pub partner: &'a Partner,
    /// Its observation, if any.
    pub observation: Option<&'a PartnerObservation>,
    /// Its admissions.
    pub admissions: Run<'a, Admission>,
    /// Its verified document, when fetched now.
    pub document: Option<&'a VerifiedDocument>,
    /// Why the fetch failed, when it did.
    pub fetch_error: Option<&'a str>,
    /// Its current fingerprint: fetched now, else last stored.
    pub fingerprint: Option<&'a Fingerprint>,
    /// The fingerprint an unpinned admission is bound to: the one shown to
    /// the operator (stored), else the current one.
    pub shown: Option<&'a Fingerprint>,
    /// The fingerprint the admission vouches for.
    pub admitted_fingerprint: Option<&'a Fingerprint>,
    /// Admitted here with the current fingerprint.
    pub admitted: bool,
    /// Parameter mismatches (empty when compatible or unknown).
    pub mismatches: Vec<Mismatch>,
    /// Whether its parameters are known to be compatible.
    pub compatible: bool,
    /// Its document says it admitted our current certificate.
    pub admitted_us: bool,
    /// The verdict, filled in by [`judge`].
    pub verdict: Verdict,
}

/// Evaluates what can be said of one partner alone. `player_id` is our own
/// position in the group: where a partner that sees the group as we do lists
/// us, tried before searching its view.
pub(crate) fn evaluate<'a>(
    partner: &'a Partner,
    observation: Option<&'a PartnerObservation>,
    admissions: Run<'a, Admission>,
    ours: &ValidatedParameters,
    identity: &LocalIdentity,
    player_id: usize,
) -> PartnerEval<'a> {
    let (document, fetch_error) = match observation.map(|o| &o.fetch) {
        Some(Fetch::Fetched(doc)) => (Some(doc.as_ref()), None),
        Some(Fetch::Failed(reason)) => (None, Some(reason.as_str())),
        Some(Fetch::Skipped) | None => (None, Some("not fetched yet")),
    };
    let stored_status = observation
        .and_then(|o| o.stored.as_ref())
        .and_then(|s| s.status.as_ref());
    let fingerprint = document
        .map(|d| d.certificate.fingerprint())
        .or_else(|| stored_status.and_then(|s| s.fingerprint.as_ref()));
    // The fingerprint an unpinned, unbound admission binds to: the one the
    // operator was shown (stored), else the current one.
    let shown = stored_status
        .and_then(|s| s.fingerprint.as_ref())
        .or(fingerprint);
    let mut vouched = admissions.iter().filter_map(|a| a.fingerprint().or(shown));
    let admitted = fingerprint.is_some_and(|f| vouched.clone().any(|v| v == f));
    let admitted_fingerprint = if admitted {
        fingerprint
    } else {
        vouched.next()
    };
    let (mismatches, compatible) = match document {
        Some(doc) => {
            let mismatches = if *ours == doc.parameters {
                Vec::new()
            } else {
                compatibility(ours, &doc.parameters)
            };
            let compatible = mismatches.is_empty();
            (mismatches, compatible)
        }
        None => (Vec::new(), stored_status.is_some_and(|s| s.compatible)),
    };
    let admitted_us = match document {
        Some(doc) => admits_us(doc, identity, player_id),
        None => stored_status.is_some_and(|s| s.partner_admitted_us),
    };
    PartnerEval {
        partner,
        observation,
        admissions,
        document,
        fetch_error,
        fingerprint,
        shown,
        admitted_fingerprint,
        admitted,
        mismatches,
        compatible,
        admitted_us,
        verdict: Verdict::Unknown,
    }
}

/// Whether `doc` says its publisher admitted our current certificate.
/// `player_id` is our own position in the group: where a partner that sees
/// the group as we do lists us, tried before searching its view.
pub(crate) fn admits_us(
    doc: &VerifiedDocument,
    identity: &LocalIdentity,
    player_id: usize,
) -> bool {
    doc.admits(
        &identity.name,
        identity.certificate.fingerprint(),
        Some(player_id),
    )
}

/// A partner's verdict. `expected` is the digest of the fully admitted group
/// view, known only when every partner was fetched now; `group` yields the
/// membership as this party sees it now, walked only when the partner's view
/// differs, to say how.
pub(crate) fn verdict<'a, I>(
    eval: &PartnerEval<'a>,
    expected: Option<&ViewDigest>,
    group: impl FnOnce() -> I,
) -> Verdict
where
    I: Iterator<Item = GroupMember<'a>>,
{
    let Some(doc) = eval.document else {
        return Verdict::Unknown;
    };
    let mut blocks = Vec::new();
    if !eval.admitted {
        blocks.push(if !eval.admissions.is_empty() {
            Block::CertificateChanged
        } else {
            Block::AwaitingAdmission
        });
    }
    if !eval.compatible {
        blocks.push(Block::Incompatible);
    }
    let agrees = matches!((expected, doc.mutual_digest.as_ref()), (Some(e), Some(t)) if e == t);
    if !agrees && let Some(block) = diagnose_view(doc, &group().collect::<Vec<_>>()) {
        blocks.push(block);
    }
    let stale = expected.is_none() && blocks.is_empty();
    if stale {
        Verdict::Unknown
    } else if blocks.is_empty() {
        Verdict::Ready
    } else {
        Verdict::Blocked(blocks)
    }
}

/// Why a partner's view differs from the fully admitted group view (the slow
/// path, taken only when the digests differ). `None` when it cannot be told
/// because a member's current fingerprint is unknown here.
fn diagnose_view(doc: &VerifiedDocument, group: &[GroupMember<'_>]) -> Option<Block> {
    let same_members = doc.members.len() == group.len()
        && doc
            .members
            .iter()
            .zip(group)
            .all(|(m, g)| &m.name == g.name && &m.endpoint == g.endpoint);
    if !same_members {
        return Some(Block::MembershipMismatch);
    }
    let mut pending = Vec::new();
    for (view, member) in doc.members.iter().zip(group) {
        match member.fingerprint {
            None => return None,
            Some(current) if view.admitted && view.fingerprint.as_ref() == Some(current) => {}
            Some(_) => pending.push(member.name.clone()),
        }
    }
    // Equal views with equal fingerprints have equal digests; reaching here
    // with nothing pending means a fingerprint is only stored, not fresh.
    (!pending.is_empty()).then_some(Block::AwaitingPartnerAdmission(pending))
}

/// Whether `stored` already says what `eval` would write, without building it.
pub(crate) fn status_matches(stored: &PartnerStatus, eval: &PartnerEval<'_>) -> bool {
    stored.admitted == eval.admitted
        && stored.fingerprint.as_ref() == eval.fingerprint
        && stored.admitted_fingerprint.as_ref() == eval.admitted_fingerprint
        && stored.compatible == eval.compatible
        && (eval.document.is_none() || stored.incompatibilities.len() == eval.mismatches.len())
        && stored.partner_admitted_us == eval.admitted_us
        && stored.reachable == eval.document.is_some()
        && stored.last_fetch_error.as_deref() == eval.fetch_error
        && sequence_settled(stored, eval)
        && (eval.mismatches.is_empty()
            || stored
                .incompatibilities
                .iter()
                .zip(&eval.mismatches)
                .all(|(s, m)| *s == m.to_string()))
}

/// Whether the stored sequence number and content digest may stay as they
/// are: nothing was fetched, or every document from the stored one to the
/// one fetched was seen by this process and says the same to us — the same
/// content digest (everything the barrier acts on) and the same line about
/// us ([`crate::seen`]). A republish that changed only the partner's state,
/// or its progress on other members, then costs no write. Any other document
/// is recorded: one following documents this process never saw, whose
/// content it cannot vouch for, or one saying something new. The rollback
/// check ([`crate::Reconciler`]) refuses every document older than the
/// stored one (older than the newest seen, while the process runs), so after
/// a restart a replay can only bring back a document that says what the
/// status records.
fn sequence_settled(stored: &PartnerStatus, eval: &PartnerEval<'_>) -> bool {
    eval.document.is_none_or(|doc| {
        sequence_settled_by(
            stored,
            doc,
            eval.observation.and_then(|o| o.seen_since),
            eval.admitted_us,
        )
    })
}

/// [`sequence_settled`] for a document fetched now that `admits_us` (or not),
/// ending a run of documents seen since `seen_since`.
pub(crate) fn sequence_settled_by(
    stored: &PartnerStatus,
    doc: &VerifiedDocument,
    seen_since: Option<u64>,
    admits_us: bool,
) -> bool {
    let (Some(sequence), Some(content)) = (stored.sequence, stored.content_digest) else {
        return false;
    };
    let run = seen::Run {
        since: seen_since.unwrap_or(doc.sequence),
        last: doc.sequence,
        said: Said {
            content: doc.content_digest,
            admits_us,
        },
    };
    run.covers(
        sequence,
        Said {
            content,
            admits_us: stored.partner_admitted_us,
        },
    )
}

/// The highest sequence number accepted from the partner.
fn sequence_of(eval: &PartnerEval<'_>, previous: Option<&PartnerStatus>) -> Option<u64> {
    let stored = previous.and_then(|p| p.sequence);
    match eval.document {
        Some(doc) => Some(stored.map_or(doc.sequence, |s| s.max(doc.sequence))),
        None => stored,
    }
}

/// The status `eval` describes.
pub(crate) fn status_of(eval: &PartnerEval<'_>, previous: Option<&PartnerStatus>) -> PartnerStatus {
    let incompatibilities = if eval.document.is_some() {
        eval.mismatches.iter().map(ToString::to_string).collect()
    } else {
        previous
            .map(|p| p.incompatibilities.clone())
            .unwrap_or_default()
    };
    PartnerStatus {
        admitted: eval.admitted,
        fingerprint: eval.fingerprint.cloned(),
        admitted_fingerprint: eval.admitted_fingerprint.cloned(),
        compatible: eval.compatible,
        incompatibilities,
        partner_admitted_us: eval.admitted_us,
        reachable: eval.document.is_some(),
        last_fetch_error: eval.fetch_error.map(str::to_owned),
        sequence: sequence_of(eval, previous),
        content_digest: match eval.document {
            Some(doc) => Some(doc.content_digest),
            None => previous.and_then(|p| p.content_digest),
        },
    }
}
