#!/usr/bin/env bash
# The driver against a Ray head that checks tokens (Ray 2.60 token authentication), started on
# 127.0.0.1 in a private network namespace (.ci/private_ray.sh). Three cases, each leaving
# OUT/<case>.rc, .out and .err (its exit code, stdout and stderr) for tests/test_sweep_connect.py:
#   wrong  `gaitrun run OUT/recipe.yaml --set search.address=127.0.0.1:<port>` with
#          RAY_AUTH_TOKEN_PATH at a wrong token (its sweep folder under OUT/artifacts/wrong);
#   none   the same without any token (OUT/artifacts/none);
#   right  the driver's connection (gaitrun.sweep.cluster.ray_session) with the right token in
#          RAY_AUTH_TOKEN_PATH and no RAY_AUTH_MODE, printing the cluster's CPUs.
#     bash .ci/ray_auth_test.sh OUT
set -euo pipefail
out=$(realpath "$1")
source "$(dirname "$0")/private_ray.sh"

start_head
assert_loopback_listeners

run_case() {  # NAME, then the command; never stops the script
  local name=$1
  shift
  set +e
  timeout 300 "$@" > "$out/$name.out" 2> "$out/$name.err"
  echo $? > "$out/$name.rc"
  set -e
}

python -c 'import secrets; print(secrets.token_hex(32))' > "$work/wrong_token"
run_case wrong env RAY_AUTH_TOKEN_PATH="$work/wrong_token" \
  gaitrun run "$out/recipe.yaml" --artifacts "$out/artifacts/wrong" --set search.address="127.0.0.1:$port"
run_case none env -u RAY_AUTH_TOKEN_PATH \
  gaitrun run "$out/recipe.yaml" --artifacts "$out/artifacts/none" --set search.address="127.0.0.1:$port"
run_case right python -c '
import sys, ray
from gaitrun.sweep.cluster import ray_session
with ray_session(sys.argv[1]):
    cpus = ray.cluster_resources()["CPU"]
    print(f"connected: {cpus:g} CPU")
' "127.0.0.1:$port"
echo "cases done"
