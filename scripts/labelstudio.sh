#!/usr/bin/env bash
# Installs Label Studio (pinned) into its own virtual environment, once per machine, and
# migrates the template data directory it is started from. Label Studio pins libraries that
# clash with ours, so it never shares .venv. Location: $LAVA_LABELSTUDIO_HOME (default
# ~/.cache/lava/labelstudio-<version>). Safe to repeat: an existing install is kept.
set -euo pipefail
VERSION=1.23.2
HOME_DIR="${LAVA_LABELSTUDIO_HOME:-$HOME/.cache/lava/labelstudio-$VERSION}"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
mkdir -p "$HOME_DIR"
# One install at a time per machine: two CI clones starting together each removed and rebuilt
# the other's half-made venv (pip then failed with "can't open file ... _in_process.py").
exec 9>"$HOME_DIR/.install.lock"
flock 9
# Every package of the venv is pinned by requirements/labelstudio.lock; an install made from
# another version of that file (or none) is made again.
LOCK="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/requirements/labelstudio.lock"
WANT="$(sha256sum "$LOCK" | cut -d' ' -f1)"
if [ "$(cat "$HOME_DIR/venv/.lava-complete" 2>/dev/null)" != "$WANT" ]; then
  echo "labelstudio: installing label-studio==$VERSION into $HOME_DIR/venv" >&2
  start=$(date +%s)
  rm -rf "$HOME_DIR/venv" "$HOME_DIR"/template-* "$HOME_DIR"/template "$HOME_DIR"/template.token
  "$PYTHON" -m venv "$HOME_DIR/venv"
  "$HOME_DIR/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    -c "$LOCK" "label-studio==$VERSION"
  echo "$WANT" > "$HOME_DIR/venv/.lava-complete"
  echo "labelstudio: installed in $(( $(date +%s) - start )) s" >&2
fi
# The migrated template (label-studio init), made once and copied per run.
"${LAVA_PYTHON:-python}" -c "
import time
from shared.labeling.labelstudio.server import template
t = time.monotonic(); path, _ = template()
print(f'labelstudio: template data directory {path} ready ({time.monotonic() - t:.1f} s)')
" >&2
