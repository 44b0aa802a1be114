/*
 * Emulated Intel 82599 (intel-vf-vfio test bed): the VF's PCI function
 * (8086:10ED). Its BAR0 (16 KiB) is translated to the PF's registers of
 * the VF's pool (ixgbe_pf.c), BAR3 holds its 3 MSI-X vectors. A Function
 * Level Reset resets the VF's queues and interrupt registers and reports a
 * VFLR event to the PF (VFLRE, EICR.MAILBOX).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "hw/pci/msix.h"
#include "hw/pci/pcie.h"
#include "hw/pci/pcie_sriov.h"
#include "ixgbe.h"

OBJECT_DECLARE_SIMPLE_TYPE(IxgbeVfState, IXGBE_VF)

struct IxgbeVfState {
    PCIDevice parent_obj;
    MemoryRegion mmio;
    MemoryRegion msix;
};

static IxgbeState *vf_pf(PCIDevice *d)
{
    return IXGBE_PF(pcie_sriov_get_pf(d));
}

static uint64_t vf_mmio_read(void *opaque, hwaddr addr, unsigned size)
{
    PCIDevice *d = opaque;
    IxgbeState *s = vf_pf(d);
    int vf = pcie_sriov_vf_number(d);
    uint64_t v = ixgbe_vf_mmio_read(s, vf, addr);

    IXDBG(s, "VF %d rd %04" HWADDR_PRIx " -> %08" PRIx64, vf, addr, v);
    return v;
}

static void vf_mmio_write(void *opaque, hwaddr addr, uint64_t val, unsigned size)
{
    PCIDevice *d = opaque;
    IxgbeState *s = vf_pf(d);
    int vf = pcie_sriov_vf_number(d);

    IXDBG(s, "VF %d wr %04" HWADDR_PRIx " <- %08" PRIx64, vf, addr, val);
    ixgbe_vf_mmio_write(s, vf, addr, val);
}

static const MemoryRegionOps vf_mmio_ops = {
    .read = vf_mmio_read,
    .write = vf_mmio_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .impl = { .min_access_size = 4, .max_access_size = 4 },
    .valid = { .min_access_size = 4, .max_access_size = 4 },
};

static void vf_write_config(PCIDevice *d, uint32_t addr, uint32_t val, int len)
{
    IxgbeState *s = vf_pf(d);
    int vf = pcie_sriov_vf_number(d);
    uint32_t devctl = d->exp.exp_cap + PCI_EXP_DEVCTL;

    /* An FLR (Device Control's Initiate FLR) resets the VF through its
     * qdev reset; remember that this reset is an FLR. */
    if (d->exp.exp_cap && range_covers_byte(addr, len, devctl + 1) &&
        ((val >> (8 * (devctl + 1 - addr))) & (PCI_EXP_DEVCTL_BCR_FLR >> 8))) {
        s->vf[vf].flr_pending = true;
    }
    pci_default_write_config(d, addr, val, len);
    pcie_cap_flr_write_config(d, addr, val, len);
    s->vf[vf].flr_pending = false;
}

static void vf_realize(PCIDevice *d, Error **errp)
{
    IxgbeVfState *v = IXGBE_VF(d);

    d->config_write = vf_write_config;
    memory_region_init_io(&v->mmio, OBJECT(d), &vf_mmio_ops, d,
                          "ixgbe-82599-vf-mmio", IXGBE_VF_MMIO_SIZE);
    pci_register_bar(d, 0, PCI_BASE_ADDRESS_MEM_TYPE_64 |
                     PCI_BASE_ADDRESS_MEM_PREFETCH, &v->mmio);
    memory_region_init(&v->msix, OBJECT(d), "ixgbe-82599-vf-msix",
                       IXGBE_VF_MSIX_SIZE);
    pci_register_bar(d, 3, PCI_BASE_ADDRESS_MEM_TYPE_64 |
                     PCI_BASE_ADDRESS_MEM_PREFETCH, &v->msix);
    if (msix_init(d, IXGBE_VF_VECTORS, &v->msix, 3, 0, &v->msix, 3, 0x2000,
                  0x70, errp)) {
        return;
    }
    for (int i = 0; i < IXGBE_VF_VECTORS; i++) {
        msix_vector_use(d, i);
    }
    if (pcie_endpoint_cap_init(d, 0xA0) < 0) {
        error_setg(errp, "ixgbe-82599-vf: no room for the PCIe capability");
        return;
    }
    pcie_cap_flr_init(d);
    if (pcie_aer_init(d, 1, 0x100, 0x40, errp) < 0) {
        return;
    }
    pcie_ari_init(d, 0x150);
}

static void vf_exit(PCIDevice *d)
{
    IxgbeVfState *v = IXGBE_VF(d);

    pcie_aer_exit(d);
    pcie_cap_exit(d);
    msix_unuse_all_vectors(d);
    msix_uninit(d, &v->msix, &v->msix);
}

static void vf_reset_hold(Object *obj, ResetType type)
{
    PCIDevice *d = PCI_DEVICE(obj);
    IxgbeState *s = vf_pf(d);
    int vf = pcie_sriov_vf_number(d);

    ixgbe_vf_reset(s, vf, s->vf[vf].flr_pending);
}

static void vf_class_init(ObjectClass *klass, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIDeviceClass *k = PCI_DEVICE_CLASS(klass);
    ResettableClass *rc = RESETTABLE_CLASS(klass);

    k->realize = vf_realize;
    k->exit = vf_exit;
    k->vendor_id = PCI_VENDOR_ID_INTEL;
    k->device_id = IXGBE_VF_DEVID;
    k->revision = 1;
    k->class_id = PCI_CLASS_NETWORK_ETHERNET;
    rc->phases.hold = vf_reset_hold;
    dc->desc = "Intel 82599 Virtual Function, intel-vf-vfio model";
    dc->user_creatable = false;
    set_bit(DEVICE_CATEGORY_NETWORK, dc->categories);
}

static const TypeInfo vf_info = {
    .name = TYPE_IXGBE_VF,
    .parent = TYPE_PCI_DEVICE,
    .instance_size = sizeof(IxgbeVfState),
    .class_init = vf_class_init,
    .interfaces = (InterfaceInfo[]) {
        { INTERFACE_PCIE_DEVICE },
        { }
    },
};

static void vf_register_types(void)
{
    type_register_static(&vf_info);
}

type_init(vf_register_types)
