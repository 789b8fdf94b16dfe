#!/usr/bin/env python3
"""make bench: pbx-authd against its peers, side by side in one run, on loopback and in
network namespaces that it makes (and removes) itself.

Every throughput figure is a ratio against a peer measured the same way in the same
run: nginx (1 worker) serving the same bytes, pinned to the same core as the daemon,
with wrk on the other core; login throughput against raw argon2id hashing with the same
parameters on the same cores. Memory and start time are absolute. The password spray
(issue 27) runs with the daemon in a network namespace of its own between an internet
side and a LAN segment (see spray_rounds); ip netns needs root. Writes
target/bench/report.md and prints the table.

Usage: bench.py DAEMON ARGON2_RAW FIRMWARE_DIR BARE_HYPER PROBE SPRAY BARE_HYPER_O3
"""
import json
from collections import Counter
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import http.client as http_client

DAEMON, ARGON2_RAW, FIRMWARE, BARE_HYPER, PROBE, SPRAY, BARE_HYPER_O3 = sys.argv[1:8]
OUT = os.path.join("target", "bench")
DURATION = os.environ.get("BENCH_SECONDS", "8")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
FLOOR_PAIRS = int(os.environ.get("BENCH_FLOOR_PAIRS", "8"))
FLOOR_SECONDS = 4
SPRAY_SECONDS = int(os.environ.get("BENCH_SPRAY_SECONDS", "60"))
# The spray's seconds in PROBE_ROUNDS windows, each after an idle window of up to 10 s
# (a window much shorter than 20 s cuts off the admin's sign-ins, which wait ~10 s in
# the hash queue during the spray).
PROBE_ROUNDS = int(os.environ.get("BENCH_PROBE_ROUNDS", "3"))
PROBE_WINDOW = max(1, SPRAY_SECONDS // PROBE_ROUNDS)
IDLE_WINDOW = min(10, PROBE_WINDOW)
SERVER_CPU, CLIENT_CPU = "0", "1"
WORK = tempfile.mkdtemp(prefix="pbx-bench-")
rows = []  # (figure, value, peer, ratio/target text, met)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def cpu_s(pid):
    """CPU seconds (user + system) process `pid` has used."""
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def wait_port(port, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.005)
    raise SystemExit(f"nothing listens on {port}")


def wrk(url, connections=64, headers=(), script=None, threads=1, seconds=None, server=None):
    """One wrk run: requests/s, p50/p99 ms, non-2xx answers; with `server` (a pid) also
    that process's CPU microseconds per request."""
    cpu0 = cpu_s(server) if server else 0
    cmd = ["taskset", "-c", CLIENT_CPU, "wrk", f"-t{threads}", f"-c{connections}",
           f"-d{seconds or DURATION}s", "--latency"]
    for h in headers:
        cmd += ["-H", h]
    if script:
        cmd += ["-s", script]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def pct(p):
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)\b", out)
        if not m:
            return float("nan")
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v

    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    cpu_us = (cpu_s(server) - cpu0) * 1e6 / max(requests, 1) if server else float("nan")
    return {"rps": rps, "p50": pct(50), "p99": pct(99), "cpu_us": cpu_us,
            "non2xx": int(non2xx.group(1)) if non2xx else 0, "raw": out}


def row(figure, value, peer, ratio_text, met):
    rows.append((figure, value, peer, ratio_text, "met" if met else "NOT met"))


def http(method, port, path, body=None, headers=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=body, headers=headers or {})
    def headers_of(msg):
        h = {k.lower(): v for k, v in msg.items()}
        # The session cookie among several Set-Cookie headers (session, device).
        h["set-cookie"] = next((c for c in msg.get_all("Set-Cookie") or [] if c.startswith("pbx_session=")),
                               h.get("set-cookie", ""))
        return h
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, headers_of(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, headers_of(e.headers), e.read()


# --- the daemon -------------------------------------------------------------------------
state = os.path.join(WORK, "state")
hp, sp = free_port(), free_port()
# The daemon sizes its hash pool from the CPUs it may run on at start; it starts pinned
# to one core for the page runs, so give it the two cores of the login run explicitly.
overrides = os.path.join(WORK, "bench.toml")
with open(overrides, "w") as f:
    f.write("[policy]\nhash_concurrency = 2\n")
daemon_cmd = ["taskset", "-c", SERVER_CPU, DAEMON, "--dev", "--state-dir", state,
              "--http", f"127.0.0.1:{hp}", "--https", f"127.0.0.1:{sp}", "--config", overrides]
first = subprocess.Popen(daemon_cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
password = None
for line in first.stdout:
    if line.startswith("initial admin password: "):
        password = line.split(": ", 1)[1].strip()
    if line.startswith("listening: https://"):
        break
NEW_PW = "bench harbour lantern"
st, h, body = http("POST", hp, "/api/v1/login", json.dumps({"username": "admin", "password": password}).encode(),
                   {"Content-Type": "application/json"})
cookie = h["set-cookie"].split(";")[0]
csrf = json.loads(body)["csrf_token"]
st, _, _ = http("POST", hp, "/api/v1/password",
                json.dumps({"current_password": password, "new_password": NEW_PW}).encode(),
                {"Content-Type": "application/json", "Cookie": cookie, "X-CSRF-Token": csrf})
assert st == 204, st
first.terminate()
first.wait()

# Start time: exec to the first answered request (/healthz 200; stricter than the first
# accepted connection, which the kernel completes as soon as the port listens), with an
# existing store, median of 10.
def first_answer(port, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        try:
            c = socket.create_connection(("127.0.0.1", port), 0.5)
            c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            if c.recv(16).startswith(b"HTTP/1.1 200"):
                c.close()
                return
            c.close()
        except OSError:
            pass
        time.sleep(0.001)
    raise SystemExit("no answer from the daemon")


starts = []
for _ in range(10):
    t0 = time.perf_counter()
    p = subprocess.Popen(daemon_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first_answer(hp)
    starts.append((time.perf_counter() - t0) * 1000)
    p.terminate()
    p.wait()
start_ms = statistics.median(starts)

daemon = subprocess.Popen(daemon_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
wait_port(hp)
time.sleep(1.0)
idle_rss = rss_kib(daemon.pid)
st, h, body = http("POST", hp, "/api/v1/login", json.dumps({"username": "admin", "password": NEW_PW}).encode(),
                   {"Content-Type": "application/json"})
assert st == 200, (st, body)
cookie = h["set-cookie"].split(";")[0]
_, page_headers, login_page = http("GET", hp, "/login")
# Extensions 1001 and 1002: the spray's new browsers sign in with accounts of their own
# (each new browser's sign-in mints a device cookie, and an account keeps 8: the
# admin's new browsers would retire its known browser's cookie).
for ext in ("1001", "1002"):
    st, _, _ = http("POST", hp, "/api/v1/accounts",
                    json.dumps({"username": ext, "role": "user", "password": NEW_PW}).encode(),
                    {"Content-Type": "application/json", "Cookie": cookie,
                     "X-CSRF-Token": json.loads(body)["csrf_token"]})
    assert st in (200, 201), (ext, st)

# --- nginx, same bytes, same core, 1 worker ---------------------------------------------
root = os.path.join(WORK, "www")
os.makedirs(root)
with open(os.path.join(root, "login"), "wb") as f:
    f.write(login_page)
np, nsp = free_port(), free_port()
conf = os.path.join(WORK, "nginx.conf")
with open(conf, "w") as f:
    f.write(f"""
worker_processes 1;
daemon off;
pid {WORK}/nginx.pid;
error_log {WORK}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    default_type text/html;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{np};
        listen 127.0.0.1:{nsp} ssl;
        # Like with like: the daemon speaks TLS 1.3 (nginx's default would pick 1.2).
        ssl_protocols TLSv1.3;
        ssl_certificate {state}/tls/cert.pem;
        ssl_certificate_key {state}/tls/key.pem;
        root {root};
    }}
}}
""")
nginx = subprocess.Popen(["taskset", "-c", SERVER_CPU, "nginx", "-c", conf, "-p", WORK],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
wait_port(np)
# nginx's worker (the master forks it): the process whose CPU the handshakes cost.
nginx_worker = int(subprocess.run(["pgrep", "-P", str(nginx.pid)], capture_output=True, text=True,
                                  check=True).stdout.split()[0])
# The floor: a bare hyper server (built like the daemon) answering with the same bytes.
bp = free_port()
bare = subprocess.Popen(["taskset", "-c", SERVER_CPU, BARE_HYPER, str(bp), os.path.join(root, "login")],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
wait_port(bp)
# ... and the same with the daemon's own page headers (CSP and the rest): what those
# bytes cost, apart from the daemon's code.
bhp = free_port()
# (urllib asked for "Connection: close"; that answer header is not the page's own)
own = [f"{k}: {v}" for k, v in page_headers.items() if k not in ("date", "content-length", "connection")]
bare_h = subprocess.Popen(["taskset", "-c", SERVER_CPU, BARE_HYPER, str(bhp), os.path.join(root, "login")] + own,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
wait_port(bhp)
# The floor: that same server with every crate at opt-level 3 (the best this stack does).
b3p = free_port()
bare_3 = subprocess.Popen(["taskset", "-c", SERVER_CPU, BARE_HYPER_O3, str(b3p), os.path.join(root, "login")] + own,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
wait_port(b3p)

try:
    # This VM's speed drifts by 10-15 % from minute to minute: the peers run
    # interleaved, ROUNDS times, and each figure is the median round (by its ratio).
    rounds = []
    for _ in range(ROUNDS):
        r = {"d_page": wrk(f"http://127.0.0.1:{hp}/login"), "n_page": wrk(f"http://127.0.0.1:{np}/login"),
             "b_page": wrk(f"http://127.0.0.1:{bp}/login"), "bh_page": wrk(f"http://127.0.0.1:{bhp}/login"),
             "b3_page": wrk(f"http://127.0.0.1:{b3p}/login"),
             "d_api": wrk(f"http://127.0.0.1:{hp}/api/v1/session", headers=[f"Cookie: {cookie}"]),
             # HTTPS: full handshakes (a new connection per request), and the page over
             # keep-alive connections.
             "d_hs": wrk(f"https://127.0.0.1:{sp}/login", connections=16, headers=["Connection: close"],
                         server=daemon.pid),
             "n_hs": wrk(f"https://127.0.0.1:{nsp}/login", connections=16, headers=["Connection: close"],
                         server=nginx_worker),
             "d_tls": wrk(f"https://127.0.0.1:{sp}/login"), "n_tls": wrk(f"https://127.0.0.1:{nsp}/login")}
        assert r["d_api"]["non2xx"] == 0, r["d_api"]["raw"]
        rounds.append(r)
    # The floor's target is a 5 % margin, less than the drift between two runs 32 s
    # apart in a round: the daemon and the floor again, back to back in ABBA order
    # (daemon, floor, floor, daemon, ...), FLOOR_PAIRS pairs of FLOOR_SECONDS each.
    floor_pairs = []
    for i in range(FLOOR_PAIRS):
        order = ("d", "f") if i % 2 == 0 else ("f", "d")
        got = {who: wrk(f"http://127.0.0.1:{hp if who == 'd' else b3p}/login", seconds=FLOOR_SECONDS)["rps"]
               for who in order}
        floor_pairs.append(got["d"] / got["f"])
    bare.terminate()
    bare_h.terminate()
    bare_3.terminate()

    def median_round(num, den):
        return sorted(rounds, key=lambda r: r[num]["rps"] / r[den]["rps"])[len(rounds) // 2]

    def spread(num, den):
        ratios = sorted(r[num]["rps"] / r[den]["rps"] for r in rounds)
        return f"rounds {', '.join(f'{x:.2f}' for x in ratios)}"

    m = median_round("d_page", "n_page")
    d_page, n_page = m["d_page"], m["n_page"]
    ratio = d_page["rps"] / n_page["rps"]
    row("login page GET, req/s (p50/p99 ms)",
        f"{d_page['rps']:.0f} ({d_page['p50']:.2f}/{d_page['p99']:.2f})",
        f"nginx {n_page['rps']:.0f} ({n_page['p50']:.2f}/{n_page['p99']:.2f})",
        f"{ratio:.2f}x ({spread('d_page', 'n_page')}), target >= 1.5x", ratio >= 1.5)

    for peer, figure, name, why in (
            ("b_page", "a bare hyper server (same bytes, no headers of its own)", "bare hyper",
             "the daemon's own cost"),
            ("bh_page", "that bare server sending the daemon's own page headers", "bare hyper + headers",
             "the daemon's code alone")):
        m = median_round("d_page", peer)
        ratio = m["d_page"]["rps"] / m[peer]["rps"]
        row(f"login page GET vs {figure}", f"{m['d_page']['rps']:.0f}",
            f"{name} {m[peer]['rps']:.0f} ({m[peer]['rps'] / m['n_page']['rps']:.2f}x nginx)",
            f"{ratio:.2f}x ({spread('d_page', peer)}; no target: {why})", True)
    m = median_round("d_page", "b3_page")
    ratio = m["d_page"]["rps"] / m["b3_page"]["rps"]
    paired = statistics.median(floor_pairs)
    row("login page GET vs the floor: bare hyper + the daemon's headers, all crates at opt-level 3",
        f"{m['d_page']['rps']:.0f}",
        f"floor {m['b3_page']['rps']:.0f} ({m['b3_page']['rps'] / m['n_page']['rps']:.2f}x nginx); "
        f"in the rounds {ratio:.2f}x ({spread('d_page', 'b3_page')})",
        f"{paired:.2f}x (median of {FLOOR_PAIRS} back-to-back pairs of {FLOOR_SECONDS} s: "
        f"{', '.join(f'{x:.2f}' for x in sorted(floor_pairs))}), target >= 0.95x", paired >= 0.95)

    m = median_round("d_api", "n_page")
    d_api = m["d_api"]
    ratio = d_api["rps"] / m["n_page"]["rps"]
    row("GET /api/v1/session (session checked), req/s (p50/p99 ms)",
        f"{d_api['rps']:.0f} ({d_api['p50']:.2f}/{d_api['p99']:.2f})",
        f"nginx page {m['n_page']['rps']:.0f}", f"{ratio:.2f}x ({spread('d_api', 'n_page')}), target >= 1.2x",
        ratio >= 1.2)

    for num, den, figure, target in (
            ("d_hs", "n_hs", "HTTPS full handshakes/s (TLS 1.3, ECDSA P-256, the login page)", 0.9),
            ("d_tls", "n_tls", "HTTPS login page GET over keep-alive, req/s", 1.0)):
        m = median_round(num, den)
        ratio = m[num]["rps"] / m[den]["rps"]
        cpu = "" if num != "d_hs" else (
            f" (CPU per handshake on the server's core: {m[num]['cpu_us']:.0f} us; wrk on its one core "
            "is the limit when a server needs less)")
        row(figure, f"{m[num]['rps']:.0f}", f"nginx {m[den]['rps']:.0f}"
            + ("" if num != "d_hs" else f" ({m[den]['cpu_us']:.0f} us)") + cpu,
            f"{ratio:.2f}x ({spread(num, den)}), target >= {target}x", ratio >= target)

    # Login throughput vs the raw hash rate on the same cores (the physical limit).
    lua = os.path.join(WORK, "login.lua")
    with open(lua, "w") as f:
        f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                f'wrk.body = \'{{"username":"admin","password":"{NEW_PW}"}}\'\n')
    # Hashing uses one thread per core: the daemon gets both cores here, like the peer.
    subprocess.run(["taskset", "-a", "-p", "-c", "0,1", str(daemon.pid)], check=True, capture_output=True)
    cmd = ["taskset", "-c", "0,1", "wrk", "-t1", "-c4", f"-d{DURATION}s", "-s", lua,
           f"http://127.0.0.1:{hp}/api/v1/login"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    subprocess.run(["taskset", "-a", "-p", "-c", SERVER_CPU, str(daemon.pid)], check=True, capture_output=True)
    login_rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    raw = subprocess.run(["taskset", "-c", "0,1", ARGON2_RAW, "2", DURATION], capture_output=True,
                         text=True, check=True).stdout.split()
    raw_rate = int(raw[0]) / float(raw[1])
    ratio = login_rps / raw_rate
    row("logins/s (correct password, 2 cores)", f"{login_rps:.1f}", f"raw argon2id {raw_rate:.1f}/s",
        f"{ratio:.2f}x, target >= 0.9x", ratio >= 0.9)

    row("idle RSS, existing store", f"{idle_rss / 1024:.1f} MiB", "-", "target <= 4 MiB", idle_rss <= 4096)

    # 256 idle keep-alive connections.
    conns = []
    for i in range(256):
        # 86 "computers" with 3 each: the last quarter of the pool is kept for addresses
        # holding fewer than 4, so four machines with 64 each no longer fill it.
        s = socket.create_connection(("127.0.0.1", hp), source_address=(f"127.0.1.{1 + i // 3}", 0))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        s.recv(4096)
        conns.append(s)
    time.sleep(0.5)
    rss_256 = rss_kib(daemon.pid)
    for s in conns:
        s.close()
    row("RSS with 256 idle keep-alive connections", f"{rss_256 / 1024:.1f} MiB",
        f"idle {idle_rss / 1024:.1f} MiB", f"+{(rss_256 - idle_rss) / 1024:.1f} MiB (no target)", True)

    # Wrong-password flood from 500 connections, /healthz latency meanwhile.
    flood_lua = os.path.join(WORK, "flood.lua")
    with open(flood_lua, "w") as f:
        f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                'wrk.body = \'{"username":"admin","password":"wrong wrong wrong"}\'\n')
    flood = subprocess.Popen(["taskset", "-c", CLIENT_CPU, "wrk", "-t1", "-c500", f"-d{DURATION}s", "-s",
                              flood_lua, f"http://127.0.0.1:{hp}/api/v1/login"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lat, peak = [], 0
    time.sleep(0.5)
    end = time.time() + float(DURATION) - 1.5
    while time.time() < end:
        # From another computer than the attacker (127.0.0.2), as the admin would be.
        t0 = time.perf_counter()
        c = http_client.HTTPConnection("127.0.0.1", hp, timeout=10, source_address=("127.0.0.2", 0))
        c.request("GET", "/healthz")
        assert c.getresponse().status == 200
        c.close()
        lat.append((time.perf_counter() - t0) * 1000)
        peak = max(peak, rss_kib(daemon.pid))
        time.sleep(0.01)
    flood.wait()
    hwm = rss_kib(daemon.pid, "VmHWM")
    lat.sort()
    p99 = lat[int(len(lat) * 0.99) - 1] if lat else float("nan")
    # The hashing threads (hash_concurrency = 2) and the trusted lanes' own (the flood
    # comes from loopback, the local network's lane), 19 MiB of argon2 memory each.
    permits = 2 + 1
    limit = idle_rss + permits * 20 * 1024 + 16 * 1024
    row("peak RSS, 500-connection wrong-password flood", f"{max(peak, hwm) / 1024:.1f} MiB",
        f"limit idle + (2 + 1 trusted) x 20 + 16 = {limit / 1024:.1f} MiB", "target <= limit",
        max(peak, hwm) <= limit)
    row("/healthz p99 during the flood", f"{p99:.1f} ms", f"{len(lat)} samples", "target <= 50 ms", p99 <= 50)

    # The rest runs against a daemon in a network namespace of its own: stop this one.
    daemon.terminate()
    daemon.wait()

    # Voice first (issue 14) and the owner during an attack (issue 27): the daemon in a
    # network namespace of its own with two veth links, an internet side that sprays
    # passwords (random usernames, 1024 source addresses, 500 connections) and the box's
    # own LAN segment. Meanwhile the owner signs in again and again: from the internet
    # with its known browser (device cookie), from a new browser on the LAN, from a new
    # browser on the internet side; and a 20 ms waker on the daemon's core measures
    # what is left for voice. Idle and spray windows alternate (this VM's own jitter
    # moves the idle p99 0.2-1.4 ms between minutes, so the idle figure is taken at
    # the same moments as the spray's). Variants: the default policy (sprayed addresses
    # blocked by the lockout after 5 guesses, then shed at accept), the same with
    # `block_with = "nftables"` (shed in the kernel), and an "unblocked" spray that the
    # address lockout never catches (a botnet larger than the lockout sees: every guess
    # reaches the hash queue), also at nice 5 as the overlay starts the daemon.
    def probe(seconds):
        return subprocess.Popen(["taskset", "-c", SERVER_CPU, PROBE, str(seconds)],
                                stdout=subprocess.PIPE, text=True)

    def checks():
        out = subprocess.run([DAEMON, "ctl", "--socket", os.path.join(state, "ctl.sock"), "status"],
                             capture_output=True, text=True).stdout
        return json.loads(out)["password_checks"]

    def quantile(xs, q):
        """Nearest-rank quantile of a list of samples; NaN if empty."""
        xs = sorted(xs)
        return xs[min(max(int(-(-len(xs) * q // 1)), 1), len(xs)) - 1] if xs else float("nan")

    NS_BOX, NS_WAN, NS_LAN = "pbxb-box", "pbxb-wan", "pbxb-lan"
    BOX_LAN, LAN_PC, BOX_WAN = "10.98.0.1", "10.98.0.7", "10.98.9.1"
    # The internet side: the spray's 1024 addresses from 198.18.0.1, the owner's own
    # browsers elsewhere in 198.18.0.0/15 (RFC 2544's benchmarking range, routed only
    # between these namespaces).
    SPRAY_FROM, WAN_KNOWN, WAN_NEW = "198.18.0.1", "198.19.0.20", "198.19.0.10"

    def sh(*cmd):
        subprocess.run(list(cmd), check=True, capture_output=True)

    def netns_down():
        for ns in (NS_BOX, NS_WAN, NS_LAN):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)

    def netns_up():
        netns_down()
        for ns in (NS_BOX, NS_WAN, NS_LAN):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        for box_if, peer_if, peer_ns, box_ip, peer_ip in (
                ("lan0", "lan1", NS_LAN, f"{BOX_LAN}/24", f"{LAN_PC}/24"),
                ("wan0", "wan1", NS_WAN, f"{BOX_WAN}/30", "10.98.9.2/30")):
            sh("ip", "link", "add", box_if, "netns", NS_BOX, "type", "veth", "peer", "name", peer_if,
               "netns", peer_ns)
            sh("ip", "-n", NS_BOX, "addr", "add", box_ip, "dev", box_if)
            sh("ip", "-n", peer_ns, "addr", "add", peer_ip, "dev", peer_if)
            sh("ip", "-n", NS_BOX, "link", "set", box_if, "up")
            sh("ip", "-n", peer_ns, "link", "set", peer_if, "up")
        sh("ip", "-n", NS_BOX, "route", "add", "198.18.0.0/15", "via", "10.98.9.2")
        sh("ip", "-n", NS_WAN, "route", "add", "default", "via", BOX_WAN)
        # Every address of the range is the internet side's own (bind() to any of them).
        sh("ip", "-n", NS_WAN, "route", "add", "local", "198.18.0.0/15", "dev", "lo")

    def in_ns(ns, *cmd):
        return ["ip", "netns", "exec", ns, "taskset", "-c", CLIENT_CPU, *cmd]

    def start_box(extra):
        conf = os.path.join(WORK, "netns.toml")
        with open(conf, "w") as f:
            # The WAN port is not the PBX's own network.
            f.write('[network]\nlan_interfaces = ["lan0"]\n' + extra)
        box = subprocess.Popen(["ip", "netns", "exec", NS_BOX, "taskset", "-c", SERVER_CPU, DAEMON, "--dev",
                                "--state-dir", state, "--http", "0.0.0.0:8080", "--https", "0.0.0.0:8443",
                                "--config", conf], stdout=subprocess.DEVNULL,
                               stderr=open(os.path.join(WORK, "box.err"), "w"))
        end = time.time() + 30
        while subprocess.run(in_ns(NS_LAN, "curl", "-fsS", "-o", "/dev/null", f"http://{BOX_LAN}:8080/healthz"),
                             capture_output=True).returncode != 0:
            if time.time() > end or box.poll() is not None:
                raise SystemExit("the daemon in its namespace did not start:\n"
                                 + open(os.path.join(WORK, "box.err")).read())
            time.sleep(0.1)
        return box

    def party(ns, *args):
        return subprocess.Popen(in_ns(ns, SPRAY, *args), stdout=subprocess.PIPE, text=True)

    def spray_rounds(extra, nice=0):
        """PROBE_ROUNDS rounds of an idle probe window, then a spray window with the probe
        and the owner's three browsers running: pooled samples and counts."""
        box = start_box(extra)
        try:
            if nice:
                for tid in os.listdir(f"/proc/{box.pid}/task"):
                    try:
                        os.setpriority(os.PRIO_PROCESS, int(tid), nice)
                    except ProcessLookupError:
                        pass  # an idle blocking-pool thread that has just ended
            cookie = subprocess.run(in_ns(NS_LAN, SPRAY, "cookie", f"{BOX_LAN}:8080", LAN_PC, NEW_PW),
                                    capture_output=True, text=True, check=True).stdout.strip()
            idle, busy, pairs, cpu, hashes = [], [], [], 0.0, 0
            total = {"seconds": 0.0, "requests": 0, "by_status": Counter()}
            owners = {k: {"latency_ms": [], "by_status": Counter(), "longest_ms": 0.0}
                      for k in ("known", "lan", "wan")}
            for _ in range(PROBE_ROUNDS):
                i = json.loads(probe(IDLE_WINDOW).communicate()[0])
                p = probe(PROBE_WINDOW)
                c0, h0 = cpu_s(box.pid), checks()
                secs = str(PROBE_WINDOW)
                parts = {"spray": party(NS_WAN, "attack", f"{BOX_WAN}:8080", secs, "500", SPRAY_FROM, "1024"),
                         "known": party(NS_WAN, "owner", f"{BOX_WAN}:8080", secs, WAN_KNOWN, "admin", NEW_PW,
                                        cookie),
                         "lan": party(NS_LAN, "owner", f"{BOX_LAN}:8080", secs, LAN_PC, "1001", NEW_PW),
                         "wan": party(NS_WAN, "owner", f"{BOX_WAN}:8080", secs, WAN_NEW, "1002", NEW_PW)}
                got = {k: json.loads(v.communicate()[0]) for k, v in parts.items()}
                c1, h1 = cpu_s(box.pid), checks()
                b = json.loads(p.communicate()[0])
                idle += i["late_ms"]
                busy += b["late_ms"]
                pairs.append((i["p99_ms"], b["p99_ms"]))
                cpu, hashes = cpu + c1 - c0, hashes + h1 - h0
                r = got["spray"]
                total["seconds"] += r["seconds"]
                total["requests"] += r["requests"]
                total["by_status"] += Counter(r["by_status"])
                for k, o in owners.items():
                    o["latency_ms"] += got[k]["latency_ms"]
                    o["by_status"] += Counter(got[k]["by_status"])
                    o["longest_ms"] = max(o["longest_ms"], got[k]["longest_ms"])
        finally:
            box.terminate()
            box.wait()
        for o in owners.values():
            # Every attempt ranks: one that was not signed in counts as the slowest.
            n_fail = sum(o["by_status"].values()) - len(o["latency_ms"])
            ranked = sorted(o["latency_ms"]) + [float("inf")] * n_fail
            o["p50"], o["p95"] = quantile(ranked, 0.5), quantile(ranked, 0.95)
            o["ok_p50"] = quantile(o["latency_ms"], 0.5)
        return {"idle99": quantile(idle, 0.99), "idle50": quantile(idle, 0.5), "idle_max": max(idle),
                "p99": quantile(busy, 0.99), "max": max(busy),
                "rounds": ", ".join(f"{x:.2f}/{y:.2f}" for x, y in pairs),
                "share": cpu / total["seconds"], "hashes": hashes / total["seconds"], **total, **owners}

    def ms(x):
        return "failed" if x == float("inf") else f"{x:.0f} ms"

    def spray_rows(name, sp):
        w = f"{PROBE_ROUNDS} windows of {PROBE_WINDOW} s"
        row(f"[{name}] 20 ms probe p99 lateness during the spray (same core; {w})", f"{sp['p99']:.2f} ms",
            f"idle p99 {sp['idle99']:.2f} ms (p50 {sp['idle50']:.2f}, max {sp['idle_max']:.2f}) at the same "
            f"moments; rounds idle/spray p99 {sp['rounds']} ms; max {sp['max']:.2f} ms",
            "target <= idle + 1 ms and <= 2 ms", sp["p99"] <= sp["idle99"] + 1 and sp["p99"] <= 2)
        by = ", ".join(f"{k}: {v}" for k, v in sorted(sp["by_status"].items()))
        row(f"[{name}] daemon CPU during the spray (share of its core); what the spray got",
            f"{sp['share'] * 100:.0f} %", f"{sp['requests']} spray requests ({by}); {sp['hashes']:.1f} hashes/s",
            "-", True)
        for key, who, target in (("known", "known browser (device cookie), internet side", 1000),
                                 ("lan", "new browser on the LAN segment (extension 1001)", 3000),
                                 ("wan", "new browser, internet side (extension 1002)", None)):
            o = sp[key]
            answers = ", ".join(f"{k}: {v}" for k, v in sorted(o["by_status"].items()))
            hung = o["by_status"].get("no answer in 10 s", 0)
            if target:
                row(f"[{name}] owner's sign-in, {who}: p50 / p95 of every attempt",
                    f"{ms(o['p50'])} / {ms(o['p95'])}",
                    f"answers {answers}; longest wait {o['longest_ms']:.0f} ms",
                    f"target p95 <= {target / 1000:.0f} s, none unanswered > 10 s",
                    o["p95"] <= target and hung == 0)
            else:
                row(f"[{name}] owner's sign-in, {who}: what it gets",
                    f"{o['by_status'].get('200', 0)} signed in (p50 {ms(o['ok_p50'])})",
                    f"answers {answers}; longest wait {o['longest_ms']:.0f} ms",
                    "target: slow or 503 with Retry-After, none unanswered > 10 s", hung == 0)

    try:
        netns_up()
        variants = os.environ.get("BENCH_SPRAY_VARIANTS", "default nftables unblocked nice5").split()
        unblocked = "[policy]\nlockout_failures = 100\n"
        for v in variants:
            extra, nice = {"default": ("", 0), "nftables": ('block_with = "nftables"\n', 0),
                           "unblocked": (unblocked, 0), "nice5": (unblocked, 5)}[v]
            # (`extra` lands under start_box's [network], block_with's table.)
            spray_rows(v, spray_rounds(extra, nice))
        # Voice's worst case before SCHED_IDLE: raw argon2id at normal priority.
        p = probe(IDLE_WINDOW)
        subprocess.run(["taskset", "-c", SERVER_CPU, ARGON2_RAW, "2", str(IDLE_WINDOW)],
                       capture_output=True, text=True, check=True)
        raw_probe = json.loads(p.communicate()[0])
        row("20 ms probe p99 lateness beside raw argon2id at normal priority (no daemon; what "
            "hashing did to voice before SCHED_IDLE)", f"{raw_probe['p99_ms']:.2f} ms",
            f"max {raw_probe['max_ms']:.2f} ms", "-", True)
    finally:
        netns_down()

    row("start: exec to first answered /healthz, existing store (median of 10)", f"{start_ms:.1f} ms", "-",
        "target <= 100 ms", start_ms <= 100)
finally:
    nginx.terminate()
    bare.kill()
    bare_h.kill()
    bare_3.kill()
    if daemon.poll() is None:
        daemon.terminate()
    nginx.wait()
    daemon.wait()

# The size budget (SPEC §7): 3 MiB for each ARM target, 3.5 MiB for x86_64.
for t, mib in [("x86_64-unknown-linux-musl", 3.5), ("aarch64-unknown-linux-musl", 3),
               ("armv7-unknown-linux-gnueabihf", 3)]:
    p = os.path.join(FIRMWARE, t, "pbx-authd")
    if os.path.exists(p):
        size = os.path.getsize(p)
        row(f"binary size {t}", f"{size / 1048576:.2f} MiB", "-", f"target <= {mib} MiB", size <= mib * 1048576)
    else:
        row(f"binary size {t}", "not built (run make cross)", "-", f"target <= {mib} MiB", False)

os.makedirs(OUT, exist_ok=True)
cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"],
                     capture_output=True, text=True).stdout.strip()
lines = ["# pbx-authd benchmark", "",
         f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores ({cpu}); "
         f"server pinned to CPU {SERVER_CPU}, wrk on CPU {CLIENT_CPU}, {DURATION} s per run, page and API runs "
         f"interleaved with their peers {ROUNDS} times (median round shown), on loopback; the spray in "
         f"network namespaces of its own.", "",
         "| figure | pbx-authd | peer | ratio / target | |", "|---|---|---|---|---|"]
lines += [f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in rows]
report = "\n".join(lines) + "\n"
with open(os.path.join(OUT, "report.md"), "w") as f:
    f.write(report)
print(report)
shutil.rmtree(WORK, ignore_errors=True)
