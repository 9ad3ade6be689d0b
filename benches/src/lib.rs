//! Shared set-up of Spalding's benchmarks: federations of in-memory parties
//! brought to rest, and the observations `decide` is measured on. Run the
//! benchmarks with `cargo bench -p benches`.

#![allow(clippy::expect_used, clippy::panic)]

use futures::executor::block_on;
use spalding_core::certificate::Certificate;
use spalding_core::condition::Timestamp;
use spalding_core::decide;
use spalding_core::machine::{LocalIdentity, Observed};
use spalding_core::memory::{Federation, Readiness};
use spalding_core::parameters::ValidatedParameters;
use spalding_core::ports::VcKey;
use spalding_core::spec::Endpoint;

/// The partner counts measured.
pub const PARTNERS: [usize; 3] = [3, 16, 64];

#[allow(clippy::expect_used)]
/// A party with a fresh certificate.
pub fn identity(i: usize) -> LocalIdentity {
    let key = rcgen::KeyPair::generate().expect("key");
    let pem = rcgen::CertificateParams::new(vec![format!("party-{i}.example")])
        .expect("params")
        .self_signed(&key)
        .expect("certificate")
        .pem();
    LocalIdentity {
        name: format!("party-{i:03}").parse().expect("name"),
        endpoint: Endpoint::new(&format!("https://party-{i}.example")).expect("endpoint"),
        certificate: Certificate::from_pem(&pem).expect("pem"),
    }
}

/// Observations of party 0 in a federation of `partners + 1` parties: the
/// first one (nothing stored yet, every partner published) and one at rest.
#[allow(clippy::expect_used, clippy::panic)]
pub fn observations(partners: usize) -> (Observed, Observed) {
    let now = Timestamp::new("2026-11-30T00:00:00Z");
    let federation = Federation::new(
        VcKey::new("bench", "vc"),
        (0..=partners).map(identity).collect(),
        &ValidatedParameters::carbyne_stack_default(),
        Readiness::Immediate,
        1,
    );
    let observe = |f: &Federation| {
        block_on(f.parties()[0].reconciler.observe(f.vc(), now.clone()))
            .expect("observe")
            .expect("vc exists")
    };
    // Every party but the first publishes; the first then sees them all.
    for index in 1..=partners {
        block_on(federation.reconcile(index, now.clone())).expect("reconcile");
    }
    let forming = observe(&federation);
    // Form the VC, then settle: once everyone is ready, one more round lets
    // every party record the others' final documents.
    for _ in 0..24 {
        let outcomes = block_on(federation.round(&now)).expect("round");
        federation.admit_all();
        if federation.all_ready() && outcomes.iter().all(|o| o.plan.is_empty()) {
            let at_rest = observe(&federation);
            assert!(decide(&at_rest).is_empty(), "not at rest");
            return (forming, at_rest);
        }
    }
    panic!("the federation did not come to rest");
}
