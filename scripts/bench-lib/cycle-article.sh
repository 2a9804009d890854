#!/usr/bin/env bash
# One full cycle with the article's commands (docs/walkthrough.md), in its order: the overlay
# (losetup, mount, mount -t overlay), the namespace and its veth (ip netns add, ip link add,
# ip link set up), config.json (crun spec and sed), the container (crun create, start, exec),
# then a complete teardown (kill -9, crun delete, umount, losetup -d, ip link del, ip netns del).
#
#   cycle-article.sh IMAGE NAME WORKDIR
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
#
# With BENCH_STEPS=FILE, appends a line "STEP SECONDS" (bash's $EPOCHREALTIME) after each step.
set -euo pipefail
img=$1 name=$2 w=$3
steps=${BENCH_STEPS:-}
mark() { if [ -n "$steps" ]; then printf '%s %s\n' "$1" "$EPOCHREALTIME" >>"$steps"; fi; }

mark start
# 2. The copy-on-write view.
losetup -fP "$img"
DEVLOOP=$(losetup -l | grep "$img" | awk '{print $1}')
mkdir -p "$w"/{lower,upper,workdir,rootfs}
mount "$DEVLOOP" "$w/lower"
LW="$w/lower" UP="$w/upper" WK="$w/workdir" RT="$w/rootfs"
mount none -t overlay -o "lowerdir=${LW},upperdir=${UP},workdir=${WK}" "${RT}"
mark overlay
# 3. The private IP stack.
ip netns add cloonix_1_1
ip link add name vgt_1_1_0 type veth peer name eth0 netns cloonix_1_1
ip link set vgt_1_1_0 up
ip netns exec cloonix_1_1 ip link set lo up
ip netns exec cloonix_1_1 ip link set eth0 up
mark netns
# 4. config.json.
cd "$w"
crun spec
sed -i s"%\"path\": \(.*\)%\"path\": \"$RT\",%" config.json
sed -i s"/\"readonly\": \(.*\)/\"readonly\": false/" config.json
sed -i s"%\"network\"%\"network\",\n\t\t\t\t\"path\": \"/var/run/netns/cloonix_1_1\"%" config.json
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
crun exec "$name" ip link >/dev/null
mark crun-exec
# The teardown.
pid=$(crun list | awk -v n="$name" '$1 == n {print $2}')
kill -9 "$pid"
while [ -e "/proc/$pid" ] && ! grep -q '^State:.*zombie' "/proc/$pid/status" 2>/dev/null; do :; done
mark kill
crun delete "$name"
mark crun-delete
umount "$RT"
umount "$LW"
DEVLOOP=$(losetup -l | grep "$img" | awk '{print $1}')
losetup -d $DEVLOOP
mark overlay-down
ip link del vgt_1_1_0
mark veth-del
ip netns del cloonix_1_1
mark netns-del
rm -rf "$w"/{lower,upper,workdir,rootfs} "$w/config.json"
