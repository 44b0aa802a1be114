/*
 * Emulated Intel 82599 (intel-vf-vfio test bed): the NVM (EEPROM) image,
 * its EERD/EEWR interface and the software/firmware semaphores.
 *
 * The image is built at realize time: a 2 K-word EEPROM (EEC.SIZE = 5) with
 * the pointers of words 0x03..0x0E, the LAN core 0 section holding the
 * port's MAC address (what the hardware loads into RAR[0] on reset), a
 * legacy PBA number and the checksum in word 0x3F such that words
 * 0x00..0x3F plus every pointed section sum to 0xBABA, which ixgbe
 * verifies at probe.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qemu/units.h"
#include "ixgbe.h"

#define NVM_CHECKSUM_WORD   0x3F
#define NVM_SUM             0xBABA
#define NVM_PTR_FIRST       0x03
#define NVM_PTR_END         0x0F    /* exclusive */
#define NVM_PTR_LAN_CORE0   0x09
#define NVM_LAN_CORE0_AT    0x0100
#define NVM_PBA0            0x15
#define NVM_PBA1            0x16
#define NVM_ALT_SAN_PTR     0x27
#define NVM_SAN_MAC_PTR     0x28
#define NVM_DEVICE_CAPS     0x2C
#define NVM_ETRACK_LO       0x2D
#define NVM_ETRACK_HI       0x2E

static uint16_t nvm_sum(IxgbeState *s)
{
    uint16_t sum = 0;

    for (int i = 0; i < NVM_CHECKSUM_WORD; i++) {
        sum += s->nvm[i];
    }
    for (int i = NVM_PTR_FIRST; i < NVM_PTR_END; i++) {
        uint16_t ptr = s->nvm[i], len;

        if (ptr == 0 || ptr == 0xFFFF || ptr >= IXGBE_NVM_WORDS) {
            continue;
        }
        len = s->nvm[ptr];
        if (len == 0 || len == 0xFFFF) {
            continue;
        }
        for (int j = ptr + 1; j <= ptr + len && j < IXGBE_NVM_WORDS; j++) {
            sum += s->nvm[j];
        }
    }
    return sum;
}

void ixgbe_nvm_build(IxgbeState *s, const uint8_t *mac)
{
    memset(s->nvm, 0xFF, sizeof(s->nvm));
    /* Words 0x00..0x3E: control words 0, pointers unused (0xFFFF) but one. */
    for (int i = 0; i < NVM_CHECKSUM_WORD; i++) {
        s->nvm[i] = 0;
    }
    for (int i = NVM_PTR_FIRST; i < NVM_PTR_END; i++) {
        s->nvm[i] = 0xFFFF;
    }
    s->nvm[NVM_PTR_LAN_CORE0] = NVM_LAN_CORE0_AT;
    /* LAN core 0: a length word, then the MAC address (little endian). */
    s->nvm[NVM_LAN_CORE0_AT] = 3;
    for (int i = 0; i < 3; i++) {
        s->nvm[NVM_LAN_CORE0_AT + 1 + i] = mac[2 * i] | (mac[2 * i + 1] << 8);
    }
    /* A legacy PBA number: "E68787-001" style, two words. */
    s->nvm[NVM_PBA0] = 0xE687;
    s->nvm[NVM_PBA1] = 0x8700;
    s->nvm[NVM_ALT_SAN_PTR] = 0xFFFF;
    s->nvm[NVM_SAN_MAC_PTR] = 0xFFFF;
    s->nvm[NVM_DEVICE_CAPS] = 0;
    s->nvm[NVM_ETRACK_LO] = 0x0599;
    s->nvm[NVM_ETRACK_HI] = 0x8000;
    s->nvm[0x17] = 0xFFFF;                      /* no iSCSI/FCoE block */
    s->nvm[NVM_CHECKSUM_WORD] = 0;
    s->nvm[NVM_CHECKSUM_WORD] = (uint16_t)(NVM_SUM - nvm_sum(s));
}

uint32_t ixgbe_nvm_read(IxgbeState *s, hwaddr off)
{
    uint32_t v = ix_get(s, off);

    switch (off) {
    case X_EEC:
        /* Present, auto-read done, 2 K words (size 5), 16-bit addresses. */
        return (v & 0x3Fu) | X_EEC_PRES | X_EEC_ARD | (5u << X_EEC_SIZE_SHIFT) |
               (1u << 10);
    case X_SWSM: {
        /* Reading SWSM with SMBI clear grants the semaphore (sets SMBI). */
        uint32_t r = v;
        if (!(v & X_SWSM_SMBI)) {
            ix_set(s, off, v | X_SWSM_SMBI);
        }
        return r;
    }
    case X_FWSM:
        /* No manageability firmware; the firmware's valid bit is set. */
        return X_FWSM_FW_VAL;
    case X_GSSR:
        return v & 0x1Fu;       /* the firmware's half (bits 9:5) never set */
    default:
        return v;
    }
}

void ixgbe_nvm_write(IxgbeState *s, hwaddr off, uint32_t val)
{
    switch (off) {
    case X_EERD:
    case X_EEWR: {
        uint32_t addr = (val >> X_EERW_ADDR_SHIFT) & 0x3FFF;
        uint32_t data = 0xFFFF;

        if (!(val & X_EERW_START)) {
            ix_set(s, off, val & ~X_EERW_DONE);
            return;
        }
        if (addr < IXGBE_NVM_WORDS) {
            if (off == X_EEWR) {
                s->nvm[addr] = val >> X_EERW_DATA_SHIFT;
            }
            data = s->nvm[addr];
        }
        ix_set(s, off, (data << X_EERW_DATA_SHIFT) | (addr << X_EERW_ADDR_SHIFT) |
               X_EERW_DONE);
        return;
    }
    case X_EEC:
        /* Only the bit-bang and request bits are writable. */
        ix_set(s, off, val & 0x3Fu);
        return;
    case X_SWSM:
        ix_set(s, off, val & (X_SWSM_SMBI | X_SWSM_SWESMBI));
        return;
    case X_GSSR:
        ix_set(s, off, val & 0x1Fu);
        return;
    default:
        ix_set(s, off, val);
    }
}
