//! End to end: a two-party simulation without `--auto-admit` prints
//! `spalding admit` commands; running them with the real binary against the
//! simulation's API servers (through the printed kubeconfigs) admits every
//! partner and the VC forms. On the way: a wrong `--fingerprint` and a
//! "no" at the prompt are refused with nothing created, and `spalding
//! status` reads the same API servers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::Api;
use kube::api::ListParams;
use spalding_k8s::crd::VirtualCloudPartnerAdmission;
use spalding_k8s::simulation::{self, Options, Print};

async fn spalding(args: Vec<String>, stdin: &'static str) -> Output {
    tokio::task::spawn_blocking(move || {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_spalding"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

fn words(command: &str) -> Vec<String> {
    command
        .split_whitespace()
        .skip(1) // `spalding`
        .map(str::to_owned)
        .collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `args` until it succeeds, or until its stderr contains `until`.
async fn retry(args: &[String], stdin: &'static str, until: Option<&str>) -> Output {
    for _ in 0..120 {
        let output = spalding(args.to_vec(), stdin).await;
        let stderr = text(&output.stderr);
        let done = match until {
            None => output.status.success(),
            Some(expected) => stderr.contains(expected),
        };
        if done {
            return output;
        }
        // The partner record appears once the operator has fetched the partner.
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("{args:?} never got there");
}

async fn admissions(kubeconfig: &str) -> usize {
    let client = spalding_k8s::status::client(Some(kubeconfig.as_ref()), None)
        .await
        .unwrap();
    Api::<VirtualCloudPartnerAdmission>::namespaced(client, "default")
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn printed_admit_commands_form_the_vc_and_a_wrong_fingerprint_is_refused() {
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    let print: Print = Arc::new(move |line: &str| sink.lock().unwrap().push(line.to_owned()));
    let options = Options {
        parties: 2,
        auto_admit: false,
        timeout: Duration::from_secs(90),
        ..Options::default()
    };
    let simulation = tokio::spawn(simulation::run(options, print));

    let mut commands = Vec::new();
    for _ in 0..200 {
        commands = lines
            .lock()
            .unwrap()
            .iter()
            .flat_map(|l| l.lines())
            .filter(|l| l.starts_with("spalding admit "))
            .map(str::to_owned)
            .collect();
        if commands.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(commands.len(), 2, "one command per party and partner");
    let first = words(&commands[0]);
    let kubeconfig = first[first.iter().position(|w| w == "--kubeconfig").unwrap() + 1].clone();

    // A fingerprint that is not the partner's: refused, nothing created.
    let mut wrong = first.clone();
    let at = wrong.iter().position(|w| w == "--fingerprint").unwrap() + 1;
    wrong[at] = format!("sha256:{}", "0".repeat(64));
    let refused = retry(&wrong, "", Some("refusing to admit")).await;
    assert!(!refused.status.success());
    assert!(
        text(&refused.stdout).contains("fingerprint:"),
        "the partner was shown"
    );
    assert_eq!(admissions(&kubeconfig).await, 0);

    // "n" at the prompt: not admitted.
    let asking: Vec<String> = first.iter().filter(|w| *w != "--yes").cloned().collect();
    let declined = spalding(asking, "n\n").await;
    assert!(!declined.status.success());
    assert!(
        text(&declined.stderr).contains("? [y/N]"),
        "{}",
        text(&declined.stderr)
    );
    assert!(text(&declined.stderr).contains("not admitted"));
    assert_eq!(admissions(&kubeconfig).await, 0);

    for command in &commands {
        let admitted = retry(&words(command), "", None).await;
        assert!(
            text(&admitted.stdout).contains("admitted party-"),
            "{}",
            text(&admitted.stdout)
        );
    }
    assert_eq!(admissions(&kubeconfig).await, 1);

    let status = spalding(
        vec![
            "status".into(),
            "--kubeconfig".into(),
            kubeconfig.clone(),
            "demo".into(),
        ],
        "",
    )
    .await;
    let shown = text(&status.stdout);
    assert!(status.status.success(), "{}", text(&status.stderr));
    assert!(shown.starts_with("Virtual cloud default/demo: "), "{shown}");
    assert!(shown.contains("PARTNER  ADMITTED"), "{shown}");
    assert!(shown.contains("LAST FETCH"), "{shown}");
    assert!(shown.contains(" ok, #"), "the partner was fetched: {shown}");

    let report = simulation.await.unwrap().unwrap();
    assert!(report.ready, "{}", report.to_text());
}
