#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""libvirt live-migrates a nested guest that owns a VF from host A to host B
and back (issue 29), on the two-host bed (tools/vm/run --hosts 2 --no-bind).

libvirt 11.3 and QEMU 10.0 come from the libvirt root (tools/libvirt/root),
in which each host runs libvirtd chrooted (samples/libvirt/lv-host). The
module is installed there as a user installs it (updates/ + depmod), not
loaded, and no VF is bound: libvirt binds each VF itself, by the module's
vfio_pci: alias. The nested guest (tools/guest) runs as a transient domain,
first with <hostdev mode='subsystem' type='pci' managed='yes'>, then with
<interface type='hostdev' managed='yes'> carrying a MAC and VLAN 100 (what
Nova writes for an SR-IOV port). Each form: virsh create on A's VF0,
virsh migrate --live --p2p --xml to B's VF1, then back to A's VF1; virsh
destroy. Runs on host A and drives B's libvirtd over the wire (qemu+tcp) and
B itself through its agent. KTAP on stdout; every test name starts with
libvirt_.

Usage (in host A): two_hosts_libvirt.py GUEST_DIR LIBVIRT_ROOT [VFMIG]
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "qemu"))
import qemu_migration as qm  # noqa: E402
import two_hosts as th  # noqa: E402
from qemu_migration import Failure, note, sh  # noqa: E402

LV_HOST = os.path.join(here, "lv-host")
DRIVER = "intel_vf_vfio_pci"
DOMAIN = "ivf-lv"
A_IP, B_IP = th.A_IP, "10.99.0.3"
GUEST_IP = qm.GUEST_IP
# The interface form: the guest's MAC and VLAN, set by libvirt at the PF;
# its subnet is VLAN 100's, which each host reaches through a VF of its own
# in that VLAN (the test kernel has no 802.1Q devices).
LV_MAC = "52:54:00:6d:90:02"
VLAN = 100
V_GUEST, V_A, V_B = "10.99.100.2", "10.99.100.1", "10.99.100.3"
WORK = qm.WORK
SERIAL = f"{WORK}/lv-guest.serial"
MIGRATE_TIMEOUT = 900
# Inside the chroot too (it shares the VM's /tmp): the nested guest, vfmig.
GUEST_DIR = f"{WORK}/lv-guest"
VFMIG = f"{WORK}/vfmig"


def bdf_parts(bdf):
    dom, bus, rest = bdf.split(":")
    slot, fn = rest.split(".")
    return {"domain": f"0x{dom}", "bus": f"0x{bus}", "slot": f"0x{slot}", "function": f"0x{fn}"}


class LvHost:
    """One host's libvirt, as the test uses it (A here, B through its agent)."""

    def __init__(self, host, addr):
        self.host, self.addr = host, addr
        self.uri = f"qemu+tcp://{addr}/system"

    @property
    def name(self):
        return self.host.name

    def sh(self, *argv, check=True, timeout=120):
        if self.host.peer is None:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
            if check and r.returncode != 0:
                raise Failure(f"host a: {' '.join(argv)}: exit {r.returncode}: {(r.stderr or r.stdout).strip()[-600:]}")
            return r.stdout
        r = self.host.peer.call("sh", argv=list(argv), timeout=timeout)
        if check and r["rc"] != 0:
            raise Failure(f"host b: {' '.join(argv)}: exit {r['rc']}: {(r['err'] or r['out']).strip()[-600:]}")
        return r["out"]

    def virsh(self, *args, check=True, timeout=120):
        """virsh on host A, connected to this host's libvirtd."""
        argv = [LV_HOST, "run", "virsh", "-c", self.uri, *args]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise Failure(f"virsh -c {self.uri} {' '.join(args)}: exit {r.returncode}: "
                          f"{(r.stderr or r.stdout).strip()[-800:]}")
        return r.stdout

    def driver(self, vf):
        link = self.sh("readlink", f"/sys/bus/pci/devices/{vf}/driver", check=False).strip()
        return os.path.basename(link) if link else None

    def vf_state(self, vf):
        """What libvirt must give back: the VF's driver, driver_override,
        and the MAC and VLAN its PF holds for it."""
        idx = self.host.vfs.index(vf)
        out = self.sh("ip", "link", "show", self.host.pf_if)
        m = re.search(rf"^\s*vf {idx}\s+link/ether ([0-9a-f:]+)(.*)$", out, re.M)
        vlan = re.search(r"vlan (\d+)", m.group(2)).group(1) if m and "vlan" in m.group(2) else "0"
        return {"driver": self.driver(vf),
                "driver_override": self.host.read(f"/sys/bus/pci/devices/{vf}/driver_override").strip(),
                "mac": m.group(1) if m else None, "vlan": vlan}

    def vf_vlan(self, vf):
        return self.vf_state(vf)["vlan"]

    def migration_times(self, vf):
        t = self.host.read(f"/sys/bus/pci/devices/{vf}/migration_times").split()
        return dict(zip(t[::2], t[1::2]))

    def log_tail(self, n=25):
        return "\n".join(self.host.read("/tmp/lv/log/libvirtd.log").splitlines()[-n:])


def domain_xml(form, vf, guest_dir, kvm):
    """The nested guest as a transient domain with the VF in `form`."""
    if form == "hostdev":
        ip, peer, peer2 = GUEST_IP, A_IP, B_IP
    else:
        ip, peer, peer2 = V_GUEST, V_A, V_B
    addr = " ".join(f"{k}='{v}'" for k, v in bdf_parts(vf).items())
    if form == "hostdev":
        dev = f"""<hostdev mode='subsystem' type='pci' managed='yes'>
      <source><address {addr}/></source>
    </hostdev>"""
    else:
        dev = f"""<interface type='hostdev' managed='yes'>
      <mac address='{LV_MAC}'/>
      <vlan><tag id='{VLAN}'/></vlan>
      <source><address type='pci' {addr}/></source>
    </interface>"""
    cpu = "<cpu mode='host-passthrough'/>" if kvm else ""
    return f"""<domain type='{"kvm" if kvm else "qemu"}'>
  <name>{DOMAIN}</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>{guest_dir}/bzImage</kernel>
    <initrd>{guest_dir}/initramfs.cpio.gz</initrd>
    <cmdline>console=ttyS0 quiet ivf.ip={ip}/24 ivf.peer={peer} ivf.peer2={peer2} ivf.interval={qm.PING_INTERVAL}</cmdline>
  </os>
  {cpu}
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <controller type='usb' model='none'/>
    <serial type='file'>
      <source path='{SERIAL}' append='on'/>
      <target port='0'/>
    </serial>
    {dev}
    <memballoon model='none'/>
  </devices>
</domain>
"""


def retarget(xml_text, vf):
    """The migratable XML with the VF's source address changed to `vf`."""
    root = ET.fromstring(xml_text)
    found = 0
    for dev in list(root.iter("hostdev")) + [i for i in root.iter("interface") if i.get("type") == "hostdev"]:
        a = dev.find("source/address")
        if a is not None:
            for k, v in bdf_parts(vf).items():
                a.set(k, v)
            found += 1
    if found != 1:
        raise Failure(f"the domain XML has {found} VF sources, not 1")
    return ET.tostring(root, encoding="unicode")


class Ping:
    """ping -D of `ip` from a host (optionally from an interface)."""

    def __init__(self, host, ip, name, iface=None):
        self.host, self.ip, self.name = host, ip, name
        self.log = f"{WORK}/lv-ping-{name}.log"
        argv = ["ping", "-D", "-i", str(qm.PING_INTERVAL), "-W", "2", *(["-I", iface] if iface else []), ip]
        self.re = re.compile(r"^\[(\d+\.\d+)\] \d+ bytes from " + re.escape(ip) + r": icmp_seq=(\d+) ")
        if host.peer is None:
            self.out = open(self.log, "w")
            self.proc = subprocess.Popen(argv, stdout=self.out, stderr=subprocess.STDOUT)
        else:
            host.sh("mkdir", "-p", WORK)
            host.peer.call("spawn", name=f"ping-{name}", argv=argv, log=self.log)

    def replies(self):
        return [(float(m.group(1)), int(m.group(2))) for m in map(self.re.match, self.host.read(self.log).splitlines()) if m]

    def bad(self):
        return [l for l in self.host.read(self.log).splitlines() if "wrong data byte" in l or "DUP!" in l]

    def stop(self):
        if self.host.peer is None:
            self.proc.terminate()
            self.proc.wait()
            self.out.close()
        else:
            self.host.peer.call("kill", name=f"ping-{self.name}")


def main():
    guest_dir, lvroot = os.path.abspath(sys.argv[1]), sys.argv[2]
    vfmig = sys.argv[3] if len(sys.argv) > 3 else None
    os.makedirs(WORK, exist_ok=True)
    forms = ["hostdev", "interface"]
    steps = ["guest_runs_on_a", "migrates_a_to_b", "migrates_b_to_a", "traffic_continues", "vfs_given_back"]
    tests = ["libvirt_hosts_ready"] + [f"libvirt_{f}_{s}" for f in forms for s in steps] + ["libvirt_kernel_logs_clean"]
    print("KTAP version 1", flush=True)
    note(f"kernel: {os.uname().release}")
    note(f"machine: {os.uname().machine}")
    print(f"1..{len(tests)}", flush=True)
    results = []
    st = {"moves": {f: [] for f in forms}, "pings": {}, "found": {}}
    a = th.Host("a")
    hosts = {}

    def run(name, fn):
        qm.ktap_case(len(results) + 1, name, fn, results)

    def lv(name):
        if name not in hosts:
            raise Failure("the hosts were never set up")
        return hosts[name]

    def ready():
        sh("ip", "addr", "add", f"{A_IP}/24", "dev", a.pf_if, check=False)
        peer = th.Peer(os.environ["IVF_PEER"])
        peer.sock.settimeout(MIGRATE_TIMEOUT + 60)
        b = th.Host("b", peer)
        st["peer"] = peer
        hosts["a"], hosts["b"] = LvHost(a, A_IP), LvHost(b, B_IP)
        note(f"host A: PF {a.pf} ({a.pf_if}), VFs {' '.join(a.vfs)}; host B: PF {b.pf} ({b.pf_if}), VFs {' '.join(b.vfs)}")
        st["dmesg_a"], st["dmesg_b"] = len(a.dmesg()), len(b.dmesg())
        for h in hosts.values():
            out = h.sh(LV_HOST, "setup", h.name, h.addr, lvroot, timeout=300)
            note(out.strip())
            loaded = h.sh("sh", "-c", f"test -d /sys/module/{DRIVER} && echo loaded || echo not loaded").strip()
            drivers = {vf: h.driver(vf) for vf in h.host.vfs}
            note(f"host {h.name}: {DRIVER} {loaded}; VF drivers before libvirt: {drivers}")
            if loaded == "loaded" or any(drivers.values()):
                raise Failure(f"host {h.name}: the module must not be loaded nor any VF bound before libvirt runs")
        hosts["b"].sh("mkdir", "-p", WORK)
        a_log = open(f"{WORK}/libvirtd-a.out", "w")
        st["libvirtd_a"] = subprocess.Popen([LV_HOST, "libvirtd"], stdout=a_log, stderr=subprocess.STDOUT)
        st["peer"].call("spawn", name="libvirtd", argv=[LV_HOST, "libvirtd"], log=f"{WORK}/libvirtd-b.out")
        # The first answer waits for libvirt's probe of QEMU's capabilities
        # (both emulators of qemu-system-x86, under TCG: minutes).
        for h in hosts.values():
            deadline = time.time() + 900
            while True:
                r = subprocess.run([LV_HOST, "run", "virsh", "-c", h.uri, "version"], capture_output=True, text=True)
                if r.returncode == 0:
                    break
                if time.time() > deadline:
                    raise Failure(f"host {h.name}'s libvirtd does not answer at {h.uri}: {r.stderr.strip()}; "
                                  f"{h.host.read(f'{WORK}/libvirtd-{h.name}.out')[-500:]}")
                time.sleep(2)
            ver = [l.strip() for l in r.stdout.splitlines() if "hypervisor" in l.lower() or "library" in l.lower()]
            note(f"host {h.name}: libvirtd answers at {h.uri}: {'; '.join(ver)}")
            for vf in h.host.vfs:
                st["found"][(h.name, vf)] = h.vf_state(vf)
        # What the chroot needs of the clone, in the /tmp it shares.
        for h in hosts.values():
            h.sh("mkdir", "-p", GUEST_DIR)
            h.sh("cp", f"{guest_dir}/bzImage", f"{guest_dir}/initramfs.cpio.gz", GUEST_DIR)
            if vfmig:
                h.sh("cp", vfmig, VFMIG)
        # The user's host check, inside the libvirt root (its libvirt and QEMU).
        if vfmig:
            for h in hosts.values():
                out = h.sh(LV_HOST, "run", VFMIG, "doctor", check=False)
                for l in out.splitlines():
                    note(f"host {h.name}: doctor: {l}")
                alias = [l for l in out.splitlines() if "modules.alias" in l]
                if not alias or not alias[0].startswith("ok"):
                    raise Failure(f"host {h.name}: vfmig doctor does not find the module's aliases: {alias}")
        # The interface form's VLAN 100 endpoints: a spare VF on each host,
        # put in VLAN 100 by its PF and bound to igbvf.
        kvm = "kvm" in qm.nested_accel()
        st["kvm"] = kvm
        note(f"nested guest: {'KVM (domain type kvm)' if kvm else 'TCG (domain type qemu)'}")
        for h, vf, ip in ((hosts["a"], a.vfs[-1], V_A), (hosts["b"], b.vfs[-1], V_B)):
            idx = h.host.vfs.index(vf)
            try:
                h.sh("modprobe", "igbvf")
                h.sh("ip", "link", "set", h.host.pf_if, "vf", str(idx), "vlan", str(VLAN))
                h.sh("sh", "-c", f"echo igbvf > /sys/bus/pci/devices/{vf}/driver_override; "
                     f"echo {vf} > /sys/bus/pci/drivers_probe")
                net = h.sh("ls", f"/sys/bus/pci/devices/{vf}/net").split()[0]
                h.sh("ip", "link", "set", net, "up")
                h.sh("ip", "addr", "add", f"{ip}/24", "dev", net)
                st[f"vlan_if_{h.name}"] = net
                note(f"host {h.name}: VF {vf} ({net}) in VLAN {VLAN} at {ip}: the interface form's endpoint")
            except Failure as e:
                note(f"host {h.name}: no VLAN {VLAN} endpoint ({e}); the interface form's host pings are left out")

    def wait_guest(h, after_tick=-1, timeout=300):
        deadline = time.time() + timeout
        while True:
            text = h.host.read(SERIAL)
            ticks = [int(t) for t in qm.TICK.findall(text)]
            if len([t for t in ticks if t > after_tick]) >= 3:
                return text, ticks
            if time.time() > deadline:
                raise Failure(f"no heartbeat from the guest on host {h.name} within {timeout} s: {text[-300:]!r}; "
                              f"QEMU log: {h.host.read(f'/tmp/lv/log/qemu/{DOMAIN}.log')[-600:]!r}")
            time.sleep(1)

    def check_driver(h, vf, want, when):
        got = h.driver(vf)
        note(f"{when}: host {h.name} VF {vf}: driver {got}")
        if got != want:
            raise Failure(f"{when}: host {h.name} VF {vf} is on {got}, not {want}")

    def pings_for(form):
        if form == "hostdev":
            return [Ping(a, GUEST_IP, f"{form}-a"), Ping(lv("b").host, GUEST_IP, f"{form}-b")]
        out = []
        for h in ("a", "b"):
            if f"vlan_if_{h}" in st:
                out.append(Ping(lv(h).host, V_GUEST, f"{form}-{h}", iface=st[f"vlan_if_{h}"]))
        return out

    def create(form):
        ha = lv("a")
        vf = a.vfs[0]
        # A console of its own on each host: nothing an earlier guest wrote.
        for h in hosts.values():
            h.sh("mkdir", "-p", WORK)
            h.sh("rm", "-f", SERIAL)
        path = f"{WORK}/{DOMAIN}-{form}.xml"
        with open(path, "w") as f:
            f.write(domain_xml(form, vf, GUEST_DIR, st["kvm"]))
        t0 = time.time()
        ha.virsh("create", path)
        note(f"{form}: virsh create on host a's {vf} returned in {time.time() - t0:.1f} s")
        check_driver(ha, vf, DRIVER, f"{form}: after virsh create")
        text, _ = wait_guest(ha)
        deadline = time.time() + 200
        while "guest: eth0 " not in text:
            if time.time() > deadline:
                raise Failure(f"the guest's igbvf did not bring the VF up: {text[-400:]!r}")
            time.sleep(1)
            text = ha.host.read(SERIAL)
        mac = [l for l in text.splitlines() if l.startswith("guest: eth0 ")][-1].split()[2]
        st[f"mac_{form}"] = mac
        note(f"{form}: guest {mac} up on host a's {vf}")
        if form == "interface":
            s = ha.vf_state(vf)
            note(f"{form}: host a's PF holds MAC {s['mac']} VLAN {s['vlan']} for {vf}")
            if mac != LV_MAC or s["mac"] != LV_MAC or s["vlan"] != str(VLAN):
                raise Failure(f"the guest has {mac}, its PF {s['mac']} VLAN {s['vlan']}: libvirt should have set "
                              f"{LV_MAC} VLAN {VLAN}")
        st["pings"][form] = pings = pings_for(form)
        deadline = time.time() + 120
        while pings and min(len(p.replies()) for p in pings) < 3:
            if time.time() > deadline:
                raise Failure("pings of the guest: " + ", ".join(f"{p.name} {len(p.replies())} replies" for p in pings))
            time.sleep(0.5)
        note(f"{form}: " + ", ".join(f"{p.name}: {len(p.replies())} replies" for p in pings) if pings else
             f"{form}: no host pings (no VLAN endpoints)")

    def move(form, src, dst, vf_src, vf_dst):
        hs, hd = lv(src), lv(dst)
        if not st.get(f"mac_{form}"):
            raise Failure("no guest to move")
        _, ticks = wait_guest(hs, timeout=120)
        last = max(ticks)
        xml = retarget(hs.virsh("dumpxml", "--migratable", DOMAIN), vf_dst)
        fd, path = tempfile.mkstemp(prefix=f"lv-{form}-{dst}-", suffix=".xml", dir=WORK)
        with os.fdopen(fd, "w") as f:
            f.write(xml)
        if dst == "b":
            hd.sh("mkdir", "-p", WORK)
        # The source VF's migration_times, read while the migration runs:
        # at its end libvirt unbinds the VF from the module, and the
        # attribute goes with it.
        seen = {}
        done = threading.Event()

        def poll_source():
            while not done.is_set():
                try:
                    t = hs.migration_times(vf_src)
                except Exception:  # noqa: BLE001 - the VF may be gone meanwhile
                    t = {}
                if t:
                    seen.update(t)
                done.wait(1.0)

        poller = threading.Thread(target=poll_source, daemon=True)
        poller.start()
        t0 = time.time()
        try:
            hs.virsh("migrate", "--live", "--p2p", "--xml", path, DOMAIN, hd.uri, timeout=MIGRATE_TIMEOUT)
        finally:
            done.set()
            poller.join(5)
        switchover = time.time()
        move = f"{form}: {src}:{vf_src} -> {dst}:{vf_dst}"
        note(f"{move}: virsh migrate --live --p2p --xml returned after {switchover - t0:.1f} s")
        last = max([int(t) for t in qm.TICK.findall(hs.host.read(SERIAL))] or [last])
        info = hd.virsh("domjobinfo", "--completed", DOMAIN, check=False)
        figures = {k.strip(): " ".join(v.split()) for k, v in (l.split(":", 1) for l in info.splitlines() if ":" in l)}
        note(f"{move}: virsh domjobinfo --completed on {dst}: " + "; ".join(f"{k} {v}" for k, v in figures.items()))
        src_t, dst_t = seen, hd.migration_times(vf_dst)
        note(f"{move}: the driver's steps (us): source quiesce {src_t.get('quiesce_us')} save {src_t.get('save_us')}; "
             f"destination load {dst_t.get('load_us')} (PF replay {dst_t.get('replay_us')}) resume {dst_t.get('resume_us')}")
        st["moves"][form].append({"move": move, "switchover": switchover, "figures": figures,
                                  "src": src, "dst": dst, "vf_src": vf_src, "vf_dst": vf_dst})
        check_driver(hd, vf_dst, DRIVER, f"{move}: after the migration")
        # The source's libvirt gave its VF back: as it found it.
        found = st["found"][(src, vf_src)]
        got = hs.vf_state(vf_src)
        note(f"{move}: source VF {vf_src} now {got} (found {found})")
        if got["driver"] != found["driver"]:
            raise Failure(f"{move}: the source VF is on {got['driver']}, libvirt found it on {found['driver']}")
        after = wait_guest(hd, after_tick=last, timeout=180)[1]
        note(f"{move}: heartbeat {last} on {src}, {min(t for t in after if t > last)} next on {dst}")
        # The destination's PF holds the guest's MAC (and VLAN) for its VF.
        s = hd.vf_state(vf_dst)
        want_mac = st[f"mac_{form}"]
        note(f"{move}: host {dst}'s PF holds MAC {s['mac']} VLAN {s['vlan']} for {vf_dst}")
        if s["mac"] != want_mac or (form == "interface" and s["vlan"] != str(VLAN)):
            raise Failure(f"{move}: host {dst}'s PF holds {s['mac']} VLAN {s['vlan']} for {vf_dst}, "
                          f"not the guest's {want_mac}{f' VLAN {VLAN}' if form == 'interface' else ''}")

    def traffic(form):
        moves, pings = st["moves"][form], st["pings"].get(form, [])
        if len(moves) < 2:
            raise Failure("the guest did not make both moves")
        problems = []
        offset = st["peer"].clock_offset()
        for p in pings:
            shift = offset if p.host.peer is not None else 0.0
            replies = [(t - shift, q) for t, q in p.replies()]
            for m in moves:
                first = min((t for t, _ in replies if t > m["switchover"]), default=None)
                if first is None:
                    problems.append(f"{m['move']}: {p.name} got no reply after the migration")
                else:
                    note(f"{m['move']}: {p.name} reaches the guest {max(first - m['switchover'], 0):.1f} s after")
            bad = p.bad()
            note(f"{form}: {p.name}: {len(replies)} replies, {len(bad)} corrupt or duplicate")
            if bad:
                problems.append(f"{p.name}: {bad[:3]}")
        if form == "interface":
            # On the wire: the guest's frames carry its MAC and VLAN 100
            # after each move (the outer QEMU's capture of A's NIC, which
            # both hosts' traffic crosses).
            frames = wire_frames(os.environ.get("IVF_WIRE", ""), LV_MAC)
            tags = sorted({t for t, _ in frames}, key=str)
            note(f"{form}: on the wire, {len(frames)} frames from {LV_MAC}, VLAN tags {tags}")
            if not frames or tags != [VLAN]:
                problems.append(f"frames from {LV_MAC} on the wire carry VLAN tags {tags}, not only {VLAN}")
        if problems:
            raise Failure("; ".join(problems))

    # What libvirt must give back: the VF's binding always; the MAC and VLAN
    # it set at the PF for the interface form (for a plain hostdev they are
    # the PF administrator's, and the guest's MAC follows it by the stream).
    given_keys = {"hostdev": ("driver", "driver_override"),
                  "interface": ("driver", "driver_override", "mac", "vlan")}

    def given_back(form):
        ha = lv("a")
        for p in st["pings"].pop(form, []):
            p.stop()
        ha.virsh("destroy", DOMAIN)
        time.sleep(2)
        problems = []
        used = {(m["src"], m["vf_src"]) for m in st["moves"][form]} | {(m["dst"], m["vf_dst"]) for m in st["moves"][form]}
        used.add(("a", a.vfs[0]))
        for name, vf in sorted(used):
            state = lv(name).vf_state(vf)
            found = {k: st["found"][(name, vf)][k] for k in given_keys[form]}
            got = {k: state[k] for k in given_keys[form]}
            note(f"{form}: after destroy, host {name} VF {vf}: {state} (found {st['found'][(name, vf)]})")
            if got != found:
                problems.append(f"host {name} VF {vf}: {got}, found {found}")
        if problems:
            raise Failure("libvirt did not give back: " + "; ".join(problems))

    def logs_clean():
        bad = []
        for name, start in (("a", st.get("dmesg_a", 0)), ("b", st.get("dmesg_b", 0))):
            if name in hosts:
                bad += [f"host {name}: {l}" for l in qm.kernel_complaints(lv(name).host.dmesg()[start:])]
        if bad:
            raise Failure(" | ".join(bad[:5]))

    try:
        run(tests[0], ready)
        for form in forms:
            run(f"libvirt_{form}_guest_runs_on_a", lambda: create(form))
            run(f"libvirt_{form}_migrates_a_to_b", lambda: move(form, "a", "b", a.vfs[0], lv("b").host.vfs[1]))
            run(f"libvirt_{form}_migrates_b_to_a", lambda: move(form, "b", "a", lv("b").host.vfs[1], a.vfs[1]))
            run(f"libvirt_{form}_traffic_continues", lambda: traffic(form))
            run(f"libvirt_{form}_vfs_given_back", lambda: given_back(form))
            # Whatever failed, no domain is left for the next form.
            for h in hosts.values():
                h.virsh("destroy", DOMAIN, check=False)
        run(tests[-1], logs_clean)
    finally:
        for pings in st["pings"].values():
            for p in pings:
                try:
                    p.stop()
                except Exception:  # noqa: BLE001 - best effort at the end
                    pass
        failed = not all(results)
        for h in hosts.values():
            try:
                h.virsh("destroy", DOMAIN, check=False)
            except Exception:  # noqa: BLE001
                pass
            if failed:
                try:
                    print(f"# host {h.name}: libvirtd.log tail:\n" +
                          "\n".join(f"#   {l}" for l in h.log_tail(40).splitlines()), flush=True)
                except Exception:  # noqa: BLE001
                    pass
        if "libvirtd_a" in st:
            st["libvirtd_a"].terminate()
        if "peer" in st:
            try:
                st["peer"].call("kill", name="libvirtd")
                st["peer"].call("quit")
            except Failure:
                pass
    passed = sum(results)
    print(f"# Totals: pass:{passed} fail:{len(results) - passed} xfail:0 xpass:0 skip:0 error:0")
    return 0 if all(results) else 1


def wire_frames(path, mac):
    """(VLAN tag or None, EtherType) of every frame from `mac` in the pcap."""
    want = bytes.fromhex(mac.replace(":", ""))
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return []
    out, off = [], 24
    while off + 16 <= len(data):
        caplen = int.from_bytes(data[off + 8:off + 12], "little")
        fr = data[off + 16:off + 16 + caplen]
        off += 16 + caplen
        if len(fr) < 14 or fr[6:12] != want:
            continue
        et = int.from_bytes(fr[12:14], "big")
        if et == 0x8100 and len(fr) >= 18:
            out.append((int.from_bytes(fr[14:16], "big") & 0xFFF, int.from_bytes(fr[16:18], "big")))
        else:
            out.append((None, et))
    return out


if __name__ == "__main__":
    sys.exit(main())
