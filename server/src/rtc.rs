//! Links over webrtc-rs: one peer connection and one ordered, reliable data channel per [`LinkId`].
//!
//! Each link is a task that sets the connection up as the node asked ([`LinkRole`]), reports what
//! happens as [`Input`]s to the node task, and then splits into a reader (data channel events → node)
//! and a writer (frames from a bounded queue → `send`, which waits while the channel's send buffer is
//! over its limit). A slow peer therefore fills its own queue and then loses frames, counted in
//! [`ShellCounters::frames_dropped_full`], instead of growing memory.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use chordial_core::node::{LinkEvent, LinkId, LinkRole};
use rtc::ice::mdns::MulticastDnsMode;
use rtc::peer_connection::configuration::setting_engine::SctpMaxMessageSize;
use tokio::sync::mpsc;
use webrtc::data_channel::{DataChannel, DataChannelEvent, RTCDataChannelInit};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCIceGatheringState, RTCIceServer, RTCPeerConnectionState, RTCSessionDescription, SettingEngineBuilder,
};

use crate::runtime::{Input, ShellCounters};

/// The largest message this end accepts and advertises (`a=max-message-size`): webrtc-rs's ceiling,
/// above the core's 96 KiB frame limit.
pub const LOCAL_MAX_MESSAGE: usize = SctpMaxMessageSize::MAX_MESSAGE_SIZE as usize;
/// Frames waiting for one link's data channel; past this the link is too slow and frames are dropped.
const LINK_QUEUE: usize = 256;
/// Bytes the data channel may hold unacknowledged before `send` waits (SCTP back-pressure).
const SEND_BUFFER_LIMIT: usize = 1 << 20;
/// ICE gathering (host candidates, plus STUN/TURN when configured) must finish within this.
const GATHER_TIMEOUT: Duration = Duration::from_secs(10);
/// The data channel's label.
const LABEL: &str = "chordial";

/// How this process makes peer connections.
#[derive(Clone, Debug)]
pub struct RtcConfig {
    /// The address UDP sockets bind (one port per link). Never a wildcard: webrtc-rs then skips loopback.
    pub bind_ip: IpAddr,
    /// STUN/TURN URLs; empty by default (nothing is contacted).
    pub ice_servers: Vec<String>,
}

/// What the node task tells a link task, in order.
#[derive(Debug)]
pub(crate) enum LinkCmd {
    /// The remote answer for a link we offered.
    Remote(String),
    /// One frame to send.
    Frame(Bytes),
    /// Close the connection (after the frames queued before this).
    Close,
}

/// The node task's handle on a link task.
#[derive(Debug)]
pub(crate) struct LinkHandle {
    cmds: mpsc::Sender<LinkCmd>,
    /// The remote's `a=max-message-size` (bytes), once its description is known.
    pub(crate) max_message: Arc<AtomicUsize>,
}

impl LinkHandle {
    /// Queues a frame; false when the link's queue is full or the link is gone (the frame is dropped).
    pub(crate) fn send_frame(&self, bytes: Vec<u8>, counters: &ShellCounters) -> bool {
        let limit = self.max_message.load(Ordering::Relaxed).min(LOCAL_MAX_MESSAGE);
        if bytes.len() > limit {
            counters.frames_too_large.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        if self.cmds.try_send(LinkCmd::Frame(Bytes::from(bytes))).is_err() {
            counters.frames_dropped_full.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Hands the remote answer to the link task.
    pub(crate) fn apply_remote(&self, sdp: String) {
        if self.cmds.try_send(LinkCmd::Remote(sdp)).is_err() {
            tracing::warn!("link queue full: remote description dropped");
        }
    }

    /// Asks the link task to close (after what is queued). A full queue is closed by dropping the handle.
    pub(crate) fn close(self) {
        let _ = self.cmds.try_send(LinkCmd::Close);
    }
}

/// Starts a link task for `link` and returns its handle.
pub(crate) fn open_link(
    link: LinkId,
    role: LinkRole,
    config: Arc<RtcConfig>,
    inputs: mpsc::Sender<Input>,
    counters: Arc<ShellCounters>,
) -> LinkHandle {
    let (tx, rx) = mpsc::channel(LINK_QUEUE);
    // Until the remote description says otherwise, assume the RFC 8841 default.
    let max_message = Arc::new(AtomicUsize::new(SctpMaxMessageSize::DEFAULT_MESSAGE_SIZE as usize));
    let handle = LinkHandle { cmds: tx, max_message: max_message.clone() };
    tokio::spawn(async move {
        let result = run_link(link, role, &config, &inputs, rx, &max_message, &counters).await;
        if let Err(e) = result {
            tracing::debug!(link = link.0, error = %e, "link failed");
            let _ = inputs.send(Input::Link(link, LinkEvent::Failed)).await;
        }
    });
    handle
}

/// Events the peer connection reports, forwarded to the link task.
struct Handler {
    gathered: mpsc::Sender<()>,
    channel: mpsc::Sender<Arc<dyn DataChannel>>,
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

    async fn on_data_channel(&self, data_channel: Arc<dyn DataChannel>) {
        let _ = self.channel.try_send(data_channel);
    }
}

/// Why a link could not be set up or broke.
#[derive(Debug, thiserror::Error)]
enum LinkError {
    #[error("webrtc: {0}")]
    Rtc(#[from] webrtc::error::Error),
    #[error("ICE gathering did not complete in time")]
    GatherTimeout,
    #[error("no local description")]
    NoDescription,
    #[error("closed before it opened")]
    Closed,
    #[error("connection failed")]
    Failed,
}

/// Builds a peer connection bound to the configured address with mDNS off.
pub async fn build_peer_connection(
    config: &RtcConfig,
    handler: Arc<dyn PeerConnectionEventHandler>,
) -> Result<impl PeerConnection, webrtc::error::Error> {
    let settings = SettingEngineBuilder::new()
        .with_multicast_dns_mode(MulticastDnsMode::Disabled)
        .with_sctp_max_message_size(SctpMaxMessageSize::Bounded(LOCAL_MAX_MESSAGE as u32))
        .with_include_loopback_candidate(config.bind_ip.is_loopback())
        .build();
    let ice_servers = if config.ice_servers.is_empty() {
        vec![]
    } else {
        vec![RTCIceServer { urls: config.ice_servers.clone(), ..Default::default() }]
    };
    PeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().with_ice_servers(ice_servers).build())
        .with_setting_engine(settings)
        .with_handler(handler)
        .with_udp_addrs(vec![format!("{}:0", config.bind_ip)])
        .with_data_channel_send_buffer_limit(SEND_BUFFER_LIMIT)
        .build()
        .await
}

async fn run_link(
    link: LinkId,
    role: LinkRole,
    config: &RtcConfig,
    inputs: &mpsc::Sender<Input>,
    mut cmds: mpsc::Receiver<LinkCmd>,
    max_message: &AtomicUsize,
    counters: &Arc<ShellCounters>,
) -> Result<(), LinkError> {
    let (gathered_tx, mut gathered) = mpsc::channel(1);
    let (channel_tx, mut channel_rx) = mpsc::channel(1);
    let (failed_tx, mut failed) = mpsc::channel(1);
    let handler = Handler { gathered: gathered_tx, channel: channel_tx, failed: failed_tx };
    let pc = build_peer_connection(config, Arc::new(handler)).await?;
    let result = async {
        let dc = match role {
            LinkRole::Offer => {
                let init = RTCDataChannelInit { ordered: true, ..Default::default() };
                let dc = pc.create_data_channel(LABEL, Some(init)).await?;
                let offer = pc.create_offer(None).await?;
                pc.set_local_description(offer).await?;
                let sdp = local_description(&pc, &mut gathered).await?;
                let _ = inputs.send(Input::LocalDescription(link, sdp)).await;
                // Wait for the answer; frames cannot be queued before the link opened.
                let remote = loop {
                    match cmds.recv().await {
                        Some(LinkCmd::Remote(sdp)) => break sdp,
                        Some(LinkCmd::Frame(_)) => continue,
                        Some(LinkCmd::Close) | None => return Err(LinkError::Closed),
                    }
                };
                max_message.store(remote_max_message(&remote), Ordering::Relaxed);
                pc.set_remote_description(RTCSessionDescription::answer(remote)?).await?;
                dc
            }
            LinkRole::Answer(remote) => {
                max_message.store(remote_max_message(&remote), Ordering::Relaxed);
                pc.set_remote_description(RTCSessionDescription::offer(remote)?).await?;
                let answer = pc.create_answer(None).await?;
                pc.set_local_description(answer).await?;
                let sdp = local_description(&pc, &mut gathered).await?;
                let _ = inputs.send(Input::LocalDescription(link, sdp)).await;
                tokio::select! {
                    dc = channel_rx.recv() => dc.ok_or(LinkError::Closed)?,
                    _ = failed.recv() => return Err(LinkError::Failed),
                    _ = wait_close(&mut cmds) => return Err(LinkError::Closed),
                }
            }
        };
        // Reader: data channel events → node. It ends when the channel closes.
        let reader = {
            let dc = dc.clone();
            let inputs = inputs.clone();
            tokio::spawn(async move {
                while let Some(event) = dc.poll().await {
                    let input = match event {
                        DataChannelEvent::OnOpen => Input::Link(link, LinkEvent::Opened),
                        DataChannelEvent::OnMessage(m) => Input::Frame(link, m.data),
                        DataChannelEvent::OnClose => break,
                        _ => continue,
                    };
                    if inputs.send(input).await.is_err() {
                        return;
                    }
                }
                let _ = inputs.send(Input::Link(link, LinkEvent::Closed)).await;
            })
        };
        // Writer: queued frames → data channel, until told to close or the connection fails.
        loop {
            tokio::select! {
                cmd = cmds.recv() => match cmd {
                    Some(LinkCmd::Frame(bytes)) => {
                        if dc.send(BytesMut::from(&bytes[..])).await.is_err() {
                            counters.frames_send_failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Some(LinkCmd::Remote(_)) => {}
                    Some(LinkCmd::Close) | None => break,
                },
                _ = failed.recv() => {
                    let _ = inputs.send(Input::Link(link, LinkEvent::Failed)).await;
                    break;
                }
            }
        }
        let _ = dc.close().await;
        reader.abort();
        Ok(())
    }
    .await;
    // Always close the peer connection, whatever happened.
    let _ = pc.close().await;
    result
}

async fn wait_close(cmds: &mut mpsc::Receiver<LinkCmd>) {
    loop {
        match cmds.recv().await {
            Some(LinkCmd::Close) | None => return,
            Some(_) => continue,
        }
    }
}

/// Waits for ICE gathering to finish and returns the complete local description (no trickle: the
/// description travels once, inside a signed message).
async fn local_description(
    pc: &impl PeerConnection,
    gathered: &mut mpsc::Receiver<()>,
) -> Result<String, LinkError> {
    if pc.local_description().await.is_none() {
        return Err(LinkError::NoDescription);
    }
    tokio::time::timeout(GATHER_TIMEOUT, gathered.recv()).await.map_err(|_| LinkError::GatherTimeout)?;
    pc.local_description().await.map(|d| d.sdp).ok_or(LinkError::NoDescription)
}

/// The remote's `a=max-message-size` (RFC 8841): absent means 64 KiB, 0 means no limit of its own.
pub(crate) fn remote_max_message(sdp: &str) -> usize {
    let value = sdp
        .lines()
        .find_map(|l| l.trim().strip_prefix("a=max-message-size:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    match value {
        None => SctpMaxMessageSize::DEFAULT_MESSAGE_SIZE as usize,
        Some(0) => LOCAL_MAX_MESSAGE,
        Some(n) => n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_message_size_follows_rfc_8841() {
        assert_eq!(remote_max_message("v=0\r\na=sctp-port:5000\r\n"), 65536);
        assert_eq!(remote_max_message("v=0\r\na=max-message-size:262144\r\n"), 262144);
        assert_eq!(remote_max_message("a=max-message-size:0\n"), LOCAL_MAX_MESSAGE);
        assert_eq!(remote_max_message("a=max-message-size:junk\n"), 65536);
    }

    #[test]
    fn a_stuck_link_drops_and_counts_instead_of_buffering() {
        let (tx, _rx) = mpsc::channel(LINK_QUEUE);
        let handle = LinkHandle { cmds: tx, max_message: Arc::new(AtomicUsize::new(100_000)) };
        let counters = ShellCounters::default();
        let sent = (0..LINK_QUEUE + 10).filter(|_| handle.send_frame(vec![1; 1000], &counters)).count();
        assert_eq!(sent, LINK_QUEUE);
        assert_eq!(counters.frames_dropped_full.load(Ordering::Relaxed), 10);
        assert!(!handle.send_frame(vec![1; 100_001], &counters), "over the peer's max message size");
        assert_eq!(counters.frames_too_large.load(Ordering::Relaxed), 1);
    }
}
