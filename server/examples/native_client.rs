//! A native test client on stdin/stdout, for tests that pair it with something outside Rust (the browser
//! scenario `browser_and_native_agree` in tests/browser/scenarios.mjs). Like the process-level tests'
//! `Client` (tests/util): the core over this crate's webrtc-rs shell, joined through one server, with a
//! fresh wallet and session of its own:
//!
//! ```text
//! native_client <bootstrap-url>
//!   stdout: "wallet <0x…> node <hex>"            at start
//!           "joined"                             once the node has a live successor
//!           "message <from> <origin> <hex>"      for every message received
//!           "sent <delivered|stored>" | "failed <reason>"   for each send, in order
//!   stdin:  "send <wallet> <hex>"                sends the bytes from util::ORIGIN
//! ```
//!
//! It exits when stdin closes, leaving the ring gracefully. Network: `chordial-test` (as the tests').
#![allow(missing_docs)]

use std::collections::VecDeque;
use std::io::{BufRead, Write};
use std::net::{IpAddr, Ipv4Addr};

use chordial_core::identity::delegation::{delegation_message, DelegationRequest};
use chordial_core::identity::{Address, Delegation, SessionKey, WalletKey};
use chordial_core::node::{Config, Event, Node, SendOutcome};
use chordial_server::clock;
use chordial_server::rtc::RtcConfig;
use chordial_server::runtime;
use rand_core::{OsRng, RngCore};
use tokio::sync::{broadcast, mpsc};

const NETWORK: &str = "chordial-test";
const ORIGIN: &str = "https://test.chordial.local";

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let Some(bootstrap) = std::env::args().nth(1) else {
        eprintln!("usage: native_client <bootstrap-url>");
        std::process::exit(2);
    };
    let wallet = WalletKey::generate(&mut OsRng);
    let session = SessionKey::generate(&mut OsRng);
    let req = DelegationRequest::new("test.chordial.local", wallet.address(), 1, NETWORK);
    let delegation =
        Delegation::sign(&delegation_message(session.public(), &req, clock::now(), &mut OsRng), &wallet);
    let mut seed = [0u8; 32];
    OsRng.fill_bytes(&mut seed);
    let node = match Node::new(Config::new(NETWORK, seed), session.clone(), delegation, clock::now()) {
        Ok(node) => node,
        Err(e) => {
            eprintln!("native_client: {e}");
            std::process::exit(1);
        }
    };
    let rtc = RtcConfig { bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST), ice_servers: vec![] };
    let (node, join) = runtime::spawn(node, rtc, vec![bootstrap]);
    let mut events = node.events();
    say(&format!("wallet {} node {}", wallet.address().to_checksum(), session.node_id()));

    // stdin on a thread of its own (bounded hand-over): commands arrive while events are being printed.
    let (tx, mut commands) = mpsc::channel::<String>(64);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });

    let mut joined = false;
    let mut pending = VecDeque::new();
    loop {
        tokio::select! {
            cmd = commands.recv() => {
                let Some(cmd) = cmd else { break };
                let parts: Vec<&str> = cmd.split_whitespace().collect();
                let parsed = match parts.as_slice() {
                    ["send", to, data] => Address::parse(to).ok().zip(hex::decode(data).ok()),
                    _ => None,
                };
                let Some((to, bytes)) = parsed else {
                    say(&format!("failed bad command {cmd:?}"));
                    continue;
                };
                match node.call(move |n, now| n.send(now, ORIGIN, to, bytes)).await {
                    Some(Ok(request)) => pending.push_back(request),
                    Some(Err(reason)) => say(&format!("failed {reason}")),
                    None => break,
                }
            }
            event = events.recv() => {
                let event = match event {
                    Ok(e) => e,
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => break,
                };
                match event {
                    Event::Membership { joined: true } if !joined => {
                        joined = true;
                        say("joined");
                    }
                    Event::MessageReceived { from_wallet, app_origin, bytes, .. } => {
                        say(&format!("message {} {} {}", from_wallet.to_checksum(), app_origin, hex::encode(bytes)));
                    }
                    Event::Sent { request, outcome } if pending.contains(&request) => {
                        pending.retain(|r| *r != request);
                        let what = match outcome {
                            SendOutcome::Delivered { .. } => "delivered",
                            SendOutcome::Stored => "stored",
                        };
                        say(&format!("sent {what}"));
                    }
                    Event::RequestFailed { request, reason } if pending.contains(&request) => {
                        pending.retain(|r| *r != request);
                        say(&format!("failed {reason}"));
                    }
                    _ => {}
                }
            }
        }
    }
    node.shutdown().await;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), join).await;
}
