#!/usr/bin/env python3
"""make soak: reliability of pbx-authd under crashes, floods and slow clients, bounded
in time, loopback only. Prints one line per check and exits 1 if any fails.

  crash     200 cycles of concurrent password changes and settings writes, SIGKILL at a
            random moment; after each restart every acknowledged write is present
  slowloris 100 connections sending one header byte per second, 100 whose body stalls
            (16000 bytes declared, 6 sent), and a stream of oversized bodies: /healthz p99
            stays <= 50 ms, every oversized body gets 413, the slow headers are closed
            after the header timeout and the stalled bodies with 408 after the body one
  faults    ENOSPC from a real full file system (the state dir on a small tmpfs, filled
            up) and EIO injected with strace on the store's writes: a clear 5xx, the
            failed change nowhere, reads and sign-in go on, the next write after the
            fault clears succeeds, everything acknowledged survives a restart
  brute     10,000 login attempts from 20 loopback addresses: 0 successes, every 429
            carries Retry-After, the real admin logs in meanwhile from a known browser
            (device cookie) and from a fresh address

Runs as root (mount, strace -p). Usage: soak.py DAEMON_BINARY [CYCLES]
"""
import errno
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import http.client

DAEMON = sys.argv[1]
CYCLES = int(sys.argv[2]) if len(sys.argv) > 2 else 200
WORK = tempfile.mkdtemp(prefix="pbx-soak-")
results = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


HP, SP = free_port(), free_port()


STARTED = []


def start(state, env=None):
    p = subprocess.Popen([DAEMON, "--dev", "--state-dir", state, "--http", f"127.0.0.1:{HP}",
                          "--https", f"127.0.0.1:{SP}"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True, env=env)
    password = None
    for line in p.stdout:
        if line.startswith("initial admin password: "):
            password = line.split(": ", 1)[1].strip()
        if line.startswith("listening: https://"):
            break
    threading.Thread(target=lambda: [None for _ in p.stdout], daemon=True).start()
    STARTED.append(p)
    return p, password


def request(method, path, body=None, headers=None, source="127.0.0.1", timeout=30):
    c = http.client.HTTPConnection("127.0.0.1", HP, timeout=timeout, source_address=(source, 0))
    h = dict(headers or {})
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    c.request(method, path, body=data, headers={k: v for k, v in h.items() if k != "device"})
    r = c.getresponse()
    h = {k.lower(): v for k, v in r.getheaders()}
    # Several Set-Cookie headers (session, device): keep them all.
    h["set-cookie"] = [v for k, v in r.getheaders() if k.lower() == "set-cookie"]
    out = (r.status, h, r.read())
    c.close()
    return out


def cookie(h, name):
    return next((c.split(";")[0] for c in h["set-cookie"] if c.startswith(name + "=")), None)


last_login_status = [None]  # of the last failed login(), for the report


def login(password, source="127.0.0.1", device=None):
    """Session headers, or None. `device`: a pbx_device cookie to send (a known browser)."""
    st, h, body = request("POST", "/api/v1/login", {"username": "admin", "password": password}, source=source,
                          timeout=60, headers={"Cookie": device} if device else None)
    if st != 200:
        last_login_status[0] = st
        return None
    return {"Cookie": cookie(h, "pbx_session"), "X-CSRF-Token": json.loads(body)["csrf_token"],
            "device": cookie(h, "pbx_device")}


def report(name, ok, detail):
    results.append(ok)
    print(f"{'PASS' if ok else 'FAIL'} {name}: {detail}", flush=True)


# --- crash consistency ------------------------------------------------------------------
def crash():
    state = os.path.join(WORK, "crash")
    p, label = start(state)
    pw = "soak password 0"
    s = login(label)
    st, _, _ = request("POST", "/api/v1/password", {"current_password": label, "new_password": pw}, s)
    assert st == 204, st
    acked_pw, acked_mail, lost, checked = pw, None, 0, 0
    for cycle in range(CYCLES):
        s = login(acked_pw)
        if s is None:
            lost += 1
            report("crash", False, f"cycle {cycle}: acknowledged password lost")
            break
        inflight = {"pw": None, "mail": None}
        state_lock = threading.Lock()
        stop = threading.Event()

        def change_pw():
            nonlocal acked_pw
            n = 0
            while not stop.is_set():
                n += 1
                new = f"soak password {cycle}-{n}"
                with state_lock:
                    inflight["pw"] = new
                    cur = acked_pw
                try:
                    st, _, _ = request("POST", "/api/v1/password", {"current_password": cur, "new_password": new}, s)
                except OSError:
                    return
                if st != 204:
                    return
                with state_lock:
                    acked_pw, inflight["pw"] = new, None
                return  # the change ended this session; one change per cycle

        def change_mail():
            nonlocal acked_mail
            s2 = login(acked_pw)
            n = 0
            while s2 and not stop.is_set():
                n += 1
                mail = f"admin{cycle}x{n}@pbx.test"
                with state_lock:
                    inflight["mail"] = mail
                    cur = acked_pw
                try:
                    st, _, _ = request("PUT", "/api/v1/profile", {"email": mail, "current_password": cur}, s2)
                except OSError:
                    return
                if st != 200:
                    return
                with state_lock:
                    acked_mail, inflight["mail"] = mail, None

        def quietly(f):
            # The writers die with the daemon they talk to: that is the point.
            def run():
                try:
                    f()
                except (OSError, http.client.HTTPException):
                    pass
            return run

        t2 = threading.Thread(target=quietly(change_mail))
        t2.start()
        time.sleep(0.02)
        t1 = threading.Thread(target=quietly(change_pw))
        t1.start()
        time.sleep(random.uniform(0.0, 0.25))
        p.kill()
        p.wait()
        stop.set()
        t1.join()
        t2.join()
        p, _ = start(state)
        # Acknowledged → must be there; in flight → either value is fine.
        s = login(acked_pw) or (inflight["pw"] and login(inflight["pw"]))
        if s is None:
            report("crash", False, f"cycle {cycle}: neither the acknowledged nor the in-flight password works")
            lost += 1
            break
        if inflight["pw"] and login(inflight["pw"]):
            acked_pw = inflight["pw"]
        st, _, body = request("GET", "/api/v1/profile", headers=s)
        email = json.loads(body)["email"]
        if acked_mail and email not in (acked_mail, inflight["mail"]):
            report("crash", False, f"cycle {cycle}: email {email}, acknowledged {acked_mail}")
            lost += 1
            break
        acked_mail = email or acked_mail
        checked += 1
    p.terminate()
    p.wait()
    if lost == 0:
        report("crash", True, f"{checked} SIGKILL cycles, every acknowledged password and email present, store opened each time")


# --- flash faults -----------------------------------------------------------------------
def faults():
    mnt = os.path.join(WORK, "flash")
    os.makedirs(mnt)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", mnt], check=True)
    try:
        faults_on(mnt)
    finally:
        for p in STARTED:
            if p.poll() is None:
                p.kill()
                p.wait()
        subprocess.run(["umount", mnt], check=False)


def faults_on(mnt):
    state = os.path.join(mnt, "state")
    p, label = start(state)
    s = login(label)
    pw = "fault password 0"
    assert request("POST", "/api/v1/password", {"current_password": label, "new_password": pw}, s)[0] == 204
    s = login(pw)
    acked_mail = "before@pbx.test"
    assert request("PUT", "/api/v1/profile", {"email": acked_mail, "current_password": pw}, s)[0] == 200
    problems, sync_outcome = [], None

    def expect(what, got, want):
        if got != want:
            problems.append(f"{what}: got {got}, want {want}")

    def error_of(st, body):
        try:
            return st, json.loads(body).get("error")
        except ValueError:
            return st, body[:60]

    def email(session):
        st, _, body = request("GET", "/api/v1/profile", headers=session)
        return json.loads(body)["email"] if st == 200 else f"HTTP {st}"

    # ENOSPC: fill the file system the state lives on, as a voicemail archive would.
    filler = os.path.join(mnt, "filler")
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as e:
        assert e.errno == errno.ENOSPC, e
    finally:
        os.close(fd)
    # sled writes into log space it allocated earlier until it needs more: the first
    # write that does must fail cleanly.
    st, writes = 200, 0
    while st == 200 and writes < 20000:
        writes += 1
        mail = f"fill{writes}@pbx.test"
        st, _, body = request("PUT", "/api/v1/profile", {"email": mail, "current_password": pw}, s)
        if st == 200:
            acked_mail = mail
    expect("ENOSPC: PUT /profile once the log needs new space", error_of(st, body), (507, "storage_full"))
    st, _, body = request("POST", "/api/v1/password", {"current_password": pw, "new_password": "fault password 1"}, s)
    expect("ENOSPC: POST /password", error_of(st, body), (507, "storage_full"))
    expect("ENOSPC: email read back", email(s), acked_mail)
    expect("ENOSPC: sign in with the current password", login(pw, source="127.0.4.1") is not None, True)
    expect("ENOSPC: sign in with the refused one", login("fault password 1", source="127.0.4.2") is None, True)
    os.remove(filler)  # the fault clears
    acked_mail = "after-enospc@pbx.test"
    expect("ENOSPC cleared: PUT /profile", request("PUT", "/api/v1/profile", {"email": acked_mail, "current_password": pw}, s)[0], 200)
    expect("ENOSPC cleared: email", email(s), acked_mail)

    # EIO: one failing write system call of the store, injected into the running daemon.
    for n, syscall in enumerate(("pwrite64", "fdatasync")):
        time.sleep(1.5)  # sled's 1 s background flush has nothing left to write
        tracer = subprocess.Popen(["strace", "-f", "-p", str(p.pid), "-o", "/dev/null",
                                   "-e", "trace=pwrite64,fdatasync", "-e", f"inject={syscall}:error=EIO:when=1"],
                                  stderr=subprocess.PIPE, text=True)
        tracer.stderr.readline()  # "Process N attached with M threads"
        time.sleep(0.3)
        before, failed = acked_mail, f"eio-{syscall}@pbx.test"
        st, _, body = request("PUT", "/api/v1/profile", {"email": failed, "current_password": pw}, s)
        expect(f"EIO on {syscall}: PUT /profile", error_of(st, body), (500, "storage_error"))
        tracer.terminate()
        tracer.wait()
        got = email(s)
        if syscall == "pwrite64":
            # Never reached the file: the failed change is nowhere.
            expect(f"EIO on {syscall}: email read back", got, before)
        else:
            # The bytes reached the file, only the sync failed: as with any database
            # (PostgreSQL's fsync rule), the record is then the old or the new one, whole.
            expect(f"EIO on {syscall}: email read back is old or new", got in (before, failed), True)
            sync_outcome = "old" if got == before else "new"
        acked_mail = f"after-eio-{n}@pbx.test"
        expect(f"EIO on {syscall} cleared: PUT /profile",
               request("PUT", "/api/v1/profile", {"email": acked_mail, "current_password": pw}, s)[0], 200)

    # Everything acknowledged survives a restart, and the store opens.
    p.terminate()
    p.wait()
    p, _ = start(state)
    s = login(pw)
    expect("after restart: sign in", s is not None, True)
    expect("after restart: email", email(s) if s else None, acked_mail)
    ok = not problems
    report("faults", ok, "; ".join(problems) if problems else
           f"ENOSPC (full tmpfs): write {writes} after the disk filled needed new log space: PUT /profile and "
           "POST /password 507 storage_full, reads and sign-in went on, "
           "the failed changes nowhere, next write 200 once space was freed; EIO injected on the store's "
           f"pwrite64 and fdatasync (its flush): 500 storage_error, the record whole (after the failed sync: the "
           f"{sync_outcome} one), next write 200; all acknowledged writes there after a restart")


# --- slowloris --------------------------------------------------------------------------
def slowloris():
    state = os.path.join(WORK, "slow")
    p, _ = start(state)
    # Two attacking machines (one address may hold 64 connections); the probe is a third.
    slow = [socket.create_connection(("127.0.0.1", HP), source_address=(f"127.0.3.{1 + n // 50}", 0))
            for n in range(100)]
    opened = time.time()
    closed_at = {}
    header = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100
    lat = []
    stop = time.time() + 14
    big = {}

    def oversized():
        # Meanwhile a fourth machine keeps sending bodies over the 16 KiB limit: a huge
        # declared length (refused unread), 900 KiB (read and dropped, then refused) and
        # chunked without a length (refused at 16 KiB; the close may reset).
        n = 0
        while time.time() < stop:
            kind = ("20 MiB declared", "900 KiB sent", "chunked")[n % 3]
            n += 1
            c = socket.create_connection(("127.0.0.1", HP), source_address=("127.0.3.80", 0), timeout=10)
            head = "POST /api/v1/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            try:
                if kind == "20 MiB declared":
                    c.sendall(f"{head}Content-Length: 20971520\r\n\r\n".encode() + b"{" * 1024)
                elif kind == "900 KiB sent":
                    c.sendall(f"{head}Content-Length: 921600\r\n\r\n".encode() + b"{" * 921600)
                else:
                    c.sendall(f"{head}Transfer-Encoding: chunked\r\n\r\n".encode()
                              + b"5000\r\n" + b"{" * 0x5000 + b"\r\n")
                status = c.recv(64).split(b" ")[1].decode()
            except (OSError, IndexError) as e:
                status = "reset" if kind == "chunked" else f"{type(e).__name__}"
            c.close()
            big[(kind, status)] = big.get((kind, status), 0) + 1

    # And a fifth whose bodies stall: 16000 bytes declared, 6 sent.
    stalled = []
    for n in range(100):
        c = socket.create_connection(("127.0.0.1", HP), source_address=(f"127.0.3.{60 + n // 50}", 0))
        c.sendall(b"POST /api/v1/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 16000\r\n\r\n{\"user")
        stalled.append(c)
    stalled_at = time.time()
    stall_results = []

    def watch_stalled():
        for c in stalled:
            c.settimeout(max(0.1, stalled_at + 30 - time.time()))
            answer = b""
            try:
                answer = c.recv(64)
                while c.recv(4096):
                    pass
            except ConnectionResetError:
                pass  # closed with the request unread (at accept, or after the 408): a reset
            except OSError:
                answer = b"open"
            # 408 at the deadline, or closed at once unanswered (the pool's last quarter is
            # kept for addresses holding few connections: these two hold 50 each).
            status = answer.split(b" ")[1:2]
            stall_results.append(("408" if status == [b"408"] else "refused" if answer == b"" else repr(answer),
                                  time.time() - stalled_at))

    bodies = threading.Thread(target=oversized)
    bodies.start()
    watcher = threading.Thread(target=watch_stalled)
    watcher.start()
    i = 0
    while time.time() < stop:
        for n, s in enumerate(slow):
            if n in closed_at:
                continue
            try:
                s.send(header[i % len(header):i % len(header) + 1])
                s.setblocking(False)
                try:
                    if s.recv(1) == b"":
                        closed_at[n] = time.time() - opened
                except BlockingIOError:
                    pass
                s.setblocking(True)
            except OSError:
                closed_at[n] = time.time() - opened
        i += 1
        for _ in range(20):
            t0 = time.perf_counter()
            st, _, _ = request("GET", "/healthz", source="127.0.3.99")
            lat.append((time.perf_counter() - t0) * 1000)
            time.sleep(0.04)
    bodies.join()
    watcher.join()
    lat.sort()
    p99 = lat[int(len(lat) * 0.99) - 1]
    closed = sorted(closed_at.values())
    refused = all(st in ("413", "reset") for _, st in big)
    got_408 = sum(1 for st, _ in stall_results if st == "408")
    unanswered = sum(1 for st, _ in stall_results if st == "refused")
    stall_times = sorted(t for _, t in stall_results)
    ok = (p99 <= 50 and len(closed) == 100 and closed[0] >= 9 and refused
          and got_408 + unanswered == 100 and got_408 >= 50 and stall_times[-1] <= 12)
    report("slowloris", ok, f"/healthz p99 {p99:.1f} ms over {len(lat)} requests; "
           f"{len(closed)}/100 slow connections closed, after {closed[0] if closed else 0:.1f}-"
           f"{closed[-1] if closed else 0:.1f} s; stalled bodies: {got_408}/100 answered 408 by the deadline, "
           f"{unanswered} refused at accept (pool reserve), all closed by {stall_times[-1]:.1f} s; "
           f"oversized bodies meanwhile: "
           + ", ".join(f"{kind} {n} x {st}" for (kind, st), n in sorted(big.items())))
    for s in slow:
        s.close()
    p.terminate()
    p.wait()


# --- brute force ------------------------------------------------------------------------
def brute():
    state = os.path.join(WORK, "brute")
    p, label = start(state)
    real = "the real admin password"
    s = login(label)
    request("POST", "/api/v1/password", {"current_password": label, "new_password": real}, s)
    # The admin's own browser: signed in once before the attack, it keeps its device cookie.
    device = login(real, source="127.0.201.1")["device"]
    counts = {"success": 0, "429_without_retry_after": 0, "busy_without_retry_after": 0}
    statuses = {}
    lock = threading.Lock()
    per_thread = 10000 // 20

    def attack(k):
        src = f"127.0.{50 + k}.1"
        for n in range(per_thread):
            # The per-account slow-down may hold a failure's answer for 60 s, plus the hash.
            try:
                st, h, _ = request("POST", "/api/v1/login", {"username": "admin", "password": f"guess-{k}-{n}"},
                                   source=src, timeout=90)
            except OSError as e:
                # Counted (and failing the check) instead of ending the thread unseen.
                st, h = f"{type(e).__name__}", {}
            with lock:
                statuses[st] = statuses.get(st, 0) + 1
                if st == 200:
                    counts["success"] += 1
                elif st == 429 and "retry-after" not in h:
                    counts["429_without_retry_after"] += 1
                elif st == 503 and "retry-after" not in h:
                    counts["busy_without_retry_after"] += 1

    threads = [threading.Thread(target=attack, args=(k,)) for k in range(20)]
    t0 = time.time()
    for t in threads:
        t.start()
    time.sleep(1)
    # From the known browser, at an address the attack shares (127.0.50.1 is blocked).
    t1 = time.perf_counter()
    known_ok = login(real, source="127.0.50.1", device=device) is not None
    known_ms = (time.perf_counter() - t1) * 1000
    known_status = 200 if known_ok else last_login_status[0]
    # From a fresh address (no cookie): the account's slow-down delays only failures, so
    # the right password gets in with one hash (or 503 while the hash queue is full: the
    # admin tries again every 2 s, as a person would).
    t1 = time.perf_counter()
    admin_ok, admin_tries = False, 0
    while not admin_ok and time.perf_counter() - t1 < 300:
        admin_tries += 1
        admin_ok = login(real, source="127.0.200.1") is not None
        if not admin_ok:
            time.sleep(2)
    admin_ms = (time.perf_counter() - t1) * 1000
    for t in threads:
        t.join()
    took = time.time() - t0
    total = sum(statuses.values())
    allowed = {401, 429, 503}  # wrong password, address blocked, hash queue full
    ok = (counts["success"] == 0 and counts["429_without_retry_after"] == 0
          and counts["busy_without_retry_after"] == 0 and admin_ok and known_ok and known_ms < 1000
          and total == 10000
          and set(statuses) <= allowed)
    by_status = ", ".join(f"{n} x {st}" for st, n in sorted(statuses.items(), key=lambda i: str(i[0])))
    report("brute", ok, f"{total} attempts from 20 addresses in {took:.0f} s: {counts['success']} successes; "
           f"{by_status} (every 429 and 503 with Retry-After: "
           f"{counts['429_without_retry_after'] + counts['busy_without_retry_after'] == 0}); "
           f"admin during the attack: from the known browser {known_ok} ({known_status} after {known_ms:.0f} ms), "
           f"from a fresh address {admin_ok} (after {admin_ms:.0f} ms, {admin_tries} tries)")
    p.terminate()
    p.wait()


t_start = time.time()
try:
    chosen = os.environ.get("SOAK_CHECKS", "faults brute slowloris crash").split()
    for check in [c for c in (faults, brute, slowloris, crash) if c.__name__ in chosen]:
        try:
            check()
        except Exception as e:  # a crashed check is a failed check, with its reason
            report(check.__name__, False, f"{type(e).__name__}: {e}")
        finally:
            for p in STARTED:  # nothing of a check outlives it (they share the port)
                if p.poll() is None:
                    p.kill()
                    p.wait()
            STARTED.clear()
finally:
    shutil.rmtree(WORK, ignore_errors=True)
print(f"soak: {sum(results)} passed, {len(results) - sum(results)} failed in {time.time() - t_start:.0f} s")
sys.exit(0 if all(results) else 1)
