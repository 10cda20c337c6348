"Shared test setup: nothing is fetched, figures render off-screen."
import os
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
