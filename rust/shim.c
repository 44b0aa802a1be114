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
#include <linux/debugfs.h>
#include <linux/file.h>
#include <linux/interval_tree.h>
#include <linux/iommu.h>
#include <linux/iommufd.h>
#include <linux/mm.h>
#include <linux/sysfs.h>
#include <linux/uaccess.h>
#include <linux/netdevice.h>
#include <linux/rtnetlink.h>
#include <linux/random.h>
#include <linux/unaligned.h>

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

/*
 * sysfs on each bound VF: the switches (below, from rust/switches.rs) and
 * dirty_stats (the tracker's counters). The policy is Rust's; the
 * attribute plumbing is macros.
 */
/*
 * The vfio core hands DMA logging reports over as an iova_bitmap, which
 * only kernels with CONFIG_IOMMUFD_DRIVER have (Debian's have not: every
 * report would fail with EOPNOTSUPP). Without it the driver offers no
 * device dirty tracking at all.
 */
bool ivf_device_logging_supported(void)
{
	return IS_REACHABLE(CONFIG_IOMMUFD_DRIVER);
}

static ssize_t dirty_stats_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	struct ivf_dirty_stats st;
	int ret = ivf_dirty_stats_get(to_pci_dev(dev), &st);

	if (ret)
		return ret;
	return sysfs_emit(buf,
			  "logging %llu\ntraps %llu\ndescriptors %llu\n"
			  "max_descriptors_per_trap %llu\ntrap_ns %llu\nreports %llu\ntaints %llu\n",
			  st.logging, st.traps, st.descriptors, st.max_descriptors_per_trap,
			  st.trap_ns, st.reports, st.taints);
}
/* The counters follow the tenant's traffic: root only. */
static DEVICE_ATTR_ADMIN_RO(dirty_stats);

/*
 * guest_generation (the migration generation the guest capability shows),
 * guest_capability_offset (where it sits while open, else -1) and
 * migration_flags (the VFIO_MIGRATION_* bits offered): what vfmig list and
 * info show without opening the VF.
 */
static ssize_t guest_generation_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "0x%08x\n", ivf_guest_cap_generation(to_pci_dev(dev)));
}
/* Changes when a tenant arrives: root only. */
static DEVICE_ATTR_ADMIN_RO(guest_generation);

static ssize_t guest_capability_offset_show(struct device *dev, struct device_attribute *attr,
					    char *buf)
{
	int off = ivf_guest_cap_offset(to_pci_dev(dev));

	return off < 0 ? sysfs_emit(buf, "-1\n") : sysfs_emit(buf, "0x%02x\n", off);
}
static DEVICE_ATTR_RO(guest_capability_offset);

static ssize_t migration_flags_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "0x%x\n", ivf_migration_flags(to_pci_dev(dev)));
}
static DEVICE_ATTR_RO(migration_flags);

/* pf_forgets: times the PF was made to drop a guest's filters (rust/forget.rs). */
static ssize_t pf_forgets_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u\n", ivf_pf_forgets(to_pci_dev(dev)));
}
/* It follows the tenant's opens and closes: root only. */
static DEVICE_ATTR_ADMIN_RO(pf_forgets);

/* announce_stats (announces rounds sent failed dropped limited), rust/announce.rs. */
static ssize_t announce_stats_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	struct ivf_announce_stats st;

	ivf_announce_stats_get(to_pci_dev(dev), &st);
	return sysfs_emit(buf, "announces %llu rounds %llu sent %llu failed %llu dropped %llu limited %llu\n",
			  st.announces, st.rounds, st.sent, st.failed, st.dropped, st.limited);
}
/* They follow the tenant's arrivals: root only. */
static DEVICE_ATTR_ADMIN_RO(announce_stats);

/*
 * migration_times: how long the last of each step took (rust/device.rs
 * Step), the device's share of a migration's downtime.
 */
static ssize_t migration_times_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	u32 t[5];

	ivf_migration_times(to_pci_dev(dev), t);
	return sysfs_emit(buf, "quiesce_us %u save_us %u load_us %u replay_us %u resume_us %u\n",
			  t[0], t[1], t[2], t[3], t[4]);
}
/* They follow the tenant's migrations: root only. */
static DEVICE_ATTR_ADMIN_RO(migration_times);

/*
 * migration_profile: where the last of each step spent its time, its parts
 * and MMIO (rust/profile.rs); the Rust side writes the page.
 */
static ssize_t migration_profile_show(struct device *dev, struct device_attribute *attr,
				      char *buf)
{
	return ivf_migration_profile(to_pci_dev(dev), buf, PAGE_SIZE);
}
static DEVICE_ATTR_ADMIN_RO(migration_profile);

/*
 * The per-VF switches (rust/switches.rs): one attribute per row of the
 * Rust table, all served by these two functions, which find the row from
 * the attribute's place in the array. A switch that may change only while
 * the VF is closed is checked and set under dev_set->lock, as open takes it.
 */
static struct device_attribute ivf_switch_attrs[IVF_MAX_SWITCHES];

static ssize_t ivf_switch_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	const char *word = ivf_switch_word(to_pci_dev(dev), attr - ivf_switch_attrs);

	return word ? sysfs_emit(buf, "%s\n", word) : -ENODEV;
}

static ssize_t ivf_switch_store(struct device *dev, struct device_attribute *attr,
				const char *buf, size_t count)
{
	struct vfio_pci_core_device *core = dev_get_drvdata(dev);
	u32 i = attr - ivf_switch_attrs;
	bool on;
	int ret = ivf_switch_parse(to_pci_dev(dev), i, buf, count, &on);

	if (ret)
		return ret;
	if (!ivf_switch_while_closed(i)) {
		ivf_switch_set(to_pci_dev(dev), i, on);
		return count;
	}
	mutex_lock(&core->vdev.dev_set->lock);
	if (core->vdev.open_count)
		ret = -EBUSY;
	else
		ivf_switch_set(to_pci_dev(dev), i, on);
	mutex_unlock(&core->vdev.dev_set->lock);
	return ret ? ret : count;
}

/*
 * The fixed attributes, then one per switch (filled at registration, from
 * the first free slot: a fixed attribute added here cannot be overwritten).
 */
#define IVF_FIXED_ATTRS 8
static struct attribute *ivf_dev_attrs[IVF_FIXED_ATTRS + IVF_MAX_SWITCHES + 1] = {
	&dev_attr_dirty_stats.attr,
	&dev_attr_guest_generation.attr,
	&dev_attr_guest_capability_offset.attr,
	&dev_attr_migration_flags.attr,
	&dev_attr_pf_forgets.attr,
	&dev_attr_announce_stats.attr,
	&dev_attr_migration_times.attr,
	&dev_attr_migration_profile.attr,
};
ATTRIBUTE_GROUPS(ivf_dev);

static void ivf_switch_attrs_init(void)
{
	u32 i, n = min_t(u32, ivf_switch_count(), IVF_MAX_SWITCHES);
	u32 fixed = 0;

	while (ivf_dev_attrs[fixed])
		fixed++;
	/* More fixed attributes than IVF_FIXED_ATTRS would eat the switches' room. */
	if (WARN_ON(fixed > IVF_FIXED_ATTRS))
		n = 0;

	for (i = 0; i < n; i++) {
		struct device_attribute *a = &ivf_switch_attrs[i];

		sysfs_attr_init(&a->attr);
		a->attr.name = ivf_switch_name(i);
		a->attr.mode = 0644;
		a->show = ivf_switch_show;
		a->store = ivf_switch_store;
		ivf_dev_attrs[fixed + i] = &a->attr;
	}
}

static struct pci_driver ivf_pci_driver = {
	.name = KBUILD_MODNAME,
	.id_table = ivf_pci_table,
	.probe = ivf_pci_probe,
	.remove = ivf_pci_remove,
	.err_handler = &ivf_err_handlers,
	.dev_groups = ivf_dev_groups,
	/* vfio owns the device's DMA: the PCI core must not set up a domain. */
	.driver_managed_dma = true,
};

int ivf_pci_driver_register(void)
{
	ivf_switch_attrs_init();
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
	.poll = ivf_mig_poll,
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
 * Fault injection, for tests only: debugfs intel_vf_vfio_pci/<name> (root
 * only), started from the module parameters of the same names. A test
 * flips one for a moment instead of reloading the module, which would need
 * every VF free. Without debugfs only the parameters count.
 */
static struct dentry *ivf_debugfs;
static bool ivf_faults[IVF_FAULT_COUNT];
static const char *const ivf_fault_names[IVF_FAULT_COUNT] = {
	[IVF_FAULT_FUTURE_STREAM] = "fault_inject_future_stream",
	[IVF_FAULT_QUIESCE] = "fault_inject_quiesce",
};

void ivf_faults_init(bool future_stream, bool quiesce)
{
	int i;

	ivf_faults[IVF_FAULT_FUTURE_STREAM] = future_stream;
	ivf_faults[IVF_FAULT_QUIESCE] = quiesce;
	ivf_debugfs = debugfs_create_dir(KBUILD_MODNAME, NULL);
	for (i = 0; i < IVF_FAULT_COUNT; i++)
		debugfs_create_bool(ivf_fault_names[i], 0600, ivf_debugfs, &ivf_faults[i]);
}

void ivf_faults_exit(void)
{
	debugfs_remove_recursive(ivf_debugfs);
}

bool ivf_fault_injected(enum ivf_fault fault)
{
	return fault < IVF_FAULT_COUNT && READ_ONCE(ivf_faults[fault]);
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

int ivf_pf_set_vf_config(struct pci_dev *vf, enum ivf_admin_field field,
			 const struct ifla_vf_info *ivi)
{
	const struct net_device_ops *ops;
	struct net_device *nd;
	int id, ret = -EOPNOTSUPP;

	nd = ivf_pf_lock(vf, &id);
	if (IS_ERR(nd))
		return PTR_ERR(nd);
	ops = nd->netdev_ops;
	switch (field) {
	case IVF_ADMIN_MAC:
		if (ops->ndo_set_vf_mac)
			ret = ops->ndo_set_vf_mac(nd, id, (u8 *)ivi->mac);
		break;
	case IVF_ADMIN_VLAN:
		if (ops->ndo_set_vf_vlan)
			ret = ops->ndo_set_vf_vlan(nd, id, ivi->vlan, ivi->qos,
						   ivi->vlan_proto ?: htons(ETH_P_8021Q));
		break;
	case IVF_ADMIN_SPOOFCHK:
		if (ops->ndo_set_vf_spoofchk)
			ret = ops->ndo_set_vf_spoofchk(nd, id, ivi->spoofchk);
		break;
	case IVF_ADMIN_TRUST:
		if (ops->ndo_set_vf_trust)
			ret = ops->ndo_set_vf_trust(nd, id, ivi->trusted);
		break;
	case IVF_ADMIN_RATE:
		if (ops->ndo_set_vf_rate)
			ret = ops->ndo_set_vf_rate(nd, id, ivi->min_tx_rate, ivi->max_tx_rate);
		break;
	case IVF_ADMIN_LINK_STATE:
		if (ops->ndo_set_vf_link_state)
			ret = ops->ndo_set_vf_link_state(nd, id, ivi->linkstate);
		break;
	default:
		ret = -EINVAL;
	}
	rtnl_unlock();
	return ret;
}

/*
 * Device DMA logging helpers (dirty.rs). iova_bitmap_set is exported in the
 * IOMMUFD namespace.
 */
MODULE_IMPORT_NS("IOMMUFD");

/* Copies the logging ranges (sorted by the interval tree) as iova/length pairs. */
u32 ivf_log_ranges(struct rb_root_cached *root, u64 *pairs, u32 max)
{
	struct interval_tree_node *node;
	u32 n = 0;

	for (node = interval_tree_iter_first(root, 0, ULONG_MAX); node && n < max;
	     node = interval_tree_iter_next(node, 0, ULONG_MAX), n++) {
		pairs[2 * n] = node->start;
		pairs[2 * n + 1] = node->last - node->start + 1;
	}
	return n;
}

void ivf_log_set(struct iova_bitmap *dirty, unsigned long iova, size_t length)
{
	iova_bitmap_set(dirty, iova, length);
}

/*
 * Reads guest memory as the VF sees it, for the dirty tracker, which holds
 * dev_set->lock (so the device stays bound and attached) and memory_lock
 * for reading (so BAR0 stays decoded). Only through accessors that hold
 * what they read against a concurrent unmap: the type1 container's
 * vfio_dma_rw (under the container's lock, from the user's own mm), or for
 * iommufd our access on the device's IOAS (iommufd_access_rw, under the
 * IOAS's iova_rwsem). Walking the IOMMU domain instead would race
 * VFIO_IOMMU_UNMAP_DMA / IOMMU_IOAS_UNMAP: its page tables may be freed
 * under the walk, the page it names reused.
 *
 * memory_lock is released for the read: the accessors take the container's
 * or the IOAS's locks, under which a DMA map of a BAR mmap faults and takes
 * memory_lock, and a reset waiting for it would close the cycle. Page
 * faults are off: a page that is not present (no honest user's mapped
 * guest RAM) fails the read, which the tracker answers by marking every
 * logged page, instead of sleeping in a fault the user controls
 * (userfaultfd). The caller re-checks the reset and the decode after
 * (dirty.rs, ivf_bar_decodes).
 */
int ivf_dma_read(struct vfio_pci_core_device *vdev, struct ivf_dma *dma, u64 iova, void *buf,
		 size_t len)
{
	int ret;

	lockdep_assert_held(&vdev->vdev.dev_set->lock);
	lockdep_assert_held_read(&vdev->memory_lock);
	if (!len)
		return 0;
	up_read(&vdev->memory_lock);
	pagefault_disable();
#if IS_ENABLED(CONFIG_IOMMUFD)
	if (dma->access)
		ret = !dma->attached ? -ENODEV :
		      iova > ULONG_MAX ? -EINVAL :
		      iommufd_access_rw(dma->access, iova, buf, len, IOMMUFD_ACCESS_RW_READ);
	else
#endif
		ret = vfio_dma_rw(&vdev->vdev, iova, buf, len, false);
	pagefault_enable();
	down_read(&vdev->memory_lock);
	return ret;
}

/* vfio-pci-core's own test before a BAR access: decode on and not in D3. */
bool ivf_bar_decodes(struct vfio_pci_core_device *vdev)
{
	lockdep_assert_held_read(&vdev->memory_lock);
	return __vfio_pci_memory_enabled(vdev);
}

#if IS_ENABLED(CONFIG_IOMMUFD)
/*
 * The iommufd side of ivf_dma: vfio-pci-core's physical ops, plus an
 * iommufd_access that follows the device's attachment. The access only
 * reads (no pins), so an unmap owes it nothing.
 */
static void ivf_access_unmap(void *data, unsigned long iova, unsigned long length)
{
}

static const struct iommufd_access_ops ivf_access_ops = {
	.unmap = ivf_access_unmap,
};

/*
 * How far the HWPT case looks for IOAS ids: iommufd numbers its objects
 * from 1 upwards, lowest free first, and a VMM has a handful.
 */
#define IVF_IOAS_SEARCH 1024

int ivf_iommufd_bind(struct vfio_device *vdev, struct iommufd_ctx *ictx, u32 *out_device_id,
		     struct ivf_dma *dma)
{
	struct iommufd_access *access;
	u32 id;
	int ret;

	ret = vfio_iommufd_physical_bind(vdev, ictx, out_device_id);
	if (ret)
		return ret;
	access = iommufd_access_create(ictx, &ivf_access_ops, dma, &id);
	if (IS_ERR(access)) {
		vfio_iommufd_physical_unbind(vdev);
		return PTR_ERR(access);
	}
	*dma = (struct ivf_dma){ .access = access };
	return 0;
}

void ivf_iommufd_unbind(struct vfio_device *vdev, struct ivf_dma *dma)
{
	if (dma->access)
		iommufd_access_destroy(dma->access);
	*dma = (struct ivf_dma){};
	vfio_iommufd_physical_unbind(vdev);
}

static void ivf_access_detach(struct ivf_dma *dma)
{
	if (dma->attached)
		iommufd_access_detach(dma->access);
	dma->attached = false;
}

/*
 * Attaches the access to the IOAS the device now translates through. When
 * the user attached the device to an IOAS, that one. When it attached it to
 * a paging HWPT (QEMU does), iommufd gives a driver no way to learn the
 * HWPT's IOAS: the access looks for the IOASes of the user's iommufd and
 * takes the only one (then it is the HWPT's, which holds it). With none or
 * several found, the tracker reads nothing, so every logged page is
 * reported dirty: never a missed page, only a slower migration. The access
 * reads only the user's own IOASes, whichever it takes.
 */
static void ivf_access_follow(struct vfio_device *vdev, struct ivf_dma *dma, u32 pt_id)
{
	u32 id, first = 0, found = 0;

	ivf_access_detach(dma);
	if (!iommufd_access_attach(dma->access, pt_id)) {
		dma->attached = true;
		return;
	}
	for (id = 1; id <= IVF_IOAS_SEARCH && found < 2; id++) {
		if (iommufd_access_attach(dma->access, id))
			continue;
		iommufd_access_detach(dma->access);
		if (!found++)
			first = id;
	}
	if (found == 1 && !iommufd_access_attach(dma->access, first)) {
		dma->attached = true;
		return;
	}
	dev_info_ratelimited(vdev->dev,
		 "attached to iommufd object %u, an HWPT among %s IOASes: the dirty tracker cannot read guest memory, so device DMA logging reports every logged page dirty\n",
		 pt_id, found ? "several" : "no");
}

int ivf_iommufd_attach_ioas(struct vfio_device *vdev, u32 *pt_id, struct ivf_dma *dma)
{
	u32 asked = *pt_id;
	int ret;

	ret = vfio_iommufd_physical_attach_ioas(vdev, pt_id);
	if (ret)
		return ret;
	if (dma->access)
		ivf_access_follow(vdev, dma, asked);
	return 0;
}

void ivf_iommufd_detach_ioas(struct vfio_device *vdev, struct ivf_dma *dma)
{
	if (dma->access)
		ivf_access_detach(dma);
	vfio_iommufd_physical_detach_ioas(vdev);
}
#endif

/*
 * BAR0 for a migration sequence (quiesce, save, load, resume, the mailbox
 * replay): memory_lock held for reading, as vfio-pci-core's own BAR
 * accesses, so VFIO_DEVICE_RESET and hot resets (which take it for writing
 * around the FLR) wait for the sequence instead of resetting under it.
 * Returns 0 with the lock held, or -EIO without it when decode is off.
 */
int ivf_memory_lock(struct vfio_pci_core_device *vdev)
{
	down_read(&vdev->memory_lock);
	/* vfio-pci-core's own test: decode on and not in D3. */
	if (vdev->vconfig && __vfio_pci_memory_enabled(vdev) && !IS_ERR_OR_NULL(vdev->barmap[0]))
		return 0;
	up_read(&vdev->memory_lock);
	return -EIO;
}

void ivf_memory_unlock(struct vfio_pci_core_device *vdev)
{
	up_read(&vdev->memory_lock);
}

/*
 * The tracker's view of the device: dev_set->lock keeps the IOMMU domain
 * attached (attach and detach take it in both backends), memory_lock keeps
 * BAR0 decoded, as vfio-pci-core's own accesses. The order is the hot
 * reset's (dev_set, then memory_lock). Returns 0 with both held, or -EIO
 * with neither when memory decode is off.
 */
int ivf_dev_lock(struct vfio_pci_core_device *vdev)
{
	mutex_lock(&vdev->vdev.dev_set->lock);
	if (!ivf_memory_lock(vdev))
		return 0;
	mutex_unlock(&vdev->vdev.dev_set->lock);
	return -EIO;
}

void ivf_dev_unlock(struct vfio_pci_core_device *vdev)
{
	ivf_memory_unlock(vdev);
	mutex_unlock(&vdev->vdev.dev_set->lock);
}

/*
 * vfio_pci_priv.h's PCI_CAP_ID_INVALID: config bytes vfio gives to no
 * capability (raw access). Private to vfio-pci, so named here.
 */
#define IVF_VFIO_CAP_ID_INVALID 0xFF

/*
 * The standard config space three ways, for placing the guest capability
 * (guest_cap.rs): as the VFIO user sees it (vconfig: vfio's virtualised
 * IDs and next pointers), which bytes vfio assigns to the header or a
 * capability (pci_config_map), and what the device returns. vfio builds
 * the first two at enable: only while the device is open.
 */
int ivf_config_snapshot(struct vfio_pci_core_device *vdev, u8 *user, bool *assigned, u8 *hw)
{
	int i;

	if (!vdev->vconfig || !vdev->pci_config_map)
		return -ENODEV;
	for (i = 0; i < PCI_CFG_SPACE_SIZE; i++) {
		user[i] = vdev->vconfig[i];
		assigned[i] = vdev->pci_config_map[i] != IVF_VFIO_CAP_ID_INVALID;
	}
	for (i = 0; i < PCI_CFG_SPACE_SIZE; i += 4) {
		u32 v;
		int ret = pci_user_read_config_dword(vdev->pdev, i, &v);

		if (ret)
			return ret;
		put_unaligned_le32(v, hw + i);
	}
	return 0;
}

u32 ivf_random_u32(void)
{
	return get_random_u32();
}

/* Where a device-fd offset lands: vfio-pci-core's macros, for Rust. */
u32 ivf_region_index(u64 pos)
{
	return VFIO_PCI_OFFSET_TO_INDEX(pos);
}

u64 ivf_region_offset(u64 pos)
{
	return pos & VFIO_PCI_OFFSET_MASK;
}
