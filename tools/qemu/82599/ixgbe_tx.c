/*
 * Emulated Intel 82599 (intel-vf-vfio test bed): transmit.
 *
 * Advanced context and data descriptors (and legacy ones), checksum
 * insertion (IXSM/TXSM), TCP segmentation (TSE, done by net_tx_pkt in
 * software), VLAN insertion (VLE, or the pool's default VLAN from VMVIR),
 * MAC and VLAN anti-spoofing (PFVFSPOOF), and the switch: with
 * PFDTXGSWC.LBEN a pool's frame is first offered to the other local pools
 * (ixgbe_rx.c) and goes to the wire unless a local pool's unicast filter
 * took it. Descriptor write-back sets DD in a descriptor with RS, or, with
 * TDWBAL's enable bit, writes the head to memory (head write-back).
 *
 * Strict mode: WTHRESH batching. With TXDCTL.WTHRESH > 0 the write-backs
 * of completed descriptors are held until WTHRESH of them are pending (or
 * a 100 us flush timer, standing for the interrupt-driven write-back,
 * fires, or software sets TXDCTL.SWFLSH); a queue disabled without SWFLSH
 * drops the held write-backs.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qemu/units.h"
#include "hw/pci/pci.h"
#include "net/eth.h"
#include "hw/net/net_tx_pkt.h"
#include "system/dma.h"
#include "ixgbe.h"

#define TX_MAX_FRAGS    64

static int tx_pool(IxgbeState *s, int q)
{
    if (!ixgbe_vt_on(s)) {
        return -1;
    }
    return q / ixgbe_queues_per_pool(s);
}

static PCIDevice *tx_dma_dev(IxgbeState *s, int q)
{
    int pool = tx_pool(s, q);

    if (pool >= 0 && pool < ixgbe_num_vfs(s)) {
        PCIDevice *vf = ixgbe_vf_dev(s, pool);
        if (vf) {
            return vf;
        }
    }
    return PCI_DEVICE(s);
}

static uint64_t ring_base(IxgbeState *s, int q)
{
    return ((uint64_t)ix_txq(s, q, X_TXQ_BAH) << 32) | ix_txq(s, q, X_TXQ_BAL);
}

static uint32_t ring_len(IxgbeState *s, int q)
{
    return ix_txq(s, q, X_TXQ_LEN) / 16;
}

static void wb_head(IxgbeState *s, int q)
{
    uint32_t bal = ix_txq(s, q, X_TXQ_WBAL);

    if (bal & 1) {
        uint64_t a = ((uint64_t)ix_txq(s, q, X_TXQ_WBAH) << 32) | (bal & ~3u);
        uint32_t head = cpu_to_le32(ix_txq(s, q, X_TXQ_H));

        pci_dma_write(tx_dma_dev(s, q), a, &head, 4);
    }
}

static void wb_desc(IxgbeState *s, int q, uint32_t idx)
{
    uint64_t a = ring_base(s, q) + idx * 16ull + 12;
    uint32_t sta;

    pci_dma_read(tx_dma_dev(s, q), a, &sta, 4);
    sta = cpu_to_le32(le32_to_cpu(sta) | TXD_STAT_DD);
    pci_dma_write(tx_dma_dev(s, q), a, &sta, 4);
}

static void wb_flush(IxgbeState *s, int q)
{
    for (int i = 0; i < s->txq[q].wb_n; i++) {
        if (!(ix_txq(s, q, X_TXQ_WBAL) & 1)) {
            wb_desc(s, q, s->txq[q].wb_idx[i]);
        }
    }
    if (s->txq[q].wb_n) {
        wb_head(s, q);
        ixgbe_raise_queue(s, q, true);
    }
    s->txq[q].wb_n = 0;
}

static void wb_timer_cb(void *opaque)
{
    IxgbeTxq *t = opaque;

    wb_flush(t->s, t->q);
}

/* A descriptor with RS completed: write it back now or hold it (strict). */
static void wb_done(IxgbeState *s, int q, uint32_t idx, bool *raise)
{
    uint32_t wthresh = (ix_txq(s, q, X_TXQ_DCTL) & X_TXDCTL_WTHRESH_MASK) >>
                       X_TXDCTL_WTHRESH_SHIFT;

    if (!s->strict || wthresh == 0) {
        if (!(ix_txq(s, q, X_TXQ_WBAL) & 1)) {
            wb_desc(s, q, idx);
        }
        *raise = true;
        return;
    }
    if (s->txq[q].wb_n < IXGBE_WB_MAX) {
        s->txq[q].wb_idx[s->txq[q].wb_n++] = idx;
    }
    if (s->txq[q].wb_n >= wthresh) {
        wb_flush(s, q);
        return;
    }
    if (!s->txq[q].wb_timer) {
        s->txq[q].s = s;
        s->txq[q].q = q;
        s->txq[q].wb_timer = timer_new_us(QEMU_CLOCK_VIRTUAL, wb_timer_cb,
                                          &s->txq[q]);
    }
    if (!timer_pending(s->txq[q].wb_timer)) {
        timer_mod(s->txq[q].wb_timer, qemu_clock_get_us(QEMU_CLOCK_VIRTUAL) + 100);
    }
}

/* ---- Anti-spoofing and the switch ------------------------------------- */

static bool pool_owns_mac(IxgbeState *s, int pool, const uint8_t *mac)
{
    for (int i = 0; i < IXGBE_RAR; i++) {
        uint32_t rah = ix_get(s, X_RAH(i)), ral = ix_get(s, X_RAL(i));
        uint64_t pools;

        if (!(rah & X_RAH_AV)) {
            continue;
        }
        if (mac[0] != (ral & 0xFF) || mac[1] != ((ral >> 8) & 0xFF) ||
            mac[2] != ((ral >> 16) & 0xFF) || mac[3] != (ral >> 24) ||
            mac[4] != (rah & 0xFF) || mac[5] != ((rah >> 8) & 0xFF)) {
            continue;
        }
        pools = ix_get(s, X_MPSAR_LO(i)) | ((uint64_t)ix_get(s, X_MPSAR_HI(i)) << 32);
        if (pools & (1ull << pool)) {
            return true;
        }
    }
    return false;
}

static bool spoofed(IxgbeState *s, int pool, const uint8_t *frame, size_t len)
{
    uint32_t spoof = ix_get(s, X_PFVFSPOOF(pool / 8)) >> (pool % 8);

    if (len < 14) {
        return true;
    }
    /* MAC anti-spoof: bits 7:0 of PFVFSPOOF(n), one per pool. */
    if ((spoof & 1) && !pool_owns_mac(s, pool, frame + 6)) {
        IXDBG(s, "pool %d: MAC anti-spoof drops a frame from "
              "%02x:%02x:%02x:%02x:%02x:%02x", pool, frame[6], frame[7],
              frame[8], frame[9], frame[10], frame[11]);
        return true;
    }
    /* VLAN anti-spoof: bits 15:8; the tag must be one the pool belongs to. */
    if ((ix_get(s, X_PFVFSPOOF(pool / 8)) >> (8 + pool % 8)) & 1) {
        uint16_t tpid = lduw_be_p(frame + 12);

        if (tpid == ETH_P_VLAN && len >= 18) {
            uint16_t vid = lduw_be_p(frame + 14) & 0xFFF;
            bool ok = false;

            for (int i = 0; i < 64 && !ok; i++) {
                uint32_t vlvf = ix_get(s, X_VLVF(i));
                uint64_t m = ix_get(s, X_VLVFB(2 * i)) |
                             ((uint64_t)ix_get(s, X_VLVFB(2 * i + 1)) << 32);
                ok = (vlvf & X_VLVF_VIEN) && (vlvf & 0xFFF) == vid &&
                     (m & (1ull << pool));
            }
            if (!ok) {
                IXDBG(s, "pool %d: VLAN anti-spoof drops VLAN %u", pool, vid);
                return true;
            }
        }
    }
    return false;
}

typedef struct TxCtx {
    IxgbeState *s;
    int q;
    int pool;
} TxCtx;

static void tx_frame_out(void *opaque, const struct iovec *iov, int iovcnt,
                         const struct iovec *viov, int viovcnt)
{
    TxCtx *c = opaque;
    IxgbeState *s = c->s;
    uint8_t hdr[18];
    size_t len = iov_size(iov, iovcnt);
    size_t hl = iov_to_buf(iov, iovcnt, 0, hdr, sizeof(hdr));
    bool wire = true;

    IXSW(s, "tx queue %d pool %d: %zu B", c->q, c->pool, len);
    if (c->pool >= 0 && c->pool < ixgbe_num_vfs(s) && spoofed(s, c->pool, hdr, hl)) {
        return;
    }
    if (c->pool >= 0) {
        IxgbeVfStats *st = &s->vfstats[c->pool];
        st->gptc++;
        st->gotc += len;
    }
    ix_count(s, X_GPTC, 1);
    ix_count(s, X_TPT, 1);
    ix_count36(s, X_GOTCL, X_GOTCH, len);
    if (hl >= 6 && (hdr[0] & 1)) {
        if (is_broadcast_ether_addr(hdr)) {
            ix_count(s, X_BPTC, 1);
        } else {
            ix_count(s, X_MPTC, 1);
        }
    }
    if (c->pool >= 0 && (ix_get(s, X_PFDTXGSWC) & X_PFDTXGSWC_LBEN)) {
        wire = ixgbe_switch_local(s, c->pool, iov, iovcnt);
    }
    if (wire && s->link_up) {
        qemu_sendv_packet(qemu_get_queue(s->nic), iov, iovcnt);
    }
}

static void tx_send(IxgbeState *s, int q)
{
    IxgbeTxq *t = &s->txq[q];
    uint32_t idx = (t->first_olinfo >> TXD_IDX_SHIFT) & 1;
    uint32_t *ctx = t->ctx[idx];
    int pool = tx_pool(s, q);
    TxCtx c = { s, q, pool };
    bool dext = t->first_cmd & TXD_CMD_DEXT;

    if (!net_tx_pkt_parse(t->pkt)) {
        IXDBG(s, "TX queue %d: a packet that does not parse", q);
        return;
    }
    if (dext && (t->first_cmd & TXD_CMD_VLE)) {
        net_tx_pkt_setup_vlan_header_ex(t->pkt, ctx[0] >> 16,
                                        ix_get(s, X_DMATXCTL) >> X_DMATXCTL_VT_SHIFT);
    } else if (pool >= 0 &&
               (ix_get(s, X_VMVIR(pool)) & (3u << 30)) == X_VMVIR_VLANA_DEFAULT) {
        net_tx_pkt_setup_vlan_header_ex(t->pkt, ix_get(s, X_VMVIR(pool)) & 0xFFFF,
                                        ETH_P_VLAN);
    }
    if (dext && (t->first_cmd & TXD_CMD_TSE)) {
        uint32_t mss = ctx[3] >> 16;

        if (!net_tx_pkt_build_vheader(t->pkt, true, true, mss)) {
            IXDBG(s, "TX queue %d: TSO setup failed", q);
            return;
        }
        net_tx_pkt_update_ip_checksums(t->pkt);
    } else if (dext) {
        if (t->first_olinfo & TXD_POPTS_TXSM) {
            bool sctp = (ctx[2] & TXC_TUCMD_L4T_MASK) == TXC_TUCMD_L4T_SCTP;
            if (sctp ? !net_tx_pkt_update_sctp_checksum(t->pkt)
                     : !net_tx_pkt_build_vheader(t->pkt, false, true, 0)) {
                return;
            }
        }
        if (t->first_olinfo & TXD_POPTS_IXSM) {
            net_tx_pkt_update_ip_hdr_checksum(t->pkt);
        }
    }
    net_tx_pkt_send_custom(t->pkt, false, tx_frame_out, &c);
}

static bool tx_allowed(IxgbeState *s, int q)
{
    int pool = tx_pool(s, q);

    if (!(ix_get(s, X_DMATXCTL) & X_DMATXCTL_TE) ||
        !(ix_txq(s, q, X_TXQ_DCTL) & X_TXDCTL_ENABLE)) {
        return false;
    }
    if (pool >= 0 && !((ix_get(s, X_VFTE(pool / 32)) >> (pool % 32)) & 1)) {
        return false;
    }
    return true;
}

void ixgbe_tx_tail_written(IxgbeState *s, int q)
{
    IxgbeTxq *t = &s->txq[q];
    PCIDevice *dev = tx_dma_dev(s, q);
    uint32_t len = ring_len(s, q);
    bool raise = false;
    int budget = 4096;

    if (!tx_allowed(s, q) || len == 0) {
        IXSW(s, "tx queue %d: tail %u written, queue off", q, ix_txq(s, q, X_TXQ_T));
        return;
    }
    IXSW(s, "tx queue %d: head %u tail %u", q, ix_txq(s, q, X_TXQ_H),
         ix_txq(s, q, X_TXQ_T));
    while (ix_txq(s, q, X_TXQ_H) != ix_txq(s, q, X_TXQ_T) && budget--) {
        uint32_t head = ix_txq(s, q, X_TXQ_H);
        uint32_t d[4];
        uint64_t addr;
        uint32_t cmd;

        if (head >= len) {
            head = 0;
        }
        pci_dma_read(dev, ring_base(s, q) + head * 16ull, d, sizeof(d));
        for (int i = 0; i < 4; i++) {
            d[i] = le32_to_cpu(d[i]);
        }
        cmd = d[2];
        IXSW(s, "  desc %u: %08x %08x %08x %08x", head, d[0], d[1], d[2], d[3]);
        if ((cmd & TXD_CMD_DEXT) && (cmd & TXD_DTYP_MASK) == TXD_DTYP_CTXT) {
            memcpy(t->ctx[(d[3] >> TXD_IDX_SHIFT) & 1], d, sizeof(d));
        } else {
            uint32_t blen = (cmd & TXD_CMD_DEXT) ? (cmd & 0xFFFF) : (cmd & 0xFFFF);

            addr = ((uint64_t)d[1] << 32) | d[0];
            if (!t->in_pkt) {
                t->first_cmd = cmd;
                t->first_olinfo = d[3];
                t->in_pkt = true;
            }
            if (blen && !net_tx_pkt_add_raw_fragment_pci(t->pkt, dev, addr, blen)) {
                IXDBG(s, "TX queue %d: too many fragments", q);
            }
            if (cmd & TXD_CMD_EOP) {
                tx_send(s, q);
                net_tx_pkt_reset(t->pkt, net_tx_pkt_unmap_frag_pci, dev);
                t->in_pkt = false;
            }
        }
        head = (head + 1) % len;
        ix_set(s, X_TXQ_BASE(q) + X_TXQ_H, head);
        if (cmd & TXD_CMD_RS) {
            wb_done(s, q, (head + len - 1) % len, &raise);
        }
    }
    if (raise) {
        wb_head(s, q);
        ixgbe_raise_queue(s, q, true);
    }
}

void ixgbe_tx_dctl_written(IxgbeState *s, int q, uint32_t old, uint32_t val)
{
    if (val & X_TXDCTL_SWFLSH) {
        wb_flush(s, q);
    }
    if ((old & X_TXDCTL_ENABLE) && !(val & X_TXDCTL_ENABLE)) {
        if (s->txq[q].wb_n) {
            IXDBG(s, "strict: TX queue %d disabled without SWFLSH drops %d "
                  "pending write-backs", q, s->txq[q].wb_n);
        }
        s->txq[q].wb_n = 0;
        if (s->txq[q].wb_timer) {
            timer_del(s->txq[q].wb_timer);
        }
        if (s->txq[q].in_pkt) {
            net_tx_pkt_reset(s->txq[q].pkt, net_tx_pkt_unmap_frag_pci,
                             tx_dma_dev(s, q));
            s->txq[q].in_pkt = false;
        }
    }
    if (!(old & X_TXDCTL_ENABLE) && (val & X_TXDCTL_ENABLE)) {
        ixgbe_tx_tail_written(s, q);
    }
}

void ixgbe_tx_init(IxgbeState *s)
{
    for (int q = 0; q < IXGBE_QUEUES; q++) {
        net_tx_pkt_init(&s->txq[q].pkt, TX_MAX_FRAGS);
    }
}

void ixgbe_tx_uninit(IxgbeState *s)
{
    for (int q = 0; q < IXGBE_QUEUES; q++) {
        net_tx_pkt_uninit(s->txq[q].pkt);
        if (s->txq[q].wb_timer) {
            timer_free(s->txq[q].wb_timer);
            s->txq[q].wb_timer = NULL;
        }
    }
}

void ixgbe_tx_reset(IxgbeState *s)
{
    for (int q = 0; q < IXGBE_QUEUES; q++) {
        if (s->txq[q].in_pkt) {
            net_tx_pkt_reset(s->txq[q].pkt, net_tx_pkt_unmap_frag_pci,
                             tx_dma_dev(s, q));
        }
        s->txq[q].in_pkt = false;
        memset(s->txq[q].ctx, 0, sizeof(s->txq[q].ctx));
        s->txq[q].wb_n = 0;
        if (s->txq[q].wb_timer) {
            timer_del(s->txq[q].wb_timer);
        }
    }
}
