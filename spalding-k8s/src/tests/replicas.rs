//! Two replicas of the whole operator ([`crate::operator::run`]) against one
//! in-memory API server with leader election: exactly one writes, and the
//! other takes over when the first stops (its Lease released on shutdown).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::{Method, Request};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::PostParams;
use kube::client::{Body, ClientBuilder};
use kube::{Api, Client};
use spalding_core::memory::SimulatedLauncher;
use spalding_core::parameters::Parameters;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::fixtures::{endpoint, name};
use crate::apiserver::{ApiServer as InMemory, simulation_crds};
use crate::crd::{MpcParameters, VirtualCloud, VirtualCloudPartnerEntry, VirtualCloudSpec};
use crate::identity::VcpIdentity;
use crate::operator::leader::LeaseSettings;
use crate::operator::{IdentitySource, OperatorConfig, OperatorError, PartnerInfoTls};
use crate::transport::TransportOptions;

const NS: &str = "default";
const LEASE: &str = "spalding-leader";

/// A client of `server` counting the writes it sends, Lease writes aside.
fn counting_client(server: &InMemory, writes: Arc<AtomicU64>) -> Client {
    let config = kube::Config::new(server.url().parse().unwrap());
    let layer = tower::util::MapRequestLayer::new(move |request: Request<Body>| {
        let write = request.method() != Method::GET && request.method() != Method::HEAD;
        if write && !request.uri().path().contains("/leases") {
            writes.fetch_add(1, Ordering::SeqCst);
        }
        request
    });
    ClientBuilder::try_from(config)
        .unwrap()
        .with_layer(&layer)
        .build()
}

fn free_address() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

struct Replica {
    writes: Arc<AtomicU64>,
    metrics: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), OperatorError>>,
}

impl Replica {
    fn start(server: &InMemory, identity: &str, dir: &std::path::Path) -> Self {
        let writes = Arc::new(AtomicU64::new(0));
        let client = counting_client(server, writes.clone());
        let metrics = free_address();
        let config = OperatorConfig {
            party: name("a"),
            endpoint: endpoint("a"),
            namespace: Some(NS.into()),
            identity: IdentitySource::Files {
                certificate: dir.join("tls.crt"),
                key: dir.join("tls.key"),
            },
            partner_info_address: free_address(),
            partner_info_tls: PartnerInfoTls::PlainHttp,
            health_address: free_address(),
            refresh_interval: Duration::from_secs(60),
            forming_interval: Duration::from_secs(2),
            debounce: Duration::from_millis(200),
            transport: TransportOptions {
                allow_plain_http: true,
                allow_private_addresses: true,
                ..TransportOptions::default()
            },
            instance: Some(identity.into()),
            metrics_address: Some(metrics),
            leader_election: Some(LeaseSettings {
                lease_duration: Duration::from_secs(2),
                renew_deadline: Duration::from_millis(1500),
                retry_period: Duration::from_millis(200),
                ..LeaseSettings::new(NS, LEASE, identity)
            }),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(crate::operator::run(
            config,
            client,
            crate::operator::LauncherSource::Given(Arc::new(SimulatedLauncher::new())),
            async {
                let _ = stopped.await;
            },
        ));
        Self {
            writes,
            metrics,
            stop: Some(stop),
            task,
        }
    }

    fn writes(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    async fn metrics(&self) -> String {
        let mut stream = tokio::net::TcpStream::connect(self.metrics).await.unwrap();
        let request = "GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .expect("the replica stops")
            .unwrap();
        assert!(result.is_ok(), "{result:?}");
    }
}

async fn holder(client: &Client) -> Option<String> {
    let api: Api<Lease> = Api::namespaced(client.clone(), NS);
    api.get_opt(LEASE)
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..150 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting until {what}");
}

async fn create_vc(client: &Client, vc: &str) {
    let mut object = VirtualCloud::new(
        vc,
        VirtualCloudSpec {
            parameters: MpcParameters::from(Parameters::carbyne_stack_default()),
            partners: vec![VirtualCloudPartnerEntry {
                name: "b".into(),
                endpoint: "https://127.0.0.1:1".into(),
            }],
        },
    );
    object.metadata.namespace = Some(NS.into());
    Api::<VirtualCloud>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &object)
        .await
        .unwrap();
}

async fn has_status(client: &Client, vc: &str) -> bool {
    Api::<VirtualCloud>::namespaced(client.clone(), NS)
        .get_opt(vc)
        .await
        .ok()
        .flatten()
        .is_some_and(|vc| vc.status.is_some())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_replicas_exactly_one_writes_and_the_other_takes_over() {
    let server = InMemory::start(simulation_crds().unwrap()).await.unwrap();
    let client = server.client().unwrap();
    let dir = std::env::temp_dir().join(format!("spalding-replicas-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pems = VcpIdentity::generate("a", &["a.example".into()])
        .unwrap()
        .pems();
    std::fs::write(dir.join("tls.crt"), &pems.tls_crt).unwrap();
    std::fs::write(dir.join("tls.key"), &pems.tls_key).unwrap();

    let first = Replica::start(&server, "replica-1", &dir);
    eventually("replica-1 holds the Lease", || async {
        holder(&client).await.as_deref() == Some("replica-1")
    })
    .await;
    let second = Replica::start(&server, "replica-2", &dir);
    create_vc(&client, "foo").await;
    eventually("the leader reconciles foo", || has_status(&client, "foo")).await;
    // Give the follower time to do anything it (wrongly) would.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(first.writes() > 0, "the leader writes");
    assert_eq!(second.writes(), 0, "the follower writes nothing");
    assert_eq!(holder(&client).await.as_deref(), Some("replica-1"));
    assert!(first.metrics().await.contains("\nspalding_leader 1\n"));
    let follower = second.metrics().await;
    assert!(follower.contains("\nspalding_leader 0\n"), "{follower}");
    // A VC at rest needs no writes, so also: the follower never reconciled.
    assert!(
        !follower.contains("spalding_reconciles_total"),
        "{follower}"
    );
    assert!(
        first
            .metrics()
            .await
            .contains("spalding_reconciles_total{namespace=\"default\",virtual_cloud=\"foo\"}")
    );

    // The leader stops: it releases the Lease and the follower takes over
    // at once (well within the 2 s lease duration of a crashed leader).
    let stopped_at = tokio::time::Instant::now();
    first.stop().await;
    eventually("replica-2 holds the Lease", || async {
        holder(&client).await.as_deref() == Some("replica-2")
    })
    .await;
    let takeover = stopped_at.elapsed();
    eprintln!("take-over after the leader's graceful stop: {takeover:?}");
    assert!(takeover < Duration::from_secs(10));
    create_vc(&client, "bar").await;
    eventually("the new leader reconciles bar", || {
        has_status(&client, "bar")
    })
    .await;
    assert!(second.writes() > 0, "the new leader writes");
    assert!(second.metrics().await.contains("\nspalding_leader 1\n"));
    second.stop().await;
    assert_eq!(holder(&client).await, None, "released on shutdown");
    let _ = std::fs::remove_dir_all(&dir);
}
