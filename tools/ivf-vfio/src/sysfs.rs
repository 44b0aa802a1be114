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
}

impl PciDevice {
    /// Processes holding this device's vfio cdev or IOMMU group open, as
    /// (pid, command name). Unreadable /proc entries are skipped.
    pub fn vfio_holders(&self) -> Vec<(u32, String)> {
        let mut targets = Vec::new();
        if let Some(c) = &self.vfio_cdev {
            targets.push(PathBuf::from(format!("/dev/vfio/devices/{c}")));
        }
        if let Some(g) = self.iommu_group {
            targets.push(PathBuf::from(format!("/dev/vfio/{g}")));
        }
        let me = std::process::id();
        let mut out = Vec::new();
        let Ok(procs) = fs::read_dir("/proc") else {
            return out;
        };
        for p in procs.flatten() {
            let Some(pid) = p.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            if pid == me {
                continue;
            }
            let Ok(fds) = fs::read_dir(p.path().join("fd")) else {
                continue;
            };
            if fds
                .flatten()
                .any(|fd| fs::read_link(fd.path()).is_ok_and(|t| targets.contains(&t)))
            {
                let comm = read_trimmed(&p.path().join("comm")).unwrap_or_default();
                out.push((pid, comm));
            }
        }
        out
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
