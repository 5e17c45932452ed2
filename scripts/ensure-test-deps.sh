#!/usr/bin/env bash
# The tests drive real programs: redis-server for the registry and audit tests; grpc-go, gRPC
# C-core (python3-grpcio) and nghttp2's nghttp and h2load for the interop tests. Installs whatever
# is missing from Debian's archive, and says nothing when everything is there.
set -euo pipefail
have() { command -v "$1" >/dev/null 2>&1; }
missing=()
have redis-server || missing+=(redis-server)
have redis-cli || missing+=(redis-tools)
{ have nghttp && have h2load; } || missing+=(nghttp2-client)
have go || missing+=(golang-go)
[ -d /usr/share/gocode/src/google.golang.org/grpc ] || missing+=(golang-google-grpc-dev)
# Debian's own python3: the one on PATH may be another (pyenv) without Debian's grpc module.
/usr/bin/python3 -c 'import grpc' >/dev/null 2>&1 || missing+=(python3-grpcio)
[ "${#missing[@]}" -eq 0 ] && exit 0
echo "installing test dependencies with apt-get: ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
