//! The kinds the server serves ([`Registry`]): the built-in kinds Spalding
//! touches, and every `CustomResourceDefinition` registered at construction
//! or created through the API; and the discovery documents (`/api`, `/apis`,
//! `/api/v1`, `/apis/{group}`, `/apis/{group}/{version}`) built from them.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    ConfigMap, Event, Namespace, PersistentVolumeClaim, Pod, Secret, Service,
};
use k8s_openapi::api::events::v1::Event as EventsEvent;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::{Value, json};

/// A typed check of a built-in object: it must deserialize as its
/// k8s-openapi type (the server's decoding step).
pub type TypedCheck = fn(&Value) -> Result<(), String>;

fn typed<T: serde::de::DeserializeOwned>(value: &Value) -> Result<(), String> {
    T::deserialize(value).map(|_| ()).map_err(|e| e.to_string())
}

/// One kind the server serves.
#[derive(Debug, Clone)]
pub struct ResourceType {
    /// API group; empty for the core group.
    pub group: String,
    /// Served versions, the storage (preferred) version first.
    pub versions: Vec<String>,
    /// Kind, e.g. `VirtualCloud`.
    pub kind: String,
    /// Resource name in paths, e.g. `virtualclouds`.
    pub plural: String,
    /// Lowercase singular name.
    pub singular: String,
    /// `kubectl` short names.
    pub short_names: Vec<String>,
    /// Categories (`kubectl get carbynestack`).
    pub categories: Vec<String>,
    /// Namespaced (or cluster-scoped).
    pub namespaced: bool,
    /// Has the `/status` subresource.
    pub status: bool,
    /// `openAPIV3Schema` per version, for custom resources.
    pub schemas: BTreeMap<String, Value>,
    /// Decoding check for built-in kinds.
    pub typed: Option<TypedCheck>,
}

impl ResourceType {
    #[allow(clippy::too_many_arguments)]
    fn builtin(
        group: &str,
        kind: &str,
        plural: &str,
        short: &[&str],
        namespaced: bool,
        status: bool,
        typed: TypedCheck,
    ) -> Self {
        Self {
            group: group.into(),
            versions: vec!["v1".into()],
            kind: kind.into(),
            plural: plural.into(),
            singular: kind.to_lowercase(),
            short_names: short.iter().map(|s| (*s).to_owned()).collect(),
            categories: Vec::new(),
            namespaced,
            status,
            schemas: BTreeMap::new(),
            typed: Some(typed),
        }
    }

    /// `apiVersion` for `version`: `group/version`, or `version` for the core group.
    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_owned()
        } else {
            format!("{}/{version}", self.group)
        }
    }

    /// Whether `api_version` names one of this kind's served versions.
    pub fn serves_api_version(&self, api_version: &str) -> bool {
        self.versions
            .iter()
            .any(|v| self.api_version(v) == api_version)
    }

    /// The schema an object of `api_version` is validated against, if any.
    pub fn schema_for(&self, api_version: &str) -> Option<&Value> {
        let version = api_version.rsplit('/').next().unwrap_or(api_version);
        self.schemas.get(version)
    }

    fn discovery_entries(&self) -> Vec<Value> {
        let mut entries = vec![json!({
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
            "shortNames": self.short_names,
            "categories": self.categories,
        })];
        if self.status {
            entries.push(json!({
                "name": format!("{}/status", self.plural),
                "singularName": "",
                "namespaced": self.namespaced,
                "kind": self.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
        entries
    }
}

/// Why a CRD could not be registered.
#[derive(Debug, thiserror::Error)]
#[error("custom resource definition {name}: {why}")]
pub struct CrdError {
    /// The CRD's name.
    pub name: String,
    /// What is wrong with it.
    pub why: String,
}

/// Every kind the server serves.
#[derive(Debug, Clone)]
pub struct Registry {
    types: Vec<Arc<ResourceType>>,
}

impl Registry {
    /// The built-in kinds only.
    pub fn builtin() -> Self {
        let b = ResourceType::builtin;
        let types = vec![
            b(
                "",
                "ConfigMap",
                "configmaps",
                &["cm"],
                true,
                false,
                typed::<ConfigMap>,
            ),
            b("", "Secret", "secrets", &[], true, false, typed::<Secret>),
            b(
                "",
                "PersistentVolumeClaim",
                "persistentvolumeclaims",
                &["pvc"],
                true,
                true,
                typed::<PersistentVolumeClaim>,
            ),
            b(
                "",
                "Service",
                "services",
                &["svc"],
                true,
                true,
                typed::<Service>,
            ),
            b("", "Pod", "pods", &["po"], true, true, typed::<Pod>),
            b("", "Event", "events", &["ev"], true, false, typed::<Event>),
            b(
                "",
                "Namespace",
                "namespaces",
                &["ns"],
                false,
                true,
                typed::<Namespace>,
            ),
            b("batch", "Job", "jobs", &[], true, true, typed::<Job>),
            b(
                "events.k8s.io",
                "Event",
                "events",
                &["ev"],
                true,
                false,
                typed::<EventsEvent>,
            ),
            b(
                "coordination.k8s.io",
                "Lease",
                "leases",
                &[],
                true,
                false,
                typed::<Lease>,
            ),
            b(
                "apiextensions.k8s.io",
                "CustomResourceDefinition",
                "customresourcedefinitions",
                &["crd", "crds"],
                false,
                true,
                typed::<CustomResourceDefinition>,
            ),
        ];
        Self {
            types: types.into_iter().map(Arc::new).collect(),
        }
    }

    /// Registers (or replaces) the kind a CRD defines.
    pub fn register(&mut self, crd: &CustomResourceDefinition) -> Result<(), CrdError> {
        let name = crd.metadata.name.clone().unwrap_or_default();
        let error = |why: &str| CrdError {
            name: name.clone(),
            why: why.to_owned(),
        };
        let spec = &crd.spec;
        let mut versions: Vec<&_> = spec.versions.iter().filter(|v| v.served).collect();
        versions.sort_by_key(|v| !v.storage);
        if versions.is_empty() {
            return Err(error("no served version"));
        }
        if spec.group.is_empty() || spec.names.plural.is_empty() || spec.names.kind.is_empty() {
            return Err(error("group, plural and kind are required"));
        }
        let mut schemas = BTreeMap::new();
        for version in &versions {
            if let Some(schema) = version
                .schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref())
            {
                let schema = serde_json::to_value(schema).map_err(|e| error(&e.to_string()))?;
                schemas.insert(version.name.clone(), schema);
            }
        }
        let rt = ResourceType {
            group: spec.group.clone(),
            versions: versions.iter().map(|v| v.name.clone()).collect(),
            kind: spec.names.kind.clone(),
            plural: spec.names.plural.clone(),
            singular: spec
                .names
                .singular
                .clone()
                .unwrap_or_else(|| spec.names.kind.to_lowercase()),
            short_names: spec.names.short_names.clone().unwrap_or_default(),
            categories: spec.names.categories.clone().unwrap_or_default(),
            namespaced: spec.scope == "Namespaced",
            status: versions
                .iter()
                .any(|v| v.subresources.as_ref().is_some_and(|s| s.status.is_some())),
            schemas,
            typed: None,
        };
        self.types
            .retain(|t| !(t.group == rt.group && t.plural == rt.plural));
        self.types.push(Arc::new(rt));
        Ok(())
    }

    /// The kind served at `group`/`version`/`plural`.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.types
            .iter()
            .find(|t| {
                t.group == group && t.plural == plural && t.versions.iter().any(|v| v == version)
            })
            .cloned()
    }

    /// Every kind.
    pub fn all(&self) -> &[Arc<ResourceType>] {
        &self.types
    }

    /// `/api`.
    pub fn core_versions(&self, server: &str) -> Value {
        json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server}],
        })
    }

    fn groups(&self) -> BTreeMap<&str, Vec<&str>> {
        let mut groups: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for t in self.types.iter().filter(|t| !t.group.is_empty()) {
            let versions = groups.entry(&t.group).or_default();
            for v in &t.versions {
                if !versions.contains(&v.as_str()) {
                    versions.push(v);
                }
            }
        }
        groups
    }

    fn group_json(name: &str, versions: &[&str]) -> Value {
        let versions: Vec<Value> = versions
            .iter()
            .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
            .collect();
        json!({
            "name": name,
            "versions": versions,
            "preferredVersion": versions.first().cloned().unwrap_or(Value::Null),
        })
    }

    /// `/apis`.
    pub fn group_list(&self) -> Value {
        let groups: Vec<Value> = self
            .groups()
            .iter()
            .map(|(name, versions)| Self::group_json(name, versions))
            .collect();
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
    }

    /// `/apis/{group}`, if served.
    pub fn group(&self, group: &str) -> Option<Value> {
        let groups = self.groups();
        let versions = groups.get(group)?;
        let mut value = Self::group_json(group, versions);
        if let Some(map) = value.as_object_mut() {
            map.insert("kind".into(), json!("APIGroup"));
            map.insert("apiVersion".into(), json!("v1"));
        }
        Some(value)
    }

    /// `/api/v1` or `/apis/{group}/{version}`, if served.
    pub fn resource_list(&self, group: &str, version: &str) -> Option<Value> {
        let resources: Vec<Value> = self
            .types
            .iter()
            .filter(|t| t.group == group && t.versions.iter().any(|v| v == version))
            .flat_map(|t| t.discovery_entries())
            .collect();
        if resources.is_empty() {
            return None;
        }
        let group_version = if group.is_empty() {
            version.to_owned()
        } else {
            format!("{group}/{version}")
        };
        Some(json!({
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": group_version,
            "resources": resources,
        }))
    }
}
