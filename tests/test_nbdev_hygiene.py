"nbdev discipline: the committed notebooks are clean and the committed package is what they export."
import os, subprocess, sys, pathlib
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
