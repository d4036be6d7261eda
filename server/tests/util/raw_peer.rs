//! A hostile peer with no Chordial node behind it: one webrtc-rs peer connection and one data channel,
//! admitted by a server through an ordinary signed bootstrap offer, that then sends whatever bytes the
//! test gives it. This is what an attacker holding a valid session and delegation can do to a server.
//!
//! The signed `ConnectOffer` envelope and the check of the server's answer come from the core, whose
//! routed message types are private: a throwaway [`Node`] signs an offer around this peer's own SDP
//! (`connect_bootstrap` + `handle_local_description`) and unwraps the server's answer
//! (`handle_bootstrap_answer` → `ApplyRemote`). The node never touches a socket and is dropped as soon as
//! the answer is applied; the frames go straight from the test to the data channel.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use chordial_core::node::{Config, LinkRole, Node, Output};
use chordial_server::clock;
use chordial_server::rtc::{build_peer_connection, RtcConfig};
use chordial_server::signal_client;
use rand_core::RngCore;
use tokio::sync::mpsc;
use webrtc::data_channel::{DataChannel, DataChannelEvent, RTCDataChannelInit};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionEventHandler, RTCIceGatheringState, RTCPeerConnectionState,
    RTCSessionDescription,
};

use super::{poll_until, ClientIdentity, Server, NETWORK};

/// How long ICE gathering, the HTTP exchange and the channel's opening may each take.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// A raw peer connection to a server with its data channel open.
pub struct RawPeer {
    pc: Box<dyn PeerConnection>,
    dc: Arc<dyn DataChannel>,
    /// Set once the channel closed or the connection failed (the server dropped us).
    closed: Arc<AtomicBool>,
    /// Reads (and discards) what the server sends, so nothing piles up in the channel.
    reader: tokio::task::JoinHandle<()>,
}

/// Gathering and failure, forwarded from the peer connection's callbacks.
struct Handler {
    gathered: mpsc::Sender<()>,
    failed: mpsc::Sender<()>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.gathered.try_send(());
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        if state == RTCPeerConnectionState::Failed {
            let _ = self.failed.try_send(());
        }
    }
}

impl RawPeer {
    /// Offers a data channel to `server` as `id` through its `/v1/signal`, applies the signed answer and
    /// waits until the channel is open. Panics (the test fails) at any step that does not succeed.
    pub async fn connect(server: &Server, id: &ClientIdentity) -> RawPeer {
        // The server's own settings: 127.0.0.1 only, host candidates, mDNS off, no STUN or TURN.
        let config = RtcConfig { bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST), ice_servers: vec![] };
        let (gathered_tx, mut gathered) = mpsc::channel(1);
        let (failed_tx, mut failed) = mpsc::channel(1);
        let handler = Handler { gathered: gathered_tx, failed: failed_tx };
        let pc = build_peer_connection(&config, Arc::new(handler)).await.expect("a peer connection");
        let init = RTCDataChannelInit { ordered: true, ..Default::default() };
        let dc = pc.create_data_channel("chordial", Some(init)).await.expect("a data channel");
        let offer = pc.create_offer(None).await.expect("an offer");
        pc.set_local_description(offer).await.expect("the local offer applied");
        tokio::time::timeout(STEP_TIMEOUT, gathered.recv()).await.expect("ICE gathering completes");
        let sdp = pc.local_description().await.expect("a local description").sdp;

        // A throwaway node signs the bootstrap ConnectOffer around our SDP.
        let mut seed = [0u8; 32];
        rand_core::OsRng.fill_bytes(&mut seed);
        let now = clock::now();
        let mut signer =
            Node::new(Config::new(NETWORK, seed), id.session.clone(), id.delegation.clone(), now).unwrap();
        signer.connect_bootstrap(now, &server.url);
        let link = poll_until(&mut signer, "the bootstrap link", |o| match o {
            Output::OpenLink { link, role: LinkRole::Offer } => Some(link),
            _ => None,
        });
        signer.handle_local_description(clock::now(), link, sdp);
        let offer = poll_until(&mut signer, "the signed offer", |o| match o {
            Output::BootstrapOffer { offer, .. } => Some(offer),
            _ => None,
        });

        // We post it ourselves; the node only checks the answer's signature and hands back its SDP.
        let answer = tokio::time::timeout(STEP_TIMEOUT, signal_client::post_offer(&server.url, &offer))
            .await
            .expect("the server answers in time")
            .expect("the server accepts the offer");
        signer.handle_bootstrap_answer(clock::now(), link, &answer);
        let remote = poll_until(&mut signer, "the server's answer SDP", |o| match o {
            Output::ApplyRemote { sdp, .. } => Some(sdp),
            _ => None,
        });
        drop(signer);
        pc.set_remote_description(RTCSessionDescription::answer(remote).expect("an answer SDP"))
            .await
            .expect("the server's answer applied");

        let opened = tokio::time::timeout(STEP_TIMEOUT, async {
            loop {
                tokio::select! {
                    event = dc.poll() => match event {
                        Some(DataChannelEvent::OnOpen) => return true,
                        Some(_) => continue,
                        None => return false,
                    },
                    _ = failed.recv() => return false,
                }
            }
        })
        .await
        .expect("the data channel opens in time");
        assert!(opened, "the data channel closed or the connection failed before it opened");

        let closed = Arc::new(AtomicBool::new(false));
        let reader = {
            let (dc, closed) = (dc.clone(), closed.clone());
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        event = dc.poll() => match event {
                            Some(DataChannelEvent::OnClose) | None => break,
                            Some(_) => continue,
                        },
                        _ = failed.recv() => break,
                    }
                }
                closed.store(true, Ordering::Relaxed);
            })
        };
        RawPeer { pc: Box::new(pc), dc, closed, reader }
    }

    /// Sends `frame` as it is, one data channel message; false if the channel refused it.
    pub async fn send(&self, frame: &[u8]) -> bool {
        self.dc.send(BytesMut::from(frame)).await.is_ok()
    }

    /// Whether the server closed the channel (or the connection failed) since it opened.
    pub fn closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Closes the channel and the peer connection.
    pub async fn close(self) {
        self.reader.abort();
        let _ = self.dc.close().await;
        let _ = self.pc.close().await;
    }
}
