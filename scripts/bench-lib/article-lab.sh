#!/usr/bin/env bash
# The article's commands for N containers of one image, one container after the other: the
# bring-up of cycle-article.sh N times (each container with its own loop device, lower and
# overlay mounts, network namespace cloonix_1_I and veth vgt_1_I_0, config.json and container),
# or its teardown N times.
#
#   article-lab.sh up|down IMAGE N PREFIX WORKDIR
#
# Containers are named PREFIX1 .. PREFIXN, their files under WORKDIR/I. The loop device comes
# from `losetup -fP --show` (ARTICLE_LAB=1 in cycle-article.sh): with N devices of one image,
# the article's `losetup -l | grep IMAGE` would list them all. The image is mounted read-write N
# times, as the article mounts it, so scripts/bench gives this script a copy of its own.
set -euo pipefail
verb=$1 img=$2 n=$3 prefix=$4 work=$5
export ARTICLE_LAB=1
# shellcheck source=cycle-article.sh
. "$(dirname "$0")/cycle-article.sh"
case $verb in
  up)
    for ((i = 1; i <= n; i++)); do
      mkdir -p "$work/$i"
      article_up "$img" "$prefix$i" "$work/$i" "cloonix_1_$i" "vgt_1_${i}_0"
    done
    ;;
  down)
    for ((i = 1; i <= n; i++)); do
      article_down "$img" "$prefix$i" "$work/$i" "cloonix_1_$i" "vgt_1_${i}_0"
      rmdir "$work/$i"
    done
    ;;
  *) echo "article-lab.sh: up or down, not $verb" >&2; exit 2 ;;
esac
