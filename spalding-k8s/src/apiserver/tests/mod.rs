//! Tests of the in-memory API server through kube's real [`kube::Client`]
//! over HTTP on loopback: objects ([`objects`]), watches ([`watches`]), the
//! real controller against it and kubectl ([`end_to_end`]).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod end_to_end;
mod objects;
mod watches;

use kube::Client;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{ApiServer, Config, simulation_crds};

/// A server with every simulation CRD and a client for it.
pub async fn server() -> (ApiServer, Client) {
    server_with(Config::default()).await
}

pub async fn server_with(config: Config) -> (ApiServer, Client) {
    let server = ApiServer::start_with(config, simulation_crds().unwrap())
        .await
        .unwrap();
    let client = server.client().unwrap();
    (server, client)
}

/// Sends `request` (raw HTTP/1.1) and returns the status code and body.
pub async fn raw(server: &ApiServer, request: &[u8]) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(server.address())
        .await
        .unwrap();
    // The server may answer (413) and close before reading everything.
    let _ = stream.write_all(request).await;
    let mut response = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_to_end(&mut response),
    )
    .await;
    let text = String::from_utf8_lossy(&response).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    (code, body)
}
