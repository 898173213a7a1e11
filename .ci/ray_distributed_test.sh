#!/usr/bin/env bash
# Data-parallel training on an existing Ray cluster: two Ray nodes on this machine (`ray start
# --head` and a second `ray start --address`, one CPU each), a digits recipe trained with
# `train.distributed: {workers: 2}` on them (RAY_ADDRESS=127.0.0.1:<port>), and the same recipe
# trained in one process with the same global batch. Checks: every stage done in both
# manifests, the two workers on distinct Ray nodes (the manifest's `workers`), and the two
# accuracies within MAX_GAP of each other.
#
# Run from the repository root inside the CI virtualenv (ray, python and gaitrun on PATH):
#     bash .ci/ray_distributed_test.sh
#
# The cluster runs in a private network namespace (only loopback) with token authentication
# on, and clean-up stops only its own processes: see .ci/private_ray.sh. The driver gets the
# token the way the README says (RAY_AUTH_TOKEN_PATH, no RAY_AUTH_MODE). Both nodes see the
# same artifacts folder and clip-store cache, as nodes sharing storage would.
set -euo pipefail
source "$(dirname "$0")/private_ray.sh"

MAX_GAP=0.05  # accuracy points (as a fraction) between 2 workers and one process
export GAITRUN_CACHE="$work/cache"

cat > "$work/digits_dist.yaml" <<'YAML'
name: digits_dist
seed: 1
data: {adapter: digits, modality: rgb, clip: {frames: 1, size: [8, 8]}, cache: disk}
model: {arch: simple_cnn, params: {width: 0.5}}
train: {epochs: 8, batch_size: 32, optimizer: {name: adam, lr: 0.003}, validate_every: 8}
cv: {scheme: holdout, fraction: 0.2, group_by: index}
YAML

# the reference first (no Ray: one process), filling the clip-store cache the workers read
gaitrun run "$work/digits_dist.yaml" --artifacts "$work/one" --quiet

start_head
start_worker
assert_loopback_listeners
RAY_ADDRESS="127.0.0.1:$port" gaitrun run "$work/digits_dist.yaml" --artifacts "$work/dist" --quiet \
  --set 'train.distributed={workers: 2, cpus_per_worker: 1}'

python - "$work" "$MAX_GAP" <<'PY'
import json, pathlib, sys

work, gap = pathlib.Path(sys.argv[1]), float(sys.argv[2])

def run(root):
    folder = next((work / root).glob("digits_dist/*/manifest.json")).parent
    manifest = json.loads((folder / "manifest.json").read_text())
    undone = [s["name"] for s in manifest["stages"] if s["status"] != "done"]
    assert not undone, f"{root}: stages not done: {undone}"
    return manifest, json.loads((folder / "metrics.json").read_text())["summary"]["mean"]["accuracy"]

_, one = run("one")
manifest, dist = run("dist")
workers = manifest["workers"]
nodes = {w["node_id"] for w in workers}
print(f"every stage done; 2 workers (ranks {[w['rank'] for w in workers]}) on {len(nodes)} nodes")
assert [w["rank"] for w in workers] == [0, 1], workers
assert len(nodes) == 2 and all(nodes), f"expected the workers on both Ray nodes, got {workers}"
print(f"accuracy: 2 workers {dist:.3f}, one process {one:.3f}, difference {abs(dist - one) * 100:.1f} points")
assert abs(dist - one) <= gap, f"2 workers {dist:.3f} vs one process {one:.3f}: more than {gap * 100:g} points apart"
PY
