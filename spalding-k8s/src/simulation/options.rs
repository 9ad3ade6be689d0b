//! [`Options`]: what `spalding simulate` and the tests ask of a
//! simulation: the number of parties, admission, emitted objects, the
//! timeout, the controllers' pacing, per-party parameters, late operators,
//! injected faults and outages, and what the report keeps.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use spalding_core::parameters::Parameters;

#[cfg(doc)]
use super::{Simulation, run};
use crate::apiserver::faults::FaultPlan;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct Options {
    /// Number of parties (at least 2).
    pub parties: usize,
    /// Admit every partner automatically, pinned to its fingerprint.
    pub auto_admit: bool,
    /// Write every object of every API server here, one folder per party.
    pub emit: Option<PathBuf>,
    /// Give up after this long ([`run`] only).
    pub timeout: Duration,
    /// The VirtualCloud's name.
    pub virtual_cloud: String,
    /// The namespace of the VirtualCloud in every party's API server.
    pub namespace: String,
    /// The operators' partner refresh interval (a ready VC at rest).
    pub refresh_interval: Duration,
    /// The controllers' forming interval: how soon a VC that is not ready,
    /// or whose last reconcile acted, is reconciled again.
    pub forming_interval: Duration,
    /// The controllers' debounce after watch events.
    pub debounce: Duration,
    /// How long to stay at rest once every party is ready, counting the
    /// writes and partner fetches meanwhile.
    pub linger: Duration,
    /// Parameters of single parties (by index) instead of the Carbyne Stack defaults.
    pub parameters: BTreeMap<usize, Parameters>,
    /// Parties (by index) whose operator [`Simulation::start`] does not
    /// start: until [`Simulation::start_operator`], their partner-info
    /// endpoint refuses connections and their VC is not reconciled.
    pub late_operators: BTreeSet<usize>,
    /// Faults every API server injects (each party's seed is the plan's
    /// plus its index); none by default.
    pub faults: FaultPlan,
    /// A party (by index) whose partner-info endpoint every other party
    /// cannot reach for a while: (party, from the operator's start, how long).
    pub outage: Option<(usize, Duration, Duration)>,
    /// Keep every object of every API server in the report (Secrets included).
    pub keep_objects: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            parties: 3,
            auto_admit: false,
            emit: None,
            timeout: Duration::from_secs(120),
            virtual_cloud: "demo".to_owned(),
            namespace: "default".to_owned(),
            refresh_interval: Duration::from_secs(1),
            forming_interval: Duration::from_millis(100),
            debounce: Duration::from_millis(20),
            linger: Duration::ZERO,
            parameters: BTreeMap::new(),
            late_operators: BTreeSet::new(),
            faults: FaultPlan::none(),
            outage: None,
            keep_objects: false,
        }
    }
}
