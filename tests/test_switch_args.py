"""`fabriclab switch` refuses bad input with one line and exit code 2 (1 for a P4 compile error)."""
from __future__ import annotations

import pytest

from fabriclab.cli import main


@pytest.mark.parametrize("argv, message", [
    (["-i", "1@fl-no-such-if"], "no interface named 'fl-no-such-if'"),
    (["-i", "veth1"], "expected PORT@IFNAME"),
    (["-i", "511@lo"], "511 is v1model's drop port"),
    (["-i", "1@lo", "-i", "1@lo"], "each port number may be given once"),
    (["-i", "1@lo", "-i", "2@lo"], "each interface may be attached once"),
    (["-i", "1@lo", "--cpu-port", "1"], "also a data port"),
    (["-i", "1@lo", "--p4", "/nonexistent/x.p4"], "no such file"),
    ([], "give at least one port"),
])
def test_bad_arguments(argv, message, capsys):
    assert main(["switch", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


def test_bad_config_and_bad_program(tmp_path, capsys):
    config = tmp_path / "switch.yaml"
    config.write_text("lossless: [9]\n")
    assert main(["switch", "-i", "1@lo", "--config", str(config)]) == 2
    assert "switch.yaml: lossless: priority 9 is not in 0..7" in capsys.readouterr().err
    program = tmp_path / "broken.p4"
    program.write_text("control X( {\n")
    assert main(["switch", "-i", "1@lo", "--p4", str(program)]) == 1
    assert "broken.p4:1:12: error:" in capsys.readouterr().err
