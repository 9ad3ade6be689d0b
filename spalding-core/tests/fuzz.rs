//! Fuzzing of everything the core parses from outside: MPC parameters,
//! PEM and DER certificates, endpoints, VC specs and partner documents (JSON
//! as a partner serves it, then `verify`). Inputs are valid seeds mutated at
//! the byte level (flips, insertions, deletions, splices of hostile tokens)
//! and at the JSON level (a field replaced by an arbitrary value or removed),
//! plus arbitrary strings. Every property is "never panics, and what is
//! accepted satisfies the type's invariants".
//!
//! `cargo test` runs a smoke of 256 cases per target; a real run sets
//! `PROPTEST_CASES` (see FUZZING.md):
//! `PROPTEST_CASES=1000000 cargo test --release -p spalding-core --test fuzz`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use serde_json::Value;
use spalding_core::certificate::{Certificate, MAX_CERTIFICATE_BYTES};
use spalding_core::document::PartnerDocument;
use spalding_core::name::PartyName;
use spalding_core::parameters::{MAX_DECIMAL_DIGITS, Parameters};
use spalding_core::spec::{
    Endpoint, MAX_ENDPOINT_LENGTH, MAX_PARTNERS, Partner, PartnerEntry, VirtualCloudSpec,
};

const CERT_PEM: &str = include_str!("../src/testdata/party-a.cert.pem");
const KEY_PEM: &str = include_str!("../src/testdata/test-only-party-a.key.pem");

/// Tokens that break parsers: JSON punctuation and extremes, PEM markers,
/// numbers at integer boundaries, odd Unicode.
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
    "-0",
    "18446744073709551616",
    "340282366920938463463374607431768211457",
    "\\u0000",
    "\\ud800",
    "\u{feff}",
    "\u{202e}",
    "-----BEGIN CERTIFICATE-----\n",
    "-----END CERTIFICATE-----\n",
    "-----BEGIN PRIVATE KEY-----\n",
    "-----BEGIN RSA PRIVATE KEY-----\n",
    "-----BEGIN ENCRYPTED PRIVATE KEY-----\n",
    "=",
    "\n",
    "\r\n",
    "https://",
    "http://",
    "@",
    "#",
    "?",
    "/",
    "%00",
    "[::1]",
    "169.254.169.254",
];

/// One edit of a byte string; positions are taken modulo the length.
#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Set(usize, u8),
    Insert(usize, u8),
    Remove(usize, usize),
    Splice(usize, usize),
    Duplicate(usize, usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let at = any::<usize>();
    prop_oneof![
        (at, 0u8..8).prop_map(|(i, b)| Edit::Flip(i, 1 << b)),
        (at, any::<u8>()).prop_map(|(i, b)| Edit::Set(i, b)),
        (at, any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
        (at, 1usize..64).prop_map(|(i, n)| Edit::Remove(i, n)),
        (at, 0..TOKENS.len()).prop_map(|(i, t)| Edit::Splice(i, t)),
        (at, 1usize..256).prop_map(|(i, n)| Edit::Duplicate(i, n)),
        at.prop_map(Edit::Truncate),
    ]
}

/// Applies `edits` to `seed`.
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
            Edit::Set(i, v) => {
                if let Some(b) = bytes.get_mut(i % len) {
                    *b = v;
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
            Edit::Duplicate(i, n) => {
                let start = i % len;
                let end = (start + n).min(bytes.len());
                if start < end {
                    let copy = bytes[start..end].to_vec();
                    bytes.splice(end..end, copy);
                }
            }
            Edit::Truncate(i) => bytes.truncate(i % len),
        }
    }
    bytes
}

/// Arbitrary JSON values, small and deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,40}".prop_map(Value::String),
        (0..TOKENS.len()).prop_map(|t| Value::String(TOKENS[t].to_owned())),
        "[0-9]{0,60}".prop_map(Value::String),
        Just(Value::String(CERT_PEM.to_owned())),
        Just(Value::String(KEY_PEM.to_owned())),
        Just(Value::String("x".repeat(MAX_CERTIFICATE_BYTES + 1))),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{0,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Decimal-ish strings: digits, the default prime mutated, junk, and long runs.
fn decimal() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{0,80}",
        "[ +\\-0-9a-fx_.eE]{0,40}",
        prop::collection::vec(edit(), 0..4).prop_map(|edits| {
            let seed = spalding_core::parameters::CARBYNE_STACK_DEFAULT_PRIME.as_bytes();
            String::from_utf8_lossy(&mutate(seed, &edits)).into_owned()
        }),
        (1usize..=MAX_DECIMAL_DIGITS + 2).prop_map(|n| "9".repeat(n)),
        ".{0,20}",
    ]
}

fn parameters() -> impl Strategy<Value = Parameters> {
    (
        decimal(),
        prop::option::of(decimal()),
        prop::option::of(decimal()),
        prop::option::of(prop_oneof![any::<u32>(), 0u32..300]),
        prop_oneof![any::<u32>(), 0u32..200],
        prop_oneof![any::<u32>(), 0u32..20],
    )
        .prop_map(
            |(prime, r, r_inv, word_size, gf2n_bit_length, gf2n_storage_size)| Parameters {
                prime,
                r,
                r_inv,
                word_size,
                gf2n_bit_length,
                gf2n_storage_size,
            },
        )
}

fn endpoint_text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,60}",
        "(https?|HTTPS|ftp)://[a-z0-9.:\\[\\]@?#%/ -]{0,40}",
        prop::collection::vec(edit(), 0..4).prop_map(|edits| {
            String::from_utf8_lossy(&mutate(b"https://spalding.party-b.example/base", &edits))
                .into_owned()
        }),
        (MAX_ENDPOINT_LENGTH - 8..MAX_ENDPOINT_LENGTH + 8)
            .prop_map(|n| format!("https://{}", "a".repeat(n))),
    ]
}

/// A seed partner document as JSON, built from the test certificate (the
/// signature is irrelevant here: the core does not check it).
fn seed_document() -> Value {
    serde_json::json!({
        "protocol": spalding_core::document::PROTOCOL_VERSION,
        "virtualCloud": "vc-one",
        "party": "party-a",
        "endpoint": "https://party-a.example",
        "parameters": Parameters::carbyne_stack_default(),
        "certificate": CERT_PEM,
        "fingerprint": Certificate::from_pem(CERT_PEM).unwrap().fingerprint().as_str(),
        "members": [
            {"name": "party-a", "endpoint": "https://party-a.example", "admitted": true,
             "fingerprint": Certificate::from_pem(CERT_PEM).unwrap().fingerprint().as_str()},
            {"name": "party-b", "endpoint": "https://party-b.example", "admitted": false},
        ],
        "state": "admission",
        "sequence": 3,
        "signature": "c2lnbmF0dXJl",
    })
}

fn partner_a() -> Partner {
    Partner {
        name: PartyName::new("party-a").unwrap(),
        endpoint: Endpoint::new("https://party-a.example").unwrap(),
    }
}

/// Replaces or removes the value at a path of object keys and array indices.
fn replace_at(value: &mut Value, path: &[usize], new: Option<Value>) {
    let Some((&first, rest)) = path.split_first() else {
        return;
    };
    match value {
        Value::Object(map) if !map.is_empty() => {
            let key = map
                .keys()
                .nth(first % map.len())
                .cloned()
                .unwrap_or_default();
            if rest.is_empty() || !map.get(&key).is_some_and(|v| v.is_object() || v.is_array()) {
                match new {
                    Some(new) => {
                        map.insert(key, new);
                    }
                    None => {
                        map.remove(&key);
                    }
                }
            } else if let Some(child) = map.get_mut(&key) {
                replace_at(child, rest, new);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            let len = items.len();
            let child = &mut items[first % len];
            if rest.is_empty() || !(child.is_object() || child.is_array()) {
                match new {
                    Some(new) => *child = new,
                    None => {
                        items.remove(first % len);
                    }
                }
            } else {
                replace_at(child, rest, new);
            }
        }
        _ => {}
    }
}

/// Parses and verifies a document; what is accepted must be consistent.
fn check_document(bytes: &[u8]) {
    let Ok(document) = serde_json::from_slice::<PartnerDocument>(bytes) else {
        return;
    };
    let body = &document.body;
    assert_eq!(
        body.certificate.fingerprint(),
        &spalding_core::certificate::Fingerprint::of_der(body.certificate.der())
    );
    if let Ok(verified) = document.verify("vc-one", &partner_a()) {
        assert_eq!(verified.certificate.fingerprint(), &body.fingerprint);
        assert_eq!(body.party.as_str(), "party-a");
        assert_eq!(body.endpoint.as_str(), "https://party-a.example");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    /// Parameters: validation never panics; accepted parameters round-trip
    /// through the wire form and are compatible with themselves.
    #[test]
    fn fuzz_parameters(parameters in parameters()) {
        if let Ok(valid) = parameters.validate() {
            let again = valid.to_wire().validate().unwrap();
            prop_assert!(valid.is_compatible_with(&again));
            prop_assert!(valid.prime().bits() >= spalding_core::parameters::MIN_PRIME_BITS);
        }
    }

    /// PEM certificates: mutated PEM and arbitrary text never panic; an
    /// accepted certificate is consistent and its canonical PEM re-parses to
    /// the same DER.
    #[test]
    fn fuzz_certificate_pem(edits in prop::collection::vec(edit(), 0..8), junk in ".{0,64}", prefix in any::<bool>()) {
        let mut seed = CERT_PEM.as_bytes().to_vec();
        if prefix {
            seed.splice(0..0, junk.bytes());
        }
        let text = String::from_utf8_lossy(&mutate(&seed, &edits)).into_owned();
        if let Ok(cert) = Certificate::from_pem(&text) {
            let again = Certificate::from_pem(cert.pem()).unwrap();
            prop_assert_eq!(again.der(), cert.der());
            prop_assert!(cert.der().len() <= MAX_CERTIFICATE_BYTES);
        }
        let _ = Certificate::from_pem(&junk);
    }

    /// DER certificates: mutated DER never panics.
    #[test]
    fn fuzz_certificate_der(edits in prop::collection::vec(edit(), 0..8)) {
        let der = Certificate::from_pem(CERT_PEM).unwrap().der().to_vec();
        let mutated = mutate(&der, &edits);
        if let Ok(cert) = Certificate::from_der(&mutated) {
            prop_assert_eq!(cert.der(), &mutated[..]);
        }
    }

    /// Endpoints: only `https://` with a host, no credentials, query or
    /// fragment; normalisation is idempotent.
    #[test]
    fn fuzz_endpoint(raw in endpoint_text()) {
        if let Ok(endpoint) = Endpoint::new(&raw) {
            let text = endpoint.as_str();
            prop_assert!(text.starts_with("https://"));
            prop_assert!(!text.contains(['@', '?', '#']));
            prop_assert!(text.len() <= MAX_ENDPOINT_LENGTH);
            prop_assert_eq!(Endpoint::new(text).unwrap(), endpoint.clone());
            let _ = endpoint.document_url("vc");
        }
    }

    /// VC specs: validation never panics; an accepted spec has 1..=MAX
    /// partners, unique, sorted and none of them the local party.
    #[test]
    fn fuzz_spec(
        default_parameters in any::<bool>(),
        parameters in parameters(),
        partners in prop::collection::vec((".{0,20}|party-[a-d]|PARTY-[A-D]", endpoint_text()), 0..6),
        many in prop::option::of(MAX_PARTNERS - 1..MAX_PARTNERS + 2),
    ) {
        let mut entries: Vec<PartnerEntry> = partners
            .into_iter()
            .map(|(name, endpoint)| PartnerEntry { name, endpoint })
            .collect();
        if let Some(n) = many {
            entries = (0..n)
                .map(|i| PartnerEntry { name: format!("p{i}"), endpoint: format!("https://p{i}.example") })
                .collect();
        }
        let spec = VirtualCloudSpec {
            parameters: if default_parameters { Parameters::carbyne_stack_default() } else { parameters },
            partners: entries,
        };
        let local = PartyName::new("party-a").unwrap();
        if let Ok(valid) = spec.validate(&local) {
            prop_assert!(!valid.partners.is_empty() && valid.partners.len() <= MAX_PARTNERS);
            prop_assert!(valid.partners.windows(2).all(|w| w[0].name < w[1].name));
            prop_assert!(valid.partners.iter().all(|p| p.name != local));
        }
        // The spec also arrives as JSON through the CRD.
        let json = serde_json::to_vec(&spec).unwrap();
        let _ = serde_json::from_slice::<VirtualCloudSpec>(&json);
    }

    /// Partner documents, byte-level mutations of the serialised seed.
    #[test]
    fn fuzz_document_bytes(edits in prop::collection::vec(edit(), 0..8)) {
        let seed = serde_json::to_vec(&seed_document()).unwrap();
        check_document(&mutate(&seed, &edits));
    }

    /// Partner documents, a field anywhere replaced by an arbitrary value or removed.
    #[test]
    fn fuzz_document_fields(
        changes in prop::collection::vec((prop::collection::vec(any::<usize>(), 1..4), prop::option::of(json_value())), 1..4),
    ) {
        let mut document = seed_document();
        for (path, new) in changes {
            replace_at(&mut document, &path, new);
        }
        check_document(&serde_json::to_vec(&document).unwrap());
    }
}

/// The seeds are valid, so mutations start from inputs that get deep.
#[test]
fn seeds_are_accepted() {
    let document: PartnerDocument = serde_json::from_value(seed_document()).unwrap();
    document.verify("vc-one", &partner_a()).unwrap();
    Parameters::carbyne_stack_default().validate().unwrap();
    Certificate::from_pem(CERT_PEM).unwrap();
}
