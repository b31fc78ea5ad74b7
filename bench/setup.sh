#!/usr/bin/env bash
# Benchmark prerequisites beyond the project's own: the ffmpeg command line and GNU time
# (system packages).
set -euo pipefail
# shellcheck source=scripts/apt.sh
source "$(dirname "$0")/../scripts/apt.sh"
if ! command -v ffmpeg >/dev/null 2>&1; then
  echo "bench setup: installing ffmpeg from the system packages" >&2
  (apt_get install -y -q ffmpeg || (apt_get update -q && apt_get install -y -q ffmpeg)) >/dev/null
fi
if [ ! -x /usr/bin/time ]; then
  echo "bench setup: installing GNU time (bench/ingest_bounds.py reads peak RSS with it)" >&2
  (apt_get install -y -q time || (apt_get update -q && apt_get install -y -q time)) >/dev/null
fi
ffmpeg -version | head -1
