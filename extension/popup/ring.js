// The ring picture: an inline SVG drawn from model.ringLayout(). Every node is placed by its id (angle =
// id / 2^160, 0 at the top, clockwise); this node is the large marker, the arc it owns runs from its
// predecessor to it, and a line joins it to each node it has an open link to. Markers carry data attributes
// (data-node-id, data-roles, data-linked, data-server, data-self) so that tests count what a person sees.

import { pointAt, shortId, formatRtt } from './model.js';

const NS = 'http://www.w3.org/2000/svg';
const SIZE = 160;
const C = SIZE / 2;
const R = 62;

function el(doc, name, attrs = {}, text = null) {
  const e = doc.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== null) e.textContent = text;
  return e;
}

/** The SVG path of the clockwise arc from fraction `from` to fraction `to` on the ring. */
export function arcPath(from, to, r = R) {
  let sweep = to - from;
  if (sweep <= 0) sweep += 1;
  const a = pointAt(from, r, C, C);
  const b = pointAt(to, r, C, C);
  if (sweep >= 0.9999) {
    // A whole circle (a node alone owns everything): two half arcs.
    const m = pointAt(from + 0.5, r, C, C);
    return `M ${f(a.x)} ${f(a.y)} A ${r} ${r} 0 0 1 ${f(m.x)} ${f(m.y)} A ${r} ${r} 0 0 1 ${f(a.x)} ${f(a.y)}`;
  }
  return `M ${f(a.x)} ${f(a.y)} A ${r} ${r} 0 ${sweep > 0.5 ? 1 : 0} 1 ${f(b.x)} ${f(b.y)}`;
}

const f = (v) => v.toFixed(2);

/** The class that colours a marker: its first role, or "known" for a node seen but not linked. */
export function markerClass(node) {
  if (!node.linked) return 'known';
  return node.roles[0] ?? 'linked';
}

/** Replaces the contents of `svg` with the picture of `layout`. */
export function renderRing(svg, layout) {
  const doc = svg.ownerDocument;
  svg.setAttribute('viewBox', `0 0 ${SIZE} ${SIZE}`);
  svg.replaceChildren();
  const alone = layout.nodes.length === 0;
  svg.append(el(doc, 'title', {}, alone ? 'The ring: only this node' : 'The ring: this node and the nodes it knows'));
  svg.append(el(doc, 'circle', { class: 'track', cx: C, cy: C, r: R }));
  // 0 marker at the top: ids grow clockwise from there.
  svg.append(el(doc, 'line', { class: 'tick', x1: C, y1: C - R - 5, x2: C, y2: C - R + 5 }));
  if (layout.self && layout.owned) {
    svg.append(el(doc, 'path', { class: 'owned', d: arcPath(layout.owned.from, layout.owned.to) }));
  }
  if (!layout.self) return;
  const me = pointAt(layout.self.fraction, R, C, C);
  for (const n of layout.nodes.filter((x) => x.linked)) {
    const p = pointAt(n.fraction, R, C, C);
    svg.append(el(doc, 'line', { class: 'chord', x1: f(me.x), y1: f(me.y), x2: f(p.x), y2: f(p.y) }));
  }
  for (const n of layout.nodes) {
    const p = pointAt(n.fraction, R, C, C);
    const attrs = {
      class: `marker ${markerClass(n)}${n.server ? ' server' : ''}`,
      'data-node-id': n.id,
      'data-roles': n.roles.join(' '),
      'data-linked': n.linked,
    };
    if (n.server) attrs['data-server'] = n.server;
    const shape = n.server
      ? el(doc, 'rect', { ...attrs, x: f(p.x - 5), y: f(p.y - 5), width: 10, height: 10, rx: 2 })
      : el(doc, 'circle', { ...attrs, cx: f(p.x), cy: f(p.y), r: 5 });
    const what = [n.server ? `server ${n.server}` : `node ${shortId(n.id)}`, n.roles.join(', ') || 'known']
      .concat(n.linked ? [`RTT ${formatRtt(n.rttMs)}`] : ['not linked'])
      .join(' · ');
    shape.append(el(doc, 'title', {}, what));
    svg.append(shape);
  }
  svg.append(
    el(doc, 'circle', {
      class: 'marker self',
      'data-self': 'true',
      'data-node-id': layout.self.id,
      cx: f(me.x),
      cy: f(me.y),
      r: 7,
    }),
  );
  svg.lastChild.append(el(doc, 'title', {}, `this node · ${shortId(layout.self.id)}`));
}
