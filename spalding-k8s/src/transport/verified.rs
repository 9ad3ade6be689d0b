//! [`Verified`]: the last document each partner URL served that passed the
//! transport's checks, with the exact bytes it came in. A fetch whose body
//! is byte for byte the one verified before reuses that result instead of
//! parsing JSON, the certificate and the parameters and checking the
//! signature again: the same bytes can only give the same verdict (neither
//! the parse nor the signature check depends on the time). A partner
//! republishes only when something changed, so at rest and while waiting
//! for others almost every fetch is such a repeat.
//!
//! Only documents that passed are kept, one per URL, and at most
//! [`MAX_URLS`] URLs (all are forgotten when more come), so a partner
//! cannot make the cache grow; the body cap bounds each entry.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// How many partner URLs are remembered at most.
pub const MAX_URLS: usize = 1024;

/// The last verified document (`D`, a
/// [`spalding_core::document::PartnerDocument`] in the transport) per URL.
#[derive(Debug)]
pub struct Verified<D> {
    by_url: Mutex<HashMap<String, (Vec<u8>, D)>>,
}

impl<D> Default for Verified<D> {
    fn default() -> Self {
        Self {
            by_url: Mutex::new(HashMap::new()),
        }
    }
}

impl<D: Clone> Verified<D> {
    /// The document verified from exactly `body` at `url`, if any.
    pub fn recall(&self, url: &str, body: &[u8]) -> Option<D> {
        let by_url = self.by_url.lock().unwrap_or_else(PoisonError::into_inner);
        by_url
            .get(url)
            .filter(|(bytes, _)| bytes.as_slice() == body)
            .map(|(_, document)| document.clone())
    }

    /// Remembers that `body` fetched from `url` verified as `document`.
    pub fn remember(&self, url: &str, body: Vec<u8>, document: &D) {
        let mut by_url = self.by_url.lock().unwrap_or_else(PoisonError::into_inner);
        if by_url.len() >= MAX_URLS && !by_url.contains_key(url) {
            by_url.clear();
        }
        by_url.insert(url.to_owned(), (body, document.clone()));
    }

    /// How many URLs are remembered.
    pub fn len(&self) -> usize {
        self.by_url
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_bytes_from_the_same_url_are_recalled() {
        let verified = Verified::default();
        verified.remember("https://a/v1/virtual-clouds/demo", b"{1}".to_vec(), &1);
        assert_eq!(
            verified.recall("https://a/v1/virtual-clouds/demo", b"{1}"),
            Some(1)
        );
        assert_eq!(
            verified.recall("https://a/v1/virtual-clouds/demo", b"{2}"),
            None
        );
        assert_eq!(
            verified.recall("https://b/v1/virtual-clouds/demo", b"{1}"),
            None
        );
        // A newer document replaces the older one.
        verified.remember("https://a/v1/virtual-clouds/demo", b"{2}".to_vec(), &2);
        assert_eq!(
            verified.recall("https://a/v1/virtual-clouds/demo", b"{1}"),
            None
        );
        assert_eq!(
            verified.recall("https://a/v1/virtual-clouds/demo", b"{2}"),
            Some(2)
        );
        assert_eq!(verified.len(), 1);
    }

    #[test]
    fn at_most_max_urls_are_remembered() {
        let verified = Verified::default();
        for i in 0..(3 * MAX_URLS) {
            verified.remember(&format!("https://p{i}"), vec![1], &i);
            assert!(verified.len() <= MAX_URLS);
        }
        assert!(!verified.is_empty());
    }
}
