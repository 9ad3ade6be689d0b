//! Example-based tests of `decide` on hand-built groups: the view digest,
//! an invalid spec, a formed group at rest, a partner revoking us, the
//! stored sequence number across republishes, and when our document is
//! republished.

use super::*;

/// The digest a fully admitted document carries equals the one `decide`
/// expects; a single difference in any member changes it.
#[test]
fn view_digest_separates_members() {
    let a = (name(0), endpoint(0), pool()[0].fingerprint().clone());
    let b = (name(1), endpoint(1), pool()[1].fingerprint().clone());
    let d1 = view_digest([(&a.0, &a.1, &a.2), (&b.0, &b.1, &b.2)].into_iter());
    let d2 = view_digest([(&a.0, &a.1, &a.2), (&b.0, &b.1, pool()[2].fingerprint())].into_iter());
    let d3 = view_digest([(&a.0, &a.1, &a.2)].into_iter());
    assert_ne!(d1, d2);
    assert_ne!(d1, d3);
}

/// An invalid spec changes nothing stored: one Warning Event and a condition, once.
#[test]
fn invalid_spec_only_reports() {
    let setup = Setup {
        count: 2,
        local: 0,
        partners: vec![PartnerSetup {
            reachable: true,
            rotated: false,
            incompatible: false,
            membership: 0,
            admits: vec![true; 6],
            stale_view: vec![false; 6],
            stored: 1,
            admissions: vec![0],
        }],
        mac: true,
        keys: 3,
        applied: [2, 2, 2],
        state: State::Ready,
    };
    let mut obs = setup.observed();
    obs.spec = Err(crate::spec::SpecError::NoPartners);
    let plan = decide(&obs);
    assert_eq!(plan.actions.len(), 2, "{:?}", plan.actions);
    assert!(
        matches!(&plan.actions[0], Action::RecordEvent(e) if e.kind == crate::ports::EventKind::Warning)
    );
    let status = plan.status().unwrap();
    assert_eq!(
        status.state,
        State::Ready,
        "an invalid spec does not move the state"
    );
    assert_eq!(
        status.conditions[0].type_,
        crate::condition::types::SPEC_VALID
    );
    assert!(decide(&apply(&obs, &plan)).is_empty(), "reported once");
}

/// A fully formed group at rest: nothing to do, state ready.
#[test]
fn formed_group_is_ready_and_at_rest() {
    let full = PartnerSetup {
        reachable: true,
        rotated: false,
        incompatible: false,
        membership: 0,
        admits: vec![true; 6],
        stale_view: vec![false; 6],
        stored: 1,
        admissions: vec![0],
    };
    let setup = Setup {
        count: 3,
        local: 1,
        partners: vec![full.clone(), full],
        mac: true,
        keys: 3,
        applied: [2, 2, 2],
        state: State::Ready,
    };
    let obs = setup.observed();
    assert!(reference_barrier(&obs));
    let plan = decide(&obs);
    assert_eq!(state_after(&obs, &plan), State::Ready);
    assert!(!plan.actions.iter().any(is_lifecycle));
    assert!(decide(&apply(&obs, &plan)).is_empty());
}

/// A revoked admission at a partner sends a ready VC back to admission, keeps
/// everything created, and says why.
#[test]
fn partner_revoking_us_sends_back_to_admission() {
    let mut partner = PartnerSetup {
        reachable: true,
        rotated: false,
        incompatible: false,
        membership: 0,
        admits: vec![true; 6],
        stale_view: vec![false; 6],
        stored: 1,
        admissions: vec![0],
    };
    partner.admits[0] = false; // it no longer admits us (alpha, player 0)
    let setup = Setup {
        count: 2,
        local: 0,
        partners: vec![partner],
        mac: true,
        keys: 3,
        applied: [2, 2, 2],
        state: State::Ready,
    };
    let obs = setup.observed();
    let plan = decide(&obs);
    let status = plan.status().unwrap();
    assert_eq!(status.state, State::Admission);
    assert!(!plan.actions.iter().any(is_lifecycle));
    let mutual = status
        .conditions
        .iter()
        .find(|c| c.type_ == crate::condition::types::MUTUALLY_ADMITTED)
        .unwrap();
    assert_eq!(
        mutual.reason,
        crate::condition::reasons::AWAITING_PARTNER_ADMISSION
    );
    assert!(mutual.message.contains("alpha"), "{}", mutual.message);
}

/// A partner's republish that changed only its state, numbered one higher
/// than the sequence number stored, writes nothing; one numbered two higher
/// (documents in between were never seen) or with other content is recorded.
#[test]
fn a_state_only_republish_keeps_the_stored_sequence() {
    let full = PartnerSetup {
        reachable: true,
        rotated: false,
        incompatible: false,
        membership: 0,
        admits: vec![true; 6],
        stale_view: vec![false; 6],
        stored: 1,
        admissions: vec![0],
    };
    let setup = Setup {
        count: 2,
        local: 0,
        partners: vec![full],
        mac: true,
        keys: 3,
        applied: [2, 2, 2],
        state: State::Ready,
    };
    let obs = setup.observed();
    let rest = apply(&obs, &decide(&obs));
    assert!(decide(&rest).is_empty());
    let stored = |obs: &Observed| {
        obs.partners[0]
            .stored
            .as_ref()
            .and_then(|s| s.status.as_ref())
            .and_then(|s| s.sequence)
    };
    assert_eq!(stored(&rest), Some(1));
    let republished = |sequence: u64, other_content: bool| {
        let mut next = rest.clone();
        let Fetch::Fetched(doc) = &mut next.partners[0].fetch else {
            panic!("the partner was fetched");
        };
        doc.state = State::Starting;
        doc.sequence = sequence;
        if other_content {
            doc.content_digest ^= 1;
        }
        next
    };
    let status_writes = |plan: &Plan| {
        plan.actions
            .iter()
            .filter(|a| matches!(a, Action::UpdatePartnerStatus { .. }))
            .count()
    };
    assert_eq!(status_writes(&decide(&republished(2, false))), 0);
    let skipped = decide(&republished(3, false));
    assert_eq!(status_writes(&skipped), 1, "{:?}", skipped.actions);
    assert_eq!(stored(&apply(&rest, &skipped)), Some(3));
    assert_eq!(status_writes(&decide(&republished(2, true))), 1);
    // Number 3 after this process saw 2 and 3 saying the same: every
    // document from the stored one on was seen, nothing to record.
    let mut run = republished(3, false);
    run.partners[0].seen_since = Some(2);
    assert_eq!(status_writes(&decide(&run)), 0);
    // A run that starts above the number after the stored one has a gap.
    run.partners[0].seen_since = Some(3);
    assert_eq!(status_writes(&decide(&run)), 1);
    // A run saying something else is recorded.
    let mut other = republished(3, true);
    other.partners[0].seen_since = Some(2);
    assert_eq!(status_writes(&decide(&other)), 1);
}

/// A partner's fingerprint learned before it is admitted does not republish
/// our document (no partner acts on an unadmitted line); the admission does,
/// carrying the fingerprint.
#[test]
fn an_unadmitted_fingerprint_alone_does_not_republish() {
    let unadmitted = PartnerSetup {
        reachable: true,
        rotated: false,
        incompatible: false,
        membership: 0,
        admits: vec![true; 6],
        stale_view: vec![false; 6],
        stored: 1,
        admissions: vec![],
    };
    let setup = Setup {
        count: 2,
        local: 0,
        partners: vec![unadmitted.clone()],
        mac: false,
        keys: 0,
        applied: [0, 0, 0],
        state: State::Admission,
    };
    let obs = setup.observed();
    let rest = apply(&obs, &decide(&obs));
    assert!(decide(&rest).is_empty());
    let publishes = |plan: &Plan| {
        plan.actions
            .iter()
            .filter(|a| matches!(a, Action::PublishDocument(_)))
            .count()
    };
    // Published before the partner's certificate was known.
    let mut earlier = rest.clone();
    let Some(body) = earlier.published.as_mut() else {
        panic!("a document was published");
    };
    body.members.edit(|members| {
        let line = members
            .iter_mut()
            .find(|m| !m.admitted)
            .expect("the partner's line is not admitted");
        assert!(
            line.fingerprint.is_some(),
            "the fingerprint is shown when known"
        );
        line.fingerprint = None;
    });
    assert_eq!(publishes(&decide(&earlier)), 0);
    // Admitting it republishes, with the fingerprint.
    let mut admitted = Setup {
        partners: vec![PartnerSetup {
            admissions: vec![0],
            ..setup.partners[0].clone()
        }],
        ..setup
    }
    .observed();
    admitted.published = earlier.published.clone();
    let plan = decide(&admitted);
    let published: Vec<_> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::PublishDocument(body) => Some(body),
            _ => None,
        })
        .collect();
    assert_eq!(published.len(), 1, "{:?}", plan.actions);
    assert!(
        published[0]
            .members
            .iter()
            .all(|m| m.admitted && m.fingerprint.is_some())
    );
}
