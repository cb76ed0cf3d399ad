#!/usr/bin/env bash
# Build the p4lang reference tools fabriclab's `--target bmv2` runs: PI (P4Runtime server
# library), BMv2 (simple_switch_grpc, simple_switch_CLI) and p4c (p4c-bm2-ss), from pinned
# upstream releases, installed under /usr/local. `make bmv2` runs it; `FABRICLAB_BMV2=1
# vagrant up` runs it while provisioning the VM. Idempotent: a finished step is skipped.
#
# Base: Debian 13 (trixie), what the Vagrantfile boots. Its packages give what the three need
# without patches: protobuf 3.21 and gRPC 1.51 for PI and BMv2 (the pair they build against on
# Ubuntu 24.04 too), Thrift for simple_switch_CLI, and CMake 3.31 (p4c needs >= 3.31; Debian
# 12 has 3.25, Ubuntu 24.04 3.28: there CMake comes from PyPI). p4c fetches and builds its own
# protobuf and abseil (20240722.1) through its CMake (its P4C_USE_PREINSTALLED_* options stay
# off): it does not compile against the system protobuf 3.21.
#
# The pins below are release tags; override them (PI_VERSION=... make bmv2) to try others.
set -euo pipefail

PI_VERSION=${PI_VERSION:-v0.1.0}
BMV2_VERSION=${BMV2_VERSION:-1.15.0}
P4C_VERSION=${P4C_VERSION:-v1.2.5.6}
PREFIX=${PREFIX:-/usr/local}
SRC=${FABRICLAB_BMV2_SRC:-/var/cache/fabriclab-bmv2}
# p4c's C++ needs up to ~2 GB per compiler job: no more jobs than memory allows
JOBS=${JOBS:-$(awk -v cpus="$(nproc)" '/MemTotal/ {j = int($2 / 2000000); print (j < 1 ? 1 : (j < cpus ? j : cpus))}' /proc/meminfo)}

APT_DEPS=(
    # shared
    git ca-certificates build-essential pkg-config autoconf automake libtool cmake
    python3 python3-venv python3-dev
    # PI (--with-proto)
    libjudy-dev libreadline-dev libprotobuf-dev protobuf-compiler libgrpc++-dev
    protobuf-compiler-grpc libboost-dev libboost-system-dev libboost-thread-dev
    # BMv2
    libgmp-dev libpcap-dev libboost-program-options-dev libboost-filesystem-dev
    libboost-test-dev libevent-dev libssl-dev libthrift-dev thrift-compiler libnanomsg-dev
    python3-thrift
    # p4c
    bison flex libfl-dev libgc-dev libboost-iostreams-dev libboost-graph-dev
)

log() { echo "== build-bmv2: $*"; }

need_root() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "build-bmv2: run as root (it installs packages and writes $PREFIX)" >&2
        exit 1
    fi
}

cmake_is_new_enough() {
    # p4c needs CMake >= 3.31
    local v
    v=$(cmake --version 2>/dev/null | awk 'NR==1 {print $3}')
    [ -n "$v" ] && [ "$(printf '%s\n3.31\n' "$v" | sort -V | head -1)" = "3.31" ]
}

fetch() {   # fetch NAME URL TAG: a shallow clone of TAG with submodules, once
    local name=$1 url=$2 tag=$3
    if [ ! -d "$SRC/$name/.git" ]; then
        log "fetching $name $tag"
        git clone --depth 1 --branch "$tag" --recurse-submodules --shallow-submodules "$url" "$SRC/$name"
    fi
}

done_marker() { echo "$SRC/.done-$1-$2"; }

build_pi() {
    [ -e "$(done_marker pi "$PI_VERSION")" ] && return
    fetch PI https://github.com/p4lang/PI.git "$PI_VERSION"
    log "building PI"
    cd "$SRC/PI"
    ./autogen.sh
    ./configure --prefix="$PREFIX" --with-proto --without-internal-rpc --without-cli
    make -j"$JOBS"
    make install
    ldconfig
    touch "$(done_marker pi "$PI_VERSION")"
}

build_bmv2() {
    [ -e "$(done_marker bmv2 "$BMV2_VERSION")" ] && return
    fetch behavioral-model https://github.com/p4lang/behavioral-model.git "$BMV2_VERSION"
    log "building BMv2 (simple_switch_grpc with Thrift, so simple_switch_CLI can set queue rates)"
    cd "$SRC/behavioral-model"
    ./autogen.sh
    # logging stays compiled in (`--bmv2-log` turns it on); fabriclab never enables it otherwise
    ./configure --prefix="$PREFIX" --with-pi --with-thrift 'CXXFLAGS=-O2'
    make -j"$JOBS"
    make install
    ldconfig
    touch "$(done_marker bmv2 "$BMV2_VERSION")"
}

build_p4c() {
    [ -e "$(done_marker p4c "$P4C_VERSION")" ] && return
    fetch p4c https://github.com/p4lang/p4c.git "$P4C_VERSION"
    log "building p4c (bmv2 back-end only)"
    cd "$SRC/p4c"
    mkdir -p build
    cd build
    cmake .. -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$PREFIX" \
        -DENABLE_BMV2=ON -DENABLE_EBPF=OFF -DENABLE_UBPF=OFF -DENABLE_DPDK=OFF -DENABLE_TOFINO=OFF \
        -DENABLE_P4TC=OFF -DENABLE_P4FMT=OFF -DENABLE_P4TEST=OFF -DENABLE_GTESTS=OFF \
        -DENABLE_TEST_TOOLS=OFF -DENABLE_DOCS=OFF
    make -j"$JOBS"
    make install
    touch "$(done_marker p4c "$P4C_VERSION")"
}

main() {
    need_root
    export DEBIAN_FRONTEND=noninteractive
    log "installing build dependencies"
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${APT_DEPS[@]}"
    mkdir -p "$SRC"
    if ! cmake_is_new_enough; then
        # e.g. Ubuntu 24.04 (3.28): CMake's own PyPI build, for this build only
        log "system CMake is older than 3.31: installing CMake from PyPI into $SRC/cmake-venv"
        python3 -m venv "$SRC/cmake-venv"
        "$SRC/cmake-venv/bin/pip" install -q 'cmake>=3.31,<4'
        export PATH="$SRC/cmake-venv/bin:$PATH"
        cmake_is_new_enough || { echo "build-bmv2: no CMake >= 3.31" >&2; exit 1; }
    fi
    build_pi
    build_bmv2
    build_p4c
    for tool in simple_switch_grpc simple_switch_CLI p4c-bm2-ss; do
        command -v "$tool" >/dev/null || { echo "build-bmv2: $tool is not on PATH after the build" >&2; exit 1; }
    done
    log "done: $(simple_switch_grpc --version 2>&1 | head -1), p4c $(p4c-bm2-ss --version 2>&1 | awk 'NR==1 {print $2}')"
}

main "$@"
