# Sourced by the other scripts: a .venv with the project installed (`pip install -e .[dev]`),
# reinstalled only when pyproject.toml changed. Needs only python3 (3.11) and pip.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if [ ! -x "$ROOT/.venv/bin/python" ]; then
  echo "setup: creating $ROOT/.venv with $("$PYTHON" --version)" >&2
  "$PYTHON" -m venv "$ROOT/.venv"
fi
# shellcheck disable=SC1091
source "$ROOT/.venv/bin/activate"
stamp="$ROOT/.venv/.lava-installed"
want="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing the project and its dev tools into .venv" >&2
  python -m pip install --quiet --upgrade pip
  python -m pip install --quiet -e "$ROOT[dev]"
  echo "$want" > "$stamp"
fi
# Bytecode for the project's own modules, as pip writes it for an installed package: an
# editable install never gets any where PYTHONDONTWRITEBYTECODE is set (as on this project's
# CI machines), so every `lava` command and service would compile its modules at each start
# (~7 ms of `lava frames extract`). Only changed files are compiled again.
python -m compileall -q -j 0 "$ROOT/lava" "$ROOT/services" "$ROOT/shared" "$ROOT/emulators" \
  "$ROOT/devstack" "$ROOT/bench" "$ROOT/tests" >/dev/null

# Deployment checks (tests/test_deploy_*.py). checkov lives in a venv of its own: it pins a
# boto3/botocore that would replace the one aiobotocore needs. The Compose specification's
# schema comes from the last Python release of docker-compose (its wheel, not installed).
# kubectl (for `kubectl kustomize`) ships with this kind of machine; Debian's package otherwise.
CHECKOV_VERSION=3.3.30
if [ ! -x "$ROOT/.venv/checkov/bin/checkov" ] || \
   [ "$(cat "$ROOT/.venv/checkov/.version" 2>/dev/null)" != "$CHECKOV_VERSION" ]; then
  echo "setup: installing checkov $CHECKOV_VERSION into .venv/checkov" >&2
  python -m venv "$ROOT/.venv/checkov"
  "$ROOT/.venv/checkov/bin/python" -m pip install --quiet "checkov==$CHECKOV_VERSION"
  echo "$CHECKOV_VERSION" > "$ROOT/.venv/checkov/.version"
fi
if [ ! -f "$ROOT/.venv/schemas/docker_compose-1.29.2-py2.py3-none-any.whl" ]; then
  python -m pip download --quiet --no-deps --dest "$ROOT/.venv/schemas" "docker-compose==1.29.2"
fi
if ! command -v kubectl >/dev/null 2>&1; then
  echo "setup: kubectl is missing; installing Debian's kubernetes-client" >&2
  # shellcheck source=scripts/apt.sh
  source "$ROOT/scripts/apt.sh"
  apt_get update -qq && apt_get install -y -qq kubernetes-client >/dev/null
fi

# The machine's RabbitMQ; start it if it is installed here but not running.
rabbit_up() { python - <<'PY'
import socket, os, urllib.parse
url = urllib.parse.urlparse(os.environ.get("LAVA_BROKER__AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"))
s = socket.socket(); s.settimeout(2)
raise SystemExit(0 if s.connect_ex((url.hostname or "127.0.0.1", url.port or 5672)) == 0 else 1)
PY
}
if ! rabbit_up; then
  if command -v rabbitmq-server >/dev/null 2>&1; then
    echo "setup: RabbitMQ is not answering; starting it (rabbitmq-server -detached)" >&2
    rabbitmq-server -detached || true
    for _ in $(seq 1 60); do rabbit_up && break; sleep 1; done
  fi
  rabbit_up || { echo "setup: RabbitMQ is not reachable at \${LAVA_BROKER__AMQP_URL:-amqp://127.0.0.1:5672}; start it (rabbitmq-server -detached) and retry" >&2; exit 1; }
fi
cd "$ROOT"
