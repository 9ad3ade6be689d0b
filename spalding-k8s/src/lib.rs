//! Spalding's adapters: implementations of `spalding-core`'s ports that do
//! real I/O: the operating system's CSPRNG ([`entropy::OsEntropy`]); the
//! partner protocol of DESIGN.md — the party's VCP [`identity`], document
//! [`signing`], the hardened HTTPS [`transport`] (with its [`retry`] policy),
//! the partner-info [`server`] and [`inspect`], what an operator runs before
//! admitting a partner; and Kubernetes — the custom resources ([`crd`]), the
//! `Cluster` port against the API server ([`cluster::KubeCluster`]), the
//! `MpcLauncher` port as a Job ([`launcher::KubeLauncher`]) and the
//! kube-runtime [`controller`] that runs the core's reconciler; the
//! [`operator`] wiring all of it into one long-running process (with
//! leader election and metrics), the [`status`] report of `spalding status`
//! and what `spalding admit` shows and creates ([`admit`]); an in-memory Kubernetes
//! [`apiserver`] for simulations and end-to-end tests, and [`simulation`],
//! which forms a Virtual Cloud of N parties in one process.

pub mod address;
pub mod admit;
pub mod apiserver;
pub mod cluster;
pub mod controller;
pub mod crd;
pub mod entropy;
pub mod identity;
pub mod inspect;
pub mod launcher;
pub mod operator;
pub mod retry;
pub mod sample;
pub mod server;
pub mod signing;
pub mod simulation;
pub mod status;
pub mod transport;

#[cfg(test)]
mod tests;
