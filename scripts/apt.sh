# Sourced by the set-up scripts: `apt_get ARGS...` runs apt-get (through sudo when not root)
# and waits while another apt-get holds its locks - a second test run installing the same
# package, unattended upgrades - instead of failing at once. apt 2.6 applies
# DPkg::Lock::Timeout to dpkg's lock but not to the package lists' lock that `apt-get update`
# takes, so that one is retried here. Any other failure is reported at once.
APT_LOCK_WAIT_SECONDS="${APT_LOCK_WAIT_SECONDS:-600}"
APT_LOCK_POLL_SECONDS="${APT_LOCK_POLL_SECONDS:-2}"

apt_get() {
  local sudo=() log deadline=$((SECONDS + APT_LOCK_WAIT_SECONDS)) told=""
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  log="$(mktemp)"
  while true; do
    if "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
      apt-get -o "DPkg::Lock::Timeout=$APT_LOCK_WAIT_SECONDS" "$@" 2>"$log"; then
      rm -f "$log"
      return 0
    fi
    if ! grep -q "Could not get lock\|Unable to lock" "$log" || [ "$SECONDS" -ge "$deadline" ]; then
      cat "$log" >&2
      rm -f "$log"
      return 1
    fi
    if [ -z "$told" ]; then
      echo "apt-get $1: another apt-get holds its lock; waiting up to ${APT_LOCK_WAIT_SECONDS} s" >&2
      told=1
    fi
    sleep "$APT_LOCK_POLL_SECONDS"
  done
}
