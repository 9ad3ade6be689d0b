//! Three parties form a Virtual Cloud, in one process.
//!
//! Each party has an in-memory cluster, the real `Reconciler` and `decide`,
//! and reads its partners' documents through the in-process transport
//! (`spalding_core::memory::Federation` wires them). Key generation is
//! simulated and services report ready as soon as they are created: no
//! MP-SPDZ, no Istio, no Kubernetes runs here. Once a partner's certificate
//! has been fetched, the operator admits it by the fingerprint it was shown.
//!
//! Run: `cargo run -p examples --example three-parties`

use std::time::{Instant, SystemTime};

use futures::executor::block_on;
use spalding_core::certificate::Certificate;
use spalding_core::condition::{ConditionStatus, Timestamp};
use spalding_core::machine::LocalIdentity;
use spalding_core::memory::{Federation, Readiness};
use spalding_core::parameters::ValidatedParameters;
use spalding_core::ports::VcKey;
use spalding_core::spec::{Endpoint, State};

const PARTIES: [&str; 3] = ["apple", "banana", "cherry"];
const MAX_ROUNDS: usize = 20;

type Error = Box<dyn std::error::Error>;

fn now() -> Timestamp {
    Timestamp::new(humantime::format_rfc3339_seconds(SystemTime::now()).to_string())
}

/// A party's identity with a freshly generated VCP certificate (an operator
/// would configure one). The private key is dropped: nothing here signs.
fn identity(name: &str) -> Result<LocalIdentity, Error> {
    let key = rcgen::KeyPair::generate()?;
    let pem = rcgen::CertificateParams::new(vec![format!("{name}.example.org")])?
        .self_signed(&key)?
        .pem();
    Ok(LocalIdentity {
        name: name.parse()?,
        endpoint: Endpoint::new(&format!("https://{name}.example.org/spalding"))?,
        certificate: Certificate::from_pem(&pem)?,
    })
}

fn main() -> Result<(), Error> {
    let started = Instant::now();
    let identities = PARTIES
        .iter()
        .map(|name| identity(name))
        .collect::<Result<Vec<_>, _>>()?;
    for identity in &identities {
        println!(
            "{:>7}: certificate {}",
            identity.name,
            identity.certificate.fingerprint()
        );
    }
    let vc = VcKey::new("carbynestack", "demo-vc");
    let parameters = ValidatedParameters::carbyne_stack_default();
    let federation = Federation::new(vc.clone(), identities, &parameters, Readiness::Immediate, 7);

    let mut states: Vec<Option<State>> = vec![None; PARTIES.len()];
    for round in 1..=MAX_ROUNDS {
        let outcomes = block_on(federation.round(&now()))?;
        for ((party, outcome), seen) in federation
            .parties()
            .iter()
            .zip(&outcomes)
            .zip(states.iter_mut())
        {
            if outcome.state != *seen {
                let show = |s: Option<State>| s.map_or_else(|| "-".to_owned(), |s| s.to_string());
                println!(
                    "round {round:>2} {:>7}: {} → {}",
                    party.identity.name,
                    show(*seen),
                    show(outcome.state)
                );
                *seen = outcome.state;
            }
        }
        let admitted = federation.admit_all();
        if admitted > 0 {
            println!(
                "round {round:>2}: operators admit {admitted} partners, each pinned to the fingerprint shown"
            );
        }
        if federation.all_ready() {
            println!(
                "all {} parties ready after {round} rounds in {:?}",
                PARTIES.len(),
                started.elapsed()
            );
            for party in federation.parties() {
                let status = party.cluster.status(&vc).unwrap_or_default();
                println!(
                    "{:>7}: player {} of {}, {} writes",
                    party.identity.name,
                    status.player_id.unwrap_or_default(),
                    status.player_count.unwrap_or_default(),
                    party.cluster.writes()
                );
            }
            return Ok(());
        }
    }
    for party in federation.parties() {
        for c in party.cluster.status(&vc).unwrap_or_default().conditions {
            if c.status != ConditionStatus::True {
                println!(
                    "{:>7}: {} {}: {}",
                    party.identity.name, c.type_, c.reason, c.message
                );
            }
        }
    }
    Err(format!("not every party was ready after {MAX_ROUNDS} rounds").into())
}
