//! End-to-end runs of the simulation through its entry points: [`run`]
//! (what `spalding simulate` calls) and the [`Simulation`] hooks. Every wait
//! is bounded, so a broken flow fails with each party's blocking conditions
//! instead of hanging.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::sync::atomic::Ordering;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use spalding_core::condition::reasons::{CERTIFICATE_CHANGED, FETCH_FAILED, INCOMPATIBLE};
use spalding_core::condition::types::{
    PARAMETERS_COMPATIBLE, PARTNERS_ADMITTED, PARTNERS_REACHABLE,
};
use spalding_core::configuration::MAC_KEY_SECRET;
use spalding_core::parameters::Parameters;
use spalding_core::partner::partner_object_name;

use super::{Options, PartyStatus, Print, Simulation, run};
use crate::cluster::{SEQUENCE_KEY, document_config_map_name};
use crate::crd::{ConditionState, VirtualCloudPartner, VirtualCloudState};

/// Bound of every wait for a state to be reached.
const REACH: Duration = Duration::from_secs(60);

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

/// A printer collecting lines.
fn collect() -> (Print, Arc<Mutex<Vec<String>>>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let print: Print = Arc::new(move |line: &str| sink.lock().unwrap().push(line.to_owned()));
    (print, lines)
}

fn quiet() -> Print {
    Arc::new(|_: &str| {})
}

/// Whether `status` has condition `type_` False with `reason`.
fn fails_with(status: &PartyStatus, type_: &str, reason: &str) -> bool {
    status
        .condition(type_)
        .is_some_and(|c| c.status == ConditionState::False && c.reason == reason)
}

fn in_state(status: &PartyStatus, state: VirtualCloudState) -> bool {
    status.state == Some(state)
}

/// Finishes `sim` and checks that every party is ready with its MAC key
/// share written once.
async fn finish_ready(sim: Simulation) -> Result {
    let report = sim.finish().await?;
    assert!(report.ready, "{}", report.to_text());
    for party in &report.parties {
        assert_eq!(party.mac_key_secret_versions, 1, "{}", party.name);
    }
    Ok(())
}

/// Waits until `holds` holds of every party's status, then insists on it
/// for a few refresh intervals.
async fn settles(
    sim: &mut Simulation,
    what: &str,
    holds: impl Fn(&[PartyStatus]) -> bool + Copy,
) -> Result {
    sim.wait_for(what, REACH, holds).await?;
    sim.expect_for(what, Duration::from_secs(3), holds).await?;
    Ok(())
}

/// The most API writes one party's controller may make until `ready` with
/// `parties` parties: the objects a lifecycle needs (22 + 5·N, counted in
/// BENCHMARKS.md) and the progress reporting (statuses, the document,
/// Events), with room for the timing of a run. Measured in debug runs: 40–43
/// writes with 2 parties, 48–54 with 3, 64–75 with 5 (89–103 with 8). Before
/// partner statuses stopped recording republishes that said nothing new
/// (`spalding_core::seen`): 42–46, 52–57, 74–77; before they stopped
/// recording state-only republishes and the adapter skipped its no-op
/// writes, 59–65 with 3.
fn write_budget(parties: usize) -> u64 {
    let parties = u64::try_from(parties).unwrap_or(u64::MAX);
    28 + 10 * parties
}

/// Runs `parties` parties with auto-admit through [`run`] and checks that all
/// reach `ready`, each writing its MAC key share once.
async fn parties_reach_ready(parties: usize) -> Result {
    let (print, lines) = collect();
    let options = Options {
        parties,
        auto_admit: true,
        timeout: Duration::from_secs(90),
        linger: Duration::from_secs(2),
        ..Options::default()
    };
    let report = run(options, print).await?;
    let lines = lines.lock().unwrap().join("\n");
    assert!(report.ready, "{}\n{lines}", report.to_text());
    assert_eq!(report.parties.len(), parties);
    for party in &report.parties {
        assert_eq!(party.state, Some(VirtualCloudState::Ready));
        assert!(party.ready_after.is_some());
        assert_eq!(
            party.mac_key_secret_versions, 1,
            "{}: the MAC key share Secret exists and was written once",
            party.name
        );
        assert!(party.writes > 0);
        assert!(
            party.writes <= write_budget(parties),
            "{}: {} API writes until ready, at most {} expected",
            party.name,
            party.writes,
            write_budget(parties)
        );
        assert!(party.blocking.is_empty(), "{:?}", party.blocking);
        let rest = party.at_rest.ok_or("the simulation lingered at rest")?;
        assert_eq!(rest.writes, 0, "{}: no write at rest", party.name);
        assert!(
            rest.fetches > 0,
            "{}: it keeps fetching its partners' documents at the refresh interval",
            party.name
        );
    }
    let last = parties - 1;
    assert!(
        lines.contains(&format!("party-{last}: starting → ready")),
        "{lines}"
    );
    assert!(lines.contains("fingerprint sha256:"), "{lines}");
    assert!(
        report
            .to_text()
            .starts_with(&format!("all {parties} parties ready ")),
        "{}",
        report.to_text()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_parties_reach_ready() -> Result {
    parties_reach_ready(2).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_parties_reach_ready() -> Result {
    parties_reach_ready(3).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_parties_reach_ready() -> Result {
    parties_reach_ready(5).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incompatible_prime_keeps_everyone_in_admission() -> Result {
    let other = Parameters {
        // 2^127 - 1: a valid prime, not Carbyne Stack's.
        prime: "170141183460469231731687303715884105727".to_owned(),
        r: None,
        r_inv: None,
        ..Parameters::carbyne_stack_default()
    };
    let options = Options {
        parties: 3,
        auto_admit: true,
        parameters: BTreeMap::from([(1, other)]),
        ..Options::default()
    };
    let mut sim = Simulation::start(options, quiet()).await?;
    let incompatible = |s: &[PartyStatus]| {
        s.iter().all(|p| {
            in_state(p, VirtualCloudState::Admission)
                && fails_with(p, PARAMETERS_COMPATIBLE, INCOMPATIBLE)
        })
    };
    // Auto-admit admits everything it can; still nobody moves on.
    settles(&mut sim, "everyone Incompatible in admission", incompatible).await?;
    for status in sim.statuses() {
        let condition = status.condition(PARAMETERS_COMPATIBLE).unwrap();
        assert!(
            condition.message.contains("prime differs"),
            "{}",
            condition.message
        );
    }
    // Party 1 names both others; the others name party 1 only.
    let message = |i: usize| {
        sim.statuses()[i]
            .condition(PARAMETERS_COMPATIBLE)
            .unwrap()
            .message
            .clone()
    };
    assert!(message(0).contains("party-1") && !message(0).contains("party-2"));
    assert!(message(1).contains("party-0") && message(1).contains("party-2"));
    let report = sim.finish().await?;
    assert!(!report.ready);
    let text = report.to_text();
    assert!(
        text.starts_with("timed out") || text.contains("not every party is ready"),
        "{text}"
    );
    assert!(
        text.contains("ParametersCompatible=False (Incompatible)"),
        "{text}"
    );
    for party in &report.parties {
        assert_eq!(
            party.mac_key_secret_versions, 0,
            "no share before admission"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_unreachable_at_first_is_fetched_once_up() -> Result {
    let options = Options {
        parties: 3,
        auto_admit: true,
        late_operators: [2].into(),
        ..Options::default()
    };
    let mut sim = Simulation::start(options, quiet()).await?;
    let others_wait = |s: &[PartyStatus]| {
        s[..2].iter().all(|p| {
            in_state(p, VirtualCloudState::Admission)
                && fails_with(p, PARTNERS_REACHABLE, FETCH_FAILED)
                && p.condition(PARTNERS_REACHABLE)
                    .is_some_and(|c| c.message.contains("party-2"))
        }) && s[2].state.is_none()
    };
    settles(&mut sim, "party-2 unreachable for the others", others_wait).await?;
    sim.start_operator(2).await?;
    sim.wait_until_ready(REACH).await?;
    finish_ready(sim).await
}

/// A MAC key share Secret: its uid, resourceVersion and data.
type Share = (String, String, BTreeMap<String, ByteString>);

/// The MAC key share Secret of party `index`.
async fn mac_share(sim: &Simulation, index: usize) -> Result<Option<Share>> {
    let party = sim.party(index)?;
    let secrets: Api<Secret> = Api::namespaced(party.client.clone(), "default");
    Ok(secrets.get_opt(MAC_KEY_SECRET).await?.map(|s| {
        (
            s.metadata.uid.unwrap_or_default(),
            s.metadata.resource_version.unwrap_or_default(),
            s.data.unwrap_or_default(),
        )
    }))
}

/// Waits for party 0 in `state`, restarts its operator, checks that it
/// stays in `state` and that its MAC key share Secret is untouched; returns
/// that Secret.
async fn restart_party_0_in(
    sim: &mut Simulation,
    state: VirtualCloudState,
) -> Result<Option<Share>> {
    let in_it = move |s: &[PartyStatus]| in_state(&s[0], state);
    let what = format!("party-0 in {state:?}");
    sim.wait_for(&what, REACH, in_it).await?;
    let before = mac_share(sim, 0).await?;
    sim.restart_operator(0).await?;
    // `starting` is not held: with the default templates (Klyshko's objects
    // are ready once they exist) it ends as soon as the services are applied.
    if state != VirtualCloudState::Starting {
        sim.expect_for(&what, Duration::from_millis(1500), in_it)
            .await?;
    }
    assert_eq!(
        mac_share(sim, 0).await?,
        before,
        "{what}: the MAC key share changed"
    );
    Ok(before)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_restarted_in_every_state_keeps_its_mac_key_share() -> Result {
    let options = Options {
        parties: 2,
        ..Options::default()
    };
    let mut sim = Simulation::start(options, quiet()).await?;
    // Without its driver, party 0 waits in initializing (its key generation
    // Job does not complete); starting passes as soon as its services exist.
    sim.stop_driver(0).await?;

    let none = restart_party_0_in(&mut sim, VirtualCloudState::Admission).await?;
    assert!(none.is_none(), "no share before admission");
    sim.admit_all().await?;
    // The status is written after the share: initializing means it exists.
    let share = restart_party_0_in(&mut sim, VirtualCloudState::Initializing).await?;
    assert!(share.as_ref().is_some_and(|s| !s.2.is_empty()));
    sim.complete_key_generation(0).await?;
    let after = restart_party_0_in(&mut sim, VirtualCloudState::Starting).await?;
    assert_eq!(after, share);
    sim.start_driver(0)?;
    let after = restart_party_0_in(&mut sim, VirtualCloudState::Ready).await?;
    assert_eq!(after, share);

    sim.wait_until_ready(REACH).await?;
    finish_ready(sim).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swapped_certificate_blocks_progress_until_admitted_again() -> Result {
    let options = Options {
        parties: 3,
        auto_admit: true,
        ..Options::default()
    };
    let mut sim = Simulation::start(options, quiet()).await?;
    sim.wait_until_ready(REACH).await?;
    let old = sim.party(2)?.fingerprint.clone();
    let new = sim.rotate_identity(2).await?;
    assert_ne!(old, new);

    let blocked = |s: &[PartyStatus]| {
        s.iter().all(|p| in_state(p, VirtualCloudState::Admission))
            && s[..2]
                .iter()
                .all(|p| fails_with(p, PARTNERS_ADMITTED, CERTIFICATE_CHANGED))
    };
    // Auto-admit admits a partner once: the new certificate waits for a person.
    settles(
        &mut sim,
        "CertificateChanged at party-0 and party-1",
        blocked,
    )
    .await?;
    for status in &sim.statuses()[..2] {
        let message = &status.condition(PARTNERS_ADMITTED).unwrap().message;
        assert!(
            message.contains("party-2") && message.contains(new.as_str()),
            "{message}"
        );
    }

    sim.admit(0, 2).await?;
    sim.admit(1, 2).await?;
    sim.wait_until_ready(REACH).await?;
    finish_ready(sim).await
}

#[tokio::test]
async fn hooks_and_options_name_existing_parties_only() -> Result {
    let options = Options {
        parties: 2,
        late_operators: [2].into(),
        ..Options::default()
    };
    let refused = Simulation::start(options, quiet()).await;
    assert!(
        matches!(
            refused,
            Err(super::Error::NoSuchParty {
                index: 2,
                parties: 2
            })
        ),
        "{:?}",
        refused.err()
    );
    let options = Options {
        parties: 2,
        ..Options::default()
    };
    let mut sim = Simulation::start(options, quiet()).await?;
    assert!(matches!(
        sim.restart_operator(5).await,
        Err(super::Error::NoSuchParty { index: 5, .. })
    ));
    assert!(sim.admit(0, 7).await.is_err());
    // kube-runtime 5's controller, told to stop before its first list of
    // VCs completed, waits for that list forever (its runner holds on
    // `delay_tasks_until`) and is aborted after the stop grace: let both
    // operators reconcile once first.
    sim.wait_for("both in admission", REACH, |s| {
        s.iter().all(|p| in_state(p, VirtualCloudState::Admission))
    })
    .await?;
    let report = sim.finish().await?;
    assert_eq!(report.parties.len(), 2);
    Ok(())
}

/// The sequence number of party `index`'s stored partner-info document.
async fn stored_sequence(sim: &Simulation, index: usize) -> Result<Option<u64>> {
    let party = sim.party(index)?;
    let maps: Api<ConfigMap> = Api::namespaced(party.client.clone(), "default");
    let map = maps.get_opt(&document_config_map_name("demo")).await?;
    Ok(map
        .and_then(|m| m.data)
        .and_then(|d| d.get(SEQUENCE_KEY).and_then(|s| s.parse().ok())))
}

/// The sequence number party `index` last accepted from party `partner`.
async fn accepted_sequence(sim: &Simulation, index: usize, partner: usize) -> Result<Option<u64>> {
    let party = sim.party(index)?;
    let partners: Api<VirtualCloudPartner> = Api::namespaced(party.client.clone(), "default");
    let name = partner_object_name("demo", &sim.party(partner)?.name);
    Ok(partners
        .get_opt(&name)
        .await?
        .and_then(|p| p.status)
        .and_then(|s| s.sequence))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_partner_document_is_republished_above_what_partners_accepted() -> Result {
    let options = Options {
        parties: 3,
        auto_admit: true,
        ..Options::default()
    };
    let mut sim = Simulation::start(options, quiet()).await?;
    sim.wait_until_ready(REACH).await?;
    let before = stored_sequence(&sim, 0).await?.ok_or("party-0 published")?;
    for partner in [1, 2] {
        // The number recorded is the one accepted, or lower when the
        // republishes since said nothing new to that partner and it saw
        // each of them (not recorded, see `spalding_core::seen`).
        let accepted = accepted_sequence(&sim, partner, 0)
            .await?
            .ok_or("accepted")?;
        assert!(
            (1..=before).contains(&accepted),
            "party-{partner} recorded {accepted}, party-0 published {before}"
        );
    }

    let party = sim.party(0)?;
    let maps: Api<ConfigMap> = Api::namespaced(party.client.clone(), "default");
    maps.delete(&document_config_map_name("demo"), &Default::default())
        .await?;
    party.harness_writes.fetch_add(1, Ordering::Relaxed);

    // Party 0 publishes again, above everything it published before, and
    // both partners accept the new document.
    let deadline = tokio::time::Instant::now() + REACH;
    loop {
        let republished = stored_sequence(&sim, 0).await?;
        let accepted = [
            accepted_sequence(&sim, 1, 0).await?,
            accepted_sequence(&sim, 2, 0).await?,
        ];
        if republished.is_some_and(|s| s > before) && accepted.iter().all(|a| *a == republished) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "republished {republished:?} after {before}, accepted {accepted:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Nobody refuses it as a rollback: every partner reachable, all ready.
    settles(&mut sim, "all ready, every partner reachable", |s| {
        s.iter().all(|p| {
            in_state(p, VirtualCloudState::Ready)
                && p.condition(PARTNERS_REACHABLE)
                    .is_some_and(|c| c.status == ConditionState::True)
        })
    })
    .await?;
    finish_ready(sim).await
}
