// SPDX-License-Identifier: GPL-2.0

//! The walking skeleton: the module serves VFs exactly as vfio-pci does.

use std::path::Path;

use ivf_common::ids::SUPPORTED_VFS;
use ivf_common::regs::{self, STATUS_LINK_UP};
use ivf_vfio::sysfs::PciDevice;
use ivf_vfio::uapi::{
    VFIO_DEVICE_FLAGS_PCI, VFIO_DEVICE_FLAGS_RESET, VFIO_PCI_CONFIG_REGION_INDEX,
};
use ivf_vfio::{Backend, Device};

use crate::host::{self, DRIVER};
use crate::ktap::{Outcome, Test};
use crate::{ensure, ensure_eq, tests};

/// The tests of this file, in run order.
pub const TESTS: &[&Test] = tests![
    modinfo_vfio_pci_aliases,
    vfs_bound_with_cdev_and_group,
    bind_requires_driver_override,
    bind_unbind_repeated,
    open_close_iommufd_cdev,
    open_close_legacy_group,
    config_space_ids,
    bar0_mmap_registers,
    flr_through_device_reset,
    exclusive_open,
    unload_while_open_is_refused,
    reload_cycles_clean,
];

fn modinfo_vfio_pci_aliases() -> Outcome {
    let (ok, out) = host::sh(
        "modinfo",
        &["-F", "alias", host::module_path().to_str().unwrap()],
    );
    ensure!(ok, "modinfo failed: {out}");
    let mut got: Vec<String> = out.lines().map(str::to_string).collect();
    got.sort();
    let mut want: Vec<String> = SUPPORTED_VFS
        .iter()
        .map(|v| format!("vfio_pci:v00008086d0000{:04X}sv*sd*bc*sc*i*", v.device_id))
        .collect();
    want.sort();
    ensure_eq!(got, want, "vfio_pci aliases of the module");
    Ok(())
}

fn vfs_bound_with_cdev_and_group() -> Outcome {
    let vfs = host::need_vfs(2)?;
    for vf in vfs {
        let dev = PciDevice::open(vf).map_err(|e| e.to_string())?;
        ensure_eq!(dev.driver.as_deref(), Some(DRIVER), "driver of {vf}");
        // The cdev exists where the kernel has iommufd; the group always.
        if Backend::Cdev.available() {
            let cdev = dev.vfio_cdev.ok_or(format!("{vf} has no vfio-dev entry"))?;
            ensure!(
                Path::new(&format!("/dev/vfio/devices/{cdev}")).exists(),
                "/dev/vfio/devices/{cdev} missing"
            );
        } else {
            println!("# {vf}: no iommufd in this kernel: group only");
        }
        let group = dev.iommu_group.ok_or(format!("{vf} has no IOMMU group"))?;
        ensure!(
            Path::new(&format!("/dev/vfio/{group}")).exists(),
            "/dev/vfio/{group} missing for {vf}"
        );
    }
    Ok(())
}

fn bind_requires_driver_override() -> Outcome {
    let vf = host::need_vfs(1)?[0];
    let pf = PciDevice::open(vf)
        .map_err(|e| e.to_string())?
        .physfn
        .ok_or("VF has no PF")?;
    let autoprobe = format!("/sys/bus/pci/devices/{pf}/sriov_drivers_autoprobe");
    // Let VFs probe normally, so only our ID table's override flag can refuse.
    std::fs::write(&autoprobe, "1").map_err(|e| format!("{autoprobe}: {e}"))?;
    let result = (|| {
        host::unbind(vf)?;
        host::set_override(vf, "")?;
        host::probe(vf)?;
        let drv = host::driver_of(vf);
        ensure!(
            drv.as_deref() != Some(DRIVER),
            "{vf} bound to {DRIVER} without driver_override"
        );
        host::bind_ours(vf)
    })();
    std::fs::write(&autoprobe, "0").map_err(|e| format!("{autoprobe}: {e}"))?;
    result
}

fn bind_unbind_repeated() -> Outcome {
    let vfs = host::need_vfs(2)?;
    for round in 0..5 {
        for &vf in &vfs {
            let cdev = PciDevice::open(vf).map_err(|e| e.to_string())?.vfio_cdev;
            host::unbind(vf)?;
            ensure_eq!(
                host::driver_of(vf),
                None,
                "round {round}: driver of {vf} after unbind"
            );
            if let Some(c) = cdev {
                ensure!(
                    !Path::new(&format!("/dev/vfio/devices/{c}")).exists(),
                    "{c} survived unbind of {vf}"
                );
            }
        }
        for &vf in &vfs {
            host::bind_ours(vf)?;
            // The rebound device is usable, not just listed.
            let dev = Device::open_default(vf).map_err(|e| format!("round {round}: {e}"))?;
            ensure_eq!(
                dev.config_read16(0).map_err(|e| e.to_string())?,
                0x8086,
                "vendor after rebind"
            );
        }
    }
    Ok(())
}

fn open_close(backend: Backend) -> Outcome {
    if !backend.available() {
        return crate::ktap::skip(format!(
            "this kernel has no {backend:?} backend (built without CONFIG_IOMMUFD / VFIO_DEVICE_CDEV)"
        ));
    }
    let vfs = host::need_vfs(2)?;
    for round in 0..3 {
        for &vf in &vfs {
            let dev = Device::open(vf, backend).map_err(|e| format!("round {round}: {e}"))?;
            ensure_eq!(dev.backend(), backend, "backend");
            ensure!(
                dev.flags & VFIO_DEVICE_FLAGS_PCI != 0,
                "{vf}: not a PCI device (flags {:#x})",
                dev.flags
            );
            ensure!(
                dev.num_regions >= 9,
                "{vf}: {} regions, vfio-pci has at least 9",
                dev.num_regions
            );
            drop(dev);
        }
    }
    // Both VFs open at once, each in its own group/IOAS.
    let a = Device::open(vfs[0], backend).map_err(|e| e.to_string())?;
    let b = Device::open(vfs[1], backend).map_err(|e| e.to_string())?;
    ensure_eq!(
        a.config_read16(0).map_err(|e| e.to_string())?,
        0x8086,
        "VF0 vendor"
    );
    ensure_eq!(
        b.config_read16(0).map_err(|e| e.to_string())?,
        0x8086,
        "VF1 vendor"
    );
    Ok(())
}

fn open_close_iommufd_cdev() -> Outcome {
    open_close(Backend::Cdev)
}

fn open_close_legacy_group() -> Outcome {
    open_close(Backend::Group)
}

fn config_space_ids() -> Outcome {
    for vf in host::need_vfs(2)? {
        let sys = PciDevice::open(vf).map_err(|e| e.to_string())?;
        let dev = Device::open_default(vf).map_err(|e| e.to_string())?;
        let vendor = dev.config_read16(0).map_err(|e| e.to_string())?;
        let device = dev.config_read16(2).map_err(|e| e.to_string())?;
        // A VF's ID registers read 0xffff in hardware: vfio-pci virtualises
        // them, and they must match what sysfs reports.
        ensure_eq!(
            (vendor, device),
            (sys.vendor, sys.device),
            "{vf} IDs through VFIO config space"
        );
        ensure_eq!((vendor, device), (0x8086, 0x10ca), "{vf} is an 82576 VF");
        let info = dev
            .region_info(VFIO_PCI_CONFIG_REGION_INDEX)
            .map_err(|e| e.to_string())?;
        ensure!(info.size >= 256, "config region is {} bytes", info.size);
    }
    Ok(())
}

fn bar0_mmap_registers() -> Outcome {
    let vf = host::need_vfs(1)?[0];
    let map = &regs::IGB;
    let dev = Device::open_default(vf).map_err(|e| e.to_string())?;
    let bar = dev.map_bar(0).map_err(|e| e.to_string())?;
    ensure!(
        bar.len() >= 16 * 1024,
        "BAR0 is {} bytes, an 82576 VF has 16 KiB",
        bar.len()
    );
    let status_mmap = bar.read32(map.status as usize);
    let status_rw = dev
        .bar0_read32(map.status as u64)
        .map_err(|e| e.to_string())?;
    ensure_eq!(
        status_mmap,
        status_rw,
        "STATUS through mmap and through read()"
    );
    ensure!(
        status_mmap & STATUS_LINK_UP != 0,
        "STATUS {status_mmap:#x}: link is not up"
    );
    // A write through the mapping is seen through the region, and back.
    let rdbal = map.rx.bal as usize;
    bar.write32(rdbal, 0x1234_5600);
    ensure_eq!(
        dev.bar0_read32(rdbal as u64).map_err(|e| e.to_string())?,
        0x1234_5600,
        "RDBAL0 written through mmap"
    );
    dev.bar0_write32(rdbal as u64, 0x0abc_de00)
        .map_err(|e| e.to_string())?;
    ensure_eq!(
        bar.read32(rdbal),
        0x0abc_de00,
        "RDBAL0 written through write()"
    );
    Ok(())
}

fn flr_through_device_reset() -> Outcome {
    let vf = host::need_vfs(1)?[0];
    let map = &regs::IGB;
    let dev = Device::open_default(vf).map_err(|e| e.to_string())?;
    ensure!(
        dev.flags & VFIO_DEVICE_FLAGS_RESET != 0,
        "device does not advertise reset (flags {:#x})",
        dev.flags
    );
    let bar = dev.map_bar(0).map_err(|e| e.to_string())?;
    let dctl = map.rx.dctl as usize;
    bar.write32(dctl, bar.read32(dctl) | regs::DCTL_ENABLE);
    ensure!(
        bar.read32(dctl) & regs::DCTL_ENABLE != 0,
        "RXDCTL0 enable did not stick before reset"
    );
    dev.reset().map_err(|e| e.to_string())?;
    let after = bar.read32(dctl);
    ensure!(
        after & regs::DCTL_ENABLE == 0,
        "RXDCTL0 {after:#x}: queue still enabled after FLR"
    );
    ensure_eq!(
        dev.config_read16(0).map_err(|e| e.to_string())?,
        0x8086,
        "vendor after reset"
    );
    Ok(())
}

fn exclusive_open() -> Outcome {
    let vf = host::need_vfs(1)?[0];
    let _first = Device::open_group(vf).map_err(|e| e.to_string())?;
    match Device::open_default(vf) {
        Err(e) => {
            ensure_eq!(
                e.errno(),
                Some(libc::EBUSY),
                "second open through the cdev while the group has it: {e}"
            )
        }
        Ok(_) => return Err("a second user opened the device while the group holds it".into()),
    }
    Ok(())
}

fn unload_while_open_is_refused() -> Outcome {
    let vf = host::need_vfs(1)?[0];
    let dev = Device::open_default(vf).map_err(|e| e.to_string())?;
    let (ok, out) = host::sh("rmmod", &[DRIVER]);
    ensure!(!ok, "rmmod succeeded while {vf} was open");
    ensure!(
        out.contains("in use"),
        "rmmod refused for another reason: {out}"
    );
    ensure!(host::module_loaded(), "module gone after a refused rmmod");
    // The open device still works.
    ensure_eq!(
        dev.config_read16(0).map_err(|e| e.to_string())?,
        0x8086,
        "vendor while rmmod was refused"
    );
    drop(dev);
    host::unload()?;
    for vf in host::vfs() {
        ensure_eq!(host::driver_of(vf), None, "{vf} driver after rmmod");
    }
    host::load_and_bind_all()
}

fn reload_cycles_clean() -> Outcome {
    let start = host::dmesg_lines().len();
    for cycle in 0..3 {
        host::unload().map_err(|e| format!("cycle {cycle}: {e}"))?;
        ensure!(!host::module_loaded(), "cycle {cycle}: module still loaded");
        host::load_and_bind_all().map_err(|e| format!("cycle {cycle}: {e}"))?;
        for vf in host::vfs() {
            let dev = Device::open_default(vf).map_err(|e| format!("cycle {cycle}: {e}"))?;
            ensure_eq!(
                dev.config_read16(2).map_err(|e| e.to_string())?,
                0x10ca,
                "device ID"
            );
        }
    }
    let bad = host::kernel_complaints(start);
    ensure!(bad.is_empty(), "kernel complained:\n{}", bad.join("\n"));
    Ok(())
}
