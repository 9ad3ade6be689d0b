//! Storage: every object as JSON under one global, strictly increasing
//! resourceVersion counter (like etcd's revision), and a bounded history of
//! changes for watches. Each write stamps the object with the next
//! resourceVersion, records the change and broadcasts it to open watches.
//! The oldest changes are compacted away; a watch from before them gets
//! 410 Expired.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::broadcast;

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
    pub object: Value,
    /// The object before a `Modified` change.
    pub previous: Option<Value>,
}

/// How many changes watches can resume from.
pub const HISTORY: usize = 4096;

/// The stored objects and their history.
#[derive(Debug)]
pub struct Store {
    objects: BTreeMap<Key, Value>,
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
        self.objects.get(key)
    }

    /// Objects of resource `group`/`plural`, in `namespace` if given, in key order.
    pub fn list<'a>(
        &'a self,
        group: &'a str,
        plural: &'a str,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a Key, &'a Value)> + 'a {
        self.objects.iter().filter(move |(k, _)| {
            k.group == group && k.plural == plural && namespace.is_none_or(|ns| k.namespace == ns)
        })
    }

    /// Every object, in key order.
    pub fn all(&self) -> impl Iterator<Item = (&Key, &Value)> {
        self.objects.iter()
    }

    fn record(&mut self, kind: ChangeType, key: Key, object: Value, previous: Option<Value>) {
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
        self.objects.insert(key.clone(), object.clone());
        self.record(ChangeType::Added, key, object.clone(), None);
        object
    }

    /// Replaces an object under the next resourceVersion; returns it as stored.
    pub fn update(&mut self, key: Key, mut object: Value) -> Value {
        self.rv += 1;
        set_rv(&mut object, self.rv);
        let previous = self.objects.insert(key.clone(), object.clone());
        self.record(ChangeType::Modified, key, object.clone(), previous);
        object
    }

    /// Removes an object; returns its last state, stamped with the deletion's resourceVersion.
    pub fn remove(&mut self, key: &Key) -> Option<Value> {
        let mut object = self.objects.remove(key)?;
        self.rv += 1;
        set_rv(&mut object, self.rv);
        self.record(ChangeType::Deleted, key.clone(), object.clone(), None);
        Some(object)
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
