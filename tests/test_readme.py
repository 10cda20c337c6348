"README.md is generated from nbs/index.ipynb (`make readme`); it must not drift."
import subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def test_readme_matches_index_notebook():
    fresh = subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "markdown", "--log-level", "ERROR",
                            "--stdout", str(ROOT / "nbs" / "index.ipynb")], capture_output=True, text=True, check=True).stdout
    assert fresh == (ROOT / "README.md").read_text(), "README.md differs from nbs/index.ipynb: run `make readme`"
