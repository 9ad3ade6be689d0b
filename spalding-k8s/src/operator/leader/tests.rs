//! Leader election against the in-memory API server, with a clock moved by
//! hand: who may take the Lease when, races decided by resourceVersion, and
//! the controller started and stopped with leadership.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::apiserver::ApiServer;

/// A clock that only moves when told to.
#[derive(Debug)]
struct ManualClock(Mutex<Timestamp>);

impl ManualClock {
    fn new() -> Arc<Self> {
        Arc::new(Self(Mutex::new(
            "2026-01-01T00:00:00Z".parse::<Timestamp>().unwrap(),
        )))
    }

    fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap();
        *now = now.checked_add(signed(by)).unwrap();
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap()
    }
}

fn settings(identity: &str) -> LeaseSettings {
    LeaseSettings::new("spalding-system", "spalding-leader", identity)
}

async fn server() -> ApiServer {
    ApiServer::start(Vec::new()).await.unwrap()
}

fn elector(server: &ApiServer, identity: &str, clock: &Arc<ManualClock>) -> LeaderElector {
    let clock: Arc<dyn Clock> = clock.clone();
    LeaderElector::new(server.client().unwrap(), settings(identity), clock)
}

async fn lease(server: &ApiServer) -> LeaseSpec {
    let api: Api<Lease> = Api::namespaced(server.client().unwrap(), "spalding-system");
    api.get("spalding-leader").await.unwrap().spec.unwrap()
}

#[tokio::test]
async fn the_first_candidate_creates_the_lease_and_the_second_waits() {
    let server = server().await;
    let clock = ManualClock::new();
    let (a, b) = (elector(&server, "a", &clock), elector(&server, "b", &clock));
    assert!(a.try_acquire_or_renew().await.unwrap());
    assert!(!b.try_acquire_or_renew().await.unwrap());
    let spec = lease(&server).await;
    assert_eq!(spec.holder_identity.as_deref(), Some("a"));
    assert_eq!(spec.lease_duration_seconds, Some(15));
    assert_eq!(spec.lease_transitions, Some(0));

    // a renews within the lease duration: b never may take over.
    for _ in 0..5 {
        clock.advance(Duration::from_secs(10));
        assert!(a.try_acquire_or_renew().await.unwrap(), "a renews");
        assert!(!b.try_acquire_or_renew().await.unwrap(), "b waits");
    }
    assert_eq!(lease(&server).await.holder_identity.as_deref(), Some("a"));
}

#[tokio::test]
async fn a_lease_not_renewed_for_its_duration_is_taken_over() {
    let server = server().await;
    let clock = ManualClock::new();
    let (a, b) = (elector(&server, "a", &clock), elector(&server, "b", &clock));
    assert!(a.try_acquire_or_renew().await.unwrap());
    assert!(
        !b.try_acquire_or_renew().await.unwrap(),
        "b first sees a's record"
    );
    clock.advance(Duration::from_secs(14));
    assert!(!b.try_acquire_or_renew().await.unwrap(), "not yet expired");
    clock.advance(Duration::from_secs(1));
    assert!(
        b.try_acquire_or_renew().await.unwrap(),
        "a stopped renewing: b takes over"
    );
    let spec = lease(&server).await;
    assert_eq!(spec.holder_identity.as_deref(), Some("b"));
    assert_eq!(spec.lease_transitions, Some(1));
    assert!(
        !a.try_acquire_or_renew().await.unwrap(),
        "a finds b holding it"
    );
}

#[tokio::test]
async fn a_released_lease_is_taken_at_once_and_only_by_its_holder() {
    let server = server().await;
    let clock = ManualClock::new();
    let (a, b) = (elector(&server, "a", &clock), elector(&server, "b", &clock));
    assert!(a.try_acquire_or_renew().await.unwrap());
    assert!(
        !b.release().await.unwrap(),
        "b does not hold it: nothing released"
    );
    assert_eq!(lease(&server).await.holder_identity.as_deref(), Some("a"));
    assert!(a.release().await.unwrap());
    assert_eq!(lease(&server).await.holder_identity, None);
    assert!(
        b.try_acquire_or_renew().await.unwrap(),
        "no waiting for expiry"
    );
}

/// Runs one attempt of each of `electors` concurrently; the indices of those that won.
async fn race(electors: &[Arc<LeaderElector>], among: &[usize]) -> Vec<usize> {
    let attempts = among.iter().map(|&i| {
        let e = Arc::clone(&electors[i]);
        tokio::spawn(async move { (i, e.try_acquire_or_renew().await.unwrap()) })
    });
    futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(Result::unwrap)
        .filter_map(|(i, won)| won.then_some(i))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_candidates_racing_exactly_one_wins() {
    let server = server().await;
    let clock = ManualClock::new();
    let electors: Vec<_> = (0..4)
        .map(|i| Arc::new(elector(&server, &format!("r{i}"), &clock)))
        .collect();
    let everyone: Vec<usize> = (0..electors.len()).collect();
    let won = race(&electors, &everyone).await;
    assert_eq!(won.len(), 1, "creating the Lease: {won:?}");
    let mut holder = won[0];
    for round in 1..4 {
        // The holder goes silent; the others see its record, wait a lease
        // duration, then race for it.
        let others: Vec<usize> = everyone.iter().copied().filter(|&i| i != holder).collect();
        for &i in &others {
            assert!(!electors[i].try_acquire_or_renew().await.unwrap());
        }
        clock.advance(Duration::from_secs(16));
        let won = race(&electors, &others).await;
        assert_eq!(won.len(), 1, "round {round}: {won:?}");
        holder = won[0];
        let spec = lease(&server).await;
        assert_eq!(spec.holder_identity, Some(format!("r{holder}")));
        assert_eq!(spec.lease_transitions, Some(round));
    }
}

#[test]
fn inconsistent_timing_is_refused() {
    let mut s = settings("a");
    assert!(s.validate().is_ok());
    s.renew_deadline = s.lease_duration;
    assert!(s.validate().is_err());
    let mut s = settings("a");
    s.retry_period = s.renew_deadline;
    assert!(s.validate().is_err());
    assert!(settings("").validate().is_err());
}

/// Real time, short timings: the controller (here a counter) runs only
/// while elected, stops when another replica steals the Lease, and the
/// Lease is released on shutdown.
#[tokio::test]
async fn the_controller_runs_only_while_leading_and_the_lease_is_released() {
    let server = server().await;
    let fast = LeaseSettings {
        lease_duration: Duration::from_secs(2),
        renew_deadline: Duration::from_millis(1500),
        retry_period: Duration::from_millis(100),
        ..settings("a")
    };
    let a = Arc::new(LeaderElector::new(
        server.client().unwrap(),
        fast,
        Arc::new(SystemClock),
    ));
    let (stop_tx, stop_rx) = watch::channel(false);
    let started = Arc::new(AtomicUsize::new(0));
    let running = Arc::new(AtomicUsize::new(0));
    let task = {
        let (started, running) = (started.clone(), running.clone());
        tokio::spawn(lead_while_elected(a, stop_rx, move |deposed| {
            let (started, running) = (started.clone(), running.clone());
            async move {
                started.fetch_add(1, Ordering::SeqCst);
                running.fetch_add(1, Ordering::SeqCst);
                deposed.await;
                running.fetch_sub(1, Ordering::SeqCst);
            }
        }))
    };
    let wait_for = |what: &'static str, f: Box<dyn Fn() -> bool + Send>| async move {
        for _ in 0..100 {
            if f() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("timed out waiting until {what}");
    };
    let r = running.clone();
    wait_for("a leads", Box::new(move || r.load(Ordering::SeqCst) == 1)).await;

    // Another replica takes the Lease by force (as after a partition).
    let api: Api<Lease> = Api::namespaced(server.client().unwrap(), "spalding-system");
    // a renews every 100 ms, so the thief may lose a race or two (409).
    let mut stole = false;
    for _ in 0..20 {
        let mut stolen = api.get("spalding-leader").await.unwrap();
        if let Some(spec) = stolen.spec.as_mut() {
            spec.holder_identity = Some("b".into());
            spec.renew_time = Some(MicroTime(Timestamp::now()));
        }
        if api
            .replace("spalding-leader", &PostParams::default(), &stolen)
            .await
            .is_ok()
        {
            stole = true;
            break;
        }
    }
    assert!(stole, "the Lease could be replaced");
    let r = running.clone();
    wait_for(
        "a stops leading",
        Box::new(move || r.load(Ordering::SeqCst) == 0),
    )
    .await;
    assert_eq!(started.load(Ordering::SeqCst), 1);

    // b goes silent; after the lease duration a leads again.
    let r = running.clone();
    wait_for(
        "a leads again",
        Box::new(move || r.load(Ordering::SeqCst) == 1),
    )
    .await;
    assert_eq!(started.load(Ordering::SeqCst), 2);

    stop_tx.send_replace(true);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(running.load(Ordering::SeqCst), 0);
    let spec = api.get("spalding-leader").await.unwrap().spec.unwrap();
    assert_eq!(spec.holder_identity, None, "released on shutdown");
}

/// A leader whose API server stops answering (requests hang, no error)
/// stops leading once its renew deadline has passed.
#[tokio::test]
async fn a_leader_whose_api_server_hangs_steps_down_by_its_deadline() {
    use http::{Request, Response};
    use kube::client::Body;

    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let answered = Arc::new(AtomicUsize::new(0));
    let count = answered.clone();
    tokio::spawn(async move {
        let mut hanging = Vec::new();
        while let Some((request, respond)) = handle.next_request().await {
            // The first round: GET (absent), then the create succeeds.
            let body = match (
                count.fetch_add(1, Ordering::SeqCst),
                request.method().as_str(),
            ) {
                (0, "GET") => {
                    serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404})
                }
                (1, "POST") => {
                    serde_json::json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": "spalding-leader", "namespace": "spalding-system", "resourceVersion": "1"},
                    "spec": {"holderIdentity": "a"}})
                }
                _ => {
                    hanging.push(respond);
                    continue;
                }
            };
            let status = if body["code"] == 404 { 404 } else { 201 };
            respond.send_response(
                Response::builder()
                    .status(status)
                    .body(Body::from(serde_json::to_vec(&body).unwrap()))
                    .unwrap(),
            );
        }
    });
    let client = Client::new(service, "spalding-system");
    let fast = LeaseSettings {
        lease_duration: Duration::from_secs(2),
        renew_deadline: Duration::from_millis(1000),
        retry_period: Duration::from_millis(200),
        ..settings("a")
    };
    let elector = LeaderElector::new(client, fast, Arc::new(SystemClock));
    let (leading, mut watching) = watch::channel(false);
    let (stop_tx, stop_rx) = watch::channel(false);
    let campaign = tokio::spawn(async move {
        elector.campaign(&leading, until_true(stop_rx)).await;
    });
    tokio::time::timeout(Duration::from_secs(2), watching.wait_for(|l| *l))
        .await
        .expect("a leads after creating the Lease")
        .unwrap();
    let elected = tokio::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(3), watching.wait_for(|l| !*l))
        .await
        .expect("a steps down although no request ever fails")
        .unwrap();
    let stepped_down = elected.elapsed();
    assert!(
        stepped_down < Duration::from_millis(1500),
        "within the renew deadline (plus one retry period): {stepped_down:?}"
    );
    stop_tx.send_replace(true);
    let _ = tokio::time::timeout(Duration::from_secs(3), campaign).await;
}
