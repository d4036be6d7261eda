// The test page: loads the built package and drives one ChordialNode the way the extension's offscreen
// document will — open (restores from IndexedDB), ask the wallet for the one signature only when there
// is no valid delegation, start. Exposed as window.chordialPage for Playwright.
import init, { ChordialNode } from '/pkg/chordial_node_wasm.js';

const ready = init();
const page = {
  node: null,
  events: [],
  messages: [],
  timings: {},

  async boot({ network, bootstrap, signalName, iceServers = [] }) {
    const t0 = performance.now();
    await ready;
    const t1 = performance.now();
    const node = await ChordialNode.open({ network, bootstrap, iceServers, signalName });
    const t2 = performance.now();
    this.timings = { instantiateMs: t1 - t0, openMs: t2 - t1 };
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

  async sendRetrying(appOrigin, to, text, ms = 20000) {
    const end = Date.now() + ms;
    for (;;) {
      try {
        return await this.send(appOrigin, to, text);
      } catch (e) {
        if (!['NOT_FOUND', 'TIMEOUT', 'NO_ROUTE'].includes(e.code) || Date.now() > end) throw e;
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
window.chordialPage = page;
