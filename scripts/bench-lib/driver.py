#!/usr/bin/env python3
"""The measurements of scripts/bench, run inside its sandbox (fresh mount and network namespaces
with their own /run): the full cycle of cloon against the article's commands (hyperfine), each
tool's own time and the runtime's share, scale (N containers of one image), image creation.
Writes the results as JSON; `report` turns them into the Markdown of BENCHMARKS.md.

Every process is started with posix_spawn and timed from there to its reaping by wait4. Peak
memory is GNU time's %M (`/usr/bin/time -f %M`).
"""

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

LIB = os.path.dirname(os.path.abspath(__file__))
TOOLS = ["cloon-img", "cloon-overlay", "cloon-netns", "cloon-spec", "cloon-run"]


class BenchError(Exception):
    pass


class Sample:
    """One process run: wall time (ns), CPU time (s, its own and its children's), status."""

    def __init__(self, wall, cpu, status):
        self.wall, self.cpu, self.status = wall, cpu, status


def run(argv, stdin=None, stdout=None, env=None, check=True):
    """Runs argv (searched in PATH) with stdin and stdout from/to files (default /dev/null);
    stderr is kept for the error message. Returns a Sample."""
    fin = open(stdin or os.devnull, "rb")
    fout = open(stdout, "wb") if stdout else open(os.devnull, "wb")
    err = tempfile.TemporaryFile()
    actions = [
        (os.POSIX_SPAWN_DUP2, fin.fileno(), 0),
        (os.POSIX_SPAWN_DUP2, fout.fileno(), 1),
        (os.POSIX_SPAWN_DUP2, err.fileno(), 2),
    ]
    try:
        t0 = time.perf_counter_ns()
        pid = os.posix_spawnp(argv[0], argv, env if env is not None else os.environ,
                              file_actions=actions)
        _, status, ru = os.wait4(pid, 0)
        t1 = time.perf_counter_ns()
    finally:
        fin.close()
        fout.close()
    code = os.waitstatus_to_exitcode(status)
    if check and code != 0:
        err.seek(0)
        raise BenchError(f"`{' '.join(argv)}` failed with status {code}: "
                         f"{err.read().decode(errors='replace').strip()}")
    err.close()
    return Sample(t1 - t0, ru.ru_utime + ru.ru_stime, code)


def peak_kib(argv, stdin=None, stdout=None):
    """The peak resident memory of argv in KiB, as GNU time's %M says it. (wait4's ru_maxrss
    from this Python process would count Python's own pages: posix_spawn uses vfork.)"""
    with tempfile.NamedTemporaryFile("r") as f:
        run(["/usr/bin/time", "-f", "%M", "-o", f.name] + argv, stdin=stdin, stdout=stdout)
        return int(f.read().split()[-1])


def sh(script, check=True):
    """Output of a shell command (not timed)."""
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True)
    if check and out.returncode != 0:
        raise BenchError(f"`{script}` failed: {out.stderr.strip()}")
    return out.stdout


def ms(ns):
    return ns / 1e6


def median(xs):
    return statistics.median(xs) if xs else 0.0


# --- the machine --------------------------------------------------------------------------------

def machine():
    cpu = ""
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = 0
    for line in open("/proc/meminfo"):
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    crun = sh("crun --version | head -n 1", check=False).strip()
    hyperfine = sh("hyperfine --version", check=False).strip()
    os_name = ""
    if os.path.exists("/etc/os-release"):
        for line in open("/etc/os-release"):
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip().strip('"')
    return {
        "cpu": cpu or platform.processor(),
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "os": os_name,
        "crun": crun,
        "hyperfine": hyperfine,
        "date": time.strftime("%Y-%m-%d"),
        "load": [round(x, 2) for x in os.getloadavg()],
    }


# --- the full cycle, side by side ---------------------------------------------------------------

def cycle(args, img, name):
    """hyperfine: cloon's pipeline and the article's commands, each a full cycle."""
    work = "/run/cloon-bench"
    os.makedirs(f"{work}/cloon", exist_ok=True)
    os.makedirs(f"{work}/article", exist_ok=True)
    out = f"{work}/cycle.json"
    cmds = [
        f"bash {LIB}/cycle-cloon.sh {img} {name} {work}/cloon",
        f"bash {LIB}/cycle-article.sh {img} {name} {work}/article",
    ]
    subprocess.run(["hyperfine", "-N", "--style", "basic", "--warmup", str(args.warmup),
                    "--runs", str(args.runs), "--export-json", out,
                    "-n", "cloon", cmds[0], "-n", "article", cmds[1]],
                   check=True, stdout=sys.stderr)
    results = json.load(open(out))["results"]
    got = {}
    for r in results:
        got[r["command"]] = {k: r[k] * 1000 for k in ("mean", "stddev", "median", "min", "max")}
        got[r["command"]]["runs"] = len(r["times"])
    got["ratio"] = got["cloon"]["median"] / got["article"]["median"]
    return got


# --- each step ----------------------------------------------------------------------------------

RUNTIME_VERBS = ("create", "start", "state", "exec", "kill", "delete", "list")


def shim_calls(log):
    """The runtime calls the shim logged (and the log emptied): [(verb, ns)]."""
    calls = []
    if os.path.exists(log):
        for line in open(log):
            words = line.split()
            verb = next((w for w in words[1:] if w in RUNTIME_VERBS), "?")
            calls.append((verb, int(words[0])))
        os.remove(log)
    return calls


CLOON_STEPS = [
    # (step, tool, argv after the tool, stdin document, stdout document)
    ("overlay", "cloon-overlay", ["--image", "{img}", "--name", "{name}"], None, "d1"),
    ("netns", "cloon-netns", ["--netns", "cloonix_1_1", "--veth", "vgt_1_1_0:eth0"], "d1", "d2"),
    ("spec", "cloon-spec", [], "d2", "d3"),
    ("run", "cloon-run", ["{runtime}"], "d3", "d4"),
    ("exec", "cloon-run", ["exec", "{name}", "--", "ip", "link"], None, None),
    ("run down", "cloon-run", ["down"], "d4", "e1"),
    ("spec down", "cloon-spec", ["down"], "e1", "e2"),
    ("netns down", "cloon-netns", ["down"], "e2", "e3"),
    ("overlay down", "cloon-overlay", ["down"], "e3", "e4"),
]


def cloon_cycle_steps(img, name, work, shim=None, log=None):
    """One cycle of cloon's tools, one after the other, documents in files. Returns
    {step: (Sample, [(runtime verb, ns)] the shim logged inside it)}."""
    got = {}
    for step, tool, argv, doc_in, doc_out in CLOON_STEPS:
        words = []
        for w in argv:
            if w == "{runtime}":
                words += ["--runtime", shim] if shim else []
            else:
                words.append(w.replace("{img}", img).replace("{name}", name))
        s = run([tool] + words,
                stdin=f"{work}/{doc_in}.json" if doc_in else None,
                stdout=f"{work}/{doc_out}.json" if doc_out else None)
        got[step] = (s, shim_calls(log) if log else [])
    return got


ARTICLE_STEPS = ["overlay", "netns", "spec", "crun-create", "crun-start", "crun-exec", "kill",
                 "crun-delete", "overlay-down", "veth-del", "netns-del"]
ARTICLE_RUNTIME = {"crun-create", "crun-start", "crun-exec", "kill", "crun-delete"}


def article_cycle_steps(img, name, work):
    marks = f"{work}/marks"
    if os.path.exists(marks):
        os.remove(marks)
    env = dict(os.environ, BENCH_STEPS=marks)
    total = run(["bash", f"{LIB}/cycle-article.sh", img, name, work], env=env)
    times = [line.split() for line in open(marks)]
    got = {}
    for (_, t0), (step, t1) in zip(times, times[1:]):
        got[step] = int((float(t1) - float(t0)) * 1e9)
    return total, got


def shim_overhead(shim, log):
    """What the shim adds to each runtime call, beyond the time it logs: starting and ending one
    more small process. The median of 30 `shim --version` calls."""
    extra = []
    os.environ["CLOON_BENCH_RUNTIME_LOG"] = log
    try:
        for _ in range(30):
            s = run([shim, "--version"])
            extra.append(s.wall - sum(ns for _, ns in shim_calls(log)))
    finally:
        del os.environ["CLOON_BENCH_RUNTIME_LOG"]
    return median(extra)


def steps(args, img, name, shim):
    work = "/run/cloon-bench/steps"
    os.makedirs(work, exist_ok=True)
    log = f"{work}/runtime.log"
    overhead = shim_overhead(shim, log)
    wall = {s[0]: [] for s in CLOON_STEPS}
    runtime = {s[0]: [] for s in CLOON_STEPS}
    own = {s[0]: [] for s in CLOON_STEPS}
    verbs = {}
    os.environ["CLOON_BENCH_RUNTIME_LOG"] = log
    try:
        for i in range(args.cycles + 1):
            # cloon-run is given the shim as its runtime: each step's time (less what the shim
            # adds), the runtime's share inside it, and the difference, the tool's own time, all
            # from the same run.
            b = cloon_cycle_steps(img, name, work, shim=shim, log=log)
            if i == 0:
                continue  # warm-up
            for step, (s, calls) in b.items():
                rt = sum(ns for _, ns in calls)
                t = max(s.wall - len(calls) * overhead, 0)
                wall[step].append(t)
                runtime[step].append(rt)
                own[step].append(max(t - rt, 0))
                verbs[step] = [v for v, _ in calls]
    finally:
        del os.environ["CLOON_BENCH_RUNTIME_LOG"]

    # Peak memory: one more cycle, each tool under GNU time.
    peak = {}
    for step, tool, argv, doc_in, doc_out in CLOON_STEPS:
        words = [w.replace("{img}", img).replace("{name}", name) for w in argv if w != "{runtime}"]
        peak[step] = peak_kib([tool] + words,
                              stdin=f"{work}/{doc_in}.json" if doc_in else None,
                              stdout=f"{work}/{doc_out}.json" if doc_out else None)
    # Each binary's start and exit alone (`--version`): the floor of any step.
    floor = {}
    for tool in TOOLS:
        floor[tool] = median([run([tool, "--version"]).wall for _ in range(30)])
    floor["/bin/true"] = median([run(["/bin/true"]).wall for _ in range(30)])
    floor["crun"] = median([run(["crun", "--version"]).wall for _ in range(30)])

    art = {s: [] for s in ARTICLE_STEPS}
    art_total = []
    awork = "/run/cloon-bench/steps-article"
    os.makedirs(awork, exist_ok=True)
    for i in range(args.cycles + 1):
        total, got = article_cycle_steps(img, name, awork)
        if i == 0:
            continue
        art_total.append(total.wall)
        for step, ns in got.items():
            art[step].append(ns)

    cloon = []
    for step, tool, *_ in CLOON_STEPS:
        cloon.append({"step": step, "tool": tool, "wall": ms(median(wall[step])),
                      "runtime": ms(median(runtime[step])), "own": ms(median(own[step])),
                      "runtime_calls": verbs.get(step, []), "peak_kib": peak[step],
                      "floor": ms(floor[tool])})
    article = [{"step": s, "wall": ms(median(art[s])), "runtime": s in ARTICLE_RUNTIME}
               for s in ARTICLE_STEPS]
    return {
        "cycles": args.cycles,
        "shim_overhead": ms(overhead),
        "cloon": cloon,
        "cloon_total": sum(r["wall"] for r in cloon),
        "cloon_runtime": sum(r["runtime"] for r in cloon),
        "cloon_own": sum(r["own"] for r in cloon),
        "cloon_floor": sum(r["floor"] for r in cloon),
        "floor": {k: ms(v) for k, v in floor.items()},
        "article": article,
        "article_total": ms(median(art_total)),
        "article_runtime": sum(r["wall"] for r in article if r["runtime"]),
    }


# --- scale --------------------------------------------------------------------------------------

def scale(args, img, prefix):
    results = []
    for n in args.scale:
        work = f"/run/cloon-bench/scale-{n}"
        os.makedirs(work, exist_ok=True)
        names = [f"{prefix}s{i}" for i in range(n)]
        peak = {}
        per_tool = {}

        def timed(tool, argv, doc_in, doc_out):
            s = run([tool] + argv, stdin=doc_in, stdout=doc_out)
            per_tool[tool] = per_tool.get(tool, 0) + s.wall
            return s.wall

        up_ns = 0
        for i, name in enumerate(names):
            d = f"{work}/{name}"
            up_ns += timed("cloon-overlay", ["--image", img, "--name", name], None, f"{d}.1")
            up_ns += timed("cloon-netns", ["--netns", f"bench_{i}", "--veth", f"vbh{i}:eth0"],
                           f"{d}.1", f"{d}.2")
            up_ns += timed("cloon-spec", [], f"{d}.2", f"{d}.3")
            up_ns += timed("cloon-run", [], f"{d}.3", f"{d}.4")
        loops = len(sh(f"losetup -n -j {img}").splitlines())
        mounts = sh("findmnt -rn -o TARGET,FSTYPE")
        lower_mounts = sum(1 for m in mounts.splitlines() if "/.lowers/" in m.split()[0])
        overlays = sum(1 for m in mounts.splitlines() if m.endswith(" overlay"))
        netns_mounts = sum(1 for m in mounts.splitlines() if m.startswith("/run/netns/"))
        running = len(sh("crun list -q").split())
        # Peak memory at full occupancy: one more container up and down, each tool under GNU
        # time (not counted in the times).
        probe, d = f"{prefix}probe", f"{work}/probe"
        for tool, argv, doc_in, doc_out in [
            ("cloon-overlay", ["--image", img, "--name", probe], None, f"{d}.1"),
            ("cloon-netns", ["--netns", "bench_probe", "--veth", "vbhprobe:eth0"],
             f"{d}.1", f"{d}.2"),
            ("cloon-spec", [], f"{d}.2", f"{d}.3"),
            ("cloon-run", [], f"{d}.3", f"{d}.4"),
            ("cloon-run", ["down"], f"{d}.4", f"{d}.5"),
            ("cloon-spec", ["down"], f"{d}.5", f"{d}.6"),
            ("cloon-netns", ["down"], f"{d}.6", f"{d}.7"),
            ("cloon-overlay", ["down"], f"{d}.7", f"{d}.8"),
        ]:
            peak[tool] = max(peak.get(tool, 0), peak_kib([tool] + argv, doc_in, doc_out))
        # cloon-run's figure counts crun's (GNU time adds the children a process waits for):
        # its own, without a runtime call, is that of a dry run.
        peak["cloon-run --dry-run"] = peak_kib(["cloon-run", "--dry-run"], f"{d}.3", None)
        down_ns = 0
        for name in reversed(names):
            d = f"{work}/{name}"
            down_ns += timed("cloon-run", ["down"], f"{d}.4", f"{d}.5")
            down_ns += timed("cloon-spec", ["down"], f"{d}.5", f"{d}.6")
            down_ns += timed("cloon-netns", ["down"], f"{d}.6", f"{d}.7")
            down_ns += timed("cloon-overlay", ["down"], f"{d}.7", f"{d}.8")
        shutil.rmtree(work)
        left = leftovers()
        if left:
            raise BenchError(f"scale {n}: left behind: {left}")
        results.append({
            "n": n, "up": ms(up_ns), "down": ms(down_ns), "per_container": ms(up_ns + down_ns) / n,
            "loops": loops, "lower_mounts": lower_mounts, "overlays": overlays,
            "netns_mounts": netns_mounts, "running": running, "peak_kib": peak,
            "per_tool": {t: ms(v) / n for t, v in per_tool.items()},
        })
        print(f"bench: scale {n}: {ms(up_ns + down_ns) / n:.1f} ms per container", file=sys.stderr)
    return results


def leftovers():
    left = []
    if sh("losetup -n -l -O NAME,BACK-FILE | grep cloon-bench; true").strip():
        left.append("loop devices")
    mounts = sh("findmnt -rn -o TARGET,FSTYPE")
    if any(" overlay" in m or "/cloon" in m or m.startswith("/run/netns/")
           for m in mounts.splitlines()):
        left.append("mounts")
    if sh("crun list -q").strip():
        left.append("containers")
    if sh("ip -o link | grep -v ': lo:'; true").strip():
        left.append("links")
    # The state directory itself, and the marker that makes it one, may stay.
    if os.path.isdir("/run/cloon") and [f for f in os.listdir("/run/cloon") if f != ".cloon-state"]:
        left.append("state records")
    return left


# --- a lab --------------------------------------------------------------------------------------

def lab(args, img, prefix):
    """cloon-lab up and down of a chain of N busybox nodes (each linked to the next), from the
    bench's image file (no image to build): the time a lab user waits."""
    n = args.lab
    work = "/run/cloon-bench/lab"
    os.makedirs(work, exist_ok=True)
    name = f"{prefix}lab"
    topo = f"{work}/chain.clab.yml"
    nodes = "\n".join(f"    n{i}: {{}}" for i in range(n))
    links = "\n".join(f'    - endpoints: ["n{i}:eth1", "n{i + 1}:eth0"]' for i in range(n - 1))
    with open(topo, "w") as f:
        f.write(f"name: {name}\ntopology:\n  defaults:\n    kind: linux\n    image: {img}\n"
                f"  nodes:\n{nodes}\n  links:\n{links}\n")
    up = run(["cloon-lab", "up", "--cache-dir", f"{work}/cache", topo])
    again = run(["cloon-lab", "up", "--cache-dir", f"{work}/cache", topo])
    running = len(sh("crun list -q").split())
    down = run(["cloon-lab", "down", "--cache-dir", f"{work}/cache", topo])
    shutil.rmtree(work)
    if running < n:
        raise BenchError(f"lab: {running} containers running, not {n}")
    left = leftovers()
    if left:
        raise BenchError(f"lab: left behind: {left}")
    result = {"n": n, "up": ms(up.wall), "again": ms(again.wall), "down": ms(down.wall),
              "per_node": ms(up.wall + down.wall) / n, "jobs": os.cpu_count()}
    print(f"bench: a lab of {n}: up {result['up']:.0f} ms, down {result['down']:.0f} ms",
          file=sys.stderr)
    return result


# --- images -------------------------------------------------------------------------------------

def images(args, work):
    """hyperfine: cloon-img create --busybox against the article's recipe with busybox."""
    out = f"{work}/images.json"
    img = f"{work}/img-cloon.img"
    art = f"{work}/img-article.img"
    size = os.path.getsize(args.image)
    cmds = [
        ("cloon-img --busybox", f"cloon-img create --busybox --force {img}"),
        ("article, 1 GB (dd bs=100M count=10)",
         f"bash {LIB}/image-article.sh busybox {art} 1000"),
        (f"article, {size // 2**20} MiB as cloon-img",
         f"bash {LIB}/image-article.sh busybox {art} {size // 2**20}"),
    ]
    argv = ["hyperfine", "-N", "--style", "basic", "--warmup", "1",
            "--runs", str(args.image_runs), "--export-json", out,
            "--prepare", f"rm -f {img} {art}"]
    for label, cmd in cmds:
        argv += ["-n", label, cmd]
    subprocess.run(argv, check=True, stdout=sys.stderr)
    got = []
    for r in json.load(open(out))["results"]:
        got.append({"what": r["command"], "median": r["median"] * 1000,
                    "runs": len(r["times"])})
    for f in (img, art, out):
        if os.path.exists(f):
            os.remove(f)
    return {"busybox": got, "bytes": size}


def debootstrap(args, work):
    """Once each (minutes, the network): cloon-img --debootstrap and the article's recipe."""
    got = []
    img = f"{work}/deb-cloon.img"
    art = f"{work}/deb-article.img"
    for label, argv in [
        ("cloon-img --debootstrap bookworm",
         ["cloon-img", "create", "--debootstrap", "bookworm", "--mirror", args.mirror,
          "--force", img]),
        ("article (dd 1 GB, mkfs, losetup, mount, debootstrap)",
         ["bash", f"{LIB}/image-article.sh", "debootstrap", art, "1000", args.mirror]),
    ]:
        s = run(argv)
        got.append({"what": label, "seconds": s.wall / 1e9})
        print(f"bench: {label}: {s.wall / 1e9:.1f} s", file=sys.stderr)
    for f in (img, art):
        if os.path.exists(f):
            os.remove(f)
    return got


# --- main ---------------------------------------------------------------------------------------

def main():
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["sandbox", "debootstrap", "report"])
    p.add_argument("--image", help="the busybox image")
    p.add_argument("--work", default="/var/tmp/cloon-bench")
    p.add_argument("--results", required=True, help="the JSON results file (read and extended)")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--mirror", default="http://deb.debian.org/debian")
    p.add_argument("--out", help="the Markdown report (report)")
    p.add_argument("--only", default="cycle,steps,scale,lab,images",
                   help="the measurements to make in the sandbox, comma-separated")
    p.add_argument("--scale", help="the numbers of containers, comma-separated")
    p.add_argument("--lab", type=int, help="the number of nodes of the lab's chain")
    args = p.parse_args()
    args.runs, args.warmup = (3, 1) if args.quick else (20, 3)
    args.cycles = 3 if args.quick else 20
    args.image_runs = 2 if args.quick else 5
    if args.scale:
        args.scale = [int(n) for n in args.scale.split(",")]
    else:
        args.scale = [10] if args.quick else [10, 50, 200]
    if not args.lab:
        args.lab = 10 if args.quick else 50
    only = set(args.only.split(","))
    results = json.load(open(args.results)) if os.path.exists(args.results) else {}
    if args.what == "debootstrap":
        results["debootstrap"] = debootstrap(args, args.work)
    elif args.what == "sandbox":
        name = f"cloonbench{os.getpid()}"
        shim = f"{args.work}/shim/crun"
        results["quick"] = args.quick
        results["machine"] = machine()
        if "cycle" in only:
            print("bench: the full cycle, cloon against the article (hyperfine)", file=sys.stderr)
            results["cycle"] = cycle(args, args.image, name)
        if "steps" in only:
            print("bench: each step, the runtime's share apart", file=sys.stderr)
            results["steps"] = steps(args, args.image, name, shim)
        if "scale" in only:
            print(f"bench: scale, N = {args.scale}", file=sys.stderr)
            results["scale"] = scale(args, args.image, name)
        if "lab" in only:
            print(f"bench: a lab of {args.lab} nodes in a chain (cloon-lab)", file=sys.stderr)
            results["lab"] = lab(args, args.image, name)
        if "images" in only:
            print("bench: image creation (hyperfine)", file=sys.stderr)
            results["images"] = images(args, args.work)
        results["machine"]["load_end"] = [round(x, 2) for x in os.getloadavg()]
        left = leftovers()
        if left:
            raise BenchError(f"left behind: {left}")
    else:
        import report
        report.write(results, args.out)
        return
    with open(args.results, "w") as f:
        json.dump(results, f, indent=1)


def clean_sandbox():
    """Whatever happened: the sandbox's containers are processes that outlive it, and hold its
    mounts (and so the loop devices): delete them. The rest goes with the sandbox."""
    for c in sh("crun list -q 2>/dev/null; true").split():
        run(["crun", "delete", "--force", c], check=False)


if __name__ == "__main__":
    try:
        main()
    except (BenchError, subprocess.CalledProcessError) as e:
        print(f"bench: {e}", file=sys.stderr)
        sys.exit(1)
    finally:
        if sys.argv[1:2] == ["sandbox"]:
            clean_sandbox()
