//! A small structural checker for a CRD's `openAPIV3Schema`, strict like the
//! API server with pruning: types, `required`, `enum`, `minItems`,
//! `minimum`/`exclusiveMinimum`, `anyOf`, `x-kubernetes-int-or-string`, and
//! unknown fields refused unless the schema preserves them. Enough for
//! Klyshko's CRDs; not a full OpenAPI validator (no `pattern`, no formats).

use serde_json::Value;

/// Every violation of `schema` by `value`, as `path: problem`.
pub fn validate(schema: &Value, value: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    check(schema, value, "", &mut errors);
    errors
}

fn check(schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    if let Some(options) = schema.get("anyOf").and_then(Value::as_array)
        && !options.iter().any(|o| validate(o, value).is_empty())
    {
        errors.push(format!("{path}: matches no anyOf option"));
    }
    if schema.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
        if !(value.is_i64() || value.is_u64() || value.is_string()) {
            errors.push(format!("{path}: not an integer or string"));
        }
        return;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        errors.push(format!("{path}: {value} not in enum"));
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("object") => object(schema, value, path, errors),
        Some("array") => {
            let Some(items) = value.as_array() else {
                return errors.push(format!("{path}: not an array"));
            };
            let min = schema.get("minItems").and_then(Value::as_u64).unwrap_or(0);
            if (items.len() as u64) < min {
                errors.push(format!("{path}: fewer than {min} items"));
            }
            if let Some(item) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    check(item, v, &format!("{path}[{i}]"), errors);
                }
            }
        }
        Some("string") if !value.is_string() => errors.push(format!("{path}: not a string")),
        Some("boolean") if !value.is_boolean() => errors.push(format!("{path}: not a boolean")),
        Some("number") if !value.is_number() => errors.push(format!("{path}: not a number")),
        Some("integer") => {
            let Some(n) = value.as_i64() else {
                return errors.push(format!("{path}: not an integer"));
            };
            if let Some(min) = schema.get("minimum").and_then(Value::as_i64) {
                let exclusive = schema.get("exclusiveMinimum") == Some(&Value::Bool(true));
                if n < min || (exclusive && n == min) {
                    errors.push(format!("{path}: {n} below the minimum {min}"));
                }
            }
        }
        _ => {}
    }
}

fn object(schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    let Some(map) = value.as_object() else {
        return errors.push(format!("{path}: not an object"));
    };
    for key in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !map.contains_key(key) {
            errors.push(format!("{path}: missing required {key}"));
        }
    }
    let properties = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties");
    let free = schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true))
        || (properties.is_none() && additional.is_none());
    for (key, v) in map {
        let at = format!("{path}.{key}");
        match (properties.and_then(|p| p.get(key)), additional) {
            (Some(s), _) => check(s, v, &at, errors),
            (None, Some(s)) if s.is_object() => check(s, v, &at, errors),
            _ if free => {}
            _ => errors.push(format!("{at}: unknown field")),
        }
    }
}
