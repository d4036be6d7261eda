//! Known-answer tests against an independent implementation (viem):
//!
//! - `viem_signed_delegations_verify_or_fail_as_labelled`: every delegation viem built and signed
//!   (`tests/fixtures/siwe/viem-signed.json`, written by `tests/js/gen-siwe-fixtures.mjs`) verifies with the
//!   right wallet and session, or fails with the labelled error; and for the valid ones our wallet signs the
//!   same text to the same bytes (both sides are RFC 6979).
//! - `rust_signed_delegations_match_the_committed_fixture`: delegations our `WalletKey` signs with fixed keys
//!   are exactly `tests/fixtures/siwe/rust-signed.json`, which `tests/js/rust-signatures.test.mjs` checks
//!   with viem. `CHORDIAL_WRITE_FIXTURES=1` rewrites the file instead of comparing.

use std::path::PathBuf;
use std::time::Duration;

use chordial_core::identity::delegation::{
    delegation_message, Delegation, DelegationError, DelegationRequest, DELEGATION_STATEMENT,
};
use chordial_core::identity::did::{did_key, parse_did_key};
use chordial_core::identity::siwe::{format_rfc3339, SiweMessage};
use chordial_core::identity::wallet::{WalletKey, WalletSignature};
use chordial_core::identity::SessionKey;
use chordial_core::Timestamp;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::{json, Value};

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/siwe").join(name)
}

fn kind(e: &DelegationError) -> &'static str {
    match e {
        DelegationError::Malformed(_) => "Malformed",
        DelegationError::WrongStatement => "WrongStatement",
        DelegationError::BadUri(_) => "BadUri",
        DelegationError::BadResources => "BadResources",
        DelegationError::WrongNetwork => "WrongNetwork",
        DelegationError::MissingExpiration => "MissingExpiration",
        DelegationError::InvalidWindow => "InvalidWindow",
        DelegationError::LifetimeTooLong => "LifetimeTooLong",
        DelegationError::NotYetValid => "NotYetValid",
        DelegationError::Expired => "Expired",
        DelegationError::BadSignature(_) => "BadSignature",
        DelegationError::WrongSigner => "WrongSigner",
        DelegationError::WrongSession => "WrongSession",
    }
}

fn str_field<'a>(case: &'a Value, field: &str) -> &'a str {
    case[field].as_str().unwrap_or_else(|| panic!("{}: missing {field}", case["name"]))
}

fn secret(case: &Value, field: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    hex::decode_to_slice(&str_field(case, field)[2..], &mut out).unwrap();
    out
}

#[test]
fn viem_signed_delegations_verify_or_fail_as_labelled() {
    let text = std::fs::read_to_string(fixture_path("viem-signed.json")).expect("viem fixture present");
    let fixtures: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(fixtures["statement"], DELEGATION_STATEMENT, "JS and Rust statements differ");
    let cases = fixtures["cases"].as_array().unwrap();
    assert!(cases.len() >= 30, "fixture looks truncated");
    let mut failures = Vec::new();
    for case in cases {
        let name = str_field(case, "name");
        let expect = str_field(case, "expect");
        let network = str_field(case, "network");
        let now = Timestamp(case["now"].as_u64().unwrap());
        let message = str_field(case, "message").to_owned();
        let signature = match WalletSignature::from_hex(str_field(case, "signature")) {
            Ok(sig) => sig,
            Err(e) => {
                if expect != "SignatureHex" {
                    failures.push(format!("{name}: from_hex refused ({e}), expected {expect}"));
                }
                if let Some(raw_expect) = case["expect_raw"].as_str() {
                    // The bytes may still arrive in binary form (serde): check the verifier refuses them too.
                    let mut raw = [0u8; 65];
                    hex::decode_to_slice(&str_field(case, "signature")[2..], &mut raw).unwrap();
                    let d = Delegation { message, signature: WalletSignature(raw) };
                    match d.verify(network, now) {
                        Err(e) if kind(&e) == raw_expect => {}
                        other => failures.push(format!("{name} (raw): expected {raw_expect}, got {other:?}")),
                    }
                }
                continue;
            }
        };
        let d = Delegation { message, signature };
        let result = match case["verify_for"].as_str() {
            Some(did) => d.verify_for(&parse_did_key(did).unwrap(), network, now),
            None => d.verify(network, now),
        };
        match (expect, result) {
            ("ok", Ok(v)) => {
                let session = SessionKey::from_bytes(&secret(case, "session_private_key")).unwrap();
                let wallet = WalletKey::from_bytes(&secret(case, "wallet_private_key")).unwrap();
                let checks = [
                    (v.wallet.to_checksum() == str_field(case, "address"), "wallet address"),
                    (wallet.address() == v.wallet, "wallet key's address"),
                    (v.session == *session.public(), "session key"),
                    (did_key(&v.session) == str_field(case, "session_did"), "did:key"),
                    (
                        format!("0x{}", hex::encode(v.session.as_bytes()))
                            == str_field(case, "session_public_key"),
                        "compressed session key",
                    ),
                    (v.issued_at.0 == case["issued_at"].as_u64().unwrap(), "issued_at"),
                    (v.not_before.0 == case["not_before"].as_u64().unwrap(), "not_before"),
                    (v.expires.0 == case["expires"].as_u64().unwrap(), "expires"),
                    (v.hash == d.hash(), "hash"),
                    // RFC 6979 on both sides: the same key signs the same text to the same bytes.
                    (wallet.personal_sign(d.message.as_bytes()) == d.signature, "signature bytes"),
                    // Our Display writes viem's text exactly.
                    (SiweMessage::parse(&d.message).unwrap().to_string() == d.message, "text round trip"),
                ];
                for (ok, what) in checks {
                    if !ok {
                        failures.push(format!("{name}: {what} differs"));
                    }
                }
            }
            ("ok", Err(e)) => failures.push(format!("{name}: expected ok, got {e:?}")),
            (want, Ok(_)) => failures.push(format!("{name}: expected {want}, verified")),
            (want, Err(e)) if kind(&e) != want => {
                failures.push(format!("{name}: expected {want}, got {e:?}"))
            }
            _ => {}
        }
    }
    assert!(failures.is_empty(), "fixture mismatches:\n{}", failures.join("\n"));
}

const NETWORK: &str = "chordial-test";
/// 2026-03-01T12:00:00Z.
const NOW: Timestamp = Timestamp(1_772_366_400_000);

fn rust_signed_cases() -> Value {
    let mut cases = Vec::new();
    let mut delegation_case = |name: &str,
                               wallet_byte: u8,
                               session_byte: u8,
                               seed: u64,
                               req: &dyn Fn(&WalletKey) -> DelegationRequest,
                               now: Timestamp| {
        let wallet = WalletKey::from_bytes(&[wallet_byte; 32]).unwrap();
        let session = SessionKey::from_bytes(&[session_byte; 32]).unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let message = delegation_message(session.public(), &req(&wallet), now, &mut rng);
        let d = Delegation::sign(&message, &wallet);
        let v = d.verify(NETWORK, now).expect("our own delegation verifies");
        cases.push(json!({
            "name": name,
            "kind": "delegation",
            "message": d.message,
            "signature": d.signature.to_hex(),
            "address": wallet.address().to_checksum(),
            "now": now.0,
            "session_public_key": format!("0x{}", hex::encode(session.public().as_bytes())),
            "session_did": did_key(session.public()),
            "hash": format!("0x{}", hex::encode(v.hash)),
            "expected": expected_fields(&message),
        }));
    };
    delegation_case(
        "default_delegation",
        0x31,
        0xc1,
        1,
        &|w| DelegationRequest::new("app.example.org", w.address(), 1, NETWORK),
        NOW,
    );
    delegation_case(
        "seven_day_delegation_on_localhost_sepolia",
        0x32,
        0xc2,
        2,
        &|w| DelegationRequest {
            lifetime: Duration::from_secs(7 * 86_400),
            ..DelegationRequest::new("localhost:8080", w.address(), 11_155_111, NETWORK)
        },
        Timestamp(NOW.0 + 123),
    );

    // A general SIWE message with every optional field, to check our text against viem's grammar.
    let wallet = WalletKey::from_bytes(&[0x33; 32]).unwrap();
    let message = SiweMessage {
        domain: "sub.example.co.uk:8443".into(),
        address: wallet.address(),
        statement: None,
        uri: "https://example.com/path?q=1#frag".into(),
        version: "1".into(),
        chain_id: 137,
        nonce: "AllFields9Nonce".into(),
        issued_at: Timestamp(NOW.0 - 999),
        expiration_time: Some(Timestamp(NOW.0 + 86_400_000)),
        not_before: Some(Timestamp(NOW.0 - 500)),
        request_id: Some("req:7@example".into()),
        resources: vec![
            "ipfs://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi".into(),
            "https://example.com/a".into(),
        ],
    };
    let d = Delegation::sign(&message, &wallet);
    cases.push(json!({
        "name": "siwe_with_all_optional_fields_no_statement",
        "kind": "siwe",
        "message": d.message,
        "signature": d.signature.to_hex(),
        "address": wallet.address().to_checksum(),
        "now": NOW.0,
        "expected": expected_fields(&message),
    }));

    json!({
        "about": "Delegations and SIWE messages signed by chordial-core's WalletKey with fixed keys \
                  (core/tests/delegation_fixtures.rs; CHORDIAL_WRITE_FIXTURES=1 rewrites this file). \
                  tests/js/rust-signatures.test.mjs verifies every one with viem.",
        "network": NETWORK,
        "statement": DELEGATION_STATEMENT,
        "cases": cases,
    })
}

/// The fields as viem's `parseSiweMessage` should return them (times as ISO strings).
fn expected_fields(m: &SiweMessage) -> Value {
    json!({
        "domain": m.domain,
        "address": m.address.to_checksum(),
        "statement": m.statement,
        "uri": m.uri,
        "version": m.version,
        "chainId": m.chain_id,
        "nonce": m.nonce,
        "issuedAt": format_rfc3339(m.issued_at),
        "expirationTime": m.expiration_time.map(format_rfc3339),
        "notBefore": m.not_before.map(format_rfc3339),
        "requestId": m.request_id,
        "resources": m.resources,
    })
}

#[test]
fn rust_signed_delegations_match_the_committed_fixture() {
    let generated = serde_json::to_string_pretty(&rust_signed_cases()).unwrap() + "\n";
    let path = fixture_path("rust-signed.json");
    if std::env::var("CHORDIAL_WRITE_FIXTURES").as_deref() == Ok("1") {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path)
        .expect("rust-signed.json missing: run with CHORDIAL_WRITE_FIXTURES=1 to create it");
    assert!(
        committed == generated,
        "rust-signed.json differs from what the code signs now; if the change is intended, rerun with \
         CHORDIAL_WRITE_FIXTURES=1 and run `node --test tests/js/` to re-check it with viem"
    );
}
