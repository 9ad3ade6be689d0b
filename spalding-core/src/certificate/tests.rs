//! Unit and property tests of certificate parsing and fingerprints, on
//! OpenSSL-generated fixtures in `src/testdata/` (see its README).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use proptest::prelude::*;

const PARTY_A: &str = include_str!("../testdata/party-a.cert.pem");
const PARTY_B: &str = include_str!("../testdata/party-b.cert.pem");
const PARTY_A_CSR: &str = include_str!("../testdata/party-a.csr.pem");
/// Test-only keys: they exist so that refusal of private keys can be tested.
const TEST_ONLY_PKCS8_KEY: &str = include_str!("../testdata/test-only-party-a.key.pem");
const TEST_ONLY_EC_KEY: &str = include_str!("../testdata/test-only-party-a.ec-key.pem");
const TEST_ONLY_ENCRYPTED_KEY: &str =
    include_str!("../testdata/test-only-party-a.encrypted-key.pem");
const TEST_ONLY_RSA_KEY: &str = include_str!("../testdata/test-only-rsa.key.pem");

/// Computed at fixture creation, independently of this crate, with
/// `openssl x509 -in party-a.cert.pem -outform der | sha256sum`.
const PARTY_A_FINGERPRINT: &str =
    "sha256:b9ab1cec1d9e38849ab46dc09f7ef900b0d59b7b3996667537f1ebc16e1ec37a";
/// `openssl x509 -in party-b.cert.pem -outform der | sha256sum`.
const PARTY_B_FINGERPRINT: &str =
    "sha256:68bbe3d5e7101a6d2e5cb0003a913012677ea0a9223a2d333045b8975d40f8d2";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn wrap(label: &str, body: &str) -> String {
    format!("-----BEGIN {label}-----\n{body}\n-----END {label}-----\n")
}

fn assert_no_key_material(err: &CertificateError, key_pem: &str) {
    let message = err.to_string();
    let debug = format!("{err:?}");
    for line in key_pem.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!message.contains(line), "message echoes key material");
        assert!(!debug.contains(line), "debug echoes key material");
    }
}

#[test]
fn fixtures_parse_with_independent_fingerprints() {
    let a = Certificate::from_pem(PARTY_A).unwrap();
    let b = Certificate::from_pem(PARTY_B).unwrap();
    assert_eq!(a.fingerprint().as_str(), PARTY_A_FINGERPRINT);
    assert_eq!(b.fingerprint().as_str(), PARTY_B_FINGERPRINT);
    assert_eq!(a.fingerprint(), &Fingerprint::of_der(a.der()));
    assert_ne!(a, b);
    // OpenSSL's output is already canonical.
    assert_eq!(a.pem(), PARTY_A);
    assert_eq!(b.pem(), PARTY_B);
}

#[test]
fn summary_is_read_from_the_certificate() {
    let a = Certificate::from_pem(PARTY_A).unwrap();
    let s = a.summary();
    assert_eq!(s.subject, "CN=party-a");
    assert_eq!(s.issuer, "CN=party-a");
    // `openssl x509 -noout -serial -dates`.
    assert_eq!(s.serial, "76ed27e0c4c19d37e07cd5a4d437e3b785bb9cd2");
    assert_eq!(s.not_before, "2026-11-30T02:34:13Z");
    assert_eq!(s.not_after, "2036-11-27T02:34:13Z");
    assert_eq!(s.not_after_unix - s.not_before_unix, 3650 * 86_400);
    let debug = format!("{a:?}");
    assert!(debug.contains(PARTY_A_FINGERPRINT) && debug.contains("CN=party-a"));
}

#[test]
fn rfc3339_formatting() {
    assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339_utc(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(rfc3339_utc(-1), "1969-12-31T23:59:59Z");
    assert_eq!(rfc3339_utc(253_402_300_799), "9999-12-31T23:59:59Z");
}

#[test]
fn canonical_re_encoding_round_trips() {
    let a = Certificate::from_pem(PARTY_A).unwrap();
    // Re-wrap at 76 columns with CRLF, indentation and surrounding text.
    let body = b64(a.der());
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let messy = format!(
        "subject=CN = party-a\r\n    -----BEGIN CERTIFICATE-----\r\n    {}\r\n    -----END CERTIFICATE-----   \r\n",
        lines.join("\r\n    ")
    );
    let again = Certificate::from_pem(&messy).unwrap();
    assert_eq!(again, a);
    assert_eq!(again.pem(), PARTY_A);
    assert_eq!(Certificate::from_pem(a.pem()).unwrap(), a);
    assert_eq!(Certificate::from_der(a.der()).unwrap(), a);
    let pem = a.pem();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
    assert!(pem.ends_with("\n-----END CERTIFICATE-----\n"));
    assert!(pem.lines().all(|l| l.len() <= 64));
}

#[test]
fn serde_is_the_pem_string() {
    let a = Certificate::from_pem(PARTY_A).unwrap();
    let json = serde_json::to_value(&a).unwrap();
    assert_eq!(json, serde_json::Value::String(PARTY_A.to_owned()));
    assert_eq!(serde_json::from_value::<Certificate>(json).unwrap(), a);
    let err = serde_json::from_value::<Certificate>(serde_json::json!(TEST_ONLY_EC_KEY))
        .unwrap_err()
        .to_string();
    assert!(err.contains("private key"), "{err}");
}

#[test]
fn private_keys_are_refused_without_echo() {
    for (key, kind) in [
        (TEST_ONLY_PKCS8_KEY, PrivateKeyKind::Pkcs8),
        (TEST_ONLY_EC_KEY, PrivateKeyKind::Ec),
        (TEST_ONLY_ENCRYPTED_KEY, PrivateKeyKind::EncryptedPkcs8),
        (TEST_ONLY_RSA_KEY, PrivateKeyKind::Rsa),
    ] {
        for input in [
            key.to_owned(),
            format!("{PARTY_A}{key}"),
            format!("{key}{PARTY_A}"),
            // Indented, as pasted into YAML.
            key.lines().map(|l| format!("  {l}\n")).collect::<String>(),
        ] {
            let err = Certificate::from_pem(&input).unwrap_err();
            assert_eq!(err, CertificateError::PrivateKeyGiven { kind });
            assert!(err.to_string().contains("private key must never be shared"));
            assert_no_key_material(&err, key);
        }
    }
    let openssh = wrap("OPENSSH PRIVATE KEY", "b3BlbnNzaC1rZXktdjEAAAAA");
    assert_eq!(
        Certificate::from_pem(&openssh),
        Err(CertificateError::PrivateKeyGiven {
            kind: PrivateKeyKind::Other
        })
    );
    // Even with a broken marker, or above the size limit.
    let broken = "-----BEGIN PRIVATE KEY\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49\n";
    assert!(matches!(
        Certificate::from_pem(broken),
        Err(CertificateError::PrivateKeyGiven { .. })
    ));
    let huge = format!("{}{TEST_ONLY_PKCS8_KEY}", " x\n".repeat(40_000));
    assert!(matches!(
        Certificate::from_pem(&huge),
        Err(CertificateError::PrivateKeyGiven { .. })
    ));
}

#[test]
fn two_certificates_are_refused() {
    let err = Certificate::from_pem(&format!("{PARTY_A}{PARTY_B}")).unwrap_err();
    assert_eq!(err, CertificateError::TooManyCertificates { count: 2 });
    assert_eq!(
        err.to_string(),
        "found 2 certificates, expected exactly one"
    );
    let three = format!("{PARTY_A}{PARTY_B}{PARTY_A}");
    assert_eq!(
        Certificate::from_pem(&three),
        Err(CertificateError::TooManyCertificates { count: 3 })
    );
}

#[test]
fn empty_and_oversized_input_is_refused() {
    for input in ["", "   ", "\n\r\n\t"] {
        assert_eq!(Certificate::from_pem(input), Err(CertificateError::Empty));
    }
    assert_eq!(Certificate::from_der(&[]), Err(CertificateError::Empty));
    let padded = format!("{PARTY_A}{}", "#".repeat(MAX_CERTIFICATE_BYTES));
    assert!(matches!(
        Certificate::from_pem(&padded),
        Err(CertificateError::TooLarge { .. })
    ));
}

#[test]
fn other_sections_are_refused() {
    assert_eq!(
        Certificate::from_pem(PARTY_A_CSR),
        Err(CertificateError::UnexpectedSection {
            section: OtherSection::CertificateRequest
        })
    );
    let crl = wrap("X509 CRL", "MAMCAQA=");
    assert_eq!(
        Certificate::from_pem(&format!("{PARTY_A}{crl}")),
        Err(CertificateError::UnexpectedSection {
            section: OtherSection::Crl
        })
    );
    let strange = wrap("SECRET SAUCE", "MAMCAQA=");
    let err = Certificate::from_pem(&format!("{strange}{PARTY_A}")).unwrap_err();
    assert_eq!(
        err,
        CertificateError::UnexpectedSection {
            section: OtherSection::Unrecognised
        }
    );
    assert!(!err.to_string().contains("SAUCE"));
}

#[test]
fn garbage_and_malformed_pem_are_refused() {
    assert_eq!(
        Certificate::from_pem("hello world"),
        Err(CertificateError::NoCertificate)
    );
    let a = Certificate::from_pem(PARTY_A).unwrap();
    // Missing END line.
    let no_end = PARTY_A.replace("-----END CERTIFICATE-----", "");
    assert_eq!(
        Certificate::from_pem(&no_end),
        Err(CertificateError::MalformedPem {
            issue: PemIssue::MissingSectionEnd
        })
    );
    // Invalid base64 character.
    let bad_char = wrap("CERTIFICATE", "MIIB*jCCAR+gAwIBAgIU");
    assert_eq!(
        Certificate::from_pem(&bad_char),
        Err(CertificateError::MalformedPem {
            issue: PemIssue::InvalidBase64
        })
    );
    // Truncated base64 body, at several lengths. (The fixture's body ends in
    // "=="; the decoder tolerates missing padding, so cutting exactly those
    // two characters loses no data and is not tested here.)
    let body = b64(a.der());
    assert!(body.ends_with("=="));
    for cut in [1, 3, 4, 5, 40, body.len() / 2] {
        let truncated = wrap("CERTIFICATE", body.get(..body.len() - cut).unwrap());
        assert!(
            Certificate::from_pem(&truncated).is_err(),
            "truncated by {cut}"
        );
    }
    // Marker in the middle of a line.
    let mid_line = format!("text {PARTY_A}");
    assert_eq!(
        Certificate::from_pem(&mid_line),
        Err(CertificateError::MalformedPem {
            issue: PemIssue::MarkerNotAtLineStart
        })
    );
    // Unterminated BEGIN marker.
    let unterminated = PARTY_A.replace("-----BEGIN CERTIFICATE-----", "-----BEGIN CERTIFICATE");
    assert!(matches!(
        Certificate::from_pem(&unterminated),
        Err(CertificateError::MalformedPem { .. })
    ));
}

#[test]
fn non_certificate_der_is_refused() {
    // A valid DER SEQUENCE that is not a certificate, in PEM.
    let not_cert = wrap("CERTIFICATE", &b64(&[0x30, 0x03, 0x02, 0x01, 0x00]));
    assert!(matches!(
        Certificate::from_pem(&not_cert),
        Err(CertificateError::NotX509 { .. })
    ));
    // The DER of the CSR wrapped as a certificate.
    let csr_der: Vec<u8> =
        rustls_pki_types::CertificateSigningRequestDer::from_pem_slice(PARTY_A_CSR.as_bytes())
            .unwrap()
            .as_ref()
            .to_vec();
    assert!(matches!(
        Certificate::from_der(&csr_der),
        Err(CertificateError::NotX509 { .. })
    ));
    // Trailing bytes after a valid certificate.
    let a = Certificate::from_pem(PARTY_A).unwrap();
    let mut der = a.der().to_vec();
    der.extend_from_slice(&[0, 0]);
    assert_eq!(
        Certificate::from_der(&der),
        Err(CertificateError::TrailingData { count: 2 })
    );
    assert_eq!(
        Certificate::from_pem(&wrap("CERTIFICATE", &b64(&der))),
        Err(CertificateError::TrailingData { count: 2 })
    );
}

#[test]
fn fingerprint_parsing() {
    let upper = PARTY_A_FINGERPRINT.to_uppercase();
    let parsed: Fingerprint = upper.parse().unwrap();
    assert_eq!(parsed.as_str(), PARTY_A_FINGERPRINT);
    assert_eq!(parsed.to_string(), PARTY_A_FINGERPRINT);
    assert_eq!(parsed.hex(), &PARTY_A_FINGERPRINT[7..]);
    let hex = &PARTY_A_FINGERPRINT[7..];
    for (input, expected) in [
        (hex.to_owned(), FingerprintError::UnsupportedAlgorithm),
        (
            format!("sha1:{}", &hex[..40]),
            FingerprintError::UnsupportedAlgorithm,
        ),
        (
            format!("sha512:{hex}{hex}"),
            FingerprintError::UnsupportedAlgorithm,
        ),
        (
            format!("sha256:{}", &hex[..63]),
            FingerprintError::WrongLength { found: 63 },
        ),
        (
            format!("sha256:{hex}0"),
            FingerprintError::WrongLength { found: 65 },
        ),
        (
            format!("sha256:{}g", &hex[..63]),
            FingerprintError::NotHex { position: 64 },
        ),
        (
            format!("sha256: {}", &hex[..63]),
            FingerprintError::NotHex { position: 1 },
        ),
        (String::new(), FingerprintError::UnsupportedAlgorithm),
        ("sha256é".to_owned(), FingerprintError::UnsupportedAlgorithm),
    ] {
        assert_eq!(input.parse::<Fingerprint>(), Err(expected), "{input:?}");
    }
}

#[test]
fn fingerprint_serde() {
    let fp: Fingerprint = PARTY_B_FINGERPRINT.parse().unwrap();
    let json = serde_json::to_string(&fp).unwrap();
    assert_eq!(json, format!("\"{PARTY_B_FINGERPRINT}\""));
    assert_eq!(serde_json::from_str::<Fingerprint>(&json).unwrap(), fp);
    let upper = format!("\"{}\"", PARTY_B_FINGERPRINT.to_uppercase());
    assert_eq!(serde_json::from_str::<Fingerprint>(&upper).unwrap(), fp);
    assert!(serde_json::from_str::<Fingerprint>("\"sha256:abc\"").is_err());
}

proptest! {
    #[test]
    fn arbitrary_strings_never_panic(input in "\\PC{0,300}") {
        prop_assert!(Certificate::from_pem(&input).is_err());
    }

    #[test]
    fn arbitrary_pem_like_strings_never_panic(body in "[A-Za-z0-9+/=\\n -]{0,300}") {
        prop_assert!(Certificate::from_pem(&wrap("CERTIFICATE", &body)).is_err());
    }

    #[test]
    fn arbitrary_bytes_as_certificate_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        prop_assert!(Certificate::from_pem(&wrap("CERTIFICATE", &b64(&bytes))).is_err());
        prop_assert!(Certificate::from_der(&bytes).is_err());
    }

    #[test]
    fn corrupted_fixture_never_panics(index in 0usize..2000, byte in any::<u8>()) {
        // Flip one byte of a real certificate's DER: refused or (rarely, e.g.
        // inside the signature) accepted with a different fingerprint.
        let a = Certificate::from_pem(PARTY_A).unwrap();
        let mut der = a.der().to_vec();
        let len = der.len();
        let slot = &mut der[index % len];
        prop_assume!(*slot != byte);
        *slot = byte;
        if let Ok(c) = Certificate::from_der(&der) {
            prop_assert_ne!(c.fingerprint(), a.fingerprint());
        }
    }

    #[test]
    fn fingerprint_strings_never_panic(input in "\\PC{0,80}") {
        if let Ok(fp) = input.parse::<Fingerprint>() {
            prop_assert_eq!(fp.as_str().len(), 71);
            prop_assert_eq!(fp.as_str().parse::<Fingerprint>().unwrap(), fp.clone());
        }
    }
}

proptest! {
    /// The digest bytes and the text say the same: parsing any-case hex gives
    /// the lowercase text, the digest is the hex decoded, and equality and
    /// order are those of the text.
    #[test]
    fn fingerprint_digest_and_text_agree(
        a in proptest::array::uniform32(any::<u8>()),
        b in proptest::array::uniform32(any::<u8>()),
        upper in any::<bool>(),
    ) {
        let (x, y) = (Fingerprint::from_digest(a), Fingerprint::from_digest(b));
        prop_assert_eq!(x.as_str(), format!("sha256:{}", hex::encode(a)));
        prop_assert_eq!(x.digest(), &a);
        let text = if upper { x.as_str().to_uppercase() } else { x.as_str().to_owned() };
        prop_assert_eq!(text.parse::<Fingerprint>().unwrap(), x.clone());
        prop_assert_eq!(x.cmp(&y), x.as_str().cmp(y.as_str()));
        prop_assert_eq!(x == y, x.as_str() == y.as_str());
        prop_assert_eq!(format!("{x:?}"), format!("Fingerprint({:?})", x.as_str()));
    }
}
