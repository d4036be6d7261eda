//! The node task: the one place that owns the [`Node`], feeds it inputs with the time, and carries out its
//! outputs (links, bootstrap HTTP, events). Everything else talks to it through a bounded queue.
//!
//! ```text
//!  link tasks ──Frame/Link/LocalDescription──┐
//!  HTTP /v1/signal ──Signal{body, reply}─────┤            ┌── LinkCmd ──▶ link tasks (webrtc-rs)
//!  bootstrap client ──BootstrapAnswer/Failed─┼─▶ Input ─▶ node task ──── POST /v1/signal (client)
//!  status / metrics ──Status{reply}──────────┤  (bounded)  └── Event ───▶ broadcast (apps, tests)
//!  signals / API ──Shutdown / Call───────────┘              store: StoreWriter::commit
//! ```
//!
//! The task handles the inputs that are queued (up to [`MAX_BATCH`]), commits what they changed in the
//! store in one transaction, then drains [`Node::poll_output`] and sleeps until the deadline it returns.
//! **Commit before output** is the durability rule: the core queues a record's acknowledgement as soon as
//! the store took it, and nothing the core queued leaves the task before the commit that holds the record
//! returned. If a commit fails, the task stops without carrying out another output (no acknowledgement
//! of data that is not on disk leaves) and the process exits with an error.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use chordial_core::identity::Address;
use chordial_core::node::{
    BootstrapError, Event, LinkEvent, LinkId, LinkRole, Node, Output, SignalError, Status,
};
use chordial_core::{Id, Timestamp};
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::Instrument;

use crate::clock;
use crate::limit::{Rate, RateTable};
use crate::rtc::{self, LinkHandle, RtcConfig};
use crate::signal_client;
use crate::store::{StoreStats, StoreWriter};

/// Capacity of the node task's input queue.
const INPUT_QUEUE: usize = 4096;
/// Events kept for slow subscribers (older ones are skipped, never buffered without bound).
const EVENT_QUEUE: usize = 1024;
/// HTTP signal requests waiting for their answer at once.
const MAX_PENDING_SIGNALS: usize = 256;
/// Inputs handled before one store commit and one drain of the outputs (when that many are queued).
pub const MAX_BATCH: usize = 64;

/// How the node task runs, besides the node itself.
#[derive(Debug, Clone)]
pub struct Options {
    /// WebRTC settings for links.
    pub rtc: RtcConfig,
    /// Servers to join at once.
    pub bootstrap: Vec<String>,
    /// `/v1/signal` offers per wallet (counted once the offer's delegation verified).
    pub wallet_rate: Rate,
    /// Wallets remembered by that limit (the least recently seen is forgotten).
    pub wallet_table: usize,
    /// The store's writer, when the node keeps records in a [`RedbStore`](crate::store::RedbStore):
    /// committed before every drain of outputs.
    pub store: Option<StoreWriter>,
}

impl Options {
    /// No store writer (records in memory), the default limits.
    pub fn new(rtc: RtcConfig, bootstrap: Vec<String>) -> Options {
        Options { rtc, bootstrap, wallet_rate: DEFAULT_WALLET_RATE, wallet_table: 16_384, store: None }
    }
}

/// The default per-wallet limit: 10 offers at once, 30 a minute (a wallet's devices joining, restarting,
/// retrying; a browser offers once per join).
pub const DEFAULT_WALLET_RATE: Rate = Rate { burst: 10, per_minute: 30 };

/// Counters the shell keeps besides the node's own (exported in `/metrics` and `/v1/status`).
#[derive(Debug, Default)]
pub struct ShellCounters {
    /// Frames dropped because a link's send queue was full (a slow or stuck peer).
    pub frames_dropped_full: AtomicU64,
    /// Frames not sent because they exceed the link's negotiated max message size.
    pub frames_too_large: AtomicU64,
    /// Frames the data channel refused (closed while sending).
    pub frames_send_failed: AtomicU64,
    /// `/v1/signal` offers answered.
    pub signal_answered: AtomicU64,
    /// `/v1/signal` requests refused, by any reason (bad JSON, bad offer, busy, …).
    pub signal_refused: AtomicU64,
    /// Bootstrap offers this node sent that failed (HTTP error or refusal).
    pub bootstrap_failed: AtomicU64,
    /// `/v1/signal` requests refused (429) by the per-address limit, before anything was decoded.
    pub signal_limited_address: AtomicU64,
    /// `/v1/signal` offers refused (429) by the per-wallet limit, after their delegation verified.
    pub signal_limited_wallet: AtomicU64,
}

/// An API call run on the node task with the current time.
pub type ApiCall = Box<dyn FnOnce(&mut Node, Timestamp) + Send>;

/// A unit of work for the node task.
pub enum Input {
    /// A link's complete local description.
    LocalDescription(LinkId, String),
    /// A link opened, closed or failed.
    Link(LinkId, LinkEvent),
    /// A frame arrived.
    Frame(LinkId, BytesMut),
    /// The bootstrap server answered our offer on this link.
    BootstrapAnswer(LinkId, Vec<u8>),
    /// Our bootstrap offer on this link (to the server at `url`) failed.
    BootstrapFailed {
        /// The bootstrap link.
        link: LinkId,
        /// The server's URL (for the log).
        url: String,
        /// Why.
        error: BootstrapError,
    },
    /// An offer arrived at `/v1/signal`; the reply is the answer body or why it was refused.
    Signal {
        /// The envelope bytes.
        body: Vec<u8>,
        /// Where the answer goes.
        reply: oneshot::Sender<Result<Vec<u8>, SignalRefusal>>,
    },
    /// A snapshot for the admin `/v1/status` and `/metrics`.
    Status(oneshot::Sender<Snapshot>),
    /// Answered at once: the node task is alive (`/healthz`).
    Ping(oneshot::Sender<()>),
    /// Runs an API call on the node (send, lookup, announce…) with the current time.
    Call(ApiCall),
    /// Leave the ring and stop.
    Shutdown,
}

/// Why `/v1/signal` got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignalRefusal {
    /// The node refused the offer.
    #[error(transparent)]
    Node(#[from] SignalError),
    /// The node accepted the offer but the peer connection could not use its session description.
    #[error("the offer's session description could not be used")]
    BadDescription,
    /// The node is stopping, or too many offers wait for answers.
    #[error("busy")]
    Busy,
    /// The offer verified, but its wallet made too many offers lately: try again after this long.
    #[error("too many offers from this wallet; retry in {0:?}")]
    WalletRateLimited(Duration),
}

/// What `/v1/status` shows.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The node's status.
    pub status: Status,
    /// The node's wallet, EIP-55.
    pub wallet: String,
    /// The network id.
    pub network: String,
    /// Whether the node is in a ring.
    pub joined: bool,
    /// Records held.
    pub records: u64,
    /// Mailbox entries held (counted by the store as it changes; `None` for a node without a
    /// [`RedbStore`](crate::store::RedbStore), whose count would cost a walk over the store).
    pub mailbox_entries: Option<u64>,
    /// Seconds since start.
    pub uptime_secs: u64,
    /// Per link: the peer's max message size.
    pub max_message: HashMap<LinkId, usize>,
}

/// A handle on a running node task.
#[derive(Clone)]
pub struct NodeHandle {
    inputs: mpsc::Sender<Input>,
    events: broadcast::Sender<Event>,
    /// The shell's counters.
    pub counters: Arc<ShellCounters>,
    /// The node id.
    pub node_id: Id,
    /// The wallet address, EIP-55.
    pub wallet: String,
    /// The network id.
    pub network: String,
    /// Whether the node is in a ring (updated by the node task after every drain).
    pub joined: Arc<AtomicBool>,
    /// The store's counts, if the node has a durable store.
    pub store: Option<Arc<StoreStats>>,
}

impl NodeHandle {
    /// Queues an input (waits while the queue is full); false once the node task has stopped.
    pub async fn send(&self, input: Input) -> bool {
        self.inputs.send(input).await.is_ok()
    }

    /// Subscribes to the node's application events.
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// A status snapshot, or `None` once the node task has stopped.
    pub async fn snapshot(&self) -> Option<Snapshot> {
        let (tx, rx) = oneshot::channel();
        if !self.send(Input::Status(tx)).await {
            return None;
        }
        rx.await.ok()
    }

    /// Whether the node task answers (`false` once it has stopped).
    pub async fn ping(&self) -> bool {
        let (tx, rx) = oneshot::channel();
        self.send(Input::Ping(tx)).await && rx.await.is_ok()
    }

    /// Resolves when the node task has stopped (it left, or a store commit failed).
    pub async fn stopped(&self) {
        self.inputs.closed().await
    }

    /// Runs `f` on the node with the current time and returns its result.
    pub async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Node, Timestamp) -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        let call = Box::new(move |node: &mut Node, now| {
            let _ = tx.send(f(node, now));
        });
        if !self.send(Input::Call(call)).await {
            return None;
        }
        rx.await.ok()
    }

    /// Asks the node to leave the ring and stop.
    pub async fn shutdown(&self) {
        let _ = self.inputs.send(Input::Shutdown).await;
    }
}

/// Starts the node task with [`Options::new`]: records in whatever store the node has, default limits.
pub fn spawn(
    node: Node,
    rtc: RtcConfig,
    bootstrap: Vec<String>,
) -> (NodeHandle, tokio::task::JoinHandle<()>) {
    spawn_with(node, Options::new(rtc, bootstrap))
}

/// Starts the node task; it runs until [`Input::Shutdown`] (then leaves gracefully) and returns when
/// every link is closed. `options.bootstrap` servers are joined at once.
pub fn spawn_with(node: Node, options: Options) -> (NodeHandle, tokio::task::JoinHandle<()>) {
    let Options { rtc, bootstrap, wallet_rate, wallet_table, store } = options;
    let (tx, rx) = mpsc::channel(INPUT_QUEUE);
    let (events, _) = broadcast::channel(EVENT_QUEUE);
    let counters = Arc::new(ShellCounters::default());
    let joined = Arc::new(AtomicBool::new(node.inspect().is_joined()));
    let handle = NodeHandle {
        inputs: tx.clone(),
        events: events.clone(),
        counters: counters.clone(),
        node_id: node.id(),
        wallet: node.wallet().to_checksum(),
        network: node.config().network.clone(),
        joined: joined.clone(),
        store: store.as_ref().map(|w| w.stats.clone()),
    };
    let mut task = NodeTask {
        node,
        store,
        wallet_limits: RateTable::new(wallet_rate, wallet_table),
        joined,
        failed: false,
        rtc: Arc::new(rtc),
        inputs: tx,
        links: HashMap::new(),
        pending: HashMap::new(),
        signal_links: HashMap::new(),
        next_request: 0,
        events,
        counters,
        started: clock::now(),
        leaving: false,
        left: false,
    };
    let id = task.node.id().to_string();
    let span = tracing::info_span!("node", id = &id[..8]);
    let join = tokio::spawn(
        async move {
            let now = clock::now();
            for url in &bootstrap {
                task.node.connect_bootstrap(now, url);
            }
            task.run(rx).await;
        }
        .instrument(span),
    );
    (handle, join)
}

struct NodeTask {
    node: Node,
    /// Commits the node's store (see the module docs: commit before output).
    store: Option<StoreWriter>,
    /// `/v1/signal` offers per verified wallet.
    wallet_limits: RateTable<Address>,
    joined: Arc<AtomicBool>,
    /// A store commit failed: the task stops without carrying out another output.
    failed: bool,
    rtc: Arc<RtcConfig>,
    inputs: mpsc::Sender<Input>,
    links: HashMap<LinkId, LinkHandle>,
    pending: HashMap<u64, oneshot::Sender<Result<Vec<u8>, SignalRefusal>>>,
    /// The answering link of each pending signal request (to fail the request at once if the link fails).
    signal_links: HashMap<LinkId, u64>,
    next_request: u64,
    events: broadcast::Sender<Event>,
    counters: Arc<ShellCounters>,
    started: Timestamp,
    leaving: bool,
    /// The node reported [`Event::Left`]: the task ends.
    left: bool,
}

impl NodeTask {
    async fn run(&mut self, mut rx: mpsc::Receiver<Input>) {
        loop {
            let deadline = self.drain();
            if self.left || self.failed {
                break;
            }
            let wait = deadline
                .map_or(Duration::from_secs(3600), |d| d.since(clock::now()))
                .min(Duration::from_secs(3600));
            tokio::select! {
                input = rx.recv() => match input {
                    Some(input) => {
                        self.handle(input);
                        // What else is queued joins this batch: one commit and one drain for all of it.
                        let mut deadline = deadline;
                        for _ in 1..MAX_BATCH {
                            // A busy queue must not starve the timers.
                            let now = clock::now();
                            if deadline.is_some_and(|d| now >= d) {
                                self.node.handle_timeout(now);
                                deadline = self.node.poll_timeout();
                            }
                            match rx.try_recv() {
                                Ok(input) => self.handle(input),
                                Err(_) => break,
                            }
                        }
                    }
                    None => break,
                },
                _ = tokio::time::sleep(wait) => self.node.handle_timeout(clock::now()),
            }
        }
        for (_, link) in self.links.drain() {
            link.close();
        }
        for (_, reply) in self.pending.drain() {
            let _ = reply.send(Err(SignalRefusal::Busy));
        }
    }

    fn handle(&mut self, input: Input) {
        let now = clock::now();
        match input {
            Input::LocalDescription(link, sdp) => self.node.handle_local_description(now, link, sdp),
            Input::Link(link, event) => {
                if matches!(event, LinkEvent::Closed | LinkEvent::Failed) {
                    self.links.remove(&link);
                    if let Some(request) = self.signal_links.remove(&link) {
                        if let Some(reply) = self.pending.remove(&request) {
                            let _ = reply.send(Err(SignalRefusal::BadDescription));
                        }
                    }
                }
                self.node.handle_link_event(now, link, event)
            }
            Input::Frame(link, bytes) => self.node.handle_frame(now, link, &bytes),
            Input::BootstrapAnswer(link, body) => self.node.handle_bootstrap_answer(now, link, &body),
            Input::BootstrapFailed { link, url, error } => {
                self.counters.bootstrap_failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(link = link.0, %url, %error, "bootstrap failed");
                self.node.handle_bootstrap_failure(now, link, error)
            }
            Input::Signal { body, reply } => {
                if self.leaving {
                    let _ = reply.send(Err(SignalRefusal::Busy));
                    return;
                }
                // Forget requests whose HTTP client went away (bounded either way).
                self.pending.retain(|_, r| !r.is_closed());
                let pending = &self.pending;
                self.signal_links.retain(|_, r| pending.contains_key(r));
                if self.pending.len() >= MAX_PENDING_SIGNALS {
                    let _ = reply.send(Err(SignalRefusal::Busy));
                    return;
                }
                // Every check first (the wallet is known only once the delegation verified), then the
                // wallet's limit, then the node takes the offer (its id enters the replay window).
                let wallet = match self.node.check_bootstrap_offer(now, &body) {
                    Ok(wallet) => wallet,
                    Err(e) => {
                        let _ = reply.send(Err(e.into()));
                        return;
                    }
                };
                if let Err(wait) = self.wallet_limits.check(&wallet, clock::monotonic()) {
                    self.counters.signal_limited_wallet.fetch_add(1, Ordering::Relaxed);
                    let _ = reply.send(Err(SignalRefusal::WalletRateLimited(wait)));
                    return;
                }
                self.next_request += 1;
                let request = self.next_request;
                match self.node.handle_bootstrap_offer(now, request, &body) {
                    Ok(link) => {
                        self.pending.insert(request, reply);
                        // No link: the node refused with a signed answer (the offerer is linked to it already).
                        if let Some(link) = link {
                            self.signal_links.insert(link, request);
                        }
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e.into()));
                    }
                }
            }
            Input::Status(reply) => {
                let _ = reply.send(self.snapshot(now));
            }
            Input::Ping(reply) => {
                let _ = reply.send(());
            }
            Input::Call(f) => f(&mut self.node, now),
            Input::Shutdown => {
                if !self.leaving {
                    tracing::info!("leaving the ring");
                    self.leaving = true;
                    self.node.leave(now);
                }
            }
        }
    }

    /// Commits the store, then carries out every pending output; returns the node's next deadline
    /// (`None`: it has left, or the commit failed and [`NodeTask::failed`] is set).
    fn drain(&mut self) -> Option<Timestamp> {
        if let Some(store) = &self.store {
            if let Err(e) = store.commit() {
                // The outputs queued may acknowledge what this commit held: none of them may leave.
                tracing::error!(error = %e, "store commit failed: stopping the node");
                self.failed = true;
                return None;
            }
        }
        loop {
            match self.node.poll_output() {
                Output::Timeout(at) => {
                    self.joined.store(self.node.inspect().is_joined(), Ordering::Relaxed);
                    return at;
                }
                Output::Transmit { link, bytes } => match self.links.get(&link) {
                    Some(handle) => {
                        handle.send_frame(bytes, &self.counters);
                    }
                    None => {
                        self.counters.frames_send_failed.fetch_add(1, Ordering::Relaxed);
                    }
                },
                Output::OpenLink { link, role } => {
                    let kind = if matches!(role, LinkRole::Offer) { "offer" } else { "answer" };
                    tracing::debug!(link = link.0, kind, "open link");
                    let handle = rtc::open_link(
                        link,
                        role,
                        self.rtc.clone(),
                        self.inputs.clone(),
                        self.counters.clone(),
                    );
                    self.links.insert(link, handle);
                }
                Output::ApplyRemote { link, sdp } => {
                    if let Some(handle) = self.links.get(&link) {
                        handle.apply_remote(sdp);
                    }
                }
                Output::CloseLink { link } => {
                    tracing::debug!(link = link.0, "close link");
                    if let Some(handle) = self.links.remove(&link) {
                        handle.close();
                    }
                }
                Output::BootstrapOffer { link, url, offer } => {
                    let inputs = self.inputs.clone();
                    tokio::spawn(async move {
                        let input = match signal_client::post_offer(&url, &offer).await {
                            Ok(answer) => Input::BootstrapAnswer(link, answer),
                            Err(e) => Input::BootstrapFailed { link, url, error: e.into() },
                        };
                        let _ = inputs.send(input).await;
                    });
                }
                Output::BootstrapAnswer { request, answer } => {
                    self.signal_links.retain(|_, r| *r != request);
                    if let Some(reply) = self.pending.remove(&request) {
                        let _ = reply.send(Ok(answer));
                    }
                }
                Output::PairingOffer { .. } | Output::PairingAnswer { .. } => {
                    unreachable!("a server never pairs: it calls neither pair_offer nor handle_pairing_offer")
                }
                Output::Event(event) => {
                    log_event(&event);
                    self.left |= event == Event::Left;
                    // No subscriber is fine: events are also in the log.
                    let _ = self.events.send(event);
                }
            }
        }
    }

    fn snapshot(&self, now: Timestamp) -> Snapshot {
        let status = self.node.inspect().status();
        let max_message = self
            .links
            .iter()
            .map(|(id, h)| (*id, h.max_message.load(Ordering::Relaxed).min(rtc::LOCAL_MAX_MESSAGE)))
            .collect();
        Snapshot {
            records: status.counters.records,
            status,
            wallet: self.node.wallet().to_checksum(),
            network: self.node.config().network.clone(),
            joined: self.node.inspect().is_joined(),
            mailbox_entries: self.store.as_ref().map(|w| w.stats.mailbox_entries.load(Ordering::Relaxed)),
            uptime_secs: now.since(self.started).as_secs(),
            max_message,
        }
    }
}

fn log_event(event: &Event) {
    match event {
        Event::Membership { joined } => tracing::info!(joined, "membership"),
        Event::RequestFailed { request, reason } => {
            tracing::info!(request = request.0, %reason, "request failed")
        }
        Event::MessageReceived { from_wallet, app_origin, bytes, .. } => {
            tracing::debug!(from = %from_wallet, origin = %app_origin, len = bytes.len(), "message received")
        }
        other => tracing::debug!(event = ?other, "event"),
    }
}
