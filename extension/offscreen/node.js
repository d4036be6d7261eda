// The one module that knows node-wasm (docs/api.md of chordial-node-wasm). Everything else in the extension
// talks to the node through NodeHost (host.js), which expects exactly this interface from `openNode`:
//
//   open(config) → node with:
//     status(): {state, wallet, nodeId, sessionExpires, joined, …}         (synchronous)
//     delegationRequest({domain, address, chainId}) → SIWE text
//     completeDelegation(signature) → {wallet, expires}
//     setSettings({bootstrap, iceServers}), start(), stop()
//     send(appOrigin, toWallet, Uint8Array) → {id, result: 'delivered'|'stored'}
//     lookup(wallet) → {wallet, sessions}
//     announce(appOrigin, topic, ttlSeconds?), withdraw(appOrigin, topic)
//     discover(appOrigin, topic) → [{wallet, announcedAt}]
//     onEvent(cb) → token
//     pairOffer() → {code, expires}, pairAnswer(code) → {code, expires}, pairComplete(code) → {link, peer}
//   Errors: {name: 'ChordialError', code: 'TIMEOUT' | …, message}.
//
// The wasm package is copied by the build into the extension as node-wasm/ (from dist/node-wasm/, made by
// scripts/build-wasm.sh). When the build had none, opening fails with code UNAVAILABLE.

const MODULE_PATH = 'node-wasm/chordial_node_wasm.js';
const WASM_PATH = 'node-wasm/chordial_node_wasm_bg.wasm';

/** Loads node-wasm and opens the node for `config` ({network, bootstrap, iceServers}). */
export async function openWasmNode(config, runtime = chrome.runtime) {
  let mod;
  try {
    mod = await import(/* webpackIgnore: true */ runtime.getURL(MODULE_PATH));
  } catch (e) {
    throw nodeError('UNAVAILABLE', `this build of the extension has no node-wasm (${e?.message ?? e})`);
  }
  await mod.default({ module_or_path: runtime.getURL(WASM_PATH) });
  return mod.ChordialNode.open({
    network: config.network,
    bootstrap: config.bootstrap,
    iceServers: config.iceServers,
  });
}

function nodeError(code, message) {
  const e = new Error(message);
  e.name = 'ChordialError';
  e.code = code;
  return e;
}
