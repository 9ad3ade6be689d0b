//! Leader election on a `coordination.k8s.io/v1` Lease, so several replicas
//! of the operator can run and exactly one reconciles and writes.
//!
//! The protocol is client-go's: a candidate reads the Lease; it takes it when
//! the Lease is absent (create), released (no holder), or held by another
//! replica whose record has not changed for a whole lease duration *as
//! measured on this replica's clock* (so clock skew between nodes does not
//! matter); the holder renews it every retry period. Every write is a create
//! or a replace carrying the resourceVersion read, so of two candidates
//! racing for one Lease the API server lets exactly one win (409 Conflict for
//! the other). A leader that cannot renew within the renew deadline (shorter
//! than the lease duration) stops leading before anyone else may take over.
//!
//! [`lead_while_elected`] runs the controller only while this replica leads,
//! stops it when the lease is lost (and starts it again if re-elected), and
//! on shutdown releases the Lease after the controller has stopped, so a
//! successor takes over at once instead of after the lease duration. The
//! clock is a port ([`Clock`]) so tests move time by hand.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use tokio::sync::watch;
use tracing::{debug, info, warn};

/// The wall clock leader election reads; a port so tests control time.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// Where the Lease lives, who this replica is, and the timing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseSettings {
    /// The Lease's namespace (usually the operator's own).
    pub namespace: String,
    /// The Lease's name, shared by every replica.
    pub name: String,
    /// This replica's identity (its pod name): unique among replicas.
    pub identity: String,
    /// How long a lease is valid without renewal (leaseDurationSeconds).
    pub lease_duration: Duration,
    /// How long the leader keeps leading while renewals fail; shorter than
    /// `lease_duration`.
    pub renew_deadline: Duration,
    /// How often candidates try to acquire and the leader renews.
    pub retry_period: Duration,
}

impl LeaseSettings {
    /// Settings with client-go's defaults: 15 s lease, 10 s renew deadline,
    /// 2 s retry period.
    pub fn new(
        namespace: impl Into<String>,
        name: impl Into<String>,
        identity: impl Into<String>,
    ) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }

    /// Checks the timing: `retry_period < renew_deadline < lease_duration`,
    /// a lease of at least one second, and a non-empty identity.
    pub fn validate(&self) -> Result<(), LeaderError> {
        let invalid = |why: &str| Err(LeaderError::Settings(why.to_owned()));
        if self.identity.is_empty() {
            return invalid("the leader election identity is empty");
        }
        if self.lease_duration < Duration::from_secs(1) {
            return invalid("the lease duration must be at least 1s");
        }
        if self.renew_deadline >= self.lease_duration {
            return invalid("the renew deadline must be shorter than the lease duration");
        }
        if self.retry_period >= self.renew_deadline {
            return invalid("the retry period must be shorter than the renew deadline");
        }
        Ok(())
    }

    fn lease(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// Why leader election failed.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    /// The API server did not answer in time.
    #[error("Lease {lease}: no answer within {after:?}")]
    Timeout {
        /// `namespace/name`.
        lease: String,
        /// How long it waited.
        after: Duration,
    },
    /// The settings are inconsistent.
    #[error("leader election: {0}")]
    Settings(String),
    /// Reading or writing the Lease failed (not a lost race).
    #[error("{operation} Lease {lease}: {source}")]
    Api {
        /// `read`, `create`, `renew`, `take over` or `release`.
        operation: &'static str,
        /// `namespace/name`.
        lease: String,
        /// What the API server said.
        source: kube::Error,
    },
}

/// The Lease record as last seen, and when (on our clock) it was first seen so.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Observed {
    holder: Option<String>,
    renew_time: Option<MicroTime>,
    transitions: Option<i32>,
    since: Timestamp,
}

/// One replica's side of the election.
pub struct LeaderElector {
    api: Api<Lease>,
    settings: LeaseSettings,
    clock: Arc<dyn Clock>,
    observed: Mutex<Option<Observed>>,
}

fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409)
}

fn signed(duration: Duration) -> SignedDuration {
    SignedDuration::try_from(duration).unwrap_or(SignedDuration::MAX)
}

impl LeaderElector {
    /// An elector for the Lease `settings` names.
    pub fn new(client: Client, settings: LeaseSettings, clock: Arc<dyn Clock>) -> Self {
        Self {
            api: Api::namespaced(client, &settings.namespace),
            settings,
            clock,
            observed: Mutex::new(None),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &LeaseSettings {
        &self.settings
    }

    fn error(&self, operation: &'static str) -> impl FnOnce(kube::Error) -> LeaderError + '_ {
        move |source| LeaderError::Api {
            operation,
            lease: self.settings.lease(),
            source,
        }
    }

    fn duration_seconds(&self) -> i32 {
        i32::try_from(self.settings.lease_duration.as_secs().max(1)).unwrap_or(i32::MAX)
    }

    /// Whether another holder's record has stood unchanged for a whole lease
    /// duration on our clock; records the observation.
    fn expired(&self, spec: &LeaseSpec, now: Timestamp) -> bool {
        let mut observed = self.observed.lock().unwrap_or_else(PoisonError::into_inner);
        let current = Observed {
            holder: spec.holder_identity.clone(),
            renew_time: spec.renew_time.clone(),
            transitions: spec.lease_transitions,
            since: now,
        };
        let since = match observed.as_ref() {
            Some(seen)
                if seen.holder == current.holder
                    && seen.renew_time == current.renew_time
                    && seen.transitions == current.transitions =>
            {
                seen.since
            }
            _ => {
                *observed = Some(current);
                now
            }
        };
        let duration = spec
            .lease_duration_seconds
            .map_or(self.settings.lease_duration, |s| {
                Duration::from_secs(u64::try_from(s.max(1)).unwrap_or(1))
            });
        now.duration_since(since) >= signed(duration)
    }

    /// One round: creates, renews or takes over the Lease if this replica
    /// may. Returns whether it holds the Lease afterwards; a lost race is
    /// `Ok(false)`.
    pub async fn try_acquire_or_renew(&self) -> Result<bool, LeaderError> {
        let now = self.clock.now();
        let me = &self.settings.identity;
        let Some(lease) = self
            .api
            .get_opt(&self.settings.name)
            .await
            .map_err(self.error("read"))?
        else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.settings.name.clone()),
                    namespace: Some(self.settings.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(me.clone()),
                    lease_duration_seconds: Some(self.duration_seconds()),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(error) if is_conflict(&error) => Ok(false),
                Err(error) => Err(self.error("create")(error)),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let mine = holder.as_ref() == Some(me);
        if !mine && holder.is_some() && !self.expired(&spec, now) {
            return Ok(false);
        }
        let transitions = spec.lease_transitions.unwrap_or(0);
        let renewed = LeaseSpec {
            holder_identity: Some(me.clone()),
            lease_duration_seconds: Some(self.duration_seconds()),
            acquire_time: if mine {
                spec.acquire_time.clone()
            } else {
                Some(MicroTime(now))
            },
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(if mine {
                transitions
            } else {
                transitions.saturating_add(1)
            }),
            ..spec
        };
        let replacement = Lease {
            metadata: lease.metadata,
            spec: Some(renewed),
        };
        let operation = if mine { "renew" } else { "take over" };
        match self
            .api
            .replace(&self.settings.name, &PostParams::default(), &replacement)
            .await
        {
            Ok(_) => {
                if !mine {
                    info!(lease = %self.settings.lease(), previous = ?holder, "acquired the leader Lease");
                }
                Ok(true)
            }
            Err(error) if is_conflict(&error) => {
                debug!(lease = %self.settings.lease(), operation, "lost a race for the leader Lease");
                Ok(false)
            }
            Err(error) => Err(self.error(operation)(error)),
        }
    }

    /// Gives the Lease up if this replica holds it, so a successor need not
    /// wait for it to expire. Returns whether it was released.
    pub async fn release(&self) -> Result<bool, LeaderError> {
        let Some(lease) = self
            .api
            .get_opt(&self.settings.name)
            .await
            .map_err(self.error("read"))?
        else {
            return Ok(false);
        };
        let spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_ref() != Some(&self.settings.identity) {
            return Ok(false);
        }
        let released = Lease {
            metadata: lease.metadata,
            spec: Some(LeaseSpec {
                holder_identity: None,
                renew_time: Some(MicroTime(self.clock.now())),
                ..spec
            }),
        };
        match self
            .api
            .replace(&self.settings.name, &PostParams::default(), &released)
            .await
        {
            Ok(_) => Ok(true),
            Err(error) if is_conflict(&error) => Ok(false),
            Err(error) => Err(self.error("release")(error)),
        }
    }

    /// Campaigns until `stop` resolves: tries every retry period, and says
    /// through `leading` whether this replica leads. A leader whose renewals
    /// fail for longer than the renew deadline, or who finds another holder,
    /// stops leading. Does not release the Lease (see [`lead_while_elected`]).
    pub async fn campaign(&self, leading: &watch::Sender<bool>, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        let deadline = signed(self.settings.renew_deadline);
        let mut last_renewal: Option<Timestamp> = None;
        loop {
            let was_leading = *leading.borrow();
            // A leader must know it failed to renew before its deadline
            // passes, however slowly the API server answers.
            let budget = match last_renewal {
                Some(at) if was_leading => {
                    let left = deadline.saturating_sub(self.clock.now().duration_since(at));
                    Duration::try_from(left).unwrap_or(Duration::ZERO)
                }
                _ => self.settings.renew_deadline,
            };
            let result = tokio::time::timeout(budget, self.try_acquire_or_renew())
                .await
                .unwrap_or_else(|_| {
                    Err(LeaderError::Timeout {
                        lease: self.settings.lease(),
                        after: budget,
                    })
                });
            let now = self.clock.now();
            let leads = match result {
                Ok(true) => {
                    last_renewal = Some(now);
                    true
                }
                Ok(false) => false,
                Err(error) => {
                    warn!(%error, "leader election");
                    was_leading && last_renewal.is_some_and(|at| now.duration_since(at) < deadline)
                }
            };
            if leads != was_leading {
                if leads {
                    info!(identity = %self.settings.identity, "leading: this replica reconciles");
                } else {
                    warn!(identity = %self.settings.identity, "lost the leader Lease: reconciling stops");
                }
                leading.send_replace(leads);
            }
            tokio::select! {
                () = &mut stop => break,
                () = tokio::time::sleep(self.settings.retry_period) => {}
            }
        }
    }
}

/// Resolves once `flag` is true (or its sender is gone).
async fn until_true(mut flag: watch::Receiver<bool>) {
    let _ = flag.wait_for(|set| *set).await;
}

/// A future, `Send + Sync + 'static` as the controller wants it, that
/// resolves once `leading` turns false or `stop` true.
fn deposed(
    mut leading: watch::Receiver<bool>,
    stop: watch::Receiver<bool>,
) -> impl Future<Output = ()> + Send + Sync + 'static {
    let waiting = tokio::spawn(async move {
        tokio::select! {
            _ = leading.wait_for(|leads| !*leads) => {}
            () = until_true(stop) => {}
        }
    });
    async move {
        let _ = waiting.await;
    }
}

/// Resolves when this replica stops leading or shutdown begins; what
/// [`lead_while_elected`] hands the controller as its shutdown signal.
pub struct Deposed(Pin<Box<dyn Future<Output = ()> + Send + Sync>>);

impl Future for Deposed {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

/// Runs `lead` while this replica holds the Lease, until `stop` is true.
/// `lead` gets a future that resolves when leadership is lost or shutdown
/// begins, and must return soon after. The Lease is renewed until `lead`
/// has returned for the last time, then released. Returns early, releasing
/// too, if `lead` returns on its own while still leading.
pub async fn lead_while_elected<F, Fut>(
    elector: Arc<LeaderElector>,
    stop: watch::Receiver<bool>,
    mut lead: F,
) where
    F: FnMut(Deposed) -> Fut,
    Fut: Future<Output = ()>,
{
    let (leading_tx, leading_rx) = watch::channel(false);
    let (done_tx, done_rx) = watch::channel(false);
    let campaign = elector.campaign(&leading_tx, until_true(done_rx));
    let supervise = async {
        let mut leading = leading_rx.clone();
        loop {
            tokio::select! {
                elected = leading.wait_for(|leads| *leads) => if elected.is_err() { break },
                () = until_true(stop.clone()) => break,
            }
            lead(Deposed(Box::pin(deposed(leading_rx.clone(), stop.clone())))).await;
            if *stop.borrow() || *leading_rx.borrow() {
                break;
            }
        }
        done_tx.send_replace(true);
    };
    tokio::join!(campaign, supervise);
    match elector.release().await {
        Ok(true) => info!(lease = %elector.settings.lease(), "released the leader Lease"),
        Ok(false) => {}
        Err(error) => warn!(%error, "could not release the leader Lease; it expires by itself"),
    }
}

#[cfg(test)]
mod tests;
