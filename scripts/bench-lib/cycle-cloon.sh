#!/usr/bin/env bash
# One full cycle with cloon's tools, as the README types it: a busybox image to a running
# container with eth0 (the pipeline), `ip link` inside it, then the pipeline in reverse.
#
#   cycle-cloon.sh IMAGE NAME WORKDIR
#
# Run by scripts/bench inside its sandbox, with the release build first in PATH.
set -euo pipefail
img=$1 name=$2 work=$3

cloon-overlay --image "$img" --name "$name" </dev/null \
  | cloon-netns --netns cloonix_1_1 --veth vgt_1_1_0:eth0 \
  | cloon-spec \
  | cloon-run >"$work/$name.json"
cloon-run exec "$name" -- ip link >/dev/null
cloon-run down <"$work/$name.json" | cloon-spec down | cloon-netns down | cloon-overlay down >/dev/null
rm -f "$work/$name.json"
