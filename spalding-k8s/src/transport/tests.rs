//! Unit tests of the transport's small checks.

use super::*;

#[test]
fn json_content_types() {
    assert!(is_json("application/json"));
    assert!(is_json("Application/JSON; charset=utf-8"));
    assert!(!is_json("text/html"));
    assert!(!is_json(""));
    assert!(!is_json("application/jsonp"));
}

#[test]
fn vc_names_that_cannot_be_paths_are_refused() {
    for bad in ["", "a/b", "../x", "A", "a?b", "a%2f"] {
        assert!(check_vc_name(bad, "https://x").is_err(), "{bad}");
    }
    assert!(check_vc_name("vc-1.prod", "https://x").is_ok());
}

#[test]
fn only_connection_errors_and_5xx_are_retryable() {
    let url = String::new();
    assert!(
        FetchError::Connect {
            url: url.clone(),
            reason: String::new()
        }
        .is_retryable()
    );
    assert!(
        FetchError::Status {
            url: url.clone(),
            status: 503
        }
        .is_retryable()
    );
    assert!(
        !FetchError::Status {
            url: url.clone(),
            status: 404
        }
        .is_retryable()
    );
    assert!(!FetchError::TooLarge { url, limit: 1 }.is_retryable());
}
