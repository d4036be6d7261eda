//! One link's browser side: an `RTCPeerConnection`, its one ordered data channel, the bounded send queue,
//! and the event handlers that feed the node. The handlers hold only a weak reference to the shell and
//! the run they belong to, so a stale event (after `stop`, or after the link was dropped) is ignored.

use std::rc::Weak;

use chordial_core::node::{LinkEvent, LinkId};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{MessageEvent, RtcDataChannel, RtcDataChannelEvent, RtcPeerConnection, RtcPeerConnectionState};

use crate::queue::{Push, SendQueue, LOW_WATER};
use crate::shell::{self, Shell};

/// The label of the one data channel of a link.
pub(crate) const CHANNEL_LABEL: &str = "chordial";

/// A data channel with a bounded queue in front of it (see [`crate::queue`]).
pub(crate) struct Channel {
    pub(crate) dc: RtcDataChannel,
    pub(crate) queue: SendQueue,
}

impl Channel {
    pub(crate) fn new(dc: RtcDataChannel) -> Channel {
        dc.set_binary_type(web_sys::RtcDataChannelType::Arraybuffer);
        dc.set_buffered_amount_low_threshold(LOW_WATER as u32);
        Channel { dc, queue: SendQueue::default() }
    }

    /// Sends `frame` now, queues it, or drops it (queue full, or over the max message size).
    pub(crate) fn send(&mut self, frame: Vec<u8>) -> Push {
        let buffered = self.dc.buffered_amount() as usize;
        match self.queue.push(frame, buffered) {
            Push::SendNow(frame) => {
                // A failing send means the channel is closing; its close event follows and drops the link.
                let _ = self.dc.send_with_u8_array(&frame);
                Push::SendNow(Vec::new())
            }
            other => other,
        }
    }

    /// Sends what the queue lets through now (on `bufferedamountlow`).
    pub(crate) fn flush(&mut self) {
        for frame in self.queue.drain(self.dc.buffered_amount() as usize) {
            let _ = self.dc.send_with_u8_array(&frame);
        }
    }
}

/// The shell's half of a link.
pub(crate) struct LinkIo {
    pub(crate) pc: RtcPeerConnection,
    pub(crate) channel: Option<Channel>,
    /// The channel's open was reported to the core (once: by `open`, or at `ondatachannel` when the
    /// browser hands over a channel that is already open).
    pub(crate) opened: bool,
    /// The peer's node id (hex) once the channel opened.
    pub(crate) peer: Option<String>,
    handlers: Vec<Closure<dyn FnMut(JsValue)>>,
}

type ShellWeak = Weak<std::cell::RefCell<Shell>>;

impl LinkIo {
    /// Wraps a new peer connection and watches its connection state.
    pub(crate) fn new(pc: RtcPeerConnection, weak: ShellWeak, run: u64, link: LinkId) -> LinkIo {
        let mut io = LinkIo { pc, channel: None, opened: false, peer: None, handlers: Vec::new() };
        let pc2 = io.pc.clone();
        let h = Closure::<dyn FnMut(JsValue)>::new(move |_| {
            if pc2.connection_state() == RtcPeerConnectionState::Failed {
                shell::link_event(&weak, run, link, LinkEvent::Failed);
            }
        });
        io.pc.set_onconnectionstatechange(Some(h.as_ref().unchecked_ref()));
        io.handlers.push(h);
        io
    }

    /// The answerer takes the offerer's channel from `ondatachannel`.
    pub(crate) fn accept_channel(&mut self, weak: ShellWeak, run: u64, link: LinkId) {
        let h = Closure::<dyn FnMut(JsValue)>::new(move |ev: JsValue| {
            let ev: RtcDataChannelEvent = ev.unchecked_into();
            shell::channel_arrived(&weak, run, link, ev.channel());
        });
        self.pc.set_ondatachannel(Some(h.as_ref().unchecked_ref()));
        self.handlers.push(h);
    }

    /// Takes `dc` as the link's channel and routes its events to the node.
    pub(crate) fn attach(&mut self, dc: RtcDataChannel, weak: ShellWeak, run: u64, link: LinkId) {
        let w = weak.clone();
        let on_open = Closure::<dyn FnMut(JsValue)>::new(move |_| shell::channel_opened(&w, run, link));
        let w = weak.clone();
        let on_message = Closure::<dyn FnMut(JsValue)>::new(move |ev: JsValue| {
            let ev: MessageEvent = ev.unchecked_into();
            // Binary frames only (binaryType is arraybuffer); a string is not a frame: give the node an
            // empty frame so it is counted as invalid.
            let bytes = match ev.data().dyn_into::<js_sys::ArrayBuffer>() {
                Ok(buf) => js_sys::Uint8Array::new(&buf).to_vec(),
                Err(_) => Vec::new(),
            };
            shell::frame(&w, run, link, bytes);
        });
        let w = weak.clone();
        let on_close =
            Closure::<dyn FnMut(JsValue)>::new(move |_| shell::link_event(&w, run, link, LinkEvent::Closed));
        let on_low = Closure::<dyn FnMut(JsValue)>::new(move |_| shell::buffered_low(&weak, run, link));
        dc.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        dc.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        dc.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        dc.set_onbufferedamountlow(Some(on_low.as_ref().unchecked_ref()));
        self.handlers.extend([on_open, on_message, on_close, on_low]);
        self.channel = Some(Channel::new(dc));
    }

    /// Detaches every handler and closes the channel and the peer connection.
    pub(crate) fn close(&mut self) {
        if let Some(c) = &self.channel {
            c.dc.set_onopen(None);
            c.dc.set_onmessage(None);
            c.dc.set_onclose(None);
            c.dc.set_onbufferedamountlow(None);
            c.dc.close();
        }
        self.pc.set_onconnectionstatechange(None);
        self.pc.set_ondatachannel(None);
        self.pc.close();
    }
}

impl Drop for LinkIo {
    /// A link dropped any other way (the node freed from JavaScript without `close()`) still closes its
    /// peer connection: closing twice is harmless.
    fn drop(&mut self) {
        self.close();
    }
}
