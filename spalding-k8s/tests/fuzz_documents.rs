//! Fuzzing of what the transport parses from a partner: the document bytes
//! as served (`parse_document`), its signature (`verify_signature`) and the
//! core's checks (`verify`), and PEM CA bundles (`parse_ca_bundle`). Seeds
//! are real signed documents (ECDSA P-256 from rcgen) mutated byte by byte
//! and field by field. Properties: nothing panics, and no mutation that
//! changes the signed facts is accepted (the signature must fail whenever the
//! canonical bytes differ from the seed's).
//!
//! `cargo test` runs a smoke of 256 cases per target; a real run sets
//! `PROPTEST_CASES` (see FUZZING.md):
//! `PROPTEST_CASES=1000000 cargo test --release -p spalding-k8s --test fuzz_documents`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::LazyLock;

use proptest::prelude::*;
use serde_json::Value;
use spalding_core::document::{PartnerDocument, canonical_bytes};
use spalding_core::spec::{Endpoint, Partner};
use spalding_k8s::signing::verify_signature;
use spalding_k8s::transport::{parse_ca_bundle, parse_document};
use support::Party;

const VC: &str = "vc-one";

/// The seed: one signed document, its bytes and its canonical bytes.
struct Seed {
    party: Party,
    endpoint: Endpoint,
    bytes: Vec<u8>,
    canonical: Vec<u8>,
}

static SEED: LazyLock<Seed> = LazyLock::new(|| {
    let party = Party::new("party-b");
    let endpoint = Endpoint::new("https://party-b.example").unwrap();
    let document = party.document(VC, &endpoint, 5);
    let canonical = canonical_bytes(&document.body, document.sequence).unwrap();
    Seed {
        bytes: serde_json::to_vec(&document).unwrap(),
        canonical,
        party,
        endpoint,
    }
});

const TOKENS: &[&str] = &[
    "\"",
    "\\",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "null",
    "true",
    "-1",
    "0",
    "1e999",
    "18446744073709551616",
    "\\u0000",
    "\\ud800",
    "=",
    "\n",
    "A",
    "/",
    "+",
];

#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, u8),
    Remove(usize, usize),
    Splice(usize, usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let at = any::<usize>();
    prop_oneof![
        (at, 0u8..8).prop_map(|(i, b)| Edit::Flip(i, 1 << b)),
        (at, any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
        (at, 1usize..32).prop_map(|(i, n)| Edit::Remove(i, n)),
        (at, 0..TOKENS.len()).prop_map(|(i, t)| Edit::Splice(i, t)),
        at.prop_map(Edit::Truncate),
    ]
}

fn mutate(seed: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for edit in edits {
        let len = bytes.len().max(1);
        match *edit {
            Edit::Flip(i, mask) => {
                if let Some(b) = bytes.get_mut(i % len) {
                    *b ^= mask;
                }
            }
            Edit::Insert(i, v) => bytes.insert(i % (bytes.len() + 1), v),
            Edit::Remove(i, n) => {
                let start = i % len;
                let end = (start + n).min(bytes.len());
                if start < end {
                    bytes.drain(start..end);
                }
            }
            Edit::Splice(i, t) => {
                let at = i % (bytes.len() + 1);
                bytes.splice(at..at, TOKENS[t].bytes());
            }
            Edit::Truncate(i) => bytes.truncate(i % len),
        }
    }
    bytes
}

/// Parses, verifies the signature and the content; a document whose
/// signature verifies must carry exactly the seed's signed facts.
fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
    let Ok(document) = parse_document(bytes) else {
        return Ok(());
    };
    let signed = verify_signature(&document);
    let canonical = canonical_bytes(&document.body, document.sequence).unwrap();
    if signed.is_ok() {
        prop_assert_eq!(&canonical, &SEED.canonical, "a changed document verified");
    }
    let partner = Partner {
        name: SEED.party.name.clone(),
        endpoint: SEED.endpoint.clone(),
    };
    let _ = document.verify(VC, &partner);
    Ok(())
}

/// A JSON value for field replacement.
fn json_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        ".{0,40}".prop_map(Value::String),
        "[A-Za-z0-9+/=]{0,120}".prop_map(Value::String),
        prop::collection::vec(any::<u8>(), 0..8).prop_map(|v| serde_json::json!(v)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    /// Byte-level mutations of a signed document.
    #[test]
    fn fuzz_signed_document_bytes(edits in prop::collection::vec(edit(), 1..8)) {
        check(&mutate(&SEED.bytes, &edits))?;
    }

    /// A top-level field replaced, removed or the signature bit-flipped.
    #[test]
    fn fuzz_signed_document_fields(field in 0usize..16, value in prop::option::of(json_value()), flip in any::<(usize, u8)>()) {
        let mut document: Value = serde_json::from_slice(&SEED.bytes).unwrap();
        let map = document.as_object_mut().unwrap();
        let key = map.keys().nth(field % map.len()).cloned().unwrap();
        match value {
            Some(value) => { map.insert(key, value); }
            None => { map.remove(&key); }
        }
        check(&serde_json::to_vec(&document).unwrap())?;
        // The signature alone altered.
        let mut original: PartnerDocument = serde_json::from_slice(&SEED.bytes).unwrap();
        if let Some(signature) = original.signature.as_mut() {
            let mut bytes = signature.clone().into_bytes();
            let i = flip.0 % bytes.len();
            bytes[i] ^= 1 << (flip.1 % 7);
            *signature = String::from_utf8_lossy(&bytes).into_owned();
            prop_assert!(verify_signature(&original).is_err(), "an altered signature verified");
        }
    }

    /// PEM CA bundles: mutated certificates and junk never panic.
    #[test]
    fn fuzz_ca_bundle(edits in prop::collection::vec(edit(), 0..8), junk in prop::collection::vec(any::<u8>(), 0..256)) {
        let pem = SEED.party.identity.pems().tls_crt.into_bytes();
        let _ = parse_ca_bundle(&mutate(&pem, &edits));
        let _ = parse_ca_bundle(&junk);
    }
}

#[test]
fn the_seed_verifies() {
    let document = parse_document(&SEED.bytes).unwrap();
    verify_signature(&document).unwrap();
    let partner = Partner {
        name: SEED.party.name.clone(),
        endpoint: SEED.endpoint.clone(),
    };
    document.verify(VC, &partner).unwrap();
}
