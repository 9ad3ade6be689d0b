//! The fault matrix: whole simulated runs (three parties, real controllers,
//! real partner-info servers, in-memory API servers) with faults injected
//! into every API server ([`FaultPlan`]) and a partner unreachable for a
//! while ([`Options::outage`]). Each run must still reach `ready` with the MAC
//! key share Secret written once and never replaced: the shares the group
//! formed with are the shares it keeps.
//!
//! Rates are per request. Every lifecycle step (configuration, services,
//! gateways, key generation's objects) tries all of its writes in each pass
//! and skips the objects the API server already holds as rendered, so the
//! retries of a step accumulate progress: with a quarter of all writes
//! failing ([`a_quarter_of_all_writes_failing`]) the group forms in well
//! under a minute, where a step that stopped at its first failed write and
//! started over did not get past `starting` within 150 s. Real API servers
//! never answer a forced server-side apply (all of Spalding's writes but
//! creates) with 409, so the conflicts here are harsher than a cluster's.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use spalding_core::configuration::{MAC_KEY_SECRET, MAC_KEY_SHARE_2, MAC_KEY_SHARE_P};
use spalding_k8s::apiserver::faults::{FaultCounts, FaultPlan};
use spalding_k8s::crd::VirtualCloudState;
use spalding_k8s::simulation::{Options, Print, Report, run};

/// Runs three parties under `faults` and `outage` and checks the outcome.
async fn formed_under(faults: FaultPlan, outage: Option<(usize, Duration, Duration)>) -> Report {
    // RUST_LOG=spalding_k8s=debug shows why a run does not converge.
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    let print: Print = Arc::new(move |line: &str| sink.lock().unwrap().push(line.to_owned()));
    let options = Options {
        parties: 3,
        auto_admit: true,
        timeout: Duration::from_secs(150),
        faults,
        outage,
        keep_objects: true,
        ..Options::default()
    };
    let report = run(options, print).await.unwrap();
    let lines = lines.lock().unwrap().join("\n");
    assert!(report.ready, "{}\n{lines}", report.to_text());
    for party in &report.parties {
        assert_eq!(party.state, Some(VirtualCloudState::Ready));
        assert_eq!(
            party.mac_key_secret_versions, 1,
            "{}: the MAC key share Secret was written once and never replaced\n{lines}",
            party.name
        );
        let shares: Vec<&Value> = party
            .objects
            .iter()
            .filter(|o| {
                o["kind"] == "Secret" && o["metadata"]["name"].as_str() == Some(MAC_KEY_SECRET)
            })
            .collect();
        assert_eq!(shares.len(), 1, "{}: one MAC key share Secret", party.name);
        for key in [MAC_KEY_SHARE_P, MAC_KEY_SHARE_2] {
            assert!(
                shares[0]["data"][key]
                    .as_str()
                    .is_some_and(|v| !v.is_empty()),
                "{}: {key} present",
                party.name
            );
        }
    }
    report
}

fn injected(report: &Report) -> FaultCounts {
    report
        .parties
        .iter()
        .fold(FaultCounts::default(), |mut sum, p| {
            sum.requests += p.faults.requests;
            sum.slow += p.faults.slow;
            sum.unavailable += p.faults.unavailable;
            sum.failed_write += p.faults.failed_write;
            sum.conflict += p.faults.conflict;
            sum.lost_answer += p.faults.lost_answer;
            sum.dropped_watch += p.faults.dropped_watch;
            sum.expired_watch += p.faults.expired_watch;
            sum
        })
}

fn print_matrix_row(name: &str, report: &Report) {
    let counts = injected(report);
    let slowest = report
        .parties
        .iter()
        .filter_map(|p| p.ready_after)
        .max()
        .unwrap_or_default();
    let writes = report.parties.iter().map(|p| p.writes).max().unwrap_or(0);
    // Shown with --nocapture: the fault matrix of the closing note.
    println!(
        "fault matrix | {name} | ready after {:.1} s | at most {writes} controller writes per party | {counts:?}",
        slowest.as_secs_f64()
    );
}

fn plan(seed: u64) -> FaultPlan {
    FaultPlan {
        seed,
        max_delay: Duration::from_millis(200),
        max_watch_lifetime: Duration::from_secs(3),
        ..FaultPlan::none()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicts_and_server_errors() {
    let report = formed_under(
        FaultPlan {
            conflict: 40,
            unavailable: 40,
            ..plan(11)
        },
        None,
    )
    .await;
    let counts = injected(&report);
    assert!(counts.conflict > 0 && counts.unavailable > 0, "{counts:?}");
    print_matrix_row("409 conflicts 4% + 500s 4%", &report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_applied_but_answers_lost() {
    let report = formed_under(
        FaultPlan {
            lost_answer: 100,
            ..plan(12)
        },
        None,
    )
    .await;
    assert!(injected(&report).lost_answer > 0);
    print_matrix_row("write applied, answer lost (500) 10%", &report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_and_expired_watches_and_slow_answers() {
    let report = formed_under(
        FaultPlan {
            dropped_watch: 500,
            expired_watch: 300,
            slow: 200,
            ..plan(13)
        },
        None,
    )
    .await;
    let counts = injected(&report);
    assert!(
        counts.dropped_watch > 0 && counts.expired_watch > 0 && counts.slow > 0,
        "{counts:?}"
    );
    print_matrix_row(
        "watches dropped 50% (< 3 s) + expired 30% + slow 20% (< 200 ms)",
        &report,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_down_for_a_while_then_everything_at_once() {
    let report = formed_under(
        FaultPlan {
            slow: 100,
            unavailable: 20,
            conflict: 20,
            lost_answer: 20,
            dropped_watch: 300,
            expired_watch: 100,
            ..plan(14)
        },
        Some((1, Duration::from_secs(1), Duration::from_secs(8))),
    )
    .await;
    assert!(injected(&report).total() > 0);
    print_matrix_row(
        "party-1 unreachable 1–9 s + every fault above at lower rates",
        &report,
    );
}

/// A quarter of all writes (POST, PUT, PATCH, DELETE) answered 500: the
/// rate at which `starting` used to stall (its ~25 writes had to succeed in
/// one pass). The group must form within a bound well below the timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarter_of_all_writes_failing() {
    let report = formed_under(
        FaultPlan {
            failed_write: 250,
            ..plan(15)
        },
        None,
    )
    .await;
    let counts = injected(&report);
    assert!(counts.failed_write > 0, "{counts:?}");
    let slowest = report
        .parties
        .iter()
        .filter_map(|p| p.ready_after)
        .max()
        .unwrap_or_default();
    assert!(
        slowest < Duration::from_secs(60),
        "ready only after {slowest:?}\n{}",
        report.to_text()
    );
    // Fault-free, a party writes about 60 times; each failed write is
    // retried once it is due, and nothing already written is written again.
    let writes = report.parties.iter().map(|p| p.writes).max().unwrap_or(0);
    assert!(writes < 130, "{writes} writes\n{}", report.to_text());
    print_matrix_row("writes failing 25% (500)", &report);
}
