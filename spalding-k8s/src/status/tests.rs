//! Snapshot tests of `spalding status`'s rendering and of what it says a VC
//! waits for.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::json;

use super::*;

const FINGERPRINT_B: &str =
    "sha256:0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b";

fn vc(status: serde_json::Value, generation: i64) -> VirtualCloud {
    serde_json::from_value(json!({
        "apiVersion": "carbynestack.io/v1", "kind": "VirtualCloud",
        "metadata": {"name": "foo", "namespace": "default", "generation": generation},
        "spec": {"parameters": {"prime": "198766463529478683931867765928436695041", "gf2nBitLength": 40, "gf2nStorageSize": 8},
                 "partners": [{"name": "b", "endpoint": "https://b.example"}, {"name": "c", "endpoint": "https://c.example"}]},
        "status": status,
    }))
    .unwrap()
}

fn condition(type_: &str, status: &str, reason: &str, message: &str) -> serde_json::Value {
    json!({"type": type_, "status": status, "reason": reason, "message": message,
           "observedGeneration": 1, "lastTransitionTime": "2025-01-01T00:00:00Z"})
}

fn partner(vc: &str, party: &str, status: serde_json::Value) -> VirtualCloudPartner {
    serde_json::from_value(json!({
        "apiVersion": "carbynestack.io/v1", "kind": "VirtualCloudPartner",
        "metadata": {"name": format!("{vc}-{party}"), "namespace": "default",
                     "labels": {"spalding.carbynestack.io/virtual-cloud": vc}},
        "spec": {"name": party, "endpoint": format!("https://{party}.example"),
                 "parameters": {"prime": "198766463529478683931867765928436695041", "gf2nBitLength": 40, "gf2nStorageSize": 8},
                 "certificate": {"name": format!("{vc}-{party}-cert"), "namespace": "default"}},
        "status": status,
    }))
    .unwrap()
}

fn waiting() -> VirtualCloud {
    vc(
        json!({"state": "admission", "playerId": 0, "playerCount": 3, "observedGeneration": 1, "conditions": [
            condition("SpecValid", "True", "Valid", "the spec is valid"),
            condition("PartnersAdmitted", "False", "AwaitingAdmission", "c: waiting for an admission of certificate sha256:0c"),
            condition("Ready", "False", "Admission", "waiting for the group to form"),
        ]}),
        1,
    )
}

fn partners() -> Vec<VirtualCloudPartner> {
    vec![
        partner(
            "foo",
            "c",
            json!({"admitted": false, "compatible": false, "partnerAdmittedUs": false, "reachable": false,
                   "lastFetchError": "connection refused", "incompatibilities": ["gf2nBitLength: ours 40, theirs 64"]}),
        ),
        partner(
            "foo",
            "b",
            json!({"admitted": true, "fingerprint": FINGERPRINT_B, "compatible": true,
                   "partnerAdmittedUs": true, "reachable": true, "sequence": 4}),
        ),
        partner(
            "bar",
            "d",
            json!({"admitted": true, "compatible": true, "partnerAdmittedUs": true, "reachable": true}),
        ),
    ]
}

#[test]
fn text_snapshot_of_a_vc_waiting_for_admission() {
    let text = render_text(&[report(&waiting(), &partners())]);
    let expected = "\
Virtual cloud default/foo: admission, player 0 of 3
Waiting for: PartnersAdmitted (AwaitingAdmission): c: waiting for an admission of certificate sha256:0c

CONDITION         STATUS  REASON             MESSAGE
SpecValid         True    Valid              the spec is valid
PartnersAdmitted  False   AwaitingAdmission  c: waiting for an admission of certificate sha256:0c
Ready             False   Admission          waiting for the group to form

PARTNER  ADMITTED  ADMITTED US  COMPATIBLE  REACHABLE  LAST FETCH  FINGERPRINT
b        yes       yes          yes         yes        ok, #4      sha256:0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b
c        no        no           no          no         failed      -
  c: last fetch failed: connection refused
  c: incompatible: gf2nBitLength: ours 40, theirs 64
";
    assert_eq!(text, expected, "\n{text}");
}

#[test]
fn text_snapshot_of_an_unreconciled_vc_and_of_none() {
    let fresh = vc(serde_json::Value::Null, 1);
    let text = render_text(&[report(&fresh, &[])]);
    let expected = "\
Virtual cloud default/foo: unknown, no player number yet
Waiting for: the operator's first reconcile (is `spalding operator` running?)

No partners recorded yet.
";
    assert_eq!(text, expected, "\n{text}");
    assert_eq!(render_text(&[]), "No virtual clouds found.\n");
}

#[test]
fn a_ready_vc_waits_for_nothing_and_a_new_spec_for_the_operator() {
    let ready = vc(
        json!({"state": "ready", "playerId": 1, "playerCount": 3, "observedGeneration": 2,
               "conditions": [condition("Ready", "True", "Ready", "every service is ready")]}),
        2,
    );
    assert_eq!(report(&ready, &[]).waiting_for, None);
    assert!(render_text(&[report(&ready, &[])]).contains("Waiting for: nothing\n"));
    let edited = vc(
        json!({"state": "ready", "playerId": 1, "playerCount": 3, "observedGeneration": 2, "conditions": []}),
        3,
    );
    assert_eq!(
        report(&edited, &[]).waiting_for.as_deref(),
        Some("the operator to observe the latest spec")
    );
}

#[test]
fn json_names_fields_as_the_resources_do() {
    let value = serde_json::to_value(report(&waiting(), &partners())).unwrap();
    assert_eq!(value["state"], "admission");
    assert_eq!(value["playerId"], 0);
    assert_eq!(
        value["partners"].as_array().unwrap().len(),
        2,
        "only foo's partners"
    );
    assert_eq!(value["partners"][0]["name"], "b");
    assert_eq!(value["partners"][0]["partnerAdmittedUs"], true);
    assert_eq!(value["conditions"][1]["type"], "PartnersAdmitted");
}
