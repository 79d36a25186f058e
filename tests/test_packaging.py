"What a non-editable install (a wheel) ships: every subpackage of odelebm and the data files it reads."
import fnmatch, tomllib
import setuptools
from conftest import ROOT


def test_wheel_ships_every_subpackage_and_its_data():
    """setuptools' package search and package-data of pyproject.toml cover every package folder and every data file
    under odelebm/."""
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = set(setuptools.find_packages(str(ROOT), include=cfg["packages"]["find"]["include"]))
    on_disk = {p.parent.relative_to(ROOT).as_posix().replace("/", ".") for p in (ROOT / "odelebm").rglob("__init__.py")}
    assert on_disk <= found, f"not shipped: {sorted(on_disk - found)}"
    data = [f for f in (ROOT / "odelebm" / "data").iterdir() if f.is_file() and f.suffix != ".py"]
    patterns = cfg["package-data"]["odelebm.data"]
    assert data and all(any(fnmatch.fnmatch(f.name, p) for p in patterns) for f in data)
