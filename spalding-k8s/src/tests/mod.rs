//! Tests of the controller and [`crate::cluster::KubeCluster`] against a
//! scripted API server, in the style of kube-rs's controller-rs: each
//! scenario lists the exact requests a reconcile must make (method, path and
//! query, the essentials of the body) and the answers, in order. A missing
//! request times out; an extra one fails the reconcile.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admission;
pub(crate) mod fixtures;
mod key_material;
mod lifecycle;
mod operator;
mod pacing;
mod partner_reads;
mod replicas;
mod scenarios;
