#!/usr/bin/env bash
# Benchmark prerequisites beyond the project's own: the ffmpeg command line (system package).
set -euo pipefail
if ! command -v ffmpeg >/dev/null 2>&1; then
  echo "bench setup: installing ffmpeg from the system packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  (apt-get install -y -q ffmpeg || (apt-get update -q && apt-get install -y -q ffmpeg)) >/dev/null
fi
ffmpeg -version | head -1
