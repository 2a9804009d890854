"""Turns the results of scripts/bench (JSON) into the Markdown of BENCHMARKS.md."""

MIB = 1024
TARGET_MEMORY_KIB = 10 * MIB
# The targets (project issue 11).
T_BRINGUP, T_CYCLE, T_LAB200, T_SCALE, T_START = 0.35, 0.45, 0.15, 1.3, 1.2
# The runtime's cgroup manager each cloon-spec --cgroups mode amounts to (driver.MODE_MANAGER).
MODE_MANAGER = {"none": "disabled", "runtime": "default", "cloon": "default-nested"}
MANAGER_TEXT = {
    "disabled": "`--cgroup-manager=disabled`",
    "default": "default manager, crun's `/NAME`",
    "default-nested": "default manager, `/cloon/PARENT/NAME`",
}


def f1(x):
    return f"{x:.1f}"


def f2(x):
    return f"{x:.2f}"


def mib(kib):
    return f"{kib / MIB:.1f} MiB"


def table(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def runs_text(k):
    return "one run" if k == 1 else f"the median of {k} runs"


def yes(ok):
    return "**met**" if ok else "**missed**"


def effective(r, mode):
    """The mode a label stands for: `default` (a build without --cgroups) is cloon's."""
    return r["cgroups"]["default_is"] if mode == "default" else mode


def mode_label(r, mode):
    c = r["cgroups"]
    if mode == "default":
        return f"`{c['default_is']}` (the only mode of this build)"
    return f"`{mode}`" + (" (default)" if mode == c["default"] else "")


class Floors:
    """What the runtime and the kernel alone cost (the floor measurements), added up for a
    bring-up, a cycle and a lab of N."""

    def __init__(self, r):
        fl = r.get("floor") or {}
        self.rt = fl.get("runtime")
        self.kn = (fl.get("kernel") or {}).get("n", {})
        self.ok = bool(self.rt and "1" in self.kn)

    def manager(self, r, mode):
        return MODE_MANAGER[effective(r, mode)]

    def bringup(self, r, mode):
        k, rt = self.kn["1"], self.rt[self.manager(r, mode)]
        return k["overlay_up"] + k["make"] + rt["up"]

    def cycle(self, r, mode):
        k, rt = self.kn["1"], self.rt[self.manager(r, mode)]
        return (self.bringup(r, mode) + rt["exec"] + rt["down"] + k["overlay_down"] +
                k["del_one_by_one"])

    def lab(self, r, n, mode):
        k = self.kn.get(str(n))
        if not k:
            return None
        rt = self.rt[self.manager(r, mode)]
        return (k["overlay_up"] + k["make"] + k["overlay_down"] + k["del_by_group"] +
                n * (rt["up"] + rt["down"]))


def write(r, path):
    m = r["machine"]
    md = []
    add = md.append
    quick = r.get("quick")
    cg = r.get("cgroups") or {"flag": False, "modes": ["default"], "default": "default",
                              "default_is": "cloon"}
    r["cgroups"] = cg
    fl = Floors(r)
    cyc, bu, st, start = r.get("cycle"), r.get("bringup"), r.get("steps"), r.get("start")
    lb = r.get("labs")
    lab_n = {x["n"]: x for x in (lb or {}).get("n", [])}

    add("# Benchmarks\n")
    add("cloon replaces the article's dozen forked commands (losetup, mount, ip, crun spec, sed) "
        "with direct system calls and netlink. These numbers compare the two on one machine. "
        "They were written by `scripts/bench`" + (" --quick" if quick else "") +
        f" on {m['date']}; run it again to measure yours (as root; it installs hyperfine, "
        "GNU time and python3 when missing, builds the release binaries and runs everything "
        "inside a sandbox: fresh mount and network namespaces with their own /run).\n")
    if quick:
        add("> A quick run (`--quick`): few runs, labs of N = 10 and 50 only, no debootstrap. "
            "The numbers are indicative only.\n")
    if cg["flag"]:
        add(f"cloon-spec's `--cgroups` modes are measured side by side: `none` (crun runs with "
            f"`--cgroup-manager=disabled`, as cloonix runs it), `cloon` (a cgroup parent per "
            f"state directory, `/cloon/ID/NAME`) and `runtime` (no `cgroupsPath`: crun's "
            f"`/NAME`); the default is `{cg['default']}`. The article's side always uses "
            f"crun's default cgroups, as its recipe does.\n")
    else:
        add("This build of cloon-spec has no `--cgroups`: only its one behaviour is measured "
            "(a cgroup parent per state directory, `/cloon/ID/NAME`, the `cloon` mode).\n")

    # --- targets ---
    add("## Targets\n")
    rows = []

    def floor_cells(ok, cloon, floor, article):
        if ok or floor is None:
            return ["", ""]
        figure = f"{f1(floor / 1000)} s" if floor >= 1000 else f"{f1(floor)} ms"
        return [f"{figure} ({f2(floor / article)} of the article's)", f2(cloon / floor)]

    if bu:
        art = bu["article"]["median"]
        for mode, c in bu["modes"].items():
            ok = c["ratio"] <= T_BRINGUP
            floor = fl.bringup(r, mode) if fl.ok else None
            rows.append([f"bring-up at most {T_BRINGUP} of the article's, cgroups "
                         f"{mode_label(r, mode)}",
                         f"{f1(c['median'])} ms against {f1(art)} ms: {f2(c['ratio'])}",
                         yes(ok)] + floor_cells(ok, c["median"], floor, art))
    if cyc:
        art = cyc["article"]["median"]
        for mode, c in cyc["modes"].items():
            ok = c["ratio"] <= T_CYCLE
            floor = fl.cycle(r, mode) if fl.ok else None
            rows.append([f"full cycle at most {T_CYCLE} of the article's, cgroups "
                         f"{mode_label(r, mode)}",
                         f"{f1(c['median'])} ms against {f1(art)} ms: {f2(c['ratio'])}",
                         yes(ok)] + floor_cells(ok, c["median"], floor, art))
    lab_mode = (lb or {}).get("mode", cg["default"])
    if 200 in lab_n:
        x = lab_n[200]
        ok = x["ratio"] <= T_LAB200
        floor = fl.lab(r, 200, lab_mode) if fl.ok else None
        rows.append([f"lab of 200, up and down, at most {T_LAB200} of the article's",
                     f"{f1(x['total'] / 1000)} s against {f1(x['article']['total'] / 1000)} s: "
                     f"{f2(x['ratio'])}", yes(ok)] +
                    floor_cells(ok, x["total"], floor, x["article"]["total"]))
    elif lb:
        rows.append([f"lab of 200, up and down, at most {T_LAB200} of the article's",
                     "not measured (--quick: N = 10 and 50)", "-", "", ""])
    if 10 in lab_n and 500 in lab_n:
        a, b = lab_n[10], lab_n[500]
        k = b["per_container"] / a["per_container"]
        ok = k <= T_SCALE
        cells = ["", ""]
        if not ok and fl.ok and fl.lab(r, 500, lab_mode) and fl.lab(r, 10, lab_mode):
            fk = (fl.lab(r, 500, lab_mode) / 500) / (fl.lab(r, 10, lab_mode) / 10)
            cells = [f"{f2(fk)} times (the floor's cost per container, N = 500 against 10)",
                     f2(k / fk)]
        rows.append([f"cost per container at N = 500 at most {T_SCALE} times N = 10",
                     f"{f1(b['per_container'])} ms against {f1(a['per_container'])} ms: "
                     f"{f2(k)} times", yes(ok)] + cells)
    elif lb:
        rows.append([f"cost per container at N = 500 at most {T_SCALE} times N = 10",
                     "not measured (--quick: N = 10 and 50)", "-", "", ""])
    if start:
        t = start["tools"]
        worst = max((k for k in t if k != "/bin/true"), key=lambda k: t[k]["ratio"])
        ok = t[worst]["ratio"] <= T_START
        rows.append([f"each tool's `--version` at most {T_START} times `/bin/true`",
                     f"{f1(t['/bin/true']['median'] * 1000)} µs for `/bin/true`; " + ", ".join(
                         f"{k} {f2(v['ratio'])}" for k, v in t.items() if k != "/bin/true"),
                     yes(ok)] +
                    (["", ""] if ok else
                     [f"`/bin/true`, {f1(t['/bin/true']['median'] * 1000)} µs",
                      f"{f2(t[worst]['ratio'])} ({worst})"]))
    peaks = peak_memory(r)
    tools = {t: k for t, k in peaks.items() if t != "cloon-lab"}
    if tools:
        top = max(tools.values())
        lab_peak = (f"; cloon-lab, which holds a whole lab, {mib(peaks['cloon-lab'])} at N = "
                    f"{max(lab_n)}" if "cloon-lab" in peaks and lab_n else "")
        rows.append(["each pipeline tool's peak memory at most 10 MiB",
                     f"at most {mib(top)}{lab_peak}", yes(top <= TARGET_MEMORY_KIB), "", ""])
    add(table(["target", "measured here", "", "floor (missed only)", "cloon / floor"], rows))
    add("\nThe *floor* is what the runtime and the kernel alone take for the same work, "
        "measured apart (below): no tool can go under it. cloon / floor says how close cloon "
        "is.\n")

    # --- the machine ---
    add("## The machine\n")
    add(table(["", ""], [
        ["CPU", m["cpu"]], ["cores", m["cores"]], ["memory", f"{m['memory_gib']} GiB"],
        ["kernel", m["kernel"]], ["system", m["os"]], ["runtime", m["crun"]],
        ["cgroups", m.get("cgroups", "?")],
        ["timing", m["hyperfine"] + ", Python's posix_spawn/wait4, GNU time %M"],
        ["load average (1, 5, 15 min)",
         f"{m['load']} at the start, {m.get('load_end', '?')} at the end"],
    ]))
    add("\nThe machine is a shared virtual machine: other jobs ran at the same time, so the "
        "spread (±) is wide; medians are used throughout.\n")

    # --- the full cycle ---
    if cyc:
        add("## The full cycle, side by side\n")
        add("A busybox image to a running container with `eth0`, `ip link` inside it, then a "
            "complete teardown (nothing left: no mount, loop device, namespace, veth or "
            "container). cloon's side is the README's pipeline "
            "([`cycle-cloon.sh`](scripts/bench-lib/cycle-cloon.sh), `cloon-spec --cgroups "
            "MODE`); the article's side is its commands in its order "
            "([`cycle-article.sh`](scripts/bench-lib/cycle-article.sh), changes below). Both "
            "are bash scripts run by hyperfine.\n")
        rows = []
        for mode, c in cyc["modes"].items():
            rows.append([f"cloon, cgroups {mode_label(r, mode)}", f1(c["median"]),
                         f"{f1(c['mean'])} ± {f1(c['stddev'])}", f1(c["min"]), f1(c["max"]),
                         c["runs"], f"**{f2(c['ratio'])}**"])
        a = cyc["article"]
        rows.append(["the article", f1(a["median"]), f"{f1(a['mean'])} ± {f1(a['stddev'])}",
                     f1(a["min"]), f1(a["max"]), a["runs"], "1"])
        add(table(["", "median (ms)", "mean ± σ (ms)", "min", "max", "runs",
                   "against the article"], rows))
        add("")

    # --- the bring-up ---
    if bu:
        add("## The bring-up alone\n")
        add("The image to a running container with `eth0`: cloon's pipeline (`cloon-overlay | "
            "cloon-netns | cloon-spec | cloon-run`) and the article's commands up to "
            "`crun start`, the same scripts with `up`. Timed by the driver (posix_spawn to "
            "wait4); each sample's teardown runs after it, untimed; the sides take turns "
            "sample by sample.\n")
        rows = []
        for mode, c in bu["modes"].items():
            rows.append([f"cloon, cgroups {mode_label(r, mode)}", f1(c["median"]),
                         f"{f1(c['mean'])} ± {f1(c['stddev'])}", f1(c["min"]), f1(c["max"]),
                         c["runs"], f"**{f2(c['ratio'])}**"])
        a = bu["article"]
        rows.append(["the article", f1(a["median"]), f"{f1(a['mean'])} ± {f1(a['stddev'])}",
                     f1(a["min"]), f1(a["max"]), a["runs"], "1"])
        add(table(["", "median (ms)", "mean ± σ (ms)", "min", "max", "runs",
                   "against the article"], rows))
        add("")

    # --- labs ---
    if lb:
        add("## Labs\n")
        add(f"`cloon-lab up` then `cloon-lab down` of a LAN of N busybox nodes: each node's "
            f"`eth0` is one end of a veth pair whose other end is a port of one Linux bridge, "
            f"with an address in 10.0.0.0/16, as cloonix's LANs and "
            f"[`labs/lan.clab.yml`](labs/lan.clab.yml) are; from the bench's image file "
            f"(nothing to build), cloon-lab's default `--jobs` ({lb['jobs_default']}, "
            f"twice the number of CPUs) and cgroups `{lb['mode']}` (its default). Against it, the "
            f"article's commands for N containers "
            f"([`article-lab.sh`](scripts/bench-lib/article-lab.sh)): its bring-up N times, "
            f"then its teardown N times, each container with its own loop device, mounts, "
            f"namespace and veth (no bridge, no address: less work than the lab's). " +
            ", ".join(f"N = {x['n']}: {runs_text(x.get('runs', 1))}" for x in lb["n"]) +
            " (the two sides taking turns).\n")
        base = lab_n.get(10)
        rows = []
        for x in lb["n"]:
            a = x["article"]
            rel = f2(x["per_container"] / base["per_container"]) if base else "-"
            rows.append([x["n"], f1(x["up"] / 1000), f1(x["down"] / 1000),
                         f1(x["total"] / 1000), f1(x["per_container"]), rel,
                         f1(a["up"] / 1000), f1(a["down"] / 1000), f1(a["total"] / 1000),
                         f1(a["per_container"]), f"**{f2(x['ratio'])}**"])
        add(table(["N", "up (s)", "down (s)", "total (s)", "per container (ms)", "vs N = 10",
                   "article up (s)", "article down (s)", "article total (s)",
                   "article per container (ms)", "cloon / article"], rows))
        add("\nCounted while all N run:\n")
        rows = []
        for x in lb["n"]:
            c, a = x["census"], x["article"]["census"]
            rows.append([x["n"], f"{c['loops']} / {a['loops']}",
                         f"{c['image_mounts']} / {a['image_mounts']}",
                         f"{c['overlays']} / {a['overlays']}", f"{c['netns']} / {a['netns']}",
                         f"{c['running']} / {a['running']}", mib(x["peak_kib"])])
        add(table(["N", "loop devices (cloon / article)", "image mounts", "overlay mounts",
                   "namespaces", "containers running", "cloon-lab's peak memory"], rows))
        add("\nOne loop device and one read-only mount of the image serve every container of "
            "a lab: the article attaches and mounts the image once per container (read-write: "
            "the bench gives it a copy of the image). cloon-lab's peak memory is GNU time's "
            "%M of `cloon-lab up` and `down`: the largest of it and the tools it runs.\n")
        jb = lb.get("jobs")
        if jb:
            add(f"Parallel bring-up: `cloon-lab up --jobs J` of the LAN of {jb['n']}, "
                f"{runs_text(jb['runs'][0].get('runs', 1))} each, the Js taking turns (each "
                f"`down` with the default jobs, untimed here):\n")
            fastest = min(jb["runs"], key=lambda x: x["up"])
            rows = [[f"{x['jobs']} (default)" if x["jobs"] == lb["jobs_default"] else x["jobs"],
                     f1(x["up"]), f2(x["speedup"]) if x["speedup"] else "-"]
                    for x in jb["runs"]]
            add(table(["J", "up (ms)", "speed-up against J = 1"], rows))
            add(f"\nThe fastest here: J = {fastest['jobs']} ({m['cores']} CPUs).\n")

    # --- start cost ---
    if start:
        add("## Start cost\n")
        add(f"Each tool's `--version` against `/bin/true`: `hyperfine -N --warmup 20 --runs "
            f"{start['runs']}`, median. What any step costs at least: loading and starting "
            f"the binary.\n")
        t = start["tools"]
        rows = [[f"`{k}`", f1(v["median"] * 1000), f"{f1(v['mean'] * 1000)} ± "
                 f"{f1(v['stddev'] * 1000)}", f2(v["ratio"]) if "ratio" in v else "1"]
                for k, v in t.items()]
        add(table(["", "median (µs)", "mean ± σ (µs)", "against /bin/true"], rows))
        add("")

    # --- the floor ---
    if fl.ok:
        add("## The floor: the runtime alone, the kernel alone\n")
        rt = fl.rt
        add(f"**The runtime.** crun on one bundle (cloon-spec's config.json, its "
            f"`cgroupsPath` changed), from the driver: `crun create` + `crun start`, `crun "
            f"exec ip link`, then SIGKILL sent from the driver (its end seen on a pidfd) + "
            f"`crun delete`; the median of {rt['runs']}, taken in turn with the bring-ups "
            f"above, so that the machine's load weighs on both alike.\n")
        rows = [[MANAGER_TEXT[k], f1(rt[k]["up"]), f1(rt[k]["exec"]), f1(rt[k]["down"])]
                for k in ("disabled", "default", "default-nested")]
        add(table(["cgroups", "create + start (ms)", "exec (ms)", "kill + delete (ms)"], rows))
        add(f"\nThe cgroups cost {f1(rt['default']['up'] - rt['disabled']['up'])} ms at "
            f"create + start and {f1(rt['default']['down'] - rt['disabled']['down'])} ms at "
            f"delete with crun's default manager.\n")
        kn = fl.kn
        add(f"**The kernel.** N network namespaces, each with a veth pair (one end `eth0` "
            f"inside, the other up outside), made by one `ip -batch`, then deleted by another: "
            f"the veths one by one (`link del` each, then `netns del` each) or at once (`link "
            f"del group G`, then `netns del` each); what `ip -batch` of an empty file takes "
            f"({f1(kn and r['floor']['kernel']['ip_batch_empty'])} ms) is taken off. And the "
            f"overlay's mounts for N containers of one image, by system calls from the driver: "
            f"a read-only autoclear loop device, the lower, N overlays, then their unmounts. "
            f"Bringing `lo` and `eth0` up inside and the bridge of a lab are left out. N = 1 "
            f"is measured in turn with the bring-ups (the median of {rt['runs']}); N = 10 and "
            f"50, the median of 3; more, one run.\n")
        rows = []
        for n, k in sorted(kn.items(), key=lambda x: int(x[0])):
            rows.append([n, f1(k["make"]), f1(k["del_one_by_one"]), f1(k["del_by_group"]),
                         f1(k["overlay_up"]), f1(k["overlay_down"])])
        add(table(["N", "make (ms)", "delete one by one (ms)", "delete by group (ms)",
                   "overlay mounts (ms)", "their unmounts (ms)"], rows))
        add("\n**The floors.** A bring-up: the overlay's mounts, one namespace and veth, "
            "create + start. A cycle: that, exec, kill + delete, the unmounts and the veth's "
            "deletion. A lab of N: the kernel's work for N (veths deleted by group) and N times "
            "the runtime's create + start and kill + delete, one after the other (cloon-lab "
            "runs several at once, so it can go under it).\n")
        rows = []
        for mode in (cyc or bu or {"modes": {}})["modes"]:
            b = fl.bringup(r, mode)
            c = fl.cycle(r, mode)
            cells = [f"bring-up, cgroups {mode_label(r, mode)}", f1(b)]
            if bu:
                cells += [f2(b / bu["article"]["median"]), f2(bu["modes"][mode]["median"] / b)]
            else:
                cells += ["-", "-"]
            rows.append(cells)
            cells = [f"cycle, cgroups {mode_label(r, mode)}", f1(c)]
            if cyc:
                cells += [f2(c / cyc["article"]["median"]), f2(cyc["modes"][mode]["median"] / c)]
            else:
                cells += ["-", "-"]
            rows.append(cells)
        for x in (lb or {}).get("n", []):
            f = fl.lab(r, x["n"], lab_mode)
            if f:
                rows.append([f"lab of {x['n']}, cgroups `{lab_mode}`", f1(f),
                             f2(f / x["article"]["total"]), f2(x["total"] / f)])
        add(table(["", "floor (ms)", "floor / article", "cloon / floor"], rows))
        add("")

    # --- each step ---
    if st:
        add("## Each step\n")
        add(f"cgroups {mode_label(r, st.get('mode', 'default'))}. Median of {st['cycles']} "
            "cycles. cloon's tools run one after the other, each reading the previous document "
            "from a file. The runtime's share is measured with cloon-run given a stand-in "
            "runtime ([`runtime-shim.rs`](scripts/bench-lib/runtime-shim.rs)) that times each "
            f"crun call; a step's time leaves out what the stand-in itself adds "
            f"({st['shim_overhead']:.2f} ms per call, measured apart), and a tool's own time is "
            "that time less the runtime's. *Start* is the same binary's `--version`. Peak "
            "memory is GNU time's %M (for cloon-run it includes crun's, as GNU time counts the "
            "children a process waits for; `cloon-run --dry-run`, without crun: "
            f"{mib(st.get('dry_run_peak_kib', 0))}).\n")
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

    # --- peak memory ---
    if peaks:
        add("## Peak memory\n")
        add("GNU time's %M, the largest of each tool's runs above (cloon-run's includes "
            "crun's; cloon-lab's, the tools it runs):\n")
        add(table(["tool", "peak memory"], [[f"`{t}`", mib(k)] for t, k in sorted(peaks.items())]))
        add("")

    # --- images ---
    img = r.get("images")
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
        "- for N containers at once (the labs), each gets its own names (`cloonix_1_I`, "
        "`vgt_1_I_0`) and its loop device from `losetup -fP --show`: `losetup -l | grep` "
        "would list all N; the teardown still finds each container's pid with `crun list`, "
        "as the article does;\n"
        "- paths are under the sandbox's /run and the containers have unique names, so that "
        "runs do not collide with anything else on the machine.\n")
    add("## Reproduce\n")
    secs = r.get("seconds", {})
    if secs:
        add(f"The measurements of this run took {f1(secs.get('total', 0) / 60)} minutes (" +
            ", ".join(f"{k} {f1(v)} s" for k, v in secs.items() if k != "total") +
            "), besides building the binaries.\n")
    add("```sh\nscripts/bench                       # this file\n"
        "scripts/bench --with-debootstrap    # and the debootstrap images (minutes)\n"
        "scripts/bench --quick --out /tmp/b.md   # what CI runs (labs of 10 and 50)\n```\n")
    text = "\n".join(md).rstrip() + "\n"
    with open(path, "w") as f:
        f.write(text)


def peak_memory(r):
    peaks = {}
    st = r.get("steps") or {}
    for s in st.get("cloon", []):
        peaks[s["tool"]] = max(peaks.get(s["tool"], 0), s["peak_kib"])
    if st.get("dry_run_peak_kib"):
        peaks["cloon-run --dry-run"] = st["dry_run_peak_kib"]
    for x in (r.get("labs") or {}).get("n", []):
        peaks["cloon-lab"] = max(peaks.get("cloon-lab", 0), x["peak_kib"])
    return peaks
