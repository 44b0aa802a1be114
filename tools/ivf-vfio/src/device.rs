// SPDX-License-Identifier: GPL-2.0

//! A VFIO device fd and what can be done with it.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::ptr::NonNull;

use crate::sysfs::{Bdf, PciDevice};
use crate::uapi::*;
use crate::{Error, Result};

/// How the device was opened.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// `/dev/vfio/devices/vfioN` bound to an iommufd IOAS.
    Cdev,
    /// The cdev attached to a paging HWPT allocated from the IOAS, as
    /// QEMU's iommufd backend attaches a device.
    Hwpt,
    /// `/dev/vfio/N` in a type1 container (`/dev/vfio/vfio`).
    Group,
}

impl Backend {
    /// Whether this kernel offers the backend at all (`/dev/iommu` for the
    /// cdev, `/dev/vfio/vfio` for the container).
    pub fn available(self) -> bool {
        match self {
            Backend::Cdev | Backend::Hwpt => std::path::Path::new("/dev/iommu").exists(),
            Backend::Group => std::path::Path::new("/dev/vfio/vfio").exists(),
        }
    }

    /// The iommufd cdev where the kernel has iommufd, else the group.
    pub fn preferred() -> Backend {
        if Backend::Cdev.available() {
            Backend::Cdev
        } else {
            Backend::Group
        }
    }
}

/// The IOMMU side of an open device; kept alive as long as the device.
enum Iommu {
    Cdev {
        iommufd: File,
        ioas_id: u32,
        hwpt: bool,
    },
    Group {
        container: File,
        _group: File,
    },
}

/// An open VFIO device.
pub struct Device {
    bdf: Bdf,
    fd: File,
    iommu: Iommu,
    /// Flags of `VFIO_DEVICE_GET_INFO`.
    pub flags: u32,
    /// Number of regions of `VFIO_DEVICE_GET_INFO`.
    pub num_regions: u32,
}

/// Migration flags of `VFIO_DEVICE_FEATURE_MIGRATION`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct MigrationFlags(pub u64);

impl MigrationFlags {
    /// The flags in words (`stop-copy`, `p2p`, `pre-copy`).
    pub fn names(self) -> Vec<&'static str> {
        [
            (VFIO_MIGRATION_STOP_COPY, "stop-copy"),
            (VFIO_MIGRATION_P2P, "p2p"),
            (VFIO_MIGRATION_PRE_COPY, "pre-copy"),
        ]
        .iter()
        .filter(|(bit, _)| self.0 & bit != 0)
        .map(|(_, name)| *name)
        .collect()
    }
}

/// The errnos with which VFIO_DEVICE_BIND_IOMMUFD refuses a device another
/// user holds: EINVAL when it is bound to another iommufd context already
/// (`vfio_df_open()`, "open_count != 0": the cdev path allows one open; the
/// open(2) of the cdev succeeds, so a second user learns it here), EBUSY
/// when its IOMMU group is open (`vfio_device_block_group()`).
const BIND_BUSY: &[i32] = &[libc::EINVAL, libc::EBUSY];

/// The errno with which opening `/dev/vfio/N` refuses a group another user
/// holds: EBUSY when the group is open already, or a device of it is open
/// through its cdev (`vfio_group_fops_open()`).
const GROUP_OPEN_BUSY: &[i32] = &[libc::EBUSY];

/// `e`, marked busy ([`Error::is_busy`]) if its errno is one of `errnos`.
fn busy_if(e: Error, errnos: &[i32]) -> Error {
    match e.errno() {
        Some(n) if errnos.contains(&n) => Error::busy(e.what, e.source),
        _ => e,
    }
}

fn open_rw(path: &str) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| Error::new(format!("opening {path}"), e))
}

/// `ioctl(fd, req, arg)`, turning -1 into an error naming `what`.
fn ioctl<T>(fd: &impl AsRawFd, req: libc::c_ulong, arg: *mut T, what: &str) -> Result<i32> {
    // SAFETY: every caller passes a request and a pointer to the matching
    // `#[repr(C)]` argument structure with its size field filled in.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), req, arg) };
    if ret < 0 {
        Err(Error::last_os(what))
    } else {
        Ok(ret)
    }
}

/// `ioctl(fd, req, value)` for requests that take a plain integer.
fn ioctl_val(fd: &impl AsRawFd, req: libc::c_ulong, val: libc::c_ulong, what: &str) -> Result<i32> {
    // SAFETY: the request takes an integer argument, not a pointer.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), req, val) };
    if ret < 0 {
        Err(Error::last_os(what))
    } else {
        Ok(ret)
    }
}

const fn argsz<T>() -> u32 {
    size_of::<T>() as u32
}

/// The device fd, for tests that issue ioctls this library does not wrap.
impl AsRawFd for Device {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}

impl Device {
    /// Opens `bdf` through its vfio cdev and a fresh iommufd IOAS.
    pub fn open_cdev(bdf: Bdf) -> Result<Device> {
        Device::open_iommufd(bdf, false)
    }

    /// Opens `bdf` through its vfio cdev, attached to a paging HWPT of a
    /// fresh IOAS (QEMU's way); DMA is still mapped in the IOAS.
    pub fn open_hwpt(bdf: Bdf) -> Result<Device> {
        Device::open_iommufd(bdf, true)
    }

    fn open_iommufd(bdf: Bdf, hwpt: bool) -> Result<Device> {
        let pci = PciDevice::open(bdf)?;
        let cdev = pci.vfio_cdev.ok_or_else(|| not_vfio(bdf, &pci.driver))?;
        let path = format!("/dev/vfio/devices/{cdev}");
        let fd = open_rw(&path)?;
        let iommufd = open_rw("/dev/iommu")?;
        let mut bind = VfioDeviceBindIommufd {
            argsz: argsz::<VfioDeviceBindIommufd>(),
            iommufd: iommufd.as_raw_fd(),
            ..Default::default()
        };
        ioctl(
            &fd,
            VFIO_DEVICE_BIND_IOMMUFD,
            &mut bind,
            &format!("VFIO_DEVICE_BIND_IOMMUFD on {path}"),
        )
        .map_err(|e| busy_if(e, BIND_BUSY))?;
        let mut alloc = IommuIoasAlloc {
            size: argsz::<IommuIoasAlloc>(),
            ..Default::default()
        };
        ioctl(&iommufd, IOMMU_IOAS_ALLOC, &mut alloc, "IOMMU_IOAS_ALLOC")?;
        let mut pt_id = alloc.out_ioas_id;
        if hwpt {
            let mut hw = IommuHwptAlloc {
                size: argsz::<IommuHwptAlloc>(),
                dev_id: bind.out_devid,
                pt_id,
                ..Default::default()
            };
            ioctl(&iommufd, IOMMU_HWPT_ALLOC, &mut hw, "IOMMU_HWPT_ALLOC")?;
            pt_id = hw.out_hwpt_id;
        }
        let mut attach = VfioDeviceAttachIommufdPt {
            argsz: argsz::<VfioDeviceAttachIommufdPt>(),
            pt_id,
            ..Default::default()
        };
        ioctl(
            &fd,
            VFIO_DEVICE_ATTACH_IOMMUFD_PT,
            &mut attach,
            &format!("VFIO_DEVICE_ATTACH_IOMMUFD_PT on {path}"),
        )?;
        Device::finish(
            bdf,
            fd,
            Iommu::Cdev {
                iommufd,
                ioas_id: alloc.out_ioas_id,
                hwpt,
            },
        )
    }

    /// Opens `bdf` through its IOMMU group in a new type1 container.
    pub fn open_group(bdf: Bdf) -> Result<Device> {
        let pci = PciDevice::open(bdf)?;
        if pci.driver.is_none() || pci.vfio_cdev.is_none() {
            return Err(not_vfio(bdf, &pci.driver));
        }
        let group_no = pci.iommu_group.ok_or_else(|| {
            Error::new(
                format!("{bdf} has no IOMMU group"),
                io::Error::from_raw_os_error(libc::ENODEV),
            )
        })?;
        let container = open_rw("/dev/vfio/vfio")?;
        let version = ioctl_val(&container, VFIO_GET_API_VERSION, 0, "VFIO_GET_API_VERSION")?;
        if version != VFIO_API_VERSION {
            return Err(Error::new(
                format!("VFIO API version {version}, expected {VFIO_API_VERSION}"),
                io::Error::from_raw_os_error(libc::EPROTO),
            ));
        }
        let group_path = format!("/dev/vfio/{group_no}");
        let group = open_rw(&group_path).map_err(|e| busy_if(e, GROUP_OPEN_BUSY))?;
        let mut status = VfioGroupStatus {
            argsz: argsz::<VfioGroupStatus>(),
            flags: 0,
        };
        ioctl(
            &group,
            VFIO_GROUP_GET_STATUS,
            &mut status,
            "VFIO_GROUP_GET_STATUS",
        )?;
        if status.flags & VFIO_GROUP_FLAGS_VIABLE == 0 {
            return Err(Error::new(
                format!(
                    "group {group_no} of {bdf} is not viable (a device in it is not bound to vfio)"
                ),
                io::Error::from_raw_os_error(libc::EBUSY),
            ));
        }
        let mut cfd = container.as_raw_fd();
        ioctl(
            &group,
            VFIO_GROUP_SET_CONTAINER,
            &mut cfd,
            "VFIO_GROUP_SET_CONTAINER",
        )?;
        ioctl_val(
            &container,
            VFIO_SET_IOMMU,
            VFIO_TYPE1V2_IOMMU,
            "VFIO_SET_IOMMU(TYPE1v2)",
        )?;
        let name = CString::new(bdf.to_string()).expect("no NUL in a BDF");
        // SAFETY: GET_DEVICE_FD takes a NUL-terminated device name.
        let raw =
            unsafe { libc::ioctl(group.as_raw_fd(), VFIO_GROUP_GET_DEVICE_FD, name.as_ptr()) };
        if raw < 0 {
            return Err(Error::last_os(format!(
                "VFIO_GROUP_GET_DEVICE_FD({bdf}) on {group_path}"
            )));
        }
        // SAFETY: the ioctl returned a new fd that nothing else owns.
        let fd = File::from(unsafe { OwnedFd::from_raw_fd(raw) });
        Device::finish(
            bdf,
            fd,
            Iommu::Group {
                container,
                _group: group,
            },
        )
    }

    /// Opens `bdf` through the kernel's preferred backend: the iommufd cdev
    /// where the kernel has one, else the group/container (kernels built
    /// without `CONFIG_IOMMUFD`, such as Debian's).
    pub fn open_default(bdf: Bdf) -> Result<Device> {
        Device::open(bdf, Backend::preferred())
    }

    /// Opens `bdf` with `backend`.
    pub fn open(bdf: Bdf, backend: Backend) -> Result<Device> {
        match backend {
            Backend::Cdev => Device::open_cdev(bdf),
            Backend::Hwpt => Device::open_hwpt(bdf),
            Backend::Group => Device::open_group(bdf),
        }
    }

    fn finish(bdf: Bdf, fd: File, iommu: Iommu) -> Result<Device> {
        let mut info = VfioDeviceInfo {
            argsz: argsz::<VfioDeviceInfo>(),
            ..Default::default()
        };
        ioctl(&fd, VFIO_DEVICE_GET_INFO, &mut info, "VFIO_DEVICE_GET_INFO")?;
        Ok(Device {
            bdf,
            fd,
            iommu,
            flags: info.flags,
            num_regions: info.num_regions,
        })
    }

    /// The device's PCI address.
    pub fn bdf(&self) -> Bdf {
        self.bdf
    }

    /// How the device was opened.
    pub fn backend(&self) -> Backend {
        match self.iommu {
            Iommu::Cdev { hwpt: false, .. } => Backend::Cdev,
            Iommu::Cdev { hwpt: true, .. } => Backend::Hwpt,
            Iommu::Group { .. } => Backend::Group,
        }
    }

    /// `VFIO_DEVICE_GET_REGION_INFO` of region `index`.
    pub fn region_info(&self, index: u32) -> Result<VfioRegionInfo> {
        let mut info = VfioRegionInfo {
            argsz: argsz::<VfioRegionInfo>(),
            index,
            ..Default::default()
        };
        ioctl(
            &self.fd,
            VFIO_DEVICE_GET_REGION_INFO,
            &mut info,
            &format!("VFIO_DEVICE_GET_REGION_INFO({index})"),
        )?;
        Ok(info)
    }

    /// Reads `buf.len()` bytes of region `index` at `offset` (pread).
    pub fn read_region(&self, index: u32, offset: u64, buf: &mut [u8]) -> Result<()> {
        let info = self.region_info(index)?;
        self.fd
            .read_exact_at(buf, info.offset + offset)
            .map_err(|e| Error::new(format!("reading region {index} at {offset:#x}"), e))
    }

    /// Writes `buf` to region `index` at `offset` (pwrite).
    pub fn write_region(&self, index: u32, offset: u64, buf: &[u8]) -> Result<()> {
        let info = self.region_info(index)?;
        self.fd
            .write_all_at(buf, info.offset + offset)
            .map_err(|e| Error::new(format!("writing region {index} at {offset:#x}"), e))
    }

    /// Reads a 16-bit config-space register.
    pub fn config_read16(&self, offset: u64) -> Result<u16> {
        let mut b = [0u8; 2];
        self.read_region(VFIO_PCI_CONFIG_REGION_INDEX, offset, &mut b)?;
        Ok(u16::from_le_bytes(b))
    }

    /// Writes a 16-bit config-space register.
    pub fn config_write16(&self, offset: u64, value: u16) -> Result<()> {
        self.write_region(VFIO_PCI_CONFIG_REGION_INDEX, offset, &value.to_le_bytes())
    }

    /// Sets Memory Space and Bus Master in the command register: VFIO leaves
    /// both to the user, and a device without Bus Master does no DMA.
    pub fn enable_bus_master(&self) -> Result<()> {
        let cmd = self.config_read16(4)?;
        self.config_write16(4, cmd | 0x6)
    }

    /// Reads a 32-bit BAR0 register through the region (not mmap).
    pub fn bar0_read32(&self, offset: u64) -> Result<u32> {
        let mut b = [0u8; 4];
        self.read_region(VFIO_PCI_BAR0_REGION_INDEX, offset, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// Writes a 32-bit BAR0 register through the region (not mmap).
    pub fn bar0_write32(&self, offset: u64, value: u32) -> Result<()> {
        self.write_region(VFIO_PCI_BAR0_REGION_INDEX, offset, &value.to_le_bytes())
    }

    /// `VFIO_DEVICE_RESET` (a function-level reset of the VF).
    pub fn reset(&self) -> Result<()> {
        ioctl_val(
            &self.fd,
            VFIO_DEVICE_RESET,
            0,
            &format!("VFIO_DEVICE_RESET on {}", self.bdf),
        )
        .map(|_| ())
    }

    /// `VFIO_DEVICE_FEATURE_MIGRATION` GET: the migration flags, or `None`
    /// when the driver offers no migration (ENOTTY).
    pub fn migration_flags(&self) -> Result<Option<MigrationFlags>> {
        match self.feature(
            VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIGRATION,
            [0u8; 8],
            "VFIO_DEVICE_FEATURE(MIGRATION)",
        ) {
            Ok(data) => Ok(Some(MigrationFlags(u64::from_le_bytes(data)))),
            Err(e) if e.errno() == Some(libc::ENOTTY) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Moves the migration FSM to `state` (`uapi::mig`); returns the data fd
    /// when the arc opens one (PRE_COPY, STOP_COPY, RESUMING).
    pub fn set_mig_state(&self, state: u32) -> Result<Option<File>> {
        let mut data = [0u8; 8];
        data[..4].copy_from_slice(&state.to_le_bytes());
        data[4..].copy_from_slice(&(-1i32).to_le_bytes());
        let out = self.feature(
            VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
            data,
            &format!("{}: migration state -> {}", self.bdf, mig::name(state)),
        )?;
        let fd = i32::from_le_bytes([out[4], out[5], out[6], out[7]]);
        // SAFETY: a non-negative data_fd is a new fd the kernel gave us.
        Ok((fd >= 0).then(|| File::from(unsafe { OwnedFd::from_raw_fd(fd) })))
    }

    /// The migration FSM's current state (`uapi::mig`).
    pub fn mig_state(&self) -> Result<u32> {
        let out = self.feature(
            VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
            [0u8; 8],
            &format!("{}: get migration state", self.bdf),
        )?;
        Ok(u32::from_le_bytes([out[0], out[1], out[2], out[3]]))
    }

    /// `VFIO_DEVICE_FEATURE_MIG_DATA_SIZE`: the estimated STOP_COPY length.
    pub fn mig_data_size(&self) -> Result<u64> {
        let out = self.feature(
            VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DATA_SIZE,
            [0u8; 8],
            &format!("{}: migration data size", self.bdf),
        )?;
        Ok(u64::from_le_bytes(out))
    }

    /// `VFIO_DEVICE_FEATURE` with payload `data` (bytes or a structure);
    /// returns the payload as the kernel left it (GET answers, SET outputs
    /// such as a page size or a data fd).
    fn feature<T: Copy>(&self, flags: u32, data: T, what: &str) -> Result<T> {
        let mut feat = VfioDeviceFeature::<T> {
            argsz: argsz::<VfioDeviceFeature<T>>(),
            flags,
            data,
        };
        ioctl(&self.fd, VFIO_DEVICE_FEATURE, &mut feat, what)?;
        Ok(feat.data)
    }

    /// Probes `VFIO_DEVICE_FEATURE_DMA_LOGGING_START` (SET): whether the
    /// device offers DMA dirty logging; `false` when the kernel answers
    /// ENOTTY (no logging ops, or the device's dirty tracking mode is "none").
    pub fn log_probe(&self) -> Result<bool> {
        match self.feature(
            VFIO_DEVICE_FEATURE_PROBE
                | VFIO_DEVICE_FEATURE_SET
                | VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
            [0u8; 0],
            &format!("{}: probe DMA logging", self.bdf),
        ) {
            Ok(_) => Ok(true),
            Err(e) if e.errno() == Some(libc::ENOTTY) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `VFIO_DEVICE_FEATURE_DMA_LOGGING_START`: the device logs its DMA
    /// writes to `ranges` (IOVA, length) at `page_size` granularity; returns
    /// the page size the driver chose (it may be larger than asked). The
    /// errno is kept: EBUSY (already logging), EINVAL (bad ranges), E2BIG
    /// (too many ranges), ENOTTY (no logging).
    pub fn log_start(&self, ranges: &[(u64, u64)], page_size: u64) -> Result<u64> {
        let what = format!(
            "{}: start DMA logging ({} ranges, page size {page_size:#x})",
            self.bdf,
            ranges.len()
        );
        let raw: Vec<VfioDmaLoggingRange> = ranges
            .iter()
            .map(|&(iova, length)| VfioDmaLoggingRange { iova, length })
            .collect();
        let num_ranges = u32::try_from(raw.len())
            .map_err(|_| Error::new(what.clone(), io::Error::from_raw_os_error(libc::E2BIG)))?;
        let ctl = VfioDmaLoggingControl {
            page_size,
            num_ranges,
            reserved: 0,
            // The kernel reads the ranges during the ioctl; `raw` outlives it.
            ranges: raw.as_ptr() as u64,
        };
        let out = self.feature(
            VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
            ctl,
            &what,
        )?;
        Ok(out.page_size)
    }

    /// `VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP` (SET, no payload).
    pub fn log_stop(&self) -> Result<()> {
        self.feature(
            VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP,
            [0u8; 0],
            &format!("{}: stop DMA logging", self.bdf),
        )
        .map(|_| ())
    }

    /// `VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT` (GET): the pages of
    /// `[iova, iova + len)` the device dirtied since the last report (the
    /// kernel clears what it reports). Bit `i` of the returned words (LSB
    /// first) is the page at `iova + i * page_size`; see [`dirty_iovas`].
    /// The bitmap is zeroed before the call. The errno is kept: EINVAL when
    /// not logging, ENOTTY when the device has no logging.
    pub fn log_report(&self, iova: u64, len: u64, page_size: u64) -> Result<Vec<u64>> {
        let what = format!(
            "{}: DMA logging report of {len:#x} bytes at {iova:#x}, page size {page_size:#x}",
            self.bdf
        );
        // A bad page size is the kernel's to refuse; size the bitmap sanely.
        let pages = len.div_ceil(page_size.max(1));
        let words = pages.div_ceil(64).max(1);
        if words > MAX_REPORT_WORDS {
            return Err(Error::new(
                format!("{what}: a bitmap of {words} words; report a smaller range"),
                io::Error::from_raw_os_error(libc::E2BIG),
            ));
        }
        let mut bitmap = vec![0u64; words as usize];
        let report = VfioDmaLoggingReport {
            iova,
            length: len,
            page_size,
            // The kernel writes the bitmap during the ioctl; it outlives it.
            bitmap: bitmap.as_mut_ptr() as u64,
        };
        self.feature(
            VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
            report,
            &what,
        )?;
        Ok(bitmap)
    }

    /// The mmappable areas of region `index`: the sparse-mmap capability's
    /// areas if the region has one, else the whole region.
    pub fn mmap_areas(&self, index: u32) -> Result<Vec<(u64, u64)>> {
        let info = self.region_info(index)?;
        if info.flags & VFIO_REGION_INFO_FLAG_MMAP == 0 {
            return Ok(Vec::new());
        }
        if info.flags & VFIO_REGION_INFO_FLAG_CAPS == 0
            || info.argsz as usize <= size_of::<VfioRegionInfo>()
        {
            return Ok(vec![(0, info.size)]);
        }
        // Again with room for the capability chain.
        let mut buf = vec![0u64; (info.argsz as usize).div_ceil(8)];
        let hdr = buf.as_mut_ptr().cast::<VfioRegionInfo>();
        // SAFETY: `buf` is at least `argsz` bytes, 8-aligned.
        unsafe {
            (*hdr).argsz = info.argsz;
            (*hdr).index = index;
        }
        ioctl(
            &self.fd,
            VFIO_DEVICE_GET_REGION_INFO,
            hdr,
            &format!("VFIO_DEVICE_GET_REGION_INFO({index}) with caps"),
        )?;
        // SAFETY: as above; the kernel filled it in.
        let bytes =
            unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), info.argsz as usize) };
        let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]);
        let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap());
        let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap());
        // SAFETY: as above.
        let mut next = unsafe { (*hdr).cap_offset } as usize;
        let mut hops = 0;
        while next != 0 && next + 8 <= bytes.len() && hops < 16 {
            if u16_at(next) == VFIO_REGION_INFO_CAP_SPARSE_MMAP {
                let n = u32_at(next + 8) as usize;
                return Ok((0..n)
                    .filter(|i| next + 16 + 16 * i + 16 <= bytes.len())
                    .map(|i| (u64_at(next + 16 + 16 * i), u64_at(next + 24 + 16 * i)))
                    .collect());
            }
            next = u32_at(next + 4) as usize;
            hops += 1;
        }
        Ok(vec![(0, info.size)])
    }

    /// Maps BAR `index` into this process: its mmappable areas directly,
    /// the rest (pages the driver traps, any number of holes) through the
    /// region's read/write.
    pub fn map_bar(&self, index: u32) -> Result<Bar> {
        let info = self.region_info(index)?;
        let areas = self.mmap_areas(index)?;
        let mut maps = Vec::new();
        // An empty area (between adjacent holes) has nothing to map.
        for (off, len) in areas.into_iter().filter(|(_, len)| *len != 0) {
            let len = usize::try_from(len).expect("BAR size fits usize");
            // SAFETY: a fresh mapping chosen by the kernel; VFIO checks the
            // offset and length against the region's mmappable areas.
            let ptr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                    self.fd.as_raw_fd(),
                    (info.offset + off) as libc::off_t,
                )
            };
            if ptr == libc::MAP_FAILED {
                return Err(Error::last_os(format!(
                    "mmap of BAR{index} at {off:#x} of {}",
                    self.bdf
                )));
            }
            maps.push(Mapping {
                off: off as usize,
                ptr: NonNull::new(ptr.cast()).expect("non-null"),
                len,
            });
        }
        let fd = self
            .fd
            .try_clone()
            .map_err(|e| Error::new("dup of the device fd", e))?;
        Ok(Bar {
            maps,
            fd,
            region: info.offset,
            len: info.size as usize,
        })
    }

    /// Maps `len` bytes at `vaddr` for device DMA at `iova`.
    pub fn dma_map(&self, vaddr: *mut u8, len: u64, iova: u64) -> Result<()> {
        match &self.iommu {
            Iommu::Cdev {
                iommufd, ioas_id, ..
            } => {
                let mut map = IommuIoasMap {
                    size: argsz::<IommuIoasMap>(),
                    flags: IOMMU_IOAS_MAP_FIXED_IOVA
                        | IOMMU_IOAS_MAP_READABLE
                        | IOMMU_IOAS_MAP_WRITEABLE,
                    ioas_id: *ioas_id,
                    user_va: vaddr as u64,
                    length: len,
                    iova,
                    ..Default::default()
                };
                ioctl(
                    iommufd,
                    IOMMU_IOAS_MAP,
                    &mut map,
                    &format!("IOMMU_IOAS_MAP iova {iova:#x}"),
                )?;
            }
            Iommu::Group { container, .. } => {
                let mut map = VfioIommuType1DmaMap {
                    argsz: argsz::<VfioIommuType1DmaMap>(),
                    flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
                    vaddr: vaddr as u64,
                    iova,
                    size: len,
                };
                ioctl(
                    container,
                    VFIO_IOMMU_MAP_DMA,
                    &mut map,
                    &format!("VFIO_IOMMU_MAP_DMA iova {iova:#x}"),
                )?;
            }
        }
        Ok(())
    }

    /// Removes the DMA mapping of `len` bytes at `iova`.
    pub fn dma_unmap(&self, len: u64, iova: u64) -> Result<()> {
        match &self.iommu {
            Iommu::Cdev {
                iommufd, ioas_id, ..
            } => {
                let mut unmap = IommuIoasUnmap {
                    size: argsz::<IommuIoasUnmap>(),
                    ioas_id: *ioas_id,
                    iova,
                    length: len,
                };
                ioctl(
                    iommufd,
                    IOMMU_IOAS_UNMAP,
                    &mut unmap,
                    &format!("IOMMU_IOAS_UNMAP iova {iova:#x}"),
                )?;
            }
            Iommu::Group { container, .. } => {
                let mut unmap = VfioIommuType1DmaUnmap {
                    argsz: argsz::<VfioIommuType1DmaUnmap>(),
                    flags: 0,
                    iova,
                    size: len,
                };
                ioctl(
                    container,
                    VFIO_IOMMU_UNMAP_DMA,
                    &mut unmap,
                    &format!("VFIO_IOMMU_UNMAP_DMA iova {iova:#x}"),
                )?;
            }
        }
        Ok(())
    }
}

/// Largest report bitmap [`Device::log_report`] allocates (64 MiB of words).
const MAX_REPORT_WORDS: u64 = 8 << 20;

/// The IOVAs of the dirty pages of a [`Device::log_report`] bitmap taken
/// at `iova` with `page_size`, ascending.
pub fn dirty_iovas(bitmap: &[u64], iova: u64, page_size: u64) -> Vec<u64> {
    let mut out = Vec::new();
    for (w, word) in bitmap.iter().enumerate() {
        let mut bits = *word;
        while bits != 0 {
            let bit = u64::from(bits.trailing_zeros());
            bits &= bits - 1;
            let index = w as u64 * 64 + bit;
            out.push(iova.wrapping_add(index.wrapping_mul(page_size)));
        }
    }
    out
}

fn not_vfio(bdf: Bdf, driver: &Option<String>) -> Error {
    let now = driver.as_deref().unwrap_or("no driver");
    Error::new(
        format!("{bdf} is not bound to a vfio driver (it has {now}); bind it to intel_vf_vfio_pci first"),
        io::Error::from_raw_os_error(libc::ENODEV),
    )
}

struct Mapping {
    off: usize,
    ptr: NonNull<u8>,
    len: usize,
}

/// A BAR as this process sees it: mapped where the driver allows, read and
/// written through the device fd elsewhere; unmapped on drop.
pub struct Bar {
    maps: Vec<Mapping>,
    fd: File,
    region: u64,
    len: usize,
}

impl Bar {
    /// Length of the BAR in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the BAR is empty (never, for a real one).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether `offset` is reached by a direct mapping (not trapped).
    pub fn is_mapped(&self, offset: usize) -> bool {
        self.map_of(offset).is_some()
    }

    fn map_of(&self, offset: usize) -> Option<*mut u32> {
        assert!(
            offset % 4 == 0 && offset + 4 <= self.len,
            "register {offset:#x} outside BAR of {:#x}",
            self.len
        );
        self.maps
            .iter()
            .find(|m| offset >= m.off && offset + 4 <= m.off + m.len)
            // SAFETY: in bounds of that mapping and aligned (checked).
            .map(|m| unsafe { m.ptr.as_ptr().add(offset - m.off).cast() })
    }

    /// A 32-bit MMIO read (through the driver for a trapped page).
    pub fn read32(&self, offset: usize) -> u32 {
        match self.map_of(offset) {
            // SAFETY: a mapped, aligned register; MMIO needs volatile.
            Some(p) => unsafe { p.read_volatile() },
            None => {
                let mut b = [0u8; 4];
                match self.fd.read_exact_at(&mut b, self.region + offset as u64) {
                    Ok(()) => u32::from_le_bytes(b),
                    Err(_) => u32::MAX,
                }
            }
        }
    }

    /// A 32-bit MMIO write (through the driver for a trapped page).
    pub fn write32(&self, offset: usize, value: u32) {
        match self.map_of(offset) {
            // SAFETY: a mapped, aligned register; MMIO needs volatile.
            Some(p) => unsafe { p.write_volatile(value) },
            None => {
                let _ = self
                    .fd
                    .write_all_at(&value.to_le_bytes(), self.region + offset as u64);
            }
        }
    }
}

// SAFETY: a Bar owns its mappings and its fd; MMIO through `&self` is
// volatile and needs no exclusion, so a Bar may move to and be shared with
// another thread (a VMM's vCPU thread).
unsafe impl Send for Bar {}
// SAFETY: as above.
unsafe impl Sync for Bar {}

impl Drop for Bar {
    fn drop(&mut self) {
        for m in &self.maps {
            // SAFETY: unmapping exactly what `map_bar` mapped.
            unsafe { libc::munmap(m.ptr.as_ptr().cast(), m.len) };
        }
    }
}
/// `VFIO_MIG_GET_PRECOPY_INFO` on a PRE_COPY data fd: (initial, dirty) bytes.
pub fn precopy_info(data_fd: &File) -> Result<(u64, u64)> {
    let mut info = VfioPrecopyInfo {
        argsz: argsz::<VfioPrecopyInfo>(),
        ..Default::default()
    };
    ioctl(
        data_fd,
        VFIO_MIG_GET_PRECOPY_INFO,
        &mut info,
        "VFIO_MIG_GET_PRECOPY_INFO",
    )?;
    Ok((info.initial_bytes, info.dirty_bytes))
}

/// Reads a data fd to its end (STOP_COPY) or its temporary end (ENOMSG in
/// PRE_COPY), appending to `out`; returns whether the end was permanent.
pub fn read_data(data_fd: &mut File, out: &mut Vec<u8>) -> Result<bool> {
    use std::io::Read;
    let mut chunk = [0u8; 4096];
    loop {
        match data_fd.read(&mut chunk) {
            Ok(0) => return Ok(true),
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e) if e.raw_os_error() == Some(libc::ENOMSG) => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::new("reading migration data", e)),
        }
    }
}

/// Writes all of `data` to a RESUMING data fd.
pub fn write_data(data_fd: &mut File, data: &[u8]) -> Result<()> {
    use std::io::Write;
    data_fd
        .write_all(data)
        .map_err(|e| Error::new("writing migration data", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dirty_iovas_of_a_bitmap() {
        assert!(dirty_iovas(&[0, 0], 0x1000, 4096).is_empty());
        assert_eq!(
            dirty_iovas(&[0b101, 1 << 63, 1], 0x1000_0000, 4096),
            vec![
                0x1000_0000,
                0x1000_2000,
                0x1000_0000 + 127 * 4096,
                0x1000_0000 + 128 * 4096
            ]
        );
        assert_eq!(dirty_iovas(&[0b10], 0, 8192), vec![8192]);
    }

    fn os(what: &str, errno: i32) -> Error {
        Error::new(what, io::Error::from_raw_os_error(errno))
    }

    #[test]
    fn a_concurrent_open_is_busy() {
        let bind = "VFIO_DEVICE_BIND_IOMMUFD on /dev/vfio/devices/vfio0";
        // The cdev path: the device is bound to another iommufd (EINVAL),
        // or its group is open (EBUSY).
        for errno in [libc::EINVAL, libc::EBUSY] {
            let e = busy_if(os(bind, errno), BIND_BUSY);
            assert!(e.is_busy(), "{e}");
            assert_eq!(e.errno(), Some(errno), "the kernel's errno is kept");
            assert_eq!(e.what, bind);
        }
        // The group path answers EBUSY only.
        assert!(busy_if(os("opening /dev/vfio/7", libc::EBUSY), GROUP_OPEN_BUSY).is_busy());
        assert!(!busy_if(os("opening /dev/vfio/7", libc::EINVAL), GROUP_OPEN_BUSY).is_busy());
        // Other refusals are not "busy".
        for errno in [libc::EPERM, libc::ENODEV, libc::EFAULT, libc::EACCES] {
            assert!(!busy_if(os(bind, errno), BIND_BUSY).is_busy());
        }
        assert!(!os(bind, libc::EBUSY).is_busy(), "only the open steps mark");
    }
}
