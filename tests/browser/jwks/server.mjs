// A JWKS server over HTTPS for tests/integration/jwks_pgtest.cpp.
//
//   node tests/browser/jwks/server.mjs DIR
//
// Serves GET /jwks.json with DIR/server.key and DIR/server.crt. What it answers is read from DIR
// at each request: DIR/mode holds "ok" (DIR/current.json, 200), "500" (an error) or "garbage"
// (200 with a body that is not JSON). Each request appends a line to DIR/requests.log. Prints
// "listening PORT" once it listens on 127.0.0.1.
import { appendFileSync, readFileSync } from 'node:fs';
import https from 'node:https';

const dir = process.argv[2];
const read = (name, fallback) => {
  try {
    return readFileSync(`${dir}/${name}`, 'utf8').trim();
  } catch {
    return fallback;
  }
};
const server = https.createServer(
  { key: readFileSync(`${dir}/server.key`), cert: readFileSync(`${dir}/server.crt`) },
  (req, res) => {
    appendFileSync(`${dir}/requests.log`, `${req.method} ${req.url}\n`);
    const mode = read('mode', 'ok');
    if (req.url !== '/jwks.json' || mode === '500') {
      res.writeHead(req.url !== '/jwks.json' ? 404 : 500).end('no');
    } else if (mode === 'garbage') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"keys": [ not json');
    } else {
      res.writeHead(200, { 'content-type': 'application/json' }).end(read('current.json', '{}'));
    }
  },
);
server.listen(0, '127.0.0.1', () => console.log(`listening ${server.address().port}`));
