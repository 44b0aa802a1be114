// SPDX-License-Identifier: GPL-2.0

//! PCI devices as sysfs shows them.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ivf_common::ids::{self, VfDevice};

use crate::{Error, Result};

/// Root of the PCI devices in sysfs; `IVF_SYSFS_PCI` overrides it for tests.
pub fn pci_root() -> PathBuf {
    std::env::var_os("IVF_SYSFS_PCI")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/sys/bus/pci/devices"))
}

/// A PCI address: domain, bus, device, function (`0000:00:02.1`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bdf {
    /// PCI domain (segment).
    pub domain: u16,
    /// Bus number.
    pub bus: u8,
    /// Device number (0..=31).
    pub dev: u8,
    /// Function number (0..=7).
    pub func: u8,
}

impl fmt::Display for Bdf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{:x}",
            self.domain, self.bus, self.dev, self.func
        )
    }
}

impl FromStr for Bdf {
    type Err = String;

    /// Accepts `DDDD:BB:DD.F` and the short `BB:DD.F` (domain 0).
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let bad =
            || format!("'{s}' is not a PCI address (expected DDDD:BB:DD.F, e.g. 0000:01:10.0)");
        let parts: Vec<&str> = s.split(':').collect();
        let (domain, bus, devfn) = match parts.as_slice() {
            [d, b, df] => (*d, *b, *df),
            [b, df] => ("0", *b, *df),
            _ => return Err(bad()),
        };
        let (dev, func) = devfn.split_once('.').ok_or_else(bad)?;
        let hex = |t: &str, max: u32| {
            u32::from_str_radix(t, 16)
                .ok()
                .filter(|v| *v <= max && !t.is_empty())
        };
        let bdf = Bdf {
            domain: hex(domain, 0xffff).ok_or_else(bad)? as u16,
            bus: hex(bus, 0xff).ok_or_else(bad)? as u8,
            dev: hex(dev, 0x1f).ok_or_else(bad)? as u8,
            func: hex(func, 7).ok_or_else(bad)? as u8,
        };
        Ok(bdf)
    }
}

/// What sysfs tells about one PCI device.
#[derive(Clone, Debug)]
pub struct PciDevice {
    /// Its address.
    pub bdf: Bdf,
    /// Its sysfs directory.
    pub path: PathBuf,
    /// PCI vendor ID.
    pub vendor: u16,
    /// PCI device ID.
    pub device: u16,
    /// Name of the bound driver, if any.
    pub driver: Option<String>,
    /// The PF of a VF.
    pub physfn: Option<Bdf>,
    /// IOMMU group number, if the device is in one.
    pub iommu_group: Option<u32>,
    /// Name of the vfio cdev (`vfio0`) if bound to a vfio driver with cdev support.
    pub vfio_cdev: Option<String>,
}

fn read_trimmed(path: &Path) -> io::Result<String> {
    Ok(fs::read_to_string(path)?.trim().to_string())
}

fn read_hex_u16(path: &Path) -> Result<u16> {
    let text =
        read_trimmed(path).map_err(|e| Error::new(format!("reading {}", path.display()), e))?;
    u16::from_str_radix(text.trim_start_matches("0x"), 16).map_err(|_| {
        Error::new(
            format!("parsing {}", path.display()),
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not a hex ID: '{text}'"),
            ),
        )
    })
}

fn link_name(path: &Path) -> Option<String> {
    fs::read_link(path)
        .ok()?
        .file_name()?
        .to_str()
        .map(str::to_string)
}

impl PciDevice {
    /// Reads the device at `bdf`; a missing device is `ENODEV`.
    pub fn open(bdf: Bdf) -> Result<PciDevice> {
        let path = pci_root().join(bdf.to_string());
        if !path.exists() {
            return Err(Error::new(
                format!("PCI device {bdf}"),
                io::Error::from_raw_os_error(libc::ENODEV),
            ));
        }
        let vfio_cdev = fs::read_dir(path.join("vfio-dev"))
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| e.ok())
            .and_then(|e| e.file_name().to_str().map(str::to_string));
        Ok(PciDevice {
            bdf,
            vendor: read_hex_u16(&path.join("vendor"))?,
            device: read_hex_u16(&path.join("device"))?,
            driver: link_name(&path.join("driver")),
            physfn: link_name(&path.join("physfn")).and_then(|n| n.parse().ok()),
            iommu_group: link_name(&path.join("iommu_group")).and_then(|n| n.parse().ok()),
            vfio_cdev,
            path,
        })
    }

    /// The supported VF this is, if any.
    pub fn supported_vf(&self) -> Option<&'static VfDevice> {
        ids::lookup(self.vendor, self.device)
    }

    /// PCI revision ID (sysfs `revision`), which a migration stream must
    /// match; read when asked, so listing devices does not need it.
    pub fn revision(&self) -> Result<u8> {
        let path = self.path.join("revision");
        let v = read_hex_u16(&path)?;
        u8::try_from(v).map_err(|_| {
            Error::new(
                format!("parsing {}", path.display()),
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("not a revision ID: {v:#x}"),
                ),
            )
        })
    }
}

impl PciDevice {
    /// The device nodes through which vfio users hold this device.
    fn vfio_nodes(&self) -> Vec<PathBuf> {
        let mut nodes = Vec::new();
        if let Some(c) = &self.vfio_cdev {
            nodes.push(PathBuf::from(format!("/dev/vfio/devices/{c}")));
        }
        if let Some(g) = self.iommu_group {
            nodes.push(PathBuf::from(format!("/dev/vfio/{g}")));
        }
        nodes
    }

    /// Whether the process whose `/proc` directory is `proc_dir` has one
    /// of `nodes` open.
    fn opened_by(proc_dir: &Path, nodes: &[PathBuf]) -> bool {
        let Ok(fds) = fs::read_dir(proc_dir.join("fd")) else {
            return false;
        };
        fds.flatten()
            .any(|fd| fs::read_link(fd.path()).is_ok_and(|t| nodes.contains(&t)))
    }

    /// Processes holding this device's vfio cdev or IOMMU group open, as
    /// (pid, command name), this process excepted. Unreadable /proc entries
    /// are skipped.
    pub fn vfio_holders(&self) -> Vec<(u32, String)> {
        let nodes = self.vfio_nodes();
        let me = std::process::id();
        let mut out = Vec::new();
        let Ok(procs) = fs::read_dir("/proc") else {
            return out;
        };
        for p in procs.flatten() {
            let Some(pid) = p.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            if pid != me && Self::opened_by(&p.path(), &nodes) {
                let comm = read_trimmed(&p.path().join("comm")).unwrap_or_default();
                out.push((pid, comm));
            }
        }
        out
    }

    /// [`PciDevice::vfio_holders`] for a message: "pid 12 (qemu), ...",
    /// or `None` if nobody else holds the device.
    pub fn vfio_holders_text(&self) -> Option<String> {
        let who: Vec<String> = self
            .vfio_holders()
            .iter()
            .map(|(p, c)| format!("pid {p} ({c})"))
            .collect();
        (!who.is_empty()).then(|| who.join(", "))
    }

    /// Whether this process itself holds the device open through vfio.
    pub fn held_by_this_process(&self) -> bool {
        Self::opened_by(Path::new("/proc/self"), &self.vfio_nodes())
    }
}

/// Every PCI device that is a VF this driver supports, sorted by address.
pub fn supported_vfs() -> Result<Vec<PciDevice>> {
    let root = pci_root();
    let entries =
        fs::read_dir(&root).map_err(|e| Error::new(format!("listing {}", root.display()), e))?;
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let Some(bdf) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<Bdf>().ok())
        else {
            continue;
        };
        let dev = PciDevice::open(bdf)?;
        if dev.supported_vf().is_some() {
            out.push(dev);
        }
    }
    out.sort_by_key(|d| d.bdf);
    Ok(out)
}

/// How intel_vf_vfio_pci tracks the DMA a device does, per device
/// (`/sys/bus/pci/devices/<bdf>/dirty_tracking`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum DirtyTracking {
    /// The driver traps the RX tail page and offers the DMA logging
    /// features ("device").
    Device,
    /// The RX tail page is mapped; the DMA logging features answer ENOTTY
    /// ("none").
    None,
}

impl DirtyTracking {
    /// The word sysfs uses.
    pub const fn name(self) -> &'static str {
        match self {
            DirtyTracking::Device => "device",
            DirtyTracking::None => "none",
        }
    }
}

impl fmt::Display for DirtyTracking {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DirtyTracking {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim() {
            "device" => Ok(DirtyTracking::Device),
            "none" => Ok(DirtyTracking::None),
            other => Err(format!(
                "'{other}' is not a dirty tracking mode (expected device or none)"
            )),
        }
    }
}

fn dev_file(bdf: Bdf, name: &str) -> PathBuf {
    pci_root().join(bdf.to_string()).join(name)
}

fn read_dev_file(bdf: Bdf, name: &str) -> Result<(PathBuf, String)> {
    let path = dev_file(bdf, name);
    let text = fs::read_to_string(&path).map_err(|e| {
        Error::new(
            format!(
                "reading {} (is {bdf} bound to intel_vf_vfio_pci?)",
                path.display()
            ),
            e,
        )
    })?;
    Ok((path, text))
}

fn invalid(path: &Path, why: String) -> Error {
    Error::new(
        format!("parsing {}", path.display()),
        io::Error::new(io::ErrorKind::InvalidData, why),
    )
}

/// The dirty tracking mode of `bdf`.
pub fn dirty_tracking(bdf: Bdf) -> Result<DirtyTracking> {
    let (path, text) = read_dev_file(bdf, "dirty_tracking")?;
    text.parse().map_err(|why| invalid(&path, why))
}

/// Sets the dirty tracking mode of `bdf`; the kernel refuses (EBUSY) while
/// a VFIO user has the device open. The errno is kept.
pub fn set_dirty_tracking(bdf: Bdf, mode: DirtyTracking) -> Result<()> {
    write_dirty_tracking(bdf, mode.name())
}

/// Writes `text` to `dirty_tracking` of `bdf` as is (tests of bad values).
pub fn write_dirty_tracking(bdf: Bdf, text: &str) -> Result<()> {
    let path = dev_file(bdf, "dirty_tracking");
    fs::write(&path, text)
        .map_err(|e| Error::new(format!("writing '{text}' to {}", path.display()), e))
}

/// An attribute of `bdf`'s driver, trimmed; `None` when the file is absent
/// (another driver, or an older module).
pub fn driver_attr(bdf: Bdf, name: &str) -> Option<String> {
    fs::read_to_string(dev_file(bdf, name))
        .ok()
        .map(|t| t.trim().to_string())
}

/// The VFIO migration flags the driver offers for `bdf` (its
/// `migration_flags` attribute), read without opening the VF.
pub fn migration_flags(bdf: Bdf) -> Result<u32> {
    let (path, text) = read_dev_file(bdf, "migration_flags")?;
    let t = text.trim();
    u32::from_str_radix(t.trim_start_matches("0x"), 16)
        .map_err(|_| invalid(&path, format!("not a hex number: '{t}'")))
}

/// An "on"/"off" switch of the device's sysfs directory.
fn read_switch(bdf: Bdf, name: &str) -> Result<bool> {
    let (path, text) = read_dev_file(bdf, name)?;
    match text.trim() {
        "on" => Ok(true),
        "off" => Ok(false),
        t => Err(invalid(&path, format!("neither on nor off: '{t}'"))),
    }
}

/// Sets an "on"/"off" switch of the device's sysfs directory.
fn write_switch(bdf: Bdf, name: &str, on: bool) -> Result<()> {
    let path = dev_file(bdf, name);
    let text = if on { "on" } else { "off" };
    fs::write(&path, text)
        .map_err(|e| Error::new(format!("writing '{text}' to {}", path.display()), e))
}

/// Whether the guest capability of `bdf` is shown (`guest_capability`).
pub fn guest_capability(bdf: Bdf) -> Result<bool> {
    read_switch(bdf, "guest_capability")
}

/// Shows the guest capability of `bdf` or not; the kernel refuses (EBUSY)
/// while a VFIO user has the device open.
pub fn set_guest_capability(bdf: Bdf, on: bool) -> Result<()> {
    write_switch(bdf, "guest_capability", on)
}

/// The migration generation the guest capability of `bdf` shows.
pub fn guest_generation(bdf: Bdf) -> Result<u32> {
    let (path, text) = read_dev_file(bdf, "guest_generation")?;
    let t = text.trim();
    u32::from_str_radix(t.trim_start_matches("0x"), 16)
        .map_err(|_| invalid(&path, format!("not a hex number: '{t}'")))
}

/// Whether a guest that arrives on `bdf` is announced (sysfs `announce`).
pub fn announce(bdf: Bdf) -> Result<bool> {
    read_switch(bdf, "announce")
}

/// Switches the announce of `bdf` (any time; the next arrival follows it).
pub fn set_announce(bdf: Bdf, on: bool) -> Result<()> {
    write_switch(bdf, "announce", on)
}

/// The counters of sysfs `announce_stats`.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct AnnounceStats {
    /// Announces started (one per arrival).
    pub announces: u64,
    /// Rounds sent.
    pub rounds: u64,
    /// Frames the PF netdev took.
    pub sent: u64,
    /// Frames it did not.
    pub failed: u64,
    /// Frames over the per-round cap, never sent.
    pub dropped: u64,
    /// Announces not sent: another had started less than a second before.
    pub limited: u64,
}

/// The announce counters of `bdf`.
pub fn announce_stats(bdf: Bdf) -> Result<AnnounceStats> {
    let (path, text) = read_dev_file(bdf, "announce_stats")?;
    let mut st = AnnounceStats::default();
    let mut words = text.split_whitespace();
    while let (Some(k), Some(v)) = (words.next(), words.next()) {
        let v: u64 = v
            .parse()
            .map_err(|_| invalid(&path, format!("{k}: not a number: '{v}'")))?;
        match k {
            "announces" => st.announces = v,
            "rounds" => st.rounds = v,
            "sent" => st.sent = v,
            "failed" => st.failed = v,
            "dropped" => st.dropped = v,
            "limited" => st.limited = v,
            _ => {}
        }
    }
    Ok(st)
}

/// How many times the driver made the PF drop the filters of `bdf`'s guest
/// (at its last closes, and opens a close could not prepare: `pf_forgets`).
pub fn pf_forgets(bdf: Bdf) -> Result<u32> {
    let (path, text) = read_dev_file(bdf, "pf_forgets")?;
    let t = text.trim();
    t.parse()
        .map_err(|_| invalid(&path, format!("not a number: '{t}'")))
}

/// The counters of `/sys/bus/pci/devices/<bdf>/dirty_stats`.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct DirtyStats {
    /// RX tail writes the driver trapped.
    pub traps: u64,
    /// RX descriptors those traps posted (and the tracker looked at).
    pub descriptors: u64,
    /// Most descriptors one trap posted.
    pub max_descriptors_per_trap: u64,
    /// Nanoseconds spent in the traps, in total.
    pub trap_ns: u64,
    /// DMA logging reports answered.
    pub reports: u64,
    /// Times the tracker gave up on precision and marked every logged page.
    pub taints: u64,
    /// Whether DMA logging is on.
    pub logging: bool,
}

impl DirtyStats {
    /// The counters' growth since `earlier` (the maximum and the logging
    /// flag are this sample's).
    pub fn since(&self, earlier: &DirtyStats) -> DirtyStats {
        DirtyStats {
            traps: self.traps.saturating_sub(earlier.traps),
            descriptors: self.descriptors.saturating_sub(earlier.descriptors),
            trap_ns: self.trap_ns.saturating_sub(earlier.trap_ns),
            reports: self.reports.saturating_sub(earlier.reports),
            taints: self.taints.saturating_sub(earlier.taints),
            ..*self
        }
    }

    /// Parses the file's "key value" lines; every key must be there,
    /// unknown keys are ignored.
    pub fn parse(text: &str) -> std::result::Result<DirtyStats, String> {
        let mut seen = [None::<u64>; 7];
        const KEYS: [&str; 7] = [
            "traps",
            "descriptors",
            "max_descriptors_per_trap",
            "trap_ns",
            "reports",
            "taints",
            "logging",
        ];
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (key, value) = line
                .split_once(char::is_whitespace)
                .ok_or_else(|| format!("line '{line}' is not 'key value'"))?;
            let Some(i) = KEYS.iter().position(|k| *k == key) else {
                continue;
            };
            let v = value
                .trim()
                .parse::<u64>()
                .map_err(|_| format!("{key}: '{}' is not a number", value.trim()))?;
            seen[i] = Some(v);
        }
        let get = |i: usize| seen[i].ok_or_else(|| format!("no '{}' line", KEYS[i]));
        Ok(DirtyStats {
            traps: get(0)?,
            descriptors: get(1)?,
            max_descriptors_per_trap: get(2)?,
            trap_ns: get(3)?,
            reports: get(4)?,
            taints: get(5)?,
            logging: match get(6)? {
                0 => false,
                1 => true,
                v => return Err(format!("logging: {v} is not 0 or 1")),
            },
        })
    }
}

/// The dirty tracking counters of `bdf`.
pub fn dirty_stats(bdf: Bdf) -> Result<DirtyStats> {
    let (path, text) = read_dev_file(bdf, "dirty_stats")?;
    DirtyStats::parse(&text).map_err(|why| invalid(&path, why))
}

/// One line of `/sys/bus/pci/devices/<bdf>/migration_profile`: where the
/// last run of a migration step spent its time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StepProfile {
    /// The step: quiesce, save, load or resume.
    pub step: String,
    /// Its wall time, in nanoseconds.
    pub total_ns: u64,
    /// Its MMIO reads (polls included), writes and poll delays.
    pub reads: u64,
    /// MMIO writes.
    pub writes: u64,
    /// Poll delays (each a wait for the device or the PF).
    pub polls: u64,
    /// Its parts in the order they ran, nanoseconds each; the last is
    /// `other`, what no part accounts for.
    pub parts: Vec<(String, u64)>,
}

impl StepProfile {
    /// Parses one line: `STEP total_ns T reads R writes W polls P` and
    /// then `PART NS` pairs.
    pub fn parse(line: &str) -> std::result::Result<StepProfile, String> {
        let mut words = line.split_whitespace();
        let step = words.next().ok_or("an empty line")?.to_string();
        let mut p = StepProfile {
            step,
            ..StepProfile::default()
        };
        let rest: Vec<&str> = words.collect();
        if rest.len() % 2 != 0 {
            return Err(format!("{}: a name without its number", p.step));
        }
        let mut seen = 0;
        for pair in rest.chunks(2) {
            let v = pair[1]
                .parse::<u64>()
                .map_err(|_| format!("{} {}: '{}' is not a number", p.step, pair[0], pair[1]))?;
            match pair[0] {
                "total_ns" => p.total_ns = v,
                "reads" => p.reads = v,
                "writes" => p.writes = v,
                "polls" => p.polls = v,
                part => {
                    p.parts.push((part.to_string(), v));
                    continue;
                }
            }
            seen += 1;
        }
        if seen != 4 {
            return Err(format!(
                "{}: total_ns, reads, writes or polls missing",
                p.step
            ));
        }
        Ok(p)
    }
}

/// Where the last quiesce, save, load and resume of `bdf` spent their time
/// (its `migration_profile`), one entry per step.
pub fn migration_profile(bdf: Bdf) -> Result<Vec<StepProfile>> {
    let (path, text) = read_dev_file(bdf, "migration_profile")?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| StepProfile::parse(l).map_err(|why| invalid(&path, why)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_step_profile_and_refuses_a_torn_one() {
        let p = StepProfile::parse(
            "load total_ns 9000 reads 8 writes 42 polls 1 decode 100 replay 5000 mmio 2000 other 1900",
        )
        .unwrap();
        assert_eq!(
            (p.step.as_str(), p.total_ns, p.reads, p.writes, p.polls),
            ("load", 9000, 8, 42, 1)
        );
        assert_eq!(p.parts.len(), 4);
        assert_eq!(p.parts[1], ("replay".to_string(), 5000));
        assert!(StepProfile::parse("load total_ns 9000 reads 8").is_err());
        assert!(StepProfile::parse("load total_ns 9000 reads 8 writes 1 polls x").is_err());
        assert!(StepProfile::parse("load total_ns").is_err());
    }

    #[test]
    fn parses_and_prints_addresses() {
        let bdf: Bdf = "0000:00:03.1".parse().unwrap();
        assert_eq!(
            bdf,
            Bdf {
                domain: 0,
                bus: 0,
                dev: 3,
                func: 1
            }
        );
        assert_eq!(bdf.to_string(), "0000:00:03.1");
        assert_eq!("1:02.7".parse::<Bdf>().unwrap().to_string(), "0000:01:02.7");
    }

    #[test]
    fn rejects_bad_addresses() {
        for bad in [
            "",
            "00:03",
            "0000:00:20.0",
            "0000:00:03.8",
            "zz:00.0",
            "0000:100:00.0",
            ":.",
            "0:0:0:0.0",
        ] {
            let err = bad.parse::<Bdf>().unwrap_err();
            assert!(err.contains("not a PCI address"), "{bad}: {err}");
        }
    }

    #[test]
    fn parses_dirty_tracking_modes() {
        assert_eq!("device\n".parse(), Ok(DirtyTracking::Device));
        assert_eq!("none".parse(), Ok(DirtyTracking::None));
        assert!("off".parse::<DirtyTracking>().is_err());
        assert_eq!(DirtyTracking::None.to_string(), "none");
    }

    #[test]
    fn dirty_stats_growth() {
        let a = DirtyStats::parse("traps 5\ndescriptors 9\nmax_descriptors_per_trap 4\ntrap_ns 100\nreports 1\ntaints 0\nlogging 1\n").unwrap();
        let b = DirtyStats::parse("traps 7\ndescriptors 19\nmax_descriptors_per_trap 9\ntrap_ns 160\nreports 4\ntaints 1\nlogging 0\n").unwrap();
        let d = b.since(&a);
        assert_eq!(
            (d.traps, d.descriptors, d.trap_ns, d.reports, d.taints),
            (2, 10, 60, 3, 1)
        );
        assert_eq!((d.max_descriptors_per_trap, d.logging), (9, false));
        assert_eq!(a.since(&b).traps, 0, "a restarted counter does not wrap");
    }

    #[test]
    fn parses_dirty_stats() {
        let text = "traps 12\ndescriptors 40\nmax_descriptors_per_trap 63\n\
                    trap_ns 123456\nreports 3\ntaints 1\nlogging 1\nfuture_key 7\n";
        assert_eq!(
            DirtyStats::parse(text),
            Ok(DirtyStats {
                traps: 12,
                descriptors: 40,
                max_descriptors_per_trap: 63,
                trap_ns: 123456,
                reports: 3,
                taints: 1,
                logging: true,
            })
        );
        let missing = text.replace("taints 1\n", "");
        assert!(DirtyStats::parse(&missing).unwrap_err().contains("taints"));
        assert!(DirtyStats::parse("traps x").unwrap_err().contains("traps"));
        assert!(DirtyStats::parse(&text.replace("logging 1", "logging 2")).is_err());
    }
}
