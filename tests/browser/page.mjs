// The test page: loads the built package and drives one ChordialNode the way the extension's offscreen
// document will — open (restores from IndexedDB), ask the wallet for the one signature only when there
// is no valid delegation, start. Exposed as window.chordialPage for Playwright.
import init, { ChordialNode } from '/pkg/chordial_node_wasm.js';

const initT0 = performance.now();
let instantiateMs = null;
const ready = init().then(() => {
  instantiateMs = performance.now() - initT0;
});
const page = {
  node: null,
  events: [],
  messages: [],
  timings: {},

  async boot({ network, bootstrap, database, iceServers = [] }) {
    await ready;
    const t1 = performance.now();
    const node = await ChordialNode.open({ network, bootstrap, iceServers, database });
    const t2 = performance.now();
    // instantiateMs: fetch + compile + instantiate of the .wasm (init()); openMs: ChordialNode.open.
    this.timings = { instantiateMs, openMs: t2 - t1 };
    this.node = node;
    node.onEvent((ev) => {
      this.events.push({ ...ev, at: performance.now() });
      if (ev.type === 'message') this.messages.push({ ...ev, text: new TextDecoder().decode(ev.data) });
    });
    let signed = false;
    if (!node.status().wallet) {
      const [address] = await window.ethereum.request({ method: 'eth_requestAccounts' });
      const chainId = parseInt(await window.ethereum.request({ method: 'eth_chainId' }), 16);
      const text = await node.delegationRequest({ domain: location.host, address, chainId });
      const hex = '0x' + Array.from(new TextEncoder().encode(text), (b) => b.toString(16).padStart(2, '0')).join('');
      const signature = await window.ethereum.request({ method: 'personal_sign', params: [hex, address] });
      await node.completeDelegation(signature);
      signed = true;
    }
    this.timings.startAt = performance.now();
    await node.start();
    return { signed, status: node.status() };
  },

  joined() {
    return this.events.some((e) => e.type === 'membership' && e.joined);
  },

  firstLinkOpenMs() {
    const e = this.events.find((e) => e.type === 'link' && e.state === 'open');
    return e ? e.at - this.timings.startAt : null;
  },

  async send(appOrigin, to, text) {
    return this.node.send(appOrigin, to, new TextEncoder().encode(text));
  },

  // Retries while the recipient is not found yet. 60 s by default: a presence record stored while the ring
  // changed can wait for the core's record re-home round (30 s) before its owner serves it.
  async sendRetrying(appOrigin, to, text, ms = 60000) {
    const end = Date.now() + ms;
    for (;;) {
      try {
        return await this.send(appOrigin, to, text);
      } catch (e) {
        if (!['NOT_FOUND', 'NODE_NOT_FOUND', 'TIMEOUT', 'NO_ROUTE'].includes(e.code) || Date.now() > end) throw e;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  },

  async signal(bytes) {
    return Array.from(await this.node.handleSignal(new Uint8Array(bytes)));
  },

  status() {
    return this.node.status();
  },

  async stop() {
    await this.node.stop();
    return this.node.status();
  },
};

// ---- benchmark helpers: a raw RTCPeerConnection pair between two pages, and bursts of sends ----------------

function gathered(pc) {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
  });
}

Object.assign(page, {
  raw: null,
  rawRx: { bytes: 0, target: 0, dc: null },

  async rawOffer() {
    this.rawT0 = performance.now();
    const pc = new RTCPeerConnection({ iceServers: [] });
    const dc = pc.createDataChannel('raw', { ordered: true });
    dc.binaryType = 'arraybuffer';
    this.raw = { pc, dc, opened: new Promise((r) => (dc.onopen = r)) };
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    return pc.localDescription.sdp;
  },

  async rawAnswer(sdp) {
    const pc = new RTCPeerConnection({ iceServers: [] });
    pc.ondatachannel = (ev) => {
      const dc = ev.channel;
      dc.binaryType = 'arraybuffer';
      this.rawRx.dc = dc;
      dc.onmessage = (m) => {
        if (this.rawRx.echo) return dc.send(new Uint8Array([1]));
        this.rawRx.bytes += m.data.byteLength;
        if (this.rawRx.target && this.rawRx.bytes >= this.rawRx.target) {
          this.rawRx.target = 0;
          dc.send(new Uint8Array([1]));
        }
      };
    };
    await pc.setRemoteDescription({ type: 'offer', sdp });
    await pc.setLocalDescription(await pc.createAnswer());
    await gathered(pc);
    this.rawAnswerPc = pc;
    return pc.localDescription.sdp;
  },

  async rawFinish(sdp) {
    await this.raw.pc.setRemoteDescription({ type: 'answer', sdp });
    await this.raw.opened;
    return performance.now() - this.rawT0;
  },

  // Offer/answer with a page behind an HTTP endpoint (SDP text in, SDP text out): setup time to open.
  async rawSetupOverHttp(url) {
    const offer = await this.rawOffer();
    const r = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: offer,
    });
    return this.rawFinish(await r.text());
  },

  rawExpect(bytes) {
    this.rawRx.echo = false;
    this.rawRx.bytes = 0;
    this.rawRx.target = bytes;
  },

  // The receiving end answers every message with one byte (for `rawRoundTrips`).
  rawEcho() {
    this.rawRx.echo = true;
  },

  // `count` messages of `size` bytes one after the other, each when the last one's echo came back: the
  // milliseconds of each round trip.
  async rawRoundTrips(size, count) {
    const { dc } = this.raw;
    const buf = new Uint8Array(size);
    const times = [];
    for (let i = 0; i < count; i++) {
      const echoed = new Promise((r) => (dc.onmessage = r));
      const t0 = performance.now();
      dc.send(buf);
      await echoed;
      times.push(performance.now() - t0);
    }
    return times;
  },

  // `count` Chordial sends of `size` bytes one after the other: the milliseconds from `send` to its
  // `delivered` result (the recipient's receipt came back) for each that was delivered.
  async sendLatencies(appOrigin, to, size, count) {
    const data = new Uint8Array(size);
    const times = [];
    for (let i = 0; i < count; i++) {
      const t0 = performance.now();
      const r = await this.node.send(appOrigin, to, data);
      if (r.result === 'delivered') times.push(performance.now() - t0);
    }
    return times;
  },

  // Sends count × size bytes with the shell's policy (pause above 4 MiB buffered, resume at 1 MiB) and
  // resolves with the ms until the receiver acknowledged the last byte.
  async rawSend(size, count) {
    const { dc } = this.raw;
    dc.bufferedAmountLowThreshold = 1 << 20;
    const buf = new Uint8Array(size);
    const acked = new Promise((r) => (dc.onmessage = r));
    const t0 = performance.now();
    for (let i = 0; i < count; i++) {
      if (dc.bufferedAmount > 4 << 20) await new Promise((r) => (dc.onbufferedamountlow = r));
      dc.send(buf);
    }
    await acked;
    return performance.now() - t0;
  },

  received: 0,
  // `count` Chordial sends of `size` bytes with at most `window` in flight; resolves with the ms until the
  // last one resolved and the outcomes.
  async burst(appOrigin, to, size, count, window) {
    const data = new Uint8Array(size);
    let next = 0;
    const outcomes = {};
    const t0 = performance.now();
    const worker = async () => {
      while (next < count) {
        next += 1;
        try {
          const r = await this.node.send(appOrigin, to, data);
          outcomes[r.result] = (outcomes[r.result] ?? 0) + 1;
        } catch (e) {
          outcomes[e.code] = (outcomes[e.code] ?? 0) + 1;
        }
      }
    };
    await Promise.all(Array.from({ length: window }, worker));
    return { ms: performance.now() - t0, outcomes };
  },
});
window.chordialPage = page;
