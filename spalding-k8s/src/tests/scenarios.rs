//! The scenarios: one reconcile each, scripted request by request. Later
//! scenarios start from the objects an earlier reconcile wrote, as the API
//! server would return them.

use std::sync::Arc;

use serde_json::{Value, json};
use spalding_core::ports::MockEntropy;

use super::fixtures::*;
use crate::controller::{FINALIZER, reconcile};

pub(super) const VCS: &str = "/apis/carbynestack.io/v1/namespaces/default/virtualclouds";
pub(super) const VCPS: &str = "/apis/carbynestack.io/v1/namespaces/default/virtualcloudpartners";
pub(super) const VCPAS: &str =
    "/apis/carbynestack.io/v1/namespaces/default/virtualcloudpartneradmissions";
pub(super) const CMS: &str = "/api/v1/namespaces/default/configmaps";
pub(super) const SECRETS: &str = "/api/v1/namespaces/default/secrets";
pub(super) const APPLY: &str = "?&force=true&fieldManager=spalding";
const PARTNER_SELECTOR: &str = "?&labelSelector=app.kubernetes.io%2Fmanaged-by%3Dspalding%2Cspalding.carbynestack.io%2Fvirtual-cloud%3Dfoo%2Capp.kubernetes.io%2Fcomponent%3Dpartner";
const CERT_SELECTOR: &str = "?&labelSelector=app.kubernetes.io%2Fmanaged-by%3Dspalding%2Cspalding.carbynestack.io%2Fvirtual-cloud%3Dfoo%2Capp.kubernetes.io%2Fcomponent%3Dpartner-certificate";

pub(super) fn owner() -> Value {
    json!([{"apiVersion": "carbynestack.io/v1", "kind": "VirtualCloud", "name": VC, "uid": UID, "controller": true}])
}

/// What the cluster holds after a reconcile, as the API server answers reads.
pub(super) struct Stored {
    pub vc: Value,
    pub partner: Option<Value>,
    pub certificate: Option<Value>,
    pub document: Option<Value>,
    pub admissions: Vec<Value>,
}

impl Stored {
    fn new_vc() -> Self {
        Self {
            vc: as_json(&virtual_cloud()),
            partner: None,
            certificate: None,
            document: None,
            admissions: Vec::new(),
        }
    }

    /// The reads every reconcile starts with, answered from what is stored.
    pub(super) fn reads(&self) -> Vec<Exchange> {
        let mut reads = vec![
            Exchange::get(format!("{VCS}/foo")).answer(self.vc.clone()),
            Exchange::get(format!("{VCPS}{PARTNER_SELECTOR}")).answer(list(
                "carbynestack.io/v1",
                "VirtualCloudPartner",
                self.partner.iter().cloned().collect(),
            )),
        ];
        if self.partner.is_some() {
            reads.push(Exchange::get(format!("{CMS}{CERT_SELECTOR}")).answer(list(
                "v1",
                "ConfigMap",
                self.certificate.iter().cloned().collect(),
            )));
        }
        reads.push(Exchange::get(format!("{VCPAS}?")).answer(list(
            "carbynestack.io/v1",
            "VirtualCloudPartnerAdmission",
            self.admissions.clone(),
        )));
        reads.push(
            Exchange::get(format!("{SECRETS}/io.carbynestack.engine.params.secret")).not_found(),
        );
        reads.push(Exchange::get(format!("{CMS}/cs-vcp-config")).not_found());
        // The records of applied services and gateways (none yet).
        reads.push(Exchange::get(format!("{CMS}/foo-services")).not_found());
        reads.push(Exchange::get(format!("{CMS}/foo-gateways")).not_found());
        let document = Exchange::get(format!("{CMS}/foo-partner-document"));
        reads.push(match &self.document {
            Some(d) => document.answer(d.clone()),
            None => document.not_found(),
        });
        reads
    }
}

/// Merges a status apply into `object`, as the API server answers it.
pub(super) fn with_status(mut object: Value, apply: &Value) -> Value {
    object["status"] = apply["status"].clone();
    object
}

/// Reconcile 1: partner `b` serves its document; `a` stores it. Returns what is stored after.
pub(super) async fn first_reconcile(b: &spalding_core::certificate::Certificate) -> Stored {
    let (client, server) = ApiServer::new();
    let ctx = context(
        client,
        transport(Some(partner_document(b, None, 1))),
        MockEntropy::new(),
    );
    let mut stored = Stored::new_vc();
    let mut script = stored.reads();
    // The writes follow the reads: certificate, partner, its status, document, VC status.
    let base = script.len();
    let fingerprint = b.fingerprint().as_str().to_owned();
    script.extend([
        Exchange::patch(format!("{CMS}/foo-b-cert{APPLY}")).body(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "foo-b-cert", "namespace": NS, "ownerReferences": owner(),
                "labels": {"app.kubernetes.io/managed-by": "spalding", "spalding.carbynestack.io/virtual-cloud": "foo",
                           "app.kubernetes.io/component": "partner-certificate", "spalding.carbynestack.io/party": "b"}},
            "data": {"tls.crt": b.pem()},
        })).answer(json!({})),
        Exchange::patch(format!("{VCPS}/foo-b{APPLY}")).body(json!({
            "apiVersion": "carbynestack.io/v1", "kind": "VirtualCloudPartner",
            "metadata": {"name": "foo-b", "ownerReferences": owner(),
                "labels": {"app.kubernetes.io/managed-by": "spalding", "spalding.carbynestack.io/virtual-cloud": "foo"}},
            "spec": {"name": "b", "endpoint": "https://b.example", "certificate": {"name": "foo-b-cert", "namespace": NS},
                     "parameters": {"prime": "198766463529478683931867765928436695041", "gf2nBitLength": 40}},
        })),
        Exchange::patch(format!("{VCPS}/foo-b/status{APPLY}")).body(json!({
            "apiVersion": "carbynestack.io/v1", "kind": "VirtualCloudPartner",
            "status": {"admitted": false, "compatible": true, "fingerprint": fingerprint, "reachable": true, "sequence": 1},
        })),
        Exchange::patch(format!("{CMS}/foo-partner-document{APPLY}"))
            .body(json!({"metadata": {"name": "foo-partner-document", "ownerReferences": owner()}, "data": {"sequence": "1"}}))
            .without("mac_key_share"),
        Exchange::patch(format!("{VCS}/foo/status{APPLY}"))
            .body(json!({"apiVersion": "carbynestack.io/v1", "kind": "VirtualCloud", "status": {"state": "admission", "observedGeneration": 1}})),
    ]);
    // The partner and status applies are answered with the objects they create.
    let bodies = {
        let vc_json = stored.vc.clone();
        let server = server.play_with(script, move |step, body, answers| {
            match step.checked_sub(base) {
                Some(0 | 1 | 3) => answers.push(body.clone()),
                Some(2) => answers.push(with_status(
                    answers.last().cloned().unwrap_or_default(),
                    body,
                )),
                Some(4) => answers.push(with_status(vc_json.clone(), body)),
                _ => {}
            }
        });
        let result = reconcile(Arc::new(virtual_cloud()), ctx).await;
        assert!(result.is_ok(), "{result:?}");
        finish(server).await
    };
    let certificate = &bodies[base];
    let document = &bodies[base + 3];
    assert!(
        document["data"]["document.json"]
            .as_str()
            .unwrap()
            .contains("\"signature\":\"test-signature\""),
        "the published document is signed"
    );
    stored.certificate = Some(certificate.clone());
    stored.partner = Some(with_status(bodies[base + 1].clone(), &bodies[base + 2]));
    stored.document = Some(document.clone());
    stored.vc = with_status(stored.vc.clone(), &bodies[base + 4]);
    stored
}

#[tokio::test]
async fn a_new_virtual_cloud_gets_the_finalizer_first() {
    let (client, server) = ApiServer::new();
    let ctx = context(client, transport(None), MockEntropy::new());
    let mut vc = virtual_cloud();
    vc.metadata.finalizers = None;
    let mut finalized = as_json(&vc);
    finalized["metadata"]["finalizers"] = json!([FINALIZER]);
    let server = server.play(vec![
        Exchange::patch(format!("{VCS}/foo?"))
            .body(json!([
                {"op": "test", "path": "/metadata/finalizers", "value": null},
                {"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]},
            ]))
            .answer(finalized),
    ]);
    let action = reconcile(Arc::new(vc), ctx).await;
    assert!(action.is_ok(), "{action:?}");
    finish(server).await;
}

#[tokio::test]
async fn a_fetched_partner_is_stored_as_config_map_and_partner() {
    let b = certificate("b");
    let stored = first_reconcile(&b).await;
    assert_eq!(stored.vc["status"]["state"], "admission");
}

#[tokio::test]
async fn nothing_changed_means_no_write() {
    let b = certificate("b");
    let stored = first_reconcile(&b).await;
    let (client, server) = ApiServer::new();
    let ctx = context(
        client,
        transport(Some(partner_document(&b, None, 1))),
        MockEntropy::new(),
    );
    let server = server.play(stored.reads());
    let result = reconcile(
        Arc::new(serde_json::from_value(stored.vc.clone()).unwrap()),
        ctx,
    )
    .await;
    assert!(result.is_ok(), "{result:?}");
    finish(server).await;
}

fn deleting(annotations: Value) -> (crate::crd::VirtualCloud, Value) {
    let mut vc = virtual_cloud();
    vc.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        "2025-01-01T00:00:00Z".parse().unwrap(),
    ));
    vc.metadata.annotations = serde_json::from_value(annotations).unwrap();
    let mut unfinalized = as_json(&vc);
    unfinalized["metadata"]["finalizers"] = json!([]);
    (vc, unfinalized)
}

const OURS: &str =
    "app.kubernetes.io%2Fmanaged-by%3Dspalding%2Cspalding.carbynestack.io%2Fvirtual-cloud%3Dfoo";
const NOT_KEYS: &str = "%2Cspalding.carbynestack.io%2Fkey-material%21%3Dtrue";
const KEYS: &str = "%2Cspalding.carbynestack.io%2Fkey-material%3Dtrue";

fn deleted_list() -> Value {
    status(200, "Success")
}

fn remove_finalizer(unfinalized: Value) -> Exchange {
    Exchange::patch(format!("{VCS}/foo?"))
        .body(json!([
            {"op": "test", "path": "/metadata/finalizers/0", "value": FINALIZER},
            {"op": "remove", "path": "/metadata/finalizers/0"},
        ]))
        .answer(unfinalized)
}

#[tokio::test]
async fn cleanup_keeps_key_material() {
    let (client, server) = ApiServer::new();
    let ctx = context(client, transport(None), MockEntropy::new());
    let (vc, unfinalized) = deleting(json!(null));
    // No request touches the MAC key Secret or the HE key volume.
    let server = server.play(vec![
        Exchange::delete(format!("{VCPS}?&labelSelector={OURS}")).answer(deleted_list()),
        Exchange::delete(format!("{CMS}?&labelSelector={OURS}{NOT_KEYS}")).answer(deleted_list()),
        Exchange::delete(format!("{SECRETS}?&labelSelector={OURS}{NOT_KEYS}"))
            .answer(deleted_list()),
        remove_finalizer(unfinalized),
    ]);
    let result = reconcile(Arc::new(vc), ctx).await;
    assert!(result.is_ok(), "{result:?}");
    finish(server).await;
}

#[tokio::test]
async fn cleanup_deletes_key_material_when_asked() {
    let (client, server) = ApiServer::new();
    let ctx = context(client, transport(None), MockEntropy::new());
    let (vc, unfinalized) =
        deleting(json!({"spalding.carbynestack.io/delete-key-material": "true"}));
    let server = server.play(vec![
        Exchange::delete(format!("{VCPS}?&labelSelector={OURS}")).answer(deleted_list()),
        Exchange::delete(format!("{CMS}?&labelSelector={OURS}{NOT_KEYS}")).answer(deleted_list()),
        Exchange::delete(format!("{SECRETS}?&labelSelector={OURS}{NOT_KEYS}"))
            .answer(deleted_list()),
        Exchange::delete(format!("{SECRETS}?&labelSelector={OURS}{KEYS}")).answer(deleted_list()),
        Exchange::delete(format!(
            "/api/v1/namespaces/default/persistentvolumeclaims?&labelSelector={OURS}{KEYS}"
        ))
        .answer(deleted_list()),
        remove_finalizer(unfinalized),
    ]);
    let result = reconcile(Arc::new(vc), ctx).await;
    assert!(result.is_ok(), "{result:?}");
    finish(server).await;
}
