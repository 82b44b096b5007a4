// Builds examples/location/web/land.geojson: Natural Earth land (1:10m, from the world-atlas npm
// package, ISC; the data is in the public domain) clipped to a box around the sample people, so
// the map page draws coastlines offline from a small file.
//
//   npm pack world-atlas@2 topojson-client@3   # then unpack both, and:
//   node make-land.mjs <world-atlas>/land-10m.json <topojson-client>/dist/topojson-client.js > land.geojson
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const [landPath, clientPath] = process.argv.slice(2);
const topojson = createRequire(import.meta.url)(clientPath);
const topo = JSON.parse(readFileSync(landPath, 'utf8'));
const land = topojson.feature(topo, topo.objects.land);

// The box: the sample people (examples/location/people.sql) with a wide margin.
const box = { lon0: -124.0, lon1: -120.5, lat0: 36.5, lat1: 39.0 };

// Sutherland-Hodgman: clip a closed ring against one edge at a time.
function clipRing(ring) {
  const edges = [
    [(p) => p[0] >= box.lon0, (a, b) => cut(a, b, 0, box.lon0)],
    [(p) => p[0] <= box.lon1, (a, b) => cut(a, b, 0, box.lon1)],
    [(p) => p[1] >= box.lat0, (a, b) => cut(a, b, 1, box.lat0)],
    [(p) => p[1] <= box.lat1, (a, b) => cut(a, b, 1, box.lat1)],
  ];
  let out = ring;
  for (const [inside, intersect] of edges) {
    const input = out;
    out = [];
    for (let i = 0; i < input.length; i++) {
      const cur = input[i];
      const prev = input[(i + input.length - 1) % input.length];
      if (inside(cur)) {
        if (!inside(prev)) out.push(intersect(prev, cur));
        out.push(cur);
      } else if (inside(prev)) {
        out.push(intersect(prev, cur));
      }
    }
    if (!out.length) return null;
  }
  return out;
}

function cut(a, b, axis, v) {
  const t = (v - a[axis]) / (b[axis] - a[axis]);
  const p = [a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])];
  p[axis] = v;
  return p;
}

const round = (p) => [Math.round(p[0] * 1e5) / 1e5, Math.round(p[1] * 1e5) / 1e5];
const polygons = [];
for (const f of land.features) {
  const polys = f.geometry.type === 'Polygon' ? [f.geometry.coordinates] : f.geometry.coordinates;
  for (const poly of polys) {
    const outer = clipRing(poly[0].slice(0, -1));
    if (!outer || outer.length < 3) continue;
    const rings = [outer];
    for (const hole of poly.slice(1)) {
      const h = clipRing(hole.slice(0, -1));
      if (h && h.length >= 3) rings.push(h);
    }
    polygons.push(rings.map((r) => [...r, r[0]].map(round)));
  }
}
process.stdout.write(JSON.stringify({
  type: 'FeatureCollection',
  features: [{
    type: 'Feature',
    properties: { source: 'Natural Earth 1:10m land via world-atlas 2.0.2', box },
    geometry: { type: 'MultiPolygon', coordinates: polygons },
  }],
}) + '\n');
