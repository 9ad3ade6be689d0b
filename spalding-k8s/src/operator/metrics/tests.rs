//! The metrics endpoint exposes every named series, and reconciles, fetches,
//! states, admissions and key generation outcomes move them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use spalding_core::certificate::Fingerprint;
use spalding_core::condition::{Condition, ConditionStatus};
use spalding_core::configuration::Formation;
use spalding_core::machine::Plan;
use spalding_core::parameters::ValidatedParameters;
use spalding_core::spec::VirtualCloudStatus;

use super::*;

fn key(name: &str) -> VcKey {
    VcKey::new("default", name)
}

fn keys_generated(status: ConditionStatus, reason: &str, at: &str) -> Condition {
    Condition {
        type_: types::KEYS_GENERATED.to_owned(),
        status,
        reason: reason.to_owned(),
        message: String::new(),
        observed_generation: Some(1),
        last_transition_time: Timestamp::new(at),
    }
}

fn outcome(state: State, actions: Vec<Action>) -> Outcome {
    Outcome {
        state: Some(state),
        plan: Plan { actions },
    }
}

fn status_with(condition: Condition) -> Action {
    Action::UpdateStatus(Box::new(VirtualCloudStatus {
        conditions: vec![condition],
        ..VirtualCloudStatus::default()
    }))
}

/// The value of the sample line starting with `series` (labels included).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn every_named_series_is_exposed_with_help_and_type() {
    let metrics = Metrics::new();
    let text = metrics.encode().unwrap();
    assert_eq!(
        sample(&text, "spalding_virtual_clouds{state=\"ready\"}"),
        Some(0.0)
    );
    assert_eq!(sample(&text, "spalding_leader"), Some(0.0));
    // Labelled series appear with their first sample.
    record_one_of_each(&metrics);
    let text = metrics.encode().unwrap();
    for (name, kind) in [
        ("spalding_reconciles", "counter"),
        ("spalding_reconcile_errors", "counter"),
        ("spalding_partner_fetch_duration_seconds", "histogram"),
        ("spalding_partner_fetch_failures", "counter"),
        ("spalding_virtual_clouds", "gauge"),
        ("spalding_admissions_bound", "counter"),
        ("spalding_key_generations", "counter"),
        ("spalding_leader", "gauge"),
    ] {
        assert!(
            text.contains(&format!("# TYPE {name} {kind}\n")),
            "{name}:\n{text}"
        );
        assert!(text.contains(&format!("# HELP {name} ")), "{name}");
    }
    assert_eq!(
        sample(&text, "spalding_virtual_clouds{state=\"ready\"}"),
        Some(1.0)
    );
    assert!(text.ends_with("# EOF\n"));
}

fn record_one_of_each(metrics: &Metrics) {
    let now = Timestamp::new("2026-01-01T00:00:10Z");
    let fingerprint: Fingerprint = format!("sha256:{}", "ab".repeat(32)).parse().unwrap();
    let actions = vec![
        Action::BindAdmission {
            admission: "foo-b".into(),
            fingerprint,
        },
        Action::LaunchKeyGeneration(Box::new(Formation {
            player_id: 0,
            parameters: ValidatedParameters::carbyne_stack_default(),
            members: Vec::new().into(),
        })),
    ];
    metrics.reconciled(&key("foo"), &outcome(State::Ready, actions), &now);
    metrics.failed(&key("foo"), &ReconcileFailure::NoNamespace("foo".into()));
    let b = Endpoint::new("https://b.example").unwrap();
    metrics.fetched(&b, Duration::from_millis(3), false);
}

#[test]
fn reconciles_move_counts_states_admissions_and_key_generation_outcomes() {
    let metrics = Metrics::new();
    let now = Timestamp::new("2026-01-01T00:00:10Z");
    let earlier = "2026-01-01T00:00:00Z";
    let fingerprint: Fingerprint = format!("sha256:{}", "ab".repeat(32)).parse().unwrap();
    metrics.reconciled(
        &key("foo"),
        &outcome(
            State::Initializing,
            vec![
                Action::BindAdmission {
                    admission: "foo-b".into(),
                    fingerprint,
                },
                Action::LaunchKeyGeneration(Box::new(Formation {
                    player_id: 0,
                    parameters: ValidatedParameters::carbyne_stack_default(),
                    members: Vec::new().into(),
                })),
            ],
        ),
        &now,
    );
    metrics.reconciled(&key("bar"), &outcome(State::Admission, vec![]), &now);
    // Succeeded in this reconcile: counted; a status repeating an older success: not.
    metrics.reconciled(
        &key("foo"),
        &outcome(
            State::Starting,
            vec![status_with(keys_generated(
                ConditionStatus::True,
                reasons::GENERATED,
                "2026-01-01T00:00:10Z",
            ))],
        ),
        &now,
    );
    metrics.reconciled(
        &key("foo"),
        &outcome(
            State::Starting,
            vec![status_with(keys_generated(
                ConditionStatus::True,
                reasons::GENERATED,
                earlier,
            ))],
        ),
        &now,
    );
    metrics.reconciled(
        &key("baz"),
        &outcome(
            State::Initializing,
            vec![status_with(keys_generated(
                ConditionStatus::False,
                reasons::KEY_GENERATION_FAILED,
                "2026-01-01T00:00:10Z",
            ))],
        ),
        &now,
    );
    let text = metrics.encode().unwrap();
    let vc = |name: &str| format!("namespace=\"default\",virtual_cloud=\"{name}\"");
    assert_eq!(
        sample(
            &text,
            &format!("spalding_reconciles_total{{{}}}", vc("foo"))
        ),
        Some(3.0)
    );
    assert_eq!(
        sample(
            &text,
            &format!("spalding_admissions_bound_total{{{}}}", vc("foo"))
        ),
        Some(1.0)
    );
    for (name, outcome, count) in [
        ("foo", "launched", 1.0),
        ("foo", "succeeded", 1.0),
        ("baz", "failed", 1.0),
    ] {
        let series = format!(
            "spalding_key_generations_total{{{},outcome=\"{outcome}\"}}",
            vc(name)
        );
        assert_eq!(sample(&text, &series), Some(count), "{series}\n{text}");
    }
    assert_eq!(
        sample(&text, "spalding_virtual_clouds{state=\"starting\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "spalding_virtual_clouds{state=\"initializing\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "spalding_virtual_clouds{state=\"admission\"}"),
        Some(1.0)
    );

    metrics.removed(&key("bar"));
    let text = metrics.encode().unwrap();
    assert_eq!(
        sample(&text, "spalding_virtual_clouds{state=\"admission\"}"),
        Some(0.0)
    );

    // A replica that stops leading reports no states: the new leader does.
    metrics.set_leader(true);
    metrics.set_leader(false);
    let text = metrics.encode().unwrap();
    assert_eq!(
        sample(&text, "spalding_virtual_clouds{state=\"starting\"}"),
        Some(0.0)
    );
    assert_eq!(sample(&text, "spalding_leader"), Some(0.0));
}

#[test]
fn failures_and_fetches_are_counted_per_vc_and_partner() {
    let metrics = Metrics::new();
    let error = ReconcileFailure::NoNamespace("foo".into());
    metrics.failed(&key("foo"), &error);
    let b = Endpoint::new("https://b.example").unwrap();
    metrics.fetched(&b, Duration::from_millis(30), true);
    metrics.fetched(&b, Duration::from_millis(3), false);
    metrics.set_leader(true);
    let text = metrics.encode().unwrap();
    assert_eq!(
        sample(
            &text,
            "spalding_reconcile_errors_total{namespace=\"default\",virtual_cloud=\"foo\",transient=\"false\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "spalding_partner_fetch_failures_total{partner=\"https://b.example\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "spalding_partner_fetch_duration_seconds_count{partner=\"https://b.example\"}"
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            "spalding_partner_fetch_duration_seconds_bucket{le=\"0.005\",partner=\"https://b.example\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(sample(&text, "spalding_leader"), Some(1.0));
}

#[tokio::test]
async fn the_endpoint_serves_openmetrics_text() {
    let metrics = Arc::new(Metrics::new());
    metrics.set_leader(true);
    let get = |path: &str| Request::get(path).body(()).unwrap();
    let response = respond(&metrics, &get("/metrics"));
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert!(
        String::from_utf8(body.to_vec())
            .unwrap()
            .contains("spalding_leader 1\n")
    );
    assert_eq!(
        respond(&metrics, &get("/other")).status(),
        StatusCode::NOT_FOUND
    );
    let post = Request::post("/metrics").body(()).unwrap();
    assert_eq!(
        respond(&metrics, &post).status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
}
