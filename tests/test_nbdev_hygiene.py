"nbdev discipline and house style: clean notebooks, the package they export, short lines and short export cells."
import json, os, subprocess, sys, pathlib
import pytest
from conftest import ROOT

BIN = pathlib.Path(sys.executable).parent

def _status() -> str:
    return subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, check=True).stdout

@pytest.mark.parametrize("tool", ["nbdev-clean", "nbdev-export"])
def test_tool_leaves_tree_unchanged(tool):
    if not (ROOT / ".git").exists(): pytest.skip("not a git checkout")
    before = _status()
    if os.environ.get("CI"): assert before == "", f"CI checkout is not clean before {tool}:\n{before}"
    subprocess.run([str(BIN / tool)], cwd=ROOT, check=True, capture_output=True)
    after = _status()
    assert after == before, (f"{tool} changed the tree (edit notebooks, not odelebm/*.py; run `make lint-nb` and "
                             f"commit):\n{after}")


def test_lines_at_most_120_characters():
    "House style: every line of the notebooks' code cells, the package, the tests and the benchmarks fits 120 columns."
    pytest.importorskip("ruff", reason="ruff comes with the dev extra: pip install -e '.[dev]'")
    p = subprocess.run([sys.executable, "-m", "ruff", "check", "--output-format", "concise", "."], cwd=ROOT,
                       capture_output=True, text=True)
    assert p.returncode == 0, f"lines over 120 characters (ruff, [tool.ruff] in pyproject.toml):\n{p.stdout[-3000:]}"


def test_export_cells_are_short():
    "A notebook explains its module one idea at a time: no exported cell holds more than 80 lines."
    long = []
    for nb in sorted((ROOT / "nbs").rglob("*.ipynb")):
        for cell in json.loads(nb.read_text())["cells"]:
            src = "".join(cell["source"])
            if cell["cell_type"] == "code" and src.startswith(("#| export", "#| exporti")) and src.count("\n") >= 80:
                long.append(f"{nb.relative_to(ROOT)}: {src.count(chr(10)) + 1} lines, {src.splitlines()[1][:60]!r}")
    assert not long, ("export cells over 80 lines (split them by section, e.g. with odelebm.core.patch_to):\n"
                      + "\n".join(long))
