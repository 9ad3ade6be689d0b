//! In-memory implementations of the ports, for tests and for embedding
//! Spalding where no Kubernetes runs: [`InMemoryCluster`] (a party's objects
//! in a map), [`InProcessTransport`] (partners' documents read straight from
//! their in-memory clusters), [`SimulatedLauncher`] (key generation that
//! completes by itself) and [`InsecureSeededEntropy`] (reproducible, and
//! therefore not secret, randomness). [`Federation`] wires N such parties
//! into one Virtual Cloud. None of them is for production.

mod cluster;
mod entropy;
mod federation;
mod launcher;
mod transport;

pub use cluster::{InMemoryCluster, Readiness};
pub use entropy::InsecureSeededEntropy;
pub use federation::{Federation, FederationParty};
pub use launcher::SimulatedLauncher;
pub use transport::InProcessTransport;
