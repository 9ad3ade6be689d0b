//! [`ConfigMapDocuments`]: a [`DocumentSource`] serving the signed partner
//! documents the controller publishes in `<vc>-partner-document` ConfigMaps,
//! read through kube. The source is synchronous, so a kube reflector keeps a
//! cache of those ConfigMaps that requests read. It counts the documents
//! it served (the partner fetches the simulation reports at rest).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use spalding_core::document::PartnerDocument;

use crate::cluster::objects::COMPONENT_DOCUMENT;
use crate::cluster::{COMPONENT_LABEL, DOCUMENT_KEY, document_config_map_name};
use crate::server::DocumentSource;

/// The published documents of one namespace, from a reflector's cache.
#[derive(Clone)]
pub struct ConfigMapDocuments {
    store: Store<ConfigMap>,
    namespace: String,
    served: Arc<AtomicU64>,
}

impl ConfigMapDocuments {
    /// A source over `namespace` and the future that keeps its cache
    /// current; run the future (it ends when `shutdown` resolves).
    pub fn new(
        client: Client,
        namespace: &str,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let (store, writer) = reflector::store();
        let api: Api<ConfigMap> = Api::namespaced(client, namespace);
        let config =
            watcher::Config::default().labels(&format!("{COMPONENT_LABEL}={COMPONENT_DOCUMENT}"));
        let stream = reflector::reflector(writer, watcher(api, config).default_backoff())
            .applied_objects()
            .for_each(|_| async {});
        let driver = async move {
            tokio::select! {
                () = stream => {}
                () = shutdown => {}
            }
        };
        (
            Self {
                store,
                namespace: namespace.to_owned(),
                served: Arc::default(),
            },
            driver,
        )
    }

    /// How many documents were served so far, shared with every clone.
    pub fn served(&self) -> Arc<AtomicU64> {
        self.served.clone()
    }
}

impl DocumentSource for ConfigMapDocuments {
    fn document(&self, vc: &str) -> Option<PartnerDocument> {
        let key = ObjectRef::new(&document_config_map_name(vc)).within(&self.namespace);
        let map = self.store.get(&key)?;
        self.served.fetch_add(1, Ordering::Relaxed);
        let json = map.data.as_ref()?.get(DOCUMENT_KEY)?;
        match serde_json::from_str(json) {
            Ok(document) => Some(document),
            Err(error) => {
                tracing::warn!(vc, %error, "unreadable published document");
                None
            }
        }
    }
}
