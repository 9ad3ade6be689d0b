//! The partner protocol end to end over real TLS on loopback: the server and
//! the hardened transport agree on the happy path, and every refusal of the
//! issue's list is asserted by its typed reason.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use spalding_core::document::DocumentError;
use spalding_core::spec::Partner;
use spalding_k8s::server::SignedSource;
use spalding_k8s::signing::{SignatureError, VcpSigner, verify_signature};
use spalding_k8s::transport::{FetchError, HttpsTransport, TransportOptions};
use support::{Documents, Party, Pki, Raw, hostile, json_response, start};

const VC: &str = "vc-one";

#[tokio::test]
async fn happy_path_fetches_a_signed_document_that_verifies() {
    let pki = Pki::new(true);
    let party = Party::new("party-b");
    let documents = Arc::new(Documents::default());
    let running = start(&pki, documents.clone()).await;
    let document = party.document(VC, &running.endpoint, 7);
    documents.set(VC, document.clone());

    let fetched = pki
        .transport()
        .fetch_document(VC, &running.endpoint)
        .await
        .unwrap();
    assert_eq!(fetched, document);
    verify_signature(&fetched).unwrap();
    let partner = Partner {
        name: party.name.clone(),
        endpoint: running.endpoint.clone(),
    };
    let verified = fetched.verify(VC, &partner).unwrap();
    assert_eq!(verified.sequence, 7);
    assert_eq!(
        verified.certificate.fingerprint(),
        party.identity.fingerprint()
    );
}

/// Partner endpoints on loopback (or any non-public address) are refused
/// unless private addresses are allowed: an IP literal before connecting, a
/// host name once resolved.
#[tokio::test]
async fn private_partner_addresses_are_refused_by_default() {
    let pki = Pki::new(true);
    let party = Party::new("party-b");
    let documents = Arc::new(Documents::default());
    let running = start(&pki, documents.clone()).await;
    documents.set(VC, party.document(VC, &running.endpoint, 1));
    let strict = HttpsTransport::new(TransportOptions {
        allow_private_addresses: false,
        ..pki.options()
    })
    .unwrap();
    let error = strict
        .fetch_document(VC, &running.endpoint)
        .await
        .unwrap_err();
    assert!(
        matches!(error, FetchError::ForbiddenAddress { .. }),
        "{error}"
    );
    let by_name = running.endpoint.as_str().replace("127.0.0.1", "localhost");
    let error = strict
        .fetch_url(&format!("{by_name}/v1/virtual-clouds/{VC}"))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("non-public"), "{error}");
    // The same server is reachable once private addresses are allowed.
    pki.transport()
        .fetch_document(VC, &running.endpoint)
        .await
        .unwrap();
}

#[tokio::test]
async fn signed_source_signs_the_clusters_unsigned_documents_once_per_sequence() {
    let pki = Pki::new(true);
    let party = Party::new("party-b");
    let unsigned = Arc::new(Documents::default());
    let source = Arc::new(SignedSource::new(
        unsigned.clone(),
        VcpSigner::new(&party.identity),
    ));
    let running = start(&pki, source).await;
    let mut document = party.document(VC, &running.endpoint, 3);
    document.signature = None;
    unsigned.set(VC, document);
    let transport = pki.transport();
    let first = transport
        .fetch_document(VC, &running.endpoint)
        .await
        .unwrap();
    let second = transport
        .fetch_document(VC, &running.endpoint)
        .await
        .unwrap();
    assert_eq!(first.sequence, 3);
    assert_eq!(first.signature, second.signature);
}

#[tokio::test]
async fn server_answers_json_errors_and_health() {
    let pki = Pki::new(true);
    let running = start(&pki, Arc::new(Documents::default())).await;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls_pki_types::CertificateDer::from(
            ca_der(&pki.ca_pem).to_vec(),
        ))
        .unwrap();
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .build()
        .unwrap();
    let base = running.endpoint.as_str();

    let health = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.version(), reqwest::Version::HTTP_2);

    let unknown = client
        .get(format!("{base}/v1/virtual-clouds/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(
        unknown.headers()["content-type"],
        "application/json",
        "JSON error body"
    );
    let body: serde_json::Value = unknown.json_body().await;
    assert_eq!(body["error"], "unknown virtual cloud");

    let other = client.get(format!("{base}/admin")).send().await.unwrap();
    assert_eq!(other.status(), 404);
    let post = client
        .post(format!("{base}/v1/virtual-clouds/{VC}"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405);
}

trait JsonBody {
    async fn json_body(self) -> serde_json::Value;
}

impl JsonBody for reqwest::Response {
    async fn json_body(self) -> serde_json::Value {
        serde_json::from_slice(&self.bytes().await.unwrap()).unwrap()
    }
}

fn ca_der(pem: &str) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

#[tokio::test]
async fn body_over_the_cap_is_refused_while_streaming() {
    let pki = Pki::new(false);
    // Chunked, no content length: the cap must hold while reading.
    let mut raw =
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
            .to_vec();
    for _ in 0..8 {
        raw.extend_from_slice(b"2000\r\n");
        raw.extend_from_slice(&[b' '; 0x2000]);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let endpoint = hostile(&pki, Raw::Bytes(raw)).await;
    let transport = HttpsTransport::new(TransportOptions {
        max_body_bytes: 16 * 1024,
        ..pki.options()
    })
    .unwrap();
    let error = transport.fetch_document(VC, &endpoint).await.unwrap_err();
    assert!(
        matches!(error, FetchError::TooLarge { limit: 16384, .. }),
        "{error}"
    );

    // A declared length over the cap is refused before reading.
    let endpoint = hostile(&pki, Raw::Bytes(json_response(&vec![b' '; 300 * 1024]))).await;
    let error = pki
        .transport()
        .fetch_document(VC, &endpoint)
        .await
        .unwrap_err();
    assert!(matches!(error, FetchError::TooLarge { .. }), "{error}");
}

#[tokio::test]
async fn a_dripping_body_is_cut_by_the_total_timeout() {
    let pki = Pki::new(false);
    let head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n";
    let endpoint = hostile(
        &pki,
        Raw::Drip {
            head: head.to_vec(),
            body: vec![b' '; 100],
            delay: Duration::from_millis(50),
        },
    )
    .await;
    let transport = HttpsTransport::new(TransportOptions {
        total_timeout: Duration::from_millis(400),
        ..pki.options()
    })
    .unwrap();
    let started = std::time::Instant::now();
    let error = transport.fetch_document(VC, &endpoint).await.unwrap_err();
    assert!(matches!(error, FetchError::Timeout { .. }), "{error}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_redirect_is_refused_not_followed() {
    let pki = Pki::new(false);
    let raw =
        b"HTTP/1.1 302 Found\r\nlocation: https://evil.example/doc\r\ncontent-length: 0\r\n\r\n";
    let endpoint = hostile(&pki, Raw::Bytes(raw.to_vec())).await;
    let error = pki
        .transport()
        .fetch_document(VC, &endpoint)
        .await
        .unwrap_err();
    match error {
        FetchError::Redirect {
            status, location, ..
        } => {
            assert_eq!(status, 302);
            assert_eq!(location, "https://evil.example/doc");
        }
        other => panic!("expected a redirect refusal, got {other}"),
    }
}

#[tokio::test]
async fn plain_http_is_refused_without_the_development_option() {
    let pki = Pki::new(true);
    let party = Party::new("party-b");
    let error = pki
        .transport()
        .fetch_url("http://127.0.0.1:9/v1/virtual-clouds/vc-one")
        .await
        .unwrap_err();
    assert!(matches!(error, FetchError::PlainHttp { .. }), "{error}");

    // With the option, a plain server (as behind a TLS-terminating ingress) works.
    let (listener, addr, endpoint) = support::bind().await;
    let documents = Arc::new(Documents::default());
    documents.set(VC, party.document(VC, &endpoint, 1));
    let _stop = support::serve(listener, None, documents);
    let transport = HttpsTransport::new(TransportOptions {
        allow_plain_http: true,
        ..pki.options()
    })
    .unwrap();
    let fetched = transport
        .fetch_url(&format!("http://{addr}/v1/virtual-clouds/{VC}"))
        .await
        .unwrap();
    assert_eq!(fetched.sequence, 1);
}

#[tokio::test]
async fn invalid_json_is_refused() {
    let pki = Pki::new(false);
    let endpoint = hostile(&pki, Raw::Bytes(json_response(b"{\"protocol\": nope"))).await;
    let error = pki
        .transport()
        .fetch_document(VC, &endpoint)
        .await
        .unwrap_err();
    assert!(matches!(error, FetchError::InvalidJson { .. }), "{error}");
}

#[tokio::test]
async fn a_wrong_content_type_is_refused() {
    let pki = Pki::new(false);
    let raw = b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 2\r\n\r\n{}";
    let endpoint = hostile(&pki, Raw::Bytes(raw.to_vec())).await;
    let error = pki
        .transport()
        .fetch_document(VC, &endpoint)
        .await
        .unwrap_err();
    assert!(matches!(error, FetchError::ContentType { .. }), "{error}");
}

#[tokio::test]
async fn a_certificate_pem_that_is_not_exactly_one_certificate_is_refused() {
    let pki = Pki::new(false);
    let a = Party::new("party-a");
    let b = Party::new("party-b");
    let endpoint = support::bind().await.2;
    let document = a.document(VC, &endpoint, 1);
    let mut json = serde_json::to_value(&document).unwrap();
    let two = format!(
        "{}{}",
        a.identity.certificate().pem(),
        b.identity.certificate().pem()
    );
    json["certificate"] = serde_json::Value::String(two);
    let endpoint = hostile(
        &pki,
        Raw::Bytes(json_response(&serde_json::to_vec(&json).unwrap())),
    )
    .await;
    let error = pki
        .transport()
        .fetch_document(VC, &endpoint)
        .await
        .unwrap_err();
    match &error {
        FetchError::InvalidDocument { reason, .. } => {
            assert!(reason.contains("certificate"), "{reason}");
        }
        other => panic!("expected an invalid document, got {other}"),
    }
}

#[tokio::test]
async fn a_document_about_another_virtual_cloud_is_refused_by_the_core() {
    let pki = Pki::new(true);
    let party = Party::new("party-b");
    let documents = Arc::new(Documents::default());
    let running = start(&pki, documents.clone()).await;
    // Served under VC, but describing another VC (validly signed).
    documents.set(VC, party.document("vc-other", &running.endpoint, 1));
    let fetched = pki
        .transport()
        .fetch_document(VC, &running.endpoint)
        .await
        .unwrap();
    let partner = Partner {
        name: party.name.clone(),
        endpoint: running.endpoint.clone(),
    };
    let error = fetched.verify(VC, &partner).unwrap_err();
    assert!(
        matches!(error, DocumentError::VirtualCloud { .. }),
        "{error}"
    );
}

#[tokio::test]
async fn a_tampered_or_unsigned_document_is_refused() {
    let pki = Pki::new(true);
    let party = Party::new("party-b");
    let documents = Arc::new(Documents::default());
    let running = start(&pki, documents.clone()).await;
    let mut tampered = party.document(VC, &running.endpoint, 4);
    tampered.sequence = 40;
    documents.set(VC, tampered);
    let transport = pki.transport();
    let error = transport
        .fetch_document(VC, &running.endpoint)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            FetchError::Signature {
                source: SignatureError::Invalid { .. },
                ..
            }
        ),
        "{error}"
    );

    // Signed by another key than the certificate's.
    let mallory = Party::new("mallory");
    let mut forged = party.document(VC, &running.endpoint, 5);
    forged.signature = mallory.document(VC, &running.endpoint, 5).signature;
    documents.set(VC, forged);
    let error = transport
        .fetch_document(VC, &running.endpoint)
        .await
        .unwrap_err();
    assert!(matches!(error, FetchError::Signature { .. }), "{error}");

    let mut unsigned = party.document(VC, &running.endpoint, 6);
    unsigned.signature = None;
    documents.set(VC, unsigned);
    let error = transport
        .fetch_document(VC, &running.endpoint)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            FetchError::Signature {
                source: SignatureError::Missing,
                ..
            }
        ),
        "{error}"
    );
}

#[tokio::test]
async fn unreachable_partners_are_retried_then_reported_as_connection_errors() {
    let pki = Pki::new(true);
    let (listener, _, endpoint) = support::bind().await;
    drop(listener);
    let transport = HttpsTransport::new(TransportOptions {
        retry: spalding_k8s::retry::RetryPolicy {
            attempts: 3,
            initial_backoff: Duration::ZERO,
            max_backoff: Duration::ZERO,
        },
        ..pki.options()
    })
    .unwrap();
    let error = transport.fetch_document(VC, &endpoint).await.unwrap_err();
    assert!(matches!(error, FetchError::Connect { .. }), "{error}");
}
