# SPDX-License-Identifier: GPL-2.0
#
# intel-vf-vfio: live migration for VMs that own an Intel SR-IOV NIC VF.
#
#   make               build the module against the cached test kernel
#   make KDIR=DIR      build the module against any Rust-enabled 7.x build tree
#   make check         install what is missing, run every test (host, VM, QEMU)
#   make check-qemu    only the QEMU test: QEMU live-migrates a nested guest with a VF
#   make demo          boot the VM, bind VFs and show what the driver offers
#   make bench         print the figures (stream bytes, MMIO counts, RX trap cost)
#   make setup         install build and test dependencies only (idempotent)
#   make kernel        build (or reuse) the cached test kernel
#   make modules_install / clean
#
# The kernel build is cached outside the clone (see tools/kernel/build).

ifneq ($(KERNELRELEASE),)
# Called by Kbuild: the rules are in ./Kbuild.
include $(src)/Kbuild
else

ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
SHELL := /bin/bash
export LIBCLANG_PATH ?= /usr/lib/llvm-19/lib
export PATH := $(HOME)/.cargo/bin:$(PATH)

# KDIR defaults to the cached test kernel, built on first use.
ifeq ($(origin KDIR),undefined)
KDIR = $(shell $(ROOT)/tools/kernel/build)
endif

.PHONY: all module modules modules_install clean setup kernel check check-qemu demo bench

all: module

# Kbuild in KDIR with the rustc that built KDIR's kernel (tools/kernel/
# rust-toolchain); a clang-built kernel (the KASAN one) needs LLVM=-N too.
define kbuild
	@kdir='$(KDIR)'; [ -n "$$kdir" ] || exit 1; \
	toolchain=$$($(ROOT)/tools/kernel/rust-toolchain "$$kdir") || exit 1; \
	clang=$$(sed -n 's/^CONFIG_CLANG_VERSION=\([0-9]*\)[0-9]\{4\}$$/\1/p' "$$kdir/.config"); \
	RUSTUP_TOOLCHAIN=$$toolchain $(MAKE) -C "$$kdir" M=$(ROOT) $${clang:+LLVM=-$$clang} $(1)
endef

module modules:
	$(call kbuild,modules)

modules_install:
	$(call kbuild,modules_install)

clean:
	[ ! -d "$$($(ROOT)/tools/kernel/build --print-dir)" ] || \
		$(MAKE) -C "$$($(ROOT)/tools/kernel/build --print-dir)" M=$(ROOT) clean
	rm -rf $(ROOT)/target $(ROOT)/out

setup:
	$(ROOT)/tools/setup

kernel: setup
	$(ROOT)/tools/kernel/build

check:
	$(ROOT)/tools/check

check-qemu:
	$(ROOT)/tools/check --qemu-only

demo:
	$(ROOT)/tools/demo

bench:
	$(ROOT)/tools/bench

endif
