//! Applying a set of objects so that every pass makes progress: what a
//! lifecycle step (the foundation services, the Istio objects, the objects of
//! key generation) writes is compared with what the API server already holds
//! ([`Live`], one LIST per kind under the step's label selector); objects
//! that already hold every rendered field ([`holds`]) are skipped, every
//! other one is applied, and a failed write does not stop the pass: the
//! failures are collected ([`Failures`]) and reported together. Under
//! injected faults a step of ~25 writes therefore needs about as many passes
//! as its unluckiest object, instead of one pass in which all 25 succeed.

use std::collections::HashMap;
use std::fmt::Write as _;

use kube::api::{ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::Value;
use spalding_core::ports::ClusterError;
use tracing::debug;

use super::FIELD_MANAGER;

/// One object a step wants: its resource, name and full body (with metadata).
#[derive(Debug, Clone)]
pub(crate) struct Desired {
    pub(crate) resource: ApiResource,
    pub(crate) name: String,
    pub(crate) body: Value,
}

/// Whether `live` already holds every field `want` sets: objects are
/// compared key by key (fields the server added, such as defaults,
/// `status` or `metadata.uid`, are ignored), arrays element by element with
/// equal lengths, scalars by equality; a `null` asks for an absent field.
pub(crate) fn holds(want: &Value, live: &Value) -> bool {
    match (want, live) {
        (Value::Object(want), Value::Object(live)) => want.iter().all(|(key, value)| {
            live.get(key)
                .map_or(value.is_null(), |found| holds(value, found))
        }),
        (Value::Array(want), Value::Array(live)) => {
            want.len() == live.len() && want.iter().zip(live).all(|(w, l)| holds(w, l))
        }
        _ => want == live,
    }
}

fn key(resource: &ApiResource) -> (String, String) {
    (resource.api_version.clone(), resource.kind.clone())
}

/// The objects the API server holds under one label selector, per kind;
/// `None` for a kind whose LIST failed (its objects are applied blindly).
#[derive(Debug, Default)]
pub(crate) struct Live {
    kinds: HashMap<(String, String), Option<Vec<Value>>>,
}

impl Live {
    /// LISTs every kind of `resources` once under `selector` in `namespace`.
    /// A failed LIST is not an error: the pass applies that kind's objects.
    pub(crate) async fn list(
        client: &Client,
        namespace: &str,
        selector: &str,
        resources: &[ApiResource],
    ) -> Self {
        let mut live = Self::default();
        let params = ListParams::default().labels(selector);
        for resource in resources {
            if live.kinds.contains_key(&key(resource)) {
                continue;
            }
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, resource);
            let objects = match api.list(&params).await {
                Ok(list) => Some(
                    list.items
                        .into_iter()
                        .filter_map(|o| serde_json::to_value(o).ok())
                        .collect(),
                ),
                Err(kube::Error::Api(status)) if status.code == 404 => Some(Vec::new()),
                Err(error) => {
                    debug!(kind = %resource.kind, %namespace, %error, "listing failed; applying every object of this kind");
                    None
                }
            };
            live.kinds.insert(key(resource), objects);
        }
        live
    }

    /// The live object `name` of `resource`, if listed.
    fn get(&self, resource: &ApiResource, name: &str) -> Option<&Value> {
        self.kinds
            .get(&key(resource))?
            .as_ref()?
            .iter()
            .find(|o| o["metadata"]["name"].as_str() == Some(name))
    }

    /// Names of the listed objects of `resource`; `None` if its LIST failed.
    pub(crate) fn names(&self, resource: &ApiResource) -> Option<Vec<String>> {
        let objects = self.kinds.get(&key(resource))?.as_ref()?;
        Some(
            objects
                .iter()
                .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_owned))
                .collect(),
        )
    }

    /// Whether `desired` is already applied as rendered.
    pub(crate) fn holds(&self, desired: &Desired) -> bool {
        self.get(&desired.resource, &desired.name)
            .is_some_and(|live| holds(&desired.body, live))
    }
}

/// The failed writes of one pass.
#[derive(Debug, Default)]
pub(crate) struct Failures {
    failed: Vec<ClusterError>,
    attempted: usize,
}

impl Failures {
    /// Counts a write and keeps its failure, if any.
    pub(crate) fn record(&mut self, result: Result<(), ClusterError>) {
        self.attempted += 1;
        if let Err(error) = result {
            self.failed.push(error);
        }
    }

    /// One error naming every failed write, or `Ok` when none failed.
    /// Transient when every failure is.
    pub(crate) fn into_result(self, operation: String) -> Result<(), ClusterError> {
        if self.failed.is_empty() {
            return Ok(());
        }
        let mut message = format!(
            "{} of {} writes failed (the others are kept and skipped next time):",
            self.failed.len(),
            self.attempted
        );
        for failure in &self.failed {
            let _ = write!(message, " {}: {};", failure.operation, failure.message);
        }
        message.pop();
        Err(ClusterError {
            operation,
            transient: self.failed.iter().all(|f| f.transient),
            message,
        })
    }
}

/// Whether an API error is worth retrying soon (as the cluster adapter's).
fn transient(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => matches!(status.code, 409 | 429 | 500..),
        _ => true,
    }
}

/// A failed write, as reported in [`Failures`].
pub(crate) fn failure(operation: String, error: &kube::Error) -> ClusterError {
    ClusterError {
        operation,
        message: error.to_string(),
        transient: transient(error),
    }
}

/// APPLYs (forced, [`FIELD_MANAGER`]) each of `desired` that `live` does not
/// already hold, recording every outcome in `failures`. Only for bodies
/// without secrets: an API error's text is kept in the report.
pub(crate) async fn apply_missing(
    client: &Client,
    namespace: &str,
    live: &Live,
    desired: &[Desired],
    failures: &mut Failures,
) {
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for object in desired {
        if live.holds(object) {
            continue;
        }
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), namespace, &object.resource);
        let result = api
            .patch(&object.name, &params, &Patch::Apply(&object.body))
            .await
            .map(drop)
            .map_err(|e| {
                failure(
                    format!("apply {} {namespace}/{}", object.resource.kind, object.name),
                    &e,
                )
            });
        failures.record(result);
    }
}

/// DELETEs `name` of `resource`, recording the outcome; absent is fine.
pub(crate) async fn delete(
    client: &Client,
    namespace: &str,
    resource: &ApiResource,
    name: &str,
    failures: &mut Failures,
) {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, resource);
    let result = match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(e) => Err(failure(
            format!("delete {} {namespace}/{name}", resource.kind),
            &e,
        )),
    };
    failures.record(result);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    #[test]
    fn server_additions_are_ignored_and_changes_are_not() {
        let want = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "a", "labels": {"x": "1"}},
            "spec": {"ports": [{"port": 80}]},
        });
        let live = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "a", "labels": {"x": "1", "y": "2"}, "uid": "u", "resourceVersion": "7"},
            "spec": {"ports": [{"port": 80, "protocol": "TCP"}], "clusterIP": "10.0.0.1"},
            "status": {},
        });
        assert!(holds(&want, &live));
        let mut changed = live.clone();
        changed["spec"]["ports"][0]["port"] = json!(81);
        assert!(!holds(&want, &changed));
        let mut extra = live.clone();
        extra["spec"]["ports"]
            .as_array_mut()
            .unwrap()
            .push(json!({"port": 81}));
        assert!(!holds(&want, &extra), "an extra list element differs");
        let mut missing = live;
        missing["metadata"]["labels"]
            .as_object_mut()
            .unwrap()
            .remove("x");
        assert!(!holds(&want, &missing));
        assert!(holds(&json!({"a": null}), &json!({})));
        assert!(!holds(&json!({"a": null}), &json!({"a": 1})));
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            any::<bool>().prop_map(Value::from),
            any::<i32>().prop_map(Value::from),
            "[a-c]{0,2}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map("[a-d]", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// `extra` merged into every object of `base` without overwriting.
    fn with_additions(base: &Value, extra: &Value) -> Value {
        match (base, extra) {
            (Value::Object(b), Value::Object(e)) => {
                let mut out = b.clone();
                for (k, v) in b {
                    out.insert(k.clone(), with_additions(v, extra));
                }
                for (k, v) in e {
                    out.entry(k.clone()).or_insert_with(|| v.clone());
                }
                Value::Object(out)
            }
            (Value::Array(b), _) => {
                Value::Array(b.iter().map(|v| with_additions(v, extra)).collect())
            }
            _ => base.clone(),
        }
    }

    proptest! {
        #[test]
        fn an_object_holds_itself_and_whatever_the_server_adds(want in value(), extra in value()) {
            prop_assert!(holds(&want, &want));
            prop_assert!(holds(&want, &with_additions(&want, &extra)));
        }

        #[test]
        fn holding_both_ways_is_equality(a in value(), b in value()) {
            prop_assert_eq!(holds(&a, &b) && holds(&b, &a), a == b);
        }
    }
}
