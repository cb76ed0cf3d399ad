"""Imports run one way: compiler -> v1model -> p4runtime -> switch -> everything else.

Every ``import`` in the four layers (also the ones inside functions) is read from the source, so
a lazy import that crosses the wrong way fails here as well as a top-level one."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# a layer may import itself and the layers before it; fabriclab.errors/units are shared leaves
LAYERS = ["compiler", "v1model", "p4runtime", "switch"]
SHARED = {"fabriclab.errors", "fabriclab.units"}


def fabriclab_imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] if node.module != "fabriclab" else [f"fabriclab.{a.name}" for a in node.names]
            found += [(node.lineno, name) for name in names if name.startswith("fabriclab")]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("fabriclab")]
    return found


def allowed(layer: str, module: str) -> bool:
    if module in SHARED or module == "fabriclab":
        return module in SHARED
    parts = module.split(".")
    if len(parts) < 2 or parts[1] not in LAYERS:
        return False          # a layer never reaches up into controller/, topologies/, the CLI...
    return LAYERS.index(parts[1]) <= LAYERS.index(layer)


@pytest.mark.parametrize("layer", LAYERS)
def test_layer_imports_only_itself_and_lower_layers(layer):
    wrong = [f"{path.relative_to(ROOT)}:{line}: imports {module}"
             for path in sorted((ROOT / layer).glob("*.py"))
             for line, module in fabriclab_imports(path) if not allowed(layer, module)]
    assert not wrong, "imports crossing the wrong way:\n" + "\n".join(wrong)


def test_checker_sees_a_wrong_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from fabriclab.switch.pfc import PfcState\n    import fabriclab.controller.app\n")
    modules = [m for _, m in fabriclab_imports(bad)]
    assert modules == ["fabriclab.switch.pfc", "fabriclab.controller.app"]
    assert not allowed("v1model", modules[0]) and not allowed("switch", modules[1])
    assert allowed("switch", "fabriclab.v1model.pipeline") and allowed("compiler", "fabriclab.errors")


def test_target_folder_is_gone():
    assert not (ROOT / "target").exists()
