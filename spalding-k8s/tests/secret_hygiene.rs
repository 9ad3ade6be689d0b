//! Secret hygiene over a whole simulated run: three parties form a VC with
//! every log line captured at TRACE level for every crate (Spalding, kube,
//! hyper, h2, rustls, reqwest, …), with some API server faults so error
//! paths run too. Afterwards the MAC key shares (decimal and hex, as stored
//! and converted) and the private keys (PEM body, each base64 line, the DER
//! as hex, and every Secret value as base64, the form the API carries) must
//! appear in no log line, printed line, report, Event, status, partner
//! record, partner document or any other object: only in their Secrets.
//!
//! One test per binary: the subscriber is process-global.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use spalding_core::configuration::{MAC_KEY_SECRET, MAC_KEY_SHARE_2, MAC_KEY_SHARE_P};
use spalding_k8s::apiserver::faults::FaultPlan;
use spalding_k8s::simulation::{Options, Print, run};

/// The captured log output.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A secret value and the forms it could leak in.
struct Needle {
    what: String,
    forms: Vec<String>,
}

fn decoded(secret: &Value, key: &str) -> String {
    let encoded = secret["data"][key].as_str().unwrap_or_default();
    String::from_utf8(STANDARD.decode(encoded).unwrap()).unwrap()
}

/// The forms of a MAC key share: as stored, in the other base, in the
/// Secret's base64; forms shorter than 8 characters are skipped (they would
/// match by chance).
fn share_needle(what: String, stored: &str, radix: u32) -> Needle {
    let value = u128::from_str_radix(stored.trim_start_matches("0x"), radix).unwrap();
    let forms = [
        stored.to_owned(),
        value.to_string(),
        format!("{value:x}"),
        format!("{value:X}"),
        STANDARD.encode(stored),
    ]
    .into_iter()
    .filter(|f| f.len() >= 8)
    .collect();
    Needle { what, forms }
}

/// The forms of a PEM private key: the joined base64 body, every full
/// base64 line, the DER as hex, the whole PEM as the Secret's base64.
fn key_needle(what: String, pem: &str) -> Needle {
    let lines: Vec<&str> = pem
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("-----"))
        .collect();
    let body = lines.concat();
    let der = STANDARD.decode(&body).unwrap();
    let mut forms = vec![body, hex::encode(&der), STANDARD.encode(pem)];
    forms.extend(
        lines
            .iter()
            .filter(|l| l.len() >= 40)
            .map(|l| (*l).to_owned()),
    );
    Needle { what, forms }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_leaves_its_secret() {
    let logs = Buffer::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .try_init()
        .unwrap();

    let printed = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = printed.clone();
    let print: Print = Arc::new(move |line: &str| sink.lock().unwrap().push(line.to_owned()));
    let options = Options {
        parties: 3,
        auto_admit: true,
        timeout: Duration::from_secs(150),
        keep_objects: true,
        faults: FaultPlan {
            seed: 99,
            unavailable: 20,
            lost_answer: 30,
            dropped_watch: 200,
            max_watch_lifetime: Duration::from_secs(3),
            ..FaultPlan::none()
        },
        ..Options::default()
    };
    let report = run(options, print).await.unwrap();
    assert!(report.ready, "{}", report.to_text());

    // The needles, from the Secrets that hold them.
    let mut needles = Vec::new();
    let mut keys = 0;
    for party in &report.parties {
        for secret in party.objects.iter().filter(|o| o["kind"] == "Secret") {
            let name = secret["metadata"]["name"].as_str().unwrap_or_default();
            if name == MAC_KEY_SECRET {
                for (key, radix) in [(MAC_KEY_SHARE_P, 10), (MAC_KEY_SHARE_2, 16)] {
                    needles.push(share_needle(
                        format!("{}'s {key}", party.name),
                        &decoded(secret, key),
                        radix,
                    ));
                }
            }
            for (key, value) in secret["data"].as_object().into_iter().flatten() {
                let text = String::from_utf8(STANDARD.decode(value.as_str().unwrap()).unwrap())
                    .unwrap_or_default();
                if text.contains("PRIVATE KEY-----") {
                    keys += 1;
                    needles.push(key_needle(format!("{}'s {name}/{key}", party.name), &text));
                }
            }
        }
    }
    assert_eq!(needles.len(), 3 * 2 + keys, "two MAC key shares per party");
    assert!(keys >= 3, "each party's TLS Secret holds its private key");

    // The haystacks: everything but the Secrets.
    let logs = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    for crate_name in ["spalding_k8s", "kube_client", "rustls", "h2", "hyper_util"] {
        assert!(
            logs.contains(crate_name),
            "{crate_name} logged nothing: is TRACE capture working?"
        );
    }
    let mut haystacks: Vec<(String, String)> = vec![
        ("TRACE logs".to_owned(), logs),
        (
            "printed lines".to_owned(),
            printed.lock().unwrap().join("\n"),
        ),
        ("report".to_owned(), report.to_text()),
    ];
    for party in &report.parties {
        for object in party.objects.iter().filter(|o| o["kind"] != "Secret") {
            let name = format!(
                "{}'s {} {}",
                party.name,
                object["kind"].as_str().unwrap_or_default(),
                object["metadata"]["name"].as_str().unwrap_or_default()
            );
            haystacks.push((name, object.to_string()));
        }
    }
    let kinds: Vec<&str> = haystacks.iter().map(|(n, _)| n.as_str()).collect();
    for kind in [
        "Event",
        "VirtualCloud demo",
        "VirtualCloudPartner",
        "partner-document",
    ] {
        assert!(
            kinds.iter().any(|k| k.contains(kind)),
            "no {kind} collected: {kinds:?}"
        );
    }

    // The search finds what it looks for: every needle is in its Secret.
    let secrets: String = report
        .parties
        .iter()
        .flat_map(|p| p.objects.iter().filter(|o| o["kind"] == "Secret"))
        .map(Value::to_string)
        .collect();
    for needle in &needles {
        assert!(
            needle.forms.iter().any(|f| secrets.contains(f.as_str())),
            "{} not found in its Secret",
            needle.what
        );
    }
    eprintln!(
        "searched {} haystacks ({} bytes of TRACE logs) for {} secrets in {} forms",
        haystacks.len(),
        haystacks[0].1.len(),
        needles.len(),
        needles.iter().map(|n| n.forms.len()).sum::<usize>()
    );

    let mut leaks = Vec::new();
    for needle in &needles {
        for (where_, text) in &haystacks {
            for form in &needle.forms {
                if text.contains(form.as_str()) {
                    leaks.push(format!("{} appears in {where_}", needle.what));
                }
            }
        }
    }
    assert!(leaks.is_empty(), "secrets leaked:\n{}", leaks.join("\n"));
}
