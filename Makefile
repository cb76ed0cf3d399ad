# fabriclab — the two commands a newcomer runs: `make demo` and `make test`.
# Every target installs what it needs first (idempotently), so a clean clone just works.

SHELL       := /bin/bash
VENV        := .venv
PY          := $(VENV)/bin/python
STAMP_APT   := $(VENV)/.apt-installed
STAMP_PIP   := $(VENV)/.pip-installed
# Debian's mininet module is installed for the system interpreter only.
SYSTEM_PY   := /usr/bin/python3
# ruby: tests/test_vm_files.py loads the Vagrantfile with it (Vagrant itself is not needed)
APT_PACKAGES := mininet iperf3 iputils-ping iproute2 ethtool tcpdump tshark bridge-utils \
                python3-venv python3-dev gcc procps psmisc net-tools ruby
PYTEST_ARGS ?=

.PHONY: install demo test test-long bench bmv2 clean distclean

install: $(STAMP_PIP)

$(STAMP_APT): Makefile
	@if ! dpkg -s $(APT_PACKAGES) >/dev/null 2>&1; then \
		echo "== installing Debian packages: $(APT_PACKAGES)"; \
		export DEBIAN_FRONTEND=noninteractive; \
		echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections; \
		apt-get update -q && apt-get install -y -q --no-install-recommends $(APT_PACKAGES); \
	fi
	@test -d $(VENV) || $(SYSTEM_PY) -m venv --system-site-packages $(VENV)
	@touch $@

$(STAMP_PIP): $(STAMP_APT) setup.py
	$(PY) -m pip install -q --upgrade 'pip>=23' 'setuptools>=68' wheel
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

demo: install
	$(VENV)/bin/fabriclab demo

# pytest exits 5 when it collected nothing: for this project that is a broken suite, not a pass.
test: install
	@$(VENV)/bin/pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: treating as failure"; exit 1; fi; exit $$rc

bench: install
	$(VENV)/bin/fabriclab bench all

# The second target's tools: PI, BMv2 (simple_switch_grpc) and p4c from pinned releases, into
# /usr/local (root; about an hour on 2 CPUs). Debian 13 or Ubuntu 24.04 with CMake >= 3.31.
bmv2:
	bash vm/build-bmv2.sh

clean:
	-$(VENV)/bin/fabriclab clean 2>/dev/null
	rm -rf build *.egg-info .pytest_cache

distclean: clean
	rm -rf $(VENV)
