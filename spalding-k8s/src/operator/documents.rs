//! [`PublishedDocuments`]: the partner-info server's [`DocumentSource`] over
//! a kube reflector store of the ConfigMaps in which
//! [`crate::cluster::KubeCluster`] publishes each VC's signed document
//! (`<vc>-partner-document`). Serving reads only the in-memory store, so a
//! partner's request never reaches the API server, and the server answers on
//! every replica.
//!
//! A stored document is parsed (certificate and parameters) and encoded
//! once per change of the stored JSON, not per request: every forming
//! partner polls it, and parsing it on each request was a fifth of a
//! 16-party simulation's CPU.
//!
//! The URL carries only the VC name. When VCs of that name exist in several
//! watched namespaces, the name is ambiguous and nothing is served for it
//! (watch one namespace to avoid that).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use spalding_core::document::PartnerDocument;

use crate::cluster::objects::{COMPONENT_DOCUMENT, labels};
use crate::cluster::{COMPONENT_LABEL, DOCUMENT_KEY, MANAGED_BY, MANAGED_BY_LABEL};
use crate::server::DocumentSource;

/// The published documents, read from a reflector store.
#[derive(Clone)]
pub struct PublishedDocuments {
    store: Store<ConfigMap>,
    parsed: Arc<Mutex<HashMap<String, Arc<Parsed>>>>,
}

/// A stored document as parsed and encoded once, with the stored JSON it
/// came from: while the ConfigMap holds the same JSON, requests reuse it.
struct Parsed {
    stored: String,
    document: PartnerDocument,
    json: Bytes,
}

/// How many VCs' parsed documents are kept at most (all are forgotten when
/// more come).
const MAX_PARSED: usize = 1024;

impl PublishedDocuments {
    /// Documents from `store`, which a reflector keeps filled (see [`reflect`]).
    pub fn new(store: Store<ConfigMap>) -> Self {
        Self {
            store,
            parsed: Arc::default(),
        }
    }

    fn parsed(&self) -> MutexGuard<'_, HashMap<String, Arc<Parsed>>> {
        self.parsed.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The stored document of `vc`, parsed (and encoded) only when the
    /// stored JSON changed since the last request.
    fn lookup(&self, vc: &str) -> Option<Arc<Parsed>> {
        let found = self.stored(vc);
        let Some(stored) = found else {
            self.parsed().remove(vc);
            return None;
        };
        if let Some(parsed) = self.parsed().get(vc).filter(|p| p.stored == stored) {
            return Some(Arc::clone(parsed));
        }
        let document = match serde_json::from_str::<PartnerDocument>(&stored) {
            Ok(document) if document.body.virtual_cloud == vc => document,
            Ok(_) => {
                tracing::warn!(vc, "published document names another virtual cloud");
                return None;
            }
            Err(error) => {
                tracing::warn!(vc, %error, "published document does not parse");
                return None;
            }
        };
        let json = match serde_json::to_vec(&document) {
            Ok(json) => Bytes::from(json),
            Err(error) => {
                tracing::error!(vc, %error, "cannot encode the partner-info document");
                return None;
            }
        };
        let parsed = Arc::new(Parsed {
            stored,
            document,
            json,
        });
        let mut cache = self.parsed();
        if cache.len() >= MAX_PARSED && !cache.contains_key(vc) {
            cache.clear();
        }
        cache.insert(vc.to_owned(), Arc::clone(&parsed));
        Some(parsed)
    }

    /// The JSON stored for `vc`, if exactly one watched namespace publishes it.
    fn stored(&self, vc: &str) -> Option<String> {
        let name = crate::cluster::document_config_map_name(vc);
        let candidates = self.store.state_filter(|map| {
            map.metadata.name.as_deref() == Some(name.as_str()) && is_published_document(map, vc)
        });
        let [map] = candidates.as_slice() else {
            if candidates.len() > 1 {
                tracing::warn!(
                    vc,
                    namespaces = candidates.len(),
                    "virtual cloud name is published in several namespaces; serving none"
                );
            }
            return None;
        };
        map.data.as_ref()?.get(DOCUMENT_KEY).cloned()
    }
}

impl DocumentSource for PublishedDocuments {
    fn document(&self, vc: &str) -> Option<PartnerDocument> {
        self.lookup(vc).map(|parsed| parsed.document.clone())
    }

    fn document_json(&self, vc: &str) -> Option<Result<Bytes, serde_json::Error>> {
        self.lookup(vc).map(|parsed| Ok(parsed.json.clone()))
    }
}

/// Whether `map` carries the labels Spalding puts on `vc`'s document.
fn is_published_document(map: &ConfigMap, vc: &str) -> bool {
    let wanted = labels(vc, COMPONENT_DOCUMENT);
    map.metadata
        .labels
        .as_ref()
        .is_some_and(|have| wanted.iter().all(|(k, v)| have.get(k) == Some(v)))
}

/// A store of the document ConfigMaps in `namespace` (all when `None`) and
/// the future that keeps it filled until it is dropped; run it next to the
/// server. The store is ready (see [`Store::wait_until_ready`]) after the
/// first full list.
pub fn reflect(
    client: Client,
    namespace: Option<&str>,
) -> (Store<ConfigMap>, impl Future<Output = ()> + Send + 'static) {
    let api: Api<ConfigMap> = match namespace {
        Some(namespace) => Api::namespaced(client, namespace),
        None => Api::all(client),
    };
    let config = watcher::Config::default().labels(&format!(
        "{MANAGED_BY_LABEL}={MANAGED_BY},{COMPONENT_LABEL}={COMPONENT_DOCUMENT}"
    ));
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(writer, watcher(api, config))
        .default_backoff()
        .applied_objects();
    let driver = async move {
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            if let Err(error) = event {
                tracing::warn!(%error, "watching published documents");
            }
        }
    };
    (reader, driver)
}
