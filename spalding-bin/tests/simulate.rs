//! End to end: the real `spalding simulate` binary, as the README runs it.
//! Every run is bounded by `--timeout`, so a broken flow fails, not hangs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn spalding(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spalding"))
        .args(args)
        .output()
        .unwrap()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("spalding-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Every emitted file of `party` and its text.
fn emitted(dir: &Path, party: &str) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir.join(party))
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn two_parties_reach_ready_and_every_object_is_emitted() {
    let dir = temp_dir("simulate-ready");
    let output = spalding(&[
        "simulate",
        "--parties",
        "2",
        "--auto-admit",
        "--emit",
        dir.to_str().unwrap(),
        "--timeout",
        "90",
    ]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    for line in [
        "party-0: partner-info https://127.0.0.1:",
        "fingerprint sha256:",
        "simulation driver: key generation Jobs and foundation service readiness are simulated",
        "party-0: created → admission",
        "party-1: admitted party-0 (sha256:",
        "party-1: starting → ready",
        "all 2 parties ready ",
        "API writes",
        &format!("wrote every object to {}", dir.display()),
    ] {
        assert!(stdout.contains(line), "{line:?} missing from\n{stdout}");
    }
    assert!(!stdout.contains("PRIVATE KEY") && !stderr.contains("PRIVATE KEY"));

    for party in ["party-0", "party-1"] {
        let files = emitted(&dir, party);
        let find = |suffix: &str| {
            files
                .iter()
                .find(|(name, _)| name.ends_with(suffix))
                .unwrap_or_else(|| panic!("{party}: no *{suffix} in {files:?}"))
        };
        let (_, vc) = find("-virtualcloud-demo.yaml");
        assert!(vc.contains("state: ready"), "{vc}");
        let (_, share) = find("-secret-io.carbynestack.engine.params.secret.yaml");
        assert!(share.contains("cmVkYWN0ZWQ="), "{share}");
        find("-job-demo-keygen.yaml");
        for (name, yaml) in &files {
            // Plain or base64 ("-----BEGIN"), no PEM block is in a Secret.
            assert!(!yaml.contains("PRIVATE KEY"), "{name} holds a private key");
            assert!(!yaml.contains("LS0tLS1CRUdJTi"), "{name} holds a PEM block");
        }
        let (_, identity) = find("-secret-spalding-identity.yaml");
        assert!(
            identity.contains("tls.key: cmVkYWN0ZWQ="),
            "the identity's key is redacted: {identity}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn at_the_timeout_it_fails_naming_each_partys_blocking_condition() {
    let dir = temp_dir("simulate-timeout");
    // Nobody admits anybody: every party waits in admission.
    let output = spalding(&[
        "simulate",
        "--parties",
        "2",
        "--emit",
        dir.to_str().unwrap(),
        "--timeout",
        "4",
    ]);
    let (stdout, stderr) = text(&output);
    assert!(!output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("waiting for admissions (or rerun with --auto-admit)"),
        "{stdout}"
    );
    assert!(stdout.contains("spalding admit --kubeconfig "), "{stdout}");
    assert!(stderr.contains("timed out after "), "{stderr}");
    for party in ["party-0", "party-1"] {
        let waiting = format!("{party}: admission, ");
        assert!(
            stderr.contains(&waiting),
            "{waiting:?} missing from\n{stderr}"
        );
        assert!(!emitted(&dir, party).is_empty());
    }
    assert!(
        stderr.contains("  PartnersAdmitted=False (AwaitingAdmission): "),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn one_party_is_refused() {
    let output = spalding(&["simulate", "--parties", "1"]);
    let (_, stderr) = text(&output);
    assert!(!output.status.success());
    assert!(
        stderr.contains("a Virtual Cloud needs at least 2 parties, not 1"),
        "{stderr}"
    );
}
