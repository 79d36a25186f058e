import pathlib
import pytest
import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]

@pytest.fixture(autouse=True)
def _threads():
    # deterministic and fair on the 2-core CI machine
    torch.set_num_threads(2)
    yield
