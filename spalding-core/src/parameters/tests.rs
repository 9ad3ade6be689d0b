//! Unit and property tests of parameter validation and compatibility.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::mismatch::abbreviate;
use super::*;
use proptest::prelude::*;

fn big(s: &str) -> BigUint {
    BigUint::parse_bytes(s.as_bytes(), 10).unwrap()
}

/// Wire parameters with only the prime and gf2n fields (r, rInv, wordSize derived).
fn bare(prime: &str) -> Parameters {
    Parameters {
        prime: prime.to_owned(),
        r: None,
        r_inv: None,
        word_size: None,
        gf2n_bit_length: 40,
        gf2n_storage_size: 8,
    }
}

/// A 4096-bit prime, generated with `openssl prime -generate -bits 4096`.
const PRIME_4096: &str = "970942893509096296742293490518636806183181341195556316612753640725153364936205991727064207435965018116886104671218064933146081980056903883808164059053637180838363118087607100353320132851371599434499242040709274661408082583912302085146347222873461213847654350635064831334857293926073653150211182079366240500538147525058641506948202158694990568346856975849937031730543218522352037658001312239713563472909374820641841357240205139566330917229959734361336351449419397817739939874018565008196406565286580784218879512900294320347732104000495643111227716115412377623439145880233962958764263425148545466119832426239900525177963352625125463132390604502692551768156948719291281088623186212616082211338172809177129654786659723601626902184251831009783066564017169799297989194181216879651381455577193678616761174166694553085942085856795159118339865669968545988297130428134722776878348946195040127697587171443600724300548509579783151636891958036450608922094858390828076124402147138803693842134070043293908365245325180753821557822761131220097940428687905493981083672398427837418849425505996437960300596620921113862657593006292793464860274456172773942645643804781265862302059797052966419942110164958048685976649696791044644888786735925768759157070239";

/// Known primes of 64 to 4096 bits (Mersenne, NIST, Curve25519 and friends).
fn known_primes() -> Vec<BigUint> {
    let one = BigUint::one();
    let pow2 = |k: u32| BigUint::one() << k;
    vec![
        pow2(64) - 59u32,
        pow2(89) - &one,
        pow2(107) - &one,
        pow2(127) - &one,
        pow2(128) - 159u32,
        big(CARBYNE_STACK_DEFAULT_PRIME),
        pow2(130) - 5u32,
        pow2(192) - pow2(64) - &one,
        pow2(255) - 19u32,
        pow2(256) - pow2(224) + pow2(192) + pow2(96) - &one,
        pow2(521) - &one,
        pow2(607) - &one,
    ]
}

#[test]
fn carbyne_stack_default_validates_and_derives_reference_values() {
    let validated = bare(CARBYNE_STACK_DEFAULT_PRIME).validate().unwrap();
    assert_eq!(validated.r(), &big(CARBYNE_STACK_DEFAULT_R));
    assert_eq!(validated.r_inv(), &big(CARBYNE_STACK_DEFAULT_R_INV));
    assert_eq!(validated.word_size(), 128);
    assert_eq!(validated.gf2n_bit_length(), 40);
    assert_eq!(validated.gf2n_storage_size(), 8);
    assert_eq!(validated, ValidatedParameters::carbyne_stack_default());
    assert_eq!(validated, carbyne_stack_default());
    assert_eq!(
        Parameters::carbyne_stack_default().validate().unwrap(),
        validated
    );
    assert_eq!(validated.to_wire(), Parameters::carbyne_stack_default());
}

#[test]
fn leading_zeros_are_normalised() {
    let mut p = Parameters::carbyne_stack_default();
    p.prime = format!("000{}", p.prime);
    p.r = Some(format!("0{}", CARBYNE_STACK_DEFAULT_R));
    let validated = p.validate().unwrap();
    assert_eq!(validated.to_wire(), Parameters::carbyne_stack_default());
}

#[test]
fn composites_are_refused() {
    // 15: small factor.
    let err = bare("15").validate().unwrap_err();
    assert_eq!(
        err,
        ParameterError::PrimeHasFactor {
            prime: "15".into(),
            factor: 3
        }
    );
    assert_eq!(
        err.to_string(),
        "prime 15 is not prime (it is divisible by 3)"
    );
    // The default prime times 3.
    let tripled = (big(CARBYNE_STACK_DEFAULT_PRIME) * 3u32).to_string();
    assert!(matches!(
        bare(&tripled).validate(),
        Err(ParameterError::PrimeHasFactor { factor: 3, .. })
    ));
    // A Carmichael number above 64 bits: 1501081 · 3002161 · 4503241.
    assert!(matches!(
        bare("20293796286020108881").validate(),
        Err(ParameterError::PrimeIsComposite { .. })
    ));
    // ψ12, a strong pseudoprime to the first twelve prime bases (79 bits).
    assert!(matches!(
        bare("318665857834031151167461").validate(),
        Err(ParameterError::PrimeIsComposite { .. })
    ));
    // Product of two 128-bit primes.
    let semiprime =
        (big(CARBYNE_STACK_DEFAULT_PRIME) * ((BigUint::one() << 127u32) - 1u32)).to_string();
    assert!(matches!(
        bare(&semiprime).validate(),
        Err(ParameterError::PrimeIsComposite { .. })
    ));
    assert!(matches!(
        bare("1").validate(),
        Err(ParameterError::PrimeBelowTwo { .. })
    ));
    assert!(matches!(
        bare("0").validate(),
        Err(ParameterError::PrimeBelowTwo { .. })
    ));
}

#[test]
fn prime_size_bounds() {
    // 2^61 - 1 is prime but too small.
    let err = bare("2305843009213693951").validate().unwrap_err();
    assert_eq!(
        err,
        ParameterError::PrimeTooSmall {
            prime: "2305843009213693951".into(),
            bits: 61
        }
    );
    let huge = ((BigUint::one() << 4096u32) + 1u32).to_string();
    assert_eq!(
        bare(&huge).validate(),
        Err(ParameterError::PrimeTooLarge { bits: 4097 })
    );
}

#[test]
fn decimal_syntax_is_strict() {
    for (input, issue) in [
        ("", DecimalIssue::Empty),
        ("+17", DecimalIssue::NotADigit { position: 1 }),
        ("-17", DecimalIssue::NotADigit { position: 1 }),
        (" 17", DecimalIssue::NotADigit { position: 1 }),
        ("17 ", DecimalIssue::NotADigit { position: 3 }),
        ("1_7", DecimalIssue::NotADigit { position: 2 }),
        ("0x11", DecimalIssue::NotADigit { position: 2 }),
        ("1é7", DecimalIssue::NotADigit { position: 2 }),
        ("١٧", DecimalIssue::NotADigit { position: 1 }),
    ] {
        assert_eq!(
            bare(input).validate(),
            Err(ParameterError::NotDecimal {
                field: ParameterField::Prime,
                issue
            }),
            "input {input:?}"
        );
    }
    let long = "9".repeat(MAX_DECIMAL_DIGITS + 1);
    assert_eq!(
        bare(&long).validate(),
        Err(ParameterError::NotDecimal {
            field: ParameterField::Prime,
            issue: DecimalIssue::TooLong {
                length: MAX_DECIMAL_DIGITS + 1
            }
        })
    );
    let mut p = Parameters::carbyne_stack_default();
    p.r_inv = Some("12a".into());
    let err = p.validate().unwrap_err();
    assert_eq!(
        err.to_string(),
        "rInv is not a decimal number: character 3 is not a digit 0-9 (no signs, spaces or other characters are allowed)"
    );
}

#[test]
fn wrong_r_is_refused() {
    let mut p = Parameters::carbyne_stack_default();
    p.r = Some("5".into());
    let err = p.validate().unwrap_err();
    assert_eq!(
        err,
        ParameterError::WrongR {
            declared: "5".into(),
            expected: CARBYNE_STACK_DEFAULT_R.into(),
            word_size: 128
        }
    );
    assert_eq!(
        err.to_string(),
        format!("r is 5 but 2^128 mod prime is {CARBYNE_STACK_DEFAULT_R}")
    );
    // Congruent but not reduced is still wrong.
    p.r = Some((big(CARBYNE_STACK_DEFAULT_R) + big(CARBYNE_STACK_DEFAULT_PRIME)).to_string());
    assert!(matches!(p.validate(), Err(ParameterError::WrongR { .. })));
}

#[test]
fn wrong_r_inv_is_refused() {
    let prime = big(CARBYNE_STACK_DEFAULT_PRIME);
    let r = big(CARBYNE_STACK_DEFAULT_R);
    let r_inv = big(CARBYNE_STACK_DEFAULT_R_INV);
    let mut p = Parameters::carbyne_stack_default();
    // 7 · rInv makes r · rInv ≡ 7.
    p.r_inv = Some(((&r_inv * 7u32) % &prime).to_string());
    let err = p.validate().unwrap_err();
    assert_eq!(
        err,
        ParameterError::WrongRInv {
            product: "7".into(),
            expected: CARBYNE_STACK_DEFAULT_R_INV.into()
        }
    );
    assert!(
        err.to_string()
            .starts_with("r · rInv mod prime is 7, not 1")
    );
    // r itself as rInv.
    p.r_inv = Some(r.to_string());
    assert!(matches!(
        p.validate(),
        Err(ParameterError::WrongRInv { .. })
    ));
    // Not reduced.
    p.r_inv = Some((&r_inv + &prime).to_string());
    assert!(matches!(
        p.validate(),
        Err(ParameterError::RInvNotReduced { .. })
    ));
}

#[test]
fn word_size_rules() {
    let mut p = bare(CARBYNE_STACK_DEFAULT_PRIME);
    for (word_size, expected) in [
        (0, ParameterError::WordSizeNotMultipleOf64 { word_size: 0 }),
        (
            100,
            ParameterError::WordSizeNotMultipleOf64 { word_size: 100 },
        ),
        (
            64,
            ParameterError::WordSizeTooSmall {
                word_size: 64,
                prime_bits: 128,
            },
        ),
        (8256, ParameterError::WordSizeTooLarge { word_size: 8256 }),
    ] {
        p.word_size = Some(word_size);
        assert_eq!(p.validate(), Err(expected));
    }
    // A larger word size is allowed and changes r.
    p.word_size = Some(192);
    let v = p.validate().unwrap();
    let prime = big(CARBYNE_STACK_DEFAULT_PRIME);
    assert_eq!(v.r(), &((BigUint::one() << 192u32) % &prime));
    assert_eq!((v.r() * v.r_inv()) % &prime, BigUint::one());
    // Default for a 64-bit prime is 64, for a 521-bit prime 576.
    let p64 = ((BigUint::one() << 64u32) - 59u32).to_string();
    assert_eq!(bare(&p64).validate().unwrap().word_size(), 64);
    let p521 = ((BigUint::one() << 521u32) - 1u32).to_string();
    assert_eq!(bare(&p521).validate().unwrap().word_size(), 576);
}

#[test]
fn gf2n_rules() {
    let mut p = Parameters::carbyne_stack_default();
    for (bits, storage, expected) in [
        (
            0,
            8,
            Some(ParameterError::Gf2nBitLengthOutOfRange { bit_length: 0 }),
        ),
        (
            129,
            16,
            Some(ParameterError::Gf2nBitLengthOutOfRange { bit_length: 129 }),
        ),
        (
            40,
            4,
            Some(ParameterError::Gf2nStorageTooSmall {
                storage_size: 4,
                bit_length: 40,
                needed: 5,
            }),
        ),
        (
            40,
            17,
            Some(ParameterError::Gf2nStorageTooLarge { storage_size: 17 }),
        ),
        (1, 1, None),
        (128, 16, None),
        (40, 5, None),
        (64, 8, None),
    ] {
        p.gf2n_bit_length = bits;
        p.gf2n_storage_size = storage;
        assert_eq!(p.validate().err(), expected, "gf2n {bits}/{storage}");
    }
}

#[test]
fn mersenne_prime_1279_bits_validates() {
    let prime = (BigUint::one() << 1279u32) - 1u32;
    let v = bare(&prime.to_string()).validate().unwrap();
    assert_eq!(v.word_size(), 1280);
    assert_eq!((v.r() * v.r_inv()) % &prime, BigUint::one());
}

/// Slow in debug builds (about 35 s; 1.7 s in release): run with
/// `cargo test --release -p spalding-core --lib prime_4096 -- --ignored --nocapture`.
#[test]
#[ignore = "slow without optimisation; run in release"]
fn prime_4096_bits_validates() {
    let start = std::time::Instant::now();
    let v = bare(PRIME_4096).validate().unwrap();
    eprintln!("4096-bit prime validated in {:?}", start.elapsed());
    assert_eq!(v.prime().bits(), 4096);
    assert_eq!(v.word_size(), 4096);
    let start = std::time::Instant::now();
    bare(CARBYNE_STACK_DEFAULT_PRIME).validate().unwrap();
    eprintln!("default prime validated in {:?}", start.elapsed());
}

#[test]
fn serde_wire_form() {
    let v = carbyne_stack_default();
    let json = serde_json::to_value(&v).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "prime": CARBYNE_STACK_DEFAULT_PRIME,
            "r": CARBYNE_STACK_DEFAULT_R,
            "rInv": CARBYNE_STACK_DEFAULT_R_INV,
            "wordSize": 128,
            "gf2nBitLength": 40,
            "gf2nStorageSize": 8,
        })
    );
    let back: ValidatedParameters = serde_json::from_value(json).unwrap();
    assert_eq!(back, v);
    // Omitted optional fields are derived.
    let minimal = serde_json::json!({
        "prime": CARBYNE_STACK_DEFAULT_PRIME,
        "gf2nBitLength": 40,
        "gf2nStorageSize": 8,
    });
    let wire: Parameters = serde_json::from_value(minimal.clone()).unwrap();
    assert_eq!(wire, bare(CARBYNE_STACK_DEFAULT_PRIME));
    assert_eq!(serde_json::to_value(&wire).unwrap(), minimal);
    let derived: ValidatedParameters = serde_json::from_value(minimal).unwrap();
    assert_eq!(derived, v);
    // Deserialization validates.
    let bad = serde_json::json!({"prime": "15", "gf2nBitLength": 40, "gf2nStorageSize": 8});
    let err = serde_json::from_value::<ValidatedParameters>(bad).unwrap_err();
    assert!(err.to_string().contains("divisible by 3"), "{err}");
}

#[test]
fn compatibility_equal_is_empty() {
    let v = carbyne_stack_default();
    assert!(compatibility(&v, &v.clone()).is_empty());
    assert!(v.is_compatible_with(&v));
}

#[test]
fn each_single_field_mismatch_is_reported_alone() {
    let ours = carbyne_stack_default();
    let mut variants: Vec<(ParameterField, ValidatedParameters)> = Vec::new();
    for field in ParameterField::ALL {
        let mut theirs = ours.clone();
        match field {
            ParameterField::Prime => theirs.prime += 2u32,
            ParameterField::R => theirs.r += 1u32,
            ParameterField::RInv => theirs.r_inv += 1u32,
            ParameterField::WordSize => theirs.word_size = 192,
            ParameterField::Gf2nBitLength => theirs.gf2n_bit_length = 64,
            ParameterField::Gf2nStorageSize => theirs.gf2n_storage_size = 16,
        }
        variants.push((field, theirs));
    }
    for (field, theirs) in variants {
        let mismatches = compatibility(&ours, &theirs);
        assert_eq!(mismatches.len(), 1, "{field}: {mismatches:?}");
        assert_eq!(mismatches[0].field, field);
        assert!(
            mismatches[0]
                .to_string()
                .starts_with(&format!("{field} differs: ours is "))
        );
    }
}

#[test]
fn realistic_mismatches_in_field_order() {
    let ours = carbyne_stack_default();
    let mut theirs_wire = bare(&((BigUint::one() << 127u32) - 1u32).to_string());
    theirs_wire.gf2n_storage_size = 16;
    let theirs = theirs_wire.validate().unwrap();
    let fields: Vec<_> = compatibility(&ours, &theirs)
        .into_iter()
        .map(|m| m.field)
        .collect();
    assert_eq!(
        fields,
        vec![
            ParameterField::Prime,
            ParameterField::R,
            ParameterField::RInv,
            ParameterField::Gf2nStorageSize
        ]
    );
    let first = compatibility(&ours, &theirs).remove(0);
    assert_eq!(first.ours, CARBYNE_STACK_DEFAULT_PRIME);
    assert_eq!(
        first.to_string(),
        "prime differs: ours is 19876646…695041, theirs is 17014118…105727"
    );
    let json = serde_json::to_value(&first).unwrap();
    assert_eq!(json["field"], "prime");
    assert_eq!(serde_json::from_value::<Mismatch>(json).unwrap(), first);
    let last = compatibility(&ours, &theirs).pop().unwrap();
    assert_eq!(
        last.to_string(),
        "gf2nStorageSize differs: ours is 8, theirs is 16"
    );
}

#[test]
fn field_names_are_wire_names() {
    let names: Vec<String> = ParameterField::ALL.iter().map(|f| f.to_string()).collect();
    assert_eq!(
        names,
        [
            "prime",
            "r",
            "rInv",
            "wordSize",
            "gf2nBitLength",
            "gf2nStorageSize"
        ]
    );
    for field in ParameterField::ALL {
        assert_eq!(
            serde_json::to_value(field).unwrap(),
            serde_json::Value::String(field.to_string())
        );
    }
}

#[test]
fn abbreviation() {
    assert_eq!(abbreviate("12345"), "12345");
    assert_eq!(abbreviate(&"1".repeat(24)), "1".repeat(24));
    assert_eq!(abbreviate(CARBYNE_STACK_DEFAULT_PRIME), "19876646…695041");
    assert_eq!(abbreviate(&"é".repeat(30)), "é".repeat(30));
}

proptest! {
    // Big-number work is slow in unoptimised test builds; fewer cases suffice.
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn known_primes_with_derived_values_validate_and_round_trip(
        index in 0usize..12,
        extra_words in 0u32..4,
        declare_word_size in any::<bool>(),
        bits in 1u32..=128,
        extra_bytes in 0u32..16,
    ) {
        let primes = known_primes();
        let prime = &primes[index % primes.len()];
        let storage = (bits.div_ceil(8) + extra_bytes).min(16);
        let word_size = default_word_size(prime.bits()) + 64 * extra_words;
        let wire = Parameters {
            prime: prime.to_string(),
            r: None,
            r_inv: None,
            word_size: (declare_word_size || extra_words > 0).then_some(word_size),
            gf2n_bit_length: bits,
            gf2n_storage_size: storage,
        };
        let v = wire.validate().unwrap();
        prop_assert_eq!(v.word_size(), word_size);
        prop_assert_eq!(v.r(), &((BigUint::one() << word_size) % prime));
        prop_assert_eq!((v.r() * v.r_inv()) % prime, BigUint::one());
        let normalised = v.to_wire();
        let again = normalised.validate().unwrap();
        prop_assert_eq!(&again, &v);
        prop_assert_eq!(again.to_wire(), normalised);
        prop_assert!(compatibility(&v, &again).is_empty());
    }

    #[test]
    fn random_primes_found_by_search_validate(seed in any::<u128>(), extra in 0u32..3) {
        // A random odd candidate of 64..=192 bits; search upward for a prime,
        // confirmed by the validator itself and checked for the derived values.
        let bits = 64 + extra * 64;
        let top = BigUint::one() << (bits - 1);
        let mut candidate = (BigUint::from(seed) % &top) | &top | BigUint::one();
        while !is_probable_prime(&candidate) {
            candidate += 2u32;
        }
        let v = bare(&candidate.to_string()).validate().unwrap();
        prop_assert_eq!((v.r() * v.r_inv()) % &candidate, BigUint::one());
        prop_assert_eq!(v.to_wire().validate().unwrap(), v);
    }

}

proptest! {
    #[test]
    fn arbitrary_strings_never_panic(
        prime in ".{0,64}",
        r in proptest::option::of(".{0,40}"),
        r_inv in proptest::option::of("[0-9]{0,40}"),
        word_size in proptest::option::of(any::<u32>()),
        bits in any::<u32>(),
        storage in any::<u32>(),
    ) {
        let p = Parameters { prime, r, r_inv, word_size, gf2n_bit_length: bits, gf2n_storage_size: storage };
        let _ = p.validate();
    }

    #[test]
    fn arbitrary_digit_strings_never_panic(prime in "[0-9]{0,200}", r in proptest::option::of("[0-9]{1,60}")) {
        let mut p = bare(&prime);
        p.r = r;
        if let Ok(v) = p.validate() {
            prop_assert!(is_probable_prime(v.prime()));
        }
    }

    #[test]
    fn arbitrary_json_never_panics(json in ".{0,200}") {
        let _ = serde_json::from_str::<ValidatedParameters>(&json);
    }
}
