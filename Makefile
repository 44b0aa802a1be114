# SPDX-License-Identifier: GPL-2.0
#
# intel-vf-vfio: live migration for VMs that own an Intel SR-IOV NIC VF.
#
#   make               build the module against the cached test kernel
#   make KDIR=DIR      build the module against any Rust-enabled 7.x build tree
#                      (an arm64 one too: the cross build is chosen from its .config)
#   make check-kasan   only the samples on a KASAN + kmemleak kernel (not in make check)
#   make check-arm64   only the arm64 phase: the samples in an arm64 VM with an SMMUv3
#   make check         install what is missing, run every test (host, VM, QEMU)
#   make check-qemu    only the QEMU test: QEMU live-migrates a nested guest with a VF
#   make check-libvirt only the libvirt test: virsh migrate --live between two test VMs
#   make demo          boot the VM, bind VFs and show what the driver offers
#   make bench         print the figures (stream bytes, MMIO counts, RX trap cost)
#   make setup         install build and test dependencies only (idempotent)
#   make kernel        build (or reuse) the cached test kernel
#   make dkms-install  install the module with DKMS (KVER=... for another kernel)
#   make check-fresh   prove tools/setup on a fresh debootstrapped Debian 12
#   make fuzz          run each cargo-fuzz target (FUZZ_TIME=seconds, default 600)
#   make modules_install / clean
#
# The kernel build is cached outside the clone (see tools/kernel/build).

ifneq ($(KBUILD_EXTMOD),)
# Called by Kbuild (which reads ./Kbuild first anyway). Not KERNELRELEASE:
# DKMS sets that on the command line of the top-level make.
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

# What DKMS needs of the tree to build the module (dkms.conf).
IVF_VERSION := $(shell sed -n 's/^PACKAGE_VERSION="\(.*\)"$$/\1/p' $(ROOT)/dkms.conf)
DKMS_FILES := dkms.conf Makefile Kbuild rust tools/kernel/module-env tools/lib/env.sh tools/lib/common.sh

.PHONY: all module modules modules_install clean clean-module setup kernel check check-qemu \
	check-arm64 check-kasan check-libvirt module-files check-fresh demo bench dkms-install dkms-remove fuzz

all: module

# Kbuild for KDIR with the toolchain that built KDIR's kernel, preparing
# the Rust build products where KDIR lacks them (tools/kernel/module-env);
# a clang-built kernel (the KASAN one, any arm64 one) needs LLVM=-N too, and
# an arm64 tree ARCH=arm64 (a cross build: `make KDIR=ARM64-TREE` is enough;
# `make ARCH=arm64 KDIR=...` is the same).
define kbuild
	@kdir='$(KDIR)'; [ -n "$$kdir" ] || exit 1; \
	args=$$($(ROOT)/tools/kernel/module-env "$$kdir") || exit 1; \
	clang=$$(sed -n 's/^CONFIG_CLANG_VERSION=\([0-9]*\)[0-9]\{4\}$$/\1/p' "$$kdir/.config"); \
	arch=$$(grep -qx 'CONFIG_ARM64=y' "$$kdir/.config" && echo arm64 || true); \
	$(MAKE) $$args M=$(ROOT) $${clang:+LLVM=-$$clang} $${arch:+ARCH=$$arch} $(1)
endef

module modules:
	$(call kbuild,modules)

modules_install:
	$(call kbuild,modules_install)

# The module's build products only (DKMS's CLEAN; no kernel tree needed).
clean-module:
	rm -f $(ROOT)/*.ko $(ROOT)/*.o $(ROOT)/*.mod $(ROOT)/*.mod.c $(ROOT)/modules.order \
		$(ROOT)/Module.symvers $(ROOT)/.*.cmd $(ROOT)/rust/*.o $(ROOT)/rust/.*.cmd \
		$(ROOT)/rust/vfio_bindings_generated.rs $(ROOT)/rust/*.d

# Install the module with DKMS for the running kernel (and, AUTOINSTALL, for
# every kernel installed later): copies the module's sources to
# /usr/src/intel-vf-vfio-VERSION, then dkms add, build, install.
# The module's sources, as DKMS gets them (tools/kernel/stage-module).
module-files:
	@echo $(DKMS_FILES)

dkms-install:
	rm -rf /usr/src/intel-vf-vfio-$(IVF_VERSION)
	mkdir -p /usr/src/intel-vf-vfio-$(IVF_VERSION)
	cd $(ROOT) && cp -r --parents $(DKMS_FILES) /usr/src/intel-vf-vfio-$(IVF_VERSION)/
	rm -rf /usr/src/intel-vf-vfio-$(IVF_VERSION)/rust/common/target
	# A version already added keeps its built modules: remove it first, so
	# the sources just copied are the ones built.
	if dkms status intel-vf-vfio/$(IVF_VERSION) | grep -q .; then \
		dkms remove intel-vf-vfio/$(IVF_VERSION) --all; fi
	dkms add intel-vf-vfio/$(IVF_VERSION)
	dkms install intel-vf-vfio/$(IVF_VERSION) $(if $(KVER),-k $(KVER))

dkms-remove:
	dkms remove intel-vf-vfio/$(IVF_VERSION) --all

check-fresh:
	$(ROOT)/tools/check-fresh

# Each fuzz target for FUZZ_TIME seconds (default 600), executions printed.
fuzz:
	$(ROOT)/tools/fuzz --time $(or $(FUZZ_TIME),600)

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

check-arm64:
	$(ROOT)/tools/check --only setup,arm64

check-kasan:
	$(ROOT)/tools/check --only setup,kasan

# libvirt migrates a guest between two test VMs (off in make check until
# it runs green; IVF_CHECK_LIBVIRT=1 adds it).
check-libvirt:
	$(ROOT)/tools/check --only setup,libvirt

demo:
	$(ROOT)/tools/demo

bench:
	$(ROOT)/tools/bench

endif
