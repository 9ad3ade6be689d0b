//! [`InProcessTransport`]: fetches partner documents straight from the
//! partners' [`InMemoryCluster`]s, by endpoint, in the same process. Partners
//! can be taken down and brought back to test unreachable partners.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use crate::document::PartnerDocument;
use crate::memory::InMemoryCluster;
use crate::ports::{PartnerTransport, TransportError};
use crate::spec::Endpoint;

#[derive(Debug, Default)]
struct Inner {
    parties: BTreeMap<Endpoint, Arc<InMemoryCluster>>,
    down: BTreeSet<Endpoint>,
    fetches: u64,
}

/// Partner documents served from in-memory clusters.
#[derive(Debug, Default)]
pub struct InProcessTransport {
    inner: Mutex<Inner>,
}

impl InProcessTransport {
    /// A transport that knows no party yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Serves `cluster`'s documents at `endpoint`.
    pub fn register(&self, endpoint: Endpoint, cluster: Arc<InMemoryCluster>) {
        self.lock().parties.insert(endpoint, cluster);
    }

    /// Takes the party at `endpoint` down (`true`) or brings it back.
    pub fn set_down(&self, endpoint: &Endpoint, down: bool) {
        let mut inner = self.lock();
        if down {
            inner.down.insert(endpoint.clone());
        } else {
            inner.down.remove(endpoint);
        }
    }

    /// Fetches so far.
    pub fn fetches(&self) -> u64 {
        self.lock().fetches
    }
}

#[async_trait]
impl PartnerTransport for InProcessTransport {
    async fn fetch(
        &self,
        vc: &str,
        endpoint: &Endpoint,
    ) -> Result<PartnerDocument, TransportError> {
        let cluster = {
            let mut inner = self.lock();
            inner.fetches += 1;
            if inner.down.contains(endpoint) {
                return Err(TransportError(format!("{endpoint} is unreachable")));
            }
            inner.parties.get(endpoint).cloned()
        };
        let cluster =
            cluster.ok_or_else(|| TransportError(format!("no party serves {endpoint}")))?;
        cluster
            .document(vc)
            .ok_or_else(|| TransportError(format!("{endpoint} has no virtual cloud {vc:?} (404)")))
    }
}
