//! cloon-lab's link impairment and capture, on real namespaces, veths and packets, inside a
//! sandbox. Two namespaces (`na`, `nb`, addresses 10.77.0.1 and .2) are each joined to the
//! sandbox by a veth whose host ends (`ha`, `hb`) nothing joins but the relay, driven through
//! `cloon-lab-impair`. Every measure is printed (`--nocapture` shows them).
//!
//! The kernel of cloon's machines has no netem: the kernel engine's test runs where the kernel
//! has it and says loudly that it was skipped where not (its netlink bytes are unit-tested
//! against tc's in cloon-lab); `CLOON_REQUIRE_NETEM=1` makes that skip a failure.

use cloon_tests::Sandbox;
use serde_json::Value;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Timing tests share two cores: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const TOOL: &str = "cloon-lab-impair";
const DIR: &str = "/run/impair-test/link";

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Makes `na` and `nb`, each with a veth to the sandbox (`ha`, `hb`), IPv6 off and the other
/// side's MAC address fixed (no ARP, no router solicitations: only the test's own frames cross
/// the link, so that a seed gives the same fates).
fn two_nodes(sb: &Sandbox) {
    sb.sh(
        "set -e
         sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
         for n in a b; do
           ip netns add n$n
           ip netns exec n$n sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
           ip link add h$n type veth peer name eth1 netns n$n
           ip link set h$n up
           ip -n n$n link set lo up
           ip -n n$n link set eth1 up
         done
         ip -n na addr add 10.77.0.1/24 dev eth1
         ip -n nb addr add 10.77.0.2/24 dev eth1
         ip -n na neigh add 10.77.0.2 lladdr $(ip netns exec nb cat /sys/class/net/eth1/address) dev eth1 nud permanent
         ip -n nb neigh add 10.77.0.1 lladdr $(ip netns exec na cat /sys/class/net/eth1/address) dev eth1 nud permanent",
    )
    .ok();
}

/// Removes what [`two_nodes`] made and checks that nothing is left: no interface, namespace,
/// relay process or record.
fn clean(sb: &Sandbox) {
    sb.sh(&format!(
        "{TOOL} remove --record-dir {DIR}; rmdir /run/impair-test 2>/dev/null;
         ip link del ha; ip link del hb; ip netns del na; ip netns del nb; true"
    ))
    .ok();
    let left = sb
        .sh("pgrep -f '^[^ ]*cloon-lab-impair relay' ; ls /run/impair-test 2>/dev/null; true")
        .ok();
    assert_eq!(left.trim(), "", "relay processes or records left");
    sb.assert_clean(&[]);
}

/// `cloon-lab-impair apply` between ha and hb with `flags`; its JSON.
fn apply(sb: &Sandbox, flags: &str) -> Value {
    let run = sb.sh(&format!("{TOOL} apply --record-dir {DIR} {flags} ha hb"));
    run.json()
}

/// `cloon-lab-impair change` with `flags`.
fn change(sb: &Sandbox, flags: &str) -> Value {
    sb.sh(&format!("{TOOL} change --record-dir {DIR} {flags}"))
        .json()
}

/// `cloon-lab-impair show`: its exit status and JSON.
fn show(sb: &Sandbox) -> (i32, Value) {
    let run = sb.sh(&format!("{TOOL} show --record-dir {DIR}"));
    (run.status, run.json())
}

/// Pings from na to nb `count` times, `interval` seconds apart: (replies, average round trip in
/// ms).
fn ping(sb: &Sandbox, count: u32, interval: &str) -> (u32, f64) {
    let (received, _, avg) = ping_stats(sb, count, interval);
    (received, avg)
}

/// As [`ping`]: (replies, shortest round trip, average round trip), in ms. The shortest is what a
/// delay is measured on: a busy machine (two cores, other tests) lengthens some round trips.
fn ping_stats(sb: &Sandbox, count: u32, interval: &str) -> (u32, f64, f64) {
    let out = sb
        .sh(&format!(
            "ip netns exec na busybox ping -q -c {count} -i {interval} -W 1 10.77.0.2; true"
        ))
        .ok();
    let received = out
        .split(", ")
        .find_map(|p| p.strip_suffix(" packets received"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no ping summary in {out:?}"));
    let field = |i: usize| {
        out.split("min/avg/max = ")
            .nth(1)
            .and_then(|s| s.split(['/', ' ']).nth(i))
            .and_then(|s| s.parse().ok())
            .unwrap_or(f64::NAN)
    };
    (received, field(0), field(1))
}

/// Sends `bytes` random bytes from na to nb over TCP (busybox nc; the receiver's stdin stays
/// open so that it never closes first): the time until all arrived, and whether they arrived
/// intact.
fn tcp_send(sb: &Sandbox, bytes: u64) -> (Duration, bool) {
    let src = sb.path("tcp-src");
    let dst = sb.path("tcp-dst");
    let (src, dst) = (src.display(), dst.display());
    sb.sh(&format!("head -c {bytes} /dev/urandom > {src}; : > {dst}"))
        .ok();
    sb.sh(&format!(
        "(sleep 60 | ip netns exec nb busybox nc -l -p 5000 > {dst}) >/dev/null 2>&1 &
         sleep 0.3"
    ))
    .ok();
    let start = Instant::now();
    let run = sb.sh_within(
        &format!(
            "ip netns exec na busybox nc 10.77.0.2 5000 < {src} >/dev/null 2>&1 &
             n=0; while [ $(stat -c %s {dst}) -lt {bytes} ] && [ $n -lt 6000 ]; do sleep 0.01; n=$((n+1)); done
             cmp -s {src} {dst} && echo intact
             pkill -f '^busybox nc'; pkill -x sleep; true"
        ),
        90,
    );
    let took = start.elapsed();
    (took, run.ok().contains("intact"))
}

/// The counters of one direction in `show`'s JSON.
fn counter(status: &Value, dir: usize, name: &str) -> u64 {
    status["stats"]["directions"][dir][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no {name} in {status}"))
}

#[test]
fn relay_delays_each_direction_and_changes_at_run_time() {
    let _serial = serial();
    let Some(sb) = Sandbox::new("impair-delay") else {
        return;
    };
    two_nodes(&sb);
    let applied = apply(&sb, "--engine relay");
    assert_eq!(applied["engine"], "relay", "{applied}");
    ping(&sb, 1, "0.2");
    let (n, base, base_avg) = ping_stats(&sb, 10, "0.1");
    assert_eq!(n, 10);

    change(&sb, "--delay 50ms");
    ping(&sb, 1, "0.2");
    let (n, slow, slow_avg) = ping_stats(&sb, 10, "0.1");
    assert_eq!(n, 10);
    eprintln!(
        "MEASURE relay rtt min/avg: no impairment {base:.3}/{base_avg:.3} ms, \
         delay 50ms each way {slow:.3}/{slow_avg:.3} ms"
    );
    // The floor is absolute (no round trip is shorter than both delays); the ceiling is on the
    // fastest round trips, as the machine's load adds to some of them and to the base too.
    assert!(slow >= 100.0, "delay 50ms: rtt {slow} vs {base}");
    assert!(slow - base < 115.0, "delay 50ms: rtt {slow} vs {base}");

    let changed = change(&sb, "--delay 10ms");
    assert_eq!(changed["netem"]["delay"], "10ms", "{changed}");
    assert_eq!(changed["relay"], applied["relay"], "the same relay process");
    ping(&sb, 1, "0.2");
    let (n, fast, fast_avg) = ping_stats(&sb, 10, "0.1");
    assert_eq!(n, 10);
    eprintln!("MEASURE relay rtt min/avg after the change to 10ms: {fast:.3}/{fast_avg:.3} ms");
    assert!(fast >= 20.0, "delay 10ms: rtt {fast} vs {base}");
    assert!(fast - base < 35.0, "delay 10ms: rtt {fast} vs {base}");

    let (status, st) = show(&sb);
    assert_eq!(status, 0, "{st}");
    assert_eq!(st["ok"], true);
    assert!(counter(&st, 0, "sent") >= 32, "{st}");

    // Jitter: each way's delay drawn from 20ms ± 5ms, so round trips from 30 to 50 ms.
    change(&sb, "--delay 20ms --jitter 5ms");
    let out = sb
        .sh("ip netns exec na busybox ping -c 20 -i 0.05 10.77.0.2 | grep -o 'time=[0-9.]*' | cut -d= -f2")
        .ok();
    let rtts: Vec<f64> = out.lines().filter_map(|l| l.parse().ok()).collect();
    assert_eq!(rtts.len(), 20, "{out}");
    let (min, max) = rtts
        .iter()
        .fold((f64::MAX, 0f64), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
    eprintln!("MEASURE relay rtt with delay 20ms jitter 5ms: min {min:.3} max {max:.3} ms");
    // The floor is exact (each way at least 15 ms). The ceiling (each way at most 25 ms) holds
    // for most round trips: the machine's load can delay a few.
    assert!(min >= 30.0, "{rtts:?}");
    let within = rtts.iter().filter(|&&r| r <= 55.0).count();
    assert!(
        within >= 15,
        "only {within} of 20 round trips within 55 ms: {rtts:?}"
    );
    assert!(max - min >= 4.0, "no jitter seen: {rtts:?}");
    assert_eq!(counter(&st, 0, "lost") + counter(&st, 1, "lost"), 0);
    clean(&sb);
}

#[test]
fn relay_loss_all_none_and_seeded() {
    let _serial = serial();
    let Some(sb) = Sandbox::new("impair-loss") else {
        return;
    };
    two_nodes(&sb);
    apply(&sb, "--engine relay --loss 100%");
    assert_eq!(ping(&sb, 5, "0.1").0, 0, "loss 100% lets nothing through");
    let (_, st) = show(&sb);
    assert_eq!(counter(&st, 0, "lost"), 5, "{st}");
    assert_eq!(counter(&st, 0, "sent"), 0, "{st}");

    change(&sb, "--loss 0%");
    assert_eq!(ping(&sb, 20, "0.05").0, 20, "loss 0% drops nothing");

    // Duplicate 100%: each request arrives twice, and each of the two replies too: four
    // replies a ping, three of them duplicates (ping ends at the last ping's first reply).
    change(&sb, "--duplicate 100%");
    let out = sb
        .sh("ip netns exec na busybox ping -c 3 -i 0.2 10.77.0.2; true")
        .ok();
    let dups = out.matches("DUP!").count();
    eprintln!("MEASURE duplicate 100%: 3 pings, {dups} duplicate replies");
    assert_eq!(dups, 6, "{out}");
    change(&sb, "--duplicate 0%");

    // The same seed and the same traffic: the same losses.
    let mut counts = Vec::new();
    for _ in 0..2 {
        sb.sh(&format!("{TOOL} remove --record-dir {DIR}")).ok();
        apply(&sb, "--engine relay --loss 30% --seed 42");
        let (got, _) = ping(&sb, 60, "0.02");
        let (_, st) = show(&sb);
        counts.push((got, counter(&st, 0, "lost"), counter(&st, 1, "lost")));
    }
    eprintln!(
        "MEASURE seeded 30% loss, 60 pings, twice: {counts:?} (replies, lost a->b, lost b->a)"
    );
    assert_eq!(counts[0], counts[1], "seed 42 gave different losses");
    let got = counts[0].0;
    // Each round trip survives with probability 0.49: 29 of 60 expected.
    assert!((15..=45).contains(&got), "{got} of 60 round trips");
    clean(&sb);
}

#[test]
fn relay_carries_tcp_limits_its_rate_and_corrupts_detectably() {
    let _serial = serial();
    let Some(sb) = Sandbox::new("impair-tcp") else {
        return;
    };
    two_nodes(&sb);
    apply(&sb, "--engine relay");
    let (took, intact) = tcp_send(&sb, 20_000_000);
    assert!(
        intact,
        "20 MB through the relay arrived damaged or incomplete"
    );
    let free_mbit = 20_000_000.0 * 8.0 / took.as_secs_f64() / 1e6;
    eprintln!("MEASURE relay TCP, no impairment: 20 MB in {took:?} ({free_mbit:.0} Mbit/s)");
    let (_, st) = show(&sb);
    assert!(
        counter(&st, 0, "segmented") > 0,
        "the nodes' TCP used segmentation offload, undone by the relay: {st}"
    );
    assert_eq!(counter(&st, 0, "errors"), 0, "{st}");

    change(&sb, "--rate 8mbit");
    let (took, intact) = tcp_send(&sb, 1_000_000);
    assert!(intact);
    let mbit = 1_000_000.0 * 8.0 / took.as_secs_f64() / 1e6;
    eprintln!("MEASURE relay TCP, rate 8mbit: 1 MB in {took:?} ({mbit:.2} Mbit/s)");
    assert!(mbit < 8.5, "rate 8mbit: {mbit} Mbit/s");
    // The time includes the start of nc and the poll of the file: a loaded machine adds to it.
    assert!(mbit > 4.0, "rate 8mbit: only {mbit} Mbit/s");

    change(&sb, "--rate none --corrupt 2%");
    let (took, intact) = tcp_send(&sb, 2_000_000);
    assert!(
        intact,
        "TCP must repair corrupted frames (the receiver's checksums catch them)"
    );
    let (_, st) = show(&sb);
    let corrupted = counter(&st, 0, "corrupted");
    let csum_errors = sb
        .sh("ip netns exec nb cat /proc/net/snmp | awk '/^Tcp: [0-9]/ {print $NF}'")
        .ok();
    eprintln!(
        "MEASURE relay TCP, corrupt 2%: 2 MB intact in {took:?}, {corrupted} frames corrupted, \
         receiver's TCP InCsumErrors {}",
        csum_errors.trim()
    );
    assert!(corrupted > 0, "{st}");
    clean(&sb);
}

#[test]
fn a_dead_relay_is_seen_and_restarted() {
    let _serial = serial();
    let Some(sb) = Sandbox::new("impair-dead") else {
        return;
    };
    two_nodes(&sb);
    let applied = apply(&sb, "--engine relay --delay 5ms");
    let pid = applied["relay"]["pid"].as_i64().expect("pid");
    assert!(sb.alive(pid));
    let rec = sb.sh(&format!("cat {DIR}/impair.json")).json();
    assert_eq!(rec["relay"]["pid"], pid);
    assert!(rec["relay"]["startTime"].as_u64().unwrap_or(0) > 0, "{rec}");

    sb.sh(&format!("kill -9 {pid}")).ok();
    let deadline = Instant::now() + Duration::from_secs(5);
    while sb.alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, st) = show(&sb);
    assert_eq!(status, 1, "show must fail when the relay died: {st}");
    assert_eq!(st["ok"], false);
    let problem = st["problems"][0].as_str().unwrap_or_default();
    assert!(problem.contains("not running"), "{st}");
    assert_eq!(ping(&sb, 2, "0.1").0, 0, "no relay, no link");

    let again = change(&sb, "--delay 5ms");
    let pid = again["relay"]["pid"].as_i64().expect("pid");
    assert_ne!(again["relay"], applied["relay"], "{again}");
    assert_eq!(ping(&sb, 2, "0.1").0, 2);
    assert_eq!(show(&sb).0, 0);

    // A relay whose record is lost is found by its command line and stopped by gc.
    sb.sh(&format!("mv {DIR}/impair.json {DIR}/saved.json"))
        .ok();
    let out = sb.sh(&format!("{TOOL} gc --under /run/impair-test")).ok();
    assert!(
        out.contains("stopped the relay of /run/impair-test/link"),
        "{out}"
    );
    assert!(!sb.alive(pid));
    sb.sh(&format!("mv {DIR}/saved.json {DIR}/impair.json"))
        .ok();

    // An end deleted under a running relay ends it (no relay outlives its link).
    let pid = change(&sb, "--delay 5ms")["relay"]["pid"]
        .as_i64()
        .expect("pid");
    sb.sh("ip link del ha").ok();
    let deadline = Instant::now() + Duration::from_secs(5);
    while sb.alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!sb.alive(pid), "the relay outlived its end");
    let (status, st) = show(&sb);
    assert_eq!(status, 1, "{st}");
    let log = sb.sh(&format!("cat {DIR}/impair-relay.log")).ok();
    assert!(log.contains("ha is gone"), "{log}");
    clean(&sb);
}

#[test]
fn a_relay_refuses_bridged_ends_and_explains_itself() {
    let _serial = serial();
    let Some(sb) = Sandbox::new("impair-bridged") else {
        return;
    };
    two_nodes(&sb);
    sb.sh("ip link add br0 type bridge && ip link set ha master br0 && ip link set hb master br0")
        .ok();
    let run = sb.sh(&format!(
        "{TOOL} apply --record-dir {DIR} --engine relay --delay 5ms ha hb"
    ));
    assert_ne!(run.status, 0);
    assert!(run.stderr.contains("port of br0"), "{}", run.stderr);
    assert_eq!(
        sb.sh(&format!("ls {DIR}")).ok().trim(),
        "",
        "no record left"
    );
    sb.sh("ip link del br0").ok();

    // The two sides of one veth pair (a point-to-point link): no place for a relay.
    sb.sh("ip link add p1 netns na type veth peer name p2 netns nb")
        .ok();
    let run = sb.sh(&format!(
        "{TOOL} apply --record-dir {DIR} --engine relay na:p1 nb:p2"
    ));
    assert_ne!(run.status, 0);
    assert!(run.stderr.contains("one veth pair"), "{}", run.stderr);
    sb.sh("ip -n na link del p1").ok();

    let text = sb
        .sh(&format!(
            "{TOOL} explain --engine kernel --delay 10ms --jitter 2ms --loss 1% ha nb:eth1"
        ))
        .ok();
    assert!(
        text.contains("tc qdisc replace dev ha root netem limit 1000 delay 10ms 2ms loss 1%"),
        "{text}"
    );
    assert!(
        text.contains("ip netns exec nb tc qdisc replace dev eth1 root netem"),
        "{text}"
    );
    let text = sb
        .sh(&format!("{TOOL} explain --engine relay --delay 10ms ha hb"))
        .ok();
    assert!(text.contains("user-space relay"), "{text}");
    clean(&sb);
}

/// Reads a pcap file: its link type and frames.
fn read_pcap(bytes: &[u8]) -> (u32, Vec<Vec<u8>>) {
    assert!(bytes.len() >= 24, "no pcap header");
    let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    assert_eq!(word(0), 0xa1b2_c3d4, "pcap magic (little-endian writer)");
    assert_eq!(u16::from_le_bytes([bytes[4], bytes[5]]), 2, "version 2.4");
    let mut frames = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let incl = word(at + 8) as usize;
        assert!(word(at + 12) as usize >= incl);
        frames.push(bytes[at + 16..at + 16 + incl].to_vec());
        at += 16 + incl;
    }
    assert_eq!(at, bytes.len(), "records end where the file ends");
    (word(20), frames)
}

/// The ICMP type of an Ethernet + IPv4 + ICMP frame.
fn icmp_type(f: &[u8]) -> Option<u8> {
    if f.len() < 34 || f[12..14] != [0x08, 0x00] || f[23] != 1 {
        return None;
    }
    let ihl = usize::from(f[14] & 0x0f) * 4;
    f.get(14 + ihl).copied()
}

#[test]
fn capture_writes_the_pings_as_pcap() {
    let _serial = serial();
    let Some(sb) = Sandbox::new("impair-capture") else {
        return;
    };
    if cfg!(target_endian = "big") {
        return;
    }
    two_nodes(&sb);
    apply(&sb, "--engine relay --delay 2ms");
    let host_pcap = sb.path("host.pcap");
    let node_pcap = sb.path("node.pcap");
    // On a host end, to a file, stopped by SIGINT; inside a node's namespace, to stdout, after a
    // count.
    sb.sh(&format!(
        "{TOOL} capture hb -w {} >/dev/null 2>{}.err & echo $! > {}.pid
         ({TOOL} capture nb:eth1 -c 6 > {} 2>/dev/null &)
         sleep 0.5",
        host_pcap.display(),
        host_pcap.display(),
        host_pcap.display(),
        node_pcap.display()
    ))
    .ok();
    assert_eq!(ping(&sb, 3, "0.1").0, 3);
    sb.sh(&format!(
        "kill -INT $(cat {0}.pid); n=0; while kill -0 $(cat {0}.pid) 2>/dev/null && [ $n -lt 300 ]; do sleep 0.01; n=$((n+1)); done",
        host_pcap.display()
    ))
    .ok();
    let err = std::fs::read_to_string(format!("{}.err", host_pcap.display())).unwrap_or_default();
    assert!(
        err.contains("frames captured"),
        "the capture did not end cleanly: {err}"
    );
    for (pcap, what) in [(&host_pcap, "host end hb"), (&node_pcap, "nb:eth1")] {
        let bytes = std::fs::read(pcap).expect("pcap");
        let (linktype, frames) = read_pcap(&bytes);
        assert_eq!(linktype, 1, "LINKTYPE_ETHERNET");
        let requests = frames.iter().filter(|f| icmp_type(f) == Some(8)).count();
        let replies = frames.iter().filter(|f| icmp_type(f) == Some(0)).count();
        eprintln!("MEASURE capture on {what}: {} frames, {requests} echo requests, {replies} echo replies", frames.len());
        assert_eq!((requests, replies), (3, 3), "{what}");
    }
    clean(&sb);
}

#[test]
fn kernel_netem_where_the_kernel_has_it() {
    let _serial = serial();
    let Some(sb) = Sandbox::new("impair-kernel") else {
        return;
    };
    let probe = sb.sh(&format!("{TOOL} probe"));
    if probe.status != 0 {
        // Where the kernel has no netem, the kernel engine says so (the request went through
        // netlink and was refused), and leaves nothing: no record, no qdisc changed.
        two_nodes(&sb);
        let before = sb.sh("tc qdisc show dev ha 2>/dev/null; true").ok();
        let run = sb.sh(&format!(
            "{TOOL} apply --record-dir {DIR} --engine kernel --delay 10ms ha hb"
        ));
        assert_ne!(run.status, 0);
        assert!(run.stderr.contains("no netem qdisc"), "{}", run.stderr);
        assert_eq!(
            sb.sh(&format!("ls {DIR}")).ok().trim(),
            "",
            "no record left"
        );
        let after = sb.sh("tc qdisc show dev ha 2>/dev/null; true").ok();
        assert_eq!(before, after);
        clean(&sb);
        assert!(
            std::env::var("CLOON_REQUIRE_NETEM").as_deref() != Ok("1"),
            "CLOON_REQUIRE_NETEM=1 and {}",
            probe.stdout.trim()
        );
        eprintln!(
            "\n*** SKIPPED kernel_netem_where_the_kernel_has_it: {} ***\n\
             *** (the kernel engine is covered here by its netlink bytes only) ***\n",
            probe.stdout.trim()
        );
        return;
    }
    sb.sh("set -e; ip netns add na; ip netns add nb
         ip link add eth1 netns na type veth peer name eth1 netns nb
         ip -n na link set eth1 up; ip -n nb link set eth1 up
         ip -n na addr add 10.77.0.1/24 dev eth1; ip -n nb addr add 10.77.0.2/24 dev eth1")
        .ok();
    ping(&sb, 1, "0.2");
    let (_, base) = ping(&sb, 10, "0.1");
    let run = sb.sh(&format!(
        "{TOOL} apply --record-dir {DIR} --engine kernel --delay 50ms na:eth1 nb:eth1"
    ));
    assert_eq!(run.json()["engine"], "kernel", "{}", run.stderr);
    let (_, slow) = ping(&sb, 10, "0.1");
    eprintln!("MEASURE kernel netem rtt: {base:.3} ms, delay 50ms each way {slow:.3} ms");
    assert!(slow - base >= 100.0);
    let (status, st) = show(&sb);
    assert_eq!(status, 0, "{st}");
    assert_eq!(st["kernel"][0]["delay"], "50ms", "{st}");
    sb.sh(&format!("{TOOL} remove --record-dir {DIR}; rmdir /run/impair-test; ip netns del na; ip netns del nb"))
        .ok();
    sb.assert_clean(&[]);
}
