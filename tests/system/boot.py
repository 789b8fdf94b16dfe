#!/usr/bin/env python3
"""make system-test: the firmware on a real Linux kernel (Debian's own x86_64 kernel,
downloaded and unpacked, never installed) under qemu-system in TCG, with busybox init
and rootfs-overlay/ as shipped. Loopback only: the guest's port 80 is forwarded to
127.0.0.1:PORT with qemu's user networking.

Scenarios so far (issue 11):
- first-boot: `pbx-authd provision` (with the qemu-x86 board profile) writes the board
  DB, busybox init runs etc/init.d/S50pbx-authd from the overlay, /healthz answers
  through the kernel's network stack, and the label password signs in with a forced
  change.
- button: the daemon's own evdev watcher sees key presses sent through QMP
  input-send-event to a virtio keyboard: a 2 s hold changes nothing; a 12 s hold is a
  factory reset that ends in reboot(2), which makes qemu (-no-reboot) exit.

Usage: boot.py FIRMWARE KERNEL_DIR   (KERNEL_DIR: where the linux-image .deb was put)
Prints one line per check and a closing 'N passed, N failed'.
"""
import glob
import gzip
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

FIRMWARE, KDIR = sys.argv[1], sys.argv[2]
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
results = []


def report(name, ok, detail):
    results.append(ok)
    print(f"{'ok' if ok else 'FAIL'} system {name}: {detail}", flush=True)


def kernel():
    """Unpacks the downloaded kernel package once; returns (vmlinuz, modules dir, version)."""
    debs = sorted(glob.glob(os.path.join(KDIR, "linux-image-*-amd64-unsigned_*.deb")))
    if not debs:
        sys.exit(f"no linux-image .deb in {KDIR} (make system-test downloads it)")
    # Unpacked once per package (a newer kernel package gets its own tree).
    root = os.path.join(KDIR, "root-" + os.path.basename(debs[-1])[: -len(".deb")])
    if not os.path.isdir(root):
        subprocess.run(["dpkg-deb", "-x", debs[-1], root + ".tmp"], check=True)
        os.rename(root + ".tmp", root)
    vmlinuz = sorted(glob.glob(os.path.join(root, "boot", "vmlinuz-*")))[-1]
    version = os.path.basename(vmlinuz)[len("vmlinuz-"):]
    return vmlinuz, os.path.join(root, "lib", "modules", version), version


def copy_modules(mods, version, dest, wanted):
    """The modules under `wanted` (paths in kernel/), with a modules.dep for them."""
    out = os.path.join(dest, "lib", "modules", version)
    for w in wanted:
        src = os.path.join(mods, "kernel", w)
        for path in glob.glob(src + ("/**/*.ko*" if os.path.isdir(src) else ""), recursive=True):
            rel = os.path.relpath(path, mods)
            os.makedirs(os.path.dirname(os.path.join(out, rel)), exist_ok=True)
            shutil.copy2(path, os.path.join(out, rel))
    for f in ("modules.order", "modules.builtin", "modules.builtin.modinfo"):
        if os.path.exists(os.path.join(mods, f)):
            shutil.copy2(os.path.join(mods, f), out)
    subprocess.run(["depmod", "-b", dest, version], check=True)


INIT = r"""#!/bin/busybox sh
# Early set-up of the test box, then busybox init (which runs the overlay's scripts).
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /run /var/run /var/log /var/lib/pbx-authd /factory/pbx-authd /tmp
modprobe virtio_pci
modprobe virtio_net
modprobe evdev
modprobe virtio_input
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
hostname pbx-qemu
# The factory line: the board DB and the label password (printed on the console here).
/usr/bin/pbx-authd provision --board-db /factory/pbx-authd/board.db \
  --model QEMU-X86 --serial QEMU-0001 --mac 52:54:00:12:34:56 \
  --profile /etc/qemu-x86-profile.toml > /dev/console 2>&1
exec /bin/busybox init
"""

INITTAB = """::sysinit:/etc/init.d/rcS
::askfirst:-/bin/sh
::shutdown:/etc/init.d/S50pbx-authd stop
"""

RCS = """#!/bin/sh
# The daemon's log straight to the serial console, where the host reads it (the
# overlay's script takes LOGFILE from the environment).
export LOGFILE=/dev/console
for s in /etc/init.d/S[0-9]*; do
  [ -x "$s" ] && "$s" start
done
"""


def initramfs(work, mods, version):
    root = os.path.join(work, "root")
    for d in ("bin", "sbin", "usr/bin", "proc", "sys", "dev", "etc/init.d"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    shutil.copy2("/bin/busybox", os.path.join(root, "bin", "busybox"))
    shutil.copy2(FIRMWARE, os.path.join(root, "usr", "bin", "pbx-authd"))
    # The overlay exactly as shipped.
    shutil.copytree(os.path.join(REPO, "rootfs-overlay"), root, dirs_exist_ok=True)
    shutil.copy2(os.path.join(REPO, "board", "profiles", "qemu-x86.toml"),
                 os.path.join(root, "etc", "qemu-x86-profile.toml"))
    for name, text, mode in (("init", INIT, 0o755), ("etc/inittab", INITTAB, 0o644),
                             ("etc/init.d/rcS", RCS, 0o755)):
        with open(os.path.join(root, name), "w") as f:
            f.write(text)
        os.chmod(os.path.join(root, name), mode)
    copy_modules(mods, version, root, ["drivers/virtio", "drivers/net/virtio_net.ko",
                                       "drivers/net/net_failover.ko", "net/core/failover.ko",
                                       "drivers/input/evdev.ko"])
    cpio = subprocess.run("find . | cpio -o -H newc --quiet", shell=True, cwd=root, check=True,
                          capture_output=True).stdout
    path = os.path.join(work, "initramfs.gz")
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(cpio)
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(port, method, path, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json"} if body is not None else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class Qmp:
    """qemu's monitor on a Unix socket: keys and power."""

    def __init__(self, path):
        deadline = time.time() + 10
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX)
                self.s.connect(path)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)
        self.f = self.s.makefile("rw")
        self.f.readline()  # greeting
        self.call("qmp_capabilities")

    def call(self, command, **arguments):
        self.f.write(json.dumps({"execute": command, "arguments": arguments}) + "\n")
        self.f.flush()
        while True:
            answer = json.loads(self.f.readline())
            if "return" in answer or "error" in answer:
                return answer

    def key(self, down):
        return self.call("input-send-event", events=[
            {"type": "key", "data": {"down": down, "key": {"type": "qcode", "data": "power"}}}])

    def hold(self, seconds):
        self.key(True)
        time.sleep(seconds)
        self.key(False)


def boot_and_press(vmlinuz, initrd, work):
    port = free_port()
    console = os.path.join(work, "console.log")
    qmp_path = os.path.join(work, "qmp.sock")
    qemu = subprocess.Popen(
        ["qemu-system-x86_64", "-m", "512", "-display", "none", "-no-reboot",
         "-kernel", vmlinuz, "-initrd", initrd,
         "-append", "console=ttyS0 panic=-1 edd=off quiet",
         "-nic", f"user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:{port}-:80",
         "-device", "virtio-keyboard-pci",
         "-qmp", f"unix:{qmp_path},server=on,wait=off",
         "-serial", f"file:{console}"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    started = time.time()
    label, healthy = None, None

    def console_text():
        return open(console, errors="replace").read() if os.path.exists(console) else ""
    try:
        while time.time() - started < 120 and qemu.poll() is None:
            for line in console_text().splitlines():
                if line.startswith("initial admin password: "):
                    label = line.split(": ", 1)[1].strip()
            if label:
                try:
                    if http(port, "GET", "/healthz")[0] == 200:
                        healthy = time.time() - started
                        break
                except OSError:
                    pass
            time.sleep(0.5)
        if healthy is None:
            report("first-boot", False, f"no /healthz 200 within 120 s; console:\n{console_text()[-3000:]}")
            return
        st, body = http(port, "POST", "/api/v1/login", {"username": "admin", "password": label})
        answer = json.loads(body or b"{}")
        ok = st == 200 and answer.get("must_change_password") is True
        report("first-boot", ok,
               f"Debian kernel {os.path.basename(vmlinuz)[8:]}, busybox init + S50pbx-authd from the overlay: "
               f"/healthz 200 after {healthy:.1f} s from qemu start; label password sign-in {st}, "
               f"must_change_password {answer.get('must_change_password')}")

        # The button, through the kernel: QMP -> virtio keyboard -> evdev -> the daemon.
        qmp = Qmp(qmp_path)
        qmp.hold(2)
        time.sleep(2)
        short_ok = qemu.poll() is None and http(port, "GET", "/healthz")[0] == 200
        qmp.hold(12)
        released = time.time()
        try:
            qemu.wait(timeout=60)
            exited = time.time() - released
        except subprocess.TimeoutExpired:
            exited = None
        text = console_text()
        # The daemon logs to the console (rcS sets LOGFILE).
        ignored = "button press ignored" in text
        erased = "factory reset: erase complete" in text
        ok = short_ok and ignored and erased and exited is not None
        report("button", ok,
               f"2 s hold: ignored ({short_ok and ignored}); 12 s hold of the key seen by the daemon's evdev "
               f"watcher: factory reset erase complete ({erased}), reboot(2), qemu exited "
               + (f"{exited:.1f} s after the release" if exited is not None else "NOT within 60 s")
               + ("" if ok else f"; console:\n{text[-2000:]}"))
    finally:
        if qemu.poll() is None:
            qemu.kill()
        qemu.wait()


def main():
    vmlinuz, mods, version = kernel()
    work = tempfile.mkdtemp(prefix="pbx-system-")
    try:
        initrd = initramfs(work, mods, version)
        boot_and_press(vmlinuz, initrd, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    passed = sum(results)
    print(f"system: {passed} passed, {len(results) - passed} failed")
    sys.exit(0 if results and all(results) else 1)


main()
