// People on a map, fed by pgfanout's hub (docs/protocol.md) through the JavaScript client
// (clients/js/pgfanout.js, served next to this page: see http.static in rules/location.yaml): an
// anonymous connection subscribes to topic `people`; the subscription first sends everybody's
// position (event `person`), then each move: `moved` from the seed's trigger ({id, loc:
// GeoJSON}), or INSERT / UPDATE / DELETE from the generated trigger (the row, with `loc` as hex
// EWKB). The map is an equirectangular projection of
// the area around the people with coastlines from land.geojson (Natural Earth land clipped to the
// sample people's area, shipped with the page: see ../tools/make-land.mjs) and a graticule.
// No tiles, nothing fetched from elsewhere.
import { connect } from './pgfanout.js';

const $ = (id) => document.getElementById(id);
const SVG = 'http://www.w3.org/2000/svg';
const W = 800;
const H = 500;

const people = new Map(); // id -> {name, lon, lat, el}
let view = null; // {lon0, lon1, lat0, lat1}
let land = null; // MultiPolygon coordinates from land.geojson, once loaded

fetch('land.geojson')
  .then((r) => (r.ok ? r.json() : null))
  .then((fc) => {
    land = fc && fc.features && fc.features[0] ? fc.features[0].geometry.coordinates : null;
    if (view) drawLand();
  })
  .catch(() => {}); // the map still works without coastlines

function drawLand() {
  const g = $('land');
  g.replaceChildren();
  if (!land) return;
  for (const polygon of land) {
    const d = polygon
      .map((ring) => ring.map(([lon, lat], i) => `${i ? 'L' : 'M'}${px(lon).toFixed(1)},${py(lat).toFixed(1)}`).join('') + 'Z')
      .join('');
    const path = document.createElementNS(SVG, 'path');
    path.setAttribute('d', d);
    path.setAttribute('fill-rule', 'evenodd');
    g.append(path);
  }
}

// --- Geometry ---------------------------------------------------------------------------------

// A GeoJSON Point, or PostGIS's hex (E)WKB of a point, to [lon, lat]; null for anything else.
function toLonLat(loc) {
  if (loc && typeof loc === 'object' && loc.type === 'Point') return loc.coordinates;
  if (typeof loc === 'string' && /^[0-9A-Fa-f]+$/.test(loc) && loc.length >= 42) {
    const bytes = new Uint8Array(loc.match(/../g).map((h) => parseInt(h, 16)));
    const dv = new DataView(bytes.buffer);
    const le = bytes[0] === 1;
    const type = dv.getUint32(1, le);
    if ((type & 0xff) !== 1) return null; // not a point
    const off = 5 + (type & 0x20000000 ? 4 : 0); // skip the SRID of EWKB
    return [dv.getFloat64(off, le), dv.getFloat64(off + 8, le)];
  }
  return null;
}

function fitView() {
  const pts = [...people.values()].filter((p) => p.lon != null);
  if (!pts.length) return;
  let lon0 = Math.min(...pts.map((p) => p.lon));
  let lon1 = Math.max(...pts.map((p) => p.lon));
  let lat0 = Math.min(...pts.map((p) => p.lat));
  let lat1 = Math.max(...pts.map((p) => p.lat));
  const cx = (lon0 + lon1) / 2;
  const cy = (lat0 + lat1) / 2;
  // Equirectangular with x scaled by cos(latitude) at the centre, so shapes look right locally.
  const k = Math.cos((cy * Math.PI) / 180);
  let spanLat = Math.max(lat1 - lat0, 0.02) * 1.3;
  let spanLon = Math.max(lon1 - lon0, 0.02) * 1.3;
  if (spanLon * k / spanLat < W / H) spanLon = (spanLat * W) / H / k;
  else spanLat = (spanLon * k * H) / W;
  view = { lon0: cx - spanLon / 2, lon1: cx + spanLon / 2, lat0: cy - spanLat / 2, lat1: cy + spanLat / 2 };
  drawLand();
  drawGraticule();
  for (const p of people.values()) place(p);
}

const inView = (lon, lat) => view && lon >= view.lon0 && lon <= view.lon1 && lat >= view.lat0 && lat <= view.lat1;
const px = (lon) => ((lon - view.lon0) / (view.lon1 - view.lon0)) * W;
const py = (lat) => ((view.lat1 - lat) / (view.lat1 - view.lat0)) * H;

function niceStep(span) {
  const raw = span / 6;
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw);
}

function drawGraticule() {
  const g = $('graticule');
  g.replaceChildren();
  const line = (x1, y1, x2, y2) => {
    const l = document.createElementNS(SVG, 'line');
    Object.entries({ x1, y1, x2, y2 }).forEach(([k, v]) => l.setAttribute(k, v));
    g.append(l);
  };
  const label = (x, y, s) => {
    const t = document.createElementNS(SVG, 'text');
    t.setAttribute('x', x);
    t.setAttribute('y', y);
    t.textContent = s;
    g.append(t);
  };
  const stepLon = niceStep(view.lon1 - view.lon0);
  const decimals = Math.max(0, -Math.floor(Math.log10(stepLon)));
  for (let lon = Math.ceil(view.lon0 / stepLon) * stepLon; lon <= view.lon1; lon += stepLon) {
    line(px(lon), 0, px(lon), H);
    label(px(lon) + 2, H - 4, `${Math.abs(lon).toFixed(decimals)}°${lon < 0 ? 'W' : 'E'}`);
  }
  const stepLat = niceStep(view.lat1 - view.lat0);
  const dLat = Math.max(0, -Math.floor(Math.log10(stepLat)));
  for (let lat = Math.ceil(view.lat0 / stepLat) * stepLat; lat <= view.lat1; lat += stepLat) {
    line(0, py(lat), W, py(lat));
    label(2, py(lat) - 2, `${Math.abs(lat).toFixed(dLat)}°${lat < 0 ? 'S' : 'N'}`);
  }
}

// --- Markers ----------------------------------------------------------------------------------

function place(p) {
  if (!p.el) {
    p.el = document.createElementNS(SVG, 'g');
    p.el.classList.add('marker');
    p.el.dataset.id = String(p.id);
    const c = document.createElementNS(SVG, 'circle');
    c.setAttribute('r', 6);
    const t = document.createElementNS(SVG, 'text');
    t.setAttribute('x', 9);
    t.setAttribute('y', 4);
    p.el.append(c, t);
    $('markers').append(p.el);
  }
  p.el.querySelector('text').textContent = p.name || `#${p.id}`;
  p.el.dataset.lon = String(p.lon);
  p.el.dataset.lat = String(p.lat);
  if (view) p.el.setAttribute('transform', `translate(${px(p.lon).toFixed(1)},${py(p.lat).toFixed(1)})`);
}

function upsert(id, name, loc, moved) {
  const ll = toLonLat(loc);
  let p = people.get(id);
  if (!ll) { if (p) remove(id); return; }
  if (!p) { p = { id }; people.set(id, p); }
  if (name != null) p.name = name;
  [p.lon, p.lat] = ll;
  if (!view || !inView(p.lon, p.lat)) fitView();
  else place(p);
  if (moved) {
    p.el.classList.add('moved');
    setTimeout(() => p.el && p.el.classList.remove('moved'), 800);
  }
}

function remove(id) {
  const p = people.get(id);
  if (p && p.el) p.el.remove();
  people.delete(id);
}

function log(text) {
  const li = document.createElement('li');
  li.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  const list = $('log');
  list.prepend(li);
  while (list.children.length > 200) list.lastChild.remove();
}

const fmt = (loc) => {
  const ll = toLonLat(loc);
  return ll ? `${ll[1].toFixed(5)}, ${ll[0].toFixed(5)}` : 'no location';
};

function handle(msg) {
  const d = msg.data || {};
  switch (msg.event) {
    case 'person': // the snapshot on subscribe
      upsert(d.id, d.name, d.loc, false);
      break;
    case 'moved': // the seed's trigger
      upsert(d.id, null, d.loc, true);
      log(`person_updated  #${d.id} → ${fmt(d.loc)}`);
      break;
    case 'INSERT':
    case 'UPDATE':
      upsert(d.id, d.name, d.loc, true);
      log(`person_changed ${msg.event} #${d.id} ${d.name || ''} → ${fmt(d.loc)}`);
      break;
    case 'DELETE': {
      const id = d.old ? d.old.id : d.id;
      remove(id);
      log(`person_changed DELETE #${id}`);
      break;
    }
    default:
      log(`${msg.event} ${JSON.stringify(d)}`);
  }
}

// --- Connection -------------------------------------------------------------------------------

function setConn(s, text) {
  $('conn').dataset.state = s;
  $('conn').textContent = text;
}

// The client reconnects with backoff and subscribes again; each new subscription starts with
// everybody's position again (the moves are not durable: there is nothing to resume from).
const hub = connect();
hub.on('state', (s, info) => {
  if (s === 'connecting') setConn('connecting', 'connecting…');
  else if (s === 'open') setConn('open', 'live');
  else if (s === 'reconnecting') {
    setConn('lost', `connection lost — reconnecting in ${(info.delay / 1000).toFixed(1)} s`);
  }
});

function subscribe() {
  return hub.subscribe('people', {
    onEvent: (msg) => {
      try { handle(msg); } catch (e) { console.error(e); }
    },
    // The server says moves were missed (its listener reconnected): take the positions again.
    // After our own reconnect the new subscription brought them already.
    onResync: (topic, reason) => {
      if (reason === 'reconnected') return;
      sub.unsubscribe();
      sub = subscribe();
    },
  });
}
let sub = subscribe();
