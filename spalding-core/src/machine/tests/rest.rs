//! The fast path at rest ([`crate::machine::rest`]) against the full
//! pipeline: it may only answer "at rest" when the pipeline plans nothing,
//! and must answer it for every ready VC the pipeline leaves alone. Checked
//! on generated observations and their successors, and on every single
//! change to a VC at rest: a stale or missed digest would show here.

use super::*;
use crate::machine::decide::pipeline;
use crate::machine::rest::at_rest;

fn fast(obs: &Observed) -> bool {
    at_rest(obs, obs.spec.as_ref().unwrap())
}

fn full(obs: &Observed) -> Plan {
    pipeline(obs, obs.spec.as_ref().unwrap())
}

/// The fast path agrees with the pipeline on `obs`.
fn agrees(obs: &Observed) -> Result<(), TestCaseError> {
    let plan = full(obs);
    let fast = fast(obs);
    if fast {
        prop_assert!(
            plan.is_empty(),
            "fast path at rest, pipeline plans {:#?}",
            plan.actions
        );
    }
    if plan.is_empty() && obs.status.state == State::Ready && as_reconciled(obs) {
        prop_assert!(fast, "a ready VC at rest took the full pipeline");
    }
    prop_assert_eq!(decide(obs), plan);
    Ok(())
}

/// Whether every partner of the spec was fetched now and the observations
/// are exactly the spec's partners in name order, as the [`crate::Reconciler`]
/// builds them once nothing is left to remove: what the fast path expects.
fn as_reconciled(obs: &Observed) -> bool {
    let spec = obs.spec.as_ref().unwrap();
    obs.partners.len() == spec.partners.len()
        && obs
            .partners
            .iter()
            .zip(&spec.partners)
            .all(|(o, p)| o.name == p.name && matches!(o.fetch, Fetch::Fetched(_)))
}

/// A formed group of `count` parties, this one at `local`, each partner
/// admitted by the given settled admissions, brought to rest.
fn formed(count: usize, local: usize, admissions: &[u8]) -> Observed {
    let full = PartnerSetup {
        reachable: true,
        rotated: false,
        incompatible: false,
        membership: 0,
        admits: vec![true; NAMES.len()],
        stale_view: vec![false; NAMES.len()],
        stored: 1,
        admissions: admissions.to_vec(),
    };
    let setup = Setup {
        count,
        local,
        partners: vec![full; count - 1],
        mac: true,
        keys: 3,
        applied: [2, 2, 2],
        state: State::Ready,
    };
    let mut obs = setup.observed();
    for _ in 0..6 {
        let plan = decide(&obs);
        if plan.is_empty() {
            return obs;
        }
        obs = apply(&obs, &plan);
    }
    panic!("the formed group did not come to rest");
}

fn stored(obs: &mut Observed, p: usize) -> &mut crate::partner::StoredPartner {
    obs.partners[p].stored.as_mut().unwrap()
}

fn recorded(obs: &mut Observed, p: usize) -> &mut crate::partner::PartnerStatus {
    stored(obs, p).status.as_mut().unwrap()
}

/// Every single change a VC at rest can see: of its status, local facts,
/// what it applied and published, a partner's fetch, record, status or
/// admissions, its spec and identity. `k` picks a partner or member, `x`
/// a variant.
#[allow(clippy::too_many_lines)]
fn mutate(rest: &Observed, change: usize, k: usize, x: usize) -> Observed {
    let mut obs = rest.clone();
    let partners = obs.partners.len();
    let p = k % partners;
    let m = k % (partners + 1);
    let other_endpoint = Endpoint::new("https://elsewhere.example").unwrap();
    let other_certificate = &pool()[NAMES.len() + x % NAMES.len()];
    let condition = x % obs.status.conditions.len().max(1);
    let doc = |obs: &mut Observed| -> Box<VerifiedDocument> {
        match &obs.partners[p].fetch {
            Fetch::Fetched(d) => d.clone(),
            _ => panic!("every partner is fetched at rest"),
        }
    };
    match change {
        0 => obs.status.state = State::Starting,
        1 => obs.status.player_id = obs.status.player_id.map(|i| i + 1),
        2 => obs.status.player_count = obs.status.player_count.map(|c| c - 1),
        3 => obs.status.observed_generation = Some(2),
        4 => obs.generation = Some(2),
        5 => obs.status.conditions[condition].message.push('!'),
        6 => obs.status.conditions[condition].reason = "Other".to_owned(),
        7 => obs.status.conditions[condition].status = crate::condition::ConditionStatus::False,
        8 => {
            obs.status.conditions.pop();
        }
        9 => obs.status.conditions[condition].observed_generation = None,
        10 => obs.mac_key_exists = false,
        11 => obs.key_generation = None,
        12 => obs.key_generation.as_mut().unwrap().phase = KeyGenerationPhase::Running,
        13 => obs.key_generation.as_mut().unwrap().formation.player_id += 1,
        14 => obs
            .configuration
            .as_mut()
            .unwrap()
            .members
            .edit(|l| l[m].endpoint = other_endpoint.clone()),
        15 => obs
            .configuration
            .as_mut()
            .unwrap()
            .members
            .edit(|l| l[m].certificate = other_certificate.clone()),
        16 => obs.services.as_mut().unwrap().ready = false,
        17 => obs
            .gateways
            .as_mut()
            .unwrap()
            .formation
            .members
            .edit(|l| l.truncate(m)),
        18 => obs
            .services
            .as_mut()
            .unwrap()
            .formation
            .members
            .edit(|l| l[m].name = "zulu".parse().unwrap()),
        19 => obs.configuration.as_mut().unwrap().parameters = other_parameters(),
        20 => obs.published = None,
        21 => obs.published.as_mut().unwrap().state = State::Starting,
        22 => obs
            .published
            .as_mut()
            .unwrap()
            .members
            .edit(|l| l[m].admitted = false),
        23 => obs
            .published
            .as_mut()
            .unwrap()
            .members
            .edit(|l| l[m].fingerprint = None),
        24 => obs
            .published
            .as_mut()
            .unwrap()
            .members
            .edit(|l| l[m].endpoint = other_endpoint.clone()),
        25 => obs.published.as_mut().unwrap().endpoint = other_endpoint,
        26 => obs.published.as_mut().unwrap().protocol.push('2'),
        27 => obs.published.as_mut().unwrap().virtual_cloud.push('2'),
        28 => obs.published.as_mut().unwrap().parameters = other_parameters(),
        29 => obs.published.as_mut().unwrap().certificate = other_certificate.clone(),
        30 => obs.partners[p].fetch = Fetch::Failed("connection refused".to_owned()),
        31 => obs.partners[p].stored = None,
        32 => stored(&mut obs, p).status = None,
        33 => {
            stored(&mut obs, p).certificate = [None, Some(other_certificate.clone())][x % 2].clone()
        }
        34 => stored(&mut obs, p).record.endpoint = other_endpoint,
        35 => stored(&mut obs, p).record.certificate.namespace.push('2'),
        36 => stored(&mut obs, p).record.certificate.name.push('2'),
        37 => stored(&mut obs, p).record.parameters = other_parameters(),
        38 => recorded(&mut obs, p).admitted = false,
        39 => recorded(&mut obs, p).fingerprint = None,
        40 => {
            recorded(&mut obs, p).admitted_fingerprint =
                Some(other_certificate.fingerprint().clone())
        }
        41 => recorded(&mut obs, p).compatible = false,
        42 => recorded(&mut obs, p)
            .incompatibilities
            .push("prime".to_owned()),
        43 => recorded(&mut obs, p).partner_admitted_us ^= true,
        44 => recorded(&mut obs, p).reachable = false,
        45 => recorded(&mut obs, p).last_fetch_error = Some("refused".to_owned()),
        46 => recorded(&mut obs, p).sequence = [None, Some(7)][x % 2],
        47 => {
            recorded(&mut obs, p).content_digest =
                recorded(&mut obs, p).content_digest.map(|d| d ^ 1)
        }
        48 => {
            // A republish with the same content, numbered 1, 2 or 3 higher.
            let mut d = doc(&mut obs);
            d.sequence += 1 + (x % 3) as u64;
            d.state = State::Starting;
            obs.partners[p].fetch = Fetch::Fetched(d);
        }
        49 => {
            // Its view of one member changes: not admitted, or another
            // certificate; its digest follows, as verification computes it.
            let mut d = doc(&mut obs);
            let j = m % d.members.len();
            if x.is_multiple_of(2) {
                d.members[j].admitted = false;
                d.mutual_digest = None;
            } else {
                d.members[j].fingerprint = Some(other_certificate.fingerprint().clone());
                d.mutual_digest =
                    Some(view_digest(d.members.iter().map(|v| {
                        (&v.name, &v.endpoint, v.fingerprint.as_ref().unwrap())
                    })));
            }
            obs.partners[p].fetch = Fetch::Fetched(d);
        }
        50 => {
            let mut d = doc(&mut obs);
            d.parameters = other_parameters();
            obs.partners[p].fetch = Fetch::Fetched(d);
        }
        51 => {
            let mut d = doc(&mut obs);
            d.content_digest ^= 1;
            obs.partners[p].fetch = Fetch::Fetched(d);
        }
        52 => {
            // It no longer lists us as admitted.
            let mut d = doc(&mut obs);
            let us = obs.identity.name.clone();
            d.members
                .iter_mut()
                .filter(|v| v.name == us)
                .for_each(|v| v.admitted = false);
            obs.partners[p].fetch = Fetch::Fetched(d);
        }
        53 => {
            let mut d = doc(&mut obs);
            d.certificate = other_certificate.clone();
            obs.partners[p].fetch = Fetch::Fetched(d);
        }
        54 => {
            // Its admissions become unsettled, or vouch for another certificate.
            let name = obs.partners[p].name.clone();
            for a in obs.admissions.iter_mut().filter(|a| a.partner == name) {
                if x.is_multiple_of(2) {
                    (a.pinned, a.bound) = (None, None);
                } else {
                    a.pinned = Some(other_certificate.fingerprint().clone());
                }
            }
        }
        55 => {
            let name = obs.partners[p].name.clone();
            obs.admissions.retain(|a| a.partner != name);
        }
        56 => obs.admissions.push(crate::partner::Admission {
            name: format!("stray-{x}"),
            partner: ["aaa", "zulu", "charlie"][x % 3].parse().unwrap(),
            pinned: [None, Some(other_certificate.fingerprint().clone())][(x % 2) ^ 1].clone(),
            bound: None,
        }),
        57 => obs.admissions.reverse(),
        58 => obs.partners.reverse(),
        59 => {
            // A partner that left the spec, stored or not.
            let stored = x
                .is_multiple_of(2)
                .then(|| rest.partners[p].stored.clone())
                .flatten();
            obs.partners.push(PartnerObservation {
                name: "zulu".parse().unwrap(),
                fetch: Fetch::Skipped,
                stored,
                seen_since: None,
            });
        }
        60 => {
            let spec = obs.spec.as_mut().unwrap();
            spec.partners[p].endpoint = other_endpoint;
        }
        61 => obs.spec.as_mut().unwrap().parameters = other_parameters(),
        62 => obs.identity.certificate = other_certificate.clone(),
        63 => obs.identity.endpoint = other_endpoint,
        64 => obs.vc = VcKey::new("ns2", "vc"),
        65 => obs.vc = VcKey::new("ns", "vc2"),
        _ => {}
    }
    obs
}

/// Number of changes [`mutate`] knows (the last one changes nothing).
const CHANGES: usize = 67;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// On any generated observation and the ones after executing its plans.
    #[test]
    fn fast_path_agrees_on_generated_observations(setup in setup()) {
        let mut obs = setup.observed();
        for _ in 0..4 {
            agrees(&obs)?;
            obs = apply(&obs, &decide(&obs));
        }
    }

    /// A VC at rest takes the fast path, and any single change to what it
    /// observes leaves it exactly when the pipeline then plans something.
    #[test]
    fn fast_path_agrees_on_every_change_at_rest(
        count in 2usize..=NAMES.len(),
        local in 0usize..NAMES.len(),
        admissions in prop::collection::vec(prop_oneof![Just(0u8), Just(3u8)], 1..3),
        change in 0..CHANGES,
        k in 0usize..NAMES.len(),
        x in 0usize..12,
    ) {
        let rest = formed(count, local % count, &admissions);
        prop_assert!(fast(&rest), "a formed group at rest took the full pipeline");
        prop_assert!(full(&rest).is_empty());
        let changed = mutate(&rest, change, k, x);
        agrees(&changed)?;
        if as_reconciled(&changed) {
            prop_assert_eq!(fast(&changed), full(&changed).is_empty(), "change {}", change);
        }
    }
}

/// Every change of [`mutate`] but a republish of the same content makes
/// the pipeline plan something, so the agreement above is not vacuous.
#[test]
fn every_change_but_a_state_republish_is_noticed() {
    let rest = formed(4, 1, &[0]);
    for change in 0..CHANGES {
        for x in 0..12 {
            let changed = mutate(&rest, change, 2, x);
            let quiet = full(&changed).is_empty();
            let republish = change == 48 && x % 3 == 0;
            let unchanged = change == CHANGES - 1;
            // An admission of no partner, or a second, settled one.
            let bystander = change == 56 && !(x % 3 == 2 && x % 2 == 1);
            let order = change == 57 || change == 58; // order of lists is not a fact
            let left_unstored = change == 59 && x % 2 == 1;
            if republish || unchanged || bystander || order || left_unstored {
                continue;
            }
            assert!(!quiet, "change {change} (x = {x}) went unnoticed");
        }
    }
}
