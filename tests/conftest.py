import pathlib
import pytest
import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]

@pytest.fixture(autouse=True)
def _threads():
    # small networks gain nothing from more threads; one thread keeps runs comparable
    torch.set_num_threads(1)
    yield
