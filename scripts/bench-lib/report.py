"""Turns the results of scripts/bench (JSON) into the Markdown of BENCHMARKS.md."""

MIB = 1024
TARGET_MEMORY_KIB = 10 * MIB


def f1(x):
    return f"{x:.1f}"


def mib(kib):
    return f"{kib / MIB:.1f} MiB"


def table(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def yes(ok):
    return "**met**" if ok else "**missed**"


def write(r, path):
    m = r["machine"]
    md = []
    add = md.append
    add("# Benchmarks\n")
    add("cloon replaces the article's dozen forked commands (losetup, mount, ip, crun spec, sed) "
        "with direct system calls and netlink. These numbers compare the two on one machine. "
        "They were written by `scripts/bench`" + (" --quick" if r.get("quick") else "") +
        f" on {m['date']}; run it again to measure yours (as root; it installs hyperfine, "
        "GNU time and python3 when missing, builds the release binaries and runs everything "
        "inside a sandbox: fresh mount and network namespaces with their own /run).\n")
    if r.get("quick"):
        add("> A quick run (`--quick`): few runs, N = 10 only, no debootstrap. The numbers are "
            "indicative only.\n")

    add("## The machine\n")
    add(table(["", ""], [
        ["CPU", m["cpu"]], ["cores", m["cores"]], ["memory", f"{m['memory_gib']} GiB"],
        ["kernel", m["kernel"]], ["system", m["os"]], ["runtime", m["crun"]],
        ["timing", m["hyperfine"] + ", Python's posix_spawn/wait4, GNU time %M"],
        ["load average (1, 5, 15 min)",
         f"{m['load']} at the start, {m.get('load_end', '?')} at the end"],
    ]))
    add("\nThe machine is a shared virtual machine: other jobs ran at the same time, so the "
        "spread (±) is wide; medians are used throughout.\n")

    cyc, st, sc = r.get("cycle"), r.get("steps"), r.get("scale", [])
    add("## Targets\n")
    rows = []
    analysis = []
    if cyc:
        ratio = cyc["ratio"]
        rows.append(["full cycle at most half the time of the article's commands",
                     f"{f1(cyc['cloon']['median'])} ms against {f1(cyc['article']['median'])} ms:"
                     f" {ratio:.2f} times", yes(ratio <= 0.5)])
    if st:
        rows.append(["the tools' own time (all but the runtime's) at most 10 ms per cycle",
                     f"{f1(st['cloon_own'])} ms", yes(st["cloon_own"] <= 10)])
    by_n = {s["n"]: s for s in sc}
    if 10 in by_n and 200 in by_n:
        k = by_n[200]["per_container"] / by_n[10]["per_container"]
        rows.append(["cost per container at N = 200 within 1.5 times N = 10",
                     f"{f1(by_n[200]['per_container'])} ms against "
                     f"{f1(by_n[10]['per_container'])} ms: {k:.2f} times", yes(k <= 1.5)])
    else:
        rows.append(["cost per container at N = 200 within 1.5 times N = 10",
                     "not measured (--quick: N = 10 only)", "-"])
    peaks = {}
    for s in (st or {}).get("cloon", []):
        peaks[s["tool"]] = max(peaks.get(s["tool"], 0), s["peak_kib"])
    for s in sc:
        for tool, kib in s["peak_kib"].items():
            peaks[tool] = max(peaks.get(tool, 0), kib)
    if peaks:
        top = max(peaks.values())
        rows.append(["every tool's peak memory at most 10 MiB",
                     f"at most {mib(top)} (" + ", ".join(
                         f"{t} {mib(k)}" for t, k in sorted(peaks.items())) + ")",
                     yes(top <= TARGET_MEMORY_KIB)])
    add(table(["target", "measured here", ""], rows))
    add("")

    if cyc and st:
        art = {a["step"]: a["wall"] for a in st["article"]}
        runtime_art = st["article_runtime"]
        veth = art.get("veth-del", 0)
        half = cyc["article"]["median"] / 2
        crun_calls = sum(len(s["runtime_calls"]) for s in st["cloon"])
        floor = st["cloon_floor"]
        netns_down = next(s for s in st["cloon"] if s["step"] == "netns down")
        missed = cyc["ratio"] > 0.5 or st["cloon_own"] > 10
        title = ("Why the first two targets are out of reach here" if missed
                 else "Where the time goes")
        analysis.append(
            f"### {title}\n\n"
            f"Both cycles do the same runtime work and the same kernel work. The runtime (crun "
            f"create, start, exec, kill, delete) took {f1(runtime_art)} ms of the article's "
            f"cycle, and deleting the veth pair, which the kernel does while the caller waits "
            f"(RCU grace periods in `unregister_netdevice`), took {f1(veth)} ms (`ip link del`). "
            + (f"These two alone take {f1(runtime_art + veth)} ms, more than half the "
               f"article's cycle ({f1(half)} ms): on this machine, no way of doing the other "
               f"steps could reach the target."
               if half <= runtime_art + veth else
               f"Half the article's cycle is {f1(half)} ms: cloon could only get there if "
               f"everything else it does took at most {f1(half - runtime_art - veth)} ms.")
            + f" Merely starting cloon's nine processes costs {f1(floor)} ms here (each "
            f"binary's `--version`, against {f1(st['floor']['/bin/true'])} ms for "
            f"`/bin/true`).\n\n"
            f"The same costs make up most of the tools' own time, "
            f"{f1(st['cloon_own'])} ms: starting the processes ({f1(floor)} ms), and "
            f"cloon-netns down ({f1(netns_down['own'])} ms), nearly all of it waiting for the "
            f"kernel to delete the veth (it must wait: `ip netns del` alone leaves the host end "
            f"for a few hundred milliseconds, and the next `up` of the same name would fail). "
            f"Beyond these, the tools' own work (their system calls, reading and writing "
            f"the document and their records) comes to "
            f"{f1(max(st['cloon_own'] - floor - (netns_down['own'] - netns_down['floor']), 0))}"
            f" ms per cycle.\n\n"
            f"What would bring cloon closer, outside cloon-overlay:\n\n"
            f"- cloon-run calls the runtime {crun_calls} times per cycle, as the article does "
            f"(create, start, exec, kill, delete): it takes the container's pid from "
            f"`create --pid-file`, checks its process in /proc and waits for its end on a pidfd "
            f"instead of asking the runtime's `state`. Each call of crun costs at least "
            f"{f1(st['floor']['crun'])} ms (`crun --version`; crun also copies and re-executes "
            f"itself on every call); they count as the runtime's share here, not as cloon's.\n"
            f"- The veth's deletion cannot be made cheaper from user space: moving the host end "
            f"into the namespace being deleted costs as much as deleting it (the kernel waits "
            f"for the same grace periods), and deleting the namespace first leaves the host end "
            f"until the kernel's asynchronous clean-up, later still (measured in a sandbox: a "
            f"median of 27 ms for `ip link del`, 29 ms for the move, 46 ms for `ip netns del` "
            f"until the host end's name is free).\n"
            f"- Linking the tools statically (`-C target-feature=+crt-static`, a "
            f"`.cargo/config.toml` setting) saves the dynamic loader's work: measured here, "
            f"about 0.3 to 0.5 ms per process, 3 to 4 ms per cycle (not adopted yet: the whole test suite has not been run "
            f"with static binaries).\n"
            f"- One process instead of nine for the whole pipeline would remove most of the "
            f"start cost, at the price of the one-step-per-tool design.\n")

    if cyc:
        add("## The full cycle, side by side\n")
        add("A busybox image to a running container with `eth0`, `ip link` inside it, then a "
            "complete teardown (nothing left: no mount, loop device, namespace, veth or "
            "container). cloon's side is the README's pipeline "
            "([`cycle-cloon.sh`](scripts/bench-lib/cycle-cloon.sh)); the article's side is its "
            "commands in its order ([`cycle-article.sh`](scripts/bench-lib/cycle-article.sh), "
            "changes below). Both are bash scripts run by hyperfine.\n")
        rows = []
        for k in ("cloon", "article"):
            c = cyc[k]
            rows.append([k, f1(c["median"]), f"{f1(c['mean'])} ± {f1(c['stddev'])}",
                         f1(c["min"]), f1(c["max"]), c["runs"]])
        add(table(["", "median (ms)", "mean ± σ (ms)", "min", "max", "runs"], rows))
        add(f"\ncloon's cycle takes **{cyc['ratio']:.2f}** times the article's "
            f"({1 / cyc['ratio']:.2f} times faster).\n")

    if st:
        add("## Each step\n")
        add(f"Median of {st['cycles']} cycles. cloon's tools run one after the other, each "
            "reading the previous document from a file. The runtime's share is measured with "
            "cloon-run given a stand-in runtime ([`runtime-shim.rs`](scripts/bench-lib/"
            "runtime-shim.rs)) that times each crun call; a step's time leaves out what the "
            f"stand-in itself adds ({st['shim_overhead']:.2f} ms per call, measured apart), and "
            "a tool's own time is that time less the runtime's. *Start* is the same binary's "
            "`--version`: what any step costs at least. Peak memory is GNU time's %M (for "
            "cloon-run it includes crun's, as GNU time counts the children a process waits "
            "for).\n")
        rows = []
        for s in st["cloon"]:
            calls = ", ".join(s["runtime_calls"]) or "-"
            rows.append([s["step"], f"`{s['tool']}`", f1(s["wall"]),
                         f1(s["runtime"]) + (f" ({calls})" if s["runtime_calls"] else ""),
                         f1(s["own"]), f1(s["floor"]), mib(s["peak_kib"])])
        rows.append(["**total**", "", f"**{f1(st['cloon_total'])}**",
                     f"**{f1(st['cloon_runtime'])}**", f"**{f1(st['cloon_own'])}**",
                     f1(st["cloon_floor"]), ""])
        add(table(["step", "tool", "time (ms)", "runtime inside (ms)", "own (ms)",
                   "start (ms)", "peak memory"], rows))
        add("\nThe article's commands, timed inside the same script (bash's `$EPOCHREALTIME` "
            "between steps):\n")
        what = {
            "overlay": "losetup -fP, losetup -l \\| grep, mkdir, mount, mount -t overlay",
            "netns": "ip netns add, ip link add ... netns, ip link set up, "
                     "ip netns exec ... ip link set up (twice)",
            "spec": "crun spec, 7 × sed -i",
            "crun-create": "crun create", "crun-start": "crun start",
            "crun-exec": "crun exec ip link",
            "kill": "crun list, kill -9, wait for the process to end",
            "crun-delete": "crun delete",
            "overlay-down": "umount (twice), losetup -l \\| grep, losetup -d",
            "veth-del": "ip link del", "netns-del": "ip netns del",
        }
        rows = [[a["step"], what.get(a["step"], ""), f1(a["wall"]),
                 "runtime" if a["runtime"] else ""] for a in st["article"]]
        rows.append(["**total**", "", f"**{f1(st['article_total'])}**",
                     f"runtime: {f1(st['article_runtime'])}"])
        add(table(["step", "commands", "time (ms)", ""], rows))
        add("")

    if sc:
        add("## Scale\n")
        add("N containers of one busybox image, each brought up by the pipeline (cloon-overlay, "
            "cloon-netns with its own namespace and veth, cloon-spec, cloon-run), all running at "
            "once, then all brought down, one after the other. Counted while all N run; peak "
            "memory from one more container brought up and down at that moment under GNU "
            "time.\n")
        base = by_n.get(10)
        rows = []
        for s in sc:
            rel = f"{s['per_container'] / base['per_container']:.2f}" if base else "-"
            rows.append([s["n"], f1(s["up"] / 1000), f1(s["down"] / 1000),
                         f1(s["per_container"]), rel, s["loops"], s["lower_mounts"],
                         s["overlays"], s["netns_mounts"], s["running"]])
        add(table(["N", "up (s)", "down (s)", "per container (ms)", "vs N = 10",
                   "loop devices", "lower mounts", "overlay mounts", "namespaces",
                   "containers running"], rows))
        tools = sorted({t for s in sc for t in s["per_tool"]})
        add("\nPer container and per tool (up and down, ms), and each tool's peak memory:\n")
        rows = []
        for s in sc:
            rows.append([s["n"]] + [f1(s["per_tool"].get(t, 0)) for t in tools] +
                        [", ".join(f"{t} {mib(k)}" for t, k in sorted(s["peak_kib"].items()))])
        add(table(["N"] + [f"`{t}`" for t in tools] + ["peak memory"], rows))
        add("\nOne loop device and one lower mount serve every container of the image, "
            "whatever N: the article's recipe attaches and mounts the image once per "
            "container.\n")

    img = r.get("images")
    lb = r.get("lab")
    if lb:
        add("## A lab\n")
        add(f"`cloon-lab up` then `cloon-lab down` of a chain of {lb['n']} busybox nodes, each "
            f"linked to the next by a veth pair, from an image file (nothing to build), "
            f"{lb['jobs']} containers brought up at once:\n")
        add(table(["", "time (ms)"], [
            ["up", f1(lb["up"])], ["up again (nothing to do)", f1(lb["again"])],
            ["down", f1(lb["down"])], ["per node, up and down", f1(lb["per_node"])],
        ]))
        add("")

    if img:
        add("## Image creation\n")
        add(f"`cloon-img create --busybox` (an image of {img['bytes'] // 2**20} MiB, written "
            "by `mkfs.ext4 -d` from a staging directory, no loop device and no mount) against "
            "the article's recipe filled with the same busybox files "
            "([`image-article.sh`](scripts/bench-lib/image-article.sh): dd, mkfs.ext4, "
            "losetup -fP, mount, copy, umount, losetup -d), once with the article's 1 GB and "
            "once with cloon-img's size. hyperfine, median.\n")
        rows = [[b["what"], f1(b["median"]), b["runs"]] for b in img["busybox"]]
        add(table(["", "median (ms)", "runs"], rows))
        add("")
    deb = r.get("debootstrap")
    add("### With debootstrap\n")
    if deb:
        add("The article's Debian bookworm with its package list, once each. Most of the time is "
            "debootstrap downloading and unpacking packages, the same work for both, and the "
            "network's speed varies from one run to the next. cloon-img does a little more: "
            "debootstrap writes into a staging directory, which `mkfs.ext4 -d` then copies into "
            "the image (no loop device, no mount, and an image sized to fit), where the article "
            "debootstraps straight into its mounted 1 GB image.\n")
        add(table(["", "time (s)"], [[d["what"], f1(d["seconds"])] for d in deb]))
        add("")
    else:
        add("Not measured in this run: `scripts/bench --with-debootstrap` adds it (minutes; "
            "needs the network).\n")

    add("\n".join(analysis))
    add("## The article's commands, and what the bench changes in them\n")
    add("The bench runs the article's commands as written, except where they are unsafe, "
        "invalid or would make the article look slower than it is:\n")
    add("- the veth's container end is created inside the namespace "
        "(`ip link add name vgt_1_1_0 type veth peer name eth0 netns cloonix_1_1`): the article's "
        "`ip link set eth0 netns cloonix_1_1` would move the host's own `eth0` away;\n"
        "- the lower is mounted with `mount $DEVLOOP`: the article's `mount -o loop $DEVLOOP` "
        "sets up a second loop device on top of the first;\n"
        "- the sed edits write booleans (`\"readonly\": false`), not the strings the article "
        "writes (which the OCI schema refuses), and one more makes the process "
        "`sleep infinity` so the container stays up for `crun exec`;\n"
        "- `crun start` follows `crun create`; the host end of the veth is brought up as "
        "cloon-netns does; the teardown deletes the veth (`ip link del`) before "
        "`ip netns del`, as cloon-netns does, so that the cycle ends with nothing left;\n"
        "- paths are under the sandbox's /run and the container has a unique name, so that "
        "runs do not collide with anything else on the machine.\n")
    add("## Reproduce\n")
    add("```sh\nscripts/bench                       # this file (about a minute)\n"
        "scripts/bench --with-debootstrap    # and the debootstrap images (minutes)\n"
        "scripts/bench --quick --out /tmp/b.md   # what CI runs\n```\n")
    text = "\n".join(md).rstrip() + "\n"
    with open(path, "w") as f:
        f.write(text)
