/*
 * Emulated Intel 82599 (intel-vf-vfio test bed): register offsets and bits.
 *
 * Written for this project from the 82599 datasheet's register map and
 * the way Linux's ixgbe and ixgbevf drivers use it. PF offsets are in the
 * PF's BAR0 (128 KiB), VF offsets in a VF's BAR0 (16 KiB).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef IVF_IXGBE_REGS_H
#define IVF_IXGBE_REGS_H

/* ---- General ---------------------------------------------------------- */
#define X_CTRL              0x00000
#define   X_CTRL_GIO_DIS      (1u << 2)
#define   X_CTRL_LRST         (1u << 3)
#define   X_CTRL_RST          (1u << 26)
#define X_STATUS            0x00008
#define   X_STATUS_LAN_ID     (3u << 2)
#define   X_STATUS_LU         (1u << 7)
#define   X_STATUS_IOV_ACTIVE (1u << 18)
#define   X_STATUS_GIO        (1u << 19)
#define X_CTRL_EXT          0x00018
#define   X_CTRL_EXT_PFRSTD   (1u << 14)
#define   X_CTRL_EXT_NS_DIS   (1u << 16)
#define   X_CTRL_EXT_DRV_LOAD (1u << 28)
#define X_ESDP              0x00020
#define X_LEDCTL            0x00200
#define X_FRTIMER           0x00048
#define X_TCPTIMER          0x0004C

/* ---- NVM and semaphores ------------------------------------------------ */
#define X_EEC               0x10010
#define   X_EEC_PRES          (1u << 8)
#define   X_EEC_ARD           (1u << 9)
#define   X_EEC_SIZE_SHIFT    11
#define X_EERD              0x10014
#define X_EEWR              0x10018
#define   X_EERW_START        (1u << 0)
#define   X_EERW_DONE         (1u << 1)
#define   X_EERW_ADDR_SHIFT   2
#define   X_EERW_DATA_SHIFT   16
#define X_FLA               0x1001C
#define X_SWSM              0x10140
#define   X_SWSM_SMBI         (1u << 0)
#define   X_SWSM_SWESMBI      (1u << 1)
#define X_FWSM              0x10148
#define   X_FWSM_FW_VAL       (1u << 15)
#define X_GSSR              0x10160
#define X_GCR_EXT           0x11050
#define   X_GCR_EXT_VT_MODE_MASK 3u

/* ---- MAC, link ----------------------------------------------------------- */
#define X_HLREG0            0x04240
#define   X_HLREG0_LPBK       (1u << 15)
#define X_MSCA              0x0425C
#define   X_MSCA_MDI_CMD      (1u << 30)
#define   X_MSCA_OP_SHIFT     26
#define X_MSRWD             0x04260
#define X_MAXFRS            0x04268
#define X_AUTOC             0x042A0
#define   X_AUTOC_RESTART_AN  (1u << 12)
#define   X_AUTOC_LMS_SHIFT   13
#define   X_AUTOC_LMS_10G_NO_AN (1u << 13)
#define   X_AUTOC_KX4_SUPP    (1u << 31)
#define X_LINKS             0x042A4
#define   X_LINKS_KX_AN_COMP  (1u << 31)
#define   X_LINKS_UP          (1u << 30)
#define   X_LINKS_SPEED_10G   (3u << 28)
#define   X_LINKS_STATUS      (1u << 7)
#define X_AUTOC2            0x042A8
#define X_AUTOC3            0x042AC
#define X_ANLP1             0x042B0
#define X_LINKS2            0x04324

/* ---- Interrupts ------------------------------------------------------- */
#define X_EICR              0x00800
#define X_EICS              0x00808
#define X_EIAC              0x00810
#define X_EIMS              0x00880
#define X_EIMC              0x00888
#define X_EIAM              0x00890
#define X_GPIE              0x00898
#define   X_GPIE_MSIX_MODE    (1u << 4)
#define   X_GPIE_OCD          (1u << 5)
#define   X_GPIE_EIAME        (1u << 30)
#define   X_GPIE_PBA_SUPPORT  (1u << 31)
#define   X_GPIE_VTMODE_SHIFT 14
#define X_EICS_EX(i)        (0x00A90 + 4 * (i))
#define X_EIMS_EX(i)        (0x00AA0 + 4 * (i))
#define X_EIMC_EX(i)        (0x00AB0 + 4 * (i))
#define X_EIAM_EX(i)        (0x00AD0 + 4 * (i))
#define X_IVAR(i)           (0x00900 + 4 * (i))   /* 64 entries */
#define X_IVAR_MISC         0x00A00
#define   X_IVAR_VALID        0x80u
/* The "other" cause bits of EICR (the low 16 are the queue vectors). */
#define X_EICR_RTX_QUEUE    0x0000FFFFu
#define X_EICR_FLOW_DIR     (1u << 16)
#define X_EICR_RX_MISS      (1u << 17)
#define X_EICR_PCI          (1u << 18)
#define X_EICR_MAILBOX      (1u << 19)
#define X_EICR_LSC          (1u << 20)
#define X_EICR_TS           (1u << 23)
#define X_EICR_ECC          (1u << 28)
#define X_EICR_TCP_TIMER    (1u << 30)
#define X_EICR_OTHER        (1u << 31)
#define X_EICR_OTHER_MASK   0x7FFF0000u

/* ---- Receive ------------------------------------------------------------ */
/* Queue q's registers: q < 64 at 0x1000 + 0x40 q, above at 0xD000 + ... */
#define X_RXQ_BASE(q)       ((q) < 64 ? 0x01000 + 0x40 * (q) : 0x0D000 + 0x40 * ((q) - 64))
#define X_RXQ_BAL           0x00
#define X_RXQ_BAH           0x04
#define X_RXQ_LEN           0x08
#define X_RXQ_DCA           0x0C
#define X_RXQ_H             0x10
#define X_RXQ_SRRCTL        0x14
#define X_RXQ_T             0x18
#define X_RXQ_DCTL          0x28
#define X_RXQ_RSCCTL        0x2C
#define   X_RXDCTL_ENABLE     (1u << 25)
#define   X_RXDCTL_SWFLSH     (1u << 26)
#define   X_RXDCTL_VME        (1u << 30)
#define   X_SRRCTL_BSIZEPKT_MASK 0x1Fu
#define   X_SRRCTL_DESCTYPE_MASK (7u << 25)
#define   X_SRRCTL_DROP_EN    (1u << 28)
#define X_SRRCTL_LO(q)      (0x02100 + 4 * (q))   /* alias for q < 16 */
#define X_DCA_RXCTRL_LO(q)  (0x02200 + 4 * (q))   /* alias for q < 16 */
#define X_RDRXCTL           0x02F00
#define   X_RDRXCTL_DMAIDONE  (1u << 3)
#define   X_RDRXCTL_CRCSTRIP  (1u << 1)
#define X_RXPBSIZE0         0x03C00
#define X_TXPBSIZE0         0x0CC00
#define X_RXCTRL            0x03000
#define   X_RXCTRL_RXEN       (1u << 0)
#define X_RXCSUM            0x05000
#define   X_RXCSUM_IPPCSE     (1u << 12)
#define   X_RXCSUM_PCSD       (1u << 13)
#define X_FCTRL             0x05080
#define   X_FCTRL_SBP         (1u << 1)
#define   X_FCTRL_MPE         (1u << 8)
#define   X_FCTRL_UPE         (1u << 9)
#define   X_FCTRL_BAM         (1u << 10)
#define X_VLNCTRL           0x05088
#define   X_VLNCTRL_VFE       (1u << 30)
#define   X_VLNCTRL_CFIEN     (1u << 29)
#define X_MCSTCTRL          0x05090
#define   X_MCSTCTRL_MFE      (1u << 2)
#define X_PFFLPL            0x050B0
#define X_PFFLPH            0x050B4
#define X_VT_CTL            0x051B0
#define   X_VT_CTL_DIS_DEFPL  (1u << 29)
#define   X_VT_CTL_REPLEN     (1u << 30)
#define   X_VT_CTL_VT_ENA     (1u << 0)
#define   X_VT_CTL_POOL_SHIFT 7
#define   X_VT_CTL_POOL_MASK  (0x3Fu << 7)
#define X_VFRE(i)           (0x051E0 + 4 * (i))
#define X_MTA(i)            (0x05200 + 4 * (i))   /* 128 */
#define X_RAL_LO(i)         (0x05400 + 8 * (i))   /* alias for i < 16 */
#define X_PSRTYPE_LO(i)     (0x05480 + 4 * (i))   /* alias for i < 16 */
#define X_RAL(i)            (0x0A200 + 8 * (i))   /* 128 entries */
#define X_RAH(i)            (0x0A204 + 8 * (i))
#define   X_RAH_AV            (1u << 31)
#define X_MPSAR_LO(i)       (0x0A600 + 8 * (i))
#define X_MPSAR_HI(i)       (0x0A604 + 8 * (i))
#define X_VFTA(i)           (0x0A000 + 4 * (i))   /* 128 */
#define X_MRQC              0x05818
#define   X_MRQC_MRQE_MASK    0xFu
#define   X_MRQC_RSS_TCPIPV4  (1u << 16)
#define   X_MRQC_RSS_IPV4     (1u << 17)
#define   X_MRQC_RSS_IPV6     (1u << 20)
#define   X_MRQC_RSS_TCPIPV6  (1u << 21)
#define   X_MRQC_RSS_UDPIPV4  (1u << 22)
#define   X_MRQC_RSS_UDPIPV6  (1u << 23)
#define X_RETA(i)           (0x05C00 + 4 * (i))   /* 32 */
#define X_RSSRK(i)          (0x05C80 + 4 * (i))   /* 10 */
#define X_PSRTYPE(i)        (0x0EA00 + 4 * (i))   /* 64 */
#define X_FDIRCTRL          0x0EE00
#define   X_FDIRCTRL_INIT_DONE (1u << 3)
#define X_FDIRCMD           0x0EE2C
#define X_SECRXCTRL         0x08D00
#define X_SECRXSTAT         0x08D04
#define X_SECTXCTRL         0x08800
#define X_SECTXSTAT         0x08804
#define X_QDE               0x02F04
#define   X_QDE_WRITE         (1u << 16)
#define   X_QDE_IDX_SHIFT     8

/* ---- Virtualisation ------------------------------------------------------ */
#define X_VMOLR(i)          (0x0F000 + 4 * (i))   /* 64 */
#define   X_VMOLR_AUPE        (1u << 24)
#define   X_VMOLR_ROMPE       (1u << 25)
#define   X_VMOLR_ROPE        (1u << 26)
#define   X_VMOLR_BAM         (1u << 27)
#define   X_VMOLR_MPE         (1u << 28)
#define X_VMVIR(i)          (0x08000 + 4 * (i))   /* 64 */
#define   X_VMVIR_VLANA_DEFAULT (1u << 30)
#define   X_VMVIR_VLANA_NEVER (2u << 30)
#define X_VLVF(i)           (0x0F100 + 4 * (i))   /* 64 */
#define   X_VLVF_VIEN         (1u << 31)
#define X_VLVFB(i)          (0x0F200 + 4 * (i))   /* 128 */
#define X_UTA(i)            (0x0F400 + 4 * (i))   /* 128 */
#define X_VFTE(i)           (0x08110 + 4 * (i))
#define X_MTQC              0x08120
#define X_PFVFSPOOF(i)      (0x08200 + 4 * (i))   /* 8 */
#define X_PFDTXGSWC         0x08220
#define   X_PFDTXGSWC_LBEN    (1u << 0)
#define X_VMECM(i)          (0x08790 + 4 * (i))
#define X_PFMAILBOX(i)      (0x04B00 + 4 * (i))   /* 64 */
#define   X_PFMB_STS          (1u << 0)
#define   X_PFMB_ACK          (1u << 1)
#define   X_PFMB_VFU          (1u << 2)
#define   X_PFMB_PFU          (1u << 3)
#define   X_PFMB_RVFU         (1u << 4)
#define X_PFMBMEM(i)        (0x13000 + 64 * (i))  /* 64 x 16 dwords */
#define X_MBVFICR(i)        (0x00710 + 4 * (i))   /* 4 */
#define X_MBVFIMR(i)        (0x00720 + 4 * (i))   /* 4 */
#define X_VFLRE0            0x00600
#define X_VFLRE1            0x001C0
#define X_VFLREC(i)         (0x00700 + 4 * (i))

/* ---- Transmit ----------------------------------------------------------- */
#define X_TXQ_BASE(q)       (0x06000 + 0x40 * (q))  /* 128 queues */
#define X_TXQ_BAL           0x00
#define X_TXQ_BAH           0x04
#define X_TXQ_LEN           0x08
#define X_TXQ_H             0x10
#define X_TXQ_T             0x18
#define X_TXQ_DCTL          0x28
#define X_TXQ_WBAL          0x38
#define X_TXQ_WBAH          0x3C
#define   X_TXDCTL_WTHRESH_SHIFT 16
#define   X_TXDCTL_WTHRESH_MASK (0x7Fu << 16)
#define   X_TXDCTL_ENABLE     (1u << 25)
#define   X_TXDCTL_SWFLSH     (1u << 26)
#define X_DMATXCTL          0x04A80
#define   X_DMATXCTL_TE       (1u << 0)
#define   X_DMATXCTL_VT_SHIFT 16

/* ---- Statistics (read-to-clear unless noted) ----------------------------- */
#define X_GPRC              0x04074
#define X_BPRC              0x04078
#define X_MPRC              0x0407C
#define X_GPTC              0x04080
#define X_GORCL             0x04088
#define X_GORCH             0x0408C
#define X_GOTCL             0x04090
#define X_GOTCH             0x04094
#define X_TORL              0x040C0
#define X_TORH              0x040C4
#define X_TPR               0x040D0
#define X_TPT               0x040D4
#define X_MPTC              0x040F0
#define X_BPTC              0x040F4
#define X_MPC(i)            (0x03FA0 + 4 * (i))
/* Per-pool (VF) counters kept in the PF's space, not cleared on read. */
#define X_PVFGPRC(p)        (0x0101C + 0x40 * (p))
#define X_PVFGPTC(p)        (0x08300 + 4 * (p))
#define X_PVFGORC_LSB(p)    (0x01020 + 0x40 * (p))
#define X_PVFGORC_MSB(p)    (0x0D020 + 0x40 * (p))
#define X_PVFGOTC_LSB(p)    (0x08400 + 8 * (p))
#define X_PVFGOTC_MSB(p)    (0x08404 + 8 * (p))
#define X_PVFMPRC(p)        (0x0D01C + 0x40 * (p))

/* ---- The VF's BAR0 ------------------------------------------------------ */
#define V_CTRL              0x00000
#define V_STATUS            0x00008
#define V_LINKS             0x00010
#define V_FRTIMER           0x00048
#define V_RXMEMWRAP         0x03190
#define V_EICR              0x00100
#define V_EICS              0x00104
#define V_EIMS              0x00108
#define V_EIMC              0x0010C
#define V_EIAC              0x00110
#define V_EIAM              0x00114
#define V_IVAR(i)           (0x00120 + 4 * (i))
#define V_IVAR_MISC         0x00140
#define V_RSCINT(i)         (0x00180 + 4 * (i))
#define V_MBMEM             0x00200
#define V_MAILBOX           0x002FC
#define   V_MB_REQ            (1u << 0)
#define   V_MB_ACK            (1u << 1)
#define   V_MB_VFU            (1u << 2)
#define   V_MB_PFU            (1u << 3)
#define   V_MB_PFSTS          (1u << 4)
#define   V_MB_PFACK          (1u << 5)
#define   V_MB_RSTI           (1u << 6)
#define   V_MB_RSTD           (1u << 7)
#define V_PSRTYPE           0x00300
#define V_EITR(i)           (0x00820 + 4 * (i))
#define V_RXQ(i)            (0x01000 + 0x40 * (i))
#define V_TXQ(i)            (0x02000 + 0x40 * (i))
#define V_GPRC              0x0101C
#define V_GORC_LSB          0x01020
#define V_GORC_MSB          0x01024
#define V_MPRC              0x01034
#define V_GPTC              0x0201C
#define V_GOTC_LSB          0x02020
#define V_GOTC_MSB          0x02024
#define V_MRQC              0x03000
#define V_RSSRK(i)          (0x03100 + 4 * (i))
#define V_RETA(i)           (0x03200 + 4 * (i))

/* ---- Descriptors ------------------------------------------------------- */
#define TXD_DTYP_MASK       (0xFu << 20)
#define TXD_DTYP_CTXT       (0x2u << 20)
#define TXD_DTYP_DATA       (0x3u << 20)
#define TXD_CMD_EOP         (1u << 24)
#define TXD_CMD_IFCS        (1u << 25)
#define TXD_CMD_RS          (1u << 27)
#define TXD_CMD_DEXT        (1u << 29)
#define TXD_CMD_VLE         (1u << 30)
#define TXD_CMD_TSE         (1u << 31)
#define TXD_STAT_DD         (1u << 0)
#define TXD_POPTS_IXSM      (1u << 8)
#define TXD_POPTS_TXSM      (1u << 9)
#define TXD_CC              (1u << 7)
#define TXD_IDX_SHIFT       4
#define TXD_PAYLEN_SHIFT    14
#define TXC_TUCMD_IPV4      (1u << 10)
#define TXC_TUCMD_L4T_MASK  (3u << 11)
#define TXC_TUCMD_L4T_TCP   (1u << 11)
#define TXC_TUCMD_L4T_SCTP  (2u << 11)

#define RXD_STAT_DD         (1u << 0)
#define RXD_STAT_EOP        (1u << 1)
#define RXD_STAT_VP         (1u << 3)
#define RXD_STAT_UDPCS      (1u << 4)
#define RXD_STAT_L4CS       (1u << 5)
#define RXD_STAT_IPCS       (1u << 6)
#define RXD_STAT_PIF        (1u << 7)
#define RXD_STAT_LB         (1u << 18)
#define RXD_ERR_TCPE        (1u << 30)
#define RXD_ERR_IPE         (1u << 31)
#define RXD_PKT_IPV4        0x0010u
#define RXD_PKT_IPV6        0x0040u
#define RXD_PKT_TCP         0x0100u
#define RXD_PKT_UDP         0x0200u

/* ---- Mailbox message words (what the PF driver and ixgbevf speak) ------- */
#define MB_WORDS            16

#endif
