//! Core hot paths: delegation verification (cold and cached), the signed envelope, e2e seal/open, and the
//! end-to-end session (its handshake, then seal + open of one message) beside the one-shot seal + open of the
//! same size.
//!
//! `cargo bench -p chordial-core --bench core` runs them with criterion and then writes the medians, in
//! nanoseconds, as one JSON object to `target/bench/core.json` at the workspace root, including
//! `delegation_verify_ratio` = cold / cached (the cache is only worth having if this is large; ≥ 20 expected)
//! and `session_speedup_1k` = one-shot seal + open / session seal + open, both of 1 KiB.
#![allow(missing_docs)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use chordial_core::e2e::session::{self, Credentials, Initiating, Peer};
use chordial_core::e2e::{self, InnerMessage};
use chordial_core::identity::delegation::{
    delegation_message, Delegation, DelegationCache, DelegationRequest,
};
use chordial_core::identity::wallet::WalletKey;
use chordial_core::identity::SessionKey;
use chordial_core::wire::envelope::{self, Destination, Header, MessageId, NetworkTag};
use chordial_core::{Id, Timestamp};
use criterion::{black_box, BatchSize, Criterion};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const NETWORK: &str = "chordial-bench";

/// The benchmark ids, in the order they are reported.
const IDS: &[&str] = &[
    "delegation_verify_cold",
    "delegation_verify_cached",
    "envelope_encode_sign_1k",
    "envelope_verify_decode_1k",
    "e2e_seal_256",
    "e2e_open_256",
    "e2e_seal_64k",
    "e2e_open_64k",
    "e2e_seal_open_1k",
    "session_handshake",
    "session_seal_open_1k",
    "session_seal_open_64k",
];

struct Party {
    wallet: WalletKey,
    session: SessionKey,
    delegation: Delegation,
}

fn now() -> Timestamp {
    Timestamp::from_secs(1_750_000_000)
}

fn party(rng: &mut ChaCha20Rng) -> Party {
    let wallet = WalletKey::generate(rng);
    let session = SessionKey::generate(rng);
    let req = DelegationRequest {
        domain: "app.example".into(),
        address: wallet.address(),
        chain_id: 1,
        network: NETWORK.into(),
        lifetime: Duration::from_secs(30 * 86_400),
    };
    let message = delegation_message(session.public(), &req, now(), rng).to_string();
    let signature = wallet.personal_sign(message.as_bytes());
    Party { wallet, session, delegation: Delegation { message, signature } }
}

fn bench_delegation(c: &mut Criterion, alice: &Party) {
    c.bench_function("delegation_verify_cold", |b| {
        b.iter_batched_ref(
            || DelegationCache::new(16),
            |cache| cache.verify(black_box(&alice.delegation), NETWORK, now()).unwrap(),
            BatchSize::SmallInput,
        )
    });
    let mut cache = DelegationCache::new(16);
    cache.verify(&alice.delegation, NETWORK, now()).unwrap();
    c.bench_function("delegation_verify_cached", |b| {
        b.iter(|| cache.verify(black_box(&alice.delegation), NETWORK, now()).unwrap())
    });
}

fn bench_envelope(c: &mut Criterion, alice: &Party, rng: &mut ChaCha20Rng) {
    let network = NetworkTag::from_name(NETWORK);
    let header = Header {
        network,
        id: MessageId::random(rng),
        sent_at: now(),
        dest: Destination::Node(Id::hash(&[b"somewhere"])),
        hop_limit: envelope::DEFAULT_HOP_LIMIT,
        reply_to: None,
    };
    let body = vec![0x5au8; 1024];
    c.bench_function("envelope_encode_sign_1k", |b| {
        b.iter(|| envelope::encode(&alice.session, black_box(&header), black_box(&body)).unwrap())
    });
    let frame = envelope::encode(&alice.session, &header, &body).unwrap();
    c.bench_function("envelope_verify_decode_1k", |b| {
        b.iter(|| envelope::decode::<Vec<u8>>(black_box(&frame), network).unwrap())
    });
}

/// A message of `size` payload bytes from Alice to Bob.
fn message(alice: &Party, bob: &Party, size: usize) -> InnerMessage {
    InnerMessage {
        from_wallet: alice.wallet.address(),
        to_wallet: bob.wallet.address(),
        app_origin: "https://app.example".into(),
        seq: 1,
        sent_at: now(),
        payload: vec![0xa5; size],
    }
}

fn bench_e2e(c: &mut Criterion, alice: &Party, bob: &Party, rng: &mut ChaCha20Rng) {
    // The recipient's cache already knows the sender, as it does from the second message on.
    let mut cache = DelegationCache::new(16);
    for (name, size) in [("256", 256), ("64k", e2e::MAX_PAYLOAD)] {
        let inner = message(alice, bob, size);
        c.bench_function(&format!("e2e_seal_{name}"), |b| {
            b.iter(|| {
                e2e::seal(rng, &alice.session, &alice.delegation, bob.session.public(), black_box(&inner))
                    .unwrap()
            })
        });
        let ct = e2e::seal(rng, &alice.session, &alice.delegation, bob.session.public(), &inner).unwrap();
        let my_wallet = bob.wallet.address();
        c.bench_function(&format!("e2e_open_{name}"), |b| {
            b.iter(|| {
                e2e::open(&bob.session, &my_wallet, NETWORK, &mut cache, now(), black_box(&ct)).unwrap()
            })
        });
    }
}

fn bench_session(c: &mut Criterion, alice: &Party, bob: &Party, rng: &mut ChaCha20Rng) {
    let mut cache = DelegationCache::new(16);
    let inner = message(alice, bob, 1024);
    let my_wallet = bob.wallet.address();
    // The baseline, in the same run: what every message costs today.
    c.bench_function("e2e_seal_open_1k", |b| {
        b.iter(|| {
            let ct =
                e2e::seal(rng, &alice.session, &alice.delegation, bob.session.public(), black_box(&inner))
                    .unwrap();
            e2e::open(&bob.session, &my_wallet, NETWORK, &mut cache, now(), &ct).unwrap()
        })
    });
    let a = Credentials::new(&alice.session, alice.delegation.clone());
    let b = Credentials::new(&bob.session, bob.delegation.clone());
    let peer = Peer {
        session: *bob.session.public(),
        static_key: *b.static_public(),
        wallet: bob.wallet.address(),
        delegation_expires: now().saturating_add(Duration::from_secs(86_400)),
    };
    // The whole handshake, both sides, with the initiator's delegation already in the responder's cache.
    let handshake = |rng: &mut ChaCha20Rng, cache: &mut DelegationCache| {
        let (init, hello) = Initiating::start(rng, &a, peer.clone(), now(), b"").unwrap();
        let responding =
            session::accept(rng, &b, alice.session.public(), NETWORK, cache, now(), &hello).unwrap();
        let (theirs, welcome) = responding.welcome(rng, b"").unwrap();
        (init.finish(&welcome).unwrap().0, theirs)
    };
    c.bench_function("session_handshake", |bench| bench.iter(|| handshake(rng, &mut cache)));
    let (mut sa, mut sb) = handshake(rng, &mut cache);
    let header = [0x42u8; 64];
    for (name, size) in [("1k", 1024), ("64k", e2e::MAX_PAYLOAD)] {
        let payload = vec![0xa5; size];
        c.bench_function(&format!("session_seal_open_{name}"), |bench| {
            bench.iter(|| {
                let m = sa.seal(now(), &header, black_box(&payload)).unwrap();
                sb.open(now(), &header, &m).unwrap()
            })
        });
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("core/ has a parent").to_path_buf()
}

/// Where criterion keeps its results: `$CRITERION_HOME`, else `$CARGO_TARGET_DIR/criterion`, else the
/// workspace's `target/criterion` — the same order criterion itself uses, made explicit so the JSON step
/// reads what was just written.
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let target = if target.is_relative() { workspace_root().join(target) } else { target };
    target.join("criterion")
}

fn median_ns(dir: &Path, id: &str) -> Option<f64> {
    let text = std::fs::read_to_string(dir.join(id).join("new").join("estimates.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["median"]["point_estimate"].as_f64()
}

/// Collects the medians of this run into `target/bench/core.json` (workspace root).
fn write_summary(dir: &Path) -> std::io::Result<PathBuf> {
    let mut out = serde_json::Map::new();
    out.insert("unit".into(), "ns".into());
    for id in IDS {
        if let Some(ns) = median_ns(dir, id) {
            out.insert((*id).into(), serde_json::json!((ns * 10.0).round() / 10.0));
        }
    }
    if let (Some(cold), Some(cached)) =
        (median_ns(dir, "delegation_verify_cold"), median_ns(dir, "delegation_verify_cached"))
    {
        out.insert(
            "delegation_verify_ratio".into(),
            serde_json::json!((cold / cached * 10.0).round() / 10.0),
        );
    }
    if let (Some(one_shot), Some(session)) =
        (median_ns(dir, "e2e_seal_open_1k"), median_ns(dir, "session_seal_open_1k"))
    {
        out.insert(
            "session_speedup_1k".into(),
            serde_json::json!((one_shot / session * 10.0).round() / 10.0),
        );
    }
    let path = workspace_root().join("target").join("bench").join("core.json");
    std::fs::create_dir_all(path.parent().expect("has a parent"))?;
    std::fs::write(&path, serde_json::to_string_pretty(&serde_json::Value::Object(out))? + "\n")?;
    Ok(path)
}

fn main() {
    let dir = criterion_dir();
    let mut c = Criterion::default()
        .output_directory(&dir)
        .warm_up_time(Duration::from_millis(800))
        .measurement_time(Duration::from_secs(3))
        .sample_size(40)
        .configure_from_args();

    let mut rng = ChaCha20Rng::seed_from_u64(0xbe7c);
    let alice = party(&mut rng);
    let bob = party(&mut rng);
    bench_delegation(&mut c, &alice);
    bench_envelope(&mut c, &alice, &mut rng);
    bench_e2e(&mut c, &alice, &bob, &mut rng);
    bench_session(&mut c, &alice, &bob, &mut rng);
    c.final_summary();

    // `cargo test --benches` runs this in test mode: nothing was measured, write nothing.
    if std::env::args().any(|a| a == "--bench") {
        match write_summary(&dir) {
            Ok(path) => eprintln!("medians written to {}", path.display()),
            Err(e) => eprintln!("could not write the bench summary: {e}"),
        }
    }
}
