# SPDX-License-Identifier: GPL-2.0
#
# bpq: build, lint and test. The kernel build itself is driven by Kbuild.
#
#   make            module/bpq.ko, the selftests and the userspace tools
#   make check      deps, build, lint, host tests, then the guest tests in
#                   QEMU once per kernel: Debian 12's 6.1 and 6.12
#   make check-debug  the guest tests on a debug kernel (KASAN, lockdep,
#                   UBSAN, kmemleak; built once by scripts/debug-kernel.sh)
#   make lint       checkpatch, a sparse W=1 build, coccinelle
#   make demo       boot a VM and run scripts/demo.sh in it, then plot its
#                   overload runs in build/demo/overload.png
#   make vm-shell   boot a VM with bpq.ko loaded and give a shell
#   make install    module (+ depmod), libbpq, bpqctl, man pages, udev rule,
#                   modprobe.d example; DESTDIR, PREFIX; make uninstall
#   make dkms-install  the module's sources to /usr/src/bpq-VERSION, then
#                   dkms add, build, install (dkms-uninstall undoes it)
#   make clean
#
# Every setting below can be overridden on the command line, e.g.
# make KERNELRELEASE=6.1.0-57-amd64 check (that kernel only), or make V=1
# for full commands.

KERNELRELEASE ?=
KDIR ?= $(shell scripts/kdir.sh $(KERNELRELEASE))
KSRC ?= $(shell scripts/ksrc.sh)
KERNEL_IMAGE ?= $(shell scripts/kimage.sh $(KDIR))
MODULE ?= module/bpq.ko
W ?= 1

# The kernels make check boots, each with bpq.ko built for it in
# build/kernels/RELEASE: the newest Debian 6.1 and 6.12 (scripts/kernels.sh),
# or KERNELRELEASE alone when it is given.
CHECK_KERNELS ?= $(or $(KERNELRELEASE),$(shell scripts/kernels.sh))
KERNELS_OUT ?= build/kernels

# Guest tests: the programs built from selftests/*_test.c, then the guest
# scripts selftests/*_test.sh, each run once in one VM, in this order.
SELFTEST_PROGS ?= $(patsubst %.c,%,$(wildcard selftests/*_test.c))
SELFTEST_SCRIPTS ?= $(wildcard selftests/*_test.sh)
SELFTEST_PROGS_32 ?= selftests/ioctl32_test selftests/queue32_test \
	selftests/ring32_test selftests/stream32_test
GUEST_TESTS ?= $(SELFTEST_PROGS) $(SELFTEST_PROGS_32) $(SELFTEST_SCRIPTS) \
	userspace/tests/lib_test
# Programs copied into the guest's PATH (tests and demo use them).
GUEST_BINS ?= $(filter-out %.c %.h %.o,$(wildcard userspace/bpqctl/bpqctl \
	userspace/examples/bpq-* userspace/bench/bpq-bench selftests/pty_run))

# bpqd's cluster test (selftests/cluster): two guests of the last kernel
# of CHECK_KERNELS, each with the module built for it above, and Redis.
CLUSTER_KERNEL ?= $(lastword $(CHECK_KERNELS))
CLUSTER_OUT ?= build/cluster

# Per-test timeout from the kselftest settings file (scale_test's 100,000
# queues have taken 309 to 619 s on 6.12 under emulation), and for the
# whole VM.
TEST_TIMEOUT ?= $(or $(shell sed -n 's/^timeout=//p' selftests/settings 2>/dev/null),300)
VM_TIMEOUT ?= 1800
# scale_test creates 100,000 queues, about 1 GiB of kernel memory
VM_MEM ?= 3072
VMFLAGS ?=
# The guest tests run with Debian's python3 and the bpq package in the
# guest (selftests/python_test.sh); make GUEST_PYTHON= check leaves it out.
GUEST_PYTHON ?= --python
VM = scripts/vm.sh --kernel $(KERNEL_IMAGE) --module $(MODULE) \
	--bin "$(GUEST_BINS)" --timeout $(VM_TIMEOUT) --mem $(VM_MEM) \
	--test-timeout $(TEST_TIMEOUT) $(VMFLAGS)

# check-debug: bpq.ko is built against the debug kernel's tree from a copy
# of the sources in DEBUG_OUT, so that the normal in-tree build is left alone.
# KASAN and lockdep make the guest slower, hence the longer timeouts.
# DEBUG_KERNEL=DIR uses that scripts/debug-kernel.sh output as it is.
DEBUG_KERNEL ?=
DEBUG_OUT ?= build/debug
DEBUG_SRC = $(DEBUG_OUT)/src
DEBUG_TEST_TIMEOUT ?= 900
DEBUG_VM_TIMEOUT ?= 3600
# The debug kernel is ten times slower: scale_test makes 5,000 queues there
# (an unknown name=value on the kernel command line reaches init's
# environment, and so the tests').
DEBUG_VMFLAGS ?= --mem 2048 \
	--append "init_on_alloc=0 kmemleak=on BPQ_SCALE_QUEUES=5000"

# install: the module goes to /lib/modules/RELEASE/extra, RELEASE being the
# one KDIR was built for (Debian's include/config/kernel.release holds the
# upstream version, so it is read from utsrelease.h); the rest under PREFIX.
DESTDIR ?=
PREFIX ?= /usr/local
BPQ_VERSION ?= $(shell cat VERSION)
INSTALL_KVER ?= $(shell sed -n 's/.*UTS_RELEASE "\(.*\)".*/\1/p' \
	$(KDIR)/include/generated/utsrelease.h)
MODDIR ?= /lib/modules/$(INSTALL_KVER)/extra
UDEVRULESDIR ?= /lib/udev/rules.d
MODPROBEDIR ?= /etc/modprobe.d
DEPMOD ?= depmod
DKMS ?= dkms
DKMS_SRC ?= /usr/src/bpq-$(BPQ_VERSION)
DKMS_MODULE_SRCS = $(filter-out %.mod.c,$(wildcard module/*.[ch]))
# depmod -b DESTDIR when installing into one; there a failure only warns.
DEPMOD_RUN = if [ -z "$(DESTDIR)" ]; then $(DEPMOD) -a $(INSTALL_KVER); \
	elif $(DEPMOD) -a -b $(DESTDIR) $(INSTALL_KVER); then :; else \
	echo "depmod skipped: run depmod -a $(INSTALL_KVER) on the target"; fi

ifeq ($(V),1)
Q :=
else
Q := @
MAKEFLAGS += --no-print-directory
endif

all: module selftests userspace

deps:
	$(Q)scripts/deps.sh

module: deps
	$(Q)$(MAKE) -C $(KDIR) M=$(CURDIR) W=$(W) modules

selftests: deps
	$(Q)$(MAKE) -C selftests KSRC=$(KSRC)

userspace: deps
	$(Q)$(MAKE) -C userspace

# Token-pasting macros (sysfs attributes, the ioctl table) must name their
# argument more than once; it is always a plain identifier.
CHECKPATCH_IGNORE ?= MACRO_ARG_REUSE
export CHECKPATCH_IGNORE

lint: deps
	$(Q)KDIR=$(KDIR) KSRC=$(KSRC) scripts/lint.sh

# Each step records its counts in build/*.summary and check goes on after a
# failing step, so that the last line adds up all of them.
check: all
	$(Q)rm -f build/lint.summary build/host.summary \
		$(KERNELS_OUT)/*/guest.summary
	$(Q)KDIR=$(KDIR) KSRC=$(KSRC) KERNELS="$(CHECK_KERNELS)" \
		scripts/lint.sh || true
	$(Q)scripts/host-tests.sh || true
	$(Q)for r in $(CHECK_KERNELS); do \
		o=$(KERNELS_OUT)/$$r; t0=$$(date +%s); \
		echo "# ==== guest tests on Linux $$r ===="; \
		m=$$(scripts/build-module.sh /lib/modules/$$r/build $$o/src) && \
		$(VM) --kernel /boot/vmlinuz-$$r --module $$m --out $$o/vm \
			$(GUEST_PYTHON) --tests "$(GUEST_TESTS)" \
			--summary $$o/guest.summary; \
		if [ -r $$o/guest.summary ] && \
			read -r p f <$$o/guest.summary; then :; \
		else p=0 f=1; fi; \
		echo "# Linux $$r: $$p passed, $$f failed" \
			"($$(($$(date +%s) - t0)) s)"; \
	done
	$(Q)r=$(CLUSTER_KERNEL); t0=$$(date +%s); \
		echo "# ==== cluster test: two guests on Linux $$r, Redis ===="; \
		rm -f $(CLUSTER_OUT)/summary; \
		python3 selftests/cluster/cluster_test.py \
			--kernel /boot/vmlinuz-$$r \
			--module $(KERNELS_OUT)/$$r/src/module/bpq.ko \
			--out $(CLUSTER_OUT) --summary $(CLUSTER_OUT)/summary; \
		echo "# cluster test: $$(($$(date +%s) - t0)) s"
	$(Q)scripts/summary.sh build/lint.summary build/host.summary \
		$(foreach r,$(CHECK_KERNELS),$(KERNELS_OUT)/$(r)/guest.summary) \
		$(CLUSTER_OUT)/summary

check-debug: deps selftests userspace
	$(Q)dk=$(or $(DEBUG_KERNEL),$$(scripts/debug-kernel.sh)) && \
	m=$$(W=$(W) scripts/build-module.sh $$dk/build $(DEBUG_SRC)) && \
	scripts/vm.sh --kernel $$dk/bzImage \
		--module $$m --bin "$(GUEST_BINS)" \
		--timeout $(DEBUG_VM_TIMEOUT) \
		--test-timeout $(DEBUG_TEST_TIMEOUT) --out $(DEBUG_OUT)/vm \
		--summary $(DEBUG_OUT)/guest.summary --debug-gates \
		$(DEBUG_VMFLAGS) $(VMFLAGS) $(GUEST_PYTHON) \
		--tests "$(GUEST_TESTS)"

# The demo's guest sends its samples back on a serial port of their own
# (vm.sh: OUT/data.log), and scripts/demo-plot.sh draws them.
DEMO_OUT ?= build/demo

demo: all
	$(Q)$(VM) --out $(DEMO_OUT)/vm --script scripts/demo.sh
	$(Q)scripts/demo-plot.sh $(DEMO_OUT)/vm/data.log $(DEMO_OUT)

vm-shell: all
	$(Q)$(VM) --shell

install: module userspace
	$(Q)[ -n "$(INSTALL_KVER)" ] || \
		{ echo "install: no kernel release in $(KDIR)" >&2; exit 1; }
	install -D -m 644 $(MODULE) $(DESTDIR)$(MODDIR)/bpq.ko
	$(Q)$(DEPMOD_RUN)
	$(Q)$(MAKE) -C userspace install DESTDIR=$(DESTDIR) PREFIX=$(PREFIX)
	install -D -m 644 scripts/udev/60-bpq.rules \
		$(DESTDIR)$(UDEVRULESDIR)/60-bpq.rules
	if [ -e $(DESTDIR)$(MODPROBEDIR)/bpq.conf ]; then \
		echo "$(DESTDIR)$(MODPROBEDIR)/bpq.conf exists, left as it is"; \
	else install -D -m 644 scripts/modprobe.d/bpq.conf \
		$(DESTDIR)$(MODPROBEDIR)/bpq.conf; fi

# The modprobe.d file goes only if it is still the example.
uninstall:
	rm -f $(DESTDIR)$(MODDIR)/bpq.ko $(DESTDIR)$(UDEVRULESDIR)/60-bpq.rules
	if cmp -s scripts/modprobe.d/bpq.conf $(DESTDIR)$(MODPROBEDIR)/bpq.conf; \
		then rm -f $(DESTDIR)$(MODPROBEDIR)/bpq.conf; fi
	$(Q)if [ -d $(DESTDIR)/lib/modules/$(INSTALL_KVER) ]; then \
		$(DEPMOD_RUN); fi
	$(Q)$(MAKE) -C userspace uninstall DESTDIR=$(DESTDIR) PREFIX=$(PREFIX)

dkms-install:
	$(Q)command -v $(DKMS) >/dev/null || { echo "dkms-install: no" \
		"$(DKMS) command: install the package dkms" >&2; exit 1; }
	$(Q)if [ -n "$$($(DKMS) status bpq/$(BPQ_VERSION))" ]; then \
		echo "$(DKMS) remove bpq/$(BPQ_VERSION) --all"; \
		$(DKMS) remove bpq/$(BPQ_VERSION) --all; fi
	rm -rf $(DKMS_SRC)
	install -d $(DKMS_SRC)/module $(DKMS_SRC)/include/uapi/linux
	install -m 644 Kbuild VERSION $(DKMS_SRC)/
	install -m 644 module/Kbuild $(DKMS_MODULE_SRCS) $(DKMS_SRC)/module/
	install -m 644 include/uapi/linux/bpq.h $(DKMS_SRC)/include/uapi/linux/
	sed 's/@VERSION@/$(BPQ_VERSION)/' dkms.conf >$(DKMS_SRC)/dkms.conf
	$(DKMS) add bpq/$(BPQ_VERSION)
	$(DKMS) build bpq/$(BPQ_VERSION) -k $(INSTALL_KVER)
	$(DKMS) install bpq/$(BPQ_VERSION) -k $(INSTALL_KVER)

dkms-uninstall:
	$(Q)command -v $(DKMS) >/dev/null || { echo "dkms-uninstall: no" \
		"$(DKMS) command: install the package dkms" >&2; exit 1; }
	$(Q)if [ -n "$$($(DKMS) status bpq/$(BPQ_VERSION))" ]; then \
		echo "$(DKMS) remove bpq/$(BPQ_VERSION) --all"; \
		$(DKMS) remove bpq/$(BPQ_VERSION) --all; fi
	rm -rf $(DKMS_SRC)

clean:
	$(Q)if [ -d "$(KDIR)" ]; then $(MAKE) -C $(KDIR) M=$(CURDIR) clean; fi
	$(Q)$(MAKE) -C selftests clean
	$(Q)$(MAKE) -C userspace clean
	$(Q)rm -rf build

.PHONY: all deps module selftests userspace lint check check-debug demo \
	vm-shell clean install uninstall dkms-install dkms-uninstall

# bpq against pipes, AF_UNIX and mqueue in one guest boot (Documentation/bench.md):
# results, plots and the targets in build/bench/. bench-smoke: the same with
# tiny counts, seconds long, only to prove that it runs and checks.
bench: module userspace
	$(Q)scripts/bench.sh --no-build

bench-smoke: module userspace
	$(Q)scripts/bench.sh --quick --no-build

.PHONY: bench bench-smoke
