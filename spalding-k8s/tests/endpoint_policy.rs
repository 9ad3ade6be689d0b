//! The endpoint policy at the transport, with production options: the
//! cloud metadata service (169.254.169.254) in every spelling a URL parser
//! accepts, loopback, private and link-local addresses are refused before
//! any connection is made; names resolving to them are refused after
//! resolution; plain HTTP and credentials are refused. Nothing here opens a
//! socket to the refused address.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use spalding_core::spec::Endpoint;
use spalding_k8s::transport::{FetchError, HttpsTransport, TransportOptions};

fn production() -> HttpsTransport {
    HttpsTransport::new(TransportOptions::default()).unwrap()
}

#[tokio::test]
async fn the_metadata_service_is_refused_in_every_spelling() {
    let transport = production();
    for url in [
        "https://169.254.169.254/v1/virtual-clouds/vc",
        "https://169.254.169.254:443/latest/meta-data/",
        "https://2852039166/v1/virtual-clouds/vc", // decimal
        "https://0xa9fea9fe/v1/virtual-clouds/vc", // hex
        "https://0xa9.0xfe.0xa9.0xfe/v1/virtual-clouds/vc", // hex octets
        "https://0251.0376.0251.0376/v1/virtual-clouds/vc", // octal octets
        "https://169.254.43518/v1/virtual-clouds/vc", // a.b.c form
        "https://[::ffff:169.254.169.254]/v1/virtual-clouds/vc",
        "https://[::ffff:a9fe:a9fe]/v1/virtual-clouds/vc",
        "https://[fd00:ec2::254]/v1/virtual-clouds/vc", // AWS's IPv6 metadata address
    ] {
        let started = Instant::now();
        let error = transport.fetch_url(url).await.unwrap_err();
        assert!(
            matches!(error, FetchError::ForbiddenAddress { .. }),
            "{url}: {error}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{url}: refused before connecting"
        );
    }
}

#[tokio::test]
async fn loopback_private_and_link_local_literals_are_refused() {
    let transport = production();
    for host in [
        "127.0.0.1",
        "127.1",
        "0.0.0.0",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.0.1",
        "100.64.0.1",
        "[::1]",
        "[fe80::1]",
        "[fc00::1]",
        "[::ffff:127.0.0.1]",
        "[64:ff9b::a9fe:a9fe]",
    ] {
        let url = format!("https://{host}/v1/virtual-clouds/vc");
        let error = transport.fetch_url(&url).await.unwrap_err();
        assert!(
            matches!(error, FetchError::ForbiddenAddress { .. }),
            "{url}: {error}"
        );
    }
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_refused_after_resolution() {
    let error = production()
        .fetch_url("https://localhost:1/v1/virtual-clouds/vc")
        .await
        .unwrap_err();
    assert!(
        matches!(&error, FetchError::Connect { reason, .. } if reason.contains("non-public")),
        "{error}"
    );
}

#[tokio::test]
async fn spec_endpoints_on_the_metadata_service_are_refused_at_fetch() {
    // The spec accepts the URL (it is syntactically an HTTPS endpoint); the
    // transport refuses it, so the partner shows as unreachable with the reason.
    let endpoint = Endpoint::new("https://169.254.169.254").unwrap();
    let error = production()
        .fetch_document("vc", &endpoint)
        .await
        .unwrap_err();
    assert!(
        matches!(error, FetchError::ForbiddenAddress { .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains("not a public address"),
        "{error}"
    );
}

#[tokio::test]
async fn plain_http_and_credentials_are_refused() {
    let transport = production();
    let error = transport
        .fetch_url("http://partner.example/v1/virtual-clouds/vc")
        .await
        .unwrap_err();
    assert!(matches!(error, FetchError::PlainHttp { .. }), "{error}");
    let error = transport
        .fetch_url("https://user:secret@partner.example/v1/virtual-clouds/vc")
        .await
        .unwrap_err();
    assert!(matches!(error, FetchError::InvalidUrl { .. }), "{error}");
    assert!(!error.to_string().contains("secret"), "{error}");
    assert!(Endpoint::new("http://partner.example").is_err());
}
