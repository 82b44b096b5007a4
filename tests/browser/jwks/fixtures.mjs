// Keys, key sets and tokens made by jose (npm), for tests/integration/jwks_pgtest.cpp.
//
//   node tests/browser/jwks/fixtures.mjs OUT_DIR
//
// Writes OUT_DIR/jwks1.json (keys "rsa" RS256, "ec" ES256, "ed" EdDSA), OUT_DIR/jwks2.json (the
// rotation: "ec" gone, "ec-2" new) and OUT_DIR/tokens.json: good tokens for each key, and tokens
// that must be refused (expired, an unknown kid, a forged signature, algorithm confusion, none).
// Every token has aud "chat" and expires in an hour unless it is the expired one.
import { mkdirSync, writeFileSync } from 'node:fs';
import * as jose from 'jose';

const out = process.argv[2];
if (!out) throw new Error('usage: fixtures.mjs OUT_DIR');
mkdirSync(out, { recursive: true });

async function pair(alg, kid, options = {}) {
  const { publicKey, privateKey } = await jose.generateKeyPair(alg, { extractable: true, ...options });
  const jwk = { ...(await jose.exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { alg, kid, publicKey, privateKey, jwk };
}

const rsa = await pair('RS256', 'rsa');
const ec = await pair('ES256', 'ec');
const ed = await pair('EdDSA', 'ed', { crv: 'Ed25519' });
const ec2 = await pair('ES256', 'ec-2');
const stranger = await pair('RS256', 'rsa'); // same kid, not published

function token(sub, alg, kid, key, exp = '1h') {
  const header = kid === undefined ? { alg } : { alg, kid };
  return new jose.SignJWT({ sub, room: 'lobby' })
    .setProtectedHeader(header)
    .setIssuedAt()
    .setAudience('chat')
    .setExpirationTime(exp)
    .sign(key);
}

const now = Math.floor(Date.now() / 1000);
const rsaPem = await jose.exportSPKI(rsa.publicKey);
const tokens = {
  rs256: await token('user-rs', 'RS256', 'rsa', rsa.privateKey),
  es256: await token('user-ec', 'ES256', 'ec', ec.privateKey),
  eddsa: await token('user-ed', 'EdDSA', 'ed', ed.privateKey),
  rotated: await token('user-ec2', 'ES256', 'ec-2', ec2.privateKey),
  expired: await token('user-rs', 'RS256', 'rsa', rsa.privateKey, now - 3600),
  unknown_kid: await token('user-rs', 'RS256', 'nope', rsa.privateKey),
  no_kid: await token('user-rs', 'RS256', undefined, rsa.privateKey),
  forged: await token('user-rs', 'RS256', 'rsa', stranger.privateKey),
  // Algorithm confusion: the RSA key's token sent as the EC key's, the RSA public key's PEM as an
  // HMAC secret, an EdDSA signature sent as the RSA key's, and no signature at all.
  rs256_as_ec: await token('user-rs', 'RS256', 'ec', rsa.privateKey),
  hs256_with_public_key: await token('user-rs', 'HS256', 'rsa', new TextEncoder().encode(rsaPem)),
  eddsa_as_rsa: await token('user-ed', 'EdDSA', 'rsa', ed.privateKey),
  none: new jose.UnsecuredJWT({ sub: 'user-rs', aud: 'chat' }).setExpirationTime('1h').encode(),
};

const set = (...keys) => JSON.stringify({ keys: keys.map((k) => k.jwk) }, null, 2);
writeFileSync(`${out}/jwks1.json`, set(rsa, ec, ed));
writeFileSync(`${out}/jwks2.json`, set(rsa, ed, ec2));
writeFileSync(`${out}/tokens.json`, JSON.stringify(tokens, null, 2));
