//! Validation of custom resources against their CRD's `openAPIV3Schema`,
//! as the real API server does for structural schemas: unknown fields are
//! **pruned** (dropped silently) unless `x-kubernetes-preserve-unknown-fields`
//! or `additionalProperties` keeps them; then `type` (with `nullable` and
//! `x-kubernetes-int-or-string`), `required`, `enum`, `pattern`,
//! `minLength`/`maxLength` (in characters), `minItems`/`maxItems`,
//! `minProperties`/`maxProperties`, `minimum`/`maximum` (and their
//! `exclusive` forms), `multipleOf`, `uniqueItems`, `allOf`/`anyOf`/`oneOf`/
//! `not` are checked, with messages worded like the real server's.
//!
//! Left out: CEL rules (`x-kubernetes-validations`) are not evaluated;
//! `format` is not checked; defaults (`default`) are not applied;
//! `x-kubernetes-list-type`/`-map-keys` uniqueness is not enforced;
//! `metadata` is checked only for a valid name.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use regex::Regex;
use serde_json::{Map, Value};

use super::error::Cause;

/// A validator with a cache of compiled `pattern`s.
#[derive(Debug, Default)]
pub struct Validator {
    patterns: Mutex<HashMap<String, Option<Arc<Regex>>>>,
}

fn show(value: &Value) -> String {
    let text = value.to_string();
    if text.len() > 128 {
        let mut end = 128;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &text[..end])
    } else {
        text
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn invalid(out: &mut Vec<Cause>, path: &str, value: &Value, why: String) {
    out.push(Cause {
        reason: "FieldValueInvalid",
        field: path.to_owned(),
        message: format!("{path}: Invalid value: {}: {why}", show(value)),
    });
}

fn flag(schema: &Value, name: &str) -> bool {
    schema.get(name).and_then(Value::as_bool).unwrap_or(false)
}

fn number(schema: &Value, name: &str) -> Option<f64> {
    schema.get(name).and_then(Value::as_f64)
}

fn count(schema: &Value, name: &str) -> Option<usize> {
    schema
        .get(name)
        .and_then(Value::as_u64)
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
}

/// Whether `name` is a valid DNS-1123 subdomain (the rule for most object names).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

impl Validator {
    fn regex(&self, pattern: &str) -> Option<Arc<Regex>> {
        let mut cache = self.patterns.lock().unwrap_or_else(PoisonError::into_inner);
        cache
            .entry(pattern.to_owned())
            .or_insert_with(|| Regex::new(pattern).ok().map(Arc::new))
            .clone()
    }

    /// Validates (and prunes) a whole custom resource: `apiVersion`, `kind`
    /// and `metadata` are kept as they are; the rest follows `schema`.
    pub fn validate_object(&self, schema: &Value, object: &mut Value) -> Vec<Cause> {
        let mut out = Vec::new();
        let Some(map) = object.as_object_mut() else {
            invalid(&mut out, "<root>", &Value::Null, "must be an object".into());
            return out;
        };
        let properties = schema.get("properties").and_then(Value::as_object);
        let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields");
        let keys: Vec<String> = map.keys().cloned().collect();
        for key in keys {
            if matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            match properties.and_then(|p| p.get(&key)) {
                Some(child) => {
                    if let Some(value) = map.get_mut(&key) {
                        self.check(child, value, &key, &mut out);
                    }
                }
                None if preserve => {}
                None => {
                    map.remove(&key);
                }
            }
        }
        self.required(schema, map, "", &mut out);
        out
    }

    fn required(&self, schema: &Value, map: &Map<String, Value>, path: &str, out: &mut Vec<Cause>) {
        for name in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !map.contains_key(name) {
                let field = if path.is_empty() {
                    name.to_owned()
                } else {
                    format!("{path}.{name}")
                };
                out.push(Cause {
                    reason: "FieldValueRequired",
                    message: format!("{field}: Required value"),
                    field,
                });
            }
        }
    }

    /// Checks `value` at `path` against `schema`, pruning unknown fields.
    pub fn check(&self, schema: &Value, value: &mut Value, path: &str, out: &mut Vec<Cause>) {
        if value.is_null() {
            if !flag(schema, "nullable") && schema.get("type").is_some() {
                let t = schema.get("type").and_then(Value::as_str).unwrap_or("");
                invalid(
                    out,
                    path,
                    value,
                    format!("{path} in body must be of type {t}: \"null\""),
                );
            }
            return;
        }
        let int_or_string = flag(schema, "x-kubernetes-int-or-string");
        let actual = type_name(value);
        if int_or_string {
            if !matches!(actual, "integer" | "string") {
                invalid(
                    out,
                    path,
                    value,
                    format!("{path} in body must be of type integer-or-string: \"{actual}\""),
                );
                return;
            }
        } else if let Some(want) = schema.get("type").and_then(Value::as_str) {
            let ok = want == actual || (want == "number" && actual == "integer");
            if !ok {
                invalid(
                    out,
                    path,
                    value,
                    format!("{path} in body must be of type {want}: \"{actual}\""),
                );
                return;
            }
        }
        self.values(schema, value, path, out);
        match value {
            Value::Object(map) => self.object(schema, map, path, out),
            Value::Array(items) => self.array(schema, items, path, out),
            Value::String(s) => self.string(schema, s, path, out),
            Value::Number(_) => self.numeric(schema, value, path, out),
            _ => {}
        }
        for sub in ["allOf", "anyOf", "oneOf"] {
            if let Some(schemas) = schema.get(sub).and_then(Value::as_array) {
                let passing = schemas
                    .iter()
                    .filter(|s| {
                        let mut copy = value.clone();
                        let mut errors = Vec::new();
                        self.check(s, &mut copy, path, &mut errors);
                        errors.is_empty()
                    })
                    .count();
                let ok = match sub {
                    "allOf" => passing == schemas.len(),
                    "anyOf" => passing > 0,
                    _ => passing == 1,
                };
                if !ok {
                    invalid(
                        out,
                        path,
                        value,
                        format!("{path} in body must match {sub} of the schemas"),
                    );
                }
            }
        }
        if let Some(not) = schema.get("not") {
            let mut copy = value.clone();
            let mut errors = Vec::new();
            self.check(not, &mut copy, path, &mut errors);
            if errors.is_empty() {
                invalid(
                    out,
                    path,
                    value,
                    format!("{path} in body must not match the schema in 'not'"),
                );
            }
        }
    }

    fn values(&self, schema: &Value, value: &Value, path: &str, out: &mut Vec<Cause>) {
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
            && !allowed.contains(value)
        {
            let list: Vec<String> = allowed.iter().map(show).collect();
            out.push(Cause {
                reason: "FieldValueNotSupported",
                field: path.to_owned(),
                message: format!(
                    "{path}: Unsupported value: {}: supported values: {}",
                    show(value),
                    list.join(", ")
                ),
            });
        }
    }

    fn object(
        &self,
        schema: &Value,
        map: &mut Map<String, Value>,
        path: &str,
        out: &mut Vec<Cause>,
    ) {
        let properties = schema.get("properties").and_then(Value::as_object);
        let additional = schema.get("additionalProperties");
        let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields");
        let embedded = flag(schema, "x-kubernetes-embedded-resource");
        let keys: Vec<String> = map.keys().cloned().collect();
        for key in keys {
            let child_path = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            let child_schema = properties.and_then(|p| p.get(&key)).or(match additional {
                Some(Value::Object(_)) => additional,
                _ => None,
            });
            match child_schema {
                Some(child) => {
                    if let Some(value) = map.get_mut(&key) {
                        self.check(child, value, &child_path, out);
                    }
                }
                None if preserve
                    || additional == Some(&Value::Bool(true))
                    || (embedded && matches!(key.as_str(), "apiVersion" | "kind" | "metadata")) => {
                }
                None => {
                    map.remove(&key);
                }
            }
        }
        self.required(schema, map, path, out);
        let n = map.len();
        if let Some(min) = count(schema, "minProperties").filter(|m| n < *m) {
            invalid(
                out,
                path,
                &Value::from(n),
                format!("{path} in body should have at least {min} properties"),
            );
        }
        if let Some(max) = count(schema, "maxProperties").filter(|m| n > *m) {
            out.push(Cause {
                reason: "FieldValueTooMany",
                field: path.to_owned(),
                message: format!("{path}: Too many: {n}: must have at most {max} items"),
            });
        }
    }

    fn array(&self, schema: &Value, items: &mut [Value], path: &str, out: &mut Vec<Cause>) {
        if let Some(item) = schema.get("items").filter(|i| i.is_object()) {
            for (i, value) in items.iter_mut().enumerate() {
                self.check(item, value, &format!("{path}[{i}]"), out);
            }
        }
        let n = items.len();
        if let Some(min) = count(schema, "minItems").filter(|m| n < *m) {
            invalid(
                out,
                path,
                &Value::from(n),
                format!("{path} in body should have at least {min} items"),
            );
        }
        if let Some(max) = count(schema, "maxItems").filter(|m| n > *m) {
            out.push(Cause {
                reason: "FieldValueTooMany",
                field: path.to_owned(),
                message: format!("{path}: Too many: {n}: must have at most {max} items"),
            });
        }
        if flag(schema, "uniqueItems") {
            for (i, a) in items.iter().enumerate() {
                if items[..i].contains(a) {
                    out.push(Cause {
                        reason: "FieldValueDuplicate",
                        field: format!("{path}[{i}]"),
                        message: format!("{path}[{i}]: Duplicate value: {}", show(a)),
                    });
                }
            }
        }
    }

    fn string(&self, schema: &Value, s: &str, path: &str, out: &mut Vec<Cause>) {
        let value = Value::String(s.to_owned());
        let chars = s.chars().count();
        if let Some(min) = count(schema, "minLength").filter(|m| chars < *m) {
            invalid(
                out,
                path,
                &value,
                format!("{path} in body should be at least {min} chars long"),
            );
        }
        if let Some(max) = count(schema, "maxLength").filter(|m| chars > *m) {
            out.push(Cause {
                reason: "FieldValueTooLong",
                field: path.to_owned(),
                message: format!("{path}: Too long: may not be more than {max} bytes"),
            });
        }
        if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
            && let Some(re) = self.regex(pattern)
            && !re.is_match(s)
        {
            invalid(
                out,
                path,
                &value,
                format!("{path} in body should match '{pattern}'"),
            );
        }
    }

    fn numeric(&self, schema: &Value, value: &Value, path: &str, out: &mut Vec<Cause>) {
        let Some(x) = value.as_f64() else { return };
        if let Some(min) = number(schema, "minimum") {
            if flag(schema, "exclusiveMinimum") && x <= min {
                invalid(
                    out,
                    path,
                    value,
                    format!("{path} in body should be greater than {min}"),
                );
            } else if x < min {
                invalid(
                    out,
                    path,
                    value,
                    format!("{path} in body should be greater than or equal to {min}"),
                );
            }
        }
        if let Some(max) = number(schema, "maximum") {
            if flag(schema, "exclusiveMaximum") && x >= max {
                invalid(
                    out,
                    path,
                    value,
                    format!("{path} in body should be less than {max}"),
                );
            } else if x > max {
                invalid(
                    out,
                    path,
                    value,
                    format!("{path} in body should be less than or equal to {max}"),
                );
            }
        }
        if let Some(m) = number(schema, "multipleOf").filter(|m| *m > 0.0)
            && (x / m).fract() != 0.0
        {
            invalid(
                out,
                path,
                value,
                format!("{path} in body should be a multiple of {m}"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prunes_unknown_fields_and_reports_violations() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "required": ["a"], "properties": {
            "a": {"type": "string", "pattern": "^https://", "maxLength": 10},
            "n": {"type": "integer", "minimum": 1, "maximum": 3},
            "e": {"type": "string", "enum": ["x", "y"]},
            "l": {"type": "array", "maxItems": 1, "items": {"type": "object", "properties": {"k": {"type": "string"}}}},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            "ios": {"x-kubernetes-int-or-string": true}
        }}}});
        let v = Validator::default();
        let mut ok = json!({"apiVersion": "g/v1", "kind": "K", "metadata": {"name": "x"},
            "spec": {"a": "https://x", "n": 2, "e": "x", "l": [{"k": "v", "junk": 1}], "free": {"any": [1]}, "ios": "50%", "junk": true}, "top": 1});
        assert!(v.validate_object(&schema, &mut ok).is_empty());
        assert_eq!(ok["spec"]["l"][0], json!({"k": "v"}));
        assert!(ok["spec"].get("junk").is_none() && ok.get("top").is_none());
        assert_eq!(ok["spec"]["free"], json!({"any": [1]}));

        let mut bad = json!({"spec": {"a": "http://averylongvalue", "n": 0, "e": "z", "l": [{}, {}], "ios": true}});
        let causes = v.validate_object(&schema, &mut bad);
        let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            fields,
            ["spec.a", "spec.a", "spec.e", "spec.ios", "spec.l", "spec.n"],
            "{causes:#?}"
        );
        let mut missing = json!({"spec": {}});
        let causes = v.validate_object(&schema, &mut missing);
        assert_eq!(causes[0].message, "spec.a: Required value");
    }

    #[test]
    fn names() {
        assert!(valid_name("foo-1.bar"));
        assert!(!valid_name("Foo"));
        assert!(!valid_name("-a"));
        assert!(!valid_name(""));
    }
}
