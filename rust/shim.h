/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The C side of intel_vf_vfio_pci: only what macros or inline functions
 * force into C. Everything here is called from, or calls into, Rust.
 */
#ifndef IVF_SHIM_H
#define IVF_SHIM_H

#include <linux/if_link.h>
#include <linux/iova_bitmap.h>
#include <linux/pci.h>
#include <linux/poll.h>
#include <linux/vfio.h>
#include <linux/vfio_pci_core.h>

/*
 * uAPI constants that function-like C macros compute: bindgen evaluates an
 * enum's values, not such macros, so Rust takes them from here.
 */
enum ivf_uapi {
	IVF_VFIO_MIG_GET_PRECOPY_INFO = VFIO_MIG_GET_PRECOPY_INFO,
	IVF_VFIO_DEVICE_IOEVENTFD = VFIO_DEVICE_IOEVENTFD,
	IVF_EPOLLIN = EPOLLIN,
	IVF_EPOLLRDNORM = EPOLLRDNORM,
	IVF_EPOLLERR = EPOLLERR,
};

/* The VF settings ivf_pf_set_vf_config sets, one ndo_set_vf_* each. */
enum ivf_admin_field {
	IVF_ADMIN_MAC,
	IVF_ADMIN_VLAN,
	IVF_ADMIN_SPOOFCHK,
	IVF_ADMIN_TRUST,
	IVF_ADMIN_RATE,
	IVF_ADMIN_LINK_STATE,
};

/* Faults a test can inject (ffi/fault.rs), flipped in debugfs at any time. */
enum ivf_fault {
	IVF_FAULT_FUTURE_STREAM,
	IVF_FAULT_QUIESCE,
	IVF_FAULT_COUNT,
};

void ivf_faults_init(bool future_stream, bool quiesce);
void ivf_faults_exit(void);
bool ivf_fault_injected(enum ivf_fault fault);

/* Implemented in Rust (ffi/pci.rs). */
int ivf_pci_probe(struct pci_dev *pdev, const struct pci_device_id *id);
void ivf_pci_remove(struct pci_dev *pdev);
void ivf_pci_reset_done(struct pci_dev *pdev);

/* Implemented in Rust (ffi/mig_file.rs): the migration data file. */
ssize_t ivf_mig_read(struct file *filp, char __user *buf, size_t len, loff_t *pos);
ssize_t ivf_mig_write(struct file *filp, const char __user *buf, size_t len, loff_t *pos);
long ivf_mig_ioctl(struct file *filp, unsigned int cmd, unsigned long arg);
__poll_t ivf_mig_poll(struct file *filp, struct poll_table_struct *wait);
int ivf_mig_release(struct inode *inode, struct file *filp);

/* Counters of the dirty tracker, shown in sysfs (dirty_stats). */
struct ivf_dirty_stats {
	u64 traps;
	u64 descriptors;
	u64 max_descriptors_per_trap;
	u64 trap_ns;
	u64 reports;
	u64 taints;
	u64 logging;
};

/*
 * Implemented in Rust (ffi/sysfs.rs): the per-VF switches, one generic sysfs
 * attribute per row of rust/switches.rs, and the tracker's counters.
 */
enum ivf_switch_limits { IVF_MAX_SWITCHES = 8 };
u32 ivf_switch_count(void);
const char *ivf_switch_name(u32 i);
const char *ivf_switch_word(struct pci_dev *pdev, u32 i);
bool ivf_switch_while_closed(u32 i);
int ivf_switch_parse(struct pci_dev *pdev, u32 i, const char *buf, size_t len, bool *on);
void ivf_switch_set(struct pci_dev *pdev, u32 i, bool on);
int ivf_dirty_stats_get(struct pci_dev *pdev, struct ivf_dirty_stats *out);

/* Implemented in Rust (ffi/sysfs.rs): the guest capability. */
u32 ivf_guest_cap_generation(struct pci_dev *pdev);
int ivf_guest_cap_offset(struct pci_dev *pdev);
u32 ivf_migration_flags(struct pci_dev *pdev);
u32 ivf_pf_forgets(struct pci_dev *pdev);
void ivf_migration_times(struct pci_dev *pdev, u32 *out);
ssize_t ivf_migration_profile(struct pci_dev *pdev, char *buf, size_t len);
struct ivf_announce_stats;
void ivf_announce_stats_get(struct pci_dev *pdev, struct ivf_announce_stats *out);

/*
 * The announce (announce_tx.c): rounds of frames on the PF netdev. The frames
 * are IVF_ANNOUNCE_FRAME_MAX bytes apart in the array given to start.
 */
enum ivf_announce_limits {
	IVF_ANNOUNCE_MAX_FRAMES = 32,
	IVF_ANNOUNCE_FRAME_MAX = 64,
};

struct ivf_announce_stats {
	u64 announces;
	u64 rounds;
	u64 sent;
	u64 failed;
	u64 dropped;
	u64 limited;
};

struct ivf_announce;
struct ivf_announce *ivf_announce_alloc(struct pci_dev *vf);
bool ivf_announce_start(struct ivf_announce *a, const u8 *frames, const u16 *lens, u32 count,
			u32 dropped, u32 rounds, u32 first_ms, u32 step_ms);
void ivf_announce_stop(struct ivf_announce *a);
void ivf_announce_stats(struct ivf_announce *a, struct ivf_announce_stats *out);
void ivf_announce_free(struct ivf_announce *a);

/* Implemented in C (shim.c). */
int ivf_config_snapshot(struct vfio_pci_core_device *vdev, u8 *user, bool *assigned, u8 *hw);
u32 ivf_random_u32(void);

/*
 * Guest memory as the VF sees it, read for the dirty tracker through the
 * accessors that hold the mapping while they read: the type1 container's
 * vfio_dma_rw, or, for a device bound through iommufd, an iommufd_access
 * of the driver's own on the device's IOAS. Zeroed with the device; only
 * the iommufd ops and ivf_dma_read touch it, under dev_set->lock.
 */
struct ivf_dma {
	struct iommufd_access *access;	/* bound through iommufd */
	bool attached;			/* access attached to the device's IOAS */
};

int ivf_dma_read(struct vfio_pci_core_device *vdev, struct ivf_dma *dma, u64 iova, void *buf,
		 size_t len);
bool ivf_bar_decodes(struct vfio_pci_core_device *vdev);
int ivf_iommufd_bind(struct vfio_device *vdev, struct iommufd_ctx *ictx, u32 *out_device_id,
		     struct ivf_dma *dma);
void ivf_iommufd_unbind(struct vfio_device *vdev, struct ivf_dma *dma);
int ivf_iommufd_attach_ioas(struct vfio_device *vdev, u32 *pt_id, struct ivf_dma *dma);
void ivf_iommufd_detach_ioas(struct vfio_device *vdev, struct ivf_dma *dma);
bool ivf_device_logging_supported(void);
u32 ivf_log_ranges(struct rb_root_cached *root, u64 *pairs, u32 max);
void ivf_log_set(struct iova_bitmap *dirty, unsigned long iova, size_t length);
int ivf_dev_lock(struct vfio_pci_core_device *vdev);
int ivf_memory_lock(struct vfio_pci_core_device *vdev);
void ivf_memory_unlock(struct vfio_pci_core_device *vdev);
void ivf_dev_unlock(struct vfio_pci_core_device *vdev);
u32 ivf_region_index(u64 pos);
u64 ivf_region_offset(u64 pos);
int ivf_pci_driver_register(void);
void ivf_pci_driver_unregister(void);
void ivf_vfio_put_device(struct vfio_device *vdev);
struct file *ivf_mig_file_create(void *priv, bool save);
int ivf_pf_get_vf_config(struct pci_dev *vf, struct ifla_vf_info *ivi);
int ivf_pf_set_vf_config(struct pci_dev *vf, enum ivf_admin_field field,
			 const struct ifla_vf_info *ivi);
void ivf_get_file(struct file *filp);

#endif
