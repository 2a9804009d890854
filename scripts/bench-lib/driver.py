#!/usr/bin/env python3
"""The measurements of scripts/bench, run inside its sandbox (fresh mount and network namespaces
with their own /run):

- cycle: the full cycle of cloon (for each of cloon-spec's --cgroups modes) against the article's
  commands (hyperfine);
- bringup: the bring-up alone (image to a running container with eth0), teardown untimed;
- steps: each tool's own time and the runtime's share;
- start: each tool's --version against /bin/true (hyperfine -N);
- floor: the runtime alone (crun create, start, exec, kill, delete; cgroup manager disabled and
  default), the kernel alone (N namespaces with a veth each, deleted one by one or by group, and
  the overlay's mounts);
- labs: cloon-lab up and down of a LAN of N nodes against the article's commands N times, and
  cloon-lab up --jobs J;
- images: image creation.

Writes the results as JSON; `report` turns them into the Markdown of BENCHMARKS.md. Every
process is started with posix_spawn and timed from there to its reaping by wait4. Peak memory
is GNU time's %M (`/usr/bin/time -f %M`).
"""

import argparse
import ctypes
import fcntl
import glob
import json
import os
import platform
import re
import select
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time

LIB = os.path.dirname(os.path.abspath(__file__))
TOOLS = ["cloon-img", "cloon-overlay", "cloon-netns", "cloon-spec", "cloon-run", "cloon-lab"]
CGROUP_MODES = ["none", "cloon", "runtime"]
BASE = "/run/cloon-bench"
SETTLE = 0.2  # s to let the kernel finish deleting namespaces before the next floor measurement


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
                         f"{err.read().decode(errors='replace').strip()[-2000:]}")
    err.close()
    return Sample(t1 - t0, ru.ru_utime + ru.ru_stime, code)


def peak_kib(argv, stdin=None, stdout=None):
    """The peak resident memory of argv in KiB, as GNU time's %M says it. (wait4's ru_maxrss
    from this Python process would count Python's own pages: posix_spawn uses vfork.)"""
    return run_peak(argv, stdin, stdout)[1]


def run_peak(argv, stdin=None, stdout=None):
    """Runs argv under GNU time: (Sample, peak KiB of the largest of it and its children)."""
    with tempfile.NamedTemporaryFile("r") as f:
        s = run(["/usr/bin/time", "-f", "%M", "-o", f.name] + argv, stdin=stdin, stdout=stdout)
        return s, int(f.read().split()[-1])


def sh(script, check=True):
    """Output of a shell command (not timed)."""
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True)
    if check and out.returncode != 0:
        raise BenchError(f"`{script}` failed: {out.stderr.strip()}")
    return out.stdout


def say(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def ms(ns):
    return ns / 1e6


def median(xs):
    return statistics.median(xs) if xs else 0.0


def stats(ns):
    """Summary of wall times in ns, in ms."""
    xs = [ms(x) for x in ns]
    return {"median": median(xs), "mean": statistics.mean(xs),
            "stddev": statistics.stdev(xs) if len(xs) > 1 else 0.0,
            "min": min(xs), "max": max(xs), "runs": len(xs)}


# --- the machine, and what this build can do ----------------------------------------------------

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
    cgroups = "v2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "v1"
    return {
        "cpu": cpu or platform.processor(),
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "os": os_name,
        "crun": crun,
        "hyperfine": hyperfine,
        "cgroups": cgroups,
        "date": time.strftime("%Y-%m-%d"),
        "load": [round(x, 2) for x in os.getloadavg()],
    }


def option_default(help_text, option):
    """(present, default) of `option` in a clap --help text."""
    i = help_text.find(option + " ")
    if i < 0:
        return False, None
    nxt = re.search(r"\n\s*--?[A-Za-z]", help_text[i + 1:])  # the next option, not "- value"
    segment = help_text[i:i + 1 + nxt.start()] if nxt else help_text[i:]
    m = re.search(r"\[default: ([^\]]+)\]", segment)
    return True, (m.group(1).strip() if m else None)


def cgroup_modes():
    """cloon-spec's --cgroups modes and its default, as its --help says them. Without the flag
    (an older build), the one behaviour it has: a cgroup parent per state directory."""
    spec_has, spec_default = option_default(sh("cloon-spec --help"), "--cgroups")
    lab_has, lab_default = option_default(sh("cloon-lab up --help"), "--cgroups")
    if not spec_has:
        return {"flag": False, "modes": ["default"], "default": "default",
                "default_is": "cloon", "lab_flag": lab_has, "lab_default": None}
    default = spec_default if spec_default in CGROUP_MODES else None
    if default is None:
        raise BenchError("cloon-spec --help lists --cgroups without a [default: MODE] among "
                         f"{', '.join(CGROUP_MODES)}: cannot tell its default")
    # cloon-lab's help may say "[default: cloon-spec's, none]": its last word that is a mode.
    words = re.findall(r"\w+", lab_default or "")
    lab_default = next((w for w in reversed(words) if w in CGROUP_MODES), default)
    return {"flag": True, "modes": list(CGROUP_MODES), "default": default, "default_is": default,
            "lab_flag": lab_has, "lab_default": lab_default}


# --- the full cycle, side by side ---------------------------------------------------------------

def cycle(args, img, name, modes):
    """hyperfine: cloon's pipeline (each cgroup mode) and the article's commands, each a full
    cycle."""
    work = f"{BASE}/cycle"
    os.makedirs(f"{work}/cloon", exist_ok=True)
    os.makedirs(f"{work}/article", exist_ok=True)
    out = f"{work}/cycle.json"
    argv = ["hyperfine", "-N", "--style", "basic", "--warmup", str(args.warmup),
            "--runs", str(args.runs), "--export-json", out]
    for m in modes["modes"]:
        argv += ["-n", f"cloon {m}",
                 f"bash {LIB}/cycle-cloon.sh {img} {name} {work}/cloon {m} all"]
    argv += ["-n", "article", f"bash {LIB}/cycle-article.sh {img} {name} {work}/article all"]
    subprocess.run(argv, check=True, stdout=sys.stderr)
    got = {}
    for r in json.load(open(out))["results"]:
        got[r["command"]] = {k: r[k] * 1000 for k in ("mean", "stddev", "median", "min", "max")}
        got[r["command"]]["runs"] = len(r["times"])
    art = got.pop("article")
    result = {"article": art, "modes": {}}
    for m in modes["modes"]:
        c = got[f"cloon {m}"]
        c["ratio"] = c["median"] / art["median"]
        result["modes"][m] = c
    shutil.rmtree(work)
    return result


# --- the bring-up alone -------------------------------------------------------------------------

def bringup(args, img, name, modes):
    """Image to a running container with eth0: cloon's pipeline (each mode) and the article's
    commands up to `crun start`, timed here; each sample's teardown runs untimed after it. The
    floor takes its turn too: the runtime alone (RuntimeFloor) and the kernel alone for one
    container (kernel_one). The sides take turns, sample by sample, so that a slow moment of
    the machine hits them all."""
    work = f"{BASE}/bringup"
    sides = []
    for m in modes["modes"]:
        d = f"{work}/cloon"
        sides.append((m, ["bash", f"{LIB}/cycle-cloon.sh", img, name, d, m, "up"],
                      ["bash", f"{LIB}/cycle-cloon.sh", img, name, d, m, "down"]))
    d = f"{work}/article"
    sides.append(("article", ["bash", f"{LIB}/cycle-article.sh", img, name, d, "up"],
                  ["bash", f"{LIB}/cycle-article.sh", img, name, d, "down"]))
    os.makedirs(f"{work}/cloon", exist_ok=True)
    os.makedirs(f"{work}/article", exist_ok=True)
    samples = {label: [] for label, _, _ in sides}
    runtime = {key: {"up": [], "exec": [], "down": []} for key, _, _ in MANAGERS}
    kernel = {}
    empty = median([ip_batch([]) for _ in range(10)])
    floor = RuntimeFloor(args, img, name)
    try:
        for i in range(args.warmup + args.bringup_runs):
            for label, up, down in sides:
                try:
                    s = run(up)
                except BaseException:
                    run(down, check=False)
                    raise
                run(down)
                if i >= args.warmup:
                    samples[label].append(s.wall)
            rt = floor.sample()
            k = kernel_one(img, empty)
            if i >= args.warmup:
                for key, (up, ex, down) in rt.items():
                    runtime[key]["up"].append(up)
                    runtime[key]["exec"].append(ex)
                    runtime[key]["down"].append(down)
                for key, ns in k.items():
                    kernel.setdefault(key, []).append(ns)
    finally:
        floor.close()
    art = stats(samples["article"])
    result = {"article": art, "modes": {}}
    for m in modes["modes"]:
        c = stats(samples[m])
        c["ratio"] = c["median"] / art["median"]
        result["modes"][m] = c
        say(f"bring-up {m}: {c['median']:.1f} ms, {c['ratio']:.2f} of the article's "
            f"{art['median']:.1f} ms")
    rt = {"runs": args.bringup_runs}
    for key, _, _ in MANAGERS:
        rt[key] = {k: ms(median(v)) for k, v in runtime[key].items()}
        say(f"runtime floor, manager {key}: create+start {rt[key]['up']:.1f} ms, exec "
            f"{rt[key]['exec']:.1f} ms, kill+delete {rt[key]['down']:.1f} ms")
    k1 = {k: ms(median(v)) for k, v in kernel.items()}
    say(f"kernel floor, N = 1: make {k1['make']:.1f} ms, delete {k1['del_one_by_one']:.1f} ms; "
        f"overlay {k1['overlay_up']:.1f} + {k1['overlay_down']:.1f} ms")
    result["floor"] = {"runtime": rt, "kernel_one": k1, "ip_batch_empty": ms(empty)}
    shutil.rmtree(work)
    check_left("bring-up")
    return result


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
    total = run(["bash", f"{LIB}/cycle-article.sh", img, name, work, "all"], env=env)
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


def steps(args, img, name, shim, modes):
    work = f"{BASE}/steps"
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
    # cloon-run's figure counts crun's (GNU time adds the children a process waits for): its
    # own, without a runtime call, is that of a dry run.
    run(["cloon-overlay", "--image", img, "--name", name], stdout=f"{work}/p1.json")
    run(["cloon-netns", "--netns", "cloonix_1_1", "--veth", "vgt_1_1_0:eth0"],
        stdin=f"{work}/p1.json", stdout=f"{work}/p2.json")
    run(["cloon-spec"], stdin=f"{work}/p2.json", stdout=f"{work}/p3.json")
    dry_run_peak = peak_kib(["cloon-run", "--dry-run"], f"{work}/p3.json", None)
    run(["cloon-spec", "down"], stdin=f"{work}/p3.json", stdout=f"{work}/p4.json")
    run(["cloon-netns", "down"], stdin=f"{work}/p4.json", stdout=f"{work}/p5.json")
    run(["cloon-overlay", "down"], stdin=f"{work}/p5.json", stdout=f"{work}/p6.json")
    # Each binary's start and exit alone (`--version`): the floor of any step.
    floor = {}
    for tool in TOOLS:
        floor[tool] = median([run([tool, "--version"]).wall for _ in range(30)])
    floor["/bin/true"] = median([run(["/bin/true"]).wall for _ in range(30)])
    floor["crun"] = median([run(["crun", "--version"]).wall for _ in range(30)])

    art = {s: [] for s in ARTICLE_STEPS}
    art_total = []
    awork = f"{BASE}/steps-article"
    os.makedirs(awork, exist_ok=True)
    for i in range(args.cycles + 1):
        total, got = article_cycle_steps(img, name, awork)
        if i == 0:
            continue
        art_total.append(total.wall)
        for step, ns in got.items():
            if step in art:
                art[step].append(ns)
    shutil.rmtree(work)
    shutil.rmtree(awork)
    check_left("steps")

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
        "mode": modes["default"],
        "shim_overhead": ms(overhead),
        "cloon": cloon,
        "cloon_total": sum(r["wall"] for r in cloon),
        "cloon_runtime": sum(r["runtime"] for r in cloon),
        "cloon_own": sum(r["own"] for r in cloon),
        "cloon_floor": sum(r["floor"] for r in cloon),
        "dry_run_peak_kib": dry_run_peak,
        "floor": {k: ms(v) for k, v in floor.items()},
        "article": article,
        "article_total": ms(median(art_total)),
        "article_runtime": sum(r["wall"] for r in article if r["runtime"]),
    }


# --- start cost ---------------------------------------------------------------------------------

def start_cost(args):
    """hyperfine -N: each tool's --version against /bin/true."""
    out = f"{BASE}/start.json"
    os.makedirs(BASE, exist_ok=True)
    argv = ["hyperfine", "-N", "--style", "basic", "--warmup", "20",
            "--runs", str(args.start_runs), "--export-json", out, "-n", "/bin/true", "/bin/true"]
    for tool in TOOLS:
        argv += ["-n", tool, f"{shutil.which(tool)} --version"]
    subprocess.run(argv, check=True, stdout=sys.stderr)
    got = {}
    for r in json.load(open(out))["results"]:
        got[r["command"]] = {"median": r["median"] * 1000, "mean": r["mean"] * 1000,
                             "stddev": r["stddev"] * 1000, "runs": len(r["times"])}
    os.remove(out)
    base = got["/bin/true"]["median"]
    for tool in TOOLS:
        got[tool]["ratio"] = got[tool]["median"] / base
    return {"runs": args.start_runs, "tools": got}


# --- the floor: the runtime alone, the kernel alone ---------------------------------------------

MANAGERS = [
    # (key, crun's global options, cgroupsPath: None for none, "NAME" for /NAME-like defaults)
    ("disabled", ["--cgroup-manager=disabled"], None),
    ("default", [], None),
    ("default-nested", [], "/cloon/{parent}/{name}"),
]
# The runtime's cgroup manager each cloon-spec mode amounts to.
MODE_MANAGER = {"none": "disabled", "runtime": "default", "cloon": "default-nested"}


def wait_exit(pid, timeout=10):
    """Until the process pid has ended (a zombie counts), on a pidfd."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        p = select.poll()
        p.register(fd, select.POLLIN)
        if not p.poll(timeout * 1000):
            raise BenchError(f"process {pid} did not end within {timeout} s of SIGKILL")
    finally:
        os.close(fd)


class RuntimeFloor:
    """crun alone on one bundle (cloon-spec's config.json, its cgroupsPath changed): create +
    start, exec, kill (SIGKILL from here, its end seen on a pidfd) + delete, with the cgroup
    manager disabled, with the default manager (crun's /NAME), and with the default manager
    and a nested path /cloon/PARENT/NAME (as cloon-spec --cgroups cloon writes). The bundle's
    root filesystem is made by cloon's tools from a copy of the image, so that the image's own
    lower is not kept mounted for the bring-ups that take turns with these samples."""

    def __init__(self, args, img, prefix):
        self.work = work = f"{BASE}/floor-runtime"
        os.makedirs(work, exist_ok=True)
        self.img = f"{args.work}/floor.img"
        shutil.copyfile(img, self.img)
        base = f"{prefix}fl"
        self.parent = f"bench-{os.getpid()}"
        self.names = {"disabled": f"{base}x", "default": f"{base}r", "default-nested": f"{base}n"}
        self.bundles = {}
        try:
            run(["cloon-overlay", "--image", self.img, "--name", base], stdout=f"{work}/d1.json")
            run(["cloon-netns", "--netns", "floor_rt", "--veth", "vflrt:eth0"],
                stdin=f"{work}/d1.json", stdout=f"{work}/d2.json")
            run(["cloon-spec"], stdin=f"{work}/d2.json", stdout=f"{work}/d3.json")
            config = json.load(open(json.load(open(f"{work}/d3.json"))["bundle"]["config"]))
            for key, _, path in MANAGERS:
                b = f"{work}/{key}"
                os.makedirs(b, exist_ok=True)
                c = json.loads(json.dumps(config))
                c["linux"].pop("cgroupsPath", None)
                c.get("annotations", {}).pop("org.cloon.cgroups", None)
                if path:
                    c["linux"]["cgroupsPath"] = path.format(parent=self.parent,
                                                            name=self.names[key])
                with open(f"{b}/config.json", "w") as f:
                    json.dump(c, f)
                self.bundles[key] = b
        except BaseException:
            self.close()
            raise

    def sample(self):
        """One create + start, exec, kill + delete with each manager: {key: (ns, ns, ns)}."""
        got = {}
        for key, opts, _ in MANAGERS:
            crun = ["crun"] + opts
            name, b = self.names[key], self.bundles[key]
            pidfile = f"{b}/pid"
            t0 = time.perf_counter_ns()
            run(crun + ["create", "--bundle", b, "--pid-file", pidfile, name])
            run(crun + ["start", name])
            t1 = time.perf_counter_ns()
            e = run(crun + ["exec", name, "ip", "link"])
            pid = int(open(pidfile).read())
            t2 = time.perf_counter_ns()
            os.kill(pid, signal.SIGKILL)
            wait_exit(pid)
            run(crun + ["delete", name])
            t3 = time.perf_counter_ns()
            os.remove(pidfile)
            got[key] = (t1 - t0, e.wall, t3 - t2)
        return got

    def close(self):
        work = self.work
        for key, opts, _ in MANAGERS:
            run(["crun"] + opts + ["delete", "--force", self.names[key]], check=False)
        for d in glob.glob(f"/sys/fs/cgroup/*/cloon/{self.parent}"):
            try:
                os.rmdir(d)
            except OSError:
                pass
        try:
            if os.path.exists(f"{work}/d3.json"):
                run(["cloon-spec", "down"], stdin=f"{work}/d3.json", stdout=f"{work}/d2.json")
            if os.path.exists(f"{work}/d2.json"):
                run(["cloon-netns", "down"], stdin=f"{work}/d2.json", stdout=f"{work}/d1.json")
            if os.path.exists(f"{work}/d1.json"):
                run(["cloon-overlay", "down"], stdin=f"{work}/d1.json")
        finally:
            shutil.rmtree(work, ignore_errors=True)
            if os.path.exists(self.img):
                os.remove(self.img)


def kernel_one(img, empty):
    """The kernel's work for one container: its overlay's mounts (overlay_floor) and one
    namespace with its veth, made and deleted by `ip -batch` (less `empty`, what an empty batch
    costs): {key: ns}."""
    up, down = overlay_floor(img, 1)
    make = ip_batch(["netns add kf0",
                     "link add name kfv0 group 7 up type veth peer name eth0 netns kf0"]) - empty
    delete = ip_batch(["link del kfv0", "netns del kf0"]) - empty
    return {"overlay_up": up, "overlay_down": down, "make": make, "del_one_by_one": delete,
            "del_by_group": delete}


def ip_batch(lines):
    path = f"{BASE}/floor-kernel.batch"
    with open(path, "w") as f:
        f.write("".join(line + "\n" for line in lines))
    s = run(["ip", "-batch", path])
    os.remove(path)
    return s.wall


LIBC = ctypes.CDLL(None, use_errno=True)
LOOP_CTL_GET_FREE, LOOP_CONFIGURE, LOOP_CLR_FD = 0x4C82, 0x4C0A, 0x4C01
LO_FLAGS_READ_ONLY, LO_FLAGS_AUTOCLEAR = 1, 4
MS_RDONLY = 1


def sys_mount(src, target, fstype, flags=0, data=None):
    if LIBC.mount(src.encode(), target.encode(), fstype.encode(), flags,
                  data.encode() if data else None) != 0:
        e = ctypes.get_errno()
        raise BenchError(f"mount {fstype} {src} on {target}: {os.strerror(e)}")


def sys_umount(target):
    if LIBC.umount2(target.encode(), 0) != 0:
        e = ctypes.get_errno()
        raise BenchError(f"umount {target}: {os.strerror(e)}")


def loop_attach(img):
    """A read-only, autoclear loop device over img (LOOP_CONFIGURE): (its fd, its path)."""
    for _ in range(10):
        ctl = os.open("/dev/loop-control", os.O_RDWR)
        try:
            n = fcntl.ioctl(ctl, LOOP_CTL_GET_FREE)
        finally:
            os.close(ctl)
        dev = f"/dev/loop{n}"
        fd = os.open(dev, os.O_RDONLY)
        imgfd = os.open(img, os.O_RDONLY)
        # struct loop_config: fd, block_size, struct loop_info64 (flags at 52), reserved[8].
        config = bytearray(304)
        struct.pack_into("I", config, 0, imgfd)
        struct.pack_into("I", config, 8 + 52, LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR)
        try:
            fcntl.ioctl(fd, LOOP_CONFIGURE, bytes(config))
            return fd, dev
        except OSError as e:
            os.close(fd)
            if e.errno != 16:  # EBUSY: another process took it first
                raise BenchError(f"LOOP_CONFIGURE {dev}: {e}")
        finally:
            os.close(imgfd)
    raise BenchError("no free loop device")


def overlay_floor(img, n):
    """The overlay's kernel work for n containers of one image, by system calls from here: one
    loop device and read-only lower mount, n overlay mounts (their upper and work directories
    made), then their unmounts (the loop device goes with the lower's, autoclear). (up ns,
    down ns)."""
    work = f"{BASE}/floor-overlay"
    os.makedirs(work, exist_ok=True)
    lower = f"{work}/lower"
    t0 = time.perf_counter_ns()
    os.mkdir(lower)
    fd, dev = loop_attach(img)
    mounted = []
    try:
        sys_mount(dev, lower, "ext4", MS_RDONLY)
        mounted.append(lower)
        os.close(fd)
        fd = None
        for i in range(n):
            d = f"{work}/{i}"
            os.mkdir(d)
            for sub in ("upper", "work", "rootfs"):
                os.mkdir(f"{d}/{sub}")
            sys_mount("overlay", f"{d}/rootfs", "overlay", 0,
                      f"lowerdir={lower},upperdir={d}/upper,workdir={d}/work")
            mounted.append(f"{d}/rootfs")
        t1 = time.perf_counter_ns()
        while len(mounted) > 1:
            sys_umount(mounted.pop())
        sys_umount(mounted.pop())
        t2 = time.perf_counter_ns()
    finally:
        for m in reversed(mounted):
            LIBC.umount2(m.encode(), 2)  # MNT_DETACH
        if fd is not None:
            fcntl.ioctl(fd, LOOP_CLR_FD)
            os.close(fd)
        shutil.rmtree(work)
    return t1 - t0, t2 - t1


def kernel_floor(args, img):
    """The kernel alone: n network namespaces with a veth each (one end inside as eth0, the
    other up on the host), made by one `ip -batch`, then deleted by another, the veths one by
    one (`link del` each, then `netns del` each) or by group (`link del group G`, then `netns
    del` each); what `ip -batch` of an empty file costs is taken off. And the overlay's mounts
    for n containers (overlay_floor). For each n of the labs; n = 1 is measured by bringup."""
    os.makedirs(BASE, exist_ok=True)
    empty = median([ip_batch([]) for _ in range(10)])
    result = {"ip_batch_empty": ms(empty), "n": {}}
    for n in args.labs:
        make, by_one, by_group = [], [], ["link del group 7"]
        for i in range(n):
            make += [f"netns add kf{i}",
                     f"link add name kfv{i} group 7 up type veth peer name eth0 netns kf{i}"]
            by_one += [f"link del kfv{i}", f"netns del kf{i}"]
            by_group.append(f"netns del kf{i}")
        got = {"make": [], "del_one_by_one": [], "del_by_group": [], "overlay_up": [],
               "overlay_down": []}
        reps = 3 if n <= 50 else 1
        # The overlay's mounts first, and a pause after each deletion: the kernel's
        # asynchronous clean-up of deleted namespaces can slow what comes right after it.
        for _ in range(reps):
            up, down = overlay_floor(img, n)
            got["overlay_up"].append(up)
            got["overlay_down"].append(down)
        for _ in range(reps):
            for key, delete in (("del_one_by_one", by_one), ("del_by_group", by_group)):
                got["make"].append(ip_batch(make) - empty)
                got[key].append(ip_batch(delete) - empty)
                time.sleep(SETTLE)
        result["n"][str(n)] = {k: ms(median(v)) for k, v in got.items()}
        time.sleep(SETTLE)
        r = result["n"][str(n)]
        say(f"kernel floor, N = {n}: make {r['make']:.1f} ms, delete one by one "
            f"{r['del_one_by_one']:.1f} ms, by group {r['del_by_group']:.1f} ms; overlay "
            f"{r['overlay_up']:.1f} + {r['overlay_down']:.1f} ms")
        check_left(f"kernel floor {n}")
    return result


# --- labs ---------------------------------------------------------------------------------------

def lan_topology(path, name, img, n):
    """A LAN of n busybox nodes: each node's eth0 a port of one bridge, lan, with an address in
    10.0.0.0/16."""
    nodes = "".join(f"    n{i}: {{}}\n" for i in range(n))
    links = "".join(f'    - endpoints: ["n{i}:eth0", "lan:p{i}"]\n'
                    f'      ipv4: ["10.0.{i // 200}.{i % 200 + 1}/16"]\n' for i in range(n))
    with open(path, "w") as f:
        f.write(f"name: {name}\ntopology:\n  defaults:\n    kind: linux\n    image: {img}\n"
                f"  nodes:\n{nodes}    lan:\n      kind: bridge\n  links:\n{links}")


def census(img):
    """What runs now: loop devices of img, its mounts, overlays, namespaces, containers."""
    loops = sh(f"losetup -n -O NAME -j {img}").split()
    image_mounts = overlays = 0
    for line in sh("findmnt -rn -o FSTYPE,SOURCE").splitlines():
        fstype, _, source = line.partition(" ")
        if fstype == "overlay":
            overlays += 1
        elif source in loops:
            image_mounts += 1
    netns = len(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else 0
    return {"loops": len(loops), "image_mounts": image_mounts, "overlays": overlays,
            "netns": netns, "running": len(sh("crun list -q").split())}


def census_of(n, what, img):
    """census() of img, checked: all n containers run."""
    c = census(img)
    if c["running"] < n:
        raise BenchError(f"{what} of {n}: {c['running']} containers running, not {n}")
    return c


def cloon_lab(topo, cache, verb, jobs=None, peak=False):
    argv = ["cloon-lab", verb, "--cache-dir", cache, "-q"]
    if jobs:
        argv += ["--jobs", str(jobs)]
    argv.append(topo)
    if peak:
        return run_peak(argv)
    return run(argv), None


def cloon_lab_once(topo, cache, img, n, jobs=None):
    """cloon-lab up, what runs then, cloon-lab down: (up Sample, down Sample, census, peak)."""
    try:
        up, up_peak = cloon_lab(topo, cache, "up", jobs=jobs, peak=True)
        c = census_of(n, "cloon-lab", img)
    except BaseException:
        cloon_lab(topo, cache, "down")
        raise
    down, down_peak = cloon_lab(topo, cache, "down", peak=True)
    check_left(f"cloon-lab, N = {n}")
    return up, down, c, max(up_peak, down_peak)


def article_lab_once(art_img, n, prefix, adir):
    """article-lab.sh up, what runs then, article-lab.sh down: (up, down, census)."""
    os.makedirs(adir)
    up = run(["bash", f"{LIB}/article-lab.sh", "up", art_img, str(n), f"{prefix}a", adir])
    c = census_of(n, "the article's lab", art_img)
    down = run(["bash", f"{LIB}/article-lab.sh", "down", art_img, str(n), f"{prefix}a", adir])
    os.rmdir(adir)
    check_left(f"the article's lab, N = {n}")
    return up, down, c


def labs(args, img, prefix, modes):
    """cloon-lab up and down of a LAN of N nodes, against the article's commands N times
    (article-lab.sh), at each N (the median of 3 runs where N <= 50, the sides taking turns);
    then cloon-lab up --jobs J at N = args.jobs_n."""
    work = f"{BASE}/labs"
    cache = f"{work}/cache"
    os.makedirs(work, exist_ok=True)
    art_img = f"{args.work}/article-lab.img"
    shutil.copyfile(img, art_img)
    result = {"mode": modes.get("lab_default") or modes["default_is"], "jobs_default": None,
              "topology": "lan", "n": []}
    try:
        for n in args.labs:
            topo = f"{work}/lan{n}.clab.yml"
            lan_topology(topo, f"{prefix}l{n}", img, n)
            got = {"up": [], "down": [], "aup": [], "adown": []}
            peak = 0
            for i in range(3 if n <= 50 else 1):
                up, down, c1, p = cloon_lab_once(topo, cache, img, n)
                aup, adown, c2 = article_lab_once(art_img, n, prefix, f"{work}/article{n}")
                if i == 0:
                    c, ac = c1, c2
                peak = max(peak, p)
                for k, x in (("up", up), ("down", down), ("aup", aup), ("adown", adown)):
                    got[k].append(x.wall)
            up, down, aup, adown = (ms(median(got[k])) for k in ("up", "down", "aup", "adown"))
            r = {"n": n, "runs": len(got["up"]), "up": up, "down": down, "total": up + down,
                 "per_container": (up + down) / n, "peak_kib": peak, "census": c,
                 "article": {"up": aup, "down": adown, "total": aup + adown,
                             "per_container": (aup + adown) / n, "census": ac}}
            r["ratio"] = r["total"] / r["article"]["total"]
            result["n"].append(r)
            say(f"lab of {n}: cloon-lab up {up:.0f} ms, down {down:.0f} ms "
                f"({r['per_container']:.1f} ms a container); the article {aup:.0f} + "
                f"{adown:.0f} ms; ratio {r['ratio']:.2f}")
        # Parallel bring-up: cloon-lab up --jobs J at one N, the Js taking turns.
        n = args.jobs_n
        topo = f"{work}/jobs{n}.clab.yml"
        lan_topology(topo, f"{prefix}j{n}", img, n)
        default_jobs = 2 * os.cpu_count()  # cloon-lab's default: twice the CPUs
        result["jobs_default"] = default_jobs
        js = [default_jobs if j == 0 else j for j in args.jobs]
        ups = {j: [] for j in js}
        downs = {j: [] for j in js}
        for _ in range(args.jobs_runs):
            for j in js:
                up, down, _, _ = cloon_lab_once(topo, cache, img, n, jobs=j)
                ups[j].append(up.wall)
                downs[j].append(down.wall)
        jobs = [{"jobs": j, "up": ms(median(ups[j])), "down": ms(median(downs[j])),
                 "runs": len(ups[j])} for j in js]
        one = next((x["up"] for x in jobs if x["jobs"] == 1), None)
        for x in jobs:
            x["speedup"] = one / x["up"] if one else None
            say(f"lab of {n}, --jobs {x['jobs']}: up {x['up']:.0f} ms")
        result["jobs"] = {"n": n, "runs": jobs}
    finally:
        if os.path.exists(art_img):
            for dev in sh(f"losetup -n -O NAME -j {art_img}", check=False).split():
                run(["losetup", "-d", dev], check=False)
            os.remove(art_img)
        shutil.rmtree(work, ignore_errors=True)
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
        say(f"{label}: {s.wall / 1e9:.1f} s")
    for f in (img, art):
        if os.path.exists(f):
            os.remove(f)
    return got


# --- what is left -------------------------------------------------------------------------------

PREFIX = ""
CGROUPS_AT_START = set()


def cgroup_dirs():
    """The cgroups under each hierarchy's cloon/ (the parents of cloon's mode)."""
    return set(glob.glob("/sys/fs/cgroup/*/cloon/*/"))


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
    if os.path.isdir("/run/netns") and os.listdir("/run/netns"):
        left.append("namespaces")
    # The state directory itself, the marker that makes it one, and the empty directory of labs
    # may stay.
    if os.path.isdir("/run/cloon"):
        for f in os.listdir("/run/cloon"):
            if f == ".cloon-state":
                continue
            if f == "labs" and not [x for x in os.listdir("/run/cloon/labs")]:
                continue
            left.append(f"state records (/run/cloon/{f})")
    if PREFIX:
        ours = glob.glob(f"/sys/fs/cgroup/*/{PREFIX}*") + \
            glob.glob(f"/sys/fs/cgroup/*/cloon/*/{PREFIX}*") + \
            glob.glob(f"/sys/fs/cgroup/*/cloon/bench-{os.getpid()}")
        if ours:
            left.append(f"cgroups ({', '.join(sorted(ours)[:3])}...)")
    return left


def check_left(what):
    left = leftovers()
    if left:
        raise BenchError(f"{what}: left behind: {', '.join(left)}")


# --- main ---------------------------------------------------------------------------------------

def main():
    global PREFIX, CGROUPS_AT_START
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["sandbox", "debootstrap", "report"])
    p.add_argument("--image", help="the busybox image")
    p.add_argument("--work", default="/var/tmp/cloon-bench")
    p.add_argument("--results", required=True, help="the JSON results file (read and extended)")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--mirror", default="http://deb.debian.org/debian")
    p.add_argument("--out", help="the Markdown report (report)")
    p.add_argument("--only", default="cycle,bringup,steps,start,floor,labs,images",
                   help="the measurements to make in the sandbox, comma-separated")
    p.add_argument("--labs", help="the numbers of lab nodes, comma-separated")
    p.add_argument("--jobs", help="the --jobs of cloon-lab up to compare (0: the default)")
    args = p.parse_args()
    q = args.quick
    args.runs, args.warmup = (3, 1) if q else (20, 3)
    args.bringup_runs = 5 if q else 20
    args.cycles = 3 if q else 20
    args.image_runs = 2 if q else 5
    args.start_runs = 200 if q else 1000
    args.labs = [int(n) for n in args.labs.split(",")] if args.labs else \
        ([10, 50] if q else [10, 50, 200, 500])
    args.jobs = [int(j) for j in args.jobs.split(",")] if args.jobs else \
        ([1, 0] if q else [1, 2, 4, 8])
    args.jobs_n = 50
    args.jobs_runs = 1 if q else 3
    only = set(args.only.split(","))
    results = json.load(open(args.results)) if os.path.exists(args.results) else {}
    if args.what == "debootstrap":
        results["debootstrap"] = debootstrap(args, args.work)
    elif args.what == "sandbox":
        name = f"cloonbench{os.getpid()}"
        PREFIX = name
        CGROUPS_AT_START = cgroup_dirs()
        shim = f"{args.work}/shim/crun"
        results["quick"] = q
        results["machine"] = machine()
        modes = cgroup_modes()
        results["cgroups"] = modes
        if modes["flag"]:
            say(f"cloon-spec --cgroups: {', '.join(modes['modes'])}; default {modes['default']}")
        else:
            say("cloon-spec has no --cgroups in this build: its default only")
        started = time.monotonic()
        timings = {}

        def section(key, what, f):
            if key in only:
                say(what)
                t = time.monotonic()
                results[key] = f()
                timings[key] = round(time.monotonic() - t, 1)

        section("cycle", "the full cycle, cloon in each cgroup mode against the article "
                "(hyperfine)", lambda: cycle(args, args.image, name, modes))
        section("bringup", "the bring-up alone, teardown untimed",
                lambda: bringup(args, args.image, name, modes))
        section("steps", "each step, the runtime's share apart",
                lambda: steps(args, args.image, name, shim, modes))
        section("start", "start cost: --version against /bin/true (hyperfine -N)",
                lambda: start_cost(args))
        if "floor" in only:
            # The runtime's floor and the kernel's for one container were measured with the
            # bring-ups, taking turns with them (bringup); the kernel's for a lab of N here.
            say("the floor: the kernel alone for a lab of N")
            t = time.monotonic()
            one = (results.get("bringup") or {}).pop("floor", None) if "bringup" in only else None
            kernel = kernel_floor(args, args.image)
            if one:
                kernel["n"]["1"] = one["kernel_one"]
            results["floor"] = {"runtime": one and one["runtime"], "kernel": kernel}
            timings["floor"] = round(time.monotonic() - t, 1)
        section("labs", f"labs of N = {args.labs} (cloon-lab against the article's commands), "
                f"then --jobs {args.jobs} at N = {args.jobs_n}",
                lambda: labs(args, args.image, name, modes))
        section("images", "image creation (hyperfine)", lambda: images(args, args.work))
        results["machine"]["load_end"] = [round(x, 2) for x in os.getloadavg()]
        results["seconds"] = dict(timings, total=round(time.monotonic() - started, 1))
        check_left("the end")
        new = cgroup_dirs() - CGROUPS_AT_START
        if new:
            say(f"note: cgroups under */cloon/ that were not there at the start (another "
                f"user's, or ours): {', '.join(sorted(new)[:4])}")
    else:
        import report
        report.write(results, args.out)
        return
    with open(args.results, "w") as f:
        json.dump(results, f, indent=1)


def clean_sandbox():
    """Whatever happened: the sandbox's containers are processes that outlive it, and hold its
    mounts (and so the loop devices): delete them, then let cloon-run gc remove what its state
    directories left (their parent cgroups among them). The rest goes with the sandbox."""
    for c in sh("crun list -q 2>/dev/null; true").split():
        run(["crun", "delete", "--force", c], check=False)
    dirs = ["/run/cloon"] + glob.glob("/run/cloon/labs/*/")
    for d in dirs:
        if os.path.isdir(d):
            run(["cloon-run", "gc", "--state-dir", d], check=False)
    for d in glob.glob(f"/sys/fs/cgroup/*/cloon/bench-{os.getpid()}"):
        try:
            os.rmdir(d)
        except OSError:
            pass


if __name__ == "__main__":
    try:
        main()
    except (BenchError, subprocess.CalledProcessError, OSError) as e:
        print(f"bench: {e}", file=sys.stderr)
        sys.exit(1)
    finally:
        if sys.argv[1:2] == ["sandbox"]:
            clean_sandbox()
