/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The C side of intel_vf_vfio_pci: only what macros or inline functions
 * force into C. Everything here is called from, or calls into, Rust.
 */
#ifndef IVF_SHIM_H
#define IVF_SHIM_H

#include <linux/pci.h>
#include <linux/vfio.h>
#include <linux/vfio_pci_core.h>

/* Implemented in Rust (pci_drv.rs). */
int ivf_pci_probe(struct pci_dev *pdev, const struct pci_device_id *id);
void ivf_pci_remove(struct pci_dev *pdev);

/* Implemented in C (shim.c). */
int ivf_pci_driver_register(void);
void ivf_pci_driver_unregister(void);
void ivf_vfio_put_device(struct vfio_device *vdev);

#endif
