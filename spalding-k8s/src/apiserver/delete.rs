//! Deletes: finalizers first mark an object with `deletionTimestamp`
//! (it goes when the last finalizer is removed, see [`super::ops`]);
//! preconditions on `uid` and `resourceVersion` give 409; once an object is
//! gone its dependents (by `ownerReferences`) are collected at once, unless
//! another owner still exists (then only the reference goes) or the delete
//! orphans them (`propagationPolicy: Orphan`: the references go).

use serde_json::{Value, json};

use super::error::ApiError;
use super::ops::{
    DeleteOptions, Propagation, State, Target, finalizers, meta, now, owner_uids, text,
};
use super::selector::{FieldSelector, LabelSelector};
use super::store::Key;

impl State {
    /// Deletes an object: marks it with `deletionTimestamp` while finalizers
    /// remain, otherwise removes it and collects its dependents.
    pub fn delete(&mut self, t: &Target, options: &DeleteOptions) -> Result<Value, ApiError> {
        let mut object = self.get(t)?;
        let conflict = |why: &str| ApiError::conflict(&t.subject(), why);
        if let Some(rv) = &options.resource_version
            && Some(rv.as_str()) != text(&object, "/metadata/resourceVersion")
        {
            return Err(conflict(
                "the ResourceVersion in the precondition does not match the ResourceVersion in record. The object might have been modified",
            ));
        }
        if let Some(uid) = &options.uid
            && Some(uid.as_str()) != text(&object, "/metadata/uid")
        {
            return Err(conflict(
                "the UID in the precondition does not match the UID in record. The object might have been deleted and then recreated",
            ));
        }
        if finalizers(&object) == 0 {
            return self
                .remove(&t.key(), options.propagation)
                .ok_or_else(|| ApiError::not_found(&t.subject()));
        }
        if object.pointer("/metadata/deletionTimestamp").is_some() {
            return Ok(object);
        }
        let meta = meta(&mut object)?;
        meta.insert("deletionTimestamp".into(), json!(now()));
        meta.insert("deletionGracePeriodSeconds".into(), json!(0));
        Ok(self.store.update(t.key(), object))
    }

    /// Deletes every matching object; returns the list of them as deleted.
    pub fn delete_collection(
        &mut self,
        t: &Target,
        labels: &LabelSelector,
        fields: &FieldSelector,
        options: &DeleteOptions,
    ) -> Result<Value, ApiError> {
        let namespace = t.rt.namespaced.then_some(t.namespace.as_str());
        let names: Vec<String> = self
            .store
            .list(&t.rt.group, &t.rt.plural, namespace)
            .filter(|(_, o)| labels.matches(&o.value) && fields.matches(&o.value))
            .map(|(k, _)| k.name.clone())
            .collect();
        let mut items = Vec::new();
        for name in names {
            let target = Target { name, ..t.clone() };
            let options = DeleteOptions {
                resource_version: None,
                uid: None,
                ..options.clone()
            };
            items.push(self.delete(&target, &options)?);
        }
        Ok(json!({
            "apiVersion": t.rt.api_version(&t.version),
            "kind": format!("{}List", t.rt.kind),
            "metadata": {"resourceVersion": self.store.rv().to_string()},
            "items": items,
        }))
    }

    /// Removes an object and, unless orphaning, its dependents whose owners
    /// are all gone (dependents with finalizers are only marked deleted).
    pub(super) fn remove(&mut self, key: &Key, propagation: Propagation) -> Option<Value> {
        let removed = self.store.remove(key)?;
        self.managed.remove(key);
        let mut gone: Vec<String> = text(&removed, "/metadata/uid")
            .map(str::to_owned)
            .into_iter()
            .collect();
        while let Some(uid) = gone.pop() {
            let dependents: Vec<(Key, Value)> = self
                .store
                .all()
                .filter(|(_, o)| owner_uids(o).contains(&uid))
                .map(|(k, o)| (k.clone(), o.clone()))
                .collect();
            for (key, mut object) in dependents {
                let live_owner = owner_uids(&object).iter().any(|owner| {
                    *owner != uid
                        && self
                            .store
                            .all()
                            .any(|(_, o)| text(o, "/metadata/uid") == Some(owner))
                });
                if propagation == Propagation::Orphan || live_owner {
                    if let Some(refs) = object
                        .pointer_mut("/metadata/ownerReferences")
                        .and_then(Value::as_array_mut)
                    {
                        refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(uid.as_str()));
                    }
                    self.store.update(key, object);
                } else if finalizers(&object) > 0 {
                    if object.pointer("/metadata/deletionTimestamp").is_none()
                        && let Some(meta) = object
                            .pointer_mut("/metadata")
                            .and_then(Value::as_object_mut)
                    {
                        meta.insert("deletionTimestamp".into(), json!(now()));
                        meta.insert("deletionGracePeriodSeconds".into(), json!(0));
                        self.store.update(key, object);
                    }
                } else if let Some(dependent) = self.store.remove(&key) {
                    self.managed.remove(&key);
                    gone.extend(text(&dependent, "/metadata/uid").map(str::to_owned));
                }
            }
        }
        Some(removed)
    }
}
