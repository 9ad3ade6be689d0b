//! The operator's probe endpoint: `GET /healthz` answers 200 while the
//! process serves at all (liveness); `GET /readyz` answers 200 once the
//! operator is ready — identity loaded, listeners bound, published documents
//! synced — and 503 before that and from the start of shutdown (readiness).
//! Plain HTTP on its own port, for the kubelet only.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

/// Path of the liveness probe.
pub const HEALTHZ: &str = "/healthz";
/// Path of the readiness probe.
pub const READYZ: &str = "/readyz";

/// Whether the operator is ready, shared between the operator and the probe server.
#[derive(Debug, Default)]
pub struct Readiness {
    ready: AtomicBool,
}

impl Readiness {
    /// Marks the operator ready or not.
    pub fn set(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    /// Whether the operator is ready.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }
}

/// The answer to one probe request.
pub fn probe<B>(readiness: &Readiness, request: &Request<B>) -> Response<Full<Bytes>> {
    let (status, text) = match (request.method(), request.uri().path()) {
        (&Method::GET | &Method::HEAD, HEALTHZ) => (StatusCode::OK, "ok"),
        (&Method::GET | &Method::HEAD, READYZ) if readiness.is_ready() => (StatusCode::OK, "ready"),
        (&Method::GET | &Method::HEAD, READYZ) => (StatusCode::SERVICE_UNAVAILABLE, "not ready"),
        (_, HEALTHZ | READYZ) => (StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
        _ => (StatusCode::NOT_FOUND, "not found"),
    };
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Serves the probes on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    readiness: Arc<Readiness>,
    shutdown: impl Future<Output = ()>,
) {
    let respond = move |request: &Request<Incoming>| probe(&readiness, request);
    serve_http("probe", listener, respond, shutdown).await;
}

/// Answers each HTTP/1.1 request on `listener` with `respond` until
/// `shutdown` resolves, then lets open connections finish for up to 2 s;
/// `server` names it in logs. The probe and the metrics servers.
pub(crate) async fn serve_http<F>(
    server: &'static str,
    listener: TcpListener,
    respond: F,
    shutdown: impl Future<Output = ()>,
) where
    F: Fn(&Request<Incoming>) -> Response<Full<Bytes>> + Clone + Send + Sync + 'static,
{
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, server, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let respond = respond.clone();
        let service = service_fn(move |request| {
            let response = respond(&request);
            async move { Ok::<_, Infallible>(response) }
        });
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(5))
            .serve_connection(TokioIo::new(stream), service);
        let watched = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = watched.await {
                tracing::debug!(%error, server, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(2), graceful.shutdown()).await;
}
