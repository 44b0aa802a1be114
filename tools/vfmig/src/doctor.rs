// SPDX-License-Identifier: GPL-2.0

//! `vfmig doctor`: can this host live-migrate a VF with intel_vf_vfio_pci?
//!
//! One fact per line, each with its status (ok, info, warn, FAIL) and,
//! where it is not ok, the fix. Everything is read from files (sysfs,
//! /proc, /lib/modules, /boot, /dev) under a root directory, `/` unless the
//! hidden `--root DIR` names another (a fake tree, for tests), and from
//! the `--version` of the QEMU and libvirt programs found (with `--root`,
//! only in DIR's own bin directories). Nothing is written, no device is
//! opened, no module loaded.
//!
//! The facts, and why each matters:
//!
//! - the module's `vfio_pci:` aliases in `/lib/modules/RELEASE/modules.alias`:
//!   libvirt >= 10.0 binds a `managed='yes'` hostdev to the module whose
//!   `vfio_pci:` alias matches the device with the fewest wildcards, and
//!   binds vfio-pci without a word when none matches (a module loaded by
//!   insmod, or installed without depmod); QEMU then blocks the migration;
//! - the IOMMU, and MSI isolation (interrupt remapping on x86, the GIC ITS
//!   on arm64): vfio refuses a device without it (unless
//!   `allow_unsafe_interrupts`);
//! - device DMA logging (`CONFIG_IOMMUFD_DRIVER`), without which QEMU
//!   blocks a VFIO device's migration unless `enable-migration=on`;
//!   iommufd (`/dev/iommu`), optional;
//! - the QEMU and libvirt versions;
//! - every supported VF and its driver.

use std::fmt::Write as _;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use ivf_common::ids::{VfDevice, PCI_VENDOR_ID_INTEL, SUPPORTED_VFS};

use crate::{Exit, Failure, DRIVER};

/// The oldest QEMU that migrates a VFIO device with PRE_COPY, P2P and
/// device dirty tracking (and reports blockers to libvirt).
const QEMU_MIN: (u32, u32) = (8, 1);
/// The QEMU the project tests with.
const QEMU_TESTED: &str = "10.0";
/// The first libvirt that picks a variant driver by `modules.alias`.
const LIBVIRT_MIN: (u32, u32) = (10, 0);
/// vfio-pci's module name, as modules.alias gives it (its catch-all
/// `vfio_pci:v*d*sv*sd*bc*sc*i*` alias matches every device).
const VFIO_PCI: &str = "vfio_pci";
/// How long a `--version` may take.
const VERSION_TIMEOUT: Duration = Duration::from_secs(30);

/// A fact's status.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    /// Good.
    Ok,
    /// For the record; needs nothing.
    Info,
    /// Works, with a caveat (the fix says which).
    Warn,
    /// Stops a live migration (the fix says how to mend it).
    Fail,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Info => "info",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        }
    }
}

/// One line of the report.
#[derive(Debug, Serialize)]
pub(crate) struct Fact {
    /// What was checked: `kernel`, `module_alias`, `vf`, ...
    pub check: &'static str,
    pub status: Status,
    /// The fact, in words.
    pub fact: String,
    /// What to do about it, where it is not ok.
    pub fix: Option<String>,
}

fn fact(check: &'static str, status: Status, text: impl Into<String>) -> Fact {
    Fact {
        check,
        status,
        fact: text.into(),
        fix: None,
    }
}

impl Fact {
    fn fix(mut self, fix: impl Into<String>) -> Fact {
        self.fix = Some(fix.into());
        self
    }
}

/// The whole report (what `--json` prints).
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    /// "ok", "warn" or "fail": the worst status of any fact.
    pub verdict: &'static str,
    /// The exit code vfmig returns with it.
    pub exit_code: u8,
    /// The running kernel's release (`uname -r`), if known.
    pub kernel: Option<String>,
    pub facts: Vec<Fact>,
}

/// Where the files are read: `/`, or a fake tree.
pub(crate) struct Root {
    dir: Option<PathBuf>,
}

impl Root {
    pub(crate) fn new(dir: Option<PathBuf>) -> Root {
        Root { dir }
    }

    /// `abs` (an absolute path on the host) under the root.
    fn path(&self, abs: &str) -> PathBuf {
        match &self.dir {
            None => PathBuf::from(abs),
            Some(d) => d.join(abs.trim_start_matches('/')),
        }
    }

    fn read(&self, abs: &str) -> Option<String> {
        fs::read_to_string(self.path(abs)).ok()
    }

    fn read_trimmed(&self, abs: &str) -> Option<String> {
        self.read(abs).map(|s| s.trim().to_string())
    }

    fn exists(&self, abs: &str) -> bool {
        self.path(abs).exists()
    }

    /// The names in directory `abs`, sorted ([] if it cannot be read).
    fn list(&self, abs: &str) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.path(abs))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// The last component of the symbolic link `abs` points to.
    fn link_name(&self, abs: &str) -> Option<String> {
        fs::read_link(self.path(abs))
            .ok()?
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
    }

    /// Where programs are looked for: PATH and the sbin directories (as
    /// root has them), or with a root only the root's own.
    fn program_dirs(&self) -> Vec<PathBuf> {
        const SYSTEM: [&str; 6] = [
            "/usr/local/sbin",
            "/usr/local/bin",
            "/usr/sbin",
            "/usr/bin",
            "/sbin",
            "/bin",
        ];
        match &self.dir {
            Some(_) => SYSTEM.iter().map(|d| self.path(d)).collect(),
            None => {
                let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
                    .map(|p| std::env::split_paths(&p).collect())
                    .unwrap_or_default();
                dirs.extend(SYSTEM.iter().map(PathBuf::from));
                dirs
            }
        }
    }

    fn find_program(&self, name: &str) -> Option<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        self.program_dirs()
            .into_iter()
            .map(|d| d.join(name))
            .find(|p| {
                fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            })
    }

    /// The program `name`, if it is here, and the first line its
    /// `--version` prints (None if it printed nothing in time or failed).
    fn version_of(&self, name: &str) -> Option<(PathBuf, Option<String>)> {
        let prog = self.find_program(name)?;
        let line = first_line_of(&prog, &["--version"]);
        Some((prog, line))
    }
}

/// The first non-empty line `prog args` writes on stdout within
/// [`VERSION_TIMEOUT`]; a program that takes longer is killed.
fn first_line_of(prog: &Path, args: &[&str]) -> Option<String> {
    let mut child = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut out = child.stdout.take()?;
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.by_ref().take(64 * 1024).read_to_end(&mut buf);
        buf
    });
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if start.elapsed() < VERSION_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(10))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let buf = reader.join().ok()?;
    String::from_utf8_lossy(&buf)
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_string)
}

/// The first `MAJOR.MINOR[.MICRO]` in `text`.
pub(crate) fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter(|w| w.contains('.'))
        .find_map(|w| {
            let mut parts = w.split('.').filter(|p| !p.is_empty());
            let major = parts.next()?.parse().ok()?;
            let minor = parts.next()?.parse().ok()?;
            let micro = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
            Some((major, minor, micro))
        })
}

/// `text` matched against the shell-style `pattern` (`*` any run, `?` one
/// character), as libvirt matches modules.alias patterns (`fnmatch`).
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was, and how much of the text it has taken.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// One `alias vfio_pci:PATTERN MODULE` line of modules.alias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VfioAlias {
    /// The pattern, `vfio_pci:` included.
    pub pattern: String,
    pub module: String,
}

/// The `vfio_pci:` aliases of a modules.alias file.
pub(crate) fn vfio_aliases(text: &str) -> Vec<VfioAlias> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            if w.next()? != "alias" {
                return None;
            }
            let pattern = w.next()?;
            let module = w.next()?;
            pattern.starts_with("vfio_pci:").then(|| VfioAlias {
                pattern: pattern.to_string(),
                module: module.to_string(),
            })
        })
        .collect()
}

/// The alias libvirt (>= 10.0) picks for a device whose sysfs `modalias`
/// is `modalias` (`pci:v...`): of the `vfio_pci:` aliases that match
/// `vfio_pci:v...`, the one with the fewest wildcards (the first of
/// those, on a tie). None: libvirt binds vfio-pci.
pub(crate) fn best_alias<'a>(aliases: &'a [VfioAlias], modalias: &str) -> Option<&'a VfioAlias> {
    let want = format!("vfio_{modalias}");
    let mut best: Option<(&VfioAlias, usize)> = None;
    for a in aliases {
        if !glob_match(&a.pattern, &want) {
            continue;
        }
        let stars = a.pattern.matches('*').count();
        if best.is_none_or(|(_, s)| stars < s) {
            best = Some((a, stars));
        }
    }
    best.map(|(a, _)| a)
}

/// The modalias a VF of `id` has (subsystem and class as Intel's VFs give
/// them: an Ethernet controller), for an ID no device of which is here.
fn synthetic_modalias(id: &VfDevice) -> String {
    format!(
        "pci:v{:08X}d{:08X}sv{:08X}sd00000000bc02sc00i00",
        PCI_VENDOR_ID_INTEL, id.device_id, PCI_VENDOR_ID_INTEL
    )
}

/// A supported VF as the root's sysfs shows it.
struct Vf {
    bdf: String,
    id: &'static VfDevice,
    driver: Option<String>,
    physfn: Option<String>,
    iommu_group: Option<String>,
    modalias: String,
    /// The driver's `dirty_tracking` attribute, when ours is bound.
    dirty_tracking: Option<String>,
}

fn hex_id(text: &str) -> Option<u16> {
    u16::from_str_radix(text.trim().trim_start_matches("0x"), 16).ok()
}

fn vfs(root: &Root) -> Vec<Vf> {
    let base = "/sys/bus/pci/devices";
    let mut out = Vec::new();
    for name in root.list(base) {
        if name.parse::<ivf_vfio::sysfs::Bdf>().is_err() {
            continue;
        }
        let dir = format!("{base}/{name}");
        let (Some(vendor), Some(device)) = (
            root.read(&format!("{dir}/vendor")).and_then(|v| hex_id(&v)),
            root.read(&format!("{dir}/device")).and_then(|v| hex_id(&v)),
        ) else {
            continue;
        };
        let Some(id) = ivf_common::ids::lookup(vendor, device) else {
            continue;
        };
        let driver = root.link_name(&format!("{dir}/driver"));
        let ours = driver.as_deref() == Some(DRIVER);
        out.push(Vf {
            id,
            physfn: root.link_name(&format!("{dir}/physfn")),
            iommu_group: root.link_name(&format!("{dir}/iommu_group")),
            modalias: root
                .read_trimmed(&format!("{dir}/modalias"))
                .unwrap_or_else(|| synthetic_modalias(id)),
            dirty_tracking: ours
                .then(|| root.read_trimmed(&format!("{dir}/dirty_tracking")))
                .flatten(),
            driver,
            bdf: name,
        });
    }
    out
}

/// The kernel's release: the root's `/proc/sys/kernel/osrelease`.
fn kernel_release(root: &Root) -> Option<String> {
    root.read_trimmed("/proc/sys/kernel/osrelease")
        .filter(|r| !r.is_empty())
}

/// The running kernel's configuration: (where it was read, its text).
fn kernel_config(root: &Root, release: &str) -> Option<(String, String)> {
    for abs in [
        format!("/boot/config-{release}"),
        format!("/lib/modules/{release}/config"),
        format!("/lib/modules/{release}/build/.config"),
    ] {
        if let Some(text) = root.read(&abs) {
            return Some((abs, text));
        }
    }
    // /proc/config.gz (CONFIG_IKCONFIG_PROC), through gzip.
    let gz = root.path("/proc/config.gz");
    if gz.exists() {
        let gzip = root
            .find_program("gzip")
            .or_else(|| Root::new(None).find_program("gzip"))?;
        let text = Command::new(gzip)
            .arg("-dc")
            .arg(&gz)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())?;
        return Some((
            "/proc/config.gz".into(),
            String::from_utf8_lossy(&text.stdout).into_owned(),
        ));
    }
    None
}

/// The value of `option` (`CONFIG_...`) in a .config: "y", "m", a value,
/// or None where it is not set.
fn config_value<'a>(config: &'a str, option: &str) -> Option<&'a str> {
    config.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k == option).then_some(v)
    })
}

fn kernel_fact(root: &Root, release: Option<&str>) -> Fact {
    match release {
        Some(r) => fact(
            "kernel",
            Status::Info,
            format!("kernel {r} ({})", std::env::consts::ARCH),
        ),
        None => fact(
            "kernel",
            Status::Warn,
            format!(
                "kernel release unknown: {} unreadable",
                root.path("/proc/sys/kernel/osrelease").display()
            ),
        )
        .fix("run vfmig doctor on the host itself, with /proc mounted"),
    }
}

fn install_fix(release: &str) -> String {
    format!(
        "install the module where modprobe finds it and index it: in the source tree `make modules_install` \
         (it runs depmod) or `make dkms-install`; after copying the .ko by hand, `depmod -a {release}`. \
         Without it libvirt's managed='yes' binds vfio-pci instead, silently, and QEMU then blocks the migration"
    )
}

/// The module's aliases in modules.alias, for every supported VF ID.
fn alias_facts(root: &Root, release: Option<&str>, facts: &mut Vec<Fact>) -> Vec<VfioAlias> {
    let Some(release) = release else {
        facts.push(
            fact(
                "module_alias",
                Status::Warn,
                "modules.alias not checked: the kernel release is unknown",
            )
            .fix("run vfmig doctor on the host itself"),
        );
        return Vec::new();
    };
    let loaded = root.exists(&format!("/sys/module/{DRIVER}"));
    facts.push(fact(
        "module_loaded",
        Status::Info,
        if loaded {
            format!(
                "{DRIVER} is loaded (version {})",
                root.read_trimmed(&format!("/sys/module/{DRIVER}/version"))
                    .or_else(|| root.read_trimmed(&format!("/sys/module/{DRIVER}/srcversion")))
                    .unwrap_or_else(|| "unknown".into())
            )
        } else {
            format!("{DRIVER} is not loaded (modprobe, and libvirt, load it by its alias)")
        },
    ));
    let abs = format!("/lib/modules/{release}/modules.alias");
    let Some(text) = root.read(&abs) else {
        facts.push(
            fact(
                "module_alias",
                Status::Fail,
                format!(
                    "{abs} is missing: modprobe and libvirt know no module of kernel {release}"
                ),
            )
            .fix(install_fix(release)),
        );
        return Vec::new();
    };
    let aliases = vfio_aliases(&text);
    let mut missing = Vec::new();
    let mut others = Vec::new();
    for id in SUPPORTED_VFS.iter() {
        match best_alias(&aliases, &synthetic_modalias(id)) {
            Some(a) if a.module == DRIVER => {}
            // vfio-pci's own catch-all (`vfio_pci:v*d*...`): no variant.
            Some(a) if a.module != VFIO_PCI => {
                others.push(format!("8086:{:04x} -> {}", id.device_id, a.module))
            }
            _ => missing.push(format!("8086:{:04x}", id.device_id)),
        }
    }
    let ours = aliases.iter().filter(|a| a.module == DRIVER).count();
    if missing.is_empty() && others.is_empty() {
        facts.push(fact(
            "module_alias",
            Status::Ok,
            format!(
                "{abs} maps every supported VF ID ({}) to {DRIVER} ({ours} vfio_pci: aliases): \
                 libvirt >= 10.0 binds a managed='yes' VF to it",
                SUPPORTED_VFS.len()
            ),
        ));
        return aliases;
    }
    let mut text = String::new();
    if !missing.is_empty() {
        let _ = write!(
            text,
            "{abs} has no vfio_pci: alias of {DRIVER} for {}",
            missing.join(", ")
        );
        if ours == 0 && loaded {
            text.push_str(
                " (the module is loaded, but not installed for modprobe: insmod, or no depmod)",
            );
        }
    }
    if !others.is_empty() {
        if !text.is_empty() {
            text.push_str("; ");
        }
        let _ = write!(
            text,
            "another module's vfio_pci: alias is more specific for {}",
            others.join(", ")
        );
    }
    let fix = if missing.is_empty() {
        "libvirt binds the most specific vfio_pci: alias: remove or blacklist that module's alias \
         (install it elsewhere), or bind the VF by hand (driver_override) and use managed='no'"
            .to_string()
    } else {
        install_fix(release)
    };
    facts.push(fact("module_alias", Status::Fail, text).fix(fix));
    aliases
}

fn iommu_facts(root: &Root, facts: &mut Vec<Fact>) {
    let units = root.list("/sys/class/iommu");
    let groups = root.list("/sys/kernel/iommu_groups").len();
    if units.is_empty() && groups == 0 {
        facts.push(
            fact(
                "iommu",
                Status::Fail,
                "IOMMU off: /sys/class/iommu is empty and /sys/kernel/iommu_groups has no group",
            )
            .fix(
                "turn on VT-d (Intel) or AMD-Vi in the firmware and boot with intel_iommu=on (Intel; \
                 AMD's is on by default; iommu=pt is fine); vfio assigns no device without an IOMMU",
            ),
        );
    } else {
        facts.push(fact(
            "iommu",
            Status::Ok,
            format!(
                "IOMMU on: {} ({groups} IOMMU groups)",
                if units.is_empty() {
                    "no unit in /sys/class/iommu".to_string()
                } else {
                    units.join(", ")
                }
            ),
        ));
    }

    // MSI isolation. What the kernel shows without dmesg: the interrupt
    // chips of /proc/interrupts ("IR-PCI-MSI*" where MSIs go through
    // interrupt remapping, Intel's and AMD's alike; an ITS on arm64), and
    // Intel's IOMMU capability (ECAP bit 3: interrupt remapping
    // supported, not necessarily used).
    let interrupts = root.read("/proc/interrupts").unwrap_or_default();
    let ir_in_use = interrupts.contains("IR-PCI-MSI") || interrupts.contains("IR-IO-APIC");
    let its = interrupts.contains("ITS-PCI-MSI") || interrupts.contains("ITS-MSI");
    let ecap_ir = units.iter().any(|u| {
        root.read_trimmed(&format!("/sys/class/iommu/{u}/intel-iommu/ecap"))
            .and_then(|e| u64::from_str_radix(e.trim_start_matches("0x"), 16).ok())
            .is_some_and(|e| e & (1 << 3) != 0)
    });
    let unsafe_ok: Vec<&str> = [
        "/sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts",
        "/sys/module/iommufd/parameters/allow_unsafe_interrupts",
    ]
    .into_iter()
    .filter(|p| root.read_trimmed(p).as_deref() == Some("Y"))
    .collect();
    let unsafe_note = if unsafe_ok.is_empty() {
        String::new()
    } else {
        format!(
            "; {} is Y: vfio takes devices even without MSI isolation",
            unsafe_ok.join(" and ")
        )
    };
    let f = if ir_in_use {
        fact(
            "interrupt_remapping",
            Status::Ok,
            format!(
                "interrupt remapping on: /proc/interrupts shows IR- interrupt chips{unsafe_note}"
            ),
        )
    } else if its {
        fact(
            "interrupt_remapping",
            Status::Ok,
            format!(
                "MSIs isolated by the GIC ITS (/proc/interrupts shows ITS-PCI-MSI){unsafe_note}"
            ),
        )
    } else if !unsafe_ok.is_empty() {
        fact(
            "interrupt_remapping",
            Status::Warn,
            format!(
                "no interrupt remapping seen, and {} is Y: vfio assigns devices anyway, and a guest \
                 can forge MSIs to the host",
                unsafe_ok.join(" and ")
            ),
        )
        .fix("turn on interrupt remapping (firmware VT-d/x2APIC; no intremap=off) and set allow_unsafe_interrupts back to N")
    } else if ecap_ir && !interrupts.contains("PCI-MSI") {
        fact(
            "interrupt_remapping",
            Status::Warn,
            "the IOMMU supports interrupt remapping (ECAP), but /proc/interrupts shows no MSI to confirm it is used",
        )
        .fix("check that the kernel was not booted with intremap=off")
    } else if interrupts.is_empty() {
        fact(
            "interrupt_remapping",
            Status::Warn,
            format!(
                "interrupt remapping unknown: {} unreadable",
                root.path("/proc/interrupts").display()
            ),
        )
        .fix("run vfmig doctor on the host itself, with /proc mounted")
    } else {
        fact(
            "interrupt_remapping",
            Status::Fail,
            if ecap_ir {
                "interrupt remapping supported by the IOMMU but off (no IR- chip in /proc/interrupts): \
                 vfio refuses to assign devices"
            } else {
                "no interrupt remapping (no IR- or ITS chip in /proc/interrupts): vfio refuses to assign devices"
            },
        )
        .fix(
            "turn on VT-d with interrupt remapping (and x2APIC) in the firmware and do not boot with \
             intremap=off; in a QEMU test VM: -M q35,kernel-irqchip=split -device intel-iommu,intremap=on",
        )
    };
    facts.push(f);
}

fn dirty_tracking_facts(root: &Root, release: Option<&str>, facts: &mut Vec<Fact>) {
    let config = release.and_then(|r| kernel_config(root, r));
    let f = match &config {
        None => fact(
            "dma_logging",
            Status::Warn,
            "device DMA logging unknown: no kernel configuration found (/boot/config-RELEASE, \
             /proc/config.gz, /lib/modules/RELEASE/build/.config)",
        )
        .fix(
            "`vfmig info BDF` on a VF bound to the module says whether QEMU gets device dirty \
             tracking there (dirty: device, DMA logging offered)",
        ),
        Some((at, text)) => match config_value(text, "CONFIG_IOMMUFD_DRIVER") {
            Some("y") => fact(
                "dma_logging",
                Status::Ok,
                format!(
                    "CONFIG_IOMMUFD_DRIVER=y ({at}): the module offers QEMU device dirty tracking \
                     (VFIO DMA logging)"
                ),
            ),
            _ => fact(
                "dma_logging",
                Status::Warn,
                format!(
                    "CONFIG_IOMMUFD_DRIVER is not set ({at}): the module offers no DMA logging, so QEMU \
                     blocks the migration unless the device has enable-migration=on (then every RAM \
                     page is copied in every round); libvirt never sets it"
                ),
            )
            .fix(
                "a kernel with CONFIG_IOMMUFD (the Intel, AMD and SMMUv3 drivers then select \
                 CONFIG_IOMMUFD_DRIVER); or enable-migration=on: with libvirt a <qemu:override> \
                 (Documentation/libvirt.rst), which taints the domain",
            ),
        },
    };
    facts.push(f);
    let iommufd = root.exists("/dev/iommu");
    let configured = config
        .as_ref()
        .and_then(|(_, t)| config_value(t, "CONFIG_IOMMUFD"))
        .map(str::to_string);
    facts.push(if iommufd {
        fact(
            "iommufd",
            Status::Ok,
            "iommufd: /dev/iommu is there (QEMU can take a VF through iommufd and the VFIO cdev)",
        )
    } else {
        fact(
            "iommufd",
            Status::Info,
            format!(
                "no /dev/iommu{}: QEMU and libvirt take VFs through the VFIO group and container \
                 (migration works so too)",
                match configured.as_deref() {
                    Some("m") => " (CONFIG_IOMMUFD=m: modprobe iommufd)",
                    None if config.is_some() => " (CONFIG_IOMMUFD is not set)",
                    _ => "",
                }
            ),
        )
    });
}

/// `path` is there but did not answer `--version` in time.
fn no_answer(check: &'static str, path: &Path) -> Fact {
    fact(
        check,
        Status::Warn,
        format!(
            "{} is there but printed no version within {} s of `--version`",
            path.display(),
            VERSION_TIMEOUT.as_secs()
        ),
    )
    .fix(format!(
        "run `{} --version` by hand, and vfmig doctor again when the host is less busy",
        path.display()
    ))
}

fn qemu_fact(root: &Root) -> Fact {
    let prog = match std::env::consts::ARCH {
        "aarch64" => "qemu-system-aarch64",
        _ => "qemu-system-x86_64",
    };
    let Some((path, line)) = root.version_of(prog) else {
        return fact("qemu", Status::Fail, format!("{prog} not found")).fix(format!(
            "install QEMU {}.{} or later ({QEMU_TESTED} tested; Debian: qemu-system-x86)",
            QEMU_MIN.0, QEMU_MIN.1
        ));
    };
    let Some(line) = line else {
        return no_answer("qemu", &path);
    };
    match parse_version(&line) {
        Some((ma, mi, _)) if (ma, mi) >= QEMU_MIN => fact(
            "qemu",
            Status::Ok,
            format!(
                "{} {ma}.{mi}: VFIO migration with PRE_COPY, P2P and device dirty tracking, blockers \
                 reported to libvirt ({}.{} or later; {QEMU_TESTED} tested) [{line}]",
                path.display(),
                QEMU_MIN.0,
                QEMU_MIN.1
            ),
        ),
        Some((ma, mi, _)) => fact(
            "qemu",
            Status::Fail,
            format!(
                "{} {ma}.{mi} is too old: VFIO migration needs {}.{} or later [{line}]",
                path.display(),
                QEMU_MIN.0,
                QEMU_MIN.1
            ),
        )
        .fix(format!("install QEMU {QEMU_TESTED} (Debian 12: bookworm-backports; Debian 13 has it)")),
        None => fact(
            "qemu",
            Status::Warn,
            format!("{} answers `--version` with {line:?}: version unknown", path.display()),
        )
        .fix(format!("use QEMU {}.{} or later", QEMU_MIN.0, QEMU_MIN.1)),
    }
}

fn libvirt_fact(root: &Root) -> Fact {
    let found = ["libvirtd", "virtqemud", "virsh"]
        .iter()
        .find_map(|p| root.version_of(p));
    let Some((path, line)) = found else {
        return fact(
            "libvirt",
            Status::Info,
            "libvirt not installed (needed only for libvirt to drive the migration: 10.0 or later)",
        );
    };
    let Some(line) = line else {
        return no_answer("libvirt", &path);
    };
    match parse_version(&line) {
        Some((ma, mi, mc)) if (ma, mi) >= LIBVIRT_MIN => fact(
            "libvirt",
            Status::Ok,
            format!(
                "{} {ma}.{mi}.{mc}: managed='yes' binds a VF to the module of its most specific vfio_pci: \
                 alias (10.0 or later), and libvirt asks QEMU for migration blockers",
                path.display()
            ),
        ),
        Some((ma, mi, mc)) => fact(
            "libvirt",
            Status::Warn,
            format!(
                "{} {ma}.{mi}.{mc} is older than 10.0: with managed='yes' it binds vfio-pci, never \
                 {DRIVER}, and the migration is blocked",
                path.display()
            ),
        )
        .fix(format!(
            "libvirt 10.0 or later (Debian: 11.3 in bookworm-backports and trixie); or bind the VF to \
             {DRIVER} by hand (driver_override) and use managed='no'"
        )),
        None => fact(
            "libvirt",
            Status::Warn,
            format!("{} answers `--version` with {line:?}: version unknown", path.display()),
        )
        .fix("use libvirt 10.0 or later"),
    }
}

fn vf_facts(root: &Root, aliases: &[VfioAlias], release: Option<&str>, facts: &mut Vec<Fact>) {
    let found = vfs(root);
    if found.is_empty() {
        let ids: Vec<String> = SUPPORTED_VFS
            .iter()
            .map(|v| format!("8086:{:04x}", v.device_id))
            .collect();
        facts.push(
            fact(
                "vf",
                Status::Fail,
                format!("no supported VF in /sys/bus/pci/devices (looked for {})", ids.join(", ")),
            )
            .fix(
                "create VFs on the PF (its PF driver loaded): echo N > /sys/bus/pci/devices/PF/sriov_numvfs; \
                 `vfmig list` shows them",
            ),
        );
        return;
    }
    let release = release.unwrap_or("$(uname -r)");
    for vf in &found {
        let mut text = format!(
            "VF {} ({}, PF {}, IOMMU group {}): ",
            vf.bdf,
            vf.id.name,
            vf.physfn.as_deref().unwrap_or("-"),
            vf.iommu_group.as_deref().unwrap_or("none")
        );
        let bind_by_hand = format!(
            "echo {DRIVER} > /sys/bus/pci/devices/{b}/driver_override; echo {b} > /sys/bus/pci/drivers_probe",
            b = vf.bdf
        );
        let best = best_alias(aliases, &vf.modalias);
        let libvirt_binds = match best {
            Some(a) if a.module != VFIO_PCI => a.module.clone(),
            _ => "vfio-pci".into(),
        };
        let f = match vf.driver.as_deref() {
            _ if vf.iommu_group.is_none() => {
                let _ = write!(
                    text,
                    "driver {}, no IOMMU group",
                    vf.driver.as_deref().unwrap_or("none")
                );
                fact("vf", Status::Fail, text).fix("turn the IOMMU on (see the iommu line)")
            }
            Some(DRIVER) => {
                let _ = write!(text, "driver {DRIVER}");
                match vf.dirty_tracking.as_deref() {
                    Some("device") => {
                        text.push_str(", dirty tracking device (QEMU gets DMA logging)");
                        fact("vf", Status::Ok, text)
                    }
                    Some(mode) => {
                        let _ = write!(text, ", dirty tracking {mode} (no DMA logging offered)");
                        fact("vf", Status::Warn, text).fix(format!(
                            "echo device > /sys/bus/pci/devices/{}/dirty_tracking while the VF is closed \
                             (on a kernel without CONFIG_IOMMUFD_DRIVER only enable-migration=on helps)",
                            vf.bdf
                        ))
                    }
                    None => fact("vf", Status::Ok, text),
                }
            }
            Some(d @ ("vfio-pci" | "vfio_pci")) => {
                let _ = write!(
                    text,
                    "driver {d}: no migration (vfio-pci offers none; a VM started on it cannot move)"
                );
                let fix = if libvirt_binds == DRIVER {
                    format!(
                        "with no VM using it, unbind it (echo {b} > /sys/bus/pci/drivers/vfio-pci/unbind): \
                         libvirt's managed='yes' then binds {DRIVER} at the next start; or by hand: {bind_by_hand}",
                        b = vf.bdf
                    )
                } else {
                    format!(
                        "first install the module for modprobe (`make modules_install`, or `depmod -a {release}` \
                         after a bare copy: see the module_alias line), then, with no VM using it, unbind it \
                         (echo {b} > /sys/bus/pci/drivers/vfio-pci/unbind): libvirt's managed='yes' then binds \
                         {DRIVER}; or by hand: {bind_by_hand}",
                        b = vf.bdf
                    )
                };
                fact("vf", Status::Fail, text).fix(fix)
            }
            other => {
                let _ = write!(
                    text,
                    "driver {}; libvirt's managed='yes' would bind {libvirt_binds}",
                    other.unwrap_or("none")
                );
                if libvirt_binds == DRIVER {
                    fact("vf", Status::Ok, text)
                } else {
                    let fix = if libvirt_binds == "vfio-pci" {
                        format!(
                            "install the module for modprobe (`make modules_install`, or `depmod -a {release}` \
                             after a bare copy: see the module_alias line); or by hand: {bind_by_hand}"
                        )
                    } else {
                        format!("see the module_alias line; or by hand: {bind_by_hand}")
                    };
                    fact("vf", Status::Fail, text).fix(fix)
                }
            }
        };
        facts.push(f);
    }
}

/// Every fact about the host under `root`, and the verdict.
pub(crate) fn examine(root: &Root) -> Report {
    let release = kernel_release(root);
    let mut facts = vec![kernel_fact(root, release.as_deref())];
    let aliases = alias_facts(root, release.as_deref(), &mut facts);
    iommu_facts(root, &mut facts);
    dirty_tracking_facts(root, release.as_deref(), &mut facts);
    facts.push(qemu_fact(root));
    facts.push(libvirt_fact(root));
    vf_facts(root, &aliases, release.as_deref(), &mut facts);
    let worst = facts.iter().map(|f| f.status).max().unwrap_or(Status::Ok);
    let (verdict, exit) = match worst {
        Status::Fail => ("fail", Exit::DoctorFail),
        Status::Warn => ("warn", Exit::DoctorWarn),
        _ => ("ok", Exit::Success),
    };
    Report {
        verdict,
        exit_code: exit.code(),
        kernel: release,
        facts,
    }
}

/// `vfmig doctor [--json]`.
pub(crate) fn doctor(root: Option<PathBuf>, json: bool) -> Result<(), Failure> {
    let report = examine(&Root::new(root));
    if json {
        crate::print_json(&report)?;
    } else {
        outln!("vfmig doctor: can this host live-migrate a VF with {DRIVER}?");
        for f in &report.facts {
            outln!("{:<5} {}", f.status.label(), f.fact);
            if let Some(fix) = &f.fix {
                outln!("      fix: {fix}");
            }
        }
    }
    let named = |s: Status| -> Vec<String> {
        report
            .facts
            .iter()
            .filter(|f| f.status == s)
            .map(|f| f.check.to_string())
            .collect()
    };
    match report.verdict {
        "fail" => {
            let failed = named(Status::Fail);
            Err(Failure::new(
                Exit::DoctorFail,
                format!(
                    "this host cannot live-migrate a VF yet: {} fact{} failed ({}); each FAIL line names its fix",
                    failed.len(),
                    if failed.len() == 1 { "" } else { "s" },
                    failed.join(", ")
                ),
            ))
        }
        "warn" => Err(Failure::new(
            Exit::DoctorWarn,
            format!(
                "this host can live-migrate a VF, with caveats: see the warn lines ({})",
                named(Status::Warn).join(", ")
            ),
        )),
        _ => {
            if !json {
                outln!("verdict: this host can live-migrate a VF with {DRIVER}");
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_as_fnmatch() {
        let p = "vfio_pci:v00008086d000010CAsv*sd*bc*sc*i*";
        assert!(glob_match(
            p,
            "vfio_pci:v00008086d000010CAsv00008086sd00000000bc02sc00i00"
        ));
        assert!(!glob_match(
            p,
            "vfio_pci:v00008086d000010EDsv00008086sd00000000bc02sc00i00"
        ));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(glob_match("a*", "a"));
        assert!(!glob_match("a*d", "abc"));
        assert!(glob_match("a?c", "abc"));
        assert!(glob_match("*", ""));
    }

    #[test]
    fn the_alias_with_fewest_wildcards_wins() {
        let text = "alias vfio_pci:v*d*sv*sd*bc*sc*i* vfio_pci\n\
                    alias vfio_pci:v00008086d000010CAsv*sd*bc*sc*i* intel_vf_vfio_pci\n\
                    alias pci:v00008086d000010CAsv*sd*bc*sc*i* igbvf\n\
                    alias vfio_pci:v00008086d000010CAsv00008086sd*bc*sc*i* other_vfio\n";
        let aliases = vfio_aliases(text);
        assert_eq!(aliases.len(), 3, "the igbvf alias is no vfio_pci: one");
        let m = "pci:v00008086d000010CAsv00008086sd00000000bc02sc00i00";
        assert_eq!(best_alias(&aliases, m).unwrap().module, "other_vfio");
        assert_eq!(
            best_alias(&aliases[..2], m).unwrap().module,
            "intel_vf_vfio_pci"
        );
        assert_eq!(best_alias(&aliases[2..2], m), None);
    }

    #[test]
    fn versions_parse() {
        assert_eq!(
            parse_version("QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-1~bpo12+1)"),
            Some((10, 0, 2))
        );
        assert_eq!(parse_version("libvirtd (libvirt) 11.3.0"), Some((11, 3, 0)));
        assert_eq!(parse_version("9.0"), Some((9, 0, 0)));
        assert_eq!(parse_version("no version"), None);
    }
}
