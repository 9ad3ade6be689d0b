//! `decide`'s fast path for a Virtual Cloud that is ready and at rest: the
//! reconcile every formed VC pays at every refresh. One walk over the
//! partners checks that what this reconcile observed is exactly what was
//! stored, applied and published after the last change, comparing lists
//! through the digests they carry since they were read ([`crate::digest`]);
//! nothing is evaluated, drafted, gathered or allocated. When everything
//! matches, `decide` returns the empty plan; at the first difference this
//! gives up and the full pipeline decides.
//!
//! It answers "at rest" only when the full pipeline would plan nothing: each
//! check below is one the pipeline makes for a ready VC whose barrier holds
//! (the tests compare both on generated observations and on every single
//! change to one at rest). It expects the observations the
//! [`crate::Reconciler`] builds once nothing is left to remove: exactly the
//! spec's partners, in name order; anything else takes the pipeline.

use crate::condition::unchanged;
use crate::machine::barrier::{GroupMember, admits_us, sequence_settled_by};
use crate::machine::conditions::HOLDING;
use crate::machine::group::{GroupDigests, formation_matches, own_line, record_matches};
use crate::machine::publish::{Line, published_matches};
use crate::machine::sorted::ByName;
use crate::machine::{Fetch, Observed};
use crate::ports::KeyGenerationPhase;
use crate::spec::{State, ValidatedSpec};

/// Whether the VC is ready and nothing observed differs from what is stored:
/// then the full pipeline plans nothing.
pub(crate) fn at_rest(obs: &Observed, spec: &ValidatedSpec) -> bool {
    let status = &obs.status;
    let me = &obs.identity;
    let position = spec.partners.partition_point(|p| p.name < me.name);
    let (Ok(player_id), Ok(player_count)) = (
        u32::try_from(position),
        u32::try_from(spec.partners.len() + 1),
    ) else {
        return false;
    };
    // The status says ready, for this spec and this group; every local fact
    // supports it.
    let (Some(keys), Some(configuration), Some(services), Some(gateways), Some(published)) = (
        &obs.key_generation,
        &obs.configuration,
        &obs.services,
        &obs.gateways,
        &obs.published,
    ) else {
        return false;
    };
    if status.state != State::Ready
        || status.player_id != Some(player_id)
        || status.player_count != Some(player_count)
        || status.observed_generation != obs.generation
        || !obs.mac_key_exists
        || keys.phase != KeyGenerationPhase::Succeeded
        || !services.ready
        || !gateways.ready
        || obs.partners.len() != spec.partners.len()
    {
        return false;
    }

    // Every partner, in name order: observed (and nothing else is), fetched
    // now, admitted with its current certificate by settled admissions only,
    // compatible, listing the same fully admitted view as every other, and
    // stored exactly as the pipeline would store it.
    // The group's digests are folded in on the way, with our own line at our
    // player position.
    let admissions = ByName::new(&obs.admissions, |a| &a.partner);
    let mut next_admission = 0;
    let mut mutual = None;
    let own = own_line(obs);
    let mut group = GroupDigests::new();
    for (index, (partner, observation)) in spec.partners.iter().zip(&obs.partners).enumerate() {
        if index == position {
            group.push(own);
        }
        if observation.name != partner.name {
            return false;
        }
        let (Fetch::Fetched(doc), Some(stored)) = (&observation.fetch, &observation.stored) else {
            return false;
        };
        let Some(recorded) = &stored.status else {
            return false;
        };
        let fingerprint = doc.certificate.fingerprint();
        while admissions
            .get(next_admission)
            .is_some_and(|a| a.partner < partner.name)
        {
            next_admission += 1;
        }
        let mut admitted = false;
        while let Some(admission) = admissions
            .get(next_admission)
            .filter(|a| a.partner == partner.name)
        {
            // An unsettled admission would be bound.
            let Some(vouched) = admission.fingerprint() else {
                return false;
            };
            admitted |= vouched == fingerprint;
            next_admission += 1;
        }
        let Some(view) = doc.mutual_digest else {
            return false;
        };
        let same_view = *mutual.get_or_insert(view) == view;
        let admits_us_now = admits_us(doc, me, position);
        let settled = admitted
            && same_view
            && spec.parameters == doc.parameters
            && stored.certificate.as_ref() == Some(&doc.certificate)
            && record_matches(&stored.record, partner, &doc.parameters, &obs.vc)
            && recorded.admitted
            && recorded.fingerprint.as_ref() == Some(fingerprint)
            && recorded.admitted_fingerprint.as_ref() == Some(fingerprint)
            && recorded.compatible
            && recorded.incompatibilities.is_empty()
            && recorded.partner_admitted_us == admits_us_now
            && recorded.reachable
            && recorded.last_fetch_error.is_none()
            && sequence_settled_by(recorded, doc, observation.seen_since, admits_us_now);
        if !settled {
            return false;
        }
        group.push(Line {
            member: GroupMember {
                name: &partner.name,
                endpoint: &partner.endpoint,
                certificate: Some(&doc.certificate),
                fingerprint: Some(fingerprint),
            },
            admitted: true,
        });
    }
    if position == spec.partners.len() {
        group.push(own);
    }

    // The group as known now: every partner's view is ours, and what was
    // applied and published was built for it.
    let expected = group.finish(true);
    expected.count == spec.partners.len() + 1
        && mutual.is_some()
        && expected.view == mutual
        && formation_matches(&keys.formation, player_id, spec, &expected, false)
        && formation_matches(configuration, player_id, spec, &expected, true)
        && formation_matches(&services.formation, player_id, spec, &expected, false)
        && formation_matches(&gateways.formation, player_id, spec, &expected, false)
        && published_matches(
            published,
            obs,
            spec,
            expected.count,
            expected.member_views,
            State::Ready,
        )
        && unchanged(&status.conditions, &HOLDING, obs.generation)
}
