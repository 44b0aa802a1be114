// SPDX-License-Identifier: GPL-2.0

//! `vfmig doctor` on fake host trees (the hidden `--root DIR`): a healthy
//! host, the libvirt trap (a VF on vfio-pci, the module not in
//! modules.alias), a kernel without DMA logging, and the JSON.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

const RELEASE: &str = "7.3.4-test";
const VF: &str = "0000:01:10.0";

/// A directory of its own, removed on drop.
struct Tree(PathBuf);

impl Tree {
    fn new() -> Tree {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "vfmig-doctor-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        Tree(p)
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.0.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, text).unwrap();
    }

    fn dir(&self, rel: &str) {
        fs::create_dir_all(self.0.join(rel)).unwrap();
    }

    fn link(&self, rel: &str, to: &str) {
        let p = self.0.join(rel);
        let _ = fs::remove_file(&p);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        symlink(to, p).unwrap();
    }

    /// A program under the tree that prints `line` for `--version`.
    fn program(&self, rel: &str, line: &str) {
        self.write(rel, &format!("#!/bin/sh\necho '{line}'\n"));
        fs::set_permissions(self.0.join(rel), fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn modules_alias(&self, text: &str) {
        self.write(&format!("lib/modules/{RELEASE}/modules.alias"), text);
    }

    /// The VF bound to `driver`, with the attributes that driver gives it.
    fn bind_vf(&self, driver: &str) {
        let dev = format!("sys/bus/pci/devices/{VF}");
        self.dir(&format!("sys/bus/pci/drivers/{driver}"));
        self.link(
            &format!("{dev}/driver"),
            &format!("../../../../bus/pci/drivers/{driver}"),
        );
        if driver == "intel_vf_vfio_pci" {
            self.write(&format!("{dev}/dirty_tracking"), "device\n");
        } else {
            let _ = fs::remove_file(self.0.join(format!("{dev}/dirty_tracking")));
        }
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Every alias line the module's ID table gives (modinfo's, as depmod
/// writes them), plus vfio-pci's own catch-all and a PF driver's.
fn full_aliases() -> String {
    let mut text = String::from(
        "# Aliases extracted from modules themselves.\n\
         alias pci:v00008086d000010CAsv*sd*bc*sc*i* igbvf\n\
         alias vfio_pci:v*d*sv*sd*bc*sc*i* vfio_pci\n",
    );
    for id in ["10ED", "1515", "1565", "15A8", "15C5", "10CA", "1520"] {
        text.push_str(&format!(
            "alias vfio_pci:v00008086d0000{id}sv*sd*bc*sc*i* intel_vf_vfio_pci\n"
        ));
    }
    text
}

/// A host that can migrate: the module installed and indexed, the IOMMU
/// and interrupt remapping on, a kernel with DMA logging and iommufd,
/// QEMU 10.0 and libvirt 11.3, an 82576 VF bound to the module.
fn healthy() -> Tree {
    let t = Tree::new();
    t.write("proc/sys/kernel/osrelease", &format!("{RELEASE}\n"));
    t.write(
        "proc/interrupts",
        "           CPU0\n 24:        120  IR-PCI-MSIX-0000:01:00.0    0-edge      eth0\n",
    );
    t.modules_alias(&full_aliases());
    t.dir("sys/module/intel_vf_vfio_pci");
    t.write("sys/class/iommu/dmar0/intel-iommu/ecap", "f050da\n");
    t.dir("sys/kernel/iommu_groups/5/devices");
    t.write(
        &format!("boot/config-{RELEASE}"),
        "CONFIG_IOMMUFD=y\nCONFIG_IOMMUFD_DRIVER=y\nCONFIG_VFIO_PCI_CORE=y\n",
    );
    t.write("dev/iommu", "");
    for q in ["qemu-system-x86_64", "qemu-system-aarch64"] {
        t.program(
            &format!("usr/bin/{q}"),
            "QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-1~bpo12+1)",
        );
    }
    t.program("usr/sbin/libvirtd", "libvirtd (libvirt) 11.3.0");
    let dev = format!("sys/bus/pci/devices/{VF}");
    t.write(&format!("{dev}/vendor"), "0x8086\n");
    t.write(&format!("{dev}/device"), "0x10ca\n");
    t.write(
        &format!("{dev}/modalias"),
        "pci:v00008086d000010CAsv00008086sd00000000bc02sc00i00\n",
    );
    t.link(
        &format!("{dev}/iommu_group"),
        "../../../../kernel/iommu_groups/5",
    );
    t.link(&format!("{dev}/physfn"), "../0000:01:00.0");
    // The PF: not a supported VF, so not listed.
    t.write("sys/bus/pci/devices/0000:01:00.0/vendor", "0x8086\n");
    t.write("sys/bus/pci/devices/0000:01:00.0/device", "0x10c9\n");
    t.bind_vf("intel_vf_vfio_pci");
    t
}

fn doctor(root: &Path, json: bool) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vfmig"));
    cmd.arg("doctor").arg("--root").arg(root);
    if json {
        cmd.arg("--json");
    }
    let out = cmd
        .stdin(Stdio::null())
        .env("PATH", "/nonexistent")
        .output()
        .expect("vfmig runs");
    (
        out.status.code().expect("exit code"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The line of `out` that starts with `status` and contains `what`, and the
/// fix line under it, if any.
fn line<'a>(out: &'a str, status: &str, what: &str) -> (&'a str, Option<&'a str>) {
    let lines: Vec<&str> = out.lines().collect();
    let i = lines
        .iter()
        .position(|l| l.starts_with(status) && l.contains(what))
        .unwrap_or_else(|| panic!("no '{status}' line with '{what}' in:\n{out}"));
    let fix = lines.get(i + 1).and_then(|l| l.strip_prefix("      fix: "));
    (lines[i], fix)
}

#[test]
fn a_healthy_host_passes() {
    let t = healthy();
    let (code, out, err) = doctor(&t.0, false);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        !out.contains("FAIL") && !out.contains("warn ") && !out.contains("fix:"),
        "{out}"
    );
    line(
        &out,
        "ok",
        "maps every supported VF ID (7) to intel_vf_vfio_pci",
    );
    line(&out, "ok", "IOMMU on: dmar0 (1 IOMMU groups)");
    line(&out, "ok", "interrupt remapping on");
    line(&out, "ok", "CONFIG_IOMMUFD_DRIVER=y");
    line(&out, "ok", "iommufd: /dev/iommu");
    line(&out, "ok", "10.0: VFIO migration");
    line(&out, "ok", "11.3.0: managed='yes' binds a VF");
    let (vf, _) = line(
        &out,
        "ok",
        &format!("VF {VF} (82576 VF, PF 0000:01:00.0, IOMMU group 5)"),
    );
    assert!(
        vf.contains("driver intel_vf_vfio_pci, dirty tracking device"),
        "{vf}"
    );
    assert!(!out.contains("0000:01:00.0 ("), "the PF is no VF: {out}");
    assert!(
        out.ends_with("verdict: this host can live-migrate a VF with intel_vf_vfio_pci\n"),
        "{out}"
    );

    // Idle and unbound, the VF is as good: libvirt binds the module.
    fs::remove_file(t.0.join(format!("sys/bus/pci/devices/{VF}/driver"))).unwrap();
    let (code, out, _) = doctor(&t.0, false);
    assert_eq!(code, 0, "{out}");
    let (vf, _) = line(&out, "ok", &format!("VF {VF}"));
    assert!(
        vf.ends_with("driver none; libvirt's managed='yes' would bind intel_vf_vfio_pci"),
        "{vf}"
    );
}

/// The trap issue 29 names: the module loaded by insmod (no depmod), a VF
/// that libvirt bound to vfio-pci. Both lines fail with their fix.
#[test]
fn a_vf_on_vfio_pci_without_the_alias_fails_with_the_fix() {
    let t = healthy();
    t.modules_alias(
        "alias pci:v00008086d000010CAsv*sd*bc*sc*i* igbvf\nalias vfio_pci:v*d*sv*sd*bc*sc*i* vfio_pci\n",
    );
    t.bind_vf("vfio-pci");
    let (code, out, err) = doctor(&t.0, false);
    assert_eq!(code, 11, "{out}{err}");
    let (alias, fix) = line(
        &out,
        "FAIL",
        "modules.alias has no vfio_pci: alias of intel_vf_vfio_pci",
    );
    assert!(
        alias.contains(&format!("/lib/modules/{RELEASE}/modules.alias"))
            && alias.contains("8086:10ed")
            && alias.contains("8086:10ca")
            && alias.contains("the module is loaded, but not installed for modprobe"),
        "{alias}"
    );
    let fix = fix.expect("a fix under the failing line");
    assert!(
        fix.contains("make modules_install")
            && fix.contains(&format!("depmod -a {RELEASE}"))
            && fix.contains("binds vfio-pci instead"),
        "{fix}"
    );
    let (vf, fix) = line(&out, "FAIL", &format!("VF {VF}"));
    assert!(vf.contains("driver vfio-pci: no migration"), "{vf}");
    let fix = fix.expect("a fix under the VF line");
    assert!(
        fix.contains(&format!("echo {VF} > /sys/bus/pci/drivers/vfio-pci/unbind"))
            && fix.contains("depmod"),
        "{fix}"
    );
    assert!(
        err.contains("2 facts failed (module_alias, vf)") && err.contains("names its fix"),
        "{err}"
    );
}

/// Debian's own kernel: no CONFIG_IOMMUFD_DRIVER, no iommufd. Migration
/// works only with enable-migration=on: a warning (exit 12), not a failure.
#[test]
fn a_kernel_without_dma_logging_is_a_caveat() {
    let t = healthy();
    t.write(
        &format!("boot/config-{RELEASE}"),
        "# CONFIG_IOMMUFD is not set\nCONFIG_VFIO_PCI_CORE=m\n",
    );
    fs::remove_file(t.0.join("dev/iommu")).unwrap();
    t.write(
        &format!("sys/bus/pci/devices/{VF}/dirty_tracking"),
        "none\n",
    );
    let (code, out, err) = doctor(&t.0, false);
    assert_eq!(code, 12, "{out}{err}");
    let (_, fix) = line(&out, "warn", "CONFIG_IOMMUFD_DRIVER is not set");
    assert!(fix.expect("fix").contains("<qemu:override>"), "{out}");
    line(&out, "info", "no /dev/iommu (CONFIG_IOMMUFD is not set)");
    line(&out, "warn", "dirty tracking none (no DMA logging offered)");
    assert!(!out.contains("FAIL"), "{out}");
}

/// Other failures, each named: no IOMMU, no interrupt remapping, an old
/// libvirt and QEMU, another module's more specific alias.
#[test]
fn each_other_failure_is_named() {
    let t = healthy();
    fs::remove_dir_all(t.0.join("sys/class/iommu")).unwrap();
    fs::remove_dir_all(t.0.join("sys/kernel/iommu_groups")).unwrap();
    fs::remove_file(t.0.join(format!("sys/bus/pci/devices/{VF}/iommu_group"))).unwrap();
    t.write(
        "proc/interrupts",
        "           CPU0\n 24:   120  PCI-MSIX-0000:01:00.0  0-edge  eth0\n",
    );
    t.program("usr/sbin/libvirtd", "libvirtd (libvirt) 9.0.0");
    t.program("usr/bin/qemu-system-x86_64", "QEMU emulator version 7.2.0");
    t.program("usr/bin/qemu-system-aarch64", "QEMU emulator version 7.2.0");
    let mut aliases = full_aliases();
    aliases.push_str("alias vfio_pci:v00008086d000010CAsv00008086sd*bc*sc*i* other_vfio_pci\n");
    t.modules_alias(&aliases);
    let (code, out, _) = doctor(&t.0, false);
    assert_eq!(code, 11, "{out}");
    line(&out, "FAIL", "IOMMU off");
    line(&out, "FAIL", "no interrupt remapping");
    line(&out, "FAIL", "7.2 is too old");
    line(&out, "warn", "9.0.0 is older than 10.0");
    line(
        &out,
        "FAIL",
        "more specific for 8086:10ca -> other_vfio_pci",
    );
    line(&out, "FAIL", "no IOMMU group");

    // Nothing at all: no VF, no modules.alias, no programs.
    let empty = Tree::new();
    empty.write("proc/sys/kernel/osrelease", &format!("{RELEASE}\n"));
    let (code, out, _) = doctor(&empty.0, false);
    assert_eq!(code, 11, "{out}");
    line(&out, "FAIL", "modules.alias is missing");
    line(&out, "FAIL", "no supported VF");
    line(&out, "FAIL", "not found");
    line(&out, "info", "libvirt not installed");
}

#[test]
fn json_parses_and_agrees_with_the_exit_code() {
    for (tree, code, verdict) in [
        (healthy(), 0, "ok"),
        (
            {
                let t = healthy();
                t.modules_alias("alias vfio_pci:v*d*sv*sd*bc*sc*i* vfio_pci\n");
                t.bind_vf("vfio-pci");
                t
            },
            11,
            "fail",
        ),
    ] {
        let (got, out, _) = doctor(&tree.0, true);
        assert_eq!(got, code, "{out}");
        let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
        assert_eq!(v["verdict"], verdict);
        assert_eq!(v["exit_code"], code);
        assert_eq!(v["kernel"], RELEASE);
        let facts = v["facts"].as_array().expect("facts");
        assert!(facts.len() >= 9, "{out}");
        for f in facts {
            assert!(f["check"].is_string() && f["fact"].is_string(), "{f}");
            let status = f["status"].as_str().unwrap();
            assert!(["ok", "info", "warn", "fail"].contains(&status), "{f}");
            assert_eq!(
                f["fix"].is_string(),
                status == "warn" || status == "fail",
                "{f}"
            );
        }
        let vf = facts.iter().find(|f| f["check"] == "vf").unwrap();
        assert_eq!(vf["status"], if code == 0 { "ok" } else { "fail" });
    }
}
