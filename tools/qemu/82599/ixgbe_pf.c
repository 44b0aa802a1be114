/*
 * Emulated Intel 82599 10GbE controller with SR-IOV (intel-vf-vfio test bed):
 * the PF's PCI function, its register file, resets and the link.
 *
 * An 82599 KX4 backplane port (8086:10F7): no SFP cage, no PHY; AUTOC's
 * link mode is 10G without autonegotiation and LINKS reports 10G up while
 * the netdev's link is up. The PF has 64 MSI-X vectors (table in BAR4),
 * MSI-X at config 0x70, PCIe at 0xA0, AER, ARI and the SR-IOV capability
 * (64 VFs of 8086:10ED, VF BAR0 16 KiB registers, BAR3 16 KiB MSI-X).
 *
 * Written for this project; the behaviour follows the 82599 datasheet and
 * what Linux's ixgbe and ixgbevf expect. See Documentation/emulated-82599.rst.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "hw/hw.h"
#include "hw/pci/msix.h"
#include "hw/pci/pcie.h"
#include "hw/pci/pcie_sriov.h"
#include "hw/qdev-properties.h"
#include "migration/vmstate.h"
#include "net/eth.h"
#include "hw/net/net_rx_pkt.h"
#include "ixgbe.h"

#define SRIOV_CAP_OFFSET    0x160
#define VF_OFFSET           0x80    /* VF n at device 0x10 + n / 4 */
#define VF_STRIDE           2
#define VF_BAR_MMIO         0
#define VF_BAR_MSIX         3

/* ---- Helpers shared by the model's files ------------------------------- */

uint16_t ixgbe_num_vfs(IxgbeState *s)
{
    return pcie_sriov_num_vfs(PCI_DEVICE(s));
}

bool ixgbe_vt_on(IxgbeState *s)
{
    return ix_get(s, X_VT_CTL) & X_VT_CTL_VT_ENA;
}

int ixgbe_queues_per_pool(IxgbeState *s)
{
    if (!ixgbe_vt_on(s)) {
        return IXGBE_QUEUES;
    }
    switch (ix_get(s, X_GCR_EXT) & X_GCR_EXT_VT_MODE_MASK) {
    case 1:
        return 8;       /* 16 pools */
    case 2:
        return 4;       /* 32 pools */
    case 3:
        return 2;       /* 64 pools */
    default:
        return IXGBE_QUEUES;
    }
}

PCIDevice *ixgbe_vf_dev(IxgbeState *s, int vf)
{
    if (vf >= ixgbe_num_vfs(s)) {
        return NULL;
    }
    return pcie_sriov_get_vf_at_index(PCI_DEVICE(s), vf);
}

/* ---- Register aliases --------------------------------------------------- */

/* The low aliases of per-queue and per-entry registers, to their one home. */
static hwaddr canonical(hwaddr off)
{
    if (off >= X_SRRCTL_LO(0) && off < X_SRRCTL_LO(16)) {
        return X_RXQ_BASE((off - X_SRRCTL_LO(0)) / 4) + X_RXQ_SRRCTL;
    }
    if (off >= X_DCA_RXCTRL_LO(0) && off < X_DCA_RXCTRL_LO(16)) {
        return X_RXQ_BASE((off - X_DCA_RXCTRL_LO(0)) / 4) + X_RXQ_DCA;
    }
    if (off >= X_RAL_LO(0) && off < X_RAL_LO(16)) {
        return X_RAL(0) + (off - X_RAL_LO(0));
    }
    if (off >= X_PSRTYPE_LO(0) && off < X_PSRTYPE_LO(16)) {
        return X_PSRTYPE(0) + (off - X_PSRTYPE_LO(0));
    }
    return off;
}

/* Which queue register, if any: sets *q and *reg, returns 'r', 't' or 0. */
static int queue_reg(hwaddr off, int *q, hwaddr *reg)
{
    if (off >= 0x1000 && off < 0x2000) {
        *q = (off - 0x1000) / 0x40;
        *reg = off & 0x3F;
        return 'r';
    }
    if (off >= 0xD000 && off < 0xE000) {
        *q = 64 + (off - 0xD000) / 0x40;
        *reg = off & 0x3F;
        return 'r';
    }
    if (off >= 0x6000 && off < 0x8000) {
        *q = (off - 0x6000) / 0x40;
        *reg = off & 0x3F;
        return 't';
    }
    return 0;
}

static bool is_stat_r2c(hwaddr off)
{
    return (off >= 0x3F00 && off < 0x4100) || (off >= 0x4140 && off < 0x41C0) ||
           (off >= 0x8680 && off < 0x8780);
}

/* ---- The link ----------------------------------------------------------- */

static uint32_t links_value(IxgbeState *s)
{
    if (!s->link_up) {
        return 0;
    }
    return X_LINKS_UP | X_LINKS_SPEED_10G | X_LINKS_STATUS | X_LINKS_KX_AN_COMP;
}

static void ixgbe_set_link_status(NetClientState *nc)
{
    IxgbeState *s = qemu_get_nic_opaque(nc);
    bool up = !nc->link_down;

    if (up != s->link_up) {
        s->link_up = up;
        ixgbe_raise_other(s, X_EICR_LSC);
    }
}

/* ---- Reset -------------------------------------------------------------- */

static void rar0_from_nvm(IxgbeState *s)
{
    uint16_t w0 = s->nvm[0x101], w1 = s->nvm[0x102], w2 = s->nvm[0x103];

    ix_set(s, X_RAL(0), w0 | ((uint32_t)w1 << 16));
    ix_set(s, X_RAH(0), w2 | X_RAH_AV);
}

/* A software reset (CTRL.RST) or power-on: every register to its default;
 * the NVM, PCI configuration and VF mailbox memory survive. */
static void ixgbe_soft_reset(IxgbeState *s, bool power_on)
{
    for (int q = 0; q < IXGBE_QUEUES; q++) {
        if (s->rxdis_timer[q]) {
            timer_del(s->rxdis_timer[q]);
        }
    }
    ixgbe_tx_reset(s);
    memset(s->regs, 0, sizeof(s->regs));
    s->vec_cause = s->vec_mask = s->vec_automask = 0;
    s->eicr_other = 0;
    for (int vf = 0; vf < IXGBE_MAX_VFS; vf++) {
        ixgbe_vf_intr_reset(s, vf);
    }
    memset(s->vfstats, 0, sizeof(s->vfstats));

    if (power_on) {
        ixgbe_mbx_reset(s);
    } else {
        ixgbe_mbx_pf_reset_start(s);
        for (int i = 0; i < 4; i++) {
            ix_set(s, X_MBVFIMR(i), 0xFFFF);
        }
    }
    ix_set(s, X_AUTOC, X_AUTOC_KX4_SUPP | X_AUTOC_LMS_10G_NO_AN | (1u << 7));
    ix_set(s, X_MAXFRS, 1518u << 16);
    ix_set(s, X_HLREG0, 0x2FFF);
    ix_set(s, X_RDRXCTL, 0x880);
    ix_set(s, X_VLNCTRL, ETH_P_VLAN);
    ix_set(s, X_DMATXCTL, ETH_P_VLAN << X_DMATXCTL_VT_SHIFT);
    ix_set(s, X_RXPBSIZE0, 512u << 10);
    ix_set(s, X_TXPBSIZE0, 160u << 10);
    for (int q = 0; q < IXGBE_QUEUES; q++) {
        ix_set(s, X_RXQ_BASE(q) + X_RXQ_SRRCTL, 0x402);   /* 2 KiB, 256 B */
    }
    rar0_from_nvm(s);
    ixgbe_intr_update(s);
}

/* ---- Register access ---------------------------------------------------- */

static uint32_t pvf_stat(IxgbeState *s, hwaddr off, bool *hit)
{
    *hit = true;
    if (off >= 0x1000 && off < 0x2000 && (off & 0x3F) == 0x1C) {
        return s->vfstats[(off - 0x1000) / 0x40].gprc;
    }
    if (off >= 0x1000 && off < 0x2000 && (off & 0x3F) == 0x20) {
        return (uint32_t)s->vfstats[(off - 0x1000) / 0x40].gorc;
    }
    if (off >= 0xD000 && off < 0xE000 && (off & 0x3F) == 0x1C) {
        return s->vfstats[(off - 0xD000) / 0x40].mprc;
    }
    if (off >= 0xD000 && off < 0xE000 && (off & 0x3F) == 0x20) {
        return (uint32_t)(s->vfstats[(off - 0xD000) / 0x40].gorc >> 32) & 0xF;
    }
    if (off >= X_PVFGPTC(0) && off < X_PVFGPTC(64)) {
        return s->vfstats[(off - X_PVFGPTC(0)) / 4].gptc;
    }
    if (off >= X_PVFGOTC_LSB(0) && off < X_PVFGOTC_LSB(64)) {
        uint64_t v = s->vfstats[(off - X_PVFGOTC_LSB(0)) / 8].gotc;
        return (off & 4) ? (uint32_t)(v >> 32) & 0xF : (uint32_t)v;
    }
    *hit = false;
    return 0;
}

uint64_t ixgbe_reg_read(IxgbeState *s, hwaddr off)
{
    uint32_t v;
    bool hit;
    int q;
    hwaddr r;

    off = canonical(off & ~3ull);
    if (off >= IXGBE_MMIO_SIZE) {
        return 0;
    }
    if (ixgbe_intr_read(s, off, &v) || ixgbe_mbx_pf_read(s, off, &v)) {
        return v;
    }
    v = pvf_stat(s, off, &hit);
    if (hit) {
        return v;
    }
    if (is_stat_r2c(off)) {
        v = ix_get(s, off);
        ix_set(s, off, 0);
        return v;
    }
    switch (off) {
    case X_EEC:
    case X_EERD:
    case X_EEWR:
    case X_SWSM:
    case X_FWSM:
    case X_GSSR:
        return ixgbe_nvm_read(s, off);
    case X_STATUS:
        v = 0;
        if (s->link_up) {
            v |= X_STATUS_LU;
        }
        if (!(ix_get(s, X_CTRL) & X_CTRL_GIO_DIS)) {
            v |= X_STATUS_GIO;
        }
        if (ixgbe_num_vfs(s)) {
            v |= X_STATUS_IOV_ACTIVE;
        }
        return v;
    case X_LINKS:
        return links_value(s);
    case X_ANLP1:
        /* The KX/KX4 autonegotiation state machine is never idle while the
         * link is up (ixgbe's pipeline reset waits for that), and the
         * partner offers symmetric and asymmetric pause. */
        return s->link_up ? (4u << 16) | 0x0C00 : 0;
    case X_SECRXSTAT:
    case X_SECTXSTAT:
        return ix_get(s, off) | 1;          /* the security paths are ready */
    case X_FDIRCTRL:
        return ix_get(s, off) | X_FDIRCTRL_INIT_DONE;
    case X_FDIRCMD:
        return ix_get(s, off) & ~3u;        /* commands complete at once */
    case X_RDRXCTL:
        return ix_get(s, off) | X_RDRXCTL_DMAIDONE;
    case X_FRTIMER:
    case X_TCPTIMER:
        return ix_get(s, off);
    }
    if (queue_reg(off, &q, &r) == 'r' && r == X_RXQ_DCTL && s->rxdis_timer[q] &&
        timer_pending(s->rxdis_timer[q])) {
        return ix_get(s, off) | X_RXDCTL_ENABLE;    /* still draining */
    }
    return ix_get(s, off);
}

static void rxdis_done(void *opaque)
{
    /* Nothing to do: the queue's ENABLE reads clear once the timer ran. */
}

static void rx_dctl_write(IxgbeState *s, int q, uint32_t val)
{
    uint32_t old = ix_rxq(s, q, X_RXQ_DCTL);

    val &= ~X_RXDCTL_SWFLSH;
    ix_set(s, X_RXQ_BASE(q) + X_RXQ_DCTL, val);
    if ((old & X_RXDCTL_ENABLE) && !(val & X_RXDCTL_ENABLE) && s->strict) {
        /* Strict: the queue takes 20 ms to stop (datasheet: "until the
         * queue's descriptor cache drains"), longer than ixgbe's poll. */
        if (!s->rxdis_timer[q]) {
            s->rxdis_timer[q] = timer_new_ms(QEMU_CLOCK_VIRTUAL, rxdis_done, s);
        }
        timer_mod(s->rxdis_timer[q], qemu_clock_get_ms(QEMU_CLOCK_VIRTUAL) + 20);
    }
    if (!(old & X_RXDCTL_ENABLE) && (val & X_RXDCTL_ENABLE)) {
        ixgbe_rx_tail_written(s, q);
    }
}

void ixgbe_reg_write(IxgbeState *s, hwaddr off, uint32_t val)
{
    int q;
    hwaddr r;

    off = canonical(off & ~3ull);
    if (off >= IXGBE_MMIO_SIZE) {
        return;
    }
    if (ixgbe_intr_write(s, off, val) || ixgbe_mbx_pf_write(s, off, val)) {
        return;
    }
    if (is_stat_r2c(off)) {
        return;
    }
    switch (queue_reg(off, &q, &r)) {
    case 'r':
        switch (r) {
        case X_RXQ_H:
            if (s->strict && val != 0) {
                IXDBG(s, "strict: RDH(%d) ignores a write of %u", q, val);
                return;
            }
            break;
        case X_RXQ_T:
            ix_set(s, off, val & 0xFFFF);
            ixgbe_rx_tail_written(s, q);
            return;
        case X_RXQ_DCTL:
            rx_dctl_write(s, q, val);
            return;
        case X_RXQ_LEN:
            val &= 0xFFF80;
            break;
        case X_RXQ_BAL:
            val &= ~0x7Fu;
            break;
        case 0x1C:
        case 0x20:
        case 0x30:
        case 0x34:
        case 0x38:
            return;                 /* counters */
        }
        ix_set(s, off, val);
        return;
    case 't':
        switch (r) {
        case X_TXQ_H:
            if (s->strict && val != 0) {
                IXDBG(s, "strict: TDH(%d) ignores a write of %u", q, val);
                return;
            }
            break;
        case X_TXQ_T:
            ix_set(s, off, val & 0xFFFF);
            ixgbe_tx_tail_written(s, q);
            return;
        case X_TXQ_DCTL: {
            uint32_t old = ix_get(s, off);

            ix_set(s, off, val & ~X_TXDCTL_SWFLSH);
            ixgbe_tx_dctl_written(s, q, old, val);
            return;
        }
        case X_TXQ_LEN:
            val &= 0xFFF80;
            break;
        case X_TXQ_BAL:
            val &= ~0x7Fu;
            break;
        }
        ix_set(s, off, val);
        return;
    }

    switch (off) {
    case X_CTRL:
        if (val & (X_CTRL_RST | X_CTRL_LRST)) {
            IXDBG(s, "CTRL.%s", (val & X_CTRL_RST) ? "RST" : "LRST");
            ixgbe_soft_reset(s, false);
            val &= ~(X_CTRL_RST | X_CTRL_LRST | X_CTRL_GIO_DIS);
        }
        ix_set(s, off, val);
        return;
    case X_STATUS:
    case X_LINKS:
    case X_ANLP1:
    case X_FWSM:
    case X_SECRXSTAT:
    case X_SECTXSTAT:
        return;
    case X_CTRL_EXT: {
        uint32_t old = ix_get(s, off);

        ix_set(s, off, val);
        if (!(old & X_CTRL_EXT_PFRSTD) && (val & X_CTRL_EXT_PFRSTD)) {
            IXDBG(s, "CTRL_EXT.PFRSTD: VFs see RSTD");
            ixgbe_mbx_pf_reset_done(s);
        }
        return;
    }
    case X_EEC:
    case X_EERD:
    case X_EEWR:
    case X_SWSM:
    case X_GSSR:
        ixgbe_nvm_write(s, off, val);
        return;
    case X_MSCA:
        /* MDIO: there is no PHY; a read returns all ones at once. */
        if (val & X_MSCA_MDI_CMD) {
            uint32_t op = (val >> X_MSCA_OP_SHIFT) & 3;
            if (op == 2 || op == 3) {
                ix_set(s, X_MSRWD, 0xFFFF0000u | (ix_get(s, X_MSRWD) & 0xFFFF));
            }
        }
        ix_set(s, off, val & ~X_MSCA_MDI_CMD);
        return;
    case X_AUTOC:
        ix_set(s, off, val & ~X_AUTOC_RESTART_AN);
        return;
    case X_FDIRCMD:
        ix_set(s, off, val & ~3u);
        return;
    case X_VT_CTL:
        ix_set(s, off, val & (X_VT_CTL_VT_ENA | X_VT_CTL_POOL_MASK |
                              X_VT_CTL_DIS_DEFPL | X_VT_CTL_REPLEN));
        return;
    case X_QDE:
        /* Per-queue drop enable: written through an index, kept per pool. */
        return;
    case X_DMATXCTL:
        ix_set(s, off, val);
        return;
    }
    ix_set(s, off, val);
}

static uint64_t ixgbe_mmio_read(void *opaque, hwaddr addr, unsigned size)
{
    IxgbeState *s = opaque;
    uint64_t v = ixgbe_reg_read(s, addr);

    IXDBG(s, "rd %05" HWADDR_PRIx " -> %08" PRIx64, addr, v);
    return v;
}

static void ixgbe_mmio_write(void *opaque, hwaddr addr, uint64_t val,
                             unsigned size)
{
    IxgbeState *s = opaque;

    IXDBG(s, "wr %05" HWADDR_PRIx " <- %08" PRIx64, addr, val);
    ixgbe_reg_write(s, addr, val);
}

static const MemoryRegionOps ixgbe_mmio_ops = {
    .read = ixgbe_mmio_read,
    .write = ixgbe_mmio_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .impl = { .min_access_size = 4, .max_access_size = 4 },
    .valid = { .min_access_size = 4, .max_access_size = 4 },
};

/* ---- A VF's BAR0, translated to the PF's registers ---------------------- */

static bool vf_queue(IxgbeState *s, int vf, hwaddr off, hwaddr *pf_off)
{
    int qpp = ixgbe_queues_per_pool(s);
    int i, q;

    if (off >= V_RXQ(0) && off < V_RXQ(8)) {
        i = (off - V_RXQ(0)) / 0x40;
        if (i >= qpp || i >= 8) {
            return false;
        }
        q = vf * qpp + i;
        *pf_off = X_RXQ_BASE(q) + (off & 0x3F);
        return true;
    }
    if (off >= V_TXQ(0) && off < V_TXQ(8)) {
        i = (off - V_TXQ(0)) / 0x40;
        if (i >= qpp) {
            return false;
        }
        q = vf * qpp + i;
        *pf_off = X_TXQ_BASE(q) + (off & 0x3F);
        return true;
    }
    return false;
}

uint64_t ixgbe_vf_mmio_read(IxgbeState *s, int vf, hwaddr off)
{
    hwaddr pf_off;

    off &= ~3ull;
    switch (off) {
    case V_CTRL:
        return 0;
    case V_STATUS:
        return s->link_up ? X_STATUS_LU : 0;
    case V_LINKS:
        return links_value(s);
    case V_FRTIMER:
        return ix_get(s, X_FRTIMER);
    case V_RXMEMWRAP:
        return 0;
    case V_PSRTYPE:
        return ix_get(s, X_PSRTYPE(vf));
    case V_GPRC:
        return s->vfstats[vf].gprc;
    case V_GPTC:
        return s->vfstats[vf].gptc;
    case V_MPRC:
        return s->vfstats[vf].mprc;
    case V_GORC_LSB:
        return (uint32_t)s->vfstats[vf].gorc;
    case V_GORC_MSB:
        return (uint32_t)(s->vfstats[vf].gorc >> 32) & 0xF;
    case V_GOTC_LSB:
        return (uint32_t)s->vfstats[vf].gotc;
    case V_GOTC_MSB:
        return (uint32_t)(s->vfstats[vf].gotc >> 32) & 0xF;
    case V_EICR ... V_IVAR_MISC:
    case V_EITR(0) ... V_EITR(2):
        return ixgbe_vf_intr_read(s, vf, off);
    case V_MBMEM ... V_MAILBOX:
        return ixgbe_mbx_vf_read(s, vf, off);
    }
    if (vf_queue(s, vf, off, &pf_off)) {
        /* The per-queue counters of the VF's block are not the PF's. */
        if ((off & 0x3F) == 0x1C || (off & 0x3F) == 0x20 || (off & 0x3F) == 0x24 ||
            (off & 0x3F) == 0x34) {
            return 0;
        }
        return ixgbe_reg_read(s, pf_off);
    }
    return 0;
}

void ixgbe_vf_reset(IxgbeState *s, int vf, bool flr)
{
    int qpp = ixgbe_queues_per_pool(s);

    if (qpp == IXGBE_QUEUES) {
        qpp = 2;
    }
    /* The VF's queues stop; their registers return to defaults. */
    for (int i = 0; i < qpp && i < 8; i++) {
        int q = vf * qpp + i;

        if (q >= IXGBE_QUEUES) {
            break;
        }
        /* The queues stop; ixgbe's VFLR handling re-enables and disables
         * every TX queue whose TXDCTL is not 0 ("configured"), so by
         * default the rest of TXDCTL/RXDCTL is kept. */
        ix_set(s, X_RXQ_BASE(q) + X_RXQ_DCTL,
               ix_rxq(s, q, X_RXQ_DCTL) & ~X_RXDCTL_ENABLE);
        ix_set(s, X_TXQ_BASE(q) + X_TXQ_DCTL,
               ix_txq(s, q, X_TXQ_DCTL) & ~X_TXDCTL_ENABLE);
        if (s->strict) {
            for (hwaddr r = 0; r < 0x40; r += 4) {
                if (r != X_RXQ_SRRCTL) {
                    ix_set(s, X_RXQ_BASE(q) + r, 0);
                }
                ix_set(s, X_TXQ_BASE(q) + r, 0);
            }
            ix_set(s, X_RXQ_BASE(q) + X_RXQ_SRRCTL, 0x402);
        }
        s->txq[q].in_pkt = false;
        s->txq[q].wb_n = 0;
    }
    ixgbe_vf_intr_reset(s, vf);
    if (flr) {
        ixgbe_mbx_vflr(s, vf);
    }
}

void ixgbe_vf_mmio_write(IxgbeState *s, int vf, hwaddr off, uint32_t val)
{
    hwaddr pf_off;

    off &= ~3ull;
    switch (off) {
    case V_CTRL:
        if (val & X_CTRL_RST) {
            IXDBG(s, "VF %d: VFCTRL.RST", vf);
            ixgbe_vf_reset(s, vf, false);
        }
        return;
    case V_PSRTYPE:
        ix_set(s, X_PSRTYPE(vf), val);
        return;
    case V_EICR ... V_IVAR_MISC:
    case V_EITR(0) ... V_EITR(2):
        ixgbe_vf_intr_write(s, vf, off, val);
        return;
    case V_MBMEM ... V_MAILBOX:
        ixgbe_mbx_vf_write(s, vf, off, val);
        return;
    }
    if (vf_queue(s, vf, off, &pf_off)) {
        ixgbe_reg_write(s, pf_off, val);
    }
}

/* ---- PCI ---------------------------------------------------------------- */

static void ixgbe_write_config(PCIDevice *d, uint32_t addr, uint32_t val, int len)
{
    IxgbeState *s = IXGBE_PF(d);

    pci_default_write_config(d, addr, val, len);
    pcie_cap_flr_write_config(d, addr, val, len);
    if (range_covers_byte(addr, len, PCI_COMMAND) &&
        (d->config[PCI_COMMAND] & PCI_COMMAND_MASTER)) {
        qemu_flush_queued_packets(qemu_get_queue(s->nic));
    }
}

static NetClientInfo ixgbe_net_info = {
    .type = NET_CLIENT_DRIVER_NIC,
    .size = sizeof(NICState),
    .can_receive = ixgbe_can_receive,
    .receive_iov = ixgbe_receive_iov,
    .link_status_changed = ixgbe_set_link_status,
};

static void ixgbe_realize(PCIDevice *d, Error **errp)
{
    IxgbeState *s = IXGBE_PF(d);
    int ret;

    if (s->mbx_log_path) {
        s->mbx_log = fopen(s->mbx_log_path, "a");
        if (!s->mbx_log) {
            error_setg_errno(errp, errno, "ixgbe-82599: cannot open mbx-log %s",
                             s->mbx_log_path);
            return;
        }
        setvbuf(s->mbx_log, NULL, _IOLBF, 0);
    }
    d->config_write = ixgbe_write_config;
    d->config[PCI_CACHE_LINE_SIZE] = 0x10;
    d->config[PCI_INTERRUPT_PIN] = 1;
    pci_set_word(d->config + PCI_SUBSYSTEM_VENDOR_ID, PCI_VENDOR_ID_INTEL);
    pci_set_word(d->config + PCI_SUBSYSTEM_ID, 0x000C);

    memory_region_init_io(&s->mmio, OBJECT(d), &ixgbe_mmio_ops, s,
                          "ixgbe-82599-mmio", IXGBE_MMIO_SIZE);
    pci_register_bar(d, 0, PCI_BASE_ADDRESS_SPACE_MEMORY |
                     PCI_BASE_ADDRESS_MEM_TYPE_64, &s->mmio);
    memory_region_init(&s->msix, OBJECT(d), "ixgbe-82599-msix", IXGBE_MSIX_SIZE);
    pci_register_bar(d, 4, PCI_BASE_ADDRESS_SPACE_MEMORY |
                     PCI_BASE_ADDRESS_MEM_TYPE_64, &s->msix);

    if (pci_pm_init(d, 0x40, errp) < 0) {
        return;
    }
    ret = msix_init(d, IXGBE_PF_VECTORS, &s->msix, 4, 0, &s->msix, 4, 0x2000,
                    0x70, errp);
    if (ret) {
        return;
    }
    for (int i = 0; i < IXGBE_PF_VECTORS; i++) {
        msix_vector_use(d, i);
    }
    if (pcie_endpoint_cap_init(d, 0xA0) < 0) {
        error_setg(errp, "ixgbe-82599: no room for the PCIe capability");
        return;
    }
    pcie_cap_fill_link_ep_usp(d, QEMU_PCI_EXP_LNK_X8, QEMU_PCI_EXP_LNK_5GT);
    pcie_cap_flr_init(d);
    if (pcie_aer_init(d, 1, 0x100, 0x40, errp) < 0) {
        return;
    }
    pcie_ari_init(d, 0x150);
    if (!pcie_sriov_pf_init(d, SRIOV_CAP_OFFSET, TYPE_IXGBE_VF, IXGBE_VF_DEVID,
                            IXGBE_MAX_VFS, IXGBE_MAX_VFS, VF_OFFSET, VF_STRIDE,
                            errp)) {
        return;
    }
    pcie_sriov_pf_init_vf_bar(d, VF_BAR_MMIO, PCI_BASE_ADDRESS_MEM_TYPE_64 |
                              PCI_BASE_ADDRESS_MEM_PREFETCH, IXGBE_VF_MMIO_SIZE);
    pcie_sriov_pf_init_vf_bar(d, VF_BAR_MSIX, PCI_BASE_ADDRESS_MEM_TYPE_64 |
                              PCI_BASE_ADDRESS_MEM_PREFETCH, IXGBE_VF_MSIX_SIZE);

    qemu_macaddr_default_if_unset(&s->conf.macaddr);
    s->nic = qemu_new_nic(&ixgbe_net_info, &s->conf,
                          object_get_typename(OBJECT(s)), DEVICE(s)->id,
                          &DEVICE(s)->mem_reentrancy_guard, s);
    qemu_format_nic_info_str(qemu_get_queue(s->nic), s->conf.macaddr.a);

    ixgbe_nvm_build(s, s->conf.macaddr.a);
    net_rx_pkt_init(&s->rx_pkt);
    ixgbe_tx_init(s);
    s->link_up = true;
    ixgbe_soft_reset(s, true);
}

static void ixgbe_exit(PCIDevice *d)
{
    IxgbeState *s = IXGBE_PF(d);

    for (int q = 0; q < IXGBE_QUEUES; q++) {
        if (s->rxdis_timer[q]) {
            timer_free(s->rxdis_timer[q]);
        }
    }
    ixgbe_tx_uninit(s);
    net_rx_pkt_uninit(s->rx_pkt);
    if (s->mbx_log) {
        fclose(s->mbx_log);
        s->mbx_log = NULL;
    }
    pcie_sriov_pf_exit(d);
    pcie_cap_exit(d);
    qemu_del_nic(s->nic);
    msix_unuse_all_vectors(d);
    msix_uninit(d, &s->msix, &s->msix);
}

static void ixgbe_reset_hold(Object *obj, ResetType type)
{
    IxgbeState *s = IXGBE_PF(obj);

    s->link_up = !qemu_get_queue(s->nic)->link_down;
    ixgbe_soft_reset(s, true);
}

static const VMStateDescription ixgbe_vmstate = {
    .name = "ixgbe-82599",
    .unmigratable = 1,
};

static const Property ixgbe_properties[] = {
    DEFINE_NIC_PROPERTIES(IxgbeState, conf),
    DEFINE_PROP_BOOL("strict", IxgbeState, strict, false),
    DEFINE_PROP_BOOL("debug", IxgbeState, debug, false),
    DEFINE_PROP_BOOL("trace-mbx", IxgbeState, trace_mbx, false),
    DEFINE_PROP_BOOL("trace-switch", IxgbeState, trace_sw, false),
    DEFINE_PROP_STRING("mbx-log", IxgbeState, mbx_log_path),
};

static void ixgbe_class_init(ObjectClass *klass, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIDeviceClass *k = PCI_DEVICE_CLASS(klass);
    ResettableClass *rc = RESETTABLE_CLASS(klass);

    k->realize = ixgbe_realize;
    k->exit = ixgbe_exit;
    k->vendor_id = PCI_VENDOR_ID_INTEL;
    k->device_id = IXGBE_PF_DEVID;
    k->revision = 1;
    k->class_id = PCI_CLASS_NETWORK_ETHERNET;
    rc->phases.hold = ixgbe_reset_hold;
    dc->desc = "Intel 82599 10GbE (KX4 backplane) with SR-IOV, intel-vf-vfio model";
    dc->vmsd = &ixgbe_vmstate;
    device_class_set_props(dc, ixgbe_properties);
    set_bit(DEVICE_CATEGORY_NETWORK, dc->categories);
}

static const TypeInfo ixgbe_info = {
    .name = TYPE_IXGBE_PF,
    .parent = TYPE_PCI_DEVICE,
    .instance_size = sizeof(IxgbeState),
    .class_init = ixgbe_class_init,
    .interfaces = (InterfaceInfo[]) {
        { INTERFACE_PCIE_DEVICE },
        { }
    },
};

static void ixgbe_register_types(void)
{
    type_register_static(&ixgbe_info);
}

type_init(ixgbe_register_types)
