#!/usr/bin/env bash
# The fixtures of tests/integration/jwks_pgtest.cpp, in DIR:
#   ca.crt, server.key, server.crt  a CA of the test's own and a certificate it signed for
#                                   localhost / 127.0.0.1 (openssl CLI)
#   other-ca.crt                    another CA, which did not sign the server's certificate
#   jwks1.json, jwks2.json, tokens.json  keys, key sets and tokens made by jose (fixtures.mjs)
#
#   tests/browser/jwks/make-fixtures.sh DIR
# Runs `npm ci` in tests/browser first when jose is not installed there (needs the npm registry).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=$1
mkdir -p "$dir"
for tool in node npm openssl; do
  command -v "$tool" >/dev/null || { echo "jwks fixtures: $tool is missing (scripts/install-deps.sh)" >&2; exit 1; }
done
if [ ! -d "$here/../node_modules/jose" ]; then
  (cd "$here/.." && npm ci --no-audit --no-fund --loglevel=error)
fi
cd "$dir"
ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.crt -days 2 -subj /CN=pgfanout-test-ca 2>/dev/null
openssl req -x509 "${ec[@]}" -keyout other-ca.key -out other-ca.crt -days 2 -subj /CN=pgfanout-other-ca 2>/dev/null
openssl req "${ec[@]}" -keyout server.key -out server.csr -subj /CN=localhost 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >server.ext
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
  -extfile server.ext -out server.crt 2>/dev/null
node "$here/fixtures.mjs" "$dir"
