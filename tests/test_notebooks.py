"Every notebook under nbs/ runs top to bottom with its parameters-cell defaults (the smoke configuration)."
import pathlib
import pytest
from nbdev.config import get_config
from nbdev.test import test_nb as run_notebook  # aliased: pytest would collect a name starting with test_
from conftest import ROOT

SKIP = get_config(ROOT).tst_flags.split()  # cells flagged `#| slow` are skipped, as under nbdev-test
NOTEBOOKS = sorted(p for p in (ROOT / "nbs").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)

@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[str(p.relative_to(ROOT / "nbs")) for p in NOTEBOOKS])
def test_notebook_runs(nb):
    ok, seconds = run_notebook(nb, skip_flags=SKIP, do_print=False)
    assert ok, f"{nb.name} failed (run `nbdev-test --do-print {nb}` to see the failing cell)"
