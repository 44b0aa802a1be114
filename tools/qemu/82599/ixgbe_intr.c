/*
 * Emulated Intel 82599 (intel-vf-vfio test bed): interrupts.
 *
 * The PF: 64 MSI-X vectors. A queue's cause is routed through IVAR to a
 * vector; the vector's cause bit (EICR_EX, EICR[15:0] for the first 16) is
 * set, and if its EIMS bit is set the vector fires; then EIAC clears the
 * cause and, with GPIE.EIAME, EIAM masks it (auto-clear, auto-mask). The
 * "other" causes (EICR[30:16]: mailbox, link, ...) fire the vector that
 * IVAR_MISC's second byte names, gated by their own EIMS bits. Without
 * MSI-X the PF asserts INTx while any enabled cause is pending.
 *
 * A VF: 3 MSI-X vectors; VTIVAR routes its queues, VTIVAR_MISC the mailbox;
 * VTEICR is read-to-clear, VTEIAC auto-clears, VTEIAM auto-masks.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qemu/units.h"
#include "hw/pci/msix.h"
#include "hw/pci/pci.h"
#include "ixgbe.h"

#define EIMS_OTHER(s) ((s)->regs[X_EIMS >> 2])      /* the other causes' mask */
#define EIAM_OTHER(s) ((s)->regs[X_EIAM >> 2])

static void pf_legacy_update(IxgbeState *s)
{
    PCIDevice *d = PCI_DEVICE(s);
    bool level = (s->vec_cause & s->vec_mask) ||
                 (s->eicr_other & EIMS_OTHER(s) & X_EICR_OTHER_MASK);

    if (!msix_enabled(d)) {
        pci_set_irq(d, level);
    }
}

static void pf_fire(IxgbeState *s, int v)
{
    PCIDevice *d = PCI_DEVICE(s);
    uint64_t bit = 1ull << v;

    if (!msix_enabled(d)) {
        pf_legacy_update(s);
        return;
    }
    msix_notify(d, v);
    if (v >= 16 || (ix_get(s, X_EIAC) & bit)) {
        s->vec_cause &= ~bit;
    }
    if ((ix_get(s, X_GPIE) & X_GPIE_EIAME) && (s->vec_automask & bit)) {
        s->vec_mask &= ~bit;
    }
}

static void pf_raise_vec(IxgbeState *s, int v)
{
    uint64_t bit = 1ull << v;

    s->vec_cause |= bit;
    if (s->vec_mask & bit) {
        pf_fire(s, v);
    }
}

static void pf_fire_other(IxgbeState *s)
{
    PCIDevice *d = PCI_DEVICE(s);
    uint32_t ivar = ix_get(s, X_IVAR_MISC) >> 8;

    if (!msix_enabled(d)) {
        pf_legacy_update(s);
        return;
    }
    if (ivar & X_IVAR_VALID) {
        msix_notify(d, ivar & 0x3F);
    }
}

void ixgbe_raise_other(IxgbeState *s, uint32_t cause)
{
    s->eicr_other |= cause;
    if (EIMS_OTHER(s) & cause) {
        pf_fire_other(s);
        if ((ix_get(s, X_GPIE) & X_GPIE_EIAME) && (EIAM_OTHER(s) & cause)) {
            EIMS_OTHER(s) &= ~cause;
        }
    }
}

static void vf_raise_vec(IxgbeState *s, int vf, int v)
{
    PCIDevice *d = ixgbe_vf_dev(s, vf);
    uint32_t bit = 1u << v;

    s->vf[vf].eicr |= bit;
    if (!d || !(s->vf[vf].eims & bit) || !msix_enabled(d)) {
        return;
    }
    msix_notify(d, v);
    if (s->vf[vf].eiac & bit) {
        s->vf[vf].eicr &= ~bit;
    }
    if (s->vf[vf].eiam & bit) {
        s->vf[vf].eims &= ~bit;
    }
}

void ixgbe_raise_queue(IxgbeState *s, int q, bool tx)
{
    int qpp = ixgbe_queues_per_pool(s);
    int pool = q / qpp;
    int shift, byte;

    if (ixgbe_vt_on(s) && pool < ixgbe_num_vfs(s)) {
        int i = q % qpp;

        shift = 16 * (i & 1) + 8 * tx;
        byte = (s->vf[pool].ivar[(i >> 1) & 3] >> shift) & 0xFF;
        if (byte & X_IVAR_VALID) {
            vf_raise_vec(s, pool, byte & 3);
        }
        return;
    }
    shift = 16 * (q & 1) + 8 * tx;
    byte = (ix_get(s, X_IVAR(q >> 1)) >> shift) & 0xFF;
    if (!msix_enabled(PCI_DEVICE(s))) {
        /* Legacy/MSI: the queue's cause is RTxQ[queue % 16] of EICR. */
        pf_raise_vec(s, q & 15);
        return;
    }
    if (byte & X_IVAR_VALID) {
        pf_raise_vec(s, byte & 0x3F);
    }
}

void ixgbe_intr_update(IxgbeState *s)
{
    pf_legacy_update(s);
}

/* EICR's view: the low 16 vector causes and the other causes. */
static uint32_t eicr_value(IxgbeState *s)
{
    return (uint32_t)(s->vec_cause & 0xFFFF) | (s->eicr_other & 0xFFFF0000u);
}

bool ixgbe_intr_read(IxgbeState *s, hwaddr off, uint32_t *val)
{
    switch (off) {
    case X_EICR: {
        *val = eicr_value(s);
        /* Read to clear; with GPIE.OCD the other causes stay. */
        s->vec_cause &= ~0xFFFFull;
        if (!(ix_get(s, X_GPIE) & X_GPIE_OCD)) {
            s->eicr_other = 0;
        }
        pf_legacy_update(s);
        return true;
    }
    case X_EICS:            /* reads as EICR, without clearing */
        *val = eicr_value(s);
        return true;
    case X_EIMS:
        *val = (uint32_t)(s->vec_mask & 0xFFFF) | (EIMS_OTHER(s) & 0xFFFF0000u);
        return true;
    case X_EIMC:                /* write only */
        *val = 0;
        return true;
    case X_EIAM:
        *val = (uint32_t)(s->vec_automask & 0xFFFF) | (EIAM_OTHER(s) & 0xFFFF0000u);
        return true;
    case X_EIMS_EX(0):
    case X_EIMS_EX(1):
        *val = s->vec_mask >> (32 * ((off - X_EIMS_EX(0)) / 4));
        return true;
    case X_EIAM_EX(0):
    case X_EIAM_EX(1):
        *val = s->vec_automask >> (32 * ((off - X_EIAM_EX(0)) / 4));
        return true;
    case X_EICS_EX(0):
    case X_EICS_EX(1):
    case X_EIMC_EX(0):
    case X_EIMC_EX(1):
        *val = 0;
        return true;
    }
    return false;
}

static void unmask(IxgbeState *s, uint64_t bits)
{
    uint64_t newly = bits & ~s->vec_mask;

    s->vec_mask |= bits;
    for (int v = 0; v < 64; v++) {
        if ((newly & (1ull << v)) && (s->vec_cause & (1ull << v))) {
            pf_fire(s, v);
        }
    }
}

bool ixgbe_intr_write(IxgbeState *s, hwaddr off, uint32_t val)
{
    switch (off) {
    case X_EICR:                    /* write 1 to clear */
        s->vec_cause &= ~(uint64_t)(val & 0xFFFF);
        s->eicr_other &= ~(val & 0xFFFF0000u);
        break;
    case X_EICS:
        for (int v = 0; v < 16; v++) {
            if (val & (1u << v)) {
                pf_raise_vec(s, v);
            }
        }
        if (val & 0xFFFF0000u) {
            ixgbe_raise_other(s, val & 0xFFFF0000u);
        }
        break;
    case X_EIMS: {
        uint32_t newly = val & ~EIMS_OTHER(s) & 0xFFFF0000u;

        EIMS_OTHER(s) |= val & 0xFFFF0000u;
        unmask(s, val & 0xFFFF);
        if (s->eicr_other & newly) {
            pf_fire_other(s);
        }
        break;
    }
    case X_EIMC:
        EIMS_OTHER(s) &= ~(val & 0xFFFF0000u);
        s->vec_mask &= ~(uint64_t)(val & 0xFFFF);
        break;
    case X_EIAM:
        EIAM_OTHER(s) = val & 0xFFFF0000u;
        s->vec_automask = (s->vec_automask & ~0xFFFFull) | (val & 0xFFFF);
        break;
    case X_EIAC:
        ix_set(s, off, val);
        break;
    case X_EIMS_EX(0):
    case X_EIMS_EX(1):
        unmask(s, (uint64_t)val << (32 * ((off - X_EIMS_EX(0)) / 4)));
        break;
    case X_EIMC_EX(0):
    case X_EIMC_EX(1):
        s->vec_mask &= ~((uint64_t)val << (32 * ((off - X_EIMC_EX(0)) / 4)));
        break;
    case X_EICS_EX(0):
    case X_EICS_EX(1): {
        int base = 32 * ((off - X_EICS_EX(0)) / 4);

        for (int v = 0; v < 32; v++) {
            if (val & (1u << v)) {
                pf_raise_vec(s, base + v);
            }
        }
        break;
    }
    case X_EIAM_EX(0):
    case X_EIAM_EX(1): {
        int sh = 32 * ((off - X_EIAM_EX(0)) / 4);

        s->vec_automask = (s->vec_automask & ~(0xFFFFFFFFull << sh)) |
                          ((uint64_t)val << sh);
        break;
    }
    default:
        return false;
    }
    pf_legacy_update(s);
    return true;
}

/* ---- A VF's own interrupt registers ---------------------------------- */

uint32_t ixgbe_vf_intr_read(IxgbeState *s, int vf, hwaddr off)
{
    uint32_t v;

    switch (off) {
    case V_EICR:
        v = s->vf[vf].eicr;
        s->vf[vf].eicr = 0;
        return v;
    case V_EICS:
        return s->vf[vf].eicr;
    case V_EIMS:
        return s->vf[vf].eims;
    case V_EIAC:
        return s->vf[vf].eiac;
    case V_EIAM:
        return s->vf[vf].eiam;
    case V_IVAR(0) ... V_IVAR(3):
        return s->vf[vf].ivar[(off - V_IVAR(0)) / 4];
    case V_IVAR_MISC:
        return s->vf[vf].ivar_misc;
    case V_EITR(0) ... V_EITR(2):
        return s->vf[vf].eitr[(off - V_EITR(0)) / 4];
    }
    return 0;
}

void ixgbe_vf_intr_write(IxgbeState *s, int vf, hwaddr off, uint32_t val)
{
    val &= (off == V_EICR || off == V_EICS || off == V_EIMS || off == V_EIMC ||
            off == V_EIAC || off == V_EIAM) ? 7u : 0xFFFFFFFFu;
    switch (off) {
    case V_EICR:
        s->vf[vf].eicr &= ~val;
        break;
    case V_EICS:
        for (int v = 0; v < IXGBE_VF_VECTORS; v++) {
            if (val & (1u << v)) {
                vf_raise_vec(s, vf, v);
            }
        }
        break;
    case V_EIMS: {
        uint32_t newly = val & ~s->vf[vf].eims;

        s->vf[vf].eims |= val;
        for (int v = 0; v < IXGBE_VF_VECTORS; v++) {
            if ((newly & (1u << v)) && (s->vf[vf].eicr & (1u << v))) {
                s->vf[vf].eicr &= ~(1u << v);
                vf_raise_vec(s, vf, v);
            }
        }
        break;
    }
    case V_EIMC:
        s->vf[vf].eims &= ~val;
        break;
    case V_EIAC:
        s->vf[vf].eiac = val;
        break;
    case V_EIAM:
        s->vf[vf].eiam = val;
        break;
    case V_IVAR(0) ... V_IVAR(3):
        s->vf[vf].ivar[(off - V_IVAR(0)) / 4] = val & 0x83838383u;
        break;
    case V_IVAR_MISC:
        s->vf[vf].ivar_misc = val & 0x83u;
        break;
    case V_EITR(0) ... V_EITR(2):
        s->vf[vf].eitr[(off - V_EITR(0)) / 4] = val & 0x80000FF8u;
        break;
    }
}

void ixgbe_vf_intr_reset(IxgbeState *s, int vf)
{
    s->vf[vf].eicr = s->vf[vf].eims = s->vf[vf].eiac = s->vf[vf].eiam = 0;
    memset(s->vf[vf].ivar, 0, sizeof(s->vf[vf].ivar));
    s->vf[vf].ivar_misc = 0;
    memset(s->vf[vf].eitr, 0, sizeof(s->vf[vf].eitr));
}

/* The VF's mailbox cause: its VTIVAR_MISC vector. */
void ixgbe_vf_raise_mailbox(IxgbeState *s, int vf)
{
    uint32_t m = s->vf[vf].ivar_misc;

    if (m & X_IVAR_VALID) {
        vf_raise_vec(s, vf, m & 3);
    }
}
