//! Two native clients (the core over webrtc-rs) bootstrap from different servers; one sends to the
//! other's wallet: the message is delivered and decrypted, and the signed receipt comes back. A 64 KiB
//! payload (a frame over the 64 KiB SCTP default) makes the same trip.

mod util;

use chordial_core::node::{Event, SendOutcome};
use util::{assert_netns, wait_server_ring, Client, ClientIdentity, Server, ORIGIN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_between_clients() {
    assert_netns();
    let tmp = util::workdir();
    let a = Server::start(&tmp.path().join("a"), &[]);
    let b = Server::start(&tmp.path().join("b"), &[&a.url]);
    wait_server_ring(&[&a, &b], 60).await;

    let (xi, yi) = (ClientIdentity::new(10), ClientIdentity::new(11));
    let mut x = Client::start(&xi, &a.url);
    let mut y = Client::start(&yi, &b.url);
    x.wait_event(60, "x joined", |e| matches!(e, Event::Membership { joined: true }).then_some(())).await;
    y.wait_event(60, "y joined", |e| matches!(e, Event::Membership { joined: true }).then_some(())).await;

    for payload in [b"gm y, from x".to_vec(), vec![0xA5; 64 * 1024]] {
        let outcome = x.send_when_found(yi.wallet.address(), payload.clone()).await;
        let y_id = yi.session.node_id();
        match outcome {
            SendOutcome::Delivered { sessions } => {
                assert_eq!(sessions, vec![y_id], "receipt from y's session")
            }
            SendOutcome::Stored => panic!("y is online: the message must be delivered, not stored"),
        }
        let x_wallet = xi.wallet.address();
        let want = payload.clone();
        y.wait_event(30, "y receives the message", |e| match e {
            Event::MessageReceived { from_wallet, app_origin, bytes, .. }
                if *from_wallet == x_wallet && app_origin == ORIGIN && *bytes == want =>
            {
                Some(())
            }
            _ => None,
        })
        .await;
        eprintln!("{} bytes delivered x → y with a receipt", payload.len());
    }
    x.stop().await;
    y.stop().await;
}
