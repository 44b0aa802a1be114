#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""QEMU live-migrates a running guest that owns a VF, inside the test VM.

Run by the VM runner (tools/vm/run -- samples/qemu/qemu_migration.py GUEST_DIR),
where the test VM plays the host: its igb PF gets 10.99.0.1, QEMU A runs the
nested guest (tools/guest: tinyconfig kernel, busybox init pinging the PF)
with VF0 through vfio-pci, QEMU B waits with -incoming and VF1, and QEMU's
VFIO migration (device dirty tracking through the driver's log_ops,
PRE_COPY, P2P) moves the guest over a unix socket; then back to a fresh
QEMU on VF0. Then a destination that refuses the stream (the source writes
the next major version: debugfs fault_inject_future_stream, for that move
only) must leave the guest running on the source. Prints KTAP; ends with
the kernel log check.
"""

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time

PF_IP = "10.99.0.1"
GUEST_IP = "10.99.0.2"
WORK = "/tmp/qemu-mig"
# The guest's busybox ping, five echoes a second to the PF.
SEQ = re.compile(r"from " + re.escape(PF_IP) + r": seq=(\d+)")
TICK = re.compile(r"guest: tick (\d+)")
# The heartbeat also carries igbvf's tx_packets, counted in its TX interrupt.
TICK_TX = re.compile(r"guest: tick \d+ tx (\d+)")
# iputils ping from the test VM to the guest, -D stamped.
HOST_REPLY = re.compile(r"^\[(\d+\.\d+)\] \d+ bytes from " + re.escape(GUEST_IP) + r": icmp_seq=(\d+) ")
PING_INTERVAL = 0.2
# Echoes either ping may lose across one migration before the gap counts
# as unbounded: 10 s of traffic. QEMU's downtime here is ~0.3 s; TCG in
# TCG stretches the rest.
MAX_LOST = 50


class Failure(Exception):
    """A check that failed, with its reason."""



COMPLAINTS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "kernel_complaints.txt")


def kernel_complaints(lines):
    """The kernel-log lines that mean a bug (samples/kernel_complaints.txt,
    the list the KTAP samples use too)."""
    with open(COMPLAINTS_FILE) as f:
        pats = [p.rstrip("\n") for p in f if p.strip() and not p.startswith("#")]
    return [l for l in lines if any(p in l for p in pats)]


def sh(*cmd, check=True):
    """Runs a command, returns its stdout."""
    r = subprocess.run(cmd, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise Failure(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr.strip()}")
    return r.stdout


def note(msg):
    print(f"# {msg}", flush=True)


def hung_qemu_report():
    """Where every QEMU thread is in the kernel, and the kernel log's tail."""
    out = []
    for pid in sh("pgrep", "-f", "qemu-system-x86_64", check=False).split():
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/comm") as f:
                    comm = f.read().strip()
                with open(f"/proc/{pid}/task/{tid}/stack") as f:
                    top = " < ".join(l.split()[-1] for l in f.read().splitlines()[:6])
            except OSError:
                continue
            out.append(f"{pid}/{tid} {comm}: {top}")
    tail = sh("dmesg", check=False).splitlines()[-8:]
    return "QEMU threads: " + " | ".join(out[:24]) + "; dmesg: " + " | ".join(tail)


class Qmp:
    """A minimal QMP client over a unix socket, or TCP ("tcp:HOST:PORT",
    for a QEMU on the other host of the two-host test)."""

    def __init__(self, path, timeout=120):
        deadline = time.time() + timeout
        while True:
            try:
                if path.startswith("tcp:"):
                    _, host, port = path.split(":")
                    self.sock = socket.create_connection((host, int(port)), timeout=5)
                else:
                    self.sock = socket.socket(socket.AF_UNIX)
                    self.sock.connect(path)
                break
            except OSError:
                if time.time() > deadline:
                    raise Failure(f"no QMP socket at {path}")
                time.sleep(0.2)
        # A QEMU whose main loop hangs (in an ioctl, say) must fail the
        # test with what it is stuck in, not hang it.
        self.sock.settimeout(120)
        self.buf = b""
        self._read()  # greeting
        self.cmd("qmp_capabilities")

    def _read(self):
        while b"\n" not in self.buf:
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise Failure(f"QMP: no answer in 120 s; {hung_qemu_report()}")
            if not chunk:
                raise Failure("QMP connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            r = self._read()
            if "event" in r:
                continue
            if "error" in r:
                raise Failure(f"QMP {name}: {r['error'].get('desc')}")
            return r.get("return")

    def close(self):
        self.sock.close()


def ktap_case(i, name, fn, results):
    """Runs test `i` and prints its KTAP line: any exception fails it, with
    its message, and the others still run; appends the verdict to results."""
    t = time.time()
    try:
        fn()
        print(f"ok {i} {name}", flush=True)
        results.append(True)
    except Exception as e:  # noqa: BLE001 - every failure is reported
        note(f"{name}: {e}")
        print(f"not ok {i} {name}", flush=True)
        results.append(False)
    note(f"{name}: {time.time() - t:.0f} s")


def nested_accel():
    """How the nested guest runs: KVM where the test VM can run it (the
    outer QEMU's TCG emulates AMD's SVM with nested paging, so kvm_amd
    works in the test VM), else TCG in TCG (several times slower).
    IVF_NESTED_ACCEL=tcg forces TCG."""
    if os.environ.get("IVF_NESTED_ACCEL") == "tcg":
        return ["-accel", "tcg"]
    subprocess.run(["modprobe", "kvm_amd"], capture_output=True)
    with open("/proc/cpuinfo") as f:
        svm = any(re.search(r"\b(svm|vmx)\b", l) for l in f if l.startswith("flags"))
    if svm and os.access("/dev/kvm", os.R_OK | os.W_OK):
        return ["-accel", "kvm", "-cpu", "host"]
    return ["-accel", "tcg"]


ACCEL = None


class Vm:
    """One QEMU process running (or waiting for) the nested guest."""

    def __init__(self, name, vf, guest_dir, incoming=False, iommufd=False, peer2=None):
        self.name = name
        self.backend = "iommufd" if iommufd else "group"
        self.serial = f"{WORK}/{name}.serial"
        self.qmp_path = f"{WORK}/{name}.qmp"
        for f in (self.serial, self.qmp_path):
            if os.path.exists(f):
                os.unlink(f)
        cmd = [
            "qemu-system-x86_64", "-M", "q35", *ACCEL, "-m", "128",
            "-nodefaults", "-no-user-config", "-display", "none",
            "-kernel", f"{guest_dir}/bzImage", "-initrd", f"{guest_dir}/initramfs.cpio.gz",
            "-append", f"console=ttyS0 quiet ivf.ip={GUEST_IP}/24 ivf.peer={PF_IP} ivf.interval={PING_INTERVAL}"
            + (" ivf.debug" if os.environ.get("IVF_QEMU_DEBUG") else "")
            + (f" ivf.peer2={peer2}" if peer2 else ""),
            "-serial", f"file:{self.serial}",
            "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
        ]
        # The VF through the legacy group/container, or through iommufd and
        # the VFIO device cdev: the driver's log_ops serve both.
        # Without the driver's DMA logging (a kernel without iova_bitmap,
        # as Debian's) and without IOMMU dirty tracking, QEMU blocks
        # migration unless told to migrate anyway: it then takes every
        # page as dirty in every round, which is correct, only slower.
        with open(f"/sys/bus/pci/devices/{vf}/dirty_tracking") as f:
            self.device_logging = f.read().strip() == "device"
        opts = "" if self.device_logging else ",enable-migration=on"
        if iommufd:
            cmd += ["-object", "iommufd,id=iommufd0",
                    "-device", f"vfio-pci,host={vf},iommufd=iommufd0,id=vf0{opts}"]
        else:
            cmd += ["-device", f"vfio-pci,host={vf},id=vf0{opts}"]
        if incoming:
            cmd += ["-incoming", "defer"]
        self.log = open(f"{WORK}/{name}.log", "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        try:
            self.qmp = Qmp(self.qmp_path)
        except (OSError, Failure) as e:
            # Say why: QEMU's own words, not just a socket error.
            time.sleep(0.5)
            raise Failure(f"QEMU {name} on {vf} did not answer on QMP ({e}); exit status "
                          f"{self.proc.poll()}; its log: {self.qemu_log()!r}") from e

    def console(self):
        try:
            with open(self.serial, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def seqs(self):
        return [int(m) for m in SEQ.findall(self.console())]

    def ticks(self):
        return [int(m) for m in TICK.findall(self.console())]

    def tx_counts(self):
        return [int(m) for m in TICK_TX.findall(self.console())]

    def wait_for(self, what, n, timeout, after=-1):
        """Waits until the console shows n ping replies (what="seq") or
        heartbeats (what="tick") numbered above `after`."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise Failure(f"QEMU {self.name} exited {self.proc.returncode}: {self.qemu_log()}")
            got = [s for s in (self.seqs() if what == "seq" else self.ticks()) if s > after]
            if len(got) >= n:
                return got
            time.sleep(0.5)
        tail = self.console()[-400:]
        raise Failure(f"QEMU {self.name}: fewer than {n} {what} lines above {after} in {timeout} s; console tail: {tail!r}")

    def wait_seqs(self, n, timeout, after=-1):
        return self.wait_for("seq", n, timeout, after)

    def wait_ticks(self, n, timeout, after=-1):
        return self.wait_for("tick", n, timeout, after)

    def qemu_log(self):
        with open(f"{WORK}/{self.name}.log", errors="replace") as f:
            return f.read()[-800:]

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.qmp.cmd("quit")
            except (Failure, OSError):
                pass
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                try:
                    self.proc.wait(60)
                except subprocess.TimeoutExpired:
                    # Unkillable: stuck in the kernel (closing its VF, say).
                    raise Failure(f"QEMU {self.name} does not exit: {hung_qemu_report()}")
        self.log.close()


CAP_SEEN = re.compile(r"guest: capability at (0x[0-9a-f]+) generation ([0-9a-f]+)")
CAP_MOVED = re.compile(r"guest: capability generation ([0-9a-f]+) -> ([0-9a-f]+)")


class ArpWatch:
    """Gratuitous ARP from the guest (sender and target address both the
    guest's), as the test VM's PF receives it."""

    def __init__(self, ifname):
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
        self.sock.bind((ifname, 0))
        self.sock.settimeout(0.5)
        self.seen = []
        self.frames = 0
        self.done = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        me = socket.inet_aton(GUEST_IP)
        while not self.done:
            try:
                f = self.sock.recv(2048)
            except socket.timeout:
                continue
            except OSError:
                return
            # Ethernet header, then ARP: sender IP at 14, target IP at 24.
            if len(f) >= 42:
                self.frames += 1
            if len(f) >= 42 and f[28:32] == me and f[38:42] == me:
                self.seen.append(time.time())

    def since(self, t):
        return [x for x in self.seen if x >= t]

    def stop(self):
        self.done = True
        self.thread.join(2)
        self.sock.close()


class WireArp:
    """Gratuitous ARP from the guest as it left the emulated NIC: the outer
    QEMU's capture of the NIC's wire (IVF_WIRE, a pcap that tools/vm/run has
    the outer QEMU write frame by frame). That is where a switch learns the
    guest's new port. The test VM's own PF cannot show it: QEMU's igb model
    sends a VF's broadcasts to the wire, not back to the PF.

    Counted, not timed: the capture's stamps are the outer host's clock."""

    def __init__(self, path):
        self.path = path

    def frames(self):
        """(source MAC, ARP opcode) of every gratuitous ARP for GUEST_IP so far."""
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except OSError:
            return []
        if len(data) < 24 or data[:4] not in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4"):
            return []
        order = "<" if data[:4] == b"\xd4\xc3\xb2\xa1" else ">"
        me = socket.inet_aton(GUEST_IP)
        out, off = [], 24
        while off + 16 <= len(data):
            caplen = int.from_bytes(data[off + 8:off + 12], "little" if order == "<" else "big")
            frame = data[off + 16:off + 16 + caplen]
            off += 16 + caplen
            # Ethernet, then ARP: opcode at 20, sender IP at 28, target IP at 38.
            if len(frame) >= 42 and frame[12:14] == b"\x08\x06" and frame[28:32] == me and frame[38:42] == me:
                out.append((frame[6:12].hex(":"), int.from_bytes(frame[20:22], "big")))
        return out

    def count(self):
        return len(self.frames())


class HostPing:
    """iputils ping from the test VM (the host side) to the guest's address.

    The guest echoes each request's payload back through its own RX and TX
    buffers, and iputils compares every reply with what it sent ("wrong data
    byte") and flags duplicates: corruption in guest memory or a buffer the
    device wrote twice shows here. -D stamps each reply, so the gap across a
    migration is measured in time as well as in lost echoes."""

    def __init__(self):
        self.path = f"{WORK}/host-ping.log"
        self.out = open(self.path, "w")
        self.proc = subprocess.Popen(
            ["ping", "-D", "-i", str(PING_INTERVAL), "-W", "2", GUEST_IP],
            stdout=self.out, stderr=subprocess.STDOUT)

    def text(self):
        with open(self.path, errors="replace") as f:
            return f.read()

    def replies(self):
        """(time, seq) of every reply so far."""
        out = []
        for line in self.text().splitlines():
            m = HOST_REPLY.match(line)
            if m:
                out.append((float(m.group(1)), int(m.group(2))))
        return out

    def bad_lines(self):
        return [l for l in self.text().splitlines() if "wrong data byte" in l or "DUP!" in l]

    def gap(self, t0, t1):
        """The longest silence between two replies around [t0, t1] (a
        migration): (seconds, echoes lost, replies after t1), or None when
        no reply came after t1."""
        rs = [r for r in self.replies() if r[0] >= t0 - 5]
        after = [r for r in rs if r[0] > t1]
        if not rs or not after:
            return None
        worst = (0.0, 0)
        for (ta, sa), (tb, sb) in zip(rs, rs[1:]):
            if tb < t0:
                continue
            if tb - ta > worst[0]:
                worst = (tb - ta, sb - sa - 1)
            if ta > t1:
                break
        return worst[0], worst[1], len(after)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait()
        self.out.close()


def pf_vf_mac(pf_if, index):
    """The MAC the PF holds for its VF `index` (what `ip link` shows)."""
    m = re.search(rf"^\s*vf {index}\s+link/ether ([0-9a-f:]+)", sh("ip", "link", "show", pf_if), re.M)
    return m.group(1) if m else None


def dirty_stats(vf):
    with open(f"/sys/bus/pci/devices/{vf}/dirty_stats") as f:
        return dict(line.split() for line in f if line.strip())


def migrate(src, dst, sock_name):
    """Migrates src to dst (already -incoming defer); returns query-migrate."""
    uri = f"unix:{WORK}/{sock_name}"
    dst.qmp.cmd("migrate-incoming", uri=uri)
    # A nested guest: allow a longer stop than the 300 ms default, so the
    # iteration converges.
    params = {"downtime-limit": 5000}
    if not src.device_logging:
        # Every page is dirty in every round (no dirty tracking): the
        # iteration never shrinks, so QEMU stops after its first pass and
        # copies the guest's RAM while it is stopped (printed as downtime).
        params = {"downtime-limit": 300000, "max-bandwidth": 1 << 34}
    src.qmp.cmd("migrate-set-parameters", **params)
    src.qmp.cmd("migrate", uri=uri)
    deadline = time.time() + 600
    while time.time() < deadline:
        info = src.qmp.cmd("query-migrate")
        status = info.get("status")
        if status in ("completed", "failed", "cancelled"):
            return info
        time.sleep(0.5)
    raise Failure("migration did not finish in 600 s")


def wait_running(vm, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        st = vm.qmp.cmd("query-status")
        if st.get("status") == "running":
            return
        time.sleep(0.3)
    raise Failure(f"QEMU {vm.name} not running after {timeout} s: {st}")


def ping_guest():
    """The guest's IP and MAC answer from the test VM (ARP, then ICMP)."""
    out = sh("ping", "-c", "3", "-W", "5", GUEST_IP, check=False)
    received = re.search(r"(\d+) received", out)
    if not received or int(received.group(1)) < 2:
        raise Failure(f"the guest does not answer at {GUEST_IP}: {out.strip()[-200:]}")


def one_way(src, dst, sock, vf_src, host_ping, traffic):
    """src -> dst; checks the guest goes on on dst, prints the figures.
    `traffic` collects what both pings saw across it, checked by its own
    test so that a stalled data path does not hide the move's result."""
    src.wait_ticks(3, 300)
    t0 = time.time()
    info = migrate(src, dst, sock)
    t1 = time.time()
    if info.get("status") != "completed":
        raise Failure(f"migration {info.get('status')}: {info.get('error-desc', '')}")
    wait_running(dst)
    last_tick = max(src.ticks())
    after = dst.wait_ticks(3, 120, after=last_tick)
    # The source's counters start at its open, by this QEMU: all its reports
    # were for this migration.
    reports = int(dirty_stats(vf_src)["reports"])
    note(
        f"{src.name} ({src.backend}) -> {dst.name} ({dst.backend}): completed; QEMU downtime {info.get('downtime')} ms, total "
        f"{info.get('total-time')} ms (wall {t1 - t0:.1f} s); heartbeat {last_tick} on {src.name}, "
        f"{after[0]} next on {dst.name}; RAM {info.get('ram', {}).get('transferred', 0) // 1024} KiB, "
        f"VFIO device state {info.get('vfio', {}).get('transferred', '?')} B; "
        f"dirty reports served by the driver {reports}"
    )
    logging = src.device_logging
    if logging and reports == 0:
        raise Failure("the driver served no dirty report: QEMU did not use device dirty tracking")
    if not logging:
        note("no device dirty tracking on this kernel: QEMU took every page as dirty (enable-migration=on)")
    if after[0] > last_tick + 60:
        raise Failure(f"heartbeat jumped {last_tick} -> {after[0]}")
    # The guest's ping goes on in the migrated process: its next replies
    # must show on dst, numbered on from the last one src printed.
    last_seq = max(src.seqs(), default=None)
    try:
        dst.wait_seqs(3, 60, after=last_seq if last_seq is not None else -1)
    except Failure:
        pass  # reported by qemu_guest_traffic_continues
    deadline = time.time() + 30
    while time.time() < deadline and host_ping.gap(t0, t1) is None:
        time.sleep(0.5)
    dst.wait_ticks(6, 120, after=last_tick)
    traffic.append({
        "downtime": info.get("downtime") or 0,
        "move": f"{src.name} -> {dst.name}",
        "last": last_seq,
        "first": min([q for q in dst.seqs() if last_seq is None or q > last_seq], default=None),
        "dups": src.console().count("DUP!") + dst.console().count("DUP!"),
        "host": host_ping.gap(t0, t1),
        "tx": (src.tx_counts()[-1:], dst.tx_counts()),
    })
    return info


class FaultInjected:
    """A fault of the driver's (debugfs intel_vf_vfio_pci/NAME) injected
    for the length of a `with` block: no module reload, so the VFs and
    the guest on them stay."""

    DIR = "/sys/kernel/debug/intel_vf_vfio_pci"

    def __init__(self, name):
        self.path = f"{self.DIR}/{name}"

    def set(self, on):
        with open(self.path, "w") as f:
            f.write("Y" if on else "N")

    def __enter__(self):
        if not os.path.isdir(self.DIR):
            sh("mount", "-t", "debugfs", "debugfs", "/sys/kernel/debug", check=False)
        if not os.path.exists(self.path):
            raise Failure(f"no {self.path}: the driver's fault injection needs debugfs")
        self.set(True)
        return self

    def __exit__(self, *exc):
        self.set(False)


def show_capability(vfs):
    """The guest capability on (its default is off), before QEMU opens the VFs."""
    for vf in vfs:
        sh("sh", "-c", f"echo on > /sys/bus/pci/devices/{vf}/guest_capability")


def main():
    guest_dir = sys.argv[1]
    vfs = os.environ["IVF_VFS"].split()
    pf_if = os.environ["IVF_PF_IF"]
    vf0, vf1 = vfs[0], vfs[1]
    os.makedirs(WORK, exist_ok=True)
    global ACCEL
    ACCEL = nested_accel()
    show_capability(vfs)
    arp = ArpWatch(pf_if)
    wire = WireArp(os.environ.get("IVF_WIRE", ""))
    announces = []
    sh("ip", "addr", "add", f"{PF_IP}/24", "dev", pf_if, check=False)
    dmesg_start = len(sh("dmesg").splitlines())

    tests = ["qemu_guest_runs_on_vf0", "qemu_migrates_vf0_to_vf1", "qemu_migrates_back_to_vf0",
             "qemu_guest_traffic_continues", "qemu_guest_capability_seen",
             "qemu_guest_capability_announce_reaches_host",
             "qemu_refused_stream_keeps_source_running", "qemu_host_kernel_log_clean"]
    traffic = []
    host_ping = None
    guest_mac = []
    print("KTAP version 1", flush=True)
    note(f"kernel: {os.uname().release}")
    note(f"machine: {os.uname().machine}")
    note(f"qemu: {sh('qemu-system-x86_64', '--version').splitlines()[0]}")
    note(f"nested guest: {' '.join(ACCEL)}")
    print(f"1..{len(tests)}", flush=True)
    results = []

    def run(i, name, fn):
        ktap_case(i, name, fn, results)

    vms = {}

    def boot():
        vms["a"] = Vm("a", vf0, guest_dir)
        vms["a"].wait_ticks(3, 400)
        deadline = time.time() + 200
        while "guest: eth0 " not in vms["a"].console():
            if time.time() > deadline:
                raise Failure(f"the guest's igbvf did not bring the VF up: {vms['a'].console()[-400:]!r}")
            time.sleep(1)
        up = [l for l in vms["a"].console().splitlines() if l.startswith("guest: eth0 ")]
        note(f"guest booted on {vf0}: {up[0]}")
        # The guest's capability watcher is up before anything moves (it
        # finds the capability, shows it with lspci, then watches): a slow
        # guest must not miss the first move.
        deadline = time.time() + 180
        while "guest: lspci exit" not in vms["a"].console() and "guest: no migration capability" not in vms["a"].console():
            if time.time() > deadline:
                note("the guest's capability watcher did not report within 180 s")
                break
            time.sleep(1)
        guest_mac.append(up[0].split()[2])
        # Traffic both ways before anything moves: the guest's echoes to
        # the PF answered, and the host's echoes to the guest.
        nonlocal host_ping
        host_ping = HostPing()
        vms["a"].wait_seqs(5, 120)
        deadline = time.time() + 60
        while len(host_ping.replies()) < 5:
            if time.time() > deadline:
                raise Failure(f"the guest does not answer the host's ping: {host_ping.text()[-300:]!r}")
            time.sleep(0.5)
        note(f"traffic flows: guest ping replies {len(vms['a'].seqs())}, host ping replies {len(host_ping.replies())}")

    def move(src, dst, vf_src, vf_dst, iommufd=False):
        """Migrates the guest in QEMU `src` to a new QEMU `dst` on vf_dst."""
        if src not in vms:
            raise Failure(f"no guest in QEMU {src}")
        if host_ping is None:
            raise Failure("the guest never booted")
        vms[dst] = Vm(dst, vf_dst, guest_dir, incoming=True, iommufd=iommufd)
        # The destination's console is its own file: any change it shows
        # is after this move.
        before = len(CAP_MOVED.findall(vms[dst].console()))
        # The guest announces only when it sees a new generation: every
        # gratuitous ARP on the wire from here on is this move's.
        wire_before = wire.count()
        one_way(vms[src], vms[dst], f"mig-{src}-{dst}.sock", vf_src, host_ping, traffic)
        switchover = time.time()
        vms[src].stop()
        # The guest saw a new generation in the capability and announced
        # itself: its own gratuitous ARP, seen on the PF. Recorded here,
        # judged in qemu_guest_capability_announce.
        rec = {"move": f"{vf_src} -> {vf_dst}", "moved": None, "seen": None, "arp": None,
               "wire": None, "wire_frames": []}
        deadline = switchover + 90
        while time.time() < deadline and (rec["seen"] is None or rec["wire"] is None):
            moved = CAP_MOVED.findall(vms[dst].console())
            if rec["seen"] is None and len(moved) > before:
                rec["moved"], rec["seen"] = moved[-1], time.time() - switchover
            if rec["arp"] is None and arp.since(switchover):
                rec["arp"] = arp.since(switchover)[0] - switchover
            if rec["wire"] is None and wire.count() > wire_before:
                rec["wire"] = time.time() - switchover
            time.sleep(0.5)
        rec["wire_frames"] = wire.frames()[wire_before:]
        announces.append(rec)
        # The guest's MAC filter moved with it: the PF holds it for the
        # destination VF (replayed from the stream's mailbox log).
        mac = pf_vf_mac(pf_if, vfs.index(vf_dst))
        if mac != guest_mac[0]:
            raise Failure(f"the PF holds {mac} for {vf_dst}, not the guest's {guest_mac[0]}")
        note(f"the PF holds the guest's MAC {mac} for {vf_dst}")

    def there():
        # B takes its VF through iommufd, A and A2 through the legacy
        # group: both of the driver's DMA paths, and a mixed pair of hosts.
        # Debian's kernels have no iommufd (CONFIG_IOMMUFD off): there B
        # takes the group too.
        has_iommufd = os.path.exists("/dev/iommu")
        if not has_iommufd:
            note("no /dev/iommu (this kernel has no iommufd): B takes VF1 through the group too")
        move("a", "b", vf0, vf1, iommufd=has_iommufd)

    def back():
        move("b", "a2", vf1, vf0)

    def traffic_continues():
        # Both pings, five echoes a second each way, across each migration:
        # the guest's replies numbered on with a bounded gap, the host's
        # replies back within the bound, no payload corrupted, none twice.
        if not traffic:
            raise Failure("no migration happened")
        problems = []
        for t in traffic:
            last, first, host = t["last"], t["first"], t["host"]
            # Echoes sent while QEMU had the guest stopped are lost by
            # definition: the bound is 10 s of traffic beyond QEMU's downtime.
            bound = MAX_LOST + int(t["downtime"] / (PING_INTERVAL * 1000))
            if last is None or first is None:
                problems.append(f"{t['move']}: no guest ping replies on the {'source' if last is None else 'destination'}")
            else:
                lost = first - last - 1
                note(f"{t['move']}: guest -> PF ping: last seq {last} before, first {first} after: "
                     f"{lost} echoes lost, gap {(lost + 1) * PING_INTERVAL * 1000:.0f} ms")
                if lost > bound:
                    problems.append(f"{t['move']}: guest ping lost {lost} echoes (bound {bound})")
            if host is None:
                problems.append(f"{t['move']}: the host's ping got no reply after the migration")
            else:
                secs, lost, replies_after = host
                note(f"{t['move']}: host -> guest ping: longest silence {secs * 1000:.0f} ms, "
                     f"{lost} echoes lost; {replies_after} replies after completion")
                if lost > bound:
                    problems.append(f"{t['move']}: host ping lost {lost} echoes (bound {bound})")
            before, after = t["tx"]
            if len(after) < 2 or after[-1] <= after[0]:
                problems.append(f"{t['move']}: the guest's TX completions stopped on the destination "
                                f"(tx_packets {after[:1]} .. {after[-1:]}): a TX interrupt was lost")
            else:
                note(f"{t['move']}: the guest's TX completions go on: tx_packets "
                     f"{before[0] if before else '?'} at the source's last heartbeat, "
                     f"{after[0]} -> {after[-1]} over the destination's first {len(after)} heartbeats")
            if t["dups"]:
                problems.append(f"{t['move']}: the guest saw {t['dups']} duplicate replies")
        bad = host_ping.bad_lines() if host_ping else []
        note(f"host ping: {len(host_ping.replies()) if host_ping else 0} replies, "
             f"{len(bad)} corrupt or duplicate")
        if bad:
            problems.append("host ping: " + " | ".join(bad[:3]))
        if problems:
            raise Failure("; ".join(problems))
        if os.environ.get("IVF_QEMU_DEBUG"):
            print(sh(os.environ["IVF_QEMU_DEBUG"]), flush=True)
            for vm in vms.values():
                print(f"# console of {vm.name}:", flush=True)
                print("\n".join(l for l in vm.console().splitlines() if "seq=" not in l and "tick" not in l)[-6000:], flush=True)
        try:
            ping_guest()
        except Failure as e:
            live = max(vms.values(), key=lambda vm: vm.proc.poll() is None)
            raise Failure(f"{e}; host ping tail {host_ping.text()[-300:]!r}; guest console tail "
                          f"{live.console()[-300:]!r}; PF: {sh('ip', '-s', 'link', 'show', pf_if)[-900:]!r}")
        neigh = sh("ip", "neigh", "show", GUEST_IP)
        if guest_mac and guest_mac[0] not in neigh:
            raise Failure(f"{GUEST_IP} answers from another MAC: {neigh.strip()}")
        note(f"after both moves {GUEST_IP} answers from {guest_mac[0] if guest_mac else '?'}")

    def capability_seen():
        # The nested guest found the capability (by walking its VF's
        # capability list; lspci -vvv shows it too) and saw its generation
        # change after each move.
        if not announces:
            raise Failure("no migration happened")
        # The guest's whole console, whichever QEMU it ran in.
        console = "".join(vms[n].console() for n in ("a", "b", "a2") if n in vms)
        seen = CAP_SEEN.findall(console)
        if not seen:
            lines = [l for l in console.splitlines()
                     if l.startswith("guest:") and " tick " not in l and "seq=" not in l]
            raise Failure(f"the guest did not find the capability at boot; its console: {lines[-12:]}; "
                          f"{vf0} guest_capability {open(f'/sys/bus/pci/devices/{vf0}/guest_capability').read().strip()}")
        note(f"capability_seen: the guest found it at {seen[0][0]}, generation {seen[0][1]}")
        lspci = [l for l in console.splitlines() if l.startswith("guest: lspci")]
        note(f"capability_seen: lspci -vvv in the guest: {' / '.join(l[7:].strip() for l in lspci)}")
        problems = []
        if not any("Vendor Specific" in l and f"[{seen[0][0][2:]}]" in l for l in lspci):
            problems.append(f"lspci -vvv in the guest does not show the capability at {seen[0][0]}: {lspci}")
        for r in announces:
            if r["seen"] is None:
                problems.append(f"{r['move']}: the guest saw no new generation within 90 s")
            else:
                note(f"capability_seen: {r['move']}: generation {r['moved'][0]} -> {r['moved'][1]} "
                     f"seen {r['seen']:.1f} s after the switchover")
        if problems:
            raise Failure("; ".join(problems))

    def capability_announce():
        # On each new generation the guest sends gratuitous ARP (arping -U)
        # with its own MAC and address: it must be on the wire (the outer
        # QEMU's capture of the NIC), once per move at least, and only from
        # the guest's MAC.
        if not announces:
            raise Failure("no migration happened")
        if not os.environ.get("IVF_WIRE"):
            raise Failure("no wire capture (IVF_WIRE unset: run this under tools/vm/run)")
        problems = []
        for r in announces:
            frames = r["wire_frames"]
            if r["wire"] is None or not frames:
                said = [l for v in vms.values() for l in v.console().splitlines() if "guest: announced" in l]
                problems.append(f"{r['move']}: no gratuitous ARP for {GUEST_IP} on the wire within 90 s "
                                f"({wire.count()} on the wire in all, {arp.frames} ARP frames on the PF; "
                                f"the guest: {said[-2:]})")
                continue
            macs = sorted({m for m, _ in frames})
            if guest_mac and macs != [guest_mac[0]]:
                problems.append(f"{r['move']}: gratuitous ARP for {GUEST_IP} from {macs}, not only the guest's "
                                f"{guest_mac[0]}")
            note(f"capability_announce: {r['move']}: {len(frames)} gratuitous ARP for {GUEST_IP} from "
                 f"{', '.join(macs)} on the wire, the first noticed {r['wire']:.1f} s after the switchover "
                 f"(the guest saw the new generation {r['seen'] if r['seen'] is None else round(r['seen'], 1)} s "
                 f"after; on the test VM's PF: {'none' if r['arp'] is None else 'yes'})")
        if problems:
            raise Failure("; ".join(problems))

    def refused():
        src = vms.get("a2")
        if src is None:
            raise Failure("no guest on VF0")
        # The guest on VF0 moves to VF1 while the source's driver writes
        # the next major version: the destination's driver refuses the
        # stream at its first frame, while the source still sends.
        vms["d"] = Vm("d", vf1, guest_dir, incoming=True)
        log_from = len(sh("dmesg").splitlines())
        with FaultInjected("fault_inject_future_stream"):
            info = migrate(src, vms["d"], "mig-a2-d.sock")
        if info.get("status") != "failed":
            raise Failure(f"migration to a refusing destination ended {info.get('status')}")
        # Failed for the reason injected: the destination's driver refused
        # the stream's major version, and said so.
        refusal = [l for l in sh("dmesg").splitlines()[log_from:] if "stream refused" in l]
        if not any("format major" in l for l in refusal):
            raise Failure(f"no refusal of the stream's major version in the kernel log: {refusal}")
        note(f"destination driver: {refusal[0].split('] ', 1)[-1]}")
        said = [l for l in vms["d"].qemu_log().splitlines() if "error" in l.lower()]
        note(f"destination QEMU: {said[-1] if said else '(nothing)'}")
        wait_running(src)
        last = max(src.ticks())
        more = src.wait_ticks(3, 120, after=last)
        # Its VF goes on too: ping replies numbered after the failure.
        last_seq = max(src.seqs(), default=-1)
        seqs = src.wait_seqs(3, 60, after=last_seq)
        note(f"refused: QEMU says {info.get('error-desc', '')!r}; the guest kept running on the source "
             f"(heartbeat {last} -> {more[-1]}, ping seq {last_seq} -> {seqs[-1]})")
        vms["d"].stop()

    def log_clean():
        lines = sh("dmesg").splitlines()[dmesg_start:]
        bad = kernel_complaints(lines)
        if bad:
            raise Failure("kernel log: " + " | ".join(bad[:5]))

    try:
        run(1, tests[0], boot)
        run(2, tests[1], there)
        run(3, tests[2], back)
        run(4, tests[3], traffic_continues)
        run(5, tests[4], capability_seen)
        run(6, tests[5], capability_announce)
        run(7, tests[6], refused)
        run(8, tests[7], log_clean)
    finally:
        for vm in vms.values():
            vm.stop()
        if host_ping is not None:
            host_ping.stop()
        arp.stop()
    passed = sum(results)
    print(f"# Totals: pass:{passed} fail:{len(results) - passed} xfail:0 xpass:0 skip:0 error:0")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
