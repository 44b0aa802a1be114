/*
 * Emulated Intel 82599 (intel-vf-vfio test bed): the device's state and
 * the functions its files share.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef IVF_IXGBE_H
#define IVF_IXGBE_H

#include "hw/pci/pci_device.h"
#include "net/net.h"
#include "qemu/timer.h"
#include "ixgbe_regs.h"

#define TYPE_IXGBE_PF   "ixgbe-82599"
#define TYPE_IXGBE_VF   "ixgbe-82599-vf"
OBJECT_DECLARE_SIMPLE_TYPE(IxgbeState, IXGBE_PF)

#define IXGBE_PF_DEVID      0x10F7  /* 82599 KX4 backplane */
#define IXGBE_VF_DEVID      0x10ED
#define IXGBE_MMIO_SIZE     (128 * KiB)
#define IXGBE_MSIX_SIZE     (16 * KiB)
#define IXGBE_PF_VECTORS    64
#define IXGBE_VF_MMIO_SIZE  (16 * KiB)
#define IXGBE_VF_MSIX_SIZE  (16 * KiB)
#define IXGBE_VF_VECTORS    3
#define IXGBE_MAX_VFS       64
#define IXGBE_POOLS         64
#define IXGBE_QUEUES        128
#define IXGBE_RAR           128
#define IXGBE_NVM_WORDS     2048    /* EEC.SIZE 5: 4 KiB */
#define IXGBE_MAX_FRAME     (16 * KiB)

#define IXGBE_WB_MAX        256

typedef struct IxgbeState IxgbeState;

/* One transmit queue's in-flight packet and write-back state. */
typedef struct IxgbeTxq {
    IxgbeState *s;
    int q;
    struct NetTxPkt *pkt;
    uint32_t ctx[2][4];         /* the two context slots (4 dwords each) */
    uint32_t first_cmd;         /* the first data descriptor's cmd_type_len */
    uint32_t first_olinfo;
    bool in_pkt;
    /* Strict mode's held write-backs (descriptor indexes) and their timer. */
    uint16_t wb_idx[IXGBE_WB_MAX];
    int wb_n;
    QEMUTimer *wb_timer;
} IxgbeTxq;

typedef struct IxgbeVfStats {
    uint32_t gprc, gptc, mprc;
    uint64_t gorc, gotc;
} IxgbeVfStats;

struct IxgbeState {
    PCIDevice parent_obj;

    NICState *nic;
    NICConf conf;
    MemoryRegion mmio;
    MemoryRegion msix;

    /* Properties. */
    bool strict;
    bool debug;
    bool trace_mbx;
    bool trace_sw;
    char *mbx_log_path;         /* property mbx-log: the mailbox's messages */
    FILE *mbx_log;

    /* Every register of BAR0, by dword; those with behaviour have it in
     * ixgbe_pf.c, the rest are plain storage. */
    uint32_t regs[IXGBE_MMIO_SIZE / 4];
    uint16_t nvm[IXGBE_NVM_WORDS];

    /* Interrupts: the 64 vector causes (EICR[15:0] mirrors the low 16),
     * their masks, auto-clear and auto-mask; the other causes in eicr_other. */
    uint64_t vec_cause, vec_mask, vec_automask;
    uint32_t eicr_other;

    /* Mailbox: per VF its 16 dwords, the VF side's bits, the lock. */
    uint32_t mbmem[IXGBE_MAX_VFS][MB_WORDS];
    uint32_t vfmb[IXGBE_MAX_VFS];       /* VFMAILBOX R2C and lock bits */
    uint32_t pfmb[IXGBE_MAX_VFS];       /* PFMAILBOX lock bits */
    uint32_t mbvficr[4];
    uint64_t vflre;

    /* Each VF's interrupt registers (VTEICR...), its own 3 vectors. */
    struct {
        uint32_t eicr, eims, eiac, eiam;
        uint32_t ivar[4], ivar_misc;
        uint32_t eitr[3];
        bool flr_pending;
    } vf[IXGBE_MAX_VFS];
    IxgbeVfStats vfstats[IXGBE_POOLS];

    IxgbeTxq txq[IXGBE_QUEUES];
    struct NetRxPkt *rx_pkt;
    uint8_t rx_buf[IXGBE_MAX_FRAME];
    bool link_up;
    QEMUTimer *rxdis_timer[IXGBE_QUEUES];
};

#define IXDBG(s, fmt, ...) do { \
        if ((s)->debug) { \
            fprintf(stderr, "ixgbe-82599: " fmt "\n", ## __VA_ARGS__); \
        } \
    } while (0)

/* The mailbox's messages, one line each (property trace-mbx). */
#define IXMBX(s, fmt, ...) do { \
        if ((s)->trace_mbx || (s)->debug) { \
            fprintf(stderr, "ixgbe-82599 mbx: " fmt "\n", ## __VA_ARGS__); \
        } \
        if ((s)->mbx_log) { \
            fprintf((s)->mbx_log, fmt "\n", ## __VA_ARGS__); \
        } \
    } while (0)

/* The switch's decisions, one line per frame (property trace-switch). */
#define IXSW(s, fmt, ...) do { \
        if ((s)->trace_sw) { \
            fprintf(stderr, "ixgbe-82599 sw: " fmt "\n", ## __VA_ARGS__); \
        } \
    } while (0)

static inline uint32_t ix_get(IxgbeState *s, hwaddr off)
{
    return s->regs[off >> 2];
}
static inline void ix_set(IxgbeState *s, hwaddr off, uint32_t v)
{
    s->regs[off >> 2] = v;
}
/* A 32-bit counter (saturating, as the MAC's are) and a 36-bit octet
 * counter split in a low and a high register. */
static inline void ix_count(IxgbeState *s, hwaddr off, uint32_t n)
{
    uint32_t v = ix_get(s, off);

    ix_set(s, off, v + n < v ? 0xFFFFFFFFu : v + n);
}
static inline void ix_count36(IxgbeState *s, hwaddr lo, hwaddr hi, uint64_t n)
{
    uint64_t v = ix_get(s, lo) | ((uint64_t)ix_get(s, hi) << 32);

    v = MIN(v + n, 0xFFFFFFFFFull);
    ix_set(s, lo, (uint32_t)v);
    ix_set(s, hi, (uint32_t)(v >> 32));
}
static inline uint32_t ix_rxq(IxgbeState *s, int q, hwaddr r)
{
    return ix_get(s, X_RXQ_BASE(q) + r);
}
static inline uint32_t ix_txq(IxgbeState *s, int q, hwaddr r)
{
    return ix_get(s, X_TXQ_BASE(q) + r);
}

/* Queues per pool from GCR_EXT's VT mode (with VT off: the PF owns all). */
int ixgbe_queues_per_pool(IxgbeState *s);
bool ixgbe_vt_on(IxgbeState *s);
uint16_t ixgbe_num_vfs(IxgbeState *s);

/* ixgbe_nvm.c */
void ixgbe_nvm_build(IxgbeState *s, const uint8_t *mac);
uint32_t ixgbe_nvm_read(IxgbeState *s, hwaddr off);
void ixgbe_nvm_write(IxgbeState *s, hwaddr off, uint32_t val);

/* ixgbe_intr.c */
void ixgbe_raise_queue(IxgbeState *s, int queue, bool tx);
void ixgbe_raise_other(IxgbeState *s, uint32_t cause);
void ixgbe_intr_update(IxgbeState *s);
bool ixgbe_intr_read(IxgbeState *s, hwaddr off, uint32_t *val);
bool ixgbe_intr_write(IxgbeState *s, hwaddr off, uint32_t val);
uint32_t ixgbe_vf_intr_read(IxgbeState *s, int vf, hwaddr off);
void ixgbe_vf_intr_write(IxgbeState *s, int vf, hwaddr off, uint32_t val);
void ixgbe_vf_intr_reset(IxgbeState *s, int vf);
void ixgbe_vf_raise_mailbox(IxgbeState *s, int vf);

/* ixgbe_mbx.c */
bool ixgbe_mbx_pf_read(IxgbeState *s, hwaddr off, uint32_t *val);
bool ixgbe_mbx_pf_write(IxgbeState *s, hwaddr off, uint32_t val);
uint32_t ixgbe_mbx_vf_read(IxgbeState *s, int vf, hwaddr off);
void ixgbe_mbx_vf_write(IxgbeState *s, int vf, hwaddr off, uint32_t val);
void ixgbe_mbx_pf_reset_start(IxgbeState *s);
void ixgbe_mbx_pf_reset_done(IxgbeState *s);
void ixgbe_mbx_vflr(IxgbeState *s, int vf);
void ixgbe_mbx_reset(IxgbeState *s);

/* ixgbe_rx.c */
ssize_t ixgbe_receive_iov(NetClientState *nc, const struct iovec *iov, int iovcnt);
bool ixgbe_can_receive(NetClientState *nc);
/* A frame from a local pool's transmit (the switch's loopback); returns
 * whether it must also go out on the wire. */
bool ixgbe_switch_local(IxgbeState *s, int src_pool, const struct iovec *iov,
                        int iovcnt);
void ixgbe_rx_tail_written(IxgbeState *s, int q);

/* ixgbe_tx.c */
void ixgbe_tx_init(IxgbeState *s);
void ixgbe_tx_uninit(IxgbeState *s);
void ixgbe_tx_tail_written(IxgbeState *s, int q);
void ixgbe_tx_dctl_written(IxgbeState *s, int q, uint32_t old, uint32_t val);
void ixgbe_tx_reset(IxgbeState *s);

/* ixgbe_pf.c: register access for a VF's BAR0 (translated), VF reset. */
uint64_t ixgbe_vf_mmio_read(IxgbeState *s, int vf, hwaddr off);
void ixgbe_vf_mmio_write(IxgbeState *s, int vf, hwaddr off, uint32_t val);
void ixgbe_vf_reset(IxgbeState *s, int vf, bool flr);
PCIDevice *ixgbe_vf_dev(IxgbeState *s, int vf);
uint64_t ixgbe_reg_read(IxgbeState *s, hwaddr off);
void ixgbe_reg_write(IxgbeState *s, hwaddr off, uint32_t val);

#endif
