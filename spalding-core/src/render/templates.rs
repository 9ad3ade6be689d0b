//! Foundation services from configurable templates, and readiness rules.
//!
//! A [`ServiceTemplate`] names an `apiVersion`, `kind`, plural resource
//! name, object name and `spec` (JSON). Strings in the name and spec may
//! hold placeholders: `${vc}`, `${playerId}`, `${playerCount}`,
//! `${isMaster}`, `${prime}`, `${settingsConfigMap}`, `${tlsSecret}`,
//! `${macKeySecret}`, `${heKeyClaim}`, `${vcpConfigMap}`,
//! `${engineParamsConfigMap}`. A string that is exactly `${playerId}`,
//! `${playerCount}` or `${isMaster}` becomes a JSON number or boolean.
//!
//! The defaults ([`default_templates`]) are Klyshko's real `TupleGenerator`
//! (every player, CowGear image) and `TupleGenerationScheduler` (player 0
//! only), group `klyshko.carbnyestack.io` (sic), `v1alpha1`. Upstream has no
//! CRDs for Amphora, Castor and Ephemeral, so their defaults are disabled
//! placeholders (group `placeholder.spalding.carbynestack.io`): enable them
//! after pointing `apiVersion`/`kind`/`plural` at your own operator.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{RenderError, RenderSettings};
use crate::configuration::{ENGINE_PARAMS_CONFIG_MAP, Formation, MAC_KEY_SECRET, VCP_CONFIG_MAP};

/// Klyshko's API group, spelled as upstream spells it.
pub const KLYSHKO_GROUP: &str = "klyshko.carbnyestack.io";
/// Klyshko's API version.
pub const KLYSHKO_API_VERSION: &str = "klyshko.carbnyestack.io/v1alpha1";
/// Klyshko's CowGear (HE-based) generator image.
pub const COWGEAR_IMAGE: &str = "ghcr.io/carbynestack/klyshko-mp-spdz-cowgear:latest";
/// The tuple types Klyshko generates.
pub const TUPLE_TYPES: [&str; 10] = [
    "BIT_GFP",
    "BIT_GF2N",
    "INPUT_MASK_GFP",
    "INPUT_MASK_GF2N",
    "INVERSE_TUPLE_GFP",
    "INVERSE_TUPLE_GF2N",
    "SQUARE_TUPLE_GFP",
    "SQUARE_TUPLE_GF2N",
    "MULTIPLICATION_TRIPLE_GFP",
    "MULTIPLICATION_TRIPLE_GF2N",
];

/// When a rendered resource counts as ready, read from the object as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "rule")]
pub enum ReadinessRule {
    /// As soon as it exists (Klyshko's resources have no status to read).
    Exists,
    /// `status.conditions[type == <type>].status == "True"`.
    #[serde(rename_all = "camelCase")]
    Condition {
        /// The condition type.
        condition_type: String,
    },
    /// The value at a dotted path (e.g. `status.phase`) equals `expected`.
    Field {
        /// Dotted path from the object's root.
        path: String,
        /// The value that means ready.
        expected: Value,
    },
}

impl ReadinessRule {
    /// Whether `object` (the whole resource as JSON) is ready.
    pub fn is_ready(&self, object: &Value) -> bool {
        match self {
            Self::Exists => true,
            Self::Condition { condition_type } => object
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|conditions| {
                    conditions.iter().any(|c| {
                        c.get("type").and_then(Value::as_str) == Some(condition_type.as_str())
                            && c.get("status").and_then(Value::as_str) == Some("True")
                    })
                }),
            Self::Field { path, expected } => path
                .split('.')
                .try_fold(object, |v, key| v.get(key))
                .is_some_and(|v| v == expected),
        }
    }
}

/// A foundation service resource to create for a VC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceTemplate {
    /// `group/version`.
    pub api_version: String,
    /// The kind.
    pub kind: String,
    /// The plural resource name (for the API path).
    pub plural: String,
    /// The object name; placeholders allowed.
    pub name: String,
    /// The `spec`; placeholders allowed in strings.
    pub spec: Value,
    /// Only on player 0 (the Carbyne Stack master).
    #[serde(default)]
    pub master_only: bool,
    /// Whether it is created at all.
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// When it is ready.
    #[serde(default = "exists")]
    pub readiness: ReadinessRule,
}

fn enabled() -> bool {
    true
}

fn exists() -> ReadinessRule {
    ReadinessRule::Exists
}

/// An object ready for an adapter to apply: `body` has `apiVersion`, `kind`,
/// `metadata.name` and `spec`; the adapter adds namespace, labels and owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RenderedObject {
    /// `group/version`.
    pub api_version: String,
    /// The kind.
    pub kind: String,
    /// The plural resource name.
    pub plural: String,
    /// The object name.
    pub name: String,
    /// The object.
    pub body: Value,
    /// When it is ready.
    pub readiness: ReadinessRule,
}

impl RenderedObject {
    /// An object with `spec`, ready once it exists.
    pub fn new(api_version: &str, kind: &str, plural: &str, name: &str, spec: Value) -> Self {
        Self {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
            plural: plural.to_owned(),
            name: name.to_owned(),
            body: json!({
                "apiVersion": api_version,
                "kind": kind,
                "metadata": { "name": name },
                "spec": spec,
            }),
            readiness: ReadinessRule::Exists,
        }
    }
}

/// Klyshko's `TupleGenerator` and `TupleGenerationScheduler`, and disabled
/// placeholders for Amphora, Castor and Ephemeral.
pub fn default_templates() -> Vec<ServiceTemplate> {
    let supports: Vec<Value> = TUPLE_TYPES
        .iter()
        .map(|t| json!({ "type": t, "batchSize": 100_000 }))
        .collect();
    let policies: Vec<Value> = TUPLE_TYPES
        .iter()
        .map(|t| json!({ "type": t, "threshold": 50_000, "priority": 1 }))
        .collect();
    let klyshko =
        |kind: &str, plural: &str, name: &str, spec: Value, master_only| ServiceTemplate {
            api_version: KLYSHKO_API_VERSION.to_owned(),
            kind: kind.to_owned(),
            plural: plural.to_owned(),
            name: name.to_owned(),
            spec,
            master_only,
            enabled: true,
            readiness: ReadinessRule::Exists,
        };
    let placeholder = |kind: &str| ServiceTemplate {
        api_version: "placeholder.spalding.carbynestack.io/v1alpha1".to_owned(),
        kind: kind.to_owned(),
        plural: format!("{}s", kind.to_ascii_lowercase()),
        name: format!("${{vc}}-{}", kind.to_ascii_lowercase()),
        spec: json!({
            "settingsConfigMap": "${settingsConfigMap}",
            "macKeySecret": "${macKeySecret}",
            "tlsSecret": "${tlsSecret}",
            "playerId": "${playerId}",
            "playerCount": "${playerCount}",
        }),
        master_only: false,
        enabled: false,
        readiness: ReadinessRule::Condition {
            condition_type: "Ready".to_owned(),
        },
    };
    vec![
        klyshko(
            "TupleGenerator",
            "tuplegenerators",
            "${vc}-cowgear",
            json!({
                "template": { "spec": { "container": {
                    "image": COWGEAR_IMAGE,
                    "imagePullPolicy": "IfNotPresent",
                } } },
                "supports": supports,
            }),
            false,
        ),
        klyshko(
            "TupleGenerationScheduler",
            "tuplegenerationschedulers",
            "${vc}-scheduler",
            json!({
                "concurrency": 1,
                "ttlSecondsAfterFinished": 600,
                "policies": policies,
            }),
            true,
        ),
        placeholder("Amphora"),
        placeholder("Castor"),
        placeholder("Ephemeral"),
    ]
}

/// The values placeholders stand for.
struct Facts {
    strings: Vec<(&'static str, String)>,
    typed: Vec<(&'static str, Value)>,
}

impl Facts {
    fn new(vc: &str, formation: &Formation, settings: &RenderSettings) -> Self {
        Self {
            strings: vec![
                ("${vc}", vc.to_owned()),
                ("${playerId}", formation.player_id.to_string()),
                ("${playerCount}", formation.player_count().to_string()),
                ("${isMaster}", formation.is_master().to_string()),
                ("${prime}", formation.parameters.prime().to_string()),
                ("${settingsConfigMap}", settings.settings_config_map.clone()),
                ("${tlsSecret}", settings.tls_secret.clone()),
                ("${macKeySecret}", MAC_KEY_SECRET.to_owned()),
                ("${heKeyClaim}", settings.he_key_claim.clone()),
                ("${vcpConfigMap}", VCP_CONFIG_MAP.to_owned()),
                (
                    "${engineParamsConfigMap}",
                    ENGINE_PARAMS_CONFIG_MAP.to_owned(),
                ),
            ],
            typed: vec![
                ("${playerId}", json!(formation.player_id)),
                ("${playerCount}", json!(formation.player_count())),
                ("${isMaster}", json!(formation.is_master())),
            ],
        }
    }

    fn string(&self, s: &str) -> String {
        self.strings
            .iter()
            .fold(s.to_owned(), |acc, (k, v)| acc.replace(k, v))
    }

    fn value(&self, v: &Value) -> Value {
        match v {
            Value::String(s) => self
                .typed
                .iter()
                .find(|(k, _)| k == s)
                .map_or_else(|| Value::String(self.string(s)), |(_, t)| t.clone()),
            Value::Array(items) => Value::Array(items.iter().map(|i| self.value(i)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (self.string(k), self.value(v)))
                    .collect::<Map<_, _>>(),
            ),
            other => other.clone(),
        }
    }
}

/// The enabled templates that apply to this player, rendered.
pub fn render_services(
    vc: &str,
    formation: &Formation,
    settings: &RenderSettings,
) -> Result<Vec<RenderedObject>, RenderError> {
    let facts = Facts::new(vc, formation, settings);
    settings
        .services
        .iter()
        .filter(|t| t.enabled && (!t.master_only || formation.is_master()))
        .map(|t| {
            let name = facts.string(&t.name);
            let invalid = |reason: &str| RenderError::Template {
                template: format!("{} {}", t.kind, t.name),
                reason: reason.to_owned(),
            };
            if !t.api_version.contains('/') {
                return Err(invalid("apiVersion must be group/version"));
            }
            if name.is_empty() || t.plural.is_empty() || t.kind.is_empty() {
                return Err(invalid("kind, plural and name must not be empty"));
            }
            if name.contains("${") {
                return Err(invalid("the name holds an unknown placeholder"));
            }
            let mut object = RenderedObject::new(
                &t.api_version,
                &t.kind,
                &t.plural,
                &name,
                facts.value(&t.spec),
            );
            object.readiness = t.readiness.clone();
            Ok(object)
        })
        .collect()
}
