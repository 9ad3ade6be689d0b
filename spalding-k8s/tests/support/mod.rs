//! Shared fixtures of the partner-protocol tests: a simulation CA issuing the
//! loopback TLS certificate, VCP identities, the real server on 127.0.0.1:0,
//! and minimal hostile TLS servers that answer with raw bytes.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use spalding_core::document::PartnerDocument;
use spalding_core::name::PartyName;
use spalding_core::parameters::ValidatedParameters;
use spalding_core::ports::DocumentSigner;
use spalding_core::spec::Endpoint;
use spalding_k8s::identity::VcpIdentity;
use spalding_k8s::retry::RetryPolicy;
use spalding_k8s::sample::single_party_body;
use spalding_k8s::server::{DocumentSource, PartnerInfoServer};
use spalding_k8s::signing::VcpSigner;
use spalding_k8s::transport::{HttpsTransport, TransportOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A CA trusted by the client and the loopback TLS server config it issued.
pub struct Pki {
    pub ca_pem: String,
    pub server: Arc<rustls::ServerConfig>,
}

impl Pki {
    pub fn new(alpn: bool) -> Self {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "simulation CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap();
        if alpn {
            server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        }
        Self {
            ca_pem: ca.pem(),
            server: Arc::new(server),
        }
    }

    /// Test transport options: this CA, no retry delays, short timeouts.
    pub fn options(&self) -> TransportOptions {
        TransportOptions {
            connect_timeout: Duration::from_secs(2),
            total_timeout: Duration::from_secs(5),
            retry: RetryPolicy::none(),
            extra_ca_pem: Some(self.ca_pem.clone().into_bytes()),
            // The test servers listen on loopback.
            allow_private_addresses: true,
            ..TransportOptions::default()
        }
    }

    pub fn transport(&self) -> HttpsTransport {
        HttpsTransport::new(self.options()).unwrap()
    }
}

/// A party with an identity and a signed single-party document.
pub struct Party {
    pub name: PartyName,
    pub identity: VcpIdentity,
}

impl Party {
    pub fn new(name: &str) -> Self {
        Self {
            name: PartyName::new(name).unwrap(),
            identity: VcpIdentity::generate(name, &[format!("{name}.example")]).unwrap(),
        }
    }

    pub fn document(&self, vc: &str, endpoint: &Endpoint, sequence: u64) -> PartnerDocument {
        let body = single_party_body(
            vc,
            &self.name,
            endpoint,
            &self.identity,
            &ValidatedParameters::carbyne_stack_default(),
        );
        VcpSigner::new(&self.identity)
            .sign(&body, sequence)
            .unwrap()
    }
}

/// Documents that a test can swap while the server runs.
#[derive(Default)]
pub struct Documents(pub Mutex<HashMap<String, PartnerDocument>>);

impl Documents {
    pub fn set(&self, vc: &str, document: PartnerDocument) {
        self.0.lock().unwrap().insert(vc.to_owned(), document);
    }
}

impl DocumentSource for Documents {
    fn document(&self, vc: &str) -> Option<PartnerDocument> {
        self.0.lock().unwrap().get(vc).cloned()
    }
}

/// A running server; dropping the guard shuts it down.
pub struct Running {
    pub addr: SocketAddr,
    pub endpoint: Endpoint,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Binds 127.0.0.1:0 (the endpoint names the port).
pub async fn bind() -> (TcpListener, SocketAddr, Endpoint) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let endpoint = Endpoint::new(&format!("https://127.0.0.1:{}", addr.port())).unwrap();
    (listener, addr, endpoint)
}

/// Starts the real server on `listener` (TLS unless `tls` is `None`).
pub fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    source: Arc<dyn DocumentSource>,
) -> oneshot::Sender<()> {
    let (stop, stopped) = oneshot::channel::<()>();
    let server = PartnerInfoServer::new(source);
    tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        match tls {
            Some(tls) => server.serve_tls(listener, tls, shutdown).await,
            None => server.serve_plain(listener, shutdown).await,
        }
    });
    stop
}

pub async fn start(pki: &Pki, source: Arc<dyn DocumentSource>) -> Running {
    let (listener, addr, endpoint) = bind().await;
    let stop = serve(listener, Some(pki.server.clone()), source);
    Running {
        addr,
        endpoint,
        stop: Some(stop),
    }
}

/// What a hostile server sends after reading the request head.
#[derive(Clone)]
pub enum Raw {
    /// These bytes, at once.
    Bytes(Vec<u8>),
    /// The head at once, then the body one byte per `delay`.
    Drip {
        head: Vec<u8>,
        body: Vec<u8>,
        delay: Duration,
    },
}

/// A minimal TLS server answering every connection with `raw`.
pub async fn hostile(pki: &Pki, raw: Raw) -> Endpoint {
    let (listener, _, endpoint) = bind().await;
    let acceptor = tokio_rustls::TlsAcceptor::from(pki.server.clone());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let raw = raw.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                match raw {
                    Raw::Bytes(bytes) => {
                        let _ = tls.write_all(&bytes).await;
                    }
                    Raw::Drip { head, body, delay } => {
                        let _ = tls.write_all(&head).await;
                        let _ = tls.flush().await;
                        for byte in body {
                            tokio::time::sleep(delay).await;
                            if tls.write_all(&[byte]).await.is_err() || tls.flush().await.is_err() {
                                return;
                            }
                        }
                    }
                }
                let _ = tls.shutdown().await;
            });
        }
    });
    endpoint
}

/// An HTTP/1.1 response with a JSON content type and a content length.
pub fn json_response(body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}
