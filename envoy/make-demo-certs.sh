#!/usr/bin/env bash
# Makes a throw-away PKI for the envoy/ demo: a CA, Envoy's server certificate and one X.509-SVID
# per agent. Output is generated at run time and never committed (envoy/certs/ is gitignored).
#
#   envoy/make-demo-certs.sh OUT_DIR            # AGENTS="alpha beta" by default
#   AGENTS="alpha beta gamma" envoy/make-demo-certs.sh envoy/certs
#
# Files: ca.crt ca.key envoy.crt envoy.key agent-<name>.crt agent-<name>.key fingerprints.txt
# Idempotent: existing files are kept while they are valid for another day and chain to the
# current CA, so re-running never changes fingerprints that a registry already pins.
# Env: AGENTS (names), TRUST_DOMAIN (default example.org), KEY_MODE (default 0600; the docker
# compose demo needs 0644 because Envoy runs as another uid inside its container).
set -euo pipefail

if [[ $# -ne 1 || -z "$1" ]]; then
  echo "usage: $0 OUT_DIR" >&2
  exit 2
fi
OUT=$1
AGENTS=${AGENTS:-alpha beta}
TRUST_DOMAIN=${TRUST_DOMAIN:-example.org}
KEY_MODE=${KEY_MODE:-0600}
command -v openssl >/dev/null || { echo "openssl is required" >&2; exit 1; }

# The SPIFFE ID is built from the name, so only characters legal in a SPIFFE path segment (and
# safe in a file name) are accepted; anything else would produce a certificate the server rejects.
for name in $AGENTS; do
  if [[ ! $name =~ ^[a-z0-9][a-z0-9._-]*$ ]]; then
    echo "invalid agent name '$name' (use lowercase letters, digits, '.', '_', '-')" >&2
    exit 2
  fi
done
if [[ ! $TRUST_DOMAIN =~ ^[a-z0-9._-]+$ ]]; then
  echo "invalid TRUST_DOMAIN '$TRUST_DOMAIN'" >&2
  exit 2
fi

mkdir -p "$OUT"
umask 077
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# new_key FILE [MODE]: P-256 keeps handshakes cheap and every Envoy and Node version accepts it.
new_key() {
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
  chmod "${2:-$KEY_MODE}" "$1"
}

# still_good CERT: present, valid for at least another day, and signed by the current CA.
still_good() {
  [[ -s $1 && -s ${1%.crt}.key ]] &&
    openssl x509 -in "$1" -noout -checkend 86400 >/dev/null 2>&1 &&
    openssl verify -CAfile "$OUT/ca.crt" "$1" >/dev/null 2>&1
}

# sign NAME SUBJECT DAYS EXTENSIONS: issue $OUT/NAME.crt for $OUT/NAME.key from the demo CA.
sign() {
  local name=$1 subj=$2 days=$3 ext=$4
  new_key "$OUT/$name.key"
  printf '%s\n' "$ext" >"$TMP/$name.ext"
  openssl req -new -key "$OUT/$name.key" -subj "$subj" -out "$TMP/$name.csr" 2>/dev/null
  openssl x509 -req -in "$TMP/$name.csr" -CA "$OUT/ca.crt" -CAkey "$OUT/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days "$days" -sha256 \
    -extfile "$TMP/$name.ext" -out "$OUT/$name.crt" 2>/dev/null
  chmod 0644 "$OUT/$name.crt"
}

ca_renewed=false
if ! { [[ -s $OUT/ca.crt && -s $OUT/ca.key ]] &&
  openssl x509 -in "$OUT/ca.crt" -noout -checkend 86400 >/dev/null 2>&1; }; then
  # The CA key never leaves 0600: nothing but this script signs with it.
  new_key "$OUT/ca.key" 0600
  openssl req -new -x509 -key "$OUT/ca.key" -sha256 -days 365 \
    -subj "/O=agent-authz demo/CN=agent-authz demo CA" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" \
    -out "$OUT/ca.crt" 2>/dev/null
  chmod 0644 "$OUT/ca.crt"
  ca_renewed=true
  echo "created $OUT/ca.crt"
fi

if $ca_renewed || ! still_good "$OUT/envoy.crt"; then
  sign envoy "/O=agent-authz demo/CN=localhost" 30 "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1
authorityKeyIdentifier=keyid"
  echo "created $OUT/envoy.crt"
fi

# Agent certificates follow the X.509-SVID leaf rules: exactly one URI SAN (the SPIFFE ID),
# CA:FALSE, digitalSignature only. serverAuth sits beside clientAuth because the SVID spec asks
# for both when EKU is present; agents only ever use the certificate as TLS clients here.
: >"$TMP/fingerprints.txt"
for name in $AGENTS; do
  crt=$OUT/agent-$name.crt
  if $ca_renewed || ! still_good "$crt"; then
    sign "agent-$name" "/O=agent-authz demo/CN=agent-$name" 30 "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth,serverAuth
subjectAltName=URI:spiffe://$TRUST_DOMAIN/agents/$name
authorityKeyIdentifier=keyid"
    echo "created $crt"
  fi
  # Same definition the server uses: lowercase hex SHA-256 of the DER encoding.
  fp=$(openssl x509 -in "$crt" -outform DER | openssl dgst -sha256 -hex | awk '{print $NF}')
  printf '%s %s\n' "$name" "$fp" >>"$TMP/fingerprints.txt"
done
install -m 0644 "$TMP/fingerprints.txt" "$OUT/fingerprints.txt"
# Re-applied on every run so a second run with another KEY_MODE fixes permissions in place.
for name in envoy $(printf 'agent-%s ' $AGENTS); do chmod "$KEY_MODE" "$OUT/$name.key"; done
echo "fingerprints written to $OUT/fingerprints.txt"
