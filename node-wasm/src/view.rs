//! The shapes JavaScript receives (status, events, request results), built from the core's types.
//! Plain data with camelCase fields; the wasm side turns them into JS objects with serde-wasm-bindgen.

use chordial_core::identity::Address;
use chordial_core::node::{Counters, SessionInfo, Status};
use chordial_core::{Id, Timestamp};
use serde::Serialize;

/// Lowercase hex of an id.
pub fn id_hex(id: &Id) -> String {
    hex::encode(id.as_bytes())
}

/// `status().bootstrap`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BootstrapView {
    /// `idle`, `connecting`, `joined` or `failed`.
    pub state: &'static str,
    /// Servers and their node ids once known.
    pub servers: Vec<ServerView>,
    /// The last failure, if any.
    pub last_error: Option<String>,
}

impl BootstrapView {
    /// The core's bootstrap status, as pages see it.
    pub fn new(b: &chordial_core::node::BootstrapStatus) -> BootstrapView {
        use chordial_core::node::BootstrapState;
        let state = match b.state {
            BootstrapState::Alone => "idle",
            BootstrapState::Connecting => "connecting",
            BootstrapState::Joined => "joined",
            BootstrapState::Failed { .. } => "failed",
        };
        BootstrapView {
            state,
            servers: b
                .servers
                .iter()
                .map(|s| ServerView { url: s.url.clone(), node_id: s.node_id.as_ref().map(id_hex) })
                .collect(),
            last_error: b.last_error.as_ref().map(|(url, e)| format!("{url}: {e}")),
        }
    }

    /// A node that is not running: its configured servers, nothing known of them.
    pub fn stopped(urls: &[String]) -> BootstrapView {
        BootstrapView {
            state: "idle",
            servers: urls.iter().map(|url| ServerView { url: url.clone(), node_id: None }).collect(),
            last_error: None,
        }
    }
}

/// One bootstrap server.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServerView {
    /// Its base URL.
    pub url: String,
    /// Its node id once a link to it opened.
    pub node_id: Option<String>,
}

/// One link in `status().links`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LinkView {
    /// The core's link id.
    pub link: u64,
    /// The peer's node id once known.
    pub peer: Option<String>,
    /// Whether the channel is open.
    pub open: bool,
    /// Roles the core gives the link.
    pub roles: Vec<String>,
    /// Smoothed ping round trip.
    pub rtt_ms: Option<f64>,
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// The browser's `bufferedAmount`.
    pub buffered_amount: u64,
    /// Frames waiting in the shell's queue.
    pub queued: u64,
}

/// What the shell adds to a link's core status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkExtra {
    /// The browser's `bufferedAmount`.
    pub buffered: u64,
    /// Frames in the shell's queue.
    pub queued: u64,
}

/// One finger.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FingerView {
    /// The lowest finger index the node fills.
    pub index: u8,
    /// Its node id.
    pub node_id: String,
}

/// `status().counters`: the core's counters plus the shell's.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CountersView {
    /// The core's counters, flattened.
    #[serde(flatten)]
    pub core: CoreCounters,
    /// RTCPeerConnections ever created by this node.
    pub peer_connections_created: u64,
    /// RTCPeerConnections not yet closed.
    pub peer_connections_open: u64,
    /// Frames dropped because a link's queue was full.
    pub frames_dropped_backpressure: u64,
    /// Frames dropped for being over a channel's maximum message size.
    pub frames_dropped_oversize: u64,
}

/// The core's counters with camelCase names.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct CoreCounters {
    pub link_creations: u64,
    pub direct_links: u64,
    pub frames_in: u64,
    pub frames_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub forwarded: u64,
    pub rerouted: u64,
    pub dropped_invalid: u64,
    pub dropped_replay: u64,
    pub refused_identity: u64,
    pub refused_links: u64,
    pub refused_records: u64,
    pub refused_messages: u64,
    pub messages_received: u64,
    pub records: u64,
    pub undeliverable: u64,
    pub route_cache_hits: u64,
    pub session_hellos: u64,
    pub session_messages: u64,
    pub session_receipts: u64,
    pub sessions_lost: u64,
}

impl From<&Counters> for CoreCounters {
    fn from(c: &Counters) -> Self {
        CoreCounters {
            link_creations: c.link_creations,
            direct_links: c.direct_links,
            frames_in: c.frames_in,
            frames_out: c.frames_out,
            bytes_in: c.bytes_in,
            bytes_out: c.bytes_out,
            forwarded: c.forwarded,
            rerouted: c.rerouted,
            dropped_invalid: c.dropped_invalid,
            dropped_replay: c.dropped_replay,
            refused_identity: c.refused_identity,
            refused_links: c.refused_links,
            refused_records: c.refused_records,
            refused_messages: c.refused_messages,
            messages_received: c.messages_received,
            records: c.records,
            undeliverable: c.undeliverable,
            route_cache_hits: c.route_cache_hits,
            session_hellos: c.session_hellos,
            session_messages: c.session_messages,
            session_receipts: c.session_receipts,
            sessions_lost: c.sessions_lost,
        }
    }
}

/// `status()`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StatusView {
    /// The network id.
    pub network: String,
    /// `idle`, `running`, `stopping` or `closed`.
    pub state: &'static str,
    /// The delegating wallet.
    pub wallet: Option<String>,
    /// The session public key (compressed, hex).
    pub session_key: String,
    /// The node id.
    pub node_id: String,
    /// When the delegation expires (Unix ms).
    pub session_expires: Option<u64>,
    /// Bootstrap progress.
    pub bootstrap: BootstrapView,
    /// Whether the node has a live successor.
    pub joined: bool,
    /// Successor list.
    pub successors: Vec<String>,
    /// Predecessor.
    pub predecessor: Option<String>,
    /// Fingers.
    pub fingers: Vec<FingerView>,
    /// Links.
    pub links: Vec<LinkView>,
    /// Counters.
    pub counters: CountersView,
}

/// Fills the ring part of a status view from the core's status; `extra` gives the shell's view of a link.
pub fn ring_view(view: &mut StatusView, status: &Status, extra: impl Fn(u64) -> LinkExtra) {
    view.successors = status.successors.iter().map(id_hex).collect();
    view.predecessor = status.predecessor.as_ref().map(id_hex);
    view.fingers =
        status.fingers.iter().map(|(i, id)| FingerView { index: *i, node_id: id_hex(id) }).collect();
    view.links = status
        .links
        .iter()
        .map(|l| {
            let x = extra(l.link.0);
            LinkView {
                link: l.link.0,
                peer: l.peer.as_ref().map(id_hex),
                open: l.open,
                roles: l.roles.clone(),
                rtt_ms: l.rtt.map(|d| d.as_secs_f64() * 1000.0),
                bytes_in: l.bytes_in,
                bytes_out: l.bytes_out,
                buffered_amount: x.buffered,
                queued: x.queued,
            }
        })
        .collect();
    view.counters.core = CoreCounters::from(&status.counters);
}

/// `pairOffer` and `pairAnswer` resolve with this.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PairCode {
    /// The code to copy to the other browser.
    pub code: String,
    /// Until when it can be used (Unix ms): the offer's time plus the pairing time limit.
    pub expires: u64,
}

/// `pairComplete` resolves with this once the link is open.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Paired {
    /// The link.
    pub link: u64,
    /// The other node's id.
    pub peer: Option<String>,
}

/// `send` resolves with this.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SendResult {
    /// The request id (decimal).
    pub id: String,
    /// `delivered` or `stored`.
    pub result: &'static str,
}

/// One session in a `lookup` result.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    /// The session's node id.
    pub node_id: String,
    /// The compressed session public key, hex.
    pub session: String,
    /// Until when its presence record is live (Unix ms).
    pub expires: u64,
}

/// `lookup` resolves with this.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LookupResult {
    /// The wallet, EIP-55.
    pub wallet: String,
    /// Its live sessions.
    pub sessions: Vec<SessionView>,
}

impl LookupResult {
    /// From the core's event.
    pub fn new(wallet: &Address, sessions: &[SessionInfo]) -> LookupResult {
        LookupResult {
            wallet: wallet.to_checksum(),
            sessions: sessions
                .iter()
                .map(|s| SessionView {
                    node_id: id_hex(&s.node_id),
                    session: hex::encode(s.session.as_bytes()),
                    expires: s.expires.as_millis(),
                })
                .collect(),
        }
    }
}

/// One member in a `discover` result.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MemberView {
    /// The wallet, EIP-55.
    pub wallet: String,
    /// When it announced (Unix ms).
    pub announced_at: u64,
}

/// `discover` resolves with these.
pub fn members(list: &[(Address, Timestamp)]) -> Vec<MemberView> {
    list.iter().map(|(w, t)| MemberView { wallet: w.to_checksum(), announced_at: t.as_millis() }).collect()
}

/// The events `onEvent` listeners receive.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum EventView {
    /// A message for this wallet.
    #[serde(rename_all = "camelCase")]
    Message {
        /// The sending wallet.
        from: String,
        /// The app origin it was sent from.
        app_origin: String,
        /// The payload (a `Uint8Array` in JS).
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
        /// The message id, hex.
        id: String,
        /// The sender's clock (Unix ms).
        sent_at: u64,
        /// Links it crossed (1: the sender's node is linked to this one).
        hops: u8,
    },
    /// Joined the ring or lost it.
    Membership {
        /// Whether the node has a live successor.
        joined: bool,
    },
    /// Bootstrap progress.
    Bootstrap {
        /// `connecting`, `joined` or `failed`.
        state: &'static str,
        /// The server concerned, if one.
        url: Option<String>,
        /// Why it failed.
        error: Option<String>,
    },
    /// A link was created, opened or closed.
    Link {
        /// The link id.
        link: u64,
        /// `opening`, `open` or `closed`.
        state: &'static str,
        /// The peer's node id once known.
        peer: Option<String>,
    },
    /// The node's state changed.
    State {
        /// `idle`, `running`, `stopping` or `closed`.
        state: &'static str,
    },
    /// An asynchronous failure.
    Error {
        /// The error code.
        code: &'static str,
        /// What went wrong.
        message: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_carry_their_type_and_camel_case_fields() {
        let ev = EventView::Message {
            from: "0xabc".into(),
            app_origin: "https://a.example".into(),
            data: vec![1, 2],
            id: "00".into(),
            sent_at: 5,
            hops: 1,
        };
        let json = serde_json::to_value(&ev).unwrap();
        assert_eq!(json["type"], "message");
        assert_eq!(json["appOrigin"], "https://a.example");
        assert_eq!(json["sentAt"], 5);
        let json = serde_json::to_value(EventView::Link { link: 3, state: "open", peer: None }).unwrap();
        assert_eq!(json, serde_json::json!({"type": "link", "link": 3, "state": "open", "peer": null}));
    }

    #[test]
    fn counters_are_flat() {
        let c = CountersView { peer_connections_created: 2, ..Default::default() };
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["peerConnectionsCreated"], 2);
        assert_eq!(json["linkCreations"], 0);
    }
}
