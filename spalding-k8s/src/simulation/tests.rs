//! End-to-end runs of the simulation through its entry points: [`run`]
//! (what `spalding simulate` calls) and the [`Simulation`] hooks. Every wait
//! is bounded, so a broken flow fails with each party's blocking conditions
//! instead of hanging.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use spalding_core::condition::reasons::{CERTIFICATE_CHANGED, FETCH_FAILED, INCOMPATIBLE};
use spalding_core::condition::types::{
    PARAMETERS_COMPATIBLE, PARTNERS_ADMITTED, PARTNERS_REACHABLE,
};
use spalding_core::configuration::MAC_KEY_SECRET;
use spalding_core::parameters::Parameters;

use super::{Options, PartyStatus, Print, Simulation, run};
use crate::crd::{ConditionState, VirtualCloudState};

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

/// Runs `parties` parties with auto-admit through [`run`] and checks that all
/// reach `ready`, each writing its MAC key share once.
async fn parties_reach_ready(parties: usize) -> Result {
    let (print, lines) = collect();
    let options = Options {
        parties,
        auto_admit: true,
        timeout: Duration::from_secs(90),
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
        assert!(party.blocking.is_empty(), "{:?}", party.blocking);
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
            .starts_with(&format!("all {parties} parties ready after ")),
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
    sim.wait_for(
        "ParametersCompatible=False (Incompatible) everywhere",
        REACH,
        incompatible,
    )
    .await?;
    // Auto-admit admits everything it can; still nobody moves on.
    sim.expect_for(
        "everyone in admission",
        Duration::from_secs(3),
        incompatible,
    )
    .await?;
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
    sim.wait_for("party-2 unreachable for the others", REACH, others_wait)
        .await?;
    sim.expect_for(
        "the others waiting in admission",
        Duration::from_secs(2),
        others_wait,
    )
    .await?;
    sim.start_operator(2).await?;
    sim.wait_until_ready(REACH).await?;
    let report = sim.finish().await?;
    assert!(report.ready, "{}", report.to_text());
    Ok(())
}

/// The MAC key share Secret of party `index`: its uid, resourceVersion and data.
async fn mac_share(
    sim: &Simulation,
    index: usize,
) -> Result<Option<(String, String, BTreeMap<String, ByteString>)>> {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_restarted_in_every_state_keeps_its_mac_key_share() -> Result {
    let options = Options {
        parties: 2,
        ..Options::default()
    };
    let mut sim = Simulation::start(options, quiet()).await?;
    // Without its driver, party 0 waits in initializing and starting.
    sim.stop_driver(0).await?;
    let hold = Duration::from_millis(1500);

    let state_of_0 = |state| move |s: &[PartyStatus]| in_state(&s[0], state);
    sim.wait_for(
        "party-0 in admission",
        REACH,
        state_of_0(VirtualCloudState::Admission),
    )
    .await?;
    sim.restart_operator(0).await?;
    sim.expect_for(
        "party-0 in admission",
        hold,
        state_of_0(VirtualCloudState::Admission),
    )
    .await?;
    assert!(
        mac_share(&sim, 0).await?.is_none(),
        "no share before admission"
    );

    sim.admit_all().await?;
    sim.wait_for("party-0 initializing", REACH, |s| {
        in_state(&s[0], VirtualCloudState::Initializing) && !s[0].mac_key_secret_versions.is_empty()
    })
    .await?;
    let share = mac_share(&sim, 0)
        .await?
        .expect("the share exists in initializing");
    assert!(!share.2.is_empty());
    sim.restart_operator(0).await?;
    sim.expect_for(
        "party-0 initializing",
        hold,
        state_of_0(VirtualCloudState::Initializing),
    )
    .await?;
    assert_eq!(mac_share(&sim, 0).await?.as_ref(), Some(&share));

    sim.complete_key_generation(0).await?;
    sim.wait_for(
        "party-0 starting",
        REACH,
        state_of_0(VirtualCloudState::Starting),
    )
    .await?;
    sim.restart_operator(0).await?;
    sim.expect_for(
        "party-0 starting",
        hold,
        state_of_0(VirtualCloudState::Starting),
    )
    .await?;
    assert_eq!(mac_share(&sim, 0).await?.as_ref(), Some(&share));

    sim.start_driver(0)?;
    sim.wait_until_ready(REACH).await?;
    sim.restart_operator(0).await?;
    sim.expect_for("everyone ready", hold, |s| {
        s.iter().all(PartyStatus::is_ready)
    })
    .await?;
    assert_eq!(mac_share(&sim, 0).await?.as_ref(), Some(&share));

    let report = sim.finish().await?;
    assert!(report.ready, "{}", report.to_text());
    for party in &report.parties {
        assert_eq!(party.mac_key_secret_versions, 1, "{}", party.name);
    }
    Ok(())
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
    sim.wait_for("CertificateChanged at party-0 and party-1", REACH, blocked)
        .await?;
    for status in &sim.statuses()[..2] {
        let message = &status.condition(PARTNERS_ADMITTED).unwrap().message;
        assert!(
            message.contains("party-2") && message.contains(new.as_str()),
            "{message}"
        );
    }
    // Auto-admit admits a partner once: the new certificate waits for a person.
    sim.expect_for(
        "everyone held in admission",
        Duration::from_secs(3),
        blocked,
    )
    .await?;

    sim.admit(0, 2).await?;
    sim.admit(1, 2).await?;
    sim.wait_until_ready(REACH).await?;
    let report = sim.finish().await?;
    assert!(report.ready, "{}", report.to_text());
    for party in &report.parties {
        assert_eq!(party.mac_key_secret_versions, 1, "{}", party.name);
    }
    Ok(())
}
