//! `decide`: from what one reconcile observed to the plan that moves the VC
//! forward, as a pure function.
//!
//! A VC that is ready and at rest takes the fast path ([`super::rest`]) and
//! gets the empty plan. Otherwise the pipeline is: index the observations →
//! evaluate every partner ([`super::barrier`]) → judge the group barrier →
//! derive the state from local facts → plan partner records, the published
//! document, lifecycle actions, events and status, in that order. Every
//! comparison with what is stored is made before anything is built, lists
//! through their digests ([`super::group`]).
//!
//! State rules:
//! - barrier **holds** (all partners fresh and ready): the state is what the
//!   local facts support, and lifecycle actions are planned toward `ready`;
//! - barrier **stale** (a partner unreachable, no fresh contradiction): the
//!   state is the lower of the current state and what local facts support;
//!   nothing is launched;
//! - barrier **blocked** (a fresh contradiction): the state is `admission`;
//!   nothing is launched and nothing created is deleted.

use crate::condition::{ConditionStatus, merge, reasons, types, unchanged};
use crate::configuration::Formation;
use crate::machine::barrier::{PartnerEval, Verdict, evaluate, status_matches, status_of, verdict};
use crate::machine::conditions::{Facts, HOLDING, all_hold, drafts, events};
use crate::machine::group::{
    Expected, build_formation, formation_matches, lines, own_line, record_matches,
};
use crate::machine::publish::{body, published_matches};
use crate::machine::rest::at_rest;
use crate::machine::sorted::ByName;
use crate::machine::{Action, Observed, PartnerObservation, Plan};
use crate::partner::{CertificateRef, PartnerRecord, certificate_config_map_name};
use crate::ports::{Applied, KeyGenerationPhase};
use crate::spec::{SpecError, State, ValidatedSpec, VirtualCloudStatus};

/// The phase of key generation launched by this plan.
static PENDING: KeyGenerationPhase = KeyGenerationPhase::Pending;

/// The group barrier over all partners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Barrier {
    /// Every partner is fresh and ready.
    Holds,
    /// Some partner is unknown; none is blocked.
    Stale,
    /// Fresh facts block some partner.
    Blocked,
}

/// Decides what to do for the VC described by `obs`. Pure: no I/O, no clock
/// (conditions are stamped with `obs.now`), no randomness.
///
/// ```
/// # use spalding_core::{decide, Action};
/// # fn check(obs: &spalding_core::Observed) {
/// let plan = decide(obs);
/// for action in &plan.actions {
///     // execute through the ports, in order
/// #   let _ = action;
/// }
/// # }
/// ```
pub fn decide(obs: &Observed) -> Plan {
    match &obs.spec {
        Ok(spec) => decide_valid(obs, spec),
        Err(error) => decide_invalid(obs, error),
    }
}

/// An invalid spec: report it, change nothing stored.
fn decide_invalid(obs: &Observed, error: &SpecError) -> Plan {
    let message = error.to_string();
    let mut desired: Vec<_> = obs
        .status
        .conditions
        .iter()
        .filter(|c| c.type_ != types::SPEC_VALID)
        .cloned()
        .collect();
    let already = obs.status.conditions.iter().any(|c| {
        c.type_ == types::SPEC_VALID
            && c.status == ConditionStatus::False
            && c.message == message
            && c.observed_generation == obs.generation
    });
    if already {
        return Plan::default();
    }
    let spec_condition = merge(
        &obs.status.conditions,
        vec![crate::condition::ConditionDraft::fails(
            types::SPEC_VALID,
            reasons::INVALID_SPEC,
            message.clone(),
        )],
        obs.generation,
        &obs.now,
    );
    desired.splice(0..0, spec_condition);
    let status = VirtualCloudStatus {
        state: obs.status.state,
        player_id: obs.status.player_id,
        player_count: obs.status.player_count,
        observed_generation: obs.generation,
        conditions: desired,
    };
    Plan {
        actions: vec![
            Action::RecordEvent(crate::ports::Event {
                kind: crate::ports::EventKind::Warning,
                reason: reasons::INVALID_SPEC,
                message,
            }),
            Action::UpdateStatus(Box::new(status)),
        ],
    }
}

/// A valid spec: nothing to do when the VC is ready and at rest (the fast
/// path), else the full pipeline.
fn decide_valid(obs: &Observed, spec: &ValidatedSpec) -> Plan {
    if at_rest(obs, spec) {
        return Plan::default();
    }
    pipeline(obs, spec)
}

/// The full pipeline: evaluate every partner, judge the barrier, derive the
/// state and plan everything that differs from what is stored.
pub(crate) fn pipeline(obs: &Observed, spec: &ValidatedSpec) -> Plan {
    let mut actions = Vec::new();

    // Walk partners, observations and admissions together, all sorted by
    // name (sorted here only when they are not already): one pass, linear in
    // the number of partners.
    let observations = ByName::new(&obs.partners, |o| &o.name);
    let admissions = ByName::new(&obs.admissions, |a| &a.partner);
    let removed = |o: &PartnerObservation, actions: &mut Vec<Action>| {
        if o.stored.is_some() {
            actions.push(Action::RemovePartner {
                partner: o.name.clone(),
            });
        }
    };
    let me = &obs.identity;
    let player_id = spec.partners.partition_point(|p| p.name < me.name);
    let (mut next_observation, mut next_admission) = (0, 0);
    let mut evals: Vec<PartnerEval<'_>> = Vec::with_capacity(spec.partners.len());
    for partner in &spec.partners {
        while let Some(o) = observations
            .get(next_observation)
            .filter(|o| o.name < partner.name)
        {
            removed(o, &mut actions);
            next_observation += 1;
        }
        let observation = observations
            .get(next_observation)
            .filter(|o| o.name == partner.name);
        next_observation += usize::from(observation.is_some());
        while admissions
            .get(next_admission)
            .is_some_and(|a| a.partner < partner.name)
        {
            next_admission += 1;
        }
        let first = next_admission;
        while admissions
            .get(next_admission)
            .is_some_and(|a| a.partner == partner.name)
        {
            next_admission += 1;
        }
        evals.push(evaluate(
            partner,
            observation,
            admissions.run(first, next_admission),
            &spec.parameters,
            &obs.identity,
            player_id,
        ));
    }
    for o in observations.rest(next_observation).iter() {
        removed(o, &mut actions);
    }

    // The group as this party sees it now, in player order, is walked (not
    // gathered) once for its digests; a VC at rest compares nothing else of
    // it. Only a partner whose view differs walks it again, to say why.
    let own = own_line(obs);
    let all_fresh = evals.iter().all(|e| e.document.is_some());
    let expected = Expected::of(lines(&evals, own, player_id), all_fresh);
    for index in 0..evals.len() {
        let verdict = verdict(&evals[index], expected.view.as_ref(), || {
            lines(&evals, own, player_id).map(|l| l.member)
        });
        if let Some(eval) = evals.get_mut(index) {
            eval.verdict = verdict;
        }
    }

    // Partner records, admission bindings and partner statuses.
    for eval in &evals {
        plan_partner(obs, eval, &mut actions);
    }

    let barrier = if evals
        .iter()
        .any(|e| matches!(e.verdict, Verdict::Blocked(_)))
    {
        Barrier::Blocked
    } else if evals.iter().any(|e| e.verdict == Verdict::Unknown) {
        Barrier::Stale
    } else {
        Barrier::Holds
    };

    // Local facts, measured against the group as known now, as they will be
    // once this plan has run: conditions describe the world after the plan,
    // so deciding again after executing it finds nothing to do.
    let holds = barrier == Barrier::Holds;
    let position = player_id;
    let player_id = u32::try_from(player_id).unwrap_or(u32::MAX);
    let same_players =
        |applied: &Formation| formation_matches(applied, player_id, spec, &expected, false);
    let current = |a: &'_ Option<Applied>| {
        a.as_ref()
            .filter(|a| same_players(&a.formation))
            .map(|a| a.ready)
    };
    let keys = obs
        .key_generation
        .as_ref()
        .filter(|k| same_players(&k.formation));
    let plan_mac = holds && !obs.mac_key_exists;
    let plan_launch = holds && keys.is_none();
    let key_phase = if plan_launch {
        Some(&PENDING)
    } else {
        keys.map(|k| &k.phase)
    };
    let keys_ok =
        (obs.mac_key_exists || plan_mac) && key_phase == Some(&KeyGenerationPhase::Succeeded);
    let config_now = obs
        .configuration
        .as_ref()
        .is_some_and(|c| formation_matches(c, player_id, spec, &expected, true));
    let plan_config = holds && keys_ok && !config_now;
    let config_ok = config_now || plan_config;
    let services = current(&obs.services);
    let plan_services = holds && keys_ok && services.is_none();
    let services_ok = services == Some(true);
    let gateways = current(&obs.gateways);
    let plan_gateways = holds && config_ok && services_ok && gateways.is_none();
    let gateways_ok = gateways == Some(true);
    let supported = if !keys_ok {
        State::Initializing
    } else if !(config_ok && services_ok && gateways_ok) {
        State::Starting
    } else {
        State::Ready
    };
    let state = match barrier {
        Barrier::Holds => supported,
        Barrier::Stale => obs.status.state.min(supported),
        Barrier::Blocked => State::Admission,
    };

    // Our partner-info document.
    let republish = obs.published.as_ref().is_none_or(|p| {
        !published_matches(p, obs, spec, expected.count, expected.member_views, state)
    });
    if republish {
        actions.push(Action::PublishDocument(Box::new(body(
            obs,
            spec,
            lines(&evals, own, position),
            state,
        ))));
    }

    // Lifecycle actions, only on fresh facts (all flags above imply `holds`).
    let formation = || {
        Box::new(build_formation(
            player_id,
            spec,
            lines(&evals, own, position).map(|l| l.member),
        ))
    };
    if plan_mac {
        actions.push(Action::CreateMacKeyShares);
    }
    if plan_launch {
        actions.push(Action::LaunchKeyGeneration(formation()));
    }
    if plan_config {
        actions.push(Action::WriteConfiguration(formation()));
    }
    if plan_services {
        actions.push(Action::CreateServices(formation()));
    }
    if plan_gateways {
        actions.push(Action::DeployGateways(formation()));
    }

    // Conditions, events and status.
    let facts = Facts {
        evals: &evals,
        us: &obs.identity.name,
        barrier,
        key_phase,
        keys_ok,
        config_ok,
        services_ok,
        gateways_ok,
        state,
    };
    // Everything holds at rest: the conditions are then a fixed list,
    // compared without drafting them.
    let drafted = (!all_hold(&facts)).then(|| drafts(&facts));
    debug_assert!(
        drafted.is_some() || drafts(&facts) == HOLDING,
        "all conditions hold but drafting them says otherwise"
    );
    let player_count = u32::try_from(expected.count).unwrap_or(u32::MAX);
    let status_same = obs.status.state == state
        && obs.status.player_id == Some(player_id)
        && obs.status.player_count == Some(player_count)
        && obs.status.observed_generation == obs.generation
        && unchanged(
            &obs.status.conditions,
            drafted.as_deref().unwrap_or(&HOLDING),
            obs.generation,
        );
    if !status_same {
        let drafts = drafted.unwrap_or_else(|| HOLDING.to_vec());
        let status = VirtualCloudStatus {
            state,
            player_id: Some(player_id),
            player_count: Some(player_count),
            observed_generation: obs.generation,
            conditions: merge(&obs.status.conditions, drafts, obs.generation, &obs.now),
        };
        actions.extend(
            events(&obs.status, &status)
                .into_iter()
                .map(Action::RecordEvent),
        );
        actions.push(Action::UpdateStatus(Box::new(status)));
    }
    Plan { actions }
}

/// Plans the record, certificate, admission bindings and status of one partner.
fn plan_partner(obs: &Observed, eval: &PartnerEval<'_>, actions: &mut Vec<Action>) {
    let name = &eval.partner.name;
    let stored = eval.observation.and_then(|o| o.stored.as_ref());
    let mut record_exists = stored.is_some();
    if let Some(doc) = eval.document {
        if stored.and_then(|s| s.certificate.as_ref()) != Some(&doc.certificate) {
            actions.push(Action::StoreCertificate {
                partner: name.clone(),
                certificate: doc.certificate.clone(),
            });
        }
        let record_same = stored
            .is_some_and(|s| record_matches(&s.record, eval.partner, &doc.parameters, &obs.vc));
        if !record_same {
            actions.push(Action::UpsertPartner(PartnerRecord {
                name: name.clone(),
                endpoint: eval.partner.endpoint.clone(),
                parameters: doc.parameters.clone(),
                certificate: CertificateRef {
                    name: certificate_config_map_name(&obs.vc.name, name),
                    namespace: obs.vc.namespace.clone(),
                },
            }));
            record_exists = true;
        }
    }
    if let Some(shown) = eval.shown {
        for admission in eval.admissions.iter().filter(|a| a.fingerprint().is_none()) {
            actions.push(Action::BindAdmission {
                admission: admission.name.clone(),
                fingerprint: shown.clone(),
            });
        }
    }
    let previous = stored.and_then(|s| s.status.as_ref());
    if record_exists && !previous.is_some_and(|p| status_matches(p, eval)) {
        actions.push(Action::UpdatePartnerStatus {
            partner: name.clone(),
            status: status_of(eval, previous),
        });
    }
}
