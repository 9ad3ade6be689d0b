//! Watches: a streaming response of newline-delimited JSON events
//! `{"type": "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR", "object": …}`.
//!
//! `resourceVersion` unset, `""` or `"0"` starts with a synthetic `ADDED` for
//! every matching object (then, with `sendInitialEvents=true`, a `BOOKMARK`
//! annotated `k8s.io/initial-events-end`); a number `n` replays every change
//! after `n` from the history, or, when the history no longer reaches back
//! to `n`, sends one `ERROR` event with a 410 Expired `Status` ("too old
//! resource version") and ends, as the real server does. With a label or
//! field selector, an object that stops matching is sent as `DELETED` and
//! one that starts matching as `ADDED`. `allowWatchBookmarks=true` sends a
//! `BOOKMARK` (the kind, apiVersion and the latest resourceVersion) at the
//! configured interval. The stream ends after `timeoutSeconds` (default 30
//! minutes), when the server shuts down, or when the watcher falls so far
//! behind that changes were dropped (the client then resumes or relists).
//! An event's object is the JSON the store encoded once for that state
//! ([`Stored`]), shared by every watch.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::StreamBody;
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::sync::{broadcast, watch};
use tokio::time::{Instant, MissedTickBehavior};

use super::error::ApiError;
use super::ops::State;
use super::resources::ResourceType;
use super::selector::{FieldSelector, LabelSelector};
use super::store::{Change, ChangeType, Stored};

/// What a watch asks for.
#[derive(Debug, Clone)]
pub struct WatchRequest {
    /// The kind watched.
    pub rt: Arc<ResourceType>,
    /// The version in the request path.
    pub version: String,
    /// One namespace, or all.
    pub namespace: Option<String>,
    /// `labelSelector`.
    pub labels: LabelSelector,
    /// `fieldSelector`.
    pub fields: FieldSelector,
    /// `resourceVersion`.
    pub resource_version: Option<String>,
    /// `allowWatchBookmarks`.
    pub bookmarks: bool,
    /// `sendInitialEvents`.
    pub send_initial_events: bool,
    /// `timeoutSeconds`.
    pub timeout: Option<Duration>,
}

impl WatchRequest {
    fn matches(&self, object: &Value) -> bool {
        self.labels.matches(object) && self.fields.matches(object)
    }

    /// The event `change` means for this watch, if any.
    fn event(&self, change: &Change) -> Option<Bytes> {
        let key = &change.key;
        if key.group != self.rt.group
            || key.plural != self.rt.plural
            || self
                .namespace
                .as_ref()
                .is_some_and(|ns| *ns != key.namespace)
        {
            return None;
        }
        let now = self.matches(&change.object.value);
        let kind = match change.kind {
            ChangeType::Modified => {
                let before = change
                    .previous
                    .as_ref()
                    .is_some_and(|p| self.matches(&p.value));
                match (before, now) {
                    (true, true) => ChangeType::Modified,
                    (false, true) => ChangeType::Added,
                    (true, false) => ChangeType::Deleted,
                    (false, false) => return None,
                }
            }
            other if now => other,
            _ => return None,
        };
        Some(stored_line(kind.as_str(), &change.object))
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if initial_end && let Some(map) = metadata.as_object_mut() {
            map.insert(
                "annotations".into(),
                json!({"k8s.io/initial-events-end": "true"}),
            );
        }
        line(
            "BOOKMARK",
            &json!({"kind": self.rt.kind, "apiVersion": self.rt.api_version(&self.version), "metadata": metadata}),
        )
    }
}

/// An event line around an object's stored JSON: `{"type":…,"object":…}`.
fn stored_line(kind: &str, object: &Stored) -> Bytes {
    let mut bytes = Vec::with_capacity(object.json.len() + 32);
    bytes.extend_from_slice(b"{\"type\":\"");
    bytes.extend_from_slice(kind.as_bytes());
    bytes.extend_from_slice(b"\",\"object\":");
    bytes.extend_from_slice(&object.json);
    bytes.extend_from_slice(b"}\n");
    Bytes::from(bytes)
}

fn line(kind: &str, object: &Value) -> Bytes {
    let mut bytes =
        serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    bytes.push(b'\n');
    Bytes::from(bytes)
}

/// The body of a watch response.
pub type WatchBody =
    StreamBody<futures::stream::BoxStream<'static, Result<Frame<Bytes>, Infallible>>>;

struct Stream {
    request: WatchRequest,
    pending: VecDeque<Bytes>,
    changes: broadcast::Receiver<Arc<Change>>,
    shutdown: watch::Receiver<bool>,
    deadline: Instant,
    bookmarks: tokio::time::Interval,
    last_rv: u64,
    done: bool,
}

/// Starts a watch: the initial events are computed under the state lock,
/// together with the subscription, so no change falls between them.
pub fn start(
    state: &State,
    request: WatchRequest,
    shutdown: watch::Receiver<bool>,
    bookmark_interval: Duration,
) -> Result<WatchBody, ApiError> {
    let changes = state.store.subscribe();
    let current = state.store.rv();
    let mut pending = VecDeque::new();
    let mut done = false;
    match request.resource_version.as_deref() {
        None | Some("") | Some("0") => {
            let namespace = request.namespace.as_deref();
            for (_, object) in state
                .store
                .list(&request.rt.group, &request.rt.plural, namespace)
            {
                if request.matches(&object.value) {
                    pending.push_back(stored_line("ADDED", object));
                }
            }
            if request.send_initial_events {
                pending.push_back(request.bookmark(current, true));
            }
        }
        Some(text) => {
            let rv: u64 = text.parse().map_err(|_| {
                ApiError::bad_request(format!("invalid resource version: {text:?}"))
            })?;
            match state.store.since(rv) {
                Ok(history) => pending.extend(history.iter().filter_map(|c| request.event(c))),
                Err(oldest) => {
                    pending.push_back(line("ERROR", &ApiError::expired(rv, oldest).status()));
                    done = true;
                }
            }
        }
    }
    let timeout = request.timeout.unwrap_or(Duration::from_secs(1800));
    let period = bookmark_interval.max(Duration::from_millis(10));
    let mut bookmarks = tokio::time::interval_at(Instant::now() + period, period);
    bookmarks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let stream = Stream {
        request,
        pending,
        changes,
        shutdown,
        deadline: Instant::now() + timeout,
        bookmarks,
        last_rv: current,
        done,
    };
    let stream = futures::stream::unfold(stream, |mut s| async move {
        loop {
            if let Some(bytes) = s.pending.pop_front() {
                return Some((Ok(Frame::data(bytes)), s));
            }
            if s.done {
                return None;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(s.deadline) => s.done = true,
                _ = s.shutdown.changed() => s.done = true,
                _ = s.bookmarks.tick(), if s.request.bookmarks => {
                    let bookmark = s.request.bookmark(s.last_rv, false);
                    s.pending.push_back(bookmark);
                }
                received = s.changes.recv() => match received {
                    Ok(change) if change.rv > s.last_rv => {
                        s.last_rv = change.rv;
                        if let Some(event) = s.request.event(&change) {
                            s.pending.push_back(event);
                        }
                    }
                    Ok(_) => {}
                    Err(_) => s.done = true,
                },
            }
        }
    });
    Ok(StreamBody::new(Box::pin(stream)))
}
