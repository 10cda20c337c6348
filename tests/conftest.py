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

@pytest.fixture
def stub_alignment(monkeypatch):
    """Stub the model and its training so that `vitron train --only vitron` runs in a moment. Call it with `loaded` (checkpoint
    metadata, or a function of the checkpoint's path giving it: every stage already finished, with it) or `stop_at` (a stage that raises); it returns what the run did: `tasks` per
    stage as `train_stage` got them (and `packed`), and the `record` the run wrote."""
    def stub(loaded: dict | None = None, stop_at: str | None = None) -> dict:
        import vitron_nb.cli, vitron_nb.model, vitron_nb.core
        from vitron_nb.core import VitronConfig, VitronError
        did = {"tasks": {}, "packed": {}}
        class Small:
            config = VitronConfig()
            def load_state_dict(self, *a, **k): pass
        def fake_stage(model, stage, steps, *a, tasks=None, packed=True, **k):
            did["tasks"][stage] = tasks; did["packed"][stage] = packed
            if stage == stop_at: raise VitronError(f"stopped at stage {stage}")
            return dict(stage=stage, steps=steps, resumed_from=0, **({"tasks": tasks} if tasks else {}))
        monkeypatch.setattr(vitron_nb.model, "build_model", lambda config: Small())
        monkeypatch.setattr(vitron_nb.model, "train_stage", fake_stage)
        monkeypatch.setattr(vitron_nb.model, "save_trained", lambda model, folder, record: did.setdefault("record", record) and folder)
        if loaded is not None:
            monkeypatch.setattr(vitron_nb.cli, "checkpoint_step", lambda path: 10 ** 6)
            monkeypatch.setattr(vitron_nb.model, "prepare_stage", lambda model, stage: [])
            monkeypatch.setattr(vitron_nb.core, "load_checkpoint", lambda path, kind, config=None: ({}, dict(loaded(path) if callable(loaded) else loaded)))
        return did
    return stub
