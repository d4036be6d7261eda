//! `kill -9` a server that holds a mailbox entry for an offline wallet; the ring repairs; the server
//! restarts from its data dir (the entry comes back from its database); the wallet comes online and
//! receives the message exactly once.

mod util;

use chordial_core::node::records::presence_key;
use chordial_core::node::{Event, SendOutcome};
use util::{assert_netns, wait_for, wait_server_ring, Client, ClientIdentity, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_and_restart() {
    assert_netns();
    let tmp = util::workdir();
    let s0 = Server::start(&tmp.path().join("s0"), &[]);
    let s1 = Server::start(&tmp.path().join("s1"), &[&s0.url]);
    let s2 = Server::start(&tmp.path().join("s2"), &[&s0.url]);
    wait_server_ring(&[&s0, &s1, &s2], 90).await;

    // The wallet W is online once (its presence record names its session), then leaves.
    let (wi, xi) = (ClientIdentity::new(20), ClientIdentity::new(21));
    let mut w = Client::start(&wi, &s1.url);
    w.wait_event(60, "w joined", |e| matches!(e, Event::Membership { joined: true }).then_some(())).await;
    let mut x = Client::start(&xi, &s2.url);
    x.wait_event(60, "x joined", |e| matches!(e, Event::Membership { joined: true }).then_some(())).await;
    let first = x.send_when_found(wi.wallet.address(), b"hello while online".to_vec()).await;
    assert!(matches!(first, SendOutcome::Delivered { .. }), "{first:?}");
    w.stop().await;

    // X writes to the offline wallet: the message waits in W's mailbox.
    let message = b"hello while offline".to_vec();
    let stored = x.send(wi.wallet.address(), message.clone()).await;
    assert_eq!(stored, Ok(SendOutcome::Stored));

    let mut servers = vec![s0, s1, s2];
    let holder = {
        let servers = &servers;
        wait_for(30, "a server holding the mailbox entry", || async move {
            for (i, s) in servers.iter().enumerate() {
                if s.status().await["mailbox_entries"].as_u64().unwrap_or(0) > 0 {
                    return Some(i);
                }
            }
            None
        })
        .await
    };
    let mut victim = servers.remove(holder);
    let (dir, listen, victim_id) = (victim.dir.clone(), victim.listen(), victim.node_id.clone());
    victim.kill9();
    drop(victim);

    // The ring repairs around the dead server.
    {
        let servers = &servers;
        let victim_id = &victim_id;
        wait_for(60, "the ring to drop the crashed server", || async move {
            for s in servers {
                let st = s.status().await;
                let succ = st["successors"].as_array().unwrap();
                if succ.is_empty()
                    || succ.iter().any(|v| v == victim_id.as_str())
                    || st["predecessor"] == victim_id.as_str()
                {
                    return None;
                }
            }
            Some(())
        })
        .await;
    }

    // Restart from the same data dir on the same port: same identity, the entry read back from disk.
    let restarted = Server::start_on(&dir, &[&servers[0].url], &listen);
    assert_eq!(restarted.node_id, victim_id, "the identity survives a crash");
    let log = restarted.log_text();
    let loaded: u64 = log
        .lines()
        .find_map(|l| l.split("store opened").nth(1))
        .and_then(|rest| rest.split_whitespace().find_map(|w| w.strip_prefix("mailbox=")))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no store line in the log:\n{log}"));
    assert!(loaded >= 1, "mailbox entries loaded from disk: {loaded}");
    assert!(
        restarted.status().await["mailbox_entries"].as_u64().unwrap() >= 1,
        "mailbox entry back from disk"
    );
    servers.push(restarted);
    {
        // Clients are ring members too, so "rejoined" means: the restarted server has a successor and
        // another server has it as a neighbour again.
        let servers = &servers;
        let victim_id = &victim_id;
        wait_for(90, "the restarted server back in the ring", || async move {
            let me = servers[2].status().await;
            if me["joined"] != true || me["successors"].as_array().unwrap().is_empty() {
                return None;
            }
            for s in &servers[..2] {
                let st = s.status().await;
                let succ = st["successors"].as_array().unwrap();
                if succ.iter().any(|v| v == victim_id.as_str()) || st["predecessor"] == victim_id.as_str() {
                    return Some(());
                }
            }
            None
        })
        .await;
    }

    // The ring (three servers and X) is whole again, and the owner of W's presence key holds the entry:
    // mail is delivered by that owner when W publishes presence.
    {
        let key = presence_key(&wi.wallet.address()).to_string();
        let servers = &servers;
        let x = &x;
        let key = &key;
        wait_for(90, "a whole ring whose owner of W's key holds the mailbox entry", || async move {
            // (id, first successor, predecessor, mailbox entries) of every member.
            let mut view = Vec::new();
            for s in servers {
                let st = s.status().await;
                view.push((
                    s.node_id.clone(),
                    st["successors"][0].as_str().unwrap_or("").to_string(),
                    st["predecessor"].as_str().unwrap_or("").to_string(),
                    st["mailbox_entries"].as_u64().unwrap() as usize,
                ));
            }
            let xv = x
                .node
                .call(|n, _| {
                    let n = n.inspect();
                    let first = n.successors().first().map(|i| i.to_string()).unwrap_or_default();
                    let pred = n.predecessor().map(|i| i.to_string()).unwrap_or_default();
                    (n.id().to_string(), first, pred, n.mailbox_entries())
                })
                .await
                .unwrap();
            view.push(xv);
            view.sort();
            let n = view.len();
            for (i, (_, succ, pred, _)) in view.iter().enumerate() {
                if *succ != view[(i + 1) % n].0 || *pred != view[(i + n - 1) % n].0 {
                    return None;
                }
            }
            let owner = view.iter().find(|v| v.0 >= *key).unwrap_or(&view[0]);
            (owner.3 > 0).then_some(())
        })
        .await;
    }

    // W comes back with the same session: the message arrives once, and every mailbox empties.
    let mut w = Client::start(&wi, &servers[0].url);
    let x_wallet = xi.wallet.address();
    let want = message.clone();
    let id = w
        .wait_event(60, "w receives the stored message", |e| match e {
            Event::MessageReceived { from_wallet, bytes, id, .. }
                if *from_wallet == x_wallet && *bytes == want =>
            {
                Some(*id)
            }
            _ => None,
        })
        .await;
    {
        let servers = &servers;
        let x = &x;
        wait_for(60, "every mailbox copy deleted", || async move {
            for s in servers {
                if s.status().await["mailbox_entries"].as_u64().unwrap() > 0 {
                    return None;
                }
            }
            let on_x = x.node.call(|n, _| n.inspect().mailbox_entries()).await.unwrap();
            (on_x == 0).then_some(())
        })
        .await;
    }
    let mut copies = 1;
    while let Ok(e) = w.events.try_recv() {
        if matches!(e, Event::MessageReceived { id: other, .. } if other == id) {
            copies += 1;
        }
    }
    assert_eq!(copies, 1, "the stored message is delivered exactly once");
    w.stop().await;
    x.stop().await;
}
