#!/usr/bin/env bash
# One full cycle with the article's commands (docs/walkthrough.md), in its order: the overlay
# (losetup, mount, mount -t overlay), the namespace and its veth (ip netns add, ip link add,
# ip link set up), config.json (crun spec and sed), the container (crun create, start, exec),
# then a complete teardown (kill -9, crun delete, umount, losetup -d, ip link del, ip netns del).
#
#   cycle-article.sh IMAGE NAME WORKDIR [all|up|down]
#
# up is the bring-up alone (up to `crun start`: a running container with eth0), down the
# teardown; all (the default) is up, `crun exec NAME ip link`, then down. article-lab.sh sources
# this file for article_up and article_down.
#
# Changes to the article's commands, each said in BENCHMARKS.md:
# - the veth's container end is made inside the namespace (`peer name eth0 netns NS`): the
#   article's `ip link set eth0 netns NS` would move the host's own eth0 on a host that has one;
# - the lower is mounted with `mount $DEVLOOP`: the article's `mount -o loop $DEVLOOP` sets up a
#   second loop device on top of the first, which would only make the article slower;
# - the sed edits write booleans (`"readonly": false`), not the strings the article writes, and
#   one more sed makes the process `sleep infinity`, so that the container stays up for exec;
# - `crun start` follows `crun create` (a created container has not run its process yet), the
#   host end of the veth is brought up too, and the teardown deletes the veth (`ip link del`)
#   before the namespace, as cloon-netns does: `ip netns del` alone leaves it to the kernel for a
#   few hundred milliseconds, and the next cycle could not reuse its name.
# - with ARTICLE_LAB=1 (article-lab.sh: N containers of one image at once), the loop device is
#   `losetup -fP --show` and kept in WORKDIR/devloop: `losetup -l | grep IMAGE` would list all N.
#
# With BENCH_STEPS=FILE, appends a line "STEP SECONDS" (bash's $EPOCHREALTIME) after each step.
set -euo pipefail
steps=${BENCH_STEPS:-}
mark() { if [ -n "$steps" ]; then printf '%s %s\n' "$1" "$EPOCHREALTIME" >>"$steps"; fi; }

# article_up IMAGE NAME WORKDIR NETNS VETH
article_up() {
  local img=$1 name=$2 w=$3 ns=$4 veth=$5
  # 2. The copy-on-write view.
  if [ -n "${ARTICLE_LAB:-}" ]; then
    DEVLOOP=$(losetup -fP --show "$img")
    printf '%s\n' "$DEVLOOP" >"$w/devloop"
  else
    losetup -fP "$img"
    DEVLOOP=$(losetup -l | grep "$img" | awk '{print $1}')
  fi
  mkdir -p "$w"/{lower,upper,workdir,rootfs}
  mount "$DEVLOOP" "$w/lower"
  LW="$w/lower" UP="$w/upper" WK="$w/workdir" RT="$w/rootfs"
  mount none -t overlay -o "lowerdir=${LW},upperdir=${UP},workdir=${WK}" "${RT}"
  mark overlay
  # 3. The private IP stack.
  ip netns add "$ns"
  ip link add name "$veth" type veth peer name eth0 netns "$ns"
  ip link set "$veth" up
  ip netns exec "$ns" ip link set lo up
  ip netns exec "$ns" ip link set eth0 up
  mark netns
  # 4. config.json.
  cd "$w"
  crun spec
  sed -i s"%\"path\": \(.*\)%\"path\": \"$RT\",%" config.json
  sed -i s"/\"readonly\": \(.*\)/\"readonly\": false/" config.json
  sed -i s"%\"network\"%\"network\",\n\t\t\t\t\"path\": \"/var/run/netns/$ns\"%" config.json
  sed -i s"/\"terminal\": \(.*\)/\"terminal\": false,/" config.json
  sed -i s"%\"CAP_KILL\",%\"CAP_KILL\",\n\t\t\t\t\"CAP_NET_RAW\",%" config.json
  sed -i s"%\"CAP_KILL\",%\"CAP_KILL\",\n\t\t\t\t\"CAP_NET_ADMIN\",%" config.json
  sed -i s"%\"sh\"%\"sleep\", \"infinity\"%" config.json
  mark spec
  # 5. The container.
  crun create --config="$w/config.json" "$name" </dev/null >/dev/null
  mark crun-create
  crun start "$name"
  mark crun-start
}

# article_down IMAGE NAME WORKDIR NETNS VETH
article_down() {
  local img=$1 name=$2 w=$3 ns=$4 veth=$5 pid
  pid=$(crun list | awk -v n="$name" '$1 == n {print $2}')
  kill -9 "$pid"
  while [ -e "/proc/$pid" ] && ! grep -q '^State:.*zombie' "/proc/$pid/status" 2>/dev/null; do :; done
  mark kill
  crun delete "$name"
  mark crun-delete
  umount "$w/rootfs"
  umount "$w/lower"
  if [ -n "${ARTICLE_LAB:-}" ]; then
    read -r DEVLOOP <"$w/devloop"
  else
    DEVLOOP=$(losetup -l | grep "$img" | awk '{print $1}')
  fi
  losetup -d $DEVLOOP
  mark overlay-down
  ip link del "$veth"
  mark veth-del
  ip netns del "$ns"
  mark netns-del
  rm -rf "$w"/{lower,upper,workdir,rootfs,devloop} "$w/config.json"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  img=$1 name=$2 w=$3 phase=${4:-all}
  mark start
  case $phase in
    up) article_up "$img" "$name" "$w" cloonix_1_1 vgt_1_1_0 ;;
    down) article_down "$img" "$name" "$w" cloonix_1_1 vgt_1_1_0 ;;
    all)
      article_up "$img" "$name" "$w" cloonix_1_1 vgt_1_1_0
      crun exec "$name" ip link >/dev/null
      mark crun-exec
      article_down "$img" "$name" "$w" cloonix_1_1 vgt_1_1_0
      ;;
    *) echo "cycle-article.sh: all, up or down, not $phase" >&2; exit 2 ;;
  esac
fi
