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
#include <linux/anon_inodes.h>
#include <linux/file.h>
#include <linux/netdevice.h>
#include <linux/rtnetlink.h>

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

static const struct pci_error_handlers ivf_err_handlers = {
	.error_detected = vfio_pci_core_aer_err_detected,
	/* A reset ends any migration in progress (the deferred-reset pattern). */
	.reset_done = ivf_pci_reset_done,
};

static struct pci_driver ivf_pci_driver = {
	.name = KBUILD_MODNAME,
	.id_table = ivf_pci_table,
	.probe = ivf_pci_probe,
	.remove = ivf_pci_remove,
	.err_handler = &ivf_err_handlers,
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

/* The migration data fds: THIS_MODULE and the fops tables are macros/C. */
static const struct file_operations ivf_save_fops = {
	.owner = THIS_MODULE,
	.read = ivf_mig_read,
	.unlocked_ioctl = ivf_mig_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.release = ivf_mig_release,
};

static const struct file_operations ivf_resume_fops = {
	.owner = THIS_MODULE,
	.write = ivf_mig_write,
	.release = ivf_mig_release,
};

struct file *ivf_mig_file_create(void *priv, bool save)
{
	struct file *filp;

	filp = anon_inode_getfile("intel_vf_mig", save ? &ivf_save_fops : &ivf_resume_fops,
				  priv, save ? O_RDONLY : O_WRONLY);
	if (!IS_ERR(filp))
		stream_open(filp->f_inode, filp);
	return filp;
}

void ivf_get_file(struct file *filp)
{
	get_file(filp);
}

/*
 * The PF netdev's VF settings (ndo_get_vf_config / ndo_set_vf_*), which any
 * SR-IOV PF driver implements. C for for_each_netdev (a macro); the policy
 * of what to read, compare and set is Rust's (pf_admin.rs).
 */
static struct net_device *ivf_pf_netdev(struct pci_dev *vf)
{
	struct net_device *nd;

	ASSERT_RTNL();
	if (!vf->is_virtfn)
		return NULL;
	for_each_netdev(&init_net, nd)
		if (nd->dev.parent == &vf->physfn->dev)
			return nd;
	return NULL;
}

/* Takes rtnl and finds the VF's PF netdev and VF index; on error, no lock. */
static struct net_device *ivf_pf_lock(struct pci_dev *vf, int *id)
{
	struct net_device *nd;

	*id = pci_iov_vf_id(vf);
	if (*id < 0)
		return ERR_PTR(*id);
	rtnl_lock();
	nd = ivf_pf_netdev(vf);
	if (!nd) {
		rtnl_unlock();
		return ERR_PTR(-ENODEV);
	}
	return nd;
}

int ivf_pf_get_vf_config(struct pci_dev *vf, struct ifla_vf_info *ivi)
{
	struct net_device *nd;
	int id, ret = -EOPNOTSUPP;

	nd = ivf_pf_lock(vf, &id);
	if (IS_ERR(nd))
		return PTR_ERR(nd);
	if (nd->netdev_ops->ndo_get_vf_config) {
		memset(ivi, 0, sizeof(*ivi));
		ivi->vf = id;
		ret = nd->netdev_ops->ndo_get_vf_config(nd, id, ivi);
	}
	rtnl_unlock();
	return ret;
}

int ivf_pf_set_vf_config(struct pci_dev *vf, u32 field, const struct ifla_vf_info *ivi)
{
	const struct net_device_ops *ops;
	struct net_device *nd;
	int id, ret = -EOPNOTSUPP;

	nd = ivf_pf_lock(vf, &id);
	if (IS_ERR(nd))
		return PTR_ERR(nd);
	ops = nd->netdev_ops;
	switch (field) {
	case 0:
		if (ops->ndo_set_vf_mac)
			ret = ops->ndo_set_vf_mac(nd, id, (u8 *)ivi->mac);
		break;
	case 1:
		if (ops->ndo_set_vf_vlan)
			ret = ops->ndo_set_vf_vlan(nd, id, ivi->vlan, ivi->qos,
						   ivi->vlan_proto ?: htons(ETH_P_8021Q));
		break;
	case 2:
		if (ops->ndo_set_vf_spoofchk)
			ret = ops->ndo_set_vf_spoofchk(nd, id, ivi->spoofchk);
		break;
	case 3:
		if (ops->ndo_set_vf_trust)
			ret = ops->ndo_set_vf_trust(nd, id, ivi->trusted);
		break;
	case 4:
		if (ops->ndo_set_vf_rate)
			ret = ops->ndo_set_vf_rate(nd, id, ivi->min_tx_rate, ivi->max_tx_rate);
		break;
	case 5:
		if (ops->ndo_set_vf_link_state)
			ret = ops->ndo_set_vf_link_state(nd, id, ivi->linkstate);
		break;
	default:
		ret = -EINVAL;
	}
	rtnl_unlock();
	return ret;
}
