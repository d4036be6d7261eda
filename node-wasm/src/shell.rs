//! The run loop: feeds the core's inputs from browser events and carries out its outputs.
//!
//! Every entry point ([`input`] and the event functions below) borrows the shell, hands one input to the
//! core, drains [`Node::poll_output`] until the next deadline, and collects whatever must call back into
//! JavaScript (listeners, promise settlements, dropping handlers) as [`Deferred`] work that runs only after
//! the borrow is released — so a listener may call the API again without re-entering the borrow.
//!
//! The shell decides nothing about the protocol: it opens, closes and sends exactly as told.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use std::time::Duration;

use chordial_core::identity::delegation::Delegation;
use chordial_core::identity::{Address, SessionKey};
use chordial_core::node::{Event, LinkEvent, LinkId, LinkRole, Node, Output, RequestId, SendOutcome, Status};
use chordial_core::Timestamp;
use gloo_timers::callback::Timeout;
use js_sys::{Function, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::{RtcDataChannel, RtcDataChannelInit, RtcSdpType, RtcSessionDescriptionInit};

use crate::error::{self, ApiError};
use crate::js;
use crate::link::{LinkIo, CHANNEL_LABEL};
use crate::pairing::{self, CodeKind};
use crate::queue::Push;
use crate::store::{Accepted, Db, Stored};
use crate::view::{self, EventView, LinkExtra, StatusView};

/// How long the shell waits for ICE gathering before handing over what it has.
const GATHER_MS: u32 = 5_000;
/// How long a bootstrap HTTP exchange may take.
const SIGNAL_MS: u32 = 10_000;
/// Requests from JavaScript pending at once.
pub(crate) const MAX_PENDING: usize = 1024;
/// Bootstrap offers answered in this page (tests, `handleSignal`) pending at once.
const MAX_SIGNAL_WAITERS: usize = 64;
/// Event listeners at once.
pub(crate) const MAX_LISTENERS: usize = 256;
/// The longest a timer is set for; the deadline is re-read when it fires.
const MAX_TIMER_MS: u64 = 3_600_000;
/// How long `pairComplete` waits for the link to open once the answer is in (ICE and DTLS).
const PAIR_OPEN_MS: u32 = 60_000;

pub(crate) type ShellRef = Rc<RefCell<Shell>>;
type ShellWeak = Weak<RefCell<Shell>>;

/// The node's life as JavaScript sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunState {
    Idle,
    Running,
    Stopping,
    Closed,
}

impl RunState {
    pub(crate) fn name(self) -> &'static str {
        match self {
            RunState::Idle => "idle",
            RunState::Running => "running",
            RunState::Stopping => "stopping",
            RunState::Closed => "closed",
        }
    }
}

/// A JavaScript request waiting for the core's event.
struct Pending {
    resolve: Function,
    reject: Function,
}

/// A signalling request answered by this node: an HTTP-style bootstrap offer (`handleSignal`) or a pasted
/// pairing offer (`pairAnswer`).
struct SignalWaiter {
    resolve: Function,
    reject: Function,
    at: Timestamp,
    /// For `pairAnswer`: resolve with an answer code valid until then, not with raw bytes.
    pairing: Option<Timestamp>,
}

/// Work that calls into JavaScript, run after the shell's borrow is released.
enum Deferred {
    Emit(EventView),
    Resolve(Function, JsValue),
    Reject(Function, JsValue),
    Release(Box<LinkIo>),
}

/// A verified delegation and what it says.
#[derive(Clone)]
pub(crate) struct Delegated {
    pub(crate) delegation: Delegation,
    pub(crate) wallet: Address,
    pub(crate) expires: Timestamp,
}

/// Everything the wasm node holds.
pub(crate) struct Shell {
    pub(crate) network: String,
    pub(crate) state: RunState,
    pub(crate) session: SessionKey,
    pub(crate) delegated: Option<Delegated>,
    pub(crate) stored: Stored,
    pub(crate) ice_servers: JsValue,
    pub(crate) db: Rc<Db>,
    /// The node's accepted table, written to `db` after the outputs that changed it.
    accepted: Accepted,
    weak: ShellWeak,
    node: Option<Node>,
    /// Incremented on every start and stop: handlers and tasks of an earlier run do nothing.
    run: u64,
    links: HashMap<LinkId, LinkIo>,
    pending: HashMap<RequestId, Pending>,
    bootstraps: HashMap<RequestId, String>,
    /// Bootstrap links of this run and their server URLs; the server's node id once the link opened.
    listeners: Vec<(u32, Function)>,
    next_listener: u32,
    timer: Option<(u64, Timeout)>,
    pc_created: u64,
    pc_open: u64,
    dropped_backpressure: u64,
    dropped_oversize: u64,
    last_status: Option<Status>,
    signal_waiters: HashMap<u64, SignalWaiter>,
    next_signal: u64,
    /// `pairOffer` calls waiting for their link's offer.
    pair_offers: HashMap<LinkId, Pending>,
    /// `pairComplete` calls waiting for their link to open.
    pair_links: HashMap<LinkId, Pending>,
    /// The core reported [`Event::Left`]: a graceful stop may finish.
    left: bool,
    stop_waiters: Vec<Function>,
    deferred: Vec<Deferred>,
}

impl Shell {
    pub(crate) fn new(
        network: String,
        session: SessionKey,
        delegated: Option<Delegated>,
        stored: Stored,
        ice_servers: JsValue,
        db: Db,
        accepted: Accepted,
    ) -> ShellRef {
        Rc::new_cyclic(|weak| {
            RefCell::new(Shell {
                network,
                state: RunState::Idle,
                session,
                delegated,
                stored,
                ice_servers,
                db: Rc::new(db),
                accepted,
                weak: weak.clone(),
                node: None,
                run: 0,
                links: HashMap::new(),
                pending: HashMap::new(),
                bootstraps: HashMap::new(),
                listeners: Vec::new(),
                next_listener: 0,
                timer: None,
                pc_created: 0,
                pc_open: 0,
                dropped_backpressure: 0,
                dropped_oversize: 0,
                last_status: None,
                signal_waiters: HashMap::new(),
                next_signal: 0,
                pair_offers: HashMap::new(),
                pair_links: HashMap::new(),
                left: false,
                stop_waiters: Vec::new(),
                deferred: Vec::new(),
            })
        })
    }

    pub(crate) fn add_listener(&mut self, f: Function) -> Result<u32, ApiError> {
        if self.listeners.len() >= MAX_LISTENERS {
            return Err(ApiError::new(error::BUSY, "too many event listeners"));
        }
        self.next_listener += 1;
        self.listeners.push((self.next_listener, f));
        Ok(self.next_listener)
    }

    pub(crate) fn remove_listener(&mut self, token: u32) {
        self.listeners.retain(|(t, _)| *t != token);
    }

    pub(crate) fn pending_count(&self) -> usize {
        self.pending.len()
    }

    fn emit(&mut self, ev: EventView) {
        self.deferred.push(Deferred::Emit(ev));
    }

    fn set_state(&mut self, state: RunState) {
        if self.state != state {
            self.state = state;
            self.emit(EventView::State { state: state.name() });
        }
    }

    /// Tracks a JavaScript request the core will resolve with an event.
    pub(crate) fn track(&mut self, request: RequestId, resolve: Function, reject: Function) {
        self.pending.insert(request, Pending { resolve, reject });
    }

    /// Rejects `reject` with `e` after the borrow is released.
    pub(crate) fn reject_later(&mut self, reject: Function, e: ApiError) {
        self.deferred.push(Deferred::Reject(reject, e.into()));
    }

    // ---------------------------------------------------------------------------------------------
    // Start and stop
    // ---------------------------------------------------------------------------------------------

    /// Creates the core node and starts joining. The caller drains.
    pub(crate) fn start(&mut self, seed: [u8; 32]) -> Result<(), ApiError> {
        match self.state {
            RunState::Running | RunState::Stopping => {
                return Err(ApiError::new(error::ALREADY_RUNNING, "the node is already running"))
            }
            RunState::Closed => return Err(ApiError::new(error::CLOSED, "the node was closed")),
            RunState::Idle => {}
        }
        let now = js::now();
        let Some(d) = self.delegated.clone() else {
            return Err(ApiError::new(error::NO_DELEGATION, "no wallet delegation: call delegationRequest"));
        };
        if now >= d.expires {
            self.delegated = None;
            return Err(ApiError::new(error::NO_DELEGATION, "the wallet delegation expired"));
        }
        let config = chordial_core::node::Config::new(&self.network, seed);
        let mut node = Node::new(config, self.session.clone(), d.delegation, now)
            .map_err(|e| ApiError::new(error::BAD_SIGNATURE, e.to_string()))?;
        node.with_accepted_store(now, Box::new(self.accepted.clone()));
        self.run += 1;
        for url in self.stored.bootstrap.clone() {
            let request = node.connect_bootstrap(now, &url);
            self.bootstraps.insert(request, url.clone());
            self.emit(EventView::Bootstrap { state: "connecting", url: Some(url), error: None });
        }
        self.node = Some(node);
        self.set_state(RunState::Running);
        Ok(())
    }

    /// Begins a graceful leave; the stop completes when the core reports [`Event::Left`].
    pub(crate) fn begin_stop(&mut self, node: &mut Node, now: Timestamp) {
        self.left = false;
        node.leave(now);
        self.set_state(RunState::Stopping);
    }

    /// Ends the run: closes every link, rejects pending requests, drops the node.
    pub(crate) fn finish_stop(&mut self, final_state: RunState) {
        if let Some(node) = self.node.take() {
            self.last_status = Some(node.inspect().status());
        }
        for (_, p) in self.pair_offers.drain().chain(self.pair_links.drain()) {
            self.deferred
                .push(Deferred::Reject(p.reject, ApiError::new(error::STOPPED, "the node stopped").into()));
        }
        for link in self.links.keys().copied().collect::<Vec<_>>() {
            self.release(link);
        }
        for (_, p) in self.pending.drain() {
            self.deferred
                .push(Deferred::Reject(p.reject, ApiError::new(error::STOPPED, "the node stopped").into()));
        }
        for (_, w) in self.signal_waiters.drain() {
            self.deferred
                .push(Deferred::Reject(w.reject, ApiError::new(error::STOPPED, "the node stopped").into()));
        }
        self.bootstraps.clear();
        self.timer = None;
        self.left = false;
        self.run += 1;
        for f in std::mem::take(&mut self.stop_waiters) {
            self.deferred.push(Deferred::Resolve(f, JsValue::UNDEFINED));
        }
        self.set_state(final_state);
    }

    pub(crate) fn wait_stop(&mut self, resolve: Function) {
        self.stop_waiters.push(resolve);
    }

    // ---------------------------------------------------------------------------------------------
    // Outputs
    // ---------------------------------------------------------------------------------------------

    fn drain(&mut self, node: &mut Node, now: Timestamp) {
        loop {
            match node.poll_output() {
                Output::Timeout(at) => {
                    match at {
                        Some(at) => self.schedule(at, now),
                        None => self.timer = None,
                    }
                    // The accepted table, if a message changed it: written after that message's receipt and
                    // app event went out (IndexedDB is asynchronous), in order with earlier writes.
                    if let Some(bytes) = self.accepted.take_changed() {
                        let db = self.db.clone();
                        spawn_local(async move {
                            let _ = db.save_accepted(&bytes).await;
                        });
                    }
                    return;
                }
                Output::Transmit { link, bytes } => self.transmit(link, bytes),
                Output::OpenLink { link, role } => self.open_link(node, now, link, role),
                Output::ApplyRemote { link, sdp } => self.apply_remote(link, sdp),
                Output::CloseLink { link } => self.release(link),
                Output::PairingOffer { link, offer } => {
                    // A pairing offer goes to a person, as a code.
                    match self.pair_offers.remove(&link) {
                        Some(p) => {
                            let expires = pairing::offer_expires(&offer).map_or(0, |t| t.as_millis());
                            let code =
                                view::PairCode { code: pairing::encode(CodeKind::Offer, &offer), expires };
                            self.deferred.push(Deferred::Resolve(p.resolve, js::to_js(&code)));
                        }
                        // Nobody asked (cannot happen): do not leave the link waiting for its time limit.
                        None => {
                            node.handle_link_event(now, link, LinkEvent::Failed);
                            self.release(link);
                        }
                    }
                }
                Output::BootstrapOffer { link, url, offer } => {
                    spawn_local(bootstrap_task(self.weak.clone(), self.run, link, url, offer))
                }
                Output::BootstrapAnswer { request, answer } => {
                    if let Some(w) = self.signal_waiters.remove(&request) {
                        let value = Uint8Array::from(&answer[..]).into();
                        self.deferred.push(Deferred::Resolve(w.resolve, value));
                    }
                }
                Output::PairingAnswer { request, answer } => {
                    if let Some(w) = self.signal_waiters.remove(&request) {
                        let expires = w.pairing.map_or(0, |t| t.as_millis());
                        let code =
                            view::PairCode { code: pairing::encode(CodeKind::Answer, &answer), expires };
                        self.deferred.push(Deferred::Resolve(w.resolve, js::to_js(&code)));
                    }
                }
                Output::Event(e) => self.on_event(e),
            }
        }
    }

    fn schedule(&mut self, at: Timestamp, now: Timestamp) {
        if self.timer.as_ref().is_some_and(|(t, _)| *t == at.0) {
            return;
        }
        let delay = at.0.saturating_sub(now.0).min(MAX_TIMER_MS) as u32;
        let weak = self.weak.clone();
        let run = self.run;
        self.timer = Some((at.0, Timeout::new(delay, move || on_timer(&weak, run))));
    }

    fn transmit(&mut self, link: LinkId, bytes: Vec<u8>) {
        let Some(channel) = self.links.get_mut(&link).and_then(|io| io.channel.as_mut()) else { return };
        match channel.send(bytes) {
            Push::Dropped => self.dropped_backpressure += 1,
            Push::Oversize => self.dropped_oversize += 1,
            Push::SendNow(_) | Push::Queued => {}
        }
    }

    fn open_link(&mut self, node: &mut Node, now: Timestamp, link: LinkId, role: LinkRole) {
        let pc = match js::new_peer_connection(&self.ice_servers) {
            Ok(pc) => pc,
            Err(e) => {
                self.emit(EventView::Error {
                    code: error::WEBRTC.name,
                    message: format!("RTCPeerConnection: {}", js::describe(&e)),
                });
                node.handle_link_event(now, link, LinkEvent::Failed);
                return;
            }
        };
        self.pc_created += 1;
        self.pc_open += 1;
        let mut io = LinkIo::new(pc.clone(), self.weak.clone(), self.run, link);
        match role {
            LinkRole::Offer => {
                let init = RtcDataChannelInit::new();
                init.set_ordered(true);
                let dc = pc.create_data_channel_with_data_channel_dict(CHANNEL_LABEL, &init);
                io.attach(dc, self.weak.clone(), self.run, link);
                spawn_local(describe_task(self.weak.clone(), self.run, link, pc, None));
            }
            LinkRole::Answer(sdp) => {
                io.accept_channel(self.weak.clone(), self.run, link);
                spawn_local(describe_task(self.weak.clone(), self.run, link, pc, Some(sdp)));
            }
        }
        self.links.insert(link, io);
        self.emit(EventView::Link { link: link.0, state: "opening", peer: None });
    }

    fn apply_remote(&mut self, link: LinkId, sdp: String) {
        let Some(io) = self.links.get(&link) else { return };
        let pc = io.pc.clone();
        let (weak, run) = (self.weak.clone(), self.run);
        spawn_local(async move {
            let init = RtcSessionDescriptionInit::new(RtcSdpType::Answer);
            init.set_sdp(&sdp);
            if let Err(e) = JsFuture::from(pc.set_remote_description(&init)).await {
                report_setup_failure(&weak, run, link, &e);
            }
        });
    }

    /// Closes and forgets a link's browser side (the core already forgot it, or told us to).
    fn release(&mut self, link: LinkId) {
        let Some(mut io) = self.links.remove(&link) else { return };
        if let Some(c) = &io.channel {
            // The queue's drop counters outlive the link.
            self.dropped_backpressure += c.queue.dropped;
            self.dropped_oversize += c.queue.oversize;
        }
        io.close();
        self.pc_open = self.pc_open.saturating_sub(1);
        if let Some(p) = self.pair_offers.remove(&link) {
            let e = ApiError::new(error::WEBRTC, "the link for the offer could not be set up");
            self.deferred.push(Deferred::Reject(p.reject, e.into()));
        }
        if let Some(p) = self.pair_links.remove(&link) {
            let e = ApiError::new(
                error::WEBRTC,
                "the link closed before it opened: the two browsers could not reach each other (a TURN server \
                 in the ICE settings of both may help)",
            );
            self.deferred.push(Deferred::Reject(p.reject, e.into()));
        }
        self.emit(EventView::Link { link: link.0, state: "closed", peer: io.peer.take() });
        self.deferred.push(Deferred::Release(Box::new(io)));
    }

    fn on_event(&mut self, e: Event) {
        match e {
            Event::Sent { request, outcome } => {
                let result = match outcome {
                    SendOutcome::Delivered { .. } => "delivered",
                    SendOutcome::Stored => "stored",
                };
                self.resolve(request, js::to_js(&view::SendResult { id: request.0.to_string(), result }));
            }
            Event::RequestFailed { request, reason } => {
                if let Some(p) = self.pending.remove(&request) {
                    self.deferred.push(Deferred::Reject(p.reject, error::from_fail(&reason).into()));
                } else if let Some(url) = self.bootstraps.remove(&request) {
                    let msg = match reason {
                        chordial_core::node::FailReason::Bootstrap(e) => e.to_string(),
                        other => other.to_string(),
                    };
                    self.emit(EventView::Bootstrap { state: "failed", url: Some(url), error: Some(msg) });
                }
            }
            Event::WalletSessions { request, wallet, sessions } => {
                self.resolve(request, js::to_js(&view::LookupResult::new(&wallet, &sessions)));
            }
            Event::Discovered { request, members } => {
                self.resolve(request, js::to_js(&view::members(&members)));
            }
            Event::Done { request } => self.resolve(request, JsValue::UNDEFINED),
            Event::LookupDone { request, owner, hops, .. } => {
                let v = js::to_js(&(view::id_hex(&owner), hops));
                self.resolve(request, v);
            }
            Event::Membership { joined } => {
                if joined && !self.stored.bootstrap.is_empty() {
                    self.bootstraps.clear();
                    self.emit(EventView::Bootstrap { state: "joined", url: None, error: None });
                }
                self.emit(EventView::Membership { joined });
            }
            Event::MessageReceived { from_wallet, app_origin, bytes, id, sent_at, hops } => {
                self.emit(EventView::Message {
                    from: from_wallet.to_checksum(),
                    app_origin,
                    data: bytes,
                    id: hex::encode(id),
                    sent_at: sent_at.as_millis(),
                    hops,
                });
            }
            Event::Left => self.left = true,
        }
    }

    fn resolve(&mut self, request: RequestId, value: JsValue) {
        if let Some(p) = self.pending.remove(&request) {
            self.deferred.push(Deferred::Resolve(p.resolve, value));
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Status
    // ---------------------------------------------------------------------------------------------

    pub(crate) fn status(&self) -> StatusView {
        let (wallet, expires) = match &self.delegated {
            Some(d) => (Some(d.wallet.to_checksum()), Some(d.expires.as_millis())),
            None => (None, None),
        };
        let bootstrap = match &self.node {
            Some(node) => view::BootstrapView::new(&node.inspect().bootstrap()),
            None => view::BootstrapView::stopped(&self.stored.bootstrap),
        };
        let joined = bootstrap.state == "joined";
        let mut v = StatusView {
            network: self.network.clone(),
            state: self.state.name(),
            wallet,
            session_key: hex::encode(self.session.public().as_bytes()),
            node_id: view::id_hex(&self.session.node_id()),
            session_expires: expires,
            bootstrap,
            joined,
            successors: Vec::new(),
            predecessor: None,
            fingers: Vec::new(),
            links: Vec::new(),
            counters: view::CountersView::default(),
        };
        let live;
        let status = match &self.node {
            Some(node) => {
                live = node.inspect().status();
                Some(&live)
            }
            None => self.last_status.as_ref(),
        };
        if let Some(status) = status {
            let extra = |id: u64| {
                let Some(c) = self.links.get(&LinkId(id)).and_then(|io| io.channel.as_ref()) else {
                    return LinkExtra::default();
                };
                LinkExtra { buffered: u64::from(c.dc.buffered_amount()), queued: c.queue.len() as u64 }
            };
            view::ring_view(&mut v, status, extra);
            if self.node.is_none() {
                v.successors.clear();
                v.predecessor = None;
                v.fingers.clear();
                v.links.clear();
            }
        }
        let live_drops: (u64, u64) = self
            .links
            .values()
            .filter_map(|io| io.channel.as_ref())
            .fold((0, 0), |(d, o), c| (d + c.queue.dropped, o + c.queue.oversize));
        v.counters.peer_connections_created = self.pc_created;
        v.counters.peer_connections_open = self.pc_open;
        v.counters.frames_dropped_backpressure = self.dropped_backpressure + live_drops.0;
        v.counters.frames_dropped_oversize = self.dropped_oversize + live_drops.1;
        v
    }
}

// -------------------------------------------------------------------------------------------------
// Entry points
// -------------------------------------------------------------------------------------------------

/// Runs `f` with the running node (if the shell is in run `run`, or any run when `None`), drains the
/// outputs, then runs deferred JavaScript calls. Returns whether `f` ran.
pub(crate) fn input_run(
    shell: &ShellRef,
    run: Option<u64>,
    f: impl FnOnce(&mut Shell, &mut Node, Timestamp),
) -> bool {
    let (ran, deferred) = {
        let mut s = shell.borrow_mut();
        let mut ran = false;
        if run.is_none_or(|r| r == s.run) {
            // The node is taken out while it works so that `f` can use the shell and the node together.
            if let Some(mut node) = s.node.take() {
                let now = js::now();
                f(&mut s, &mut node, now);
                s.drain(&mut node, now);
                s.node = Some(node);
                ran = true;
            }
        }
        (ran, std::mem::take(&mut s.deferred))
    };
    run_deferred(shell, deferred);
    ran
}

/// [`input_run`] for the current run.
pub(crate) fn input(shell: &ShellRef, f: impl FnOnce(&mut Shell, &mut Node, Timestamp)) -> bool {
    input_run(shell, None, f)
}

/// Runs `f` on the shell alone (no node input), then deferred JavaScript calls.
pub(crate) fn with_shell<R>(shell: &ShellRef, f: impl FnOnce(&mut Shell) -> R) -> R {
    let (r, deferred) = {
        let mut s = shell.borrow_mut();
        let r = f(&mut s);
        (r, std::mem::take(&mut s.deferred))
    };
    run_deferred(shell, deferred);
    r
}

fn run_deferred(shell: &ShellRef, deferred: Vec<Deferred>) {
    for d in deferred {
        match d {
            Deferred::Emit(ev) => {
                let listeners: Vec<Function> =
                    shell.borrow().listeners.iter().map(|(_, f)| f.clone()).collect();
                if listeners.is_empty() {
                    continue;
                }
                let v = js::to_js(&ev);
                for f in listeners {
                    if let Err(e) = f.call1(&JsValue::NULL, &v) {
                        web_sys::console::error_2(&JsValue::from_str("chordial: event listener threw"), &e);
                    }
                }
            }
            Deferred::Resolve(f, v) | Deferred::Reject(f, v) => {
                let _ = f.call1(&JsValue::NULL, &v);
            }
            Deferred::Release(io) => drop(io),
        }
    }
}

fn on_timer(weak: &ShellWeak, run: u64) {
    let Some(shell) = weak.upgrade() else { return };
    {
        let mut s = shell.borrow_mut();
        if s.run != run {
            return;
        }
        s.timer = None;
    }
    input_run(&shell, Some(run), |_, node, now| node.handle_timeout(now));
    with_shell(&shell, |s| {
        if s.state == RunState::Stopping && s.left && s.run == run {
            s.finish_stop(RunState::Idle);
        }
    });
}

/// A link's connection or channel changed state.
pub(crate) fn link_event(weak: &ShellWeak, run: u64, link: LinkId, event: LinkEvent) {
    let Some(shell) = weak.upgrade() else { return };
    input_run(&shell, Some(run), |s, node, now| {
        if s.links.contains_key(&link) {
            node.handle_link_event(now, link, event);
            // The core forgets a closed or failed link without a CloseLink: close the browser side here.
            s.release(link);
        }
    });
}

pub(crate) fn channel_arrived(weak: &ShellWeak, run: u64, link: LinkId, dc: RtcDataChannel) {
    let Some(shell) = weak.upgrade() else {
        dc.close();
        return;
    };
    let taken = with_shell(&shell, |s| {
        if s.run != run {
            return false;
        }
        match s.links.get_mut(&link) {
            Some(io) if io.channel.is_none() => {
                io.attach(dc.clone(), weak.clone(), run, link);
                true
            }
            _ => false,
        }
    });
    if !taken {
        // A second channel on one link is not part of the protocol.
        dc.close();
    } else if dc.ready_state() == web_sys::RtcDataChannelState::Open {
        // Handed over already open: its `open` event may not come.
        channel_opened(weak, run, link);
    }
}

pub(crate) fn channel_opened(weak: &ShellWeak, run: u64, link: LinkId) {
    let Some(shell) = weak.upgrade() else { return };
    input_run(&shell, Some(run), |s, node, now| {
        let Some(io) = s.links.get_mut(&link) else { return };
        if std::mem::replace(&mut io.opened, true) {
            return;
        }
        let max = js::sctp_max_message_size(&io.pc);
        if let Some(c) = io.channel.as_mut() {
            c.queue.max_message = if max >= 1.0 { max as usize } else { 0 };
        }
        node.handle_link_event(now, link, LinkEvent::Opened);
        let peer = node.inspect().link(link).and_then(|l| l.peer);
        let peer = peer.as_ref().map(view::id_hex);
        if let Some(io) = s.links.get_mut(&link) {
            io.peer.clone_from(&peer);
        }
        if let Some(p) = s.pair_links.remove(&link) {
            let paired = view::Paired { link: link.0, peer: peer.clone() };
            s.deferred.push(Deferred::Resolve(p.resolve, js::to_js(&paired)));
        }
        s.emit(EventView::Link { link: link.0, state: "open", peer });
    });
}

pub(crate) fn frame(weak: &ShellWeak, run: u64, link: LinkId, bytes: Vec<u8>) {
    let Some(shell) = weak.upgrade() else { return };
    input_run(&shell, Some(run), |s, node, now| {
        if s.links.contains_key(&link) {
            node.handle_frame(now, link, &bytes);
        }
    });
}

pub(crate) fn buffered_low(weak: &ShellWeak, run: u64, link: LinkId) {
    let Some(shell) = weak.upgrade() else { return };
    with_shell(&shell, |s| {
        if s.run == run {
            if let Some(c) = s.links.get_mut(&link).and_then(|io| io.channel.as_mut()) {
                c.flush();
            }
        }
    });
}

fn report_setup_failure(weak: &ShellWeak, run: u64, link: LinkId, e: &JsValue) {
    let Some(shell) = weak.upgrade() else { return };
    let message = format!("link {} setup: {}", link.0, js::describe(e));
    input_run(&shell, Some(run), |s, node, now| {
        if s.links.contains_key(&link) {
            s.emit(EventView::Error { code: error::WEBRTC.name, message });
            node.handle_link_event(now, link, LinkEvent::Failed);
            s.release(link);
        }
    });
}

/// Makes the local description (an offer, or an answer to `remote_offer`), waits for ICE gathering, and
/// hands the complete description to the core.
async fn describe_task(
    weak: ShellWeak,
    run: u64,
    link: LinkId,
    pc: web_sys::RtcPeerConnection,
    remote_offer: Option<String>,
) {
    let result: Result<String, JsValue> = async {
        let kind = if let Some(sdp) = &remote_offer {
            let init = RtcSessionDescriptionInit::new(RtcSdpType::Offer);
            init.set_sdp(sdp);
            JsFuture::from(pc.set_remote_description(&init)).await?;
            RtcSdpType::Answer
        } else {
            RtcSdpType::Offer
        };
        let desc = if kind == RtcSdpType::Offer {
            JsFuture::from(pc.create_offer()).await?
        } else {
            JsFuture::from(pc.create_answer()).await?
        };
        let sdp = js_sys::Reflect::get(&desc, &JsValue::from_str("sdp"))?.as_string().unwrap_or_default();
        let init = RtcSessionDescriptionInit::new(kind);
        init.set_sdp(&sdp);
        JsFuture::from(pc.set_local_description(&init)).await?;
        JsFuture::from(js::wait_gathering(&pc, GATHER_MS)).await?;
        Ok(pc.local_description().map(|d| d.sdp()).unwrap_or(sdp))
    }
    .await;
    match result {
        Ok(sdp) => {
            let Some(shell) = weak.upgrade() else { return };
            input_run(&shell, Some(run), |s, node, now| {
                if s.links.contains_key(&link) {
                    node.handle_local_description(now, link, sdp);
                }
            });
        }
        Err(e) => report_setup_failure(&weak, run, link, &e),
    }
}

/// Carries a bootstrap offer to its server over HTTP (`POST {url}/v1/signal`).
async fn bootstrap_task(weak: ShellWeak, run: u64, link: LinkId, url: String, offer: Vec<u8>) {
    let body = Uint8Array::from(&offer[..]);
    let result = JsFuture::from(js::post_signal(&url, &body, SIGNAL_MS)).await;
    let Some(shell) = weak.upgrade() else { return };
    input_run(&shell, Some(run), |_, node, now| match result {
        Ok(v) => node.handle_bootstrap_answer(now, link, &Uint8Array::new(&v).to_vec()),
        Err(e) => node.handle_bootstrap_failure(now, link, js::bootstrap_failure(&e)),
    });
}

/// Answers a bootstrap offer with this node (the server's role): resolves with the answer body.
pub(crate) fn handle_signal(shell: &ShellRef, body: Vec<u8>) -> js_sys::Promise {
    let promise = js_sys::Promise::new(&mut |resolve, reject| {
        let ran = input(shell, |s, node, now| {
            // Offers the core never answered (its answer side failed) were rejected by the deadline below.
            let stale = now.saturating_sub(Duration::from_millis(u64::from(SIGNAL_MS + GATHER_MS)));
            s.signal_waiters.retain(|_, w| w.at > stale);
            if s.signal_waiters.len() >= MAX_SIGNAL_WAITERS {
                s.reject_later(reject.clone(), ApiError::new(error::BUSY, "too many signalling requests"));
                return;
            }
            s.next_signal += 1;
            let request = s.next_signal;
            match node.handle_bootstrap_offer(now, request, &body) {
                Ok(_link) => {
                    let w = SignalWaiter {
                        resolve: resolve.clone(),
                        reject: reject.clone(),
                        at: now,
                        pairing: None,
                    };
                    s.signal_waiters.insert(request, w);
                }
                Err(e) => s.reject_later(reject.clone(), ApiError::new(error::REFUSED, e.to_string())),
            }
        });
        if !ran {
            let _ = reject
                .call1(&JsValue::NULL, &ApiError::new(error::NOT_RUNNING, "the node is not running").into());
        }
    });
    js::deadline(&promise, SIGNAL_MS + GATHER_MS, error::TIMEOUT, "signalling timed out")
}

// -------------------------------------------------------------------------------------------------
// Pairing (no server: a person carries an offer code and an answer code)
// -------------------------------------------------------------------------------------------------

/// Rejects with NOT_RUNNING or CLOSED when `input` did not run.
fn not_running(shell: &ShellRef, reject: &Function) {
    let e = match shell.borrow().state {
        RunState::Closed => ApiError::new(error::CLOSED, "the node was closed"),
        _ => ApiError::new(error::NOT_RUNNING, "the node is not running"),
    };
    let _ = reject.call1(&JsValue::NULL, &e.into());
}

/// `pairOffer`: resolves `{code, expires}` once the offer (with its gathered candidates) is made.
pub(crate) fn pair_offer(shell: &ShellRef) -> js_sys::Promise {
    let promise = js_sys::Promise::new(&mut |resolve, reject| {
        let ran = input(shell, |s, node, now| match node.pair_offer(now) {
            Ok(link) => {
                s.pair_offers.insert(link, Pending { resolve: resolve.clone(), reject: reject.clone() });
            }
            Err(e) => s.reject_later(reject.clone(), pairing::refused(&e)),
        });
        if !ran {
            not_running(shell, &reject);
        }
    });
    js::deadline(&promise, GATHER_MS + SIGNAL_MS, error::TIMEOUT, "the offer could not be made in time")
}

/// `pairAnswer`: takes the other browser's offer; resolves `{code, expires}` with the answer to send back.
pub(crate) fn pair_answer(shell: &ShellRef, frame: Vec<u8>) -> js_sys::Promise {
    let promise = js_sys::Promise::new(&mut |resolve, reject| {
        let ran = input(shell, |s, node, now| {
            if s.signal_waiters.len() >= MAX_SIGNAL_WAITERS {
                s.reject_later(reject.clone(), ApiError::new(error::BUSY, "too many signalling requests"));
                return;
            }
            s.next_signal += 1;
            let request = s.next_signal;
            match node.handle_pairing_offer(now, request, &frame) {
                Ok(_link) => {
                    let expires = pairing::offer_expires(&frame);
                    let w = SignalWaiter {
                        resolve: resolve.clone(),
                        reject: reject.clone(),
                        at: now,
                        pairing: expires,
                    };
                    s.signal_waiters.insert(request, w);
                }
                Err(e) => s.reject_later(reject.clone(), pairing::refused(&e)),
            }
        });
        if !ran {
            not_running(shell, &reject);
        }
    });
    js::deadline(&promise, GATHER_MS + SIGNAL_MS, error::TIMEOUT, "the answer could not be made in time")
}

/// `pairComplete`: takes the answer to this node's offer; resolves `{link, peer}` once the link is open.
pub(crate) fn pair_complete(shell: &ShellRef, frame: Vec<u8>) -> js_sys::Promise {
    let promise = js_sys::Promise::new(&mut |resolve, reject| {
        let ran = input(shell, |s, node, now| match node.handle_pairing_answer(now, &frame) {
            Ok(link) => {
                s.pair_links.insert(link, Pending { resolve: resolve.clone(), reject: reject.clone() });
            }
            Err(e) => s.reject_later(reject.clone(), pairing::refused(&e)),
        });
        if !ran {
            not_running(shell, &reject);
        }
    });
    js::deadline(
        &promise,
        PAIR_OPEN_MS,
        error::TIMEOUT,
        "the link did not open within 60 s: the two browsers may not reach each other directly (a TURN server in \
         the ICE settings of both may help)",
    )
}
