"Every notebook under nbs/ runs top to bottom with its parameters-cell defaults (the smoke configuration)."
import pathlib
import pytest
from nbdev.config import get_config
from nbdev.test import test_nb as run_notebook  # aliased: pytest would collect a name starting with test_
from conftest import ROOT
from odelebm.reproduce import experiment_notebooks

pytestmark = pytest.mark.trains   # must hold on any CPU kernel and thread count: make test-cpus

SKIP = get_config(ROOT).tst_flags.split()  # cells flagged `#| slow` are skipped, as under nbdev-test
# the experiment notebooks in the order odelebm-reproduce runs them: those that load trained models after their
# producers
EXPERIMENTS = experiment_notebooks(ROOT / "nbs" / "experiments")
NOTEBOOKS = sorted(p for p in (ROOT / "nbs").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts
                   and p not in EXPERIMENTS) + EXPERIMENTS

@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[str(p.relative_to(ROOT / "nbs")) for p in NOTEBOOKS])
def test_notebook_runs(nb):
    ok, seconds = run_notebook(nb, skip_flags=SKIP, do_print=False)
    assert ok, f"{nb.name} failed (run `nbdev-test --do-print {nb}` to see the failing cell)"
