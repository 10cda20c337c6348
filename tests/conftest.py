"Shared test setup: nothing is fetched, figures render off-screen, torch uses one thread."
import os
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
import pytest

@pytest.fixture(autouse=True, scope="session")
def one_thread():
    "The two cores are shared between test workers: one torch thread each is several times faster for models this small."
    import torch
    before = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
