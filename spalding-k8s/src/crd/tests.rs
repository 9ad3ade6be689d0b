//! Schema tests: the generated definitions carry what `kubectl` users rely on.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;

use super::*;

fn crd_json(kind: &str) -> Value {
    let crd = crds()
        .into_iter()
        .find(|c| c.spec.names.kind == kind)
        .unwrap();
    serde_json::to_value(crd).unwrap()
}

fn schema(kind: &str) -> Value {
    crd_json(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

/// Every property below `path` has a description.
fn assert_described(value: &Value, path: &str) {
    if let Some(properties) = value.get("properties").and_then(Value::as_object) {
        for (name, property) in properties {
            let here = format!("{path}.{name}");
            if !matches!(name.as_str(), "apiVersion" | "kind" | "metadata") {
                assert!(
                    property
                        .get("description")
                        .and_then(Value::as_str)
                        .is_some_and(|d| !d.is_empty()),
                    "{here} has no description"
                );
            }
            assert_described(property, &here);
        }
    }
    if let Some(items) = value.get("items") {
        assert_described(items, &format!("{path}[]"));
    }
}

#[test]
fn names_scope_and_subresources() {
    for (kind, plural, short) in [
        ("VirtualCloud", "virtualclouds", "vc"),
        ("VirtualCloudPartner", "virtualcloudpartners", "vcp"),
        (
            "VirtualCloudPartnerAdmission",
            "virtualcloudpartneradmissions",
            "vcpa",
        ),
    ] {
        let crd = crd_json(kind);
        assert_eq!(crd["metadata"]["name"], format!("{plural}.carbynestack.io"));
        assert_eq!(crd["spec"]["group"], GROUP);
        assert_eq!(crd["spec"]["scope"], "Namespaced");
        assert_eq!(
            crd["spec"]["names"]["shortNames"],
            serde_json::json!([short])
        );
        let version = &crd["spec"]["versions"][0];
        assert_eq!(version["name"], "v1");
        assert!(
            version["subresources"]["status"].is_object(),
            "{kind} has a status subresource"
        );
    }
}

#[test]
fn every_field_is_described() {
    for kind in [
        "VirtualCloud",
        "VirtualCloudPartner",
        "VirtualCloudPartnerAdmission",
    ] {
        assert_described(&schema(kind), kind);
    }
}

#[test]
fn printer_columns() {
    let columns = |kind: &str| -> Vec<String> {
        crd_json(kind)["spec"]["versions"][0]["additionalPrinterColumns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        columns("VirtualCloud"),
        ["State", "Player", "Players", "Age"]
    );
    assert_eq!(
        columns("VirtualCloudPartner"),
        ["Party", "Admitted", "Compatible", "Fingerprint", "Age"]
    );
    assert_eq!(
        columns("VirtualCloudPartnerAdmission"),
        ["Partner", "Pinned", "Fingerprint", "Age"]
    );
}

#[test]
fn validations_are_in_the_schema() {
    let vc = schema("VirtualCloud");
    let partners = &vc["properties"]["spec"]["properties"]["partners"];
    assert_eq!(partners["minItems"], 1);
    assert_eq!(partners["maxItems"], 128);
    let rules: Vec<&str> = partners["x-kubernetes-validations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rule"].as_str().unwrap())
        .collect();
    assert!(rules.contains(&"self.all(p, self.exists_one(q, q.name == p.name))"));
    let entry = &partners["items"]["properties"];
    assert_eq!(entry["name"]["pattern"], "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$");
    assert!(
        entry["endpoint"]["pattern"]
            .as_str()
            .unwrap()
            .starts_with("^https://")
    );
    let parameters = &vc["properties"]["spec"]["properties"]["parameters"]["properties"];
    for decimal in ["prime", "r", "rInv"] {
        assert_eq!(parameters[decimal]["pattern"], "^[0-9]+$", "{decimal}");
    }
    let conditions = &vc["properties"]["status"]["properties"]["conditions"];
    assert_eq!(conditions["x-kubernetes-list-type"], "map");
    assert_eq!(
        conditions["x-kubernetes-list-map-keys"],
        serde_json::json!(["type"])
    );

    let admission = schema("VirtualCloudPartnerAdmission");
    let spec = &admission["properties"]["spec"];
    assert_eq!(
        spec["x-kubernetes-validations"][0]["rule"],
        "self == oldSelf"
    );
    assert_eq!(
        spec["properties"]["fingerprint"]["pattern"],
        "^sha256:[0-9a-f]{64}$"
    );
    assert_eq!(spec["required"], serde_json::json!(["partner"]));
}

#[test]
fn yaml_holds_all_three() {
    let yaml = crds_yaml().unwrap();
    assert_eq!(yaml.matches("kind: CustomResourceDefinition").count(), 3);
    for needle in [
        "- vc\n",
        "- vcp\n",
        "- vcpa\n",
        "x-kubernetes-validations",
        "partner names must be unique",
        "jsonPath: .status.state",
    ] {
        assert!(yaml.contains(needle), "YAML lacks {needle:?}");
    }
}

#[test]
fn status_round_trips_through_the_core() {
    let status = VirtualCloudStatus {
        state: VirtualCloudState::Initializing,
        player_id: Some(1),
        player_count: Some(3),
        observed_generation: Some(4),
        conditions: vec![StatusCondition {
            type_: "Ready".into(),
            status: ConditionState::False,
            reason: "Waiting".into(),
            message: "m".into(),
            observed_generation: Some(4),
            last_transition_time: "2025-01-01T00:00:00Z".into(),
        }],
        // The adapter's own field: not the core's, written by the adapter.
        document_sequence: None,
    };
    let core = spalding_core::spec::VirtualCloudStatus::from(&status);
    assert_eq!(VirtualCloudStatus::from(&core), status);
    assert_eq!(
        serde_json::to_value(&status).unwrap(),
        serde_json::to_value(&core).unwrap(),
        "the CRD status serialises exactly like the core's"
    );
}
