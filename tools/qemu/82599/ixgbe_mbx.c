/*
 * Emulated Intel 82599 (intel-vf-vfio test bed): the PF/VF mailboxes,
 * VFLR events and the PF reset indication.
 *
 * Each VF has 16 dwords of mailbox memory (PFMBMEM(n) on the PF side,
 * VFMBMEM on the VF's) and a lock: the VF takes it with VFMAILBOX.VFU, the
 * PF with PFMAILBOX.PFU, each granted only while the other side does not
 * hold it (a write without the bit releases it; PFMAILBOX.RVFU takes the
 * VF's away). Writing VFMAILBOX.REQ (ACK) sets the VF's request (ack) bit
 * in MBVFICR and raises the PF's EICR.MAILBOX; writing PFMAILBOX.STS (ACK)
 * sets VFMAILBOX.PFSTS (PFACK) and raises the VF's mailbox vector.
 * PFSTS, PFACK and RSTD are read-to-clear; MBVFICR is write-1-to-clear.
 *
 * A PF reset (CTRL.RST) raises VFMAILBOX.RSTI in every VF until the PF
 * driver sets CTRL_EXT.PFRSTD, which clears RSTI and sets RSTD.
 * A VF's FLR sets its bit in VFLRE (0x600 for VFs 0-31, 0x1C0 for 32-63,
 * cleared through VFLREC) and raises EICR.MAILBOX.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qemu/units.h"
#include "ixgbe.h"


static void pf_notify(IxgbeState *s, int vf)
{
    /* MBVFIMR: a set bit enables the VF's mailbox interrupt (reset: all). */
    if (ix_get(s, X_MBVFIMR(vf / 16)) & (1u << (vf % 16))) {
        ixgbe_raise_other(s, X_EICR_MAILBOX);
    }
}

bool ixgbe_mbx_pf_read(IxgbeState *s, hwaddr off, uint32_t *val)
{
    if (off >= X_PFMBMEM(0) && off < X_PFMBMEM(IXGBE_MAX_VFS)) {
        int vf = (off - X_PFMBMEM(0)) / 64;

        *val = s->mbmem[vf][((off - X_PFMBMEM(0)) % 64) / 4];
        return true;
    }
    if (off >= X_PFMAILBOX(0) && off < X_PFMAILBOX(IXGBE_MAX_VFS)) {
        int vf = (off - X_PFMAILBOX(0)) / 4;

        *val = (s->pfmb[vf] & X_PFMB_PFU) |
               ((s->vfmb[vf] & V_MB_VFU) ? X_PFMB_VFU : 0);
        return true;
    }
    switch (off) {
    case X_MBVFICR(0) ... X_MBVFICR(3):
        *val = s->mbvficr[(off - X_MBVFICR(0)) / 4];
        return true;
    case X_VFLRE0:
        *val = (uint32_t)s->vflre;
        return true;
    case X_VFLRE1:
        *val = (uint32_t)(s->vflre >> 32);
        return true;
    case X_VFLREC(0):
    case X_VFLREC(1):
        *val = (uint32_t)(s->vflre >> (32 * ((off - X_VFLREC(0)) / 4)));
        return true;
    }
    return false;
}

bool ixgbe_mbx_pf_write(IxgbeState *s, hwaddr off, uint32_t val)
{
    if (off >= X_PFMBMEM(0) && off < X_PFMBMEM(IXGBE_MAX_VFS)) {
        int vf = (off - X_PFMBMEM(0)) / 64;

        if (s->pfmb[vf] & X_PFMB_PFU) {
            s->mbmem[vf][((off - X_PFMBMEM(0)) % 64) / 4] = val;
        } else {
            IXDBG(s, "PF wrote VF %d's mailbox memory without PFU", vf);
        }
        return true;
    }
    if (off >= X_PFMAILBOX(0) && off < X_PFMAILBOX(IXGBE_MAX_VFS)) {
        int vf = (off - X_PFMAILBOX(0)) / 4;

        if (val & X_PFMB_RVFU) {
            s->vfmb[vf] &= ~V_MB_VFU;
        }
        if ((val & X_PFMB_PFU) && !(s->vfmb[vf] & V_MB_VFU)) {
            s->pfmb[vf] |= X_PFMB_PFU;
        } else if (!(val & X_PFMB_PFU)) {
            s->pfmb[vf] &= ~X_PFMB_PFU;
        }
        if (val & (X_PFMB_STS | X_PFMB_ACK)) {
            if (val & X_PFMB_STS) {
                IXMBX(s, "PF -> VF %d: %08x %08x %08x", vf, s->mbmem[vf][0],
                      s->mbmem[vf][1], s->mbmem[vf][2]);
                s->vfmb[vf] |= V_MB_PFSTS;
            }
            if (val & X_PFMB_ACK) {
                s->vfmb[vf] |= V_MB_PFACK;
            }
            ixgbe_vf_raise_mailbox(s, vf);
        }
        return true;
    }
    switch (off) {
    case X_MBVFICR(0) ... X_MBVFICR(3):
        s->mbvficr[(off - X_MBVFICR(0)) / 4] &= ~val;
        return true;
    case X_VFLREC(0):
    case X_VFLREC(1):
        s->vflre &= ~((uint64_t)val << (32 * ((off - X_VFLREC(0)) / 4)));
        return true;
    case X_VFLRE0:
    case X_VFLRE1:
        return true;                /* read only */
    }
    return false;
}

uint32_t ixgbe_mbx_vf_read(IxgbeState *s, int vf, hwaddr off)
{
    if (off >= V_MBMEM && off < V_MBMEM + 64) {
        return s->mbmem[vf][(off - V_MBMEM) / 4];
    }
    if (off == V_MAILBOX) {
        uint32_t v = s->vfmb[vf] & (V_MB_VFU | V_MB_PFSTS | V_MB_PFACK |
                                    V_MB_RSTI | V_MB_RSTD);

        if (s->pfmb[vf] & X_PFMB_PFU) {
            v |= V_MB_PFU;
        }
        s->vfmb[vf] &= ~(V_MB_PFSTS | V_MB_PFACK | V_MB_RSTD);
        return v;
    }
    return 0;
}

void ixgbe_mbx_vf_write(IxgbeState *s, int vf, hwaddr off, uint32_t val)
{
    if (off >= V_MBMEM && off < V_MBMEM + 64) {
        if (s->vfmb[vf] & V_MB_VFU) {
            s->mbmem[vf][(off - V_MBMEM) / 4] = val;
        } else {
            IXDBG(s, "VF %d wrote its mailbox memory without VFU", vf);
        }
        return;
    }
    if (off != V_MAILBOX) {
        return;
    }
    if ((val & V_MB_VFU) && !(s->pfmb[vf] & X_PFMB_PFU)) {
        s->vfmb[vf] |= V_MB_VFU;
    } else if (!(val & V_MB_VFU)) {
        s->vfmb[vf] &= ~V_MB_VFU;
    }
    if (val & (V_MB_REQ | V_MB_ACK)) {
        if (val & V_MB_REQ) {
            IXMBX(s, "VF %d -> PF: %08x %08x %08x", vf, s->mbmem[vf][0],
                  s->mbmem[vf][1], s->mbmem[vf][2]);
            s->mbvficr[vf / 16] |= 1u << (vf % 16);
        }
        if (val & V_MB_ACK) {
            s->mbvficr[vf / 16] |= 1u << (16 + vf % 16);
        }
        pf_notify(s, vf);
    }
}

void ixgbe_mbx_pf_reset_start(IxgbeState *s)
{
    for (int vf = 0; vf < IXGBE_MAX_VFS; vf++) {
        s->vfmb[vf] = (s->vfmb[vf] & V_MB_VFU) | V_MB_RSTI;
        s->pfmb[vf] = 0;
    }
    memset(s->mbvficr, 0, sizeof(s->mbvficr));
}

void ixgbe_mbx_pf_reset_done(IxgbeState *s)
{
    for (int vf = 0; vf < IXGBE_MAX_VFS; vf++) {
        s->vfmb[vf] = (s->vfmb[vf] & ~V_MB_RSTI) | V_MB_RSTD;
        if (vf < ixgbe_num_vfs(s)) {
            ixgbe_vf_raise_mailbox(s, vf);
        }
    }
}

void ixgbe_mbx_vflr(IxgbeState *s, int vf)
{
    /* What an FLR resets of the mailbox: the VF's lock and its unread
     * indications; the memory and the PF's side are kept. */
    IXMBX(s, "VF %d: FLR", vf);
    s->vfmb[vf] &= V_MB_RSTI;
    s->vflre |= 1ull << vf;
    ixgbe_raise_other(s, X_EICR_MAILBOX);
}

void ixgbe_mbx_reset(IxgbeState *s)
{
    memset(s->mbmem, 0, sizeof(s->mbmem));
    memset(s->pfmb, 0, sizeof(s->pfmb));
    memset(s->mbvficr, 0, sizeof(s->mbvficr));
    s->vflre = 0;
    for (int vf = 0; vf < IXGBE_MAX_VFS; vf++) {
        s->vfmb[vf] = V_MB_RSTI;
    }
    for (int i = 0; i < 4; i++) {
        ix_set(s, X_MBVFIMR(i), 0xFFFF);
    }
}
