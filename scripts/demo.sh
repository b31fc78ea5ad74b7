#!/usr/bin/env bash
# The main job (README): installs what is missing, then runs the local pipeline demo.
# Options go to `lava demo` (see `lava demo --help`).
set -euo pipefail
source "$(dirname "$0")/setup.sh"
exec lava demo "$@"
