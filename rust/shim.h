/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The C side of intel_vf_vfio_pci: only what macros or inline functions
 * force into C. Everything here is called from, or calls into, Rust.
 */
#ifndef IVF_SHIM_H
#define IVF_SHIM_H

#include <linux/if_link.h>
#include <linux/pci.h>
#include <linux/vfio.h>
#include <linux/vfio_pci_core.h>

/* Implemented in Rust (pci_drv.rs). */
int ivf_pci_probe(struct pci_dev *pdev, const struct pci_device_id *id);
void ivf_pci_remove(struct pci_dev *pdev);
void ivf_pci_reset_done(struct pci_dev *pdev);

/* Implemented in Rust (lm.rs): the migration data file. */
ssize_t ivf_mig_read(struct file *filp, char __user *buf, size_t len, loff_t *pos);
ssize_t ivf_mig_write(struct file *filp, const char __user *buf, size_t len, loff_t *pos);
long ivf_mig_ioctl(struct file *filp, unsigned int cmd, unsigned long arg);
int ivf_mig_release(struct inode *inode, struct file *filp);

/* Implemented in C (shim.c). */
int ivf_pci_driver_register(void);
void ivf_pci_driver_unregister(void);
void ivf_vfio_put_device(struct vfio_device *vdev);
struct file *ivf_mig_file_create(void *priv, bool save);
int ivf_pf_get_vf_config(struct pci_dev *vf, struct ifla_vf_info *ivi);
int ivf_pf_set_vf_config(struct pci_dev *vf, u32 field, const struct ifla_vf_info *ivi);
void ivf_get_file(struct file *filp);

#endif
