// The ring SVG: one marker per known node with the data attributes the browser tests count, servers as
// squares, this node on top, a chord per open link, and the owned arc.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderRing, arcPath, markerClass } from '../../../extension/popup/ring.js';
import { ringLayout } from '../../../extension/popup/model.js';

/** Just enough of a DOM for renderRing: createElementNS, attributes, children, text. */
class FakeElement {
  constructor(doc, name) {
    this.ownerDocument = doc;
    this.localName = name;
    this.attributes = new Map();
    this.children = [];
    this.textContent = '';
  }
  setAttribute(k, v) {
    this.attributes.set(k, String(v));
  }
  getAttribute(k) {
    return this.attributes.get(k) ?? null;
  }
  append(...c) {
    this.children.push(...c);
  }
  replaceChildren(...c) {
    this.children = [...c];
  }
  get lastChild() {
    return this.children.at(-1) ?? null;
  }
}
const doc = { createElementNS: (ns, name) => new FakeElement(doc, name) };
const svg = () => new FakeElement(doc, 'svg');
const all = (root) => root.children.flatMap((c) => [c, ...all(c)]);
const id = (p) => p.padEnd(40, '0');

test('one marker per known node, with the data attributes tests count; servers are squares; this node last', () => {
  const server = id('c');
  const status = {
    nodeId: id('8'),
    successors: [server, id('2')],
    predecessor: id('2'),
    fingers: [{ index: 150, nodeId: id('e') }],
    bootstrap: { servers: [{ url: 'http://127.0.0.1:7700', nodeId: server }] },
    links: [
      { link: 1, peer: server, open: true, roles: ['successor'], rttMs: 3 },
      { link: 2, peer: id('2'), open: true, roles: ['predecessor', 'successor'], rttMs: null },
    ],
  };
  const s = svg();
  renderRing(s, ringLayout(status));
  const markers = all(s).filter((e) => e.getAttribute('data-node-id') && !e.getAttribute('data-self'));
  assert.equal(markers.length, 3);
  const linked = markers.filter((m) => m.getAttribute('data-linked') === 'true');
  assert.deepEqual(linked.map((m) => m.getAttribute('data-node-id')).sort(), [id('2'), server].sort());
  const sq = markers.find((m) => m.getAttribute('data-server'));
  assert.equal(sq.localName, 'rect');
  assert.equal(sq.getAttribute('data-server'), 'http://127.0.0.1:7700');
  assert.equal(sq.children[0].textContent, 'server http://127.0.0.1:7700 · successor · RTT 3 ms');
  const finger = markers.find((m) => m.getAttribute('data-node-id') === id('e'));
  assert.equal(finger.getAttribute('class'), 'marker known');
  assert.equal(finger.getAttribute('data-linked'), 'false');
  assert.equal(s.lastChild.getAttribute('data-self'), 'true', 'this node is drawn on top');
  assert.equal(s.lastChild.getAttribute('data-node-id'), id('8'));
  assert.equal(all(s).filter((e) => e.getAttribute('class') === 'chord').length, 2, 'a chord per open link');
  assert.equal(all(s).filter((e) => e.getAttribute('class') === 'owned').length, 1);
  // This node at 0.5 of the turn is at the bottom of the 160×160 picture.
  assert.equal(s.lastChild.getAttribute('cx'), '80.00');
  assert.equal(s.lastChild.getAttribute('cy'), '142.00');
});

test('before the node has an id: only the empty ring; alone: only this node', () => {
  const s = svg();
  renderRing(s, ringLayout(null));
  assert.equal(all(s).filter((e) => e.getAttribute('data-node-id')).length, 0);
  renderRing(s, ringLayout({ nodeId: id('4'), links: [] }));
  assert.deepEqual(
    all(s)
      .filter((e) => e.getAttribute('data-node-id'))
      .map((e) => e.getAttribute('data-self')),
    ['true'],
  );
});

test('arcs: the short way, the long way, and a whole circle', () => {
  assert.match(arcPath(0, 0.25), / 0 0 1 /);
  assert.match(arcPath(0, 0.75), / 0 1 1 /);
  assert.match(arcPath(0.9, 0.1), / 0 0 1 /, 'across zero');
  assert.equal((arcPath(0.3, 0.3).match(/A /g) ?? []).length, 2, 'a node alone owns the whole circle');
  assert.equal(markerClass({ linked: false, roles: ['finger'] }), 'known');
  assert.equal(markerClass({ linked: true, roles: [] }), 'linked');
  assert.equal(markerClass({ linked: true, roles: ['predecessor'] }), 'predecessor');
});
