//! Admission scenarios, continuing from [`first_reconcile`]: an admission
//! makes partner `b` admitted (binding an unpinned admission to the
//! fingerprint the operator was shown), and a changed certificate revokes
//! it with a condition and a Warning Event.

use std::sync::Arc;

use http::Method;
use serde_json::{Value, json};
use spalding_core::certificate::Certificate;
use spalding_core::condition::{reasons, types};
use spalding_core::document::PartnerDocument;
use spalding_core::ports::MockEntropy;

use super::fixtures::*;
use super::scenarios::{APPLY, CMS, Stored, VCPAS, VCPS, VCS, first_reconcile, with_status};
use crate::controller::reconcile;

const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/default/events?";
const ADMISSION: &str = "admit-b";

/// How the scripted server answers a write.
enum Reply {
    /// With the request body (objects created or applied whole).
    Echo,
    /// With this object carrying the request's status (status applies).
    StatusOf(Value),
}

/// One reconcile of the stored VC while `b` serves `document`: the usual
/// reads, then exactly `writes`. Returns the bodies of the writes.
async fn reconcile_writes(
    stored: &Stored,
    document: PartnerDocument,
    writes: Vec<(Exchange, Reply)>,
) -> Vec<Value> {
    let (client, server) = ApiServer::new();
    let ctx = context(client, transport(Some(document)), MockEntropy::new());
    let mut script = stored.reads();
    let reads = script.len();
    let (exchanges, replies): (Vec<_>, Vec<_>) = writes.into_iter().unzip();
    script.extend(exchanges);
    let server = server.play_with(script, move |step, body, answers| {
        match step.checked_sub(reads).and_then(|i| replies.get(i)) {
            Some(Reply::Echo) => answers.push(body.clone()),
            Some(Reply::StatusOf(object)) => answers.push(with_status(object.clone(), body)),
            None => {}
        }
    });
    let vc = serde_json::from_value(stored.vc.clone()).unwrap();
    let result = reconcile(Arc::new(vc), ctx).await;
    assert!(result.is_ok(), "{result:?}");
    finish(server).await.split_off(reads)
}

/// The admission of `b` as the operator creates it, optionally pinned.
fn admission(pinned: Option<&str>) -> Value {
    let mut spec = json!({"partner": "foo-b"});
    if let Some(fingerprint) = pinned {
        spec["fingerprint"] = json!(fingerprint);
    }
    json!({
        "apiVersion": "carbynestack.io/v1", "kind": "VirtualCloudPartnerAdmission",
        "metadata": {"name": ADMISSION, "namespace": NS, "uid": "0f1e2d3c-0000-4000-8000-00000000000a", "resourceVersion": "5"},
        "spec": spec,
    })
}

/// The condition of `type_` in a status apply body.
fn condition<'a>(status_apply: &'a Value, type_: &str) -> &'a Value {
    status_apply["status"]["conditions"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["type"] == type_))
        .unwrap_or_else(|| panic!("no condition {type_} in {status_apply:#}"))
}

/// The partner status, published document and VC status writes every
/// change of admission makes, in order, answered from `stored`.
fn status_writes(stored: &Stored, partner_status: Value, sequence: u64) -> Vec<(Exchange, Reply)> {
    vec![
        (
            Exchange::patch(format!("{VCPS}/foo-b/status{APPLY}")).body(partner_status),
            Reply::StatusOf(stored.partner.clone().unwrap()),
        ),
        (
            Exchange::patch(format!("{CMS}/foo-partner-document{APPLY}"))
                .body(json!({"data": {"sequence": sequence.to_string()}})),
            Reply::Echo,
        ),
    ]
}

fn vc_status_write(stored: &Stored) -> (Exchange, Reply) {
    (
        Exchange::patch(format!("{VCS}/foo/status{APPLY}")).body(json!({
            "apiVersion": "carbynestack.io/v1", "kind": "VirtualCloud",
            "status": {"state": "admission", "observedGeneration": 1},
        })),
        Reply::StatusOf(stored.vc.clone()),
    )
}

/// Reconcile 2: the operator admitted `b` without pinning a fingerprint.
/// Returns what is stored after.
async fn admitted(b: &Certificate) -> Stored {
    let mut stored = first_reconcile(b).await;
    stored.admissions = vec![admission(None)];
    let fingerprint = b.fingerprint().as_str().to_owned();
    let mut writes = vec![(
        Exchange::patch(format!("{VCPAS}/{ADMISSION}/status{APPLY}")).body(json!({
            "apiVersion": "carbynestack.io/v1", "kind": "VirtualCloudPartnerAdmission",
            "status": {"fingerprint": fingerprint},
        })),
        Reply::StatusOf(admission(None)),
    )];
    writes.extend(status_writes(
        &stored,
        json!({"status": {"admitted": true, "fingerprint": fingerprint,
                          "admittedFingerprint": fingerprint, "sequence": 1}}),
        2,
    ));
    writes.push(vc_status_write(&stored));
    let bodies = reconcile_writes(&stored, partner_document(b, None, 1), writes).await;

    let vc_status = &bodies[3];
    let partners_admitted = condition(vc_status, types::PARTNERS_ADMITTED);
    assert_eq!(partners_admitted["status"], "True", "{partners_admitted:#}");
    assert_eq!(partners_admitted["reason"], reasons::ADMITTED);
    let published = bodies[2]["data"]["document.json"].as_str().unwrap();
    let published: Value = serde_json::from_str(published).unwrap();
    let b_line = published["members"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["name"] == "b"))
        .unwrap_or_else(|| panic!("b missing from {published:#}"));
    assert_eq!(b_line["admitted"], true, "our document says b is admitted");

    stored.admissions = vec![with_status(admission(None), &bodies[0])];
    stored.partner = Some(with_status(stored.partner.unwrap(), &bodies[1]));
    stored.document = Some(bodies[2].clone());
    stored.vc = with_status(stored.vc, vc_status);
    stored
}

#[tokio::test]
async fn an_admission_makes_the_partner_admitted() {
    let b = certificate("b");
    let stored = admitted(&b).await;
    assert_eq!(stored.partner.unwrap()["status"]["admitted"], true);
    assert_eq!(
        stored.admissions[0]["status"]["fingerprint"],
        b.fingerprint().as_str()
    );
}

#[tokio::test]
async fn a_pinned_admission_is_not_bound() {
    let b = certificate("b");
    let mut stored = first_reconcile(&b).await;
    let fingerprint = b.fingerprint().as_str().to_owned();
    stored.admissions = vec![admission(Some(&fingerprint))];
    // No write to the admission: the script has none, so one would fail.
    let mut writes = status_writes(
        &stored,
        json!({"status": {"admitted": true, "admittedFingerprint": fingerprint}}),
        2,
    );
    writes.push(vc_status_write(&stored));
    let bodies = reconcile_writes(&stored, partner_document(&b, None, 1), writes).await;
    assert_eq!(
        condition(&bodies[2], types::PARTNERS_ADMITTED)["status"],
        "True"
    );
}

#[tokio::test]
async fn a_changed_certificate_revokes_the_admission() {
    let b = certificate("b");
    let stored = admitted(&b).await;
    let rotated = certificate("b");
    let (old, new) = (b.fingerprint().as_str(), rotated.fingerprint().as_str());
    assert_ne!(old, new);

    // The new certificate is stored and shown; the admission stays bound to
    // the old one (no write to it), so `b` is no longer admitted.
    let mut writes = vec![(
        Exchange::patch(format!("{CMS}/foo-b-cert{APPLY}"))
            .body(json!({"data": {"tls.crt": rotated.pem()}})),
        Reply::Echo,
    )];
    writes.extend(status_writes(
        &stored,
        json!({"status": {"admitted": false, "fingerprint": new,
                          "admittedFingerprint": old, "sequence": 2}}),
        3,
    ));
    writes.push((
        Exchange::new(Method::POST, EVENTS).body(json!({
            "type": "Warning", "reason": reasons::CERTIFICATE_CHANGED,
            "regarding": {"kind": "VirtualCloud", "name": VC, "namespace": NS, "uid": UID},
        })),
        Reply::Echo,
    ));
    writes.push(vc_status_write(&stored));
    let bodies = reconcile_writes(&stored, partner_document(&rotated, None, 2), writes).await;

    let note = bodies[3]["note"].as_str().unwrap();
    assert!(
        note.contains(new) && note.contains(old),
        "the Event names both fingerprints: {note}"
    );
    let partners_admitted = condition(&bodies[4], types::PARTNERS_ADMITTED);
    assert_eq!(partners_admitted["status"], "False");
    assert_eq!(partners_admitted["reason"], reasons::CERTIFICATE_CHANGED);
    let published: Value =
        serde_json::from_str(bodies[2]["data"]["document.json"].as_str().unwrap()).unwrap();
    let b_line = published["members"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["name"] == "b"))
        .unwrap();
    assert_eq!(b_line["admitted"], false, "our document withdraws b");
}
