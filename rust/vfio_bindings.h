/* SPDX-License-Identifier: GPL-2.0 */
/* Input of bindgen for rust/vfio.rs: the vfio core and vfio-pci-core API. */
#include <linux/vfio.h>
#include <linux/vfio_pci_core.h>
#include "shim.h"
