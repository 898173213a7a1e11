#!/usr/bin/env bash
# A sweep on an existing Ray cluster: two Ray nodes on this machine (`ray start --head` and a
# second `ray start --address`, one CPU each), a 4-trial digits sweep sent to them with
# `--set search.address=127.0.0.1:<port>`, and a check that trials ran on both nodes (the trial
# table's node_id column).
#
# Run from the repository root inside the CI virtualenv (ray, python and gaitrun on PATH):
#     bash .ci/ray_cluster_test.sh
#
# The cluster runs in a private network namespace (only loopback) with token authentication
# on, and clean-up stops only its own processes: see .ci/private_ray.sh. The driver gets the
# token the way the README says (RAY_AUTH_TOKEN_PATH, no RAY_AUTH_MODE). Two nodes on one host
# work: the second node picks its own free ports and socket names.
set -euo pipefail
source "$(dirname "$0")/private_ray.sh"

start_head
start_worker
assert_loopback_listeners

cat > "$work/digits_cluster.yaml" <<'YAML'
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
YAML

gaitrun run "$work/digits_cluster.yaml" --artifacts "$work/artifacts" --quiet \
  --set search.address="127.0.0.1:$port"

python - "$work/artifacts" <<'PY'
import csv, pathlib, sys

table = next(pathlib.Path(sys.argv[1]).glob("digits_cluster/*-sweep/trials.csv"))
rows = list(csv.DictReader(table.open()))
nodes = {r["node_id"] for r in rows}
print(f"{len(rows)} trials, {sum(r['status'] == 'done' for r in rows)} done; trials ran on {len(nodes)} nodes")
assert len(rows) == 4 and all(r["status"] == "done" for r in rows), rows
assert len(nodes) == 2, f"expected trials on both Ray nodes, got {nodes}"
PY
