// SPDX-License-Identifier: GPL-2.0
/*
 * The PCI ID table and driver registration of intel_vf_vfio_pci.
 *
 * They are C because PCI_DRIVER_OVERRIDE_DEVICE_VFIO, MODULE_DEVICE_TABLE and
 * pci_register_driver are macros: the first makes modpost emit "vfio_pci:"
 * aliases (what libvirt matches variant drivers by) and restricts binding to
 * driver_override. The ID list must equal rust/common/src/ids.rs; a host test
 * (tests/id_table.rs in the common crate) compares the two.
 */
#include "shim.h"

static const struct pci_device_id ivf_pci_table[] = {
	/* ixgbe family VFs */
	{ PCI_DRIVER_OVERRIDE_DEVICE_VFIO(PCI_VENDOR_ID_INTEL, 0x10ed) }, /* 82599 */
	{ PCI_DRIVER_OVERRIDE_DEVICE_VFIO(PCI_VENDOR_ID_INTEL, 0x1515) }, /* X540 */
	{ PCI_DRIVER_OVERRIDE_DEVICE_VFIO(PCI_VENDOR_ID_INTEL, 0x1565) }, /* X550 */
	{ PCI_DRIVER_OVERRIDE_DEVICE_VFIO(PCI_VENDOR_ID_INTEL, 0x15a8) }, /* X550EM_x */
	{ PCI_DRIVER_OVERRIDE_DEVICE_VFIO(PCI_VENDOR_ID_INTEL, 0x15c5) }, /* X550EM_a */
	/* igb family VFs */
	{ PCI_DRIVER_OVERRIDE_DEVICE_VFIO(PCI_VENDOR_ID_INTEL, 0x10ca) }, /* 82576 */
	{ PCI_DRIVER_OVERRIDE_DEVICE_VFIO(PCI_VENDOR_ID_INTEL, 0x1520) }, /* I350 */
	{}
};
MODULE_DEVICE_TABLE(pci, ivf_pci_table);

static struct pci_driver ivf_pci_driver = {
	.name = KBUILD_MODNAME,
	.id_table = ivf_pci_table,
	.probe = ivf_pci_probe,
	.remove = ivf_pci_remove,
	.err_handler = &vfio_pci_core_err_handlers,
	/* vfio owns the device's DMA: the PCI core must not set up a domain. */
	.driver_managed_dma = true,
};

int ivf_pci_driver_register(void)
{
	return pci_register_driver(&ivf_pci_driver);
}

void ivf_pci_driver_unregister(void)
{
	pci_unregister_driver(&ivf_pci_driver);
}

void ivf_vfio_put_device(struct vfio_device *vdev)
{
	vfio_put_device(vdev);
}
