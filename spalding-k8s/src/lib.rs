//! Spalding's adapters: implementations of `spalding-core`'s ports that do
//! real I/O. The operating system's CSPRNG ([`entropy::OsEntropy`]); the
//! custom resources ([`crd`]); the Kubernetes `Cluster` ([`cluster::KubeCluster`])
//! and the kube-runtime controller that runs the core's reconciler
//! ([`controller`]). The HTTPS `PartnerTransport` and the partner-info server
//! follow.

pub mod cluster;
pub mod controller;
pub mod crd;
pub mod entropy;

#[cfg(test)]
mod tests;
