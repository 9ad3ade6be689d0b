//! Fault injection for the in-memory API server and the partner transport,
//! so end-to-end runs can prove Spalding converges under the faults a real
//! cluster and the internet produce.
//!
//! [`FaultPlan`] says how often each fault happens, per mille of the
//! requests it applies to; [`Faults`] draws the decisions from a seeded
//! generator (splitmix64), so a plan and a seed give the same sequence of
//! decisions for the same sequence of requests, and counts what it injected
//! ([`FaultCounts`]). Faults of the API server:
//!
//! - **slow**: the answer waits up to [`FaultPlan::max_delay`];
//! - **unavailable**: 500 InternalError before anything happens;
//! - **failed write**: the same, for writes only (POST, PUT, PATCH, DELETE),
//!   so a plan can fail writes without slowing every read;
//! - **conflict**: a PUT or PATCH gets 409 Conflict (as for a stale
//!   `resourceVersion`) and changes nothing;
//! - **lost answer**: a write is applied, then answered with 500, so the
//!   client cannot tell whether it happened;
//! - **dropped watch**: a watch stream ends after a random time below
//!   [`FaultPlan::max_watch_lifetime`] (the client resumes from its last
//!   resourceVersion);
//! - **expired watch**: a watch resuming from a resourceVersion gets 410
//!   Expired at once (the client relists).
//!
//! [`OutageTransport`] wraps a [`PartnerTransport`]: fetches from the given
//! endpoints fail as unreachable during a time window (a partner down for a
//! while).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use spalding_core::document::PartnerDocument;
use spalding_core::ports::{PartnerTransport, TransportError};
use spalding_core::spec::Endpoint;
use tokio::time::Instant;

/// How often each fault happens, in requests per thousand it applies to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultPlan {
    /// Seed of the decisions.
    pub seed: u64,
    /// Requests answered late (any verb).
    pub slow: u32,
    /// Longest delay of a slow answer.
    pub max_delay: Duration,
    /// Requests answered 500 without effect (any verb but watch).
    pub unavailable: u32,
    /// Writes (POST, PUT, PATCH, DELETE) answered 500 without effect.
    pub failed_write: u32,
    /// PUT and PATCH requests answered 409 Conflict without effect.
    pub conflict: u32,
    /// Writes applied and then answered 500.
    pub lost_answer: u32,
    /// Watches ended early.
    pub dropped_watch: u32,
    /// Longest life of a dropped watch.
    pub max_watch_lifetime: Duration,
    /// Watches with a resourceVersion answered 410 Expired.
    pub expired_watch: u32,
}

impl FaultPlan {
    /// No faults at all (the default).
    pub fn none() -> Self {
        Self::default()
    }

    /// Whether any fault is planned.
    pub fn is_active(&self) -> bool {
        [
            self.slow,
            self.unavailable,
            self.failed_write,
            self.conflict,
            self.lost_answer,
            self.dropped_watch,
            self.expired_watch,
        ]
        .iter()
        .any(|rate| *rate > 0)
    }
}

/// How many faults of each kind were injected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Requests seen by the fault layer.
    pub requests: u64,
    /// Slow answers.
    pub slow: u64,
    /// 500s without effect.
    pub unavailable: u64,
    /// 500s without effect, to writes ([`FaultPlan::failed_write`]).
    pub failed_write: u64,
    /// 409 Conflicts.
    pub conflict: u64,
    /// Writes applied and answered 500.
    pub lost_answer: u64,
    /// Watches ended early.
    pub dropped_watch: u64,
    /// Watches answered 410.
    pub expired_watch: u64,
}

impl FaultCounts {
    /// Faults injected, all kinds together.
    pub fn total(&self) -> u64 {
        self.slow
            + self.unavailable
            + self.failed_write
            + self.conflict
            + self.lost_answer
            + self.dropped_watch
            + self.expired_watch
    }
}

/// What happens to one request, decided before it is served.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Decision {
    /// Wait this long first.
    pub delay: Option<Duration>,
    /// Answer 500 without serving.
    pub unavailable: bool,
    /// Answer 409 without serving (PUT and PATCH only).
    pub conflict: bool,
    /// Serve, then answer 500 (writes only).
    pub lose_answer: bool,
    /// End the watch after this long (watches only).
    pub watch_lifetime: Option<Duration>,
    /// Answer 410 Expired (watches with a resourceVersion only).
    pub expire_watch: bool,
}

/// The kind of request a decision is drawn for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// GET of one object or a list.
    Read,
    /// A watch; `resuming` when it names a resourceVersion.
    Watch {
        /// Resumes from a resourceVersion.
        resuming: bool,
    },
    /// POST or DELETE.
    Write,
    /// PUT or PATCH (may conflict).
    Update,
}

/// The fault layer of one server: the plan, its generator and counters.
#[derive(Debug, Default)]
pub struct Faults {
    plan: FaultPlan,
    state: Mutex<u64>,
    counts: Mutex<FaultCounts>,
    requests: AtomicU64,
}

impl Faults {
    /// A fault layer following `plan`.
    pub fn new(plan: FaultPlan) -> Self {
        Self {
            state: Mutex::new(plan.seed),
            plan,
            counts: Mutex::new(FaultCounts::default()),
            requests: AtomicU64::new(0),
        }
    }

    /// What was injected so far.
    pub fn counts(&self) -> FaultCounts {
        let mut counts = *self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        counts.requests = self.requests.load(Ordering::Relaxed);
        counts
    }

    /// Decides the fate of the next request of `kind`.
    pub fn decide(&self, kind: RequestKind) -> Decision {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mut decision = Decision::default();
        if !self.plan.is_active() {
            return decision;
        }
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let plan = &self.plan;
        let state = &mut *state;
        let hit =
            |state: &mut u64, rate: u32| rate > 0 && splitmix64(state) % 1000 < u64::from(rate);
        if hit(state, plan.slow) {
            counts.slow += 1;
            decision.delay = Some(fraction(state, plan.max_delay));
        }
        match kind {
            RequestKind::Watch { resuming } => {
                if resuming && hit(state, plan.expired_watch) {
                    counts.expired_watch += 1;
                    decision.expire_watch = true;
                } else if hit(state, plan.dropped_watch) {
                    counts.dropped_watch += 1;
                    decision.watch_lifetime = Some(fraction(state, plan.max_watch_lifetime));
                }
            }
            RequestKind::Read | RequestKind::Write | RequestKind::Update => {
                if hit(state, plan.unavailable) {
                    counts.unavailable += 1;
                    decision.unavailable = true;
                } else if kind != RequestKind::Read && hit(state, plan.failed_write) {
                    counts.failed_write += 1;
                    decision.unavailable = true;
                } else if kind == RequestKind::Update && hit(state, plan.conflict) {
                    counts.conflict += 1;
                    decision.conflict = true;
                } else if kind != RequestKind::Read && hit(state, plan.lost_answer) {
                    counts.lost_answer += 1;
                    decision.lose_answer = true;
                }
            }
        }
        decision
    }
}

/// A uniformly drawn duration in `[0, max)`.
fn fraction(state: &mut u64, max: Duration) -> Duration {
    let millis = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
    if millis == 0 {
        return Duration::ZERO;
    }
    Duration::from_millis(splitmix64(state) % millis)
}

/// One step of splitmix64: small, fast and well distributed.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Partners unreachable during a window of time.
#[derive(Debug, Clone)]
pub struct Outage {
    /// The endpoints that are down.
    pub endpoints: BTreeSet<Endpoint>,
    /// When the outage starts, from the transport's creation.
    pub from: Duration,
    /// How long it lasts.
    pub duration: Duration,
}

/// A [`PartnerTransport`] whose partners in an [`Outage`] are unreachable
/// while it lasts; every other fetch goes to the inner transport.
pub struct OutageTransport {
    inner: Arc<dyn PartnerTransport>,
    outage: Outage,
    started: Instant,
    refused: AtomicU64,
}

impl OutageTransport {
    /// Wraps `inner`; the outage's clock starts now.
    pub fn new(inner: Arc<dyn PartnerTransport>, outage: Outage) -> Self {
        Self {
            inner,
            outage,
            started: Instant::now(),
            refused: AtomicU64::new(0),
        }
    }

    /// Fetches refused because of the outage so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    fn down(&self, endpoint: &Endpoint) -> bool {
        let elapsed = self.started.elapsed();
        self.outage.endpoints.contains(endpoint)
            && elapsed >= self.outage.from
            && elapsed < self.outage.from + self.outage.duration
    }
}

#[async_trait]
impl PartnerTransport for OutageTransport {
    async fn fetch(
        &self,
        vc: &str,
        endpoint: &Endpoint,
    ) -> Result<PartnerDocument, TransportError> {
        if self.down(endpoint) {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(TransportError(format!(
                "cannot connect to {}: connection refused (injected outage)",
                endpoint.document_url(vc)
            )));
        }
        self.inner.fetch(vc, endpoint).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn plan() -> FaultPlan {
        FaultPlan {
            seed: 7,
            slow: 100,
            max_delay: Duration::from_millis(50),
            unavailable: 100,
            failed_write: 0,
            conflict: 200,
            lost_answer: 100,
            dropped_watch: 500,
            max_watch_lifetime: Duration::from_secs(2),
            expired_watch: 200,
        }
    }

    fn run(faults: &Faults) -> Vec<Decision> {
        let kinds = [
            RequestKind::Read,
            RequestKind::Write,
            RequestKind::Update,
            RequestKind::Watch { resuming: true },
            RequestKind::Watch { resuming: false },
        ];
        (0..5000)
            .map(|i| faults.decide(kinds[i % kinds.len()]))
            .collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_decisions() {
        assert_eq!(run(&Faults::new(plan())), run(&Faults::new(plan())));
        let other = FaultPlan { seed: 8, ..plan() };
        assert_ne!(run(&Faults::new(plan())), run(&Faults::new(other)));
    }

    #[test]
    fn faults_apply_only_to_their_requests_at_about_their_rate() {
        let faults = Faults::new(plan());
        let decisions = run(&faults);
        let counts = faults.counts();
        assert_eq!(counts.requests, 5000);
        for (i, d) in decisions.iter().enumerate() {
            match i % 5 {
                0 => assert!(!d.conflict && !d.lose_answer && d.watch_lifetime.is_none()),
                1 => assert!(!d.conflict && d.watch_lifetime.is_none()),
                2 => assert!(d.watch_lifetime.is_none() && !d.expire_watch),
                3 | 4 => assert!(!d.unavailable && !d.conflict && !d.lose_answer),
                _ => {}
            }
            if i % 5 == 4 {
                assert!(!d.expire_watch, "only resuming watches expire");
            }
            assert!(d.delay.is_none_or(|t| t < Duration::from_millis(50)));
            assert!(d.watch_lifetime.is_none_or(|t| t < Duration::from_secs(2)));
        }
        // 10% of 5000 slow, within a generous band.
        assert!((350..650).contains(&counts.slow), "{counts:?}");
        // 10% of the 3000 non-watch requests unavailable.
        assert!((200..400).contains(&counts.unavailable), "{counts:?}");
        assert_eq!(
            counts.total(),
            counts.slow
                + counts.unavailable
                + counts.failed_write
                + counts.conflict
                + counts.lost_answer
                + counts.dropped_watch
                + counts.expired_watch
        );
        assert!(counts.conflict > 0 && counts.lost_answer > 0 && counts.expired_watch > 0);
    }

    #[test]
    fn failed_writes_spare_reads_and_watches() {
        let faults = Faults::new(FaultPlan {
            seed: 3,
            failed_write: 250,
            ..FaultPlan::none()
        });
        let decisions = run(&faults);
        for (i, d) in decisions.iter().enumerate() {
            if matches!(i % 5, 0 | 3 | 4) {
                assert_eq!(*d, Decision::default(), "request {i}");
            }
        }
        // 25% of the 2000 writes and updates, within a generous band.
        let counts = faults.counts();
        assert!((400..600).contains(&counts.failed_write), "{counts:?}");
        assert_eq!(counts.total(), counts.failed_write);
    }

    #[test]
    fn no_plan_injects_nothing() {
        let faults = Faults::new(FaultPlan::none());
        assert!(run(&faults).iter().all(|d| *d == Decision::default()));
        assert_eq!(faults.counts().total(), 0);
    }
}
