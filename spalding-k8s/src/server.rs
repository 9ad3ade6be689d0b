//! The partner-info server: serves every VC's signed document at
//! `GET /v1/virtual-clouds/{name}` (JSON, `application/json`), `GET /healthz`,
//! and nothing else (404 for unknown paths and VCs, 405 for other methods,
//! always with a small JSON error body). It faces the internet, so it serves
//! only public facts and bounds what a client can make it hold: a connection
//! cap, a TLS handshake timeout, a header read timeout, a header size cap,
//! bounded HTTP/2 streams, and request bodies that are never read.
//!
//! Built on hyper 1 (HTTP/1.1 keep-alive and HTTP/2 chosen by ALPN) with
//! tokio-rustls (ring). Documents come from a [`DocumentSource`];
//! [`SignedSource`] signs another source's documents as they are served
//! (cached per sequence number, so the signature is computed once per
//! publication and the sequence stays the publisher's, monotonic).
//! [`PartnerInfoServer::serve_tls`] runs until the shutdown future resolves,
//! then lets open requests finish.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use spalding_core::document::PartnerDocument;
use spalding_core::memory::InMemoryCluster;
use spalding_core::ports::DocumentSigner;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use crate::identity::VcpIdentity;

/// The path prefix of documents.
pub const DOCUMENT_PATH_PREFIX: &str = "/v1/virtual-clouds/";

/// Where the server finds the document of a VC.
pub trait DocumentSource: Send + Sync {
    /// The document of `vc`, or `None` when this party has no such VC.
    fn document(&self, vc: &str) -> Option<PartnerDocument>;

    /// The document of `vc` as served (its JSON), or `None` when this party
    /// has no such VC. Encodes [`DocumentSource::document`]; sources that
    /// keep the encoding override it, so a request costs no encoding.
    fn document_json(&self, vc: &str) -> Option<Result<Bytes, serde_json::Error>> {
        self.document(vc)
            .map(|document| serde_json::to_vec(&document).map(Bytes::from))
    }
}

impl DocumentSource for InMemoryCluster {
    /// The stored document (unsigned: wrap the cluster in a [`SignedSource`]).
    fn document(&self, vc: &str) -> Option<PartnerDocument> {
        InMemoryCluster::document(self, vc)
    }
}

impl DocumentSource for HashMap<String, PartnerDocument> {
    fn document(&self, vc: &str) -> Option<PartnerDocument> {
        self.get(vc).cloned()
    }
}

impl<S: DocumentSource + ?Sized> DocumentSource for Arc<S> {
    fn document(&self, vc: &str) -> Option<PartnerDocument> {
        S::document(self, vc)
    }

    fn document_json(&self, vc: &str) -> Option<Result<Bytes, serde_json::Error>> {
        S::document_json(self, vc)
    }
}

/// Signs the documents of an inner source with a [`DocumentSigner`] as they
/// are served. The sequence number is the inner source's; a signature is
/// reused while body and sequence are unchanged.
pub struct SignedSource<S, G> {
    inner: S,
    signer: G,
    cache: Mutex<HashMap<String, PartnerDocument>>,
}

impl<S, G> SignedSource<S, G> {
    /// Signs `inner`'s documents with `signer`.
    pub fn new(inner: S, signer: G) -> Self {
        Self {
            inner,
            signer,
            cache: Mutex::new(HashMap::new()),
        }
    }
}

impl<S: DocumentSource, G: DocumentSigner> DocumentSource for SignedSource<S, G> {
    fn document(&self, vc: &str) -> Option<PartnerDocument> {
        let unsigned = self.inner.document(vc)?;
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(signed) = cache
            .get(vc)
            .filter(|signed| signed.sequence == unsigned.sequence && signed.body == unsigned.body)
        {
            return Some(signed.clone());
        }
        match self.signer.sign(&unsigned.body, unsigned.sequence) {
            Ok(signed) => {
                cache.insert(vc.to_owned(), signed.clone());
                Some(signed)
            }
            Err(error) => {
                // Serving it unsigned would only make clients refuse it.
                tracing::error!(vc, %error, "cannot sign the partner-info document");
                None
            }
        }
    }
}

/// Bounds on what clients can make the server hold.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// Limit for the TLS handshake.
    pub handshake_timeout: Duration,
    /// Limit for an HTTP/1.1 request's headers to arrive.
    pub header_read_timeout: Duration,
    /// Largest HTTP/1.1 read buffer, hence largest request head.
    pub max_header_bytes: usize,
    /// Concurrent HTTP/2 streams per connection.
    pub max_concurrent_streams: u32,
    /// How long graceful shutdown waits for open connections.
    pub shutdown_grace: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            max_concurrent_streams: 32,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// A TLS server configuration presenting `identity` (ring provider, ALPN
/// `h2` and `http/1.1`). Where a party serves directly, its VCP identity is
/// also its TLS identity; behind an ingress any certificate will do.
pub fn server_tls_config(
    identity: &VcpIdentity,
) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![identity.certificate().der().to_vec().into()],
            identity.private_key_der(),
        )?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The partner-info server.
pub struct PartnerInfoServer {
    source: Arc<dyn DocumentSource>,
    limits: ServerLimits,
}

impl PartnerInfoServer {
    /// Serves documents from `source` with default limits.
    pub fn new(source: Arc<dyn DocumentSource>) -> Self {
        Self {
            source,
            limits: ServerLimits::default(),
        }
    }

    /// Replaces the limits.
    pub fn with_limits(mut self, limits: ServerLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Serves HTTPS on `listener` until `shutdown` resolves, then waits up to
    /// the grace period for open connections. Errors of single connections
    /// are logged, never fatal.
    pub async fn serve_tls(
        self,
        listener: TcpListener,
        tls: Arc<rustls::ServerConfig>,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        self.serve(listener, Some(TlsAcceptor::from(tls)), shutdown)
            .await
    }

    /// Serves plain HTTP, for a party behind an ingress that terminates TLS
    /// (the documents are signed, so integrity holds) and for development.
    pub async fn serve_plain(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        self.serve(listener, None, shutdown).await
    }

    async fn serve(
        self,
        listener: TcpListener,
        tls: Option<TlsAcceptor>,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let limits = self.limits.clone();
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .keep_alive(true)
            .header_read_timeout(limits.header_read_timeout)
            .max_buf_size(limits.max_header_bytes.max(8192));
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(limits.max_concurrent_streams)
            .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
            .keep_alive_interval(Some(Duration::from_secs(30)));
        let builder = Arc::new(builder);
        let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
        let graceful = GracefulShutdown::new();
        let source = self.source;
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                () = &mut shutdown => break,
                permit = Arc::clone(&permits).acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
            };
            let (stream, peer) = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors and the like: back off, keep serving.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let watcher = graceful.watcher();
            let builder = Arc::clone(&builder);
            let source = Arc::clone(&source);
            let tls = tls.clone();
            let handshake_timeout = limits.handshake_timeout;
            tokio::spawn(async move {
                let _permit = permit;
                let service = service_fn(move |request| {
                    let response = respond(source.as_ref(), &request);
                    async move { Ok::<_, Infallible>(response) }
                });
                let result = match tls {
                    Some(acceptor) => {
                        let stream =
                            match tokio::time::timeout(handshake_timeout, acceptor.accept(stream))
                                .await
                            {
                                Ok(Ok(stream)) => stream,
                                Ok(Err(error)) => {
                                    tracing::debug!(%peer, %error, "TLS handshake failed");
                                    return;
                                }
                                Err(_) => {
                                    tracing::debug!(%peer, "TLS handshake timed out");
                                    return;
                                }
                            };
                        let connection = builder.serve_connection(TokioIo::new(stream), service);
                        watcher.watch(connection.into_owned()).await
                    }
                    None => {
                        let connection = builder.serve_connection(TokioIo::new(stream), service);
                        watcher.watch(connection.into_owned()).await
                    }
                };
                if let Err(error) = result {
                    tracing::debug!(%peer, %error, "connection ended with an error");
                }
            });
        }
        drop(listener);
        if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("partner-info server: connections still open after the grace period");
        }
        Ok(())
    }
}

/// Routes one request. Never reads the request body.
pub fn respond<B>(source: &dyn DocumentSource, request: &Request<B>) -> Response<Full<Bytes>> {
    let path = request.uri().path();
    let known = path == "/healthz" || path.starts_with(DOCUMENT_PATH_PREFIX);
    if !known {
        return error(StatusCode::NOT_FOUND, "not found");
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
        response
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    if path == "/healthz" {
        return json(StatusCode::OK, Bytes::from_static(b"{\"status\":\"ok\"}"));
    }
    let name = &path[DOCUMENT_PATH_PREFIX.len()..];
    if name.is_empty() || name.len() > 253 || name.contains('/') {
        return error(StatusCode::NOT_FOUND, "not found");
    }
    match source.document_json(name) {
        Some(Ok(body)) => json(StatusCode::OK, body),
        Some(Err(e)) => {
            tracing::error!(vc = name, error = %e, "cannot encode the partner-info document");
            error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
        None => error(StatusCode::NOT_FOUND, "unknown virtual cloud"),
    }
}

fn error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "error": message, "status": status.as_u16() });
    json(status, Bytes::from(body.to_string()))
}

fn json(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    response
}
