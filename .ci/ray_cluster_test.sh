#!/usr/bin/env bash
# A sweep on an existing Ray cluster: two Ray nodes on this machine (`ray start --head` and a
# second `ray start --address`, one CPU each), a 4-trial digits sweep sent to them with
# `--set search.address=127.0.0.1:<port>`, and a check that trials ran on both nodes (the trial
# table's node_id column).
#
# Run from the repository root inside the CI virtualenv (ray, python and gaitrun on PATH):
#     bash .ci/ray_cluster_test.sh
#
# Two nodes on one host work: the second node picks its own free ports and socket names.
# Clean-up stops only the Ray processes this script started (they share its session), not
# every Ray process of the machine as `ray stop` would: a shared machine may run other sweeps.
set -euo pipefail

if [ "$(ps -o sid= -p $$ | tr -d ' ')" != "$$" ]; then
  exec setsid --wait bash "$0" "$@"  # a session of our own: Ray's daemons inherit it
fi

export RAY_AUTH_MODE=disabled  # a throw-away cluster listening on 127.0.0.1 only
export TF_CPP_MIN_LOG_LEVEL=2
work=$(mktemp -d)
port=$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
node=(--node-ip-address=127.0.0.1 --num-cpus=1 --object-store-memory=300000000 --disable-usage-stats
      --temp-dir="$work/ray")

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

ray start --head --port="$port" --include-dashboard=false "${node[@]}" > "$work/head.log" 2>&1 \
  || { cat "$work/head.log"; exit 1; }
ray start --address="127.0.0.1:$port" "${node[@]}" > "$work/worker.log" 2>&1 \
  || { cat "$work/worker.log"; exit 1; }

cat > "$work/digits_cluster.yaml" <<'EOF'
name: digits_cluster
seed: 1
data: {adapter: digits, modality: rgb, clip: {frames: 1, size: [8, 8]}, cache: memory}
model: {arch: simple_cnn, params: {width: 0.25}}
train: {epochs: 1, batch_size: 64}
cv: {scheme: holdout, fraction: 0.3, group_by: index}
search:
  space: {train.optimizer.lr: {grid: [0.001, 0.003]}, model.params.width: {grid: [0.25, 0.5]}}
  algorithm: grid
  num_samples: 1
  max_concurrent: 2
  resources: {cpu: 1}
  metric: accuracy
  mode: max
EOF

gaitrun run "$work/digits_cluster.yaml" --artifacts "$work/artifacts" --quiet \
  --set search.address="127.0.0.1:$port"

python - "$work/artifacts" <<'EOF'
import csv, pathlib, sys

table = next(pathlib.Path(sys.argv[1]).glob("digits_cluster/*-sweep/trials.csv"))
rows = list(csv.DictReader(table.open()))
nodes = {r["node_id"] for r in rows}
print(f"{len(rows)} trials, {sum(r['status'] == 'done' for r in rows)} done; trials ran on {len(nodes)} nodes")
assert len(rows) == 4 and all(r["status"] == "done" for r in rows), rows
assert len(nodes) == 2, f"expected trials on both Ray nodes, got {nodes}"
EOF
