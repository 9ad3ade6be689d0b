//! The PATCH body formats: JSON merge patch (RFC 7386,
//! `application/merge-patch+json`; `application/strategic-merge-patch+json`
//! is treated the same, so lists are replaced rather than merged by their
//! patch-merge key), JSON patch (RFC 6902, `application/json-patch+json`,
//! every operation including `test`), and server-side apply
//! (`application/apply-patch+yaml`).
//!
//! Server-side apply here: the applied configuration is merged into the
//! live object (maps merged key by key, recursively; lists and scalars
//! replaced whole, i.e. every list is treated as `atomic`); the server
//! remembers, per object, field manager and subresource, the set of fields
//! each apply set, and a field a manager applied before and no longer
//! applies is removed unless another manager's last apply also set it.
//! Left out: `metadata.managedFields` is not written; fields written by
//! plain updates and patches are not owned by anyone, so apply never
//! reports a conflict and `force` makes no difference; list merge
//! strategies (`x-kubernetes-list-type: map`/`set`, `patchMergeKey`) are not
//! honoured.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::error::ApiError;

/// The PATCH body formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// RFC 7386 (and strategic merge patch, treated as RFC 7386).
    Merge,
    /// RFC 6902.
    Json,
    /// Server-side apply.
    Apply,
}

impl PatchType {
    /// The format a `Content-Type` names.
    pub fn from_content_type(content_type: &str) -> Result<Self, ApiError> {
        let media = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match media.as_str() {
            "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
                Ok(Self::Merge)
            }
            "application/json-patch+json" => Ok(Self::Json),
            "application/apply-patch+yaml" => Ok(Self::Apply),
            _ => Err(ApiError::unsupported_media_type(content_type)),
        }
    }
}

/// Parses a JSON body.
pub fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))
}

/// Parses an apply body (YAML, of which JSON is a subset). Clients such
/// as kube send JSON: that is read by the JSON parser, many times faster
/// than the YAML one, which reads everything else.
pub fn parse_yaml(body: &[u8]) -> Result<Value, ApiError> {
    let value: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(_) => serde_norway::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!("the request body is not valid YAML: {e}"))
        })?,
    };
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "the applied configuration must be an object",
        ));
    }
    Ok(value)
}

/// Applies an RFC 7386 merge patch to `target`.
pub fn merge(target: &mut Value, patch: &Value) -> Result<(), ApiError> {
    if !patch.is_object() {
        return Err(ApiError::bad_request("a merge patch must be a JSON object"));
    }
    json_patch::merge(target, patch);
    Ok(())
}

/// Applies an RFC 6902 JSON patch to `target`. As in the real server, a
/// `test` for `null` passes on a missing path (kube's finalizer helper
/// relies on it). On error `target` may be partly patched: patch a copy.
pub fn json(target: &mut Value, body: &[u8]) -> Result<(), ApiError> {
    let operations: Vec<Value> = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the JSON patch is not valid: {e}")))?;
    for operation in operations {
        let missing_null_test = operation.get("op").and_then(Value::as_str) == Some("test")
            && operation.get("value").is_none_or(Value::is_null)
            && operation
                .get("path")
                .and_then(Value::as_str)
                .is_some_and(|p| target.pointer(p).is_none());
        if missing_null_test {
            continue;
        }
        let operation: json_patch::PatchOperation = serde_json::from_value(operation)
            .map_err(|e| ApiError::bad_request(format!("the JSON patch is not valid: {e}")))?;
        json_patch::patch(target, &[operation])
            .map_err(|e| ApiError::patch_failed(format!("the JSON patch does not apply: {e}")))?;
    }
    Ok(())
}

/// A field: the keys from the object's root to a leaf.
pub type FieldPath = Vec<String>;

/// The leaves `config` sets, within `scope` (top-level keys; empty = any but
/// `apiVersion`, `kind`, `metadata` except labels and annotations).
pub fn fields(config: &Value, scope: &[&str]) -> BTreeSet<FieldPath> {
    let mut out = BTreeSet::new();
    if let Some(map) = config.as_object() {
        for (key, value) in map {
            let tracked = if scope.is_empty() {
                !matches!(key.as_str(), "apiVersion" | "kind" | "metadata")
            } else {
                scope.contains(&key.as_str())
            };
            if tracked {
                collect(value, vec![key.clone()], &mut out);
            }
        }
        if scope.is_empty()
            && let Some(meta) = map.get("metadata").and_then(Value::as_object)
        {
            for key in ["labels", "annotations"] {
                if let Some(value) = meta.get(key) {
                    collect(value, vec!["metadata".into(), key.into()], &mut out);
                }
            }
        }
    }
    out
}

fn collect(value: &Value, path: FieldPath, out: &mut BTreeSet<FieldPath>) {
    match value.as_object() {
        Some(map) if !map.is_empty() => {
            for (key, child) in map {
                let mut p = path.clone();
                p.push(key.clone());
                collect(child, p, out);
            }
        }
        _ => {
            out.insert(path);
        }
    }
}

/// Merges an applied configuration into `target`: maps key by key, the rest
/// replaced; `null` removes a field.
pub fn apply_merge(target: &mut Value, applied: &Value) {
    match (target.as_object_mut(), applied.as_object()) {
        (Some(t), Some(a)) => merge_maps(t, a),
        _ => *target = applied.clone(),
    }
}

fn merge_maps(target: &mut Map<String, Value>, applied: &Map<String, Value>) {
    for (key, value) in applied {
        if value.is_null() {
            target.remove(key);
            continue;
        }
        match target.get_mut(key) {
            Some(existing) if existing.is_object() && value.is_object() => {
                apply_merge(existing, value)
            }
            _ => {
                target.insert(key.clone(), value.clone());
            }
        }
    }
}

/// Removes the field at `path` from `target`, and maps it leaves empty.
pub fn remove_field(target: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut chain: Vec<&String> = Vec::new();
    let mut node = &mut *target;
    for key in parents {
        match node.get_mut(key.as_str()) {
            Some(child) => node = child,
            None => return,
        }
        chain.push(key);
    }
    if let Some(map) = node.as_object_mut() {
        map.remove(last.as_str());
    }
    // Drop maps the removal emptied, innermost first.
    for depth in (1..=parents.len()).rev() {
        let prefix = &parents[..depth];
        let pointer: String = prefix
            .iter()
            .map(|k| format!("/{}", k.replace('~', "~0").replace('/', "~1")))
            .collect();
        let empty = target
            .pointer(&pointer)
            .and_then(Value::as_object)
            .is_some_and(Map::is_empty);
        if !empty || depth == 1 && prefix[0] == "metadata" {
            break;
        }
        if let Some((leaf, up)) = prefix.split_last() {
            let up_pointer: String = up
                .iter()
                .map(|k| format!("/{}", k.replace('~', "~0").replace('/', "~1")))
                .collect();
            if let Some(parent) = target
                .pointer_mut(&up_pointer)
                .and_then(Value::as_object_mut)
            {
                parent.remove(leaf.as_str());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn apply_merges_maps_and_replaces_lists() {
        let mut live = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"x": 1, "l": [1, 2], "m": {"k": 1}}});
        apply_merge(
            &mut live,
            &json!({"metadata": {"labels": {"b": "2"}}, "spec": {"l": [3], "m": {"j": 2}}}),
        );
        assert_eq!(
            live,
            json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"x": 1, "l": [3], "m": {"k": 1, "j": 2}}})
        );
    }

    #[test]
    fn fields_and_removal() {
        let config = json!({"apiVersion": "v1", "metadata": {"name": "n", "labels": {"a": "1"}}, "spec": {"x": {"y": 1}, "l": [1]}});
        let f = fields(&config, &[]);
        let expected: BTreeSet<FieldPath> = [
            vec!["metadata", "labels", "a"],
            vec!["spec", "l"],
            vec!["spec", "x", "y"],
        ]
        .into_iter()
        .map(|p| p.into_iter().map(String::from).collect())
        .collect();
        assert_eq!(f, expected);
        let mut live = config.clone();
        remove_field(&mut live, &["spec".into(), "x".into(), "y".into()]);
        assert_eq!(live["spec"], json!({"l": [1]}));
        remove_field(&mut live, &["metadata".into(), "labels".into(), "a".into()]);
        assert_eq!(live["metadata"], json!({"name": "n"}));
    }

    #[test]
    fn json_patch_test_operation() {
        let mut doc = json!({"metadata": {"finalizers": ["a"]}});
        let ok = br#"[{"op": "test", "path": "/metadata/finalizers/0", "value": "a"}, {"op": "remove", "path": "/metadata/finalizers/0"}]"#;
        json(&mut doc, ok).unwrap();
        assert_eq!(doc, json!({"metadata": {"finalizers": []}}));
        let failing = br#"[{"op": "test", "path": "/metadata/finalizers/0", "value": "a"}]"#;
        assert_eq!(json(&mut doc, failing).unwrap_err().code, 422);
        assert_eq!(json(&mut doc, b"{").unwrap_err().code, 400);
        let absent = br#"[{"op": "test", "path": "/metadata/absent", "value": null}]"#;
        json(&mut doc, absent).unwrap();
    }
}
