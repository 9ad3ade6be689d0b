//! What each verb does to the stored objects ([`State`]): create (server
//! fields `uid`, `creationTimestamp`, `generation`, `resourceVersion`; 409
//! AlreadyExists), update (optimistic concurrency on
//! `metadata.resourceVersion`, the `/status` subresource split, `generation`
//! bumped on spec changes only, no-op writes kept out of the history),
//! delete (in [`super::delete`]),
//! patch and apply (through [`super::patch`]), and validation ([`super::schema`] for custom resources, decoding as the
//! k8s-openapi type for built-in kinds).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::{Map, Value, json};

use super::error::{ApiError, Cause, Subject};
use super::patch::{self, FieldPath, PatchType};
use super::resources::{Registry, ResourceType};
use super::schema::{Validator, valid_name};
use super::selector::{FieldSelector, LabelSelector};
use super::store::{Key, Store};

/// The object a request addresses.
#[derive(Debug, Clone)]
pub struct Target {
    /// Its kind.
    pub rt: Arc<ResourceType>,
    /// The version in the request path.
    pub version: String,
    /// Namespace, empty for cluster-scoped kinds.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Addressed through the `/status` subresource.
    pub status: bool,
}

impl Target {
    pub(super) fn key(&self) -> Key {
        Key {
            group: self.rt.group.clone(),
            plural: self.rt.plural.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }

    pub(super) fn subject(&self) -> Subject {
        Subject {
            group: self.rt.group.clone(),
            kind: self.rt.plural.clone(),
            name: self.name.clone(),
        }
    }
}

/// How a delete treats dependents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Propagation {
    /// Delete dependents whose owners are all gone (also used for `Foreground`).
    #[default]
    Background,
    /// Remove the owner reference from dependents and keep them.
    Orphan,
}

/// Options of a delete.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// Cascade or orphan.
    pub propagation: Propagation,
    /// `preconditions.resourceVersion`.
    pub resource_version: Option<String>,
    /// `preconditions.uid`.
    pub uid: Option<String>,
}

/// Field sets of the last apply, per field manager and subresource.
type Managed = BTreeMap<(String, bool), BTreeSet<FieldPath>>;

/// The server's state: kinds, objects and apply bookkeeping.
#[derive(Debug)]
pub struct State {
    /// The kinds served.
    pub registry: Registry,
    /// The objects.
    pub store: Store,
    validator: Validator,
    pub(super) managed: HashMap<Key, Managed>,
}

pub(super) fn meta(object: &mut Value) -> Result<&mut Map<String, Value>, ApiError> {
    let map = object
        .as_object_mut()
        .ok_or_else(|| ApiError::bad_request("the object must be a JSON object"))?;
    let meta = map.entry("metadata").or_insert_with(|| json!({}));
    meta.as_object_mut()
        .ok_or_else(|| ApiError::bad_request("metadata must be an object"))
}

pub(super) fn text<'a>(object: &'a Value, pointer: &str) -> Option<&'a str> {
    object.pointer(pointer).and_then(Value::as_str)
}

pub(super) fn now() -> String {
    format!("{:.0}", k8s_openapi::jiff::Timestamp::now())
}

fn uid() -> Result<String, ApiError> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| ApiError::internal(format!("generating a uid: {e}")))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    ))
}

fn suffix() -> Result<String, ApiError> {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut b = [0u8; 5];
    getrandom::fill(&mut b).map_err(|e| ApiError::internal(format!("generating a name: {e}")))?;
    Ok(b.iter()
        .map(|x| char::from(ALPHABET[usize::from(*x) % ALPHABET.len()]))
        .collect())
}

pub(super) fn finalizers(object: &Value) -> usize {
    object
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map_or(0, Vec::len)
}

pub(super) fn owner_uids(object: &Value) -> Vec<String> {
    object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("uid").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

/// Whether the parts of two objects whose change bumps `generation` (all
/// but `metadata`, and `status` where it is a subresource) are equal;
/// compared in place, without copying either object.
fn same_spec(a: &Value, b: &Value, status_split: bool) -> bool {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return a == b;
    };
    let counted = |k: &str| k != "metadata" && !(status_split && k == "status");
    let a_fields = a.keys().filter(|k| counted(k)).count();
    let b_fields = b.keys().filter(|k| counted(k)).count();
    a_fields == b_fields
        && a.iter()
            .filter(|(k, _)| counted(k))
            .all(|(k, v)| b.get(k) == Some(v))
}

/// Moves a Secret's `stringData` into `data`, base64-encoded, as the real server does.
fn fold_string_data(object: &mut Value) {
    let Some(map) = object.as_object_mut() else {
        return;
    };
    let Some(Value::Object(strings)) = map.remove("stringData") else {
        return;
    };
    let data = map.entry("data").or_insert_with(|| json!({}));
    if let Some(data) = data.as_object_mut() {
        for (k, v) in strings {
            let raw = v.as_str().unwrap_or_default();
            let encoded = base64::engine::general_purpose::STANDARD.encode(raw);
            data.insert(k, Value::String(encoded));
        }
    }
}

impl State {
    /// A state serving `registry`'s kinds, with no objects.
    pub fn new(registry: Registry, history: usize) -> Self {
        Self {
            registry,
            store: Store::new(history),
            validator: Validator::default(),
            managed: HashMap::new(),
        }
    }

    /// The object `t` addresses.
    pub fn get(&self, t: &Target) -> Result<Value, ApiError> {
        self.store
            .get(&t.key())
            .cloned()
            .ok_or_else(|| ApiError::not_found(&t.subject()))
    }

    /// The JSON of the object `t` addresses, as stored.
    pub fn get_json(&self, t: &Target) -> Result<Bytes, ApiError> {
        self.store
            .get_stored(&t.key())
            .map(|s| s.json.clone())
            .ok_or_else(|| ApiError::not_found(&t.subject()))
    }

    /// The JSON of a `{Kind}List` of the matching objects, assembled from
    /// the objects' stored JSON.
    pub fn list(
        &self,
        rt: &ResourceType,
        version: &str,
        namespace: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
    ) -> Bytes {
        let items: Vec<&Bytes> = self
            .store
            .list(&rt.group, &rt.plural, namespace)
            .map(|(_, s)| s)
            .filter(|s| labels.matches(&s.value) && fields.matches(&s.value))
            .map(|s| &s.json)
            .collect();
        let head = json!({
            "apiVersion": rt.api_version(version),
            "kind": format!("{}List", rt.kind),
            "metadata": {"resourceVersion": self.store.rv().to_string()},
        });
        // Encoding a `Value` cannot fail: its map keys are strings.
        let head = serde_json::to_vec(&head).unwrap_or_default();
        let size = items.iter().map(|j| j.len() + 1).sum::<usize>();
        let mut out = Vec::with_capacity(head.len() + size + 12);
        // `{…head fields…,"items":[…]}`: the head without its closing brace.
        out.extend_from_slice(head.strip_suffix(b"}").unwrap_or(&head));
        out.extend_from_slice(b",\"items\":[");
        for (i, json) in items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(json);
        }
        out.extend_from_slice(b"]}");
        Bytes::from(out)
    }

    /// Checks kind, apiVersion, name and namespace of a written object, filling in what is missing.
    fn check_identity(t: &Target, object: &mut Value) -> Result<(), ApiError> {
        let api_version = t.rt.api_version(&t.version);
        let map = object
            .as_object_mut()
            .ok_or_else(|| ApiError::bad_request("the object must be a JSON object"))?;
        match map.get("kind").and_then(Value::as_str) {
            None | Some("") => {
                map.insert("kind".into(), json!(t.rt.kind));
            }
            Some(kind) if kind == t.rt.kind => {}
            Some(kind) => {
                return Err(ApiError::bad_request(format!(
                    "the kind of the object ({kind}) does not match the resource ({})",
                    t.rt.kind
                )));
            }
        }
        match map.get("apiVersion").and_then(Value::as_str) {
            None | Some("") => {
                map.insert("apiVersion".into(), json!(api_version));
            }
            Some(v) if t.rt.serves_api_version(v) => {}
            Some(v) => {
                return Err(ApiError::bad_request(format!(
                    "the apiVersion of the object ({v}) is not served for {}",
                    t.rt.plural
                )));
            }
        }
        let meta = meta(object)?;
        match meta.get("namespace").and_then(Value::as_str) {
            Some(ns) if !ns.is_empty() && t.rt.namespaced && ns != t.namespace => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            _ if t.rt.namespaced => {
                meta.insert("namespace".into(), json!(t.namespace));
            }
            _ => {
                meta.remove("namespace");
            }
        }
        match meta.get("name").and_then(Value::as_str) {
            Some(name) if !t.name.is_empty() && name != t.name => {
                Err(ApiError::bad_request(format!(
                    "the name of the object ({name}) does not match the name on the URL ({})",
                    t.name
                )))
            }
            _ => Ok(()),
        }
    }

    /// Validates an object about to be stored (pruning unknown fields of custom resources).
    fn validate(&self, t: &Target, object: &mut Value) -> Result<(), ApiError> {
        let subject = Subject {
            group: t.rt.group.clone(),
            kind: t.rt.kind.clone(),
            name: t.name.clone(),
        };
        let mut causes = Vec::new();
        if !valid_name(&t.name) {
            causes.push(Cause {
                reason: "FieldValueInvalid",
                field: "metadata.name".into(),
                message: format!("metadata.name: Invalid value: {:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character", t.name),
            });
        }
        let api_version = text(object, "/apiVersion").unwrap_or_default().to_owned();
        if let Some(schema) = t.rt.schema_for(&api_version) {
            causes.extend(self.validator.validate_object(schema, object));
        }
        if !causes.is_empty() {
            return Err(ApiError::invalid(&subject, &causes));
        }
        if let Some(check) = t.rt.typed {
            check(object).map_err(|e| {
                ApiError::bad_request(format!(
                    "{} in version {:?} cannot be decoded: {e}",
                    t.rt.kind, t.version
                ))
            })?;
        }
        Ok(())
    }

    /// Registers the kind a stored CRD defines.
    fn register_crd(&mut self, t: &Target, object: &Value) -> Result<(), ApiError> {
        if t.rt.group == "apiextensions.k8s.io" && t.rt.plural == "customresourcedefinitions" {
            let crd: CustomResourceDefinition = serde_json::from_value(object.clone())
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
            self.registry
                .register(&crd)
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
        }
        Ok(())
    }

    /// Creates an object from a POST body (`t.name` is ignored).
    pub fn create(&mut self, t: &Target, mut object: Value) -> Result<Value, ApiError> {
        let mut t = Target {
            name: String::new(),
            ..t.clone()
        };
        Self::check_identity(&t, &mut object)?;
        let meta = meta(&mut object)?;
        if meta
            .get("resourceVersion")
            .and_then(Value::as_str)
            .is_some_and(|rv| !rv.is_empty())
        {
            return Err(ApiError::bad_request(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        let name = match (
            meta.get("name").and_then(Value::as_str),
            meta.get("generateName").and_then(Value::as_str),
        ) {
            (Some(name), _) if !name.is_empty() => name.to_owned(),
            (_, Some(prefix)) if !prefix.is_empty() => format!("{prefix}{}", suffix()?),
            _ => {
                let subject = Subject {
                    group: t.rt.group.clone(),
                    kind: t.rt.kind.clone(),
                    name: String::new(),
                };
                return Err(ApiError::invalid(
                    &subject,
                    &[Cause {
                        reason: "FieldValueRequired",
                        field: "metadata.name".into(),
                        message: "metadata.name: Required value: name or generateName is required"
                            .into(),
                    }],
                ));
            }
        };
        t.name = name.clone();
        meta.insert("name".into(), json!(name));
        meta.insert("uid".into(), json!(uid()?));
        meta.insert("creationTimestamp".into(), json!(now()));
        meta.insert("generation".into(), json!(1));
        for server_only in [
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "managedFields",
            "selfLink",
        ] {
            meta.remove(server_only);
        }
        if t.rt.status
            && let Some(map) = object.as_object_mut()
        {
            map.remove("status");
        }
        if t.rt.kind == "Secret" {
            fold_string_data(&mut object);
        }
        self.validate(&t, &mut object)?;
        let key = t.key();
        if self.store.get(&key).is_some() {
            return Err(ApiError::already_exists(&t.subject()));
        }
        self.register_crd(&t, &object)?;
        Ok(self.store.insert(key, object))
    }

    /// Replaces an object (PUT), on its main resource or its `/status`.
    pub fn replace(&mut self, t: &Target, object: Value) -> Result<Value, ApiError> {
        let old = self.get(t)?;
        self.commit(t, &old, object)
    }

    /// Stores `new` as the next state of `old` (see the module docs).
    fn commit(&mut self, t: &Target, old: &Value, mut new: Value) -> Result<Value, ApiError> {
        Self::check_identity(t, &mut new)?;
        let wanted = text(&new, "/metadata/resourceVersion").unwrap_or_default();
        if !wanted.is_empty() && Some(wanted) != text(old, "/metadata/resourceVersion") {
            return Err(ApiError::conflict(
                &t.subject(),
                "the object has been modified; please apply your changes to the latest version and try again",
            ));
        }
        let mut result = if t.status {
            let mut result = old.clone();
            if let (Some(map), Some(new_map)) = (result.as_object_mut(), new.as_object_mut()) {
                match new_map.remove("status") {
                    Some(status) => map.insert("status".into(), status),
                    None => map.remove("status"),
                };
            }
            result
        } else {
            if t.rt.status
                && let Some(map) = new.as_object_mut()
            {
                match old.get("status") {
                    Some(status) => map.insert("status".into(), status.clone()),
                    None => map.remove("status"),
                };
            }
            let old_meta = old
                .get("metadata")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let meta = meta(&mut new)?;
            for kept in [
                "name",
                "namespace",
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "resourceVersion",
            ] {
                match old_meta.get(kept) {
                    Some(v) => meta.insert(kept.into(), v.clone()),
                    None => meta.remove(kept),
                };
            }
            meta.remove("managedFields");
            new
        };
        if t.rt.kind == "Secret" {
            fold_string_data(&mut result);
        }
        self.validate(t, &mut result)?;
        if !same_spec(&result, old, t.rt.status) {
            let generation = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            meta(&mut result)?.insert("generation".into(), json!(generation.saturating_add(1)));
        }
        if result == *old {
            return Ok(result);
        }
        self.register_crd(t, &result)?;
        if result.pointer("/metadata/deletionTimestamp").is_some() && finalizers(&result) == 0 {
            return Ok(self
                .remove(&t.key(), Propagation::Background)
                .unwrap_or(result));
        }
        Ok(self.store.update(t.key(), result))
    }

    /// Applies a PATCH body of type `kind`; `manager` is the `fieldManager`.
    pub fn patch(
        &mut self,
        t: &Target,
        kind: PatchType,
        body: &[u8],
        manager: Option<&str>,
    ) -> Result<Value, ApiError> {
        if kind == PatchType::Apply {
            return self.apply(t, body, manager);
        }
        let old = self.get(t)?;
        let mut new = old.clone();
        match kind {
            PatchType::Json => patch::json(&mut new, body)?,
            _ => patch::merge(&mut new, &patch::parse_json(body)?)?,
        }
        self.commit(t, &old, new)
    }

    fn apply(&mut self, t: &Target, body: &[u8], manager: Option<&str>) -> Result<Value, ApiError> {
        let manager = manager.filter(|m| !m.is_empty()).ok_or_else(|| {
            ApiError::bad_request(
                "PATCH, application/apply-patch+yaml requests require fieldManager",
            )
        })?;
        let mut applied = patch::parse_yaml(body)?;
        if text(&applied, "/apiVersion").is_none() || text(&applied, "/kind").is_none() {
            return Err(ApiError::bad_request(
                "apiVersion and kind must be set in an applied configuration",
            ));
        }
        Self::check_identity(t, &mut applied)?;
        meta(&mut applied)?.insert("name".into(), json!(t.name));
        let scope: &[&str] = if t.status { &["status"] } else { &[] };
        let fields = patch::fields(&applied, scope);
        let owner = (manager.to_owned(), t.status);
        let key = t.key();
        let result = match self.store.get(&key).cloned() {
            None if t.status => return Err(ApiError::not_found(&t.subject())),
            None => self.create(t, applied)?,
            Some(old) => {
                let mut new = old.clone();
                let managed = self.managed.get(&key);
                let previous = managed.and_then(|m| m.get(&owner));
                for field in previous
                    .into_iter()
                    .flatten()
                    .filter(|f| !fields.contains(*f))
                {
                    let shared = managed.is_some_and(|m| {
                        m.iter().any(|(o, set)| *o != owner && set.contains(field))
                    });
                    if !shared {
                        patch::remove_field(&mut new, field);
                    }
                }
                if t.status {
                    let status = applied.get("status").cloned().unwrap_or(Value::Null);
                    patch::apply_merge(&mut new, &json!({"status": status}));
                } else {
                    patch::apply_merge(&mut new, &applied);
                }
                self.commit(t, &old, new)?
            }
        };
        if self.store.get(&key).is_some() {
            self.managed.entry(key).or_default().insert(owner, fields);
        }
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_spec_ignores_metadata_and_a_split_status_only() {
        let a = json!({"metadata": {"a": 1}, "spec": {"x": 1}, "status": {"s": 1}});
        let b = json!({"metadata": {"a": 2}, "spec": {"x": 1}, "status": {"s": 2}});
        assert!(same_spec(&a, &b, true));
        assert!(!same_spec(&a, &b, false));
        let c = json!({"metadata": {}, "spec": {"x": 2}, "status": {"s": 1}});
        assert!(!same_spec(&a, &c, true));
        let extra = json!({"metadata": {}, "spec": {"x": 1}, "data": {}});
        assert!(!same_spec(&a, &extra, true) && !same_spec(&extra, &a, true));
    }
}
