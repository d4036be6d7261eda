//! `POST /v1/signal` is rate-limited per client address (before anything is decoded) and per wallet
//! (once the offer's delegation verified): past the limit the answer is `429 rate_limited` with a
//! `Retry-After`, and other addresses and other wallets are still served.

mod util;

use std::net::{IpAddr, Ipv4Addr};

use util::{assert_netns, make_offer, ClientIdentity, HttpConn, Server, LOCALHOST};

fn code(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).expect("a JSON body");
    v["error"].as_str().expect("an error code").to_string()
}

fn retry_after(headers: &[(String, String)]) -> u64 {
    headers
        .iter()
        .find(|(n, _)| n == "retry-after")
        .and_then(|(_, v)| v.parse().ok())
        .expect("a Retry-After header in seconds")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signal_answers_429_per_address_and_per_wallet() {
    assert_netns();
    let tmp = util::workdir();

    // Per address: 3 at once, then one a minute.
    let a = Server::start_with(
        &tmp.path().join("a"),
        &[],
        "127.0.0.1:0",
        &["--signal-address-burst", "3", "--signal-address-per-minute", "1"],
    );
    let mut one = HttpConn::connect(LOCALHOST, &a.listen()).await;
    for _ in 0..3 {
        let (status, _, body) = one.post("/v1/signal", b"{}").await;
        assert_eq!((status, code(&body)), (400, "invalid_json".to_string()));
    }
    let (status, headers, body) = one.post("/v1/signal", b"{}").await;
    assert_eq!((status, code(&body)), (429, "rate_limited".to_string()));
    let wait = retry_after(&headers);
    assert!((50..=60).contains(&wait), "one request a minute: retry in about a minute, not {wait}");
    // Another client address is not affected.
    let mut other = HttpConn::connect(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), &a.listen()).await;
    let (status, _, _) = other.post("/v1/signal", b"{}").await;
    assert_eq!(status, 400);
    let st = a.status().await;
    assert_eq!(st["shell"]["signal_limited_address"], 1);

    // Per wallet: addresses unlimited, 2 offers per wallet at once. Verified offers whose SDP the server
    // cannot use (400 bad_description) count: they cost the server a verification and a peer connection.
    let b = Server::start_with(
        &tmp.path().join("b"),
        &[],
        "127.0.0.1:0",
        &["--signal-address-burst", "1000", "--signal-wallet-burst", "2", "--signal-wallet-per-minute", "1"],
    );
    let mut conn = HttpConn::connect(LOCALHOST, &b.listen()).await;
    let offer = |id: &ClientIdentity| {
        let now = chordial_server::clock::now();
        make_offer(&id.session, &id.delegation, now, now)
    };
    let (w, v) = (ClientIdentity::new(1), ClientIdentity::new(2));
    for _ in 0..2 {
        let (status, _, body) = conn.post_offer(&offer(&w)).await;
        assert_ne!(status, 429, "{}", String::from_utf8_lossy(&body));
    }
    let (status, headers, body) = conn.post_offer(&offer(&w)).await;
    assert_eq!((status, code(&body)), (429, "rate_limited".to_string()));
    assert!(retry_after(&headers) >= 1);
    assert!(String::from_utf8_lossy(&body).contains("wallet"), "{}", String::from_utf8_lossy(&body));
    // Another wallet, same address: served.
    let (status, _, body) = conn.post_offer(&offer(&v)).await;
    assert_ne!(status, 429, "{}", String::from_utf8_lossy(&body));
    let st = b.status().await;
    assert_eq!(st["shell"]["signal_limited_wallet"], 1);
    assert_eq!(st["shell"]["signal_limited_address"], 0);
}
