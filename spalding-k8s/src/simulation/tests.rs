//! End-to-end runs of the simulation through [`super::run`], its entry point.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use spalding_core::condition::types::PARAMETERS_COMPATIBLE;
use spalding_core::parameters::Parameters;

use super::{Options, Print, run};
use crate::crd::VirtualCloudState;

/// A printer collecting lines.
fn collect() -> (Print, Arc<Mutex<Vec<String>>>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let print: Print = Arc::new(move |line: &str| sink.lock().unwrap().push(line.to_owned()));
    (print, lines)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_parties_reach_ready_with_auto_admit() {
    let (print, lines) = collect();
    let options = Options {
        parties: 3,
        auto_admit: true,
        timeout: Duration::from_secs(90),
        linger: Duration::from_secs(2),
        ..Options::default()
    };
    let report = run(options, print).await.unwrap();
    let lines = lines.lock().unwrap().join("\n");
    assert!(report.ready, "{}\n{lines}", report.to_text());
    for party in &report.parties {
        assert_eq!(party.state, Some(VirtualCloudState::Ready));
        assert_eq!(
            party.mac_key_secret_versions, 1,
            "{}: the MAC key share Secret exists and was written once",
            party.name
        );
        assert!(party.writes > 0);
        let rest = party.at_rest.expect("lingered at rest");
        assert_eq!(rest.writes, 0, "{}: no write at rest", party.name);
        assert!(
            rest.fetches > 0,
            "{}: partners keep fetching its document at the refresh interval",
            party.name
        );
    }
    assert!(lines.contains("party-2: starting → ready"), "{lines}");
    assert!(lines.contains("fingerprint sha256:"), "{lines}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incompatible_prime_keeps_both_parties_in_admission() {
    let (print, _lines) = collect();
    let other = Parameters {
        // 2^127 - 1: a valid prime, not Carbyne Stack's.
        prime: "170141183460469231731687303715884105727".to_owned(),
        r: None,
        r_inv: None,
        ..Parameters::carbyne_stack_default()
    };
    let options = Options {
        parties: 2,
        auto_admit: true,
        timeout: Duration::from_secs(8),
        parameters: [(1, other)].into(),
        ..Options::default()
    };
    let report = run(options, print).await.unwrap();
    assert!(!report.ready);
    for party in &report.parties {
        assert_eq!(party.state, Some(VirtualCloudState::Admission));
        assert!(
            party
                .blocking
                .iter()
                .any(|c| c.starts_with(&format!("{PARAMETERS_COMPATIBLE}=False"))),
            "{}",
            report.to_text()
        );
    }
    assert!(report.to_text().contains("ParametersCompatible=False"));
}
