//! The pure core of Spalding, the Virtual Cloud manager of Carbyne Stack.
//!
//! A Virtual Cloud (VC) is formed by several independent parties, each running
//! a Carbyne Stack instance (a Virtual Cloud Provider). This crate holds what
//! every party decides alike, free of any I/O: the domain ([`spec`],
//! [`partner`], [`document`]), parameter and certificate checks
//! ([`parameters`], [`certificate`]), the state machine ([`machine::decide`])
//! and the ports through which adapters act ([`ports`]).
//!
//! One reconcile is **observe → decide → execute**: the [`Reconciler`] reads
//! the world through the ports into an [`Observed`], the pure function
//! [`decide`] turns it into a [`Plan`], and the reconciler executes the plan's
//! actions through the ports. Nothing here reads a clock or draws randomness
//! except through its parameters and the [`ports::Entropy`] port.
//!
//! [`memory`] holds in-memory implementations of the ports for tests and
//! embedding: an in-memory `Cluster`, an in-process `PartnerTransport` and a
//! simulated `MpcLauncher`.

pub mod certificate;
pub mod condition;
pub mod configuration;
pub(crate) mod digest;
pub mod document;
pub mod mac;
pub mod machine;
pub mod membership;
pub mod memory;
pub mod name;
pub mod parameters;
pub mod partner;
pub mod ports;
pub mod reconciler;
pub mod render;
pub mod seen;
pub mod sequence;
pub mod spec;

pub use machine::{Action, Observed, Plan, decide};
pub use reconciler::Reconciler;
