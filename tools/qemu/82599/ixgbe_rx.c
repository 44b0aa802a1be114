/*
 * Emulated Intel 82599 (intel-vf-vfio test bed): receive and the
 * virtualisation switch's pool selection.
 *
 * Without VT (VT_CTL.VT_ENA clear) the PF's L2 filters decide (RAR, UPE,
 * MTA/MPE, BAM, VFTA) and RSS (MRQC, RETA, RSSRK) picks the queue.
 * With VT, a frame goes to a set of pools:
 *   unicast    the pools of the RAR entry it matches (MPSAR); if none,
 *              the pools with VMOLR.ROPE, and the default pool when
 *              FCTRL.UPE is set (unless VT_CTL.DIS_DEFPL);
 *   multicast  the pools with VMOLR.MPE, or with VMOLR.ROMPE when the MTA
 *              bit of the address is set; the default pool with FCTRL.MPE;
 *   broadcast  the pools with VMOLR.BAM (FCTRL.BAM gates all);
 * then VLAN: a tagged frame reaches only the pools of the VLVF entry of its
 * VLAN (VLVFB), an untagged one only pools with VMOLR.AUPE; a pool whose
 * VFRE bit is clear receives nothing. In the pool, the first queue (or
 * RSS over the pool's queues with MRQC's VMDq+RSS modes) takes the frame.
 * Advanced one-buffer descriptors (SRRCTL.BSIZEPKT), chained over several
 * descriptors when the frame is larger; RXDCTL.VME strips the VLAN tag into
 * the descriptor; a pool with a port VLAN (VMVIR) has it stripped and
 * hidden.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qemu/units.h"
#include "hw/pci/pci.h"
#include "net/eth.h"
#include "hw/net/net_rx_pkt.h"
#include "system/dma.h"
#include "ixgbe.h"

#define MIN_FRAME 60

static bool rar_match(IxgbeState *s, const uint8_t *mac, uint64_t *pools)
{
    bool hit = false;

    *pools = 0;
    for (int i = 0; i < IXGBE_RAR; i++) {
        uint32_t rah = ix_get(s, X_RAH(i)), ral = ix_get(s, X_RAL(i));

        if (!(rah & X_RAH_AV)) {
            continue;
        }
        if (ldl_le_p(mac) == ral && lduw_le_p(mac + 4) == (rah & 0xFFFF)) {
            *pools |= ix_get(s, X_MPSAR_LO(i)) |
                      ((uint64_t)ix_get(s, X_MPSAR_HI(i)) << 32);
            hit = true;
        }
    }
    return hit;
}

/* The MTA bit of a multicast address (MCSTCTRL.MO selects the bits). */
static bool mta_match(IxgbeState *s, const uint8_t *mac)
{
    uint32_t mo = ix_get(s, X_MCSTCTRL) & 3;
    uint32_t v;

    switch (mo) {
    case 0:
        v = (mac[4] >> 4) | ((uint32_t)mac[5] << 4);
        break;
    case 1:
        v = (mac[4] >> 3) | ((uint32_t)mac[5] << 5);
        break;
    case 2:
        v = (mac[4] >> 2) | ((uint32_t)mac[5] << 6);
        break;
    default:
        v = mac[4] | ((uint32_t)mac[5] << 8);
        break;
    }
    v &= 0xFFF;
    return (ix_get(s, X_MTA(v >> 5)) >> (v & 31)) & 1;
}

static bool vfta_has(IxgbeState *s, uint16_t vid)
{
    return (ix_get(s, X_VFTA(vid >> 5)) >> (vid & 31)) & 1;
}

static uint64_t vlvf_pools(IxgbeState *s, uint16_t vid, bool *found)
{
    for (int i = 0; i < 64; i++) {
        uint32_t vlvf = ix_get(s, X_VLVF(i));

        if ((vlvf & X_VLVF_VIEN) && (vlvf & 0xFFF) == vid) {
            *found = true;
            return ix_get(s, X_VLVFB(2 * i)) |
                   ((uint64_t)ix_get(s, X_VLVFB(2 * i + 1)) << 32);
        }
    }
    *found = false;
    return 0;
}

static int default_pool(IxgbeState *s)
{
    return (ix_get(s, X_VT_CTL) & X_VT_CTL_POOL_MASK) >> X_VT_CTL_POOL_SHIFT;
}

static uint64_t pools_with(IxgbeState *s, uint32_t vmolr_bit)
{
    uint64_t m = 0;

    for (int p = 0; p < IXGBE_POOLS; p++) {
        if (ix_get(s, X_VMOLR(p)) & vmolr_bit) {
            m |= 1ull << p;
        }
    }
    return m;
}

/* The pools a frame goes to (VT on); *local_uc says a RAR entry took it. */
static uint64_t select_pools(IxgbeState *s, const uint8_t *f, size_t len,
                             bool *local_uc)
{
    uint32_t fctrl = ix_get(s, X_FCTRL);
    uint64_t pools = 0, enabled;
    bool tagged = len >= 18 && lduw_be_p(f + 12) == ETH_P_VLAN;
    int defpl = default_pool(s);
    bool defpl_ok = !(ix_get(s, X_VT_CTL) & X_VT_CTL_DIS_DEFPL);

    *local_uc = false;
    if (is_broadcast_ether_addr(f)) {
        if (fctrl & X_FCTRL_BAM) {
            pools = pools_with(s, X_VMOLR_BAM);
        }
    } else if (is_multicast_ether_addr(f)) {
        pools = pools_with(s, X_VMOLR_MPE);
        if (mta_match(s, f)) {
            pools |= pools_with(s, X_VMOLR_ROMPE);
        }
        if ((fctrl & X_FCTRL_MPE) && defpl_ok) {
            pools |= 1ull << defpl;
        }
    } else if (rar_match(s, f, &pools)) {
        *local_uc = pools != 0;
    } else {
        pools = pools_with(s, X_VMOLR_ROPE);
        if ((fctrl & X_FCTRL_UPE) && defpl_ok) {
            pools |= 1ull << defpl;
        }
    }
    if (tagged) {
        uint16_t vid = lduw_be_p(f + 14) & 0xFFF;
        bool found;
        uint64_t vp = vlvf_pools(s, vid, &found);

        if (found) {
            pools &= vp;
        } else if ((ix_get(s, X_VLNCTRL) & X_VLNCTRL_VFE) && !vfta_has(s, vid)) {
            pools = 0;
        } else {
            /* No pool is a member: only the default pool if it takes it. */
            pools &= defpl_ok ? (1ull << defpl) : 0;
        }
    } else {
        pools &= pools_with(s, X_VMOLR_AUPE);
    }
    enabled = ix_get(s, X_VFRE(0)) | ((uint64_t)ix_get(s, X_VFRE(1)) << 32);
    return pools & enabled;
}

static bool pf_accepts(IxgbeState *s, const uint8_t *f, size_t len)
{
    uint32_t fctrl = ix_get(s, X_FCTRL);
    uint64_t pools;

    if (len >= 18 && lduw_be_p(f + 12) == ETH_P_VLAN &&
        (ix_get(s, X_VLNCTRL) & X_VLNCTRL_VFE) &&
        !vfta_has(s, lduw_be_p(f + 14) & 0xFFF)) {
        return false;
    }
    if (is_broadcast_ether_addr(f)) {
        return fctrl & X_FCTRL_BAM;
    }
    if (is_multicast_ether_addr(f)) {
        return (fctrl & X_FCTRL_MPE) ||
               ((ix_get(s, X_MCSTCTRL) & X_MCSTCTRL_MFE) && mta_match(s, f));
    }
    return (fctrl & X_FCTRL_UPE) || rar_match(s, f, &pools);
}

/* ---- RSS ---------------------------------------------------------------- */

static uint32_t rss_hash(IxgbeState *s, const uint8_t *f, size_t len,
                         uint32_t *type)
{
    uint32_t mrqc = ix_get(s, X_MRQC);
    bool h4, h6;
    EthL4HdrProto l4;
    NetRxPktRssType t;
    uint8_t key[40];

    net_rx_pkt_get_protocols(s->rx_pkt, &h4, &h6, &l4);
    if (h4 && l4 == ETH_L4_HDR_PROTO_TCP && (mrqc & X_MRQC_RSS_TCPIPV4)) {
        t = NetPktRssIpV4Tcp;
        *type = 1;
    } else if (h4 && l4 == ETH_L4_HDR_PROTO_UDP && (mrqc & X_MRQC_RSS_UDPIPV4)) {
        t = NetPktRssIpV4Udp;
        *type = 7;
    } else if (h4 && (mrqc & X_MRQC_RSS_IPV4)) {
        t = NetPktRssIpV4;
        *type = 2;
    } else if (h6 && l4 == ETH_L4_HDR_PROTO_TCP && (mrqc & X_MRQC_RSS_TCPIPV6)) {
        t = NetPktRssIpV6Tcp;
        *type = 3;
    } else if (h6 && l4 == ETH_L4_HDR_PROTO_UDP && (mrqc & X_MRQC_RSS_UDPIPV6)) {
        t = NetPktRssIpV6Udp;
        *type = 8;
    } else if (h6 && (mrqc & X_MRQC_RSS_IPV6)) {
        t = NetPktRssIpV6;
        *type = 5;
    } else {
        *type = 0;
        return 0;
    }
    for (int i = 0; i < 10; i++) {
        stl_le_p(key + 4 * i, ix_get(s, X_RSSRK(i)));
    }
    return net_rx_pkt_calc_rss_hash(s->rx_pkt, t, key);
}

static uint8_t reta_entry(IxgbeState *s, uint32_t hash)
{
    uint32_t i = hash & 0x7F;

    return (ix_get(s, X_RETA(i / 4)) >> (8 * (i % 4))) & 0xF;
}

/* ---- Descriptor rings ---------------------------------------------------- */

static PCIDevice *rx_dma_dev(IxgbeState *s, int q)
{
    if (ixgbe_vt_on(s)) {
        int pool = q / ixgbe_queues_per_pool(s);

        if (pool < ixgbe_num_vfs(s)) {
            PCIDevice *vf = ixgbe_vf_dev(s, pool);
            if (vf) {
                return vf;
            }
        }
    }
    return PCI_DEVICE(s);
}

static uint32_t rx_free(IxgbeState *s, int q)
{
    uint32_t len = ix_rxq(s, q, X_RXQ_LEN) / 16;
    uint32_t h = ix_rxq(s, q, X_RXQ_H), t = ix_rxq(s, q, X_RXQ_T);

    if (!len || h >= len || t >= len) {
        return 0;
    }
    return (t + len - h) % len;
}

static uint32_t rx_bufsize(IxgbeState *s, int q)
{
    uint32_t b = (ix_rxq(s, q, X_RXQ_SRRCTL) & X_SRRCTL_BSIZEPKT_MASK) * KiB;

    return b ? b : 2 * KiB;
}

static bool rx_queue_ready(IxgbeState *s, int q)
{
    return (ix_get(s, X_RXCTRL) & X_RXCTRL_RXEN) &&
           (ix_rxq(s, q, X_RXQ_DCTL) & X_RXDCTL_ENABLE) &&
           ix_rxq(s, q, X_RXQ_LEN) != 0;
}

/* Write one frame into queue q; returns false (dropped) if no room. */
static bool rx_to_queue(IxgbeState *s, int q, const uint8_t *frame, size_t len,
                        bool strip_hide, uint32_t rss, uint32_t rss_type,
                        bool loopback, uint32_t csum)
{
    PCIDevice *dev = rx_dma_dev(s, q);
    uint32_t bsize = rx_bufsize(s, q);
    uint32_t ndesc = (len + bsize - 1) / bsize;
    uint32_t rlen = ix_rxq(s, q, X_RXQ_LEN) / 16;
    uint64_t base = ((uint64_t)ix_rxq(s, q, X_RXQ_BAH) << 32) | ix_rxq(s, q, X_RXQ_BAL);
    uint8_t buf[IXGBE_MAX_FRAME];
    uint16_t vlan = 0;
    uint32_t status = 0, pkttype = 0;
    bool vme = ix_rxq(s, q, X_RXQ_DCTL) & X_RXDCTL_VME;
    size_t off = 0;
    bool h4, h6;
    EthL4HdrProto l4;

    if (!rx_queue_ready(s, q)) {
        IXSW(s, "  queue %d not ready (RXCTRL %08x RXDCTL %08x RDLEN %u)", q,
             ix_get(s, X_RXCTRL), ix_rxq(s, q, X_RXQ_DCTL), ix_rxq(s, q, X_RXQ_LEN));
        return false;
    }
    memcpy(buf, frame, len);
    if ((vme || strip_hide) && len >= 18 && lduw_be_p(buf + 12) == ETH_P_VLAN) {
        vlan = lduw_be_p(buf + 14);
        memmove(buf + 12, buf + 16, len - 16);
        len -= 4;
        if (vme && !strip_hide) {
            status |= RXD_STAT_VP;
        } else {
            vlan = 0;
        }
    }
    ndesc = (len + bsize - 1) / bsize;
    if (rx_free(s, q) < ndesc) {
        ix_count(s, X_MPC(0), 1);
        IXSW(s, "  queue %d: no descriptors (%u free, need %u)", q, rx_free(s, q), ndesc);
        return false;
    }
    net_rx_pkt_get_protocols(s->rx_pkt, &h4, &h6, &l4);
    if (h4) {
        pkttype |= RXD_PKT_IPV4;
    }
    if (h6) {
        pkttype |= RXD_PKT_IPV6;
    }
    if (l4 == ETH_L4_HDR_PROTO_TCP) {
        pkttype |= RXD_PKT_TCP;
    } else if (l4 == ETH_L4_HDR_PROTO_UDP) {
        pkttype |= RXD_PKT_UDP;
    }
    if (loopback) {
        status |= RXD_STAT_LB;
    }
    status |= csum;
    for (uint32_t i = 0; i < ndesc; i++) {
        uint32_t h = ix_rxq(s, q, X_RXQ_H);
        uint64_t daddr = base + h * 16ull;
        uint64_t baddr;
        uint32_t chunk = MIN(bsize, len - off);
        uint32_t wb[4];

        pci_dma_read(dev, daddr, &baddr, 8);
        baddr = le64_to_cpu(baddr);
        pci_dma_write(dev, baddr, buf + off, chunk);
        off += chunk;
        wb[0] = cpu_to_le32((rss_type & 0xF) | (pkttype << 4));
        wb[1] = cpu_to_le32(rss);
        wb[2] = cpu_to_le32(status | RXD_STAT_DD | (i == ndesc - 1 ? RXD_STAT_EOP : 0));
        wb[3] = cpu_to_le32(chunk | ((uint32_t)vlan << 16));
        pci_dma_write(dev, daddr, wb, sizeof(wb));
        ix_set(s, X_RXQ_BASE(q) + X_RXQ_H, (h + 1) % rlen);
    }
    IXSW(s, "  queue %d took %zu B", q, len);
    ixgbe_raise_queue(s, q, false);
    return true;
}

/* The descriptor's checksum status and error bits: IPv4 header checksum
 * (IPCS, IPE), TCP/UDP checksum (L4CS, UDPCS for UDP, TCPE). */
static uint32_t rx_csum(IxgbeState *s, const uint8_t *f, size_t len)
{
    bool h4, h6, valid;
    EthL4HdrProto l4;
    uint32_t r = 0;

    net_rx_pkt_attach_data(s->rx_pkt, f, len, false);
    net_rx_pkt_get_protocols(s->rx_pkt, &h4, &h6, &l4);
    if (net_rx_pkt_validate_l3_csum(s->rx_pkt, &valid)) {
        r |= RXD_STAT_IPCS | (valid ? 0 : RXD_ERR_IPE);
    }
    if ((l4 == ETH_L4_HDR_PROTO_TCP || l4 == ETH_L4_HDR_PROTO_UDP) &&
        net_rx_pkt_validate_l4_csum(s->rx_pkt, &valid)) {
        r |= RXD_STAT_L4CS | (valid ? 0 : RXD_ERR_TCPE);
        if (l4 == ETH_L4_HDR_PROTO_UDP) {
            r |= RXD_STAT_UDPCS;
        }
    }
    return r;
}

static void count_rx(IxgbeState *s, int pool, const uint8_t *f, size_t len)
{
    if (pool >= 0 && pool < ixgbe_num_vfs(s) && ixgbe_vt_on(s)) {
        s->vfstats[pool].gprc++;
        s->vfstats[pool].gorc += len;
        if (is_multicast_ether_addr(f)) {
            s->vfstats[pool].mprc++;
        }
        return;
    }
    ix_count(s, X_GPRC, 1);
    ix_count36(s, X_GORCL, X_GORCH, len);
    if (is_broadcast_ether_addr(f)) {
        ix_count(s, X_BPRC, 1);
    } else if (is_multicast_ether_addr(f)) {
        ix_count(s, X_MPRC, 1);
    }
}

/* Deliver a frame to the pools it selects, except src_pool (-1: the wire).
 * Returns whether a local unicast filter took it (then it stays local). */
static bool deliver(IxgbeState *s, const uint8_t *f, size_t len, int src_pool,
                    bool *any)
{
    uint32_t rss = 0, rss_type = 0, csum;
    bool local_uc = false;

    *any = false;
    net_rx_pkt_set_protocols(s->rx_pkt, &(struct iovec){ (void *)f, len }, 1, 0);
    csum = rx_csum(s, f, len);
    ix_count(s, X_TPR, 1);
    ix_count36(s, X_TORL, X_TORH, len);

    if (!ixgbe_vt_on(s)) {
        int q = 0;

        if (src_pool >= 0 || !pf_accepts(s, f, len)) {
            return false;
        }
        if ((ix_get(s, X_MRQC) & X_MRQC_MRQE_MASK) == 1) {
            rss = rss_hash(s, f, len, &rss_type);
            q = reta_entry(s, rss);
        }
        *any = rx_to_queue(s, q, f, len, false, rss, rss_type, false, csum);
        count_rx(s, -1, f, len);
        return true;
    } else {
        uint64_t pools = select_pools(s, f, len, &local_uc);
        int qpp = ixgbe_queues_per_pool(s);

        IXSW(s, "%s frame %zu B to %02x:%02x:%02x:%02x:%02x:%02x type %04x: "
             "pools %016llx%s", src_pool < 0 ? "wire" : "loopback", len,
             f[0], f[1], f[2], f[3], f[4], f[5], lduw_be_p(f + 12),
             (unsigned long long)(pools & ~(src_pool >= 0 ? 1ull << src_pool : 0)),
             local_uc ? " (unicast filter)" : "");

        if (src_pool >= 0) {
            pools &= ~(1ull << src_pool);
        }
        for (int p = 0; p < IXGBE_POOLS; p++) {
            uint32_t vmvir;
            int q = p * qpp;

            if (!(pools & (1ull << p)) || q >= IXGBE_QUEUES) {
                continue;
            }
            /* VMDq+RSS: RETA picks among the pool's first 1, 2 or 4
             * queues, as PSRTYPE(pool).RQPL says. */
            if (qpp > 1 && (ix_get(s, X_MRQC) & X_MRQC_MRQE_MASK) >= 0xA) {
                uint32_t rqpl = (ix_get(s, X_PSRTYPE(p)) >> 29) & 3;
                uint32_t nq = MIN(1u << rqpl, (uint32_t)qpp);

                rss = rss_hash(s, f, len, &rss_type);
                q += reta_entry(s, rss) & (nq - 1);
            }
            vmvir = ix_get(s, X_VMVIR(p));
            if (rx_to_queue(s, q, f, len,
                            (vmvir & (3u << 30)) == X_VMVIR_VLANA_DEFAULT,
                            rss, rss_type, src_pool >= 0, csum)) {
                count_rx(s, p, f, len);
                *any = true;
            }
        }
    }
    return local_uc;
}

bool ixgbe_switch_local(IxgbeState *s, int src_pool, const struct iovec *iov,
                        int iovcnt)
{
    size_t len = iov_to_buf(iov, iovcnt, 0, s->rx_buf, sizeof(s->rx_buf));
    bool any;

    if (len < MIN_FRAME) {
        memset(s->rx_buf + len, 0, MIN_FRAME - len);
        len = MIN_FRAME;
    }
    /* A frame a local unicast filter took stays in the switch. */
    return !deliver(s, s->rx_buf, len, src_pool, &any) ||
           is_multicast_ether_addr(s->rx_buf);
}

bool ixgbe_can_receive(NetClientState *nc)
{
    IxgbeState *s = qemu_get_nic_opaque(nc);

    return s->link_up && (ix_get(s, X_RXCTRL) & X_RXCTRL_RXEN) &&
           (PCI_DEVICE(s)->config[PCI_COMMAND] & PCI_COMMAND_MASTER);
}

ssize_t ixgbe_receive_iov(NetClientState *nc, const struct iovec *iov, int iovcnt)
{
    IxgbeState *s = qemu_get_nic_opaque(nc);
    size_t size = iov_size(iov, iovcnt);
    size_t len = iov_to_buf(iov, iovcnt, 0, s->rx_buf, sizeof(s->rx_buf));
    bool any;

    if (!ixgbe_can_receive(nc)) {
        return -1;
    }
    if (len < MIN_FRAME) {
        memset(s->rx_buf + len, 0, MIN_FRAME - len);
        len = MIN_FRAME;
    }
    deliver(s, s->rx_buf, len, -1, &any);
    return size;
}

void ixgbe_rx_tail_written(IxgbeState *s, int q)
{
    if (s->nic) {
        qemu_flush_queued_packets(qemu_get_queue(s->nic));
    }
}
