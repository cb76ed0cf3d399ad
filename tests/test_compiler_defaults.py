"""A table with no default_action gets p4c's implicit NoAction (default-only), even when its
action list does not name NoAction."""
from pathlib import Path

from fabriclab.compiler.driver import compile_file
from fabriclab.v1model.loader import instantiate

PROGRAM = Path(__file__).parent / "programs" / "implicit_noaction.p4"


def test_miss_runs_implicit_noaction_and_p4info_lists_it():
    pipeline = instantiate(compile_file(str(PROGRAM)))
    table = pipeline.info.tables["I.t"]
    assert table.default_action == "NoAction"
    assert [(a.name, a.scope) for a in table.actions] == [("I.fwd", "TABLE_AND_DEFAULT"),
                                                          ("NoAction", "DEFAULT_ONLY")]
    frame = bytes(12) + b"\x08\x00" + b"x" * 50
    assert pipeline.process(frame, 1) == [(2, frame)]  # miss: egress_spec stays as ingress set it
