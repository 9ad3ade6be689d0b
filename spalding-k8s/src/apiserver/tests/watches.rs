//! Watches: event order, resourceVersion semantics, bookmarks, timeouts.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{
    DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use serde_json::json;

use super::{server, server_with};
use crate::apiserver::Config;

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": {"app": "x"}}})).unwrap()
}

async fn next<S: futures::Stream + Unpin>(stream: &mut S) -> S::Item {
    tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("an event within 5 s")
        .expect("the stream goes on")
}

#[tokio::test]
async fn watch_sees_added_modified_deleted_in_order() {
    let (_server, client) = server().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let rv = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut events = cms
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    cms.create(&PostParams::default(), &cm("a")).await.unwrap();
    cms.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "v"}})),
    )
    .await
    .unwrap();
    cms.delete("a", &DeleteParams::default()).await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..3 {
        match next(&mut events).await.unwrap() {
            WatchEvent::Added(o) => seen.push(("ADDED", o.resource_version())),
            WatchEvent::Modified(o) => seen.push(("MODIFIED", o.resource_version())),
            WatchEvent::Deleted(o) => seen.push(("DELETED", o.resource_version())),
            other => panic!("unexpected {other:?}"),
        }
    }
    let kinds: Vec<&str> = seen.iter().map(|s| s.0).collect();
    assert_eq!(kinds, ["ADDED", "MODIFIED", "DELETED"]);
    let rvs: Vec<u64> = seen
        .iter()
        .map(|s| s.1.as_deref().unwrap().parse().unwrap())
        .collect();
    assert!(rvs.windows(2).all(|w| w[0] < w[1]), "{rvs:?}");

    // Resuming from the first event's version replays the two later ones.
    let mut resumed = cms
        .watch(&WatchParams::default(), &rvs[0].to_string())
        .await
        .unwrap()
        .boxed();
    assert!(matches!(
        next(&mut resumed).await.unwrap(),
        WatchEvent::Modified(_)
    ));
    assert!(matches!(
        next(&mut resumed).await.unwrap(),
        WatchEvent::Deleted(_)
    ));
}

#[tokio::test]
async fn kube_runtime_watcher_lists_then_follows() {
    let (_server, client) = server().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    cms.create(&PostParams::default(), &cm("before"))
        .await
        .unwrap();
    let mut stream = watcher(cms.clone(), watcher::Config::default()).boxed();
    assert!(matches!(
        next(&mut stream).await.unwrap(),
        watcher::Event::Init
    ));
    match next(&mut stream).await.unwrap() {
        watcher::Event::InitApply(o) => assert_eq!(o.name_any(), "before"),
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(
        next(&mut stream).await.unwrap(),
        watcher::Event::InitDone
    ));
    cms.create(&PostParams::default(), &cm("after"))
        .await
        .unwrap();
    cms.delete("before", &DeleteParams::default())
        .await
        .unwrap();
    match next(&mut stream).await.unwrap() {
        watcher::Event::Apply(o) => assert_eq!(o.name_any(), "after"),
        other => panic!("unexpected {other:?}"),
    }
    match next(&mut stream).await.unwrap() {
        watcher::Event::Delete(o) => assert_eq!(o.name_any(), "before"),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn a_compacted_history_is_gone() {
    let config = Config {
        history: 2,
        ..Config::default()
    };
    let (_server, client) = server_with(config).await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let start = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    for name in ["a", "b", "c", "d"] {
        cms.create(&PostParams::default(), &cm(name)).await.unwrap();
    }
    let mut events = cms
        .watch(&WatchParams::default(), &start)
        .await
        .unwrap()
        .boxed();
    match next(&mut events).await.unwrap() {
        WatchEvent::Error(e) => {
            assert_eq!((e.code, e.reason.as_str()), (410, "Expired"));
            assert!(
                e.message.starts_with("too old resource version"),
                "{}",
                e.message
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .unwrap()
            .is_none(),
        "the watch ends after the error"
    );
}

#[tokio::test]
async fn bookmarks_selectors_and_timeouts() {
    let config = Config {
        bookmark_interval: Duration::from_millis(50),
        ..Config::default()
    };
    let (_server, client) = server_with(config).await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    cms.create(&PostParams::default(), &cm("a")).await.unwrap();
    let params = WatchParams::default().labels("app=x").timeout(1);
    let started = tokio::time::Instant::now();
    let mut events = cms.watch(&params, "0").await.unwrap().boxed();
    assert!(matches!(
        next(&mut events).await.unwrap(),
        WatchEvent::Added(_)
    ));
    cms.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "y"}}})),
    )
    .await
    .unwrap();
    let rest: Vec<WatchEvent<ConfigMap>> =
        tokio::time::timeout(Duration::from_secs(5), events.try_collect())
            .await
            .unwrap()
            .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "timeoutSeconds is honoured"
    );
    assert!(
        matches!(
            rest.iter().find(|e| !matches!(e, WatchEvent::Bookmark(_))),
            Some(WatchEvent::Deleted(_))
        ),
        "an object leaving the selector is DELETED: {rest:?}"
    );
    assert!(
        rest.iter().any(|e| matches!(e, WatchEvent::Bookmark(_))),
        "{rest:?}"
    );
}

/// The store encodes each state once and shares it: after an update, every
/// watch's event, GET and LIST carry the new object, not a stale encoding.
#[tokio::test]
async fn every_watch_get_and_list_carry_the_updated_object() {
    let (_server, client) = server().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    cms.create(&PostParams::default(), &cm("a")).await.unwrap();
    let rv = cms.get("a").await.unwrap().resource_version().unwrap();
    let mut first = cms
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    let mut second = cms
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    for value in ["one", "two"] {
        let patch = Patch::Merge(json!({"data": {"k": value}}));
        let patched = cms
            .patch("a", &PatchParams::default(), &patch)
            .await
            .unwrap();
        for events in [&mut first, &mut second] {
            match next(events).await.unwrap() {
                WatchEvent::Modified(o) => {
                    assert_eq!(o.data.unwrap()["k"], value);
                    assert_eq!(
                        o.metadata.resource_version,
                        patched.metadata.resource_version
                    );
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        let got = cms.get("a").await.unwrap();
        assert_eq!(got.data.unwrap()["k"], value);
        assert_eq!(
            got.metadata.resource_version,
            patched.metadata.resource_version
        );
        let listed = cms.list(&ListParams::default()).await.unwrap();
        assert_eq!(listed.items.len(), 1);
        assert_eq!(listed.items[0].data.as_ref().unwrap()["k"], value);
    }
    // Deleted: the event carries the last state under the deletion's version.
    cms.delete("a", &DeleteParams::default()).await.unwrap();
    for events in [&mut first, &mut second] {
        match next(events).await.unwrap() {
            WatchEvent::Deleted(o) => assert_eq!(o.data.unwrap()["k"], "two"),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(cms.get_opt("a").await.unwrap().is_none());
    assert!(
        cms.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}
