//! The scripted API server ([`ApiServer`]), test identities and
//! certificates (rcgen), partner documents and a VC to reconcile.

use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use kube::runtime::events::Reporter;
use kube::{Client, Resource};
use serde_json::{Value, json};
use spalding_core::certificate::Certificate;
use spalding_core::document::{DocumentBody, MemberView, PROTOCOL_VERSION, PartnerDocument};
use spalding_core::machine::LocalIdentity;
use spalding_core::name::PartyName;
use spalding_core::parameters::{
    CARBYNE_STACK_DEFAULT_GF2N_BIT_LENGTH, CARBYNE_STACK_DEFAULT_GF2N_STORAGE_SIZE,
    CARBYNE_STACK_DEFAULT_PRIME, Parameters,
};
use spalding_core::ports::{
    MockDocumentSigner, MockEntropy, MockMpcLauncher, MockPartnerTransport, PartnerTransport,
};
use spalding_core::spec::{Endpoint, State};

use crate::cluster::KubeCluster;
use crate::controller::{Context, FINALIZER, Settings};
use crate::crd::{MpcParameters, VirtualCloud, VirtualCloudPartnerEntry, VirtualCloudSpec};

pub const NS: &str = "default";
pub const VC: &str = "foo";
pub const UID: &str = "0f1e2d3c-0000-4000-8000-000000000001";

/// One expected request and its answer.
pub struct Exchange {
    pub method: Method,
    /// Path and query exactly as kube sends them.
    pub uri: String,
    /// JSON the body must include (objects compared key by key, recursively).
    pub body: Option<Value>,
    /// JSON the body must not contain anywhere, as text.
    pub forbidden: Vec<String>,
    pub status: StatusCode,
    pub answer: Value,
}

impl Exchange {
    pub fn new(method: Method, uri: impl Into<String>) -> Self {
        Self {
            method,
            uri: uri.into(),
            body: None,
            forbidden: Vec::new(),
            status: StatusCode::OK,
            answer: json!({}),
        }
    }
    pub fn get(uri: impl Into<String>) -> Self {
        Self::new(Method::GET, uri)
    }
    pub fn patch(uri: impl Into<String>) -> Self {
        Self::new(Method::PATCH, uri)
    }
    pub fn delete(uri: impl Into<String>) -> Self {
        Self::new(Method::DELETE, uri)
    }
    pub fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }
    pub fn without(mut self, text: impl Into<String>) -> Self {
        self.forbidden.push(text.into());
        self
    }
    pub fn answer(mut self, answer: Value) -> Self {
        self.answer = answer;
        self
    }
    pub fn not_found(mut self) -> Self {
        self.status = StatusCode::NOT_FOUND;
        self.answer = status(404, "NotFound");
        self
    }
}

/// A `meta/v1` Status as the API server sends with errors.
pub fn status(code: u16, reason: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": reason, "reason": reason, "code": code})
}

/// An empty list of `kind`.
pub fn list(api_version: &str, kind: &str, items: Vec<Value>) -> Value {
    json!({"apiVersion": api_version, "kind": format!("{kind}List"), "metadata": {"resourceVersion": "1"}, "items": items})
}

/// Whether `actual` includes `expected`: equal scalars and arrays, objects
/// key by key (extra keys in `actual` allowed).
pub fn includes(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => e
            .iter()
            .all(|(k, v)| a.get(k).is_some_and(|av| includes(av, v))),
        _ => actual == expected,
    }
}

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// The scripted API server.
pub struct ApiServer {
    handle: Handle,
}

impl ApiServer {
    /// A kube client talking to a new scripted API server.
    pub fn new() -> (Client, Self) {
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        (Client::new(service, NS), Self { handle })
    }

    /// Plays `script` in order, asserting each request; returns the request
    /// bodies seen. The handle is dropped afterwards, so an extra request fails.
    pub fn play(self, script: Vec<Exchange>) -> tokio::task::JoinHandle<Vec<Value>> {
        self.play_with(script, |_, _, _| {})
    }

    /// Like [`Self::play`]; `answer(step, body, answers)` may push the
    /// answer for `step` (derived from its request body) onto `answers`,
    /// replacing the scripted one.
    pub fn play_with(
        mut self,
        script: Vec<Exchange>,
        answer: impl Fn(usize, &Value, &mut Vec<Value>) + Send + 'static,
    ) -> tokio::task::JoinHandle<Vec<Value>> {
        tokio::spawn(async move {
            let mut answers: Vec<Value> = Vec::new();
            let mut bodies = Vec::new();
            for (step, expected) in script.into_iter().enumerate() {
                let (request, respond) = self.handle.next_request().await.unwrap_or_else(|| {
                    panic!(
                        "step {step}: no request, expected {} {}",
                        expected.method, expected.uri
                    )
                });
                let uri = request.uri().to_string();
                let method = request.method().clone();
                assert_eq!(
                    (method.as_str(), uri.as_str()),
                    (expected.method.as_str(), expected.uri.as_str()),
                    "step {step}"
                );
                let bytes = request.into_body().collect_bytes().await.unwrap();
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                if let Some(want) = &expected.body {
                    assert!(
                        includes(&body, want),
                        "step {step} {method} {uri}: body\n{body:#}\ndoes not include\n{want:#}"
                    );
                }
                for forbidden in &expected.forbidden {
                    assert!(
                        !text.contains(forbidden.as_str()),
                        "step {step}: body contains {forbidden:?}"
                    );
                }
                let before = answers.len();
                answer(step, &body, &mut answers);
                let reply = if answers.len() > before {
                    answers.last().cloned().unwrap_or_default()
                } else {
                    expected.answer.clone()
                };
                bodies.push(body);
                let response = Response::builder()
                    .status(expected.status)
                    .body(Body::from(serde_json::to_vec(&reply).unwrap()))
                    .unwrap();
                respond.send_response(response);
            }
            bodies
        })
    }
}

/// Awaits a played script, failing after a few seconds (a missing request).
pub async fn finish(server: tokio::task::JoinHandle<Vec<Value>>) -> Vec<Value> {
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the reconcile made every scripted request")
        .expect("the script's assertions held")
}

/// A self-signed certificate for `party`.
pub fn certificate(party: &str) -> Certificate {
    let key = rcgen::generate_simple_self_signed(vec![format!("{party}.example")]).unwrap();
    Certificate::from_pem(&key.cert.pem()).unwrap()
}

pub fn endpoint(party: &str) -> Endpoint {
    Endpoint::new(&format!("https://{party}.example")).unwrap()
}

pub fn name(party: &str) -> PartyName {
    PartyName::new(party).unwrap()
}

pub fn parameters() -> Parameters {
    Parameters {
        prime: CARBYNE_STACK_DEFAULT_PRIME.to_owned(),
        r: None,
        r_inv: None,
        word_size: None,
        gf2n_bit_length: CARBYNE_STACK_DEFAULT_GF2N_BIT_LENGTH,
        gf2n_storage_size: CARBYNE_STACK_DEFAULT_GF2N_STORAGE_SIZE,
    }
}

static OUR_CERTIFICATE: std::sync::OnceLock<Certificate> = std::sync::OnceLock::new();

/// Our party, `a`, with one certificate for the whole test run.
pub fn identity() -> LocalIdentity {
    LocalIdentity {
        name: name("a"),
        endpoint: endpoint("a"),
        certificate: OUR_CERTIFICATE.get_or_init(|| certificate("a")).clone(),
    }
}

/// The VC `foo` of party `a` with partner `b`, carrying the finalizer.
pub fn virtual_cloud() -> VirtualCloud {
    let mut vc = VirtualCloud::new(
        VC,
        VirtualCloudSpec {
            parameters: MpcParameters::from(parameters()),
            partners: vec![VirtualCloudPartnerEntry {
                name: "b".into(),
                endpoint: "https://b.example".into(),
            }],
        },
    );
    let meta = vc.meta_mut();
    meta.namespace = Some(NS.into());
    meta.uid = Some(UID.into());
    meta.generation = Some(1);
    meta.resource_version = Some("1".into());
    meta.finalizers = Some(vec![FINALIZER.into()]);
    vc
}

/// The document partner `b` serves: its certificate, both members, `a`
/// admitted or not, at `sequence`.
pub fn partner_document(
    b: &Certificate,
    a: Option<&Certificate>,
    sequence: u64,
) -> PartnerDocument {
    PartnerDocument {
        body: DocumentBody {
            protocol: PROTOCOL_VERSION.to_owned(),
            virtual_cloud: VC.to_owned(),
            party: name("b"),
            endpoint: endpoint("b"),
            parameters: parameters().validate().unwrap(),
            certificate: b.clone(),
            fingerprint: b.fingerprint().clone(),
            members: vec![
                MemberView {
                    name: name("a"),
                    endpoint: endpoint("a"),
                    fingerprint: a.map(|c| c.fingerprint().clone()),
                    admitted: a.is_some(),
                },
                MemberView {
                    name: name("b"),
                    endpoint: endpoint("b"),
                    fingerprint: Some(b.fingerprint().clone()),
                    admitted: true,
                },
            ]
            .into(),
            state: State::Admission,
        },
        sequence,
        signature: None,
    }
}

/// A transport serving `document` (or failing when `None`), for any number of fetches.
pub fn transport(document: Option<PartnerDocument>) -> Arc<dyn PartnerTransport> {
    let mut transport = MockPartnerTransport::new();
    transport.expect_fetch().returning(move |_, _| {
        document
            .clone()
            .ok_or_else(|| spalding_core::ports::TransportError("connection refused".into()))
    });
    Arc::new(transport)
}

/// A controller context for party `a` talking to `client`: documents signed
/// with a fixed test signature, no key generation launched, entropy unused
/// unless `entropy` says otherwise.
pub fn context(
    client: Client,
    transport: Arc<dyn PartnerTransport>,
    entropy: MockEntropy,
) -> Arc<Context> {
    let mut signer = MockDocumentSigner::new();
    signer.expect_sign().returning(|body, sequence| {
        Ok(PartnerDocument {
            body: body.clone(),
            sequence,
            signature: Some("test-signature".into()),
        })
    });
    let mut launcher = MockMpcLauncher::new();
    launcher.expect_key_generation().returning(|_| Ok(None));
    let cluster = Arc::new(KubeCluster::new(
        client,
        Reporter {
            controller: "spalding".into(),
            instance: None,
        },
        Arc::new(signer),
    ));
    Arc::new(Context::new(
        identity(),
        cluster,
        transport,
        Arc::new(launcher),
        Arc::new(entropy),
        Settings::default(),
    ))
}

/// `vc` as the API server returns it.
pub fn as_json(vc: &VirtualCloud) -> Value {
    serde_json::to_value(vc).unwrap()
}
