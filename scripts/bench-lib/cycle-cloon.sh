#!/usr/bin/env bash
# One full cycle with cloon's tools, as the README types it: a busybox image to a running
# container with eth0 (the pipeline), `ip link` inside it, then the pipeline in reverse.
#
#   cycle-cloon.sh IMAGE NAME WORKDIR [MODE [all|up|down]]
#
# MODE is cloon-spec's --cgroups (none, cloon or runtime); `default` (the default) gives no
# --cgroups, for a build without it or to measure its default. up is the bring-up alone (the
# pipeline: a running container with eth0), down the teardown; all (the default) is up,
# `cloon-run exec NAME -- ip link`, then down.
#
# Run by scripts/bench inside its sandbox, with the release build first in PATH.
set -euo pipefail
img=$1 name=$2 work=$3 mode=${4:-default} phase=${5:-all}
cgroups=()
if [ "$mode" != default ]; then cgroups=(--cgroups "$mode"); fi

up() {
  cloon-overlay --image "$img" --name "$name" </dev/null \
    | cloon-netns --netns cloonix_1_1 --veth vgt_1_1_0:eth0 \
    | cloon-spec "${cgroups[@]}" \
    | cloon-run >"$work/$name.json"
}
down() {
  cloon-run down <"$work/$name.json" | cloon-spec down | cloon-netns down | cloon-overlay down >/dev/null
  rm -f "$work/$name.json"
}
case $phase in
  up) up ;;
  down) down ;;
  all)
    up
    cloon-run exec "$name" -- ip link >/dev/null
    down
    ;;
  *) echo "cycle-cloon.sh: all, up or down, not $phase" >&2; exit 2 ;;
esac
