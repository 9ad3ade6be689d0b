//! Routing: HTTP requests to discovery documents and verbs on objects.
//!
//! Paths served: `/version`, `/api`, `/apis`, `/api/v1`, `/apis/{g}`,
//! `/apis/{g}/{v}`; for a resource `r`, `{prefix}/namespaces/{ns}/r[/{name}[/status]]`
//! for namespaced kinds and `{prefix}/r[/{name}[/status]]` for cluster-scoped
//! ones and for list and watch across all namespaces, where `{prefix}` is
//! `/api/v1` or `/apis/{g}/{v}`. Query parameters understood: `watch`,
//! `labelSelector`, `fieldSelector`, `resourceVersion`,
//! `allowWatchBookmarks`, `sendInitialEvents`, `timeoutSeconds`,
//! `fieldManager`, `propagationPolicy`; `limit` and `continue` are ignored
//! (every list is one page); `dryRun` is refused with 400.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde_json::{Value, json};

use super::Shared;
use super::error::{ApiError, Subject};
use super::faults::{Decision, RequestKind};
use super::ops::{DeleteOptions, Propagation, Target};
use super::patch::{self, PatchType};
use super::selector::{FieldSelector, LabelSelector};
use super::watch::{self, WatchRequest};

/// The body of every response.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Version,
    CoreVersions,
    Groups,
    Group(String),
    Resources(String, String),
    Resource(ResourcePath),
}

/// A path under a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ResourcePath {
    group: String,
    version: String,
    plural: String,
    namespace: Option<String>,
    name: Option<String>,
    status: bool,
}

fn route(path: &str) -> Option<Route> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match parts.as_slice() {
        ["version"] => return Some(Route::Version),
        ["api"] => return Some(Route::CoreVersions),
        ["apis"] => return Some(Route::Groups),
        ["api", v] => return Some(Route::Resources(String::new(), (*v).into())),
        ["apis", g] => return Some(Route::Group((*g).into())),
        ["apis", g, v] => return Some(Route::Resources((*g).into(), (*v).into())),
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] if !g.is_empty() => (*g, *v, rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() && rest != ["status"] => {
            (Some(*ns), rest)
        }
        _ => (None, rest),
    };
    let (plural, name, status) = match rest {
        [plural] => (*plural, None, false),
        [plural, name] => (*plural, Some(*name), false),
        [plural, name, "status"] => (*plural, Some(*name), true),
        _ => return None,
    };
    if [version, plural]
        .iter()
        .chain(namespace.iter())
        .chain(name.iter())
        .any(|s| s.is_empty())
    {
        return None;
    }
    Some(Route::Resource(ResourcePath {
        group: group.into(),
        version: version.into(),
        plural: plural.into(),
        namespace: namespace.map(Into::into),
        name: name.map(Into::into),
        status,
    }))
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match text
                .get(i + 1..i + 3)
                .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                Some(b) => {
                    out.push(b);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The query parameters.
#[derive(Debug, Default)]
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(query: Option<&str>) -> Self {
        Self(
            query
                .unwrap_or_default()
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (decode(k), decode(v))
                })
                .collect(),
        )
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }
}

fn json_response(code: StatusCode, value: &Value) -> Response<Body> {
    json_bytes_response(
        code,
        Bytes::from(serde_json::to_vec(value).unwrap_or_default()),
    )
}

/// A response of JSON already encoded (the store keeps objects' JSON).
fn json_bytes_response(code: StatusCode, bytes: Bytes) -> Response<Body> {
    let mut response = Response::new(Full::new(bytes).boxed_unsync());
    *response.status_mut() = code;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

/// Answers one request; never fails (errors become `Status` responses).
pub async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let method = request.method().clone();
    if matches!(
        method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) {
        shared.writes.fetch_add(1, Ordering::Relaxed);
    }
    let path = request.uri().path().to_owned();
    if method != Method::GET {
        tracing::debug!(target: "spalding_k8s::apiserver::writes", server = %shared.address, %method, %path, "write");
    }
    let query = Query::parse(request.uri().query());
    let decision = if request.headers().contains_key(super::UNFAULTED_HEADER) {
        Decision::default()
    } else {
        shared.faults.decide(request_kind(&method, &query))
    };
    if let Some(delay) = decision.delay {
        tokio::time::sleep(delay).await;
    }
    let result = if decision.unavailable {
        Err(ApiError::internal(
            "injected fault: the server is unavailable",
        ))
    } else if decision.conflict {
        Err(ApiError::conflict(
            &Subject {
                name: path.rsplit('/').next().unwrap_or_default().to_owned(),
                ..Subject::default()
            },
            "injected fault: the object has been modified; please apply your changes to the latest version and try again",
        ))
    } else if decision.expire_watch {
        Ok(expired_watch(
            query.get("resourceVersion").unwrap_or_default(),
        ))
    } else {
        match dispatch(&shared, request, decision.watch_lifetime).await {
            Ok(_) if decision.lose_answer => Err(ApiError::internal(
                "injected fault: the write was applied, the answer lost",
            )),
            other => other,
        }
    };
    let response = match result {
        Ok(response) => response,
        Err(error) => {
            tracing::debug!(%method, %path, %error, "apiserver request failed");
            json_response(error.code, &error.status())
        }
    };
    Ok(response)
}

/// What the fault layer sees of a request.
fn request_kind(method: &Method, query: &Query) -> RequestKind {
    match *method {
        Method::GET if query.flag("watch") => RequestKind::Watch {
            resuming: query
                .get("resourceVersion")
                .is_some_and(|rv| !rv.is_empty() && rv != "0"),
        },
        Method::PUT | Method::PATCH => RequestKind::Update,
        Method::POST | Method::DELETE => RequestKind::Write,
        _ => RequestKind::Read,
    }
}

/// A watch that ends at once with a 410 Expired `ERROR` event, as for a
/// compacted resourceVersion.
fn expired_watch(requested: &str) -> Response<Body> {
    let rv = requested.parse::<u64>().unwrap_or_default();
    let event =
        json!({"type": "ERROR", "object": ApiError::expired(rv, rv.saturating_add(1)).status()});
    let mut bytes = serde_json::to_vec(&event).unwrap_or_default();
    bytes.push(b'\n');
    let mut response = Response::new(Full::new(Bytes::from(bytes)).boxed_unsync());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

async fn body(shared: &Shared, request: Request<Incoming>) -> Result<Bytes, ApiError> {
    let limit = shared.config.max_body;
    Limited::new(request.into_body(), limit)
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .map_err(|_| ApiError::too_large(limit))
}

async fn dispatch(
    shared: &Arc<Shared>,
    request: Request<Incoming>,
    watch_lifetime: Option<Duration>,
) -> Result<Response<Body>, ApiError> {
    let path = request.uri().path().to_owned();
    let query = Query::parse(request.uri().query());
    let method = request.method().clone();
    let Some(route) = route(&path) else {
        return Err(ApiError::no_route(&path));
    };
    let read = method == Method::GET;
    let doc = |value: Option<Value>| {
        value
            .map(|v| json_response(StatusCode::OK, &v))
            .ok_or_else(|| ApiError::no_route(&path))
    };
    let path_for_errors = path.clone();
    let not_allowed = || ApiError::method_not_allowed(&method, &path_for_errors);
    let resource = match route {
        Route::Version if read => {
            return doc(Some(json!({
                "major": "1", "minor": "33", "gitVersion": "v1.33.0-spalding-inmemory",
                "gitCommit": "", "gitTreeState": "clean", "buildDate": "1970-01-01T00:00:00Z",
                "goVersion": "", "compiler": "rust", "platform": "in-memory",
            })));
        }
        Route::CoreVersions if read => {
            return doc(Some(shared.lock().registry.core_versions(&shared.address)));
        }
        Route::Groups if read => return doc(Some(shared.lock().registry.group_list())),
        Route::Group(g) if read => return doc(shared.lock().registry.group(&g)),
        Route::Resources(g, v) if read => return doc(shared.lock().registry.resource_list(&g, &v)),
        Route::Resource(r) => r,
        _ => return Err(not_allowed()),
    };
    if query.get("dryRun").is_some_and(|v| !v.is_empty()) {
        return Err(ApiError::bad_request(
            "dryRun is not supported by the in-memory API server",
        ));
    }
    let rt = shared
        .lock()
        .registry
        .find(&resource.group, &resource.version, &resource.plural)
        .ok_or_else(|| ApiError::no_route(&path))?;
    let scoped_right = match (&resource.namespace, &resource.name) {
        (Some(_), _) => rt.namespaced,
        (None, Some(_)) => !rt.namespaced,
        (None, None) => true,
    };
    if !scoped_right || (resource.status && !rt.status) {
        return Err(ApiError::no_route(&path));
    }
    let labels = LabelSelector::parse(query.get("labelSelector").unwrap_or_default())?;
    let fields = FieldSelector::parse(query.get("fieldSelector").unwrap_or_default())?;
    let target = Target {
        rt: rt.clone(),
        version: resource.version.clone(),
        namespace: resource.namespace.clone().unwrap_or_default(),
        name: resource.name.clone().unwrap_or_default(),
        status: resource.status,
    };
    let all_namespaces = resource.namespace.is_none() && rt.namespaced;
    match (method.clone(), resource.name.is_some()) {
        (Method::GET, false) if query.flag("watch") => {
            let timeout = match query.get("timeoutSeconds") {
                Some(t) => Some(Duration::from_secs(t.parse().map_err(|_| {
                    ApiError::bad_request(format!("invalid timeoutSeconds: {t:?}"))
                })?)),
                None => None,
            };
            // A dropped watch (fault injection) ends early.
            let timeout = match (timeout, watch_lifetime) {
                (Some(t), Some(l)) => Some(t.min(l)),
                (t, l) => t.or(l),
            };
            let request = WatchRequest {
                rt,
                version: resource.version,
                namespace: resource.namespace,
                labels,
                fields,
                resource_version: query.get("resourceVersion").map(str::to_owned),
                bookmarks: query.flag("allowWatchBookmarks"),
                send_initial_events: query.flag("sendInitialEvents"),
                timeout,
            };
            let stream = {
                let state = shared.lock();
                watch::start(
                    &state,
                    request,
                    shared.shutdown.clone(),
                    shared.config.bookmark_interval,
                )?
            };
            let mut response = Response::new(stream.boxed_unsync());
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/json"),
            );
            Ok(response)
        }
        (Method::GET, false) => {
            let namespace = (!all_namespaces && rt.namespaced).then_some(target.namespace.as_str());
            let list = shared
                .lock()
                .list(&rt, &target.version, namespace, &labels, &fields);
            Ok(json_bytes_response(StatusCode::OK, list))
        }
        (Method::GET, true) => Ok(json_bytes_response(
            StatusCode::OK,
            shared.lock().get_json(&target)?,
        )),
        (Method::POST, false) if !all_namespaces => {
            let object = patch::parse_json(&body(shared, request).await?)?;
            let created = shared.lock().create(&target, object)?;
            Ok(json_response(StatusCode::CREATED, &created))
        }
        (Method::PUT, true) => {
            let object = patch::parse_json(&body(shared, request).await?)?;
            let replaced = shared.lock().replace(&target, object)?;
            Ok(json_response(StatusCode::OK, &replaced))
        }
        (Method::PATCH, true) => {
            let content_type = request
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let kind = PatchType::from_content_type(&content_type)?;
            let bytes = body(shared, request).await?;
            let mut state = shared.lock();
            let existed = state.get(&target).is_ok();
            let patched = state.patch(&target, kind, &bytes, query.get("fieldManager"))?;
            let code = if existed {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            Ok(json_response(code, &patched))
        }
        (Method::DELETE, named) if !all_namespaces || named => {
            let bytes = body(shared, request).await?;
            let options = delete_options(&query, &bytes)?;
            let mut state = shared.lock();
            let result = if named {
                state.delete(&target, &options)?
            } else {
                state.delete_collection(&target, &labels, &fields, &options)?
            };
            Ok(json_response(StatusCode::OK, &result))
        }
        _ => Err(not_allowed()),
    }
}

fn delete_options(query: &Query, body: &[u8]) -> Result<DeleteOptions, ApiError> {
    let body: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        patch::parse_json(body)?
    };
    let policy = query
        .get("propagationPolicy")
        .or_else(|| body.get("propagationPolicy").and_then(Value::as_str));
    let propagation = match policy {
        None | Some("" | "Background" | "Foreground") => Propagation::Background,
        Some("Orphan") => Propagation::Orphan,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "unknown propagationPolicy {other:?}"
            )));
        }
    };
    let orphan = body.get("orphanDependents").and_then(Value::as_bool) == Some(true);
    let precondition = |field: &str| {
        body.pointer(&format!("/preconditions/{field}"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    Ok(DeleteOptions {
        propagation: if orphan {
            Propagation::Orphan
        } else {
            propagation
        },
        resource_version: precondition("resourceVersion"),
        uid: precondition("uid"),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::panic)]
    use super::*;

    #[test]
    fn routes() {
        let r = |p: &str| route(p);
        assert_eq!(r("/version"), Some(Route::Version));
        assert_eq!(
            r("/apis/batch/v1"),
            Some(Route::Resources("batch".into(), "v1".into()))
        );
        let Some(Route::Resource(p)) =
            r("/apis/carbynestack.io/v1/namespaces/ns/virtualclouds/foo/status")
        else {
            panic!("no route")
        };
        assert_eq!(
            (p.namespace.as_deref(), p.name.as_deref(), p.status),
            (Some("ns"), Some("foo"), true)
        );
        let Some(Route::Resource(p)) = r("/api/v1/namespaces/ns") else {
            panic!("no route")
        };
        assert_eq!(
            (p.plural.as_str(), p.name.as_deref()),
            ("namespaces", Some("ns"))
        );
        let Some(Route::Resource(p)) = r("/api/v1/configmaps") else {
            panic!("no route")
        };
        assert_eq!((p.namespace, p.name), (None, None));
        assert_eq!(r("/api/v1/namespaces/ns/configmaps/a/b/c"), None);
        assert_eq!(r("/apis//v1/x"), None);
        assert_eq!(r("/nope"), None);
    }

    #[test]
    fn query_decoding() {
        let q = Query::parse(Some("labelSelector=a%3D1%2Cb+in+%28x%29&watch=1&bad=%zz%"));
        assert_eq!(q.get("labelSelector"), Some("a=1,b in (x)"));
        assert!(q.flag("watch"));
        assert_eq!(q.get("bad"), Some("%zz%"));
    }
}
