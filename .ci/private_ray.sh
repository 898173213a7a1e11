# Sourced at the top of the .ci/ray_*_test.sh scripts: a throw-away Ray cluster on this machine
# that nothing else can reach. Ray 2.60 rewrites --node-ip-address=127.0.0.1 to the host's own
# address and then listens on every interface; so the calling script:
#   - re-runs itself in a network namespace of its own (`unshare --net` as root, else
#     `unshare -rn`), where only the loopback interface exists: Ray keeps 127.0.0.1, and nothing
#     outside the namespace can connect. It checks that `lo` is the only interface, and
#     (assert_loopback_listeners) that every listening socket is on loopback, Ray's GCS among them;
#   - and in a session of its own (`setsid`): clean-up kills only the processes of that session
#     (Ray's daemons inherit it), not every Ray process of the machine as `ray stop` would;
#   - keeps Ray's token authentication on: a fresh token in RAY_AUTH_TOKEN_PATH, HOME in a
#     temporary folder (the user's ~/.ray/auth_token is neither read nor written).
# Where no network namespace can be made it exits 77 with the reason (a skip), never running
# a cluster reachable from the network. Provides: $work (removed at exit), $port (the head's
# GCS port), start_head, start_worker, assert_loopback_listeners.

if [ -z "${GAITRUN_PRIVATE_NET:-}" ]; then
  for flags in --net -rn; do  # -rn: a user namespace too, where unprivileged users may make one
    if unshare $flags true 2>/dev/null; then
      GAITRUN_PRIVATE_NET=1 exec unshare $flags setsid --wait bash "$0" "$@"
    fi
  done
  echo "SKIP: cannot make a private network namespace here ('unshare --net': $(unshare --net true 2>&1 | head -n 1));" \
       "refusing to start a Ray cluster reachable from the network" >&2
  exit 77
fi

[ "$(ps -o sid= -p $$ | tr -d ' ')" = "$$" ] || { echo "expected a session of our own (setsid)" >&2; exit 1; }
ip link set lo up
links=$(ip -o link show | awk -F': ' '{printf "%s ", $2}')
[ "$links" = "lo " ] || { echo "expected only lo in the private network namespace, found: $links" >&2; exit 1; }
echo "private network namespace: only interface lo"

work=$(mktemp -d)
our_pids() { ps -eo pid=,sid= | awk -v s=$$ '$2 == s && $1 != s {print $1}'; }

cleanup() {
  local pids
  pids=$(our_pids)
  if [ -n "$pids" ]; then
    kill $pids 2>/dev/null || true
    sleep 2
    pids=$(our_pids)
    [ -z "$pids" ] || kill -9 $pids 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

unset RAY_AUTH_MODE RAY_AUTH_TOKEN RAY_ADDRESS
export HOME="$work/home" RAY_AUTH_TOKEN_PATH="$work/token" TF_CPP_MIN_LOG_LEVEL=2
mkdir -p "$HOME"
python -c 'import secrets; print(secrets.token_hex(32))' > "$RAY_AUTH_TOKEN_PATH"
port=$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

ray_node() {  # LOG, then `ray start` arguments; the nodes check tokens (RAY_AUTH_MODE=token)
  local log="$work/$1"
  shift
  RAY_AUTH_MODE=token ray start "$@" --node-ip-address=127.0.0.1 --num-cpus=1 \
    --object-store-memory=300000000 --disable-usage-stats --temp-dir="$work/ray" > "$log" 2>&1 \
    || { cat "$log"; exit 1; }
}
start_head() { ray_node head.log --head --port="$port" --include-dashboard=false; }
start_worker() { ray_node worker.log --address="127.0.0.1:$port"; }

assert_loopback_listeners() {
  ss -ltnH | awk '{print $4}' | python -c '
import ipaddress, sys
port = sys.argv[1]
socks = [line.strip() for line in sys.stdin if line.strip()]
hosts = {s.rpartition(":")[0].strip("[]").removeprefix("::ffff:") for s in socks}
outside = sorted(h for h in hosts if h in ("*", "0.0.0.0", "::") or not ipaddress.ip_address(h).is_loopback)
assert not outside, f"sockets listening beyond loopback: {outside} in {socks}"
assert any(s.endswith(":" + port) for s in socks), f"the GCS port {port} is not listening: {socks}"
print(f"{len(socks)} listening sockets, all on loopback, the GCS on port {port} among them")
' "$port"
}
