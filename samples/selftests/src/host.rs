// SPDX-License-Identifier: GPL-2.0

//! The VM as the runner set it up (tools/vm/run), and the sysfs and module
//! operations the tests perform on it.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use ivf_vfio::sysfs::{Bdf, PciDevice};

/// Our driver's name.
pub const DRIVER: &str = "intel_vf_vfio_pci";

/// The VFs the runner created, in order.
pub fn vfs() -> Vec<Bdf> {
    std::env::var("IVF_VFS")
        .unwrap_or_default()
        .split_whitespace()
        .map(|s| s.parse().expect("IVF_VFS holds PCI addresses"))
        .collect()
}

/// The first `n` VFs, or an error naming what the runner must provide.
pub fn need_vfs(n: usize) -> Result<Vec<Bdf>, String> {
    let v = vfs();
    if v.len() < n {
        return Err(format!(
            "needs {n} VFs, the runner created {} (tools/vm/run --vfs {n})",
            v.len()
        ));
    }
    Ok(v[..n].to_vec())
}

/// Path of the module file.
pub fn module_path() -> PathBuf {
    PathBuf::from(std::env::var("IVF_MODULE").expect("IVF_MODULE is set by tools/vm/run"))
}

fn dev_dir(bdf: Bdf) -> PathBuf {
    PathBuf::from(format!("/sys/bus/pci/devices/{bdf}"))
}

fn write(path: impl Into<PathBuf>, value: &str) -> Result<(), String> {
    let path = path.into();
    fs::write(&path, value)
        .map_err(|e| format!("writing '{}' to {}: {e}", value.trim(), path.display()))
}

/// The driver bound to `bdf`, if any.
pub fn driver_of(bdf: Bdf) -> Option<String> {
    PciDevice::open(bdf).ok()?.driver
}

/// Unbinds `bdf` from whatever driver it has.
pub fn unbind(bdf: Bdf) -> Result<(), String> {
    if driver_of(bdf).is_some() {
        write(dev_dir(bdf).join("driver/unbind"), &bdf.to_string())?;
    }
    Ok(())
}

/// Sets `driver_override` of `bdf` ("" clears it).
pub fn set_override(bdf: Bdf, driver: &str) -> Result<(), String> {
    // An empty override is cleared by writing a newline.
    write(
        dev_dir(bdf).join("driver_override"),
        if driver.is_empty() { "\n" } else { driver },
    )
}

/// Asks the PCI core to probe drivers for `bdf`.
pub fn probe(bdf: Bdf) -> Result<(), String> {
    // drivers_probe fails with ENODEV... when no driver takes the device.
    let _ = fs::write("/sys/bus/pci/drivers_probe", bdf.to_string());
    Ok(())
}

/// Binds `bdf` to our driver through driver_override, and checks it took.
pub fn bind_ours(bdf: Bdf) -> Result<(), String> {
    unbind(bdf)?;
    set_override(bdf, DRIVER)?;
    probe(bdf)?;
    match driver_of(bdf) {
        Some(d) if d == DRIVER => Ok(()),
        other => Err(format!(
            "{bdf} did not bind to {DRIVER} (driver now {other:?})"
        )),
    }
}

/// Whether our module is loaded.
pub fn module_loaded() -> bool {
    PathBuf::from(format!("/sys/module/{DRIVER}")).exists()
}

/// Runs a command, returning (success, combined output).
pub fn sh(cmd: &str, args: &[&str]) -> (bool, String) {
    match Command::new(cmd).args(args).output() {
        Ok(o) => (
            o.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        ),
        Err(e) => (false, format!("{cmd}: {e}")),
    }
}

/// Loads the module and binds every VF to it.
pub fn load_and_bind_all() -> Result<(), String> {
    if !module_loaded() {
        let (ok, out) = sh("insmod", &[module_path().to_str().unwrap()]);
        if !ok {
            return Err(format!("insmod failed: {out}"));
        }
    }
    for vf in vfs() {
        bind_ours(vf)?;
    }
    Ok(())
}

/// Unloads the module (which unbinds every VF from it).
pub fn unload() -> Result<(), String> {
    let (ok, out) = sh("rmmod", &[DRIVER]);
    if !ok {
        return Err(format!("rmmod {DRIVER} failed: {out}"));
    }
    Ok(())
}

/// The substrings of kernel-log lines that mean a bug, one a line (shared
/// with the QEMU tests).
const COMPLAINTS: &str = include_str!("../../kernel_complaints.txt");

/// The kernel log lines that mean a bug: warnings, oopses, leaks, sanitizers.
pub fn kernel_complaints(since_line: usize) -> Vec<String> {
    let bad: Vec<&str> = COMPLAINTS
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    dmesg_lines()
        .into_iter()
        .skip(since_line)
        .filter(|l| bad.iter().any(|b| l.contains(b)))
        .collect()
}

/// The kernel log, one entry per line.
pub fn dmesg_lines() -> Vec<String> {
    let (_, out) = sh("dmesg", &[]);
    out.lines().map(str::to_string).collect()
}
