//! Storage: every object as JSON under one global, strictly increasing
//! resourceVersion counter (like etcd's revision), and a bounded history of
//! changes for watches. Each write stamps the object with the next
//! resourceVersion, records the change and broadcasts it to open watches.
//! The oldest changes are compacted away; a watch from before them gets
//! 410 Expired. Each stored state is encoded as JSON once, when it is
//! stored ([`Stored`]); GET and LIST answers and every watch's events share
//! those bytes instead of encoding the object again per request and watcher.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::broadcast;

/// One stored state of an object: the object and its JSON encoding, made
/// once and shared (by reference count) by the store, its history and every
/// answer and watch event that carries this state.
#[derive(Debug)]
pub struct Stored {
    /// The object.
    pub value: Value,
    /// `value` encoded as JSON.
    pub json: Bytes,
}

impl Stored {
    /// Encodes `value` once.
    pub fn new(value: Value) -> Arc<Self> {
        // Encoding a `Value` cannot fail: its map keys are strings.
        let json = Bytes::from(serde_json::to_vec(&value).unwrap_or_default());
        Arc::new(Self { value, json })
    }
}

/// Where an object is stored: resource (group and plural), namespace (empty
/// for cluster-scoped kinds) and name. Objects are listed in this order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    /// API group.
    pub group: String,
    /// Resource (plural).
    pub plural: String,
    /// Namespace, empty for cluster-scoped objects.
    pub namespace: String,
    /// Name.
    pub name: String,
}

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeType {
    /// Created.
    Added,
    /// Updated.
    Modified,
    /// Removed.
    Deleted,
}

impl ChangeType {
    /// The watch event type.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One recorded change.
#[derive(Debug, Clone)]
pub struct Change {
    /// The resourceVersion the change produced.
    pub rv: u64,
    /// What happened.
    pub kind: ChangeType,
    /// Which object.
    pub key: Key,
    /// The object after the change (for `Deleted`, its last state).
    pub object: Arc<Stored>,
    /// The object before a `Modified` change.
    pub previous: Option<Arc<Stored>>,
}

/// How many changes watches can resume from.
pub const HISTORY: usize = 4096;

/// The stored objects and their history.
#[derive(Debug)]
pub struct Store {
    objects: BTreeMap<Key, Arc<Stored>>,
    rv: u64,
    history: VecDeque<Arc<Change>>,
    compacted: u64,
    capacity: usize,
    events: broadcast::Sender<Arc<Change>>,
}

/// Sets `metadata.resourceVersion`.
pub fn set_rv(object: &mut Value, rv: u64) {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
    }
}

impl Store {
    /// An empty store keeping `capacity` changes of history.
    pub fn new(capacity: usize) -> Self {
        let (events, _) = broadcast::channel(capacity.max(16));
        Self {
            objects: BTreeMap::new(),
            rv: 1,
            history: VecDeque::new(),
            compacted: 0,
            capacity: capacity.max(1),
            events,
        }
    }

    /// The current (latest) resourceVersion.
    pub fn rv(&self) -> u64 {
        self.rv
    }

    /// The object at `key`.
    pub fn get(&self, key: &Key) -> Option<&Value> {
        self.objects.get(key).map(|s| &s.value)
    }

    /// The object at `key` with its JSON.
    pub fn get_stored(&self, key: &Key) -> Option<&Arc<Stored>> {
        self.objects.get(key)
    }

    /// Objects of resource `group`/`plural`, in `namespace` if given, in key order.
    pub fn list<'a>(
        &'a self,
        group: &'a str,
        plural: &'a str,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a Key, &'a Arc<Stored>)> + 'a {
        // Keys order by group and resource first: seek to the first object
        // of the resource instead of walking every stored object.
        let start = Key {
            group: group.to_owned(),
            plural: plural.to_owned(),
            namespace: namespace.unwrap_or_default().to_owned(),
            name: String::new(),
        };
        self.objects.range(start..).take_while(move |(k, _)| {
            k.group == group && k.plural == plural && namespace.is_none_or(|ns| k.namespace == ns)
        })
    }

    /// Every object, in key order.
    pub fn all(&self) -> impl Iterator<Item = (&Key, &Value)> {
        self.objects.iter().map(|(k, s)| (k, &s.value))
    }

    fn record(
        &mut self,
        kind: ChangeType,
        key: Key,
        object: Arc<Stored>,
        previous: Option<Arc<Stored>>,
    ) {
        let change = Arc::new(Change {
            rv: self.rv,
            kind,
            key,
            object,
            previous,
        });
        if self.history.len() >= self.capacity
            && let Some(old) = self.history.pop_front()
        {
            self.compacted = old.rv;
        }
        self.history.push_back(change.clone());
        // No receivers is fine: nobody watches.
        let _ = self.events.send(change);
    }

    /// Stores a new object under the next resourceVersion; returns it as stored.
    pub fn insert(&mut self, key: Key, mut object: Value) -> Value {
        self.rv += 1;
        set_rv(&mut object, self.rv);
        let stored = Stored::new(object);
        self.objects.insert(key.clone(), stored.clone());
        self.record(ChangeType::Added, key, stored.clone(), None);
        stored.value.clone()
    }

    /// Replaces an object under the next resourceVersion; returns it as stored.
    pub fn update(&mut self, key: Key, mut object: Value) -> Value {
        self.rv += 1;
        set_rv(&mut object, self.rv);
        let stored = Stored::new(object);
        let previous = self.objects.insert(key.clone(), stored.clone());
        self.record(ChangeType::Modified, key, stored.clone(), previous);
        stored.value.clone()
    }

    /// Removes an object; returns its last state, stamped with the deletion's resourceVersion.
    pub fn remove(&mut self, key: &Key) -> Option<Value> {
        let removed = self.objects.remove(key)?;
        // The last reference is usually the history's: take the value then.
        let mut object = Arc::try_unwrap(removed).map_or_else(|s| s.value.clone(), |s| s.value);
        self.rv += 1;
        set_rv(&mut object, self.rv);
        let stored = Stored::new(object);
        self.record(ChangeType::Deleted, key.clone(), stored.clone(), None);
        Some(stored.value.clone())
    }

    /// The changes after `rv`, or `Err(oldest)` when some were compacted away.
    pub fn since(&self, rv: u64) -> Result<Vec<Arc<Change>>, u64> {
        if rv < self.compacted {
            return Err(self.compacted + 1);
        }
        Ok(self.history.iter().filter(|c| c.rv > rv).cloned().collect())
    }

    /// A receiver of every change from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.events.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn key(plural: &str, namespace: &str, name: &str) -> Key {
        Key {
            group: String::new(),
            plural: plural.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    fn decoded(stored: &Stored) -> Value {
        serde_json::from_slice(&stored.json).unwrap_or_default()
    }

    #[test]
    fn the_stored_json_and_the_history_follow_each_write() {
        let mut store = Store::new(16);
        let k = key("configmaps", "ns", "a");
        store.insert(k.clone(), json!({"metadata": {}, "data": {"k": "1"}}));
        store.update(k.clone(), json!({"metadata": {}, "data": {"k": "2"}}));
        let stored = store.get_stored(&k).cloned();
        let stored = stored.as_deref().map(decoded);
        assert_eq!(stored.as_ref(), store.get(&k));
        assert_eq!(
            stored.and_then(|v| v.pointer("/data/k").cloned()),
            Some(json!("2"))
        );
        let removed = store.remove(&k);
        assert!(store.get_stored(&k).is_none());
        let history = store.since(1).unwrap_or_default();
        let seen: Vec<(ChangeType, Value, Option<Value>)> = history
            .iter()
            .map(|c| {
                (
                    c.kind,
                    decoded(&c.object),
                    c.previous.as_deref().map(decoded),
                )
            })
            .collect();
        let state = |k: &str, rv: u64| json!({"metadata": {"resourceVersion": rv.to_string()}, "data": {"k": k}});
        assert_eq!(
            seen,
            [
                (ChangeType::Added, state("1", 2), None),
                (ChangeType::Modified, state("2", 3), Some(state("1", 2))),
                (ChangeType::Deleted, state("2", 4), None),
            ]
        );
        assert_eq!(removed, Some(state("2", 4)));
        // Each change's JSON is the encoding of the object it carries.
        assert!(history.iter().all(|c| decoded(&c.object) == c.object.value));
    }

    #[test]
    fn lists_hold_exactly_the_resource_and_namespace_asked_for() {
        let mut store = Store::new(16);
        for (plural, namespace, name) in [
            ("configmap", "ns", "x"),
            ("configmaps", "a", "1"),
            ("configmaps", "ns", "b"),
            ("configmaps", "ns", "a"),
            ("configmaps", "ns2", "c"),
            ("configmapsx", "ns", "y"),
            ("secrets", "ns", "z"),
        ] {
            store.insert(key(plural, namespace, name), json!({"metadata": {}}));
        }
        let names = |namespace: Option<&str>| -> Vec<String> {
            store
                .list("", "configmaps", namespace)
                .map(|(k, _)| format!("{}/{}", k.namespace, k.name))
                .collect()
        };
        assert_eq!(names(Some("ns")), ["ns/a", "ns/b"]);
        assert_eq!(names(None), ["a/1", "ns/a", "ns/b", "ns2/c"]);
        assert!(names(Some("n")).is_empty());
    }
}
