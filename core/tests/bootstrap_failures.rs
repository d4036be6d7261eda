//! A bootstrap that fails ends its request with a typed reason: what the shell reported (unreachable, no
//! answer in time, refused with its HTTP kind), or what the core found in the answer or the link.

use chordial_core::identity::delegation::{delegation_message, Delegation, DelegationRequest};
use chordial_core::identity::wallet::WalletKey;
use chordial_core::identity::SessionKey;
use chordial_core::node::{
    BootstrapError, BootstrapState, Config, Event, FailReason, LinkEvent, LinkId, LinkRole, Node, Output,
    RefusalKind, RequestId, ServerStatus, SignalError,
};
use chordial_core::Timestamp;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const NOW: u64 = 1_800_000_000_000;

fn node(i: u8) -> Node {
    let mut rng = ChaCha20Rng::seed_from_u64(u64::from(i));
    let session = SessionKey::generate(&mut rng);
    let wallet = WalletKey::generate(&mut rng);
    let req = DelegationRequest::new("test.local", wallet.address(), 1, "test");
    let delegation =
        Delegation::sign(&delegation_message(session.public(), &req, Timestamp(NOW), &mut rng), &wallet);
    Node::new(Config::new("test", [i; 32]), session, delegation, Timestamp(NOW)).unwrap()
}

fn outputs(n: &mut Node) -> Vec<Output> {
    let mut out = Vec::new();
    loop {
        match n.poll_output() {
            Output::Timeout(_) => return out,
            o => out.push(o),
        }
    }
}

/// Starts a bootstrap and hands the core the offerer's description; returns the request, the link and the
/// offer body the shell would POST.
fn offer(n: &mut Node, now: Timestamp) -> (RequestId, LinkId, Vec<u8>) {
    let request = n.connect_bootstrap(now, "http://server");
    let link = outputs(n)
        .into_iter()
        .find_map(|o| match o {
            Output::OpenLink { link, role: LinkRole::Offer } => Some(link),
            _ => None,
        })
        .expect("the bootstrap opens a link");
    n.handle_local_description(now, link, "v=0 offer".into());
    let body = outputs(n)
        .into_iter()
        .find_map(|o| match o {
            Output::BootstrapOffer { link: l, offer, .. } if l == link => Some(offer),
            _ => None,
        })
        .expect("an offer for the server");
    (request, link, body)
}

/// The server's side of an offer: the link it opens, and its signed answer (once it described that link).
fn answer(server: &mut Node, now: Timestamp, body: &[u8]) -> (LinkId, Vec<u8>) {
    let taken = server.handle_bootstrap_offer(now, 7, body);
    assert!(matches!(taken, Ok(Some(_))), "the server takes the offer and opens a link: {taken:?}");
    let answer_link = outputs(server)
        .into_iter()
        .find_map(|o| match o {
            Output::OpenLink { link, role: LinkRole::Answer(_) } => Some(link),
            _ => None,
        })
        .expect("the server opens its side");
    server.handle_local_description(now, answer_link, "v=0 answer".into());
    let answer = outputs(server)
        .into_iter()
        .find_map(|o| match o {
            Output::BootstrapAnswer { request: 7, answer } => Some(answer),
            _ => None,
        })
        .expect("an answer body");
    (answer_link, answer)
}

fn failure(n: &mut Node, request: RequestId) -> BootstrapError {
    outputs(n)
        .into_iter()
        .find_map(|o| match o {
            Output::Event(Event::RequestFailed { request: r, reason: FailReason::Bootstrap(e) })
                if r == request =>
            {
                Some(e)
            }
            _ => None,
        })
        .expect("the bootstrap request failed")
}

#[test]
fn what_the_shell_reports_reaches_the_request_unchanged() {
    let now = Timestamp(NOW);
    let reported = [
        BootstrapError::Unreachable { detail: "connection refused".into() },
        BootstrapError::Timeout,
        BootstrapError::Refused { kind: RefusalKind::from_http_status(503), detail: "HTTP 503: busy".into() },
        BootstrapError::BadAnswer { detail: "not JSON".into() },
    ];
    for error in reported {
        let mut a = node(1);
        let (request, link, _) = offer(&mut a, now);
        a.handle_bootstrap_failure(now, link, error.clone());
        assert_eq!(failure(&mut a, request), error);
    }
}

#[test]
fn the_core_names_a_bad_answer_and_a_lost_link() {
    let now = Timestamp(NOW);
    // Bytes that are not a signed envelope.
    let mut a = node(1);
    let (request, link, _) = offer(&mut a, now);
    a.handle_bootstrap_answer(now, link, b"not an envelope");
    assert!(matches!(failure(&mut a, request), BootstrapError::BadAnswer { .. }));

    // A real answer, then the link fails before it opens, or opens and closes before the join completes.
    for opens in [false, true] {
        let mut a = node(1);
        let mut server = node(2);
        let (request, link, body) = offer(&mut a, now);
        let (_, answer) = answer(&mut server, now, &body);
        a.handle_bootstrap_answer(now, link, &answer);
        assert!(outputs(&mut a).iter().any(|o| matches!(o, Output::ApplyRemote { .. })));
        if opens {
            a.handle_link_event(now, link, LinkEvent::Opened);
            a.handle_link_event(now, link, LinkEvent::Closed);
            assert_eq!(failure(&mut a, request), BootstrapError::LinkClosed);
        } else {
            a.handle_link_event(now, link, LinkEvent::Failed);
            assert_eq!(failure(&mut a, request), BootstrapError::LinkFailed);
        }
    }
}

#[test]
fn refusals_have_the_kind_of_their_http_status() {
    assert_eq!(RefusalKind::from_http_status(400), RefusalKind::BadOffer);
    assert_eq!(RefusalKind::from_http_status(403), RefusalKind::Unauthorized);
    assert_eq!(RefusalKind::from_http_status(503), RefusalKind::Busy);
    assert_eq!(RefusalKind::from_http_status(504), RefusalKind::Timeout);
    assert_eq!(RefusalKind::from_http_status(404), RefusalKind::Other);
    // A server's own refusals (what it answers 400, 403, 503 for) have the same kinds.
    assert_eq!(RefusalKind::from(&SignalError::Replay), RefusalKind::BadOffer);
    assert_eq!(RefusalKind::from(&SignalError::NotAnOffer), RefusalKind::BadOffer);
    assert_eq!(RefusalKind::from(&SignalError::Busy), RefusalKind::Busy);
    let e =
        FailReason::Bootstrap(BootstrapError::Refused { kind: RefusalKind::Busy, detail: "HTTP 503".into() });
    assert_eq!(e.to_string(), "bootstrap failed: refused by the server (busy): HTTP 503");
}

#[test]
fn the_core_keeps_the_bootstrap_state_a_status_page_shows() {
    let now = Timestamp(NOW);
    let mut a = node(1);
    assert_eq!(a.inspect().bootstrap().state, BootstrapState::Alone);
    assert!(a.inspect().bootstrap().servers.is_empty());

    // Under way: the server is known, its id is not.
    let (_, link, _) = offer(&mut a, now);
    let b = a.inspect().bootstrap();
    assert_eq!(b.state, BootstrapState::Connecting);
    assert_eq!(b.servers, vec![ServerStatus { url: "http://server".into(), node_id: None }]);
    assert_eq!(b.last_error, None);

    // Refused: failed, with the server and the reason, and the node tries again by itself.
    let refused = BootstrapError::Refused { kind: RefusalKind::Busy, detail: "HTTP 503".into() };
    a.handle_bootstrap_failure(now, link, refused.clone());
    let b = a.inspect().bootstrap();
    assert!(matches!(b.state, BootstrapState::Failed { retry_at: Some(t) } if t > now), "{b:?}");
    assert_eq!(b.last_error, Some(("http://server".to_string(), refused)));

    // The retry fails too, without a request of the shell's: still failed, with the newer reason.
    let retry_at = match b.state {
        BootstrapState::Failed { retry_at } => retry_at.unwrap(),
        _ => unreachable!(),
    };
    a.handle_timeout(retry_at);
    let retry = outputs(&mut a)
        .into_iter()
        .find_map(|o| match o {
            Output::OpenLink { link, role: LinkRole::Offer } => Some(link),
            _ => None,
        })
        .expect("the node tries the server again");
    a.handle_bootstrap_failure(retry_at, retry, BootstrapError::Timeout);
    let b = a.inspect().bootstrap();
    assert!(matches!(b.state, BootstrapState::Failed { .. }), "{b:?}");
    assert_eq!(b.last_error, Some(("http://server".to_string(), BootstrapError::Timeout)));

    // A server that answers: its id is known, and once the link opens and the join completes, joined.
    let mut server = node(2);
    let mut a = node(1);
    let (_, link, body) = offer(&mut a, now);
    let (_, answer) = answer(&mut server, now, &body);
    a.handle_bootstrap_answer(now, link, &answer);
    let b = a.inspect().bootstrap();
    assert_eq!(b.state, BootstrapState::Connecting);
    assert_eq!(b.servers[0].node_id, Some(server.id()));
}

/// A node that knows one server by two URLs (or a server it is linked to by URL only, as a merge check
/// finds it) offers a bootstrap link to a node it is linked to already. The server must not replace the
/// live link both use (as it does for a peer that restarted): it refuses, signed, and the node learns the
/// server's id for that URL.
#[test]
fn a_server_keeps_a_live_link_when_its_peer_offers_again_by_another_url() {
    let now = Timestamp(NOW);
    let mut server = node(2);
    let mut a = node(1);
    let (_, link, body) = offer(&mut a, now);
    let (answer_link, answer) = answer(&mut server, now, &body);
    a.handle_bootstrap_answer(now, link, &answer);
    outputs(&mut a);
    a.handle_link_event(now, link, LinkEvent::Opened);
    server.handle_link_event(now, answer_link, LinkEvent::Opened);
    outputs(&mut a);
    outputs(&mut server);

    // The same server under another URL: a second offer.
    let later = Timestamp(NOW + 500);
    let request = a.connect_bootstrap(later, "http://alias");
    let second = outputs(&mut a)
        .into_iter()
        .find_map(|o| match o {
            Output::OpenLink { link, role: LinkRole::Offer } => Some(link),
            _ => None,
        })
        .expect("a second bootstrap link");
    a.handle_local_description(later, second, "v=0 offer".into());
    let body = outputs(&mut a)
        .into_iter()
        .find_map(|o| match o {
            Output::BootstrapOffer { link: l, offer, .. } if l == second => Some(offer),
            _ => None,
        })
        .expect("an offer");
    assert_eq!(server.handle_bootstrap_offer(later, 8, &body), Ok(None), "no second link");
    let refusal = outputs(&mut server)
        .into_iter()
        .find_map(|o| match o {
            Output::BootstrapAnswer { request: 8, answer } => Some(answer),
            Output::CloseLink { link } => panic!("the server closed its live link {link:?}"),
            _ => None,
        })
        .expect("a signed refusal");
    assert!(server
        .inspect()
        .links()
        .iter()
        .any(|l| l.link == answer_link && l.open && l.peer == Some(a.id())));

    a.handle_bootstrap_answer(later, second, &refusal);
    assert_eq!(failure(&mut a, request), BootstrapError::AlreadyLinked);
    assert!(a.inspect().links().iter().any(|l| l.link == link && l.open), "the first link stays");
    let servers = a.inspect().bootstrap().servers;
    assert!(servers.iter().all(|s| s.node_id == Some(server.id())), "both URLs name the server: {servers:?}");
}

/// Issue 16, item 1: an offer whose delegation does not verify must not take a place in the server's
/// replay window. Before, `handle_bootstrap_offer` remembered the id first, so 65,536 unauthorised POSTs
/// filled the window and the server refused every honest join (as `Replay`) for five minutes.
#[test]
fn unauthorised_offers_cannot_fill_the_replay_window() {
    let now = Timestamp(NOW);
    let mut server = node(2);
    // The attacker's delegation lapses after a minute; its node keeps signing offers with it.
    let mut rng = ChaCha20Rng::seed_from_u64(99);
    let session = SessionKey::generate(&mut rng);
    let wallet = WalletKey::generate(&mut rng);
    let mut req = DelegationRequest::new("test.local", wallet.address(), 1, "test");
    req.lifetime = std::time::Duration::from_secs(60);
    let lapsing = Delegation::sign(&delegation_message(session.public(), &req, now, &mut rng), &wallet);
    let mut attacker = Node::new(Config::new("test", [99; 32]), session, lapsing, now).unwrap();

    let later = Timestamp(NOW + 120_000);
    let flood = 65_536 + 16;
    for _ in 0..flood {
        let (_, link, body) = offer(&mut attacker, later);
        let refused = server.handle_bootstrap_offer(later, 1, &body);
        assert!(matches!(refused, Err(SignalError::Unauthorized(_))), "{refused:?}");
        // The attacker drops its link, so its own table stays small.
        attacker.handle_bootstrap_failure(later, link, BootstrapError::Timeout);
        outputs(&mut attacker);
    }
    assert_eq!(server.inspect().counters().refused_identity, flood as u64);

    // An honest offer right after: taken, and its replay refused as a replay.
    let mut honest = node(1);
    let (_, _, body) = offer(&mut honest, later);
    // Checking it (what a shell does to learn the wallet it limits) names the wallet and uses nothing up.
    assert_eq!(server.check_bootstrap_offer(later, &body), Ok(honest.wallet()));
    assert_eq!(server.check_bootstrap_offer(later, &body), Ok(honest.wallet()));
    let (_, _) = answer(&mut server, later, &body);
    assert!(matches!(server.handle_bootstrap_offer(later, 8, &body), Err(SignalError::Replay)));
    // An offer from outside the time window is refused before its delegation is even looked at.
    let (_, _, stale) = offer(&mut node(3), now);
    let before = server.inspect().counters().refused_identity;
    let late = Timestamp(NOW + 600_000);
    assert!(matches!(server.handle_bootstrap_offer(late, 9, &stale), Err(SignalError::Replay)));
    assert_eq!(server.inspect().counters().refused_identity, before);
}
