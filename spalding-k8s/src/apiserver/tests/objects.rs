//! Objects: create, get, list, replace, patch, apply, status, delete.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::core::Status;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use super::{raw, server};
use crate::crd::{MpcParameters, VirtualCloud, VirtualCloudPartnerEntry, VirtualCloudSpec};
use crate::tests::fixtures::parameters;

fn config_map(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some(name.into());
    cm.metadata.labels = Some(
        labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    );
    cm.data = Some(BTreeMap::from([("k".to_owned(), "v".to_owned())]));
    cm
}

pub fn virtual_cloud(name: &str, endpoint: &str) -> VirtualCloud {
    VirtualCloud::new(
        name,
        VirtualCloudSpec {
            parameters: MpcParameters::from(parameters()),
            partners: vec![VirtualCloudPartnerEntry {
                name: "b".into(),
                endpoint: endpoint.into(),
            }],
        },
    )
}

fn api_error(error: kube::Error) -> Status {
    match error {
        kube::Error::Api(status) => *status,
        other => panic!("expected a Status error, got {other:?}"),
    }
}

fn names(list: kube::core::ObjectList<ConfigMap>) -> Vec<String> {
    list.items.iter().map(ResourceExt::name_any).collect()
}

#[tokio::test]
async fn create_get_and_list_with_selectors() {
    let (server, client) = server().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let pp = PostParams::default();
    let a = cms
        .create(&pp, &config_map("a", &[("app", "x"), ("tier", "1")]))
        .await
        .unwrap();
    cms.create(&pp, &config_map("b", &[("app", "y")]))
        .await
        .unwrap();
    cms.create(&pp, &config_map("c", &[])).await.unwrap();
    Api::<ConfigMap>::namespaced(client.clone(), "other")
        .create(&pp, &config_map("d", &[("app", "x")]))
        .await
        .unwrap();
    assert!(a.metadata.uid.is_some() && a.metadata.creation_timestamp.is_some());
    assert_eq!(a.metadata.generation, Some(1));
    let got = cms.get("a").await.unwrap();
    assert_eq!(got.metadata.resource_version, a.metadata.resource_version);
    assert_eq!(got.data, a.data);

    let list = |s: &str| ListParams::default().labels(s);
    assert_eq!(names(cms.list(&list("app=x")).await.unwrap()), ["a"]);
    assert_eq!(
        names(cms.list(&list("app in (x,y)")).await.unwrap()),
        ["a", "b"]
    );
    assert_eq!(names(cms.list(&list("app!=x")).await.unwrap()), ["b", "c"]);
    assert_eq!(names(cms.list(&list("app,!tier")).await.unwrap()), ["b"]);
    let by_name = ListParams::default().fields("metadata.name=c");
    assert_eq!(names(cms.list(&by_name).await.unwrap()), ["c"]);
    let all: Api<ConfigMap> = Api::all(client);
    assert_eq!(names(all.list(&list("app=x")).await.unwrap()), ["a", "d"]);
    assert_eq!(server.writes(), 4);
}

#[tokio::test]
async fn conflicts_on_create_twice_and_on_stale_replace() {
    let (_server, client) = server().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let pp = PostParams::default();
    let first = cms.create(&pp, &config_map("a", &[])).await.unwrap();
    let again = api_error(cms.create(&pp, &config_map("a", &[])).await.unwrap_err());
    assert_eq!((again.code, again.reason.as_str()), (409, "AlreadyExists"));

    let mut changed = first.clone();
    changed.data = Some(BTreeMap::from([("k".to_owned(), "w".to_owned())]));
    let replaced = cms.replace("a", &pp, &changed).await.unwrap();
    assert_ne!(
        replaced.metadata.resource_version,
        first.metadata.resource_version
    );
    let stale = api_error(cms.replace("a", &pp, &changed).await.unwrap_err());
    assert_eq!((stale.code, stale.reason.as_str()), (409, "Conflict"));
    assert!(
        stale.message.contains("the object has been modified"),
        "{}",
        stale.message
    );
}

#[tokio::test]
async fn merge_patch_and_json_patch() {
    let (_server, client) = server().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    cms.create(&PostParams::default(), &config_map("a", &[("x", "1")]))
        .await
        .unwrap();
    let pp = PatchParams::default();
    let merged = cms
        .patch(
            "a",
            &pp,
            &Patch::Merge(
                json!({"metadata": {"labels": {"y": "2", "x": null}}, "data": {"n": "m"}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        merged.labels(),
        &BTreeMap::from([("y".to_owned(), "2".to_owned())])
    );
    assert_eq!(merged.data.as_ref().unwrap().len(), 2);

    let patch: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/data/k", "value": "v"},
        {"op": "replace", "path": "/data/k", "value": "w"},
        {"op": "add", "path": "/metadata/finalizers", "value": ["f"]},
        {"op": "remove", "path": "/data/n"},
    ]))
    .unwrap();
    let patched = cms
        .patch("a", &pp, &Patch::<()>::Json(patch))
        .await
        .unwrap();
    assert_eq!(
        patched.data,
        Some(BTreeMap::from([("k".to_owned(), "w".to_owned())]))
    );
    assert_eq!(patched.finalizers(), ["f"]);
    let failing: json_patch::Patch =
        serde_json::from_value(json!([{"op": "test", "path": "/data/k", "value": "v"}])).unwrap();
    let error = api_error(
        cms.patch("a", &pp, &Patch::<()>::Json(failing))
            .await
            .unwrap_err(),
    );
    assert_eq!(error.code, 422);
}

#[tokio::test]
async fn server_side_apply_creates_then_updates() {
    let (_server, client) = server().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let apply = PatchParams::apply("spalding").force();
    let config = |labels: serde_json::Value, data: serde_json::Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "labels": labels}, "data": data});
    let created = cms
        .patch(
            "a",
            &apply,
            &Patch::Apply(config(json!({"a": "1", "b": "2"}), json!({"k": "v"}))),
        )
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    // Another writer's label stays; the label spalding stops applying goes.
    cms.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"other": "x"}}})),
    )
    .await
    .unwrap();
    let updated = cms
        .patch(
            "a",
            &apply,
            &Patch::Apply(config(json!({"a": "1"}), json!({"k": "w"}))),
        )
        .await
        .unwrap();
    let labels: Vec<&String> = updated.labels().keys().collect();
    assert_eq!(labels, ["a", "other"]);
    assert_eq!(updated.data.unwrap()["k"], "w");
    // The same apply again changes nothing, not even the resourceVersion.
    let again = cms
        .patch(
            "a",
            &apply,
            &Patch::Apply(config(json!({"a": "1"}), json!({"k": "w"}))),
        )
        .await
        .unwrap();
    assert_eq!(
        again.metadata.resource_version,
        updated.metadata.resource_version
    );
    let no_manager = cms
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Apply(config(json!({}), json!({}))),
        )
        .await
        .unwrap_err();
    assert_eq!(api_error(no_manager).code, 400);
}

#[tokio::test]
async fn status_subresource_and_generation() {
    let (_server, client) = server().await;
    let vcs: Api<VirtualCloud> = Api::namespaced(client, "default");
    let mut vc = virtual_cloud("foo", "https://b.example");
    vc.status = Some(Default::default());
    let created = vcs.create(&PostParams::default(), &vc).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert!(created.status.is_none(), "status is dropped on create");

    let apply = PatchParams::apply("spalding").force();
    let status = json!({"apiVersion": "carbynestack.io/v1", "kind": "VirtualCloud",
        "status": {"state": "admission", "observedGeneration": 1}, "spec": {"partners": []}});
    let with_status = vcs
        .patch_status("foo", &apply, &Patch::Apply(&status))
        .await
        .unwrap();
    assert_eq!(with_status.metadata.generation, Some(1));
    assert_eq!(
        with_status.spec, created.spec,
        "a status write ignores spec"
    );
    assert_eq!(
        with_status
            .status
            .as_ref()
            .map(|s| serde_json::to_value(s.state).unwrap()),
        Some(json!("admission"))
    );

    let labelled = vcs
        .patch(
            "foo",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"labels": {"l": "1"}}, "status": {"state": "ready"}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        labelled.metadata.generation,
        Some(1),
        "metadata changes keep the generation"
    );
    assert_eq!(
        labelled.status, with_status.status,
        "a spec write ignores status"
    );

    let partners = json!({"spec": {"partners": [{"name": "c", "endpoint": "https://c.example"}]}});
    let changed = vcs
        .patch("foo", &PatchParams::default(), &Patch::Merge(partners))
        .await
        .unwrap();
    assert_eq!(changed.metadata.generation, Some(2));
    assert_eq!(changed.status, with_status.status);
}

#[tokio::test]
async fn finalizers_delay_deletion() {
    let (_server, client) = server().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let mut cm = config_map("a", &[]);
    cm.metadata.finalizers = Some(vec!["example.com/f".into()]);
    cms.create(&PostParams::default(), &cm).await.unwrap();
    let deleting = cms.delete("a", &DeleteParams::default()).await.unwrap();
    let marked = deleting.left().expect("the object, still there");
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert!(
        cms.get("a")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some()
    );
    cms.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert!(cms.get_opt("a").await.unwrap().is_none());
}

#[tokio::test]
async fn deleting_an_owner_collects_its_dependents() {
    let (_server, client) = server().await;
    let vcs: Api<VirtualCloud> = Api::namespaced(client.clone(), "default");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let pp = PostParams::default();
    let owner = vcs
        .create(&pp, &virtual_cloud("foo", "https://b.example"))
        .await
        .unwrap();
    let other = vcs
        .create(&pp, &virtual_cloud("bar", "https://b.example"))
        .await
        .unwrap();
    let reference = |vc: &VirtualCloud| vc.controller_owner_ref(&()).unwrap();
    let mut only = config_map("only", &[]);
    only.metadata.owner_references = Some(vec![reference(&owner)]);
    let mut both = config_map("both", &[]);
    both.metadata.owner_references = Some(vec![reference(&owner), reference(&other)]);
    let mut secret = Secret::default();
    secret.metadata.name = Some("s".into());
    secret.metadata.owner_references = Some(vec![reference(&owner)]);
    secret.string_data = Some(BTreeMap::from([("key".to_owned(), "value".to_owned())]));
    cms.create(&pp, &only).await.unwrap();
    cms.create(&pp, &both).await.unwrap();
    let secrets: Api<Secret> = Api::namespaced(client, "default");
    let stored = secrets.create(&pp, &secret).await.unwrap();
    assert_eq!(stored.data.unwrap()["key"].0, b"value");

    vcs.delete("foo", &DeleteParams::background())
        .await
        .unwrap();
    assert!(cms.get_opt("only").await.unwrap().is_none());
    assert!(secrets.get_opt("s").await.unwrap().is_none());
    let kept = cms.get("both").await.unwrap();
    assert_eq!(kept.owner_references().len(), 1);
    assert_eq!(kept.owner_references()[0].name, "bar");

    vcs.delete("bar", &DeleteParams::orphan()).await.unwrap();
    assert!(cms.get("both").await.unwrap().owner_references().is_empty());
}

#[tokio::test]
async fn custom_resources_are_validated_against_their_schema() {
    let (_server, client) = server().await;
    let vcs: Api<VirtualCloud> = Api::namespaced(client, "default");
    let bad = vcs
        .create(
            &PostParams::default(),
            &virtual_cloud("foo", "http://b.example"),
        )
        .await
        .unwrap_err();
    let bad = api_error(bad);
    assert_eq!((bad.code, bad.reason.as_str()), (422, "Invalid"));
    assert!(
        bad.message.contains("spec.partners[0].endpoint"),
        "{}",
        bad.message
    );
    assert!(
        bad.message
            .starts_with("VirtualCloud.carbynestack.io \"foo\" is invalid"),
        "{}",
        bad.message
    );

    let good = vcs
        .create(
            &PostParams::default(),
            &virtual_cloud("foo", "https://b.example"),
        )
        .await
        .unwrap();
    assert_eq!(good.spec.partners[0].endpoint, "https://b.example");
    // Unknown fields are pruned, as by a real server.
    let pruned = vcs
        .patch(
            "foo",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"unknown": 1}})),
        )
        .await
        .unwrap();
    assert_eq!(pruned.metadata.generation, Some(1));
}

#[tokio::test]
async fn hostile_requests_get_4xx_and_the_server_lives_on() {
    let (server, client) = server().await;
    let post = |path: &str, content_type: &str, body: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let cms = "/api/v1/namespaces/default/configmaps";
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    for (request, code) in [
        (post(cms, "application/json", "{not json"), 400),
        (post(cms, "application/json", "[]"), 400),
        (post(cms, "application/json", &deep), 400),
        (post(cms, "application/json", r#"{"metadata": {"name": "Bad_Name"}}"#), 422),
        (post(cms, "application/json", r#"{"metadata": {"name": "x"}, "data": {"k": 1}}"#), 400),
        (post(cms, "application/json", r#"{"kind": "Secret", "metadata": {"name": "x"}}"#), 400),
        (post("/api/v1/namespaces/default/nothings", "application/json", "{}"), 404),
        (post("/apis/carbynestack.io/v1/namespaces/default/virtualclouds", "application/json", r#"{"metadata": {"name": "x"}, "spec": "nope"}"#), 422),
        ("GET /api/v1/namespaces/default/configmaps?labelSelector=a%20b HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".to_owned(), 400),
        ("GET /api/v1/namespaces/default/configmaps?watch=1&resourceVersion=abc HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".to_owned(), 400),
        ("PATCH /api/v1/namespaces/default/configmaps/x HTTP/1.1\r\nhost: x\r\ncontent-type: text/plain\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}".to_owned(), 415),
        ("DELETE /api/v1/configmaps HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".to_owned(), 405),
        (format!("POST {cms} HTTP/1.1\r\nhost: x\r\ncontent-length: 4000000\r\nconnection: close\r\n\r\n{}", "x".repeat(4_000_000)), 413),
    ] {
        let (got, body) = raw(&server, request.as_bytes()).await;
        assert_eq!(got, code, "{}\n{body}", &request[..request.len().min(120)]);
        if got != 413 {
            assert!(body.contains("\"kind\":\"Status\""), "{body}");
        }
    }
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    assert!(
        cms.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn discovery_and_dump() {
    let (server, client) = server().await;
    let discovery = kube::discovery::Discovery::new(client.clone())
        .run()
        .await
        .unwrap();
    let kinds: Vec<String> = discovery
        .groups()
        .flat_map(|g| g.recommended_resources())
        .map(|(r, _)| r.kind)
        .collect();
    for kind in [
        "VirtualCloud",
        "TupleGenerationJob",
        "Gateway",
        "ConfigMap",
        "Job",
        "Lease",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
    let vcs: Api<VirtualCloud> = Api::namespaced(client, "default");
    vcs.create(
        &PostParams::default(),
        &virtual_cloud("foo", "https://b.example"),
    )
    .await
    .unwrap();
    let objects = server.objects();
    assert!(objects.iter().any(|o| o["kind"] == "VirtualCloud"));
    assert!(
        objects
            .iter()
            .any(|o| o["kind"] == "CustomResourceDefinition")
    );
}
