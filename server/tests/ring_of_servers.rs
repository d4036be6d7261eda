//! Five `chordial-server` processes, each bootstrapping from the first, form one correct ring: every
//! node's successor list and predecessor agree with the ring order of their ids.

mod util;

use tokio::time::Instant;

use util::{assert_netns, wait_for, Server};

const SERVERS: usize = 5;
const R: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ring_of_servers() {
    assert_netns();
    let tmp = util::workdir();
    let started = Instant::now();
    let first = Server::start(&tmp.path().join("s0"), &[]);
    let mut servers = vec![];
    for i in 1..SERVERS {
        servers.push(Server::start(&tmp.path().join(format!("s{i}")), &[&first.url]));
    }
    servers.insert(0, first);
    let mut ids: Vec<String> = servers.iter().map(|s| s.node_id.clone()).collect();
    ids.sort();
    let servers_owned = servers;
    let servers = &servers_owned;
    let ids = &ids;
    wait_for(90, "a correct ring of five servers", || async move {
        for s in servers {
            let st = s.status().await;
            let pos = ids.iter().position(|i| *i == s.node_id).unwrap();
            let want: Vec<&str> = (1..=R).map(|k| ids[(pos + k) % SERVERS].as_str()).collect();
            let have: Vec<&str> =
                st["successors"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
            let pred = ids[(pos + SERVERS - 1) % SERVERS].as_str();
            if have != want || st["predecessor"].as_str() != Some(pred) || st["joined"] != true {
                return None;
            }
        }
        Some(())
    })
    .await;
    eprintln!("ring of {SERVERS} servers correct after {:.1}s", started.elapsed().as_secs_f64());
    // Every status shows the links it uses, open, with traffic.
    for s in servers {
        let st = s.status().await;
        let links = st["links"].as_array().unwrap();
        assert!(links.iter().any(|l| l["open"] == true && l["bytes_in"].as_u64().unwrap() > 0), "{st}");
        assert_eq!(st["network"], util::NETWORK);
    }

    // SIGTERM: the server leaves gracefully (Leave to its neighbours) and exits 0; the other four close
    // the ring without it.
    let mut servers = servers_owned;
    let mut leaver = servers.pop().unwrap();
    let left_at = Instant::now();
    let status = leaver.terminate();
    assert!(status.success(), "exit status {status}");
    let log = leaver.log_text();
    assert!(log.contains("leaving the ring") && log.contains("stopped"), "{log}");
    let rest: Vec<&Server> = servers.iter().collect();
    util::wait_server_ring(&rest, 30).await;
    let repaired = left_at.elapsed();
    eprintln!("ring of {} repaired {:.1}s after SIGTERM", rest.len(), repaired.as_secs_f64());
    // A crashed neighbour is noticed only after the 4.5 s link timeout; faster means the Leave did it.
    assert!(repaired < std::time::Duration::from_millis(4500), "repair took {repaired:?}: no Leave?");
}
