"""The Vagrant VM and the BMv2 build, checked without Vagrant or a VM: the build script parses
and pins its releases, `make bmv2` runs it, and the Vagrantfile — loaded by Ruby against a
stand-in of Vagrant's configuration API (tests/vagrant_stub.rb) — boots with rsync (no NFS) on
both providers and builds BMv2 only when FABRICLAB_BMV2=1."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).parent.parent
BUILD = REPO / "vm" / "build-bmv2.sh"


def test_build_script_parses_and_pins_its_releases():
    subprocess.run(["bash", "-n", str(BUILD)], check=True)
    text = BUILD.read_text()
    for name in ("PI_VERSION", "BMV2_VERSION", "P4C_VERSION"):
        assert re.search(rf"^{name}=\$\{{{name}:-[\w.]+\}}$", text, re.M), name
    # simple_switch_CLI needs Thrift; P4Runtime needs PI
    assert "--with-pi --with-thrift" in text and "--with-proto" in text


def test_make_bmv2_runs_the_build_script():
    out = subprocess.run(["make", "--no-print-directory", "-n", "bmv2"], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "bash vm/build-bmv2.sh"


def _vagrant_config(bmv2: bool, sync: str = "rsync") -> dict:
    env = {**os.environ, "FABRICLAB_BMV2": "1" if bmv2 else "0", "FABRICLAB_SYNC": sync}
    out = subprocess.run(["ruby", str(REPO / "tests" / "vagrant_stub.rb"), str(REPO / "Vagrantfile")],
                         cwd=REPO, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out)["vm"]


@pytest.mark.skipif(shutil.which("ruby") is None, reason="ruby is not installed (apt-get install ruby)")
def test_vagrantfile_boots_on_both_providers_without_nfs():
    subprocess.run(["ruby", "-c", str(REPO / "Vagrantfile")], check=True, capture_output=True)
    vm = _vagrant_config(bmv2=False)
    assert vm["box"] == "debian/trixie64"
    (folder,) = vm["synced_folder"]
    assert folder["args"] == [".", "/vagrant"] and folder["kwargs"]["type"] == "rsync"
    assert ".venv/" in folder["kwargs"]["rsync__exclude"]    # the VM builds its own
    providers = {p["args"][0]: p["block"] for p in vm["provider"]}
    assert set(providers) == {"virtualbox", "libvirt"}
    assert all(p["cpus"] == 2 and p["memory"] >= 4096 for p in providers.values())
    (shell,) = vm["provision"]
    script = shell["kwargs"]["inline"]
    assert shell["kwargs"]["env"] == {"FABRICLAB_BMV2": "0"} and "make install" in script
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)
    # the provisioning builds BMv2 exactly when asked, with memory for p4c's compiler
    assert "make bmv2" in script.split('if [ "$FABRICLAB_BMV2" = 1 ]')[1]
    with_bmv2 = _vagrant_config(bmv2=True)
    assert with_bmv2["provision"][0]["kwargs"]["env"] == {"FABRICLAB_BMV2": "1"}
    assert all(p["block"]["memory"] >= 6144 for p in with_bmv2["provider"])
    virtiofs = _vagrant_config(bmv2=False, sync="virtiofs")
    assert virtiofs["synced_folder"][0]["kwargs"] == {"type": "virtiofs"}
