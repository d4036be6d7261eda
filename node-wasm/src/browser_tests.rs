//! Browser tests of the shell's internals (run in headless Chromium with the integration tests).

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;
use web_sys::{RtcDataChannel, RtcDataChannelInit, RtcPeerConnection, RtcSdpType, RtcSessionDescriptionInit};

use crate::js;
use crate::link::Channel;
use crate::queue::{Push, HIGH_WATER, QUEUE_BYTES};

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen(inline_js = r#"
export async function grantMediaForLoopback() {
  const s = await navigator.mediaDevices.getUserMedia({ audio: true });
  s.getTracks().forEach((t) => t.stop());
}
export function channelOpen(dc) {
  return new Promise((resolve, reject) => {
    if (dc.readyState === 'open') { resolve(); return; }
    dc.addEventListener('open', () => resolve(), { once: true });
    dc.addEventListener('close', () => reject('closed'), { once: true });
  });
}
// The reader takes each message only in a later task (it shares the page's one thread with the writer, so
// it cannot be slower by blocking) and keeps the sequence numbers in arrival order.
export function slowReader(pc, seen, bytes) {
  pc.ondatachannel = (ev) => {
    const dc = ev.channel;
    dc.binaryType = 'arraybuffer';
    dc.onmessage = (m) => {
      setTimeout(() => {
        const v = new DataView(m.data);
        seen.push(v.getUint32(0));
        bytes[0] += m.data.byteLength;
      }, 0);
    };
  };
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = grantMediaForLoopback)]
    fn grant_media() -> js_sys::Promise;
    #[wasm_bindgen(js_name = channelOpen)]
    fn channel_open(dc: &RtcDataChannel) -> js_sys::Promise;
    #[wasm_bindgen(js_name = slowReader)]
    fn slow_reader(pc: &RtcPeerConnection, seen: &js_sys::Array, bytes: &js_sys::Float64Array);
}

async fn describe(pc: &RtcPeerConnection, kind: RtcSdpType) -> String {
    let desc = if kind == RtcSdpType::Offer {
        JsFuture::from(pc.create_offer()).await.unwrap()
    } else {
        JsFuture::from(pc.create_answer()).await.unwrap()
    };
    let sdp = js_sys::Reflect::get(&desc, &"sdp".into()).unwrap().as_string().unwrap();
    let init = RtcSessionDescriptionInit::new(kind);
    init.set_sdp(&sdp);
    JsFuture::from(pc.set_local_description(&init)).await.unwrap();
    JsFuture::from(js::wait_gathering(pc, 5000)).await.unwrap();
    pc.local_description().unwrap().sdp()
}

async fn apply(pc: &RtcPeerConnection, kind: RtcSdpType, sdp: &str) {
    let init = RtcSessionDescriptionInit::new(kind);
    init.set_sdp(sdp);
    JsFuture::from(pc.set_remote_description(&init)).await.unwrap();
}

/// A writer far faster than the link and its reader: the shell keeps `bufferedAmount` under the
/// high-water mark, holds the excess in its bounded queue, drops (and counts) what does not fit, and
/// delivers everything it did not drop, in order.
#[wasm_bindgen_test]
async fn backpressure_bounds_the_buffer_and_keeps_order() {
    JsFuture::from(grant_media()).await.unwrap();
    let a = js::new_peer_connection(&js_sys::Array::new()).unwrap();
    let b = js::new_peer_connection(&js_sys::Array::new()).unwrap();
    let seen = js_sys::Array::new();
    let bytes = js_sys::Float64Array::new_with_length(1);
    slow_reader(&b, &seen, &bytes);
    let init = RtcDataChannelInit::new();
    init.set_ordered(true);
    let dc = a.create_data_channel_with_data_channel_dict("chordial", &init);
    let offer = describe(&a, RtcSdpType::Offer).await;
    apply(&b, RtcSdpType::Offer, &offer).await;
    let answer = describe(&b, RtcSdpType::Answer).await;
    apply(&a, RtcSdpType::Answer, &answer).await;
    JsFuture::from(channel_open(&dc)).await.expect("channel opens");

    let channel = Rc::new(RefCell::new(Channel::new(dc.clone())));
    channel.borrow_mut().queue.max_message = js::sctp_max_message_size(&a) as usize;
    let c = channel.clone();
    let on_low = Closure::<dyn FnMut()>::new(move || c.borrow_mut().flush());
    dc.set_onbufferedamountlow(Some(on_low.as_ref().unchecked_ref()));

    // 64 KiB frames, in one synchronous burst: far more than high-water mark + queue.
    const FRAME: usize = 64 * 1024;
    let total = (HIGH_WATER + QUEUE_BYTES) / FRAME + 64;
    let mut sent = Vec::new();
    let mut max_buffered = 0;
    for seq in 0..total as u32 {
        let mut frame = vec![0u8; FRAME];
        frame[..4].copy_from_slice(&seq.to_be_bytes());
        let result = channel.borrow_mut().send(frame);
        max_buffered = max_buffered.max(dc.buffered_amount() as usize);
        match result {
            Push::SendNow(_) | Push::Queued => sent.push(seq),
            Push::Dropped => {}
            Push::Oversize => panic!("64 KiB is under Chromium's max message size"),
        }
    }
    let (dropped, queued) = {
        let ch = channel.borrow();
        (ch.queue.dropped, ch.queue.len())
    };
    assert!(max_buffered <= HIGH_WATER + FRAME, "bufferedAmount {max_buffered} above the mark");
    assert!(queued > 0, "the burst must have queued");
    assert!(channel.borrow().queue.bytes() <= QUEUE_BYTES);
    assert!(dropped > 0, "the burst exceeds the queue: some frames are dropped");
    assert_eq!(sent.len() + dropped as usize, total);

    // Everything not dropped arrives, in order, while the queue drains on bufferedamountlow.
    let end = js_sys::Date::now() + 30_000.0;
    while (seen.length() as usize) < sent.len() {
        assert!(js_sys::Date::now() < end, "only {} of {} frames arrived", seen.length(), sent.len());
        max_buffered = max_buffered.max(dc.buffered_amount() as usize);
        gloo_timers::future::TimeoutFuture::new(20).await;
    }
    let got: Vec<u32> = seen.iter().map(|v| v.as_f64().unwrap() as u32).collect();
    assert_eq!(got, sent);
    assert!(channel.borrow().queue.is_empty());
    assert!(max_buffered <= HIGH_WATER + FRAME);

    // An oversize frame is refused before it reaches the channel (which would close on it).
    let max = channel.borrow().queue.max_message;
    assert!(max > 0, "Chromium reports the SCTP max message size");
    assert_eq!(channel.borrow_mut().send(vec![0; max + 1]), Push::Oversize);
    assert_eq!(dc.ready_state(), web_sys::RtcDataChannelState::Open);

    dc.set_onbufferedamountlow(None);
    drop(on_low);
    dc.close();
    a.close();
    b.close();
}
