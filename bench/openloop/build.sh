#!/usr/bin/env bash
# Builds the open-loop load generator (bench/openloop/openloop, git-ignored) against libnghttp2.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ ! -f /usr/include/nghttp2/nghttp2.h ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get install -y libnghttp2-dev >/dev/null || { apt-get update >/dev/null && apt-get install -y libnghttp2-dev >/dev/null; }
  else
    echo "openloop: libnghttp2 headers missing; install them with: sudo apt-get install -y libnghttp2-dev" >&2
    exit 1
  fi
fi
cc -std=c11 -O2 -Wall -Wextra -o bench/openloop/openloop bench/openloop/openloop.c -lnghttp2 -lm
cc -std=c11 -O2 -Wall -Wextra -o bench/openloop/noise bench/openloop/noise.c
cc -std=c11 -O2 -Wall -Wextra -o bench/openloop/awake bench/openloop/awake.c
