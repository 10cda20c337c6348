"""The demo (notebook 21_app) in a real browser: JupyterLab on 127.0.0.1 with a token, Debian's Chromium driven headless by
Playwright. The test opens a notebook that displays the app, runs all its cells, clicks the picture, types an instruction,
presses Run, and checks that the reply, the call, the signal summary and the output image in the page are exactly what
the pipeline gives for the same turn. Skips only when Chromium or Playwright cannot be found (`make install` sets up both)."""
import base64, json, os, secrets, shutil, signal, socket, subprocess, sys, time, urllib.request
from pathlib import Path
import pytest

def _find_chromium() -> str | None:
    "Debian's Chromium (or $VITRON_CHROMIUM), or None."
    for candidate in (os.environ.get("VITRON_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK): return candidate
    return None

CHROMIUM = _find_chromium()
try:
    from playwright.sync_api import sync_playwright
    PLAYWRIGHT_MISSING = None
except ImportError as e: PLAYWRIGHT_MISSING = str(e)

pytestmark = [pytest.mark.skipif(CHROMIUM is None, reason="Chromium not found (/usr/bin/chromium): apt-get install -y chromium, or run make install"),
              pytest.mark.skipif(PLAYWRIGHT_MISSING is not None, reason=f"playwright is not installed ({PLAYWRIGHT_MISSING}): "
                                 ".venv/bin/pip install playwright, or run make install")]

INSTRUCTION = "Cut out <region>."
NOTEBOOK_CELL = """import os, torch
torch.set_num_threads(1)
open("kernel.pid", "w").write(str(os.getpid()))     # so the test can make sure the kernel is gone afterwards
from vitron_nb.app import vitron_app
vitron_app()"""

def _free_port() -> int:
    "A port nothing listens on at 127.0.0.1 right now."
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]

def _write_notebook(folder: Path) -> Path:
    "A one-cell notebook that displays the app."
    import nbformat
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(NOTEBOOK_CELL)])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = folder / "app.ipynb"; nbformat.write(notebook, str(path)); return path

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))     # loopback only, never through a proxy

def _api(base: str, token: str, path: str, method: str = "GET"):
    "A call to the Jupyter server's REST API."
    request = urllib.request.Request(f"{base}{path}", method=method, headers={"Authorization": f"token {token}"},
                                     data=b"" if method == "POST" else None)
    with _NO_PROXY.open(request, timeout=5) as response: return response.read()

class JupyterLab:
    "JupyterLab on 127.0.0.1 (free port, random token) serving a temporary folder, with isolated config; stopped on exit."
    def __init__(self, folder: Path):
        self.folder, self.port, self.token = folder, _free_port(), secrets.token_hex(16)
        self.base = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MPLBACKEND="Agg", HF_HUB_OFFLINE="1",
                   TRANSFORMERS_OFFLINE="1", PYTHONWARNINGS="ignore", JUPYTER_CONFIG_DIR=str(folder / ".config"),
                   JUPYTER_RUNTIME_DIR=str(folder / ".runtime"), IPYTHONDIR=str(folder / ".ipython"))
        command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}",
                   "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={folder}",
                   "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
                   "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.extension_manager=readonly"]
        command += [f"--ServerApp.jpserver_extensions={name}=False" for name in ("jupyter_lsp", "jupyter_server_terminals", "jupyterlab_jupytext")]
        if os.geteuid() == 0: command.append("--allow-root")           # containers often run tests as root
        self.log = open(folder / "server.log", "wb")
        self.process = subprocess.Popen(command, cwd=folder, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = 45) -> None:
        "Wait until the server answers /api/status."
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None: raise AssertionError(f"JupyterLab exited with {self.process.returncode}:\n{self.log_tail()}")
            try: _api(self.base, self.token, "/api/status"); return
            except OSError: time.sleep(0.3)
        raise AssertionError(f"JupyterLab did not answer within {timeout} s:\n{self.log_tail()}")

    def log_tail(self, count: int = 3000) -> str:
        self.log.flush(); return (self.folder / "server.log").read_bytes()[-count:].decode(errors="replace")

    def stop(self) -> None:
        "Shut the server down (it shuts its kernels down), then make sure the server and the kernel are gone."
        try: _api(self.base, self.token, "/api/shutdown", "POST")
        except OSError: pass
        try: self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL); self.process.wait(timeout=5)
        pid_file = self.folder / "kernel.pid"
        if pid_file.is_file():
            pid = int(pid_file.read_text())
            for _ in range(50):
                try: os.kill(pid, 0)
                except ProcessLookupError: break
                time.sleep(0.1)
            else: os.kill(pid, signal.SIGKILL)
        self.log.close()

KERNEL_IDLE = """() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    const kernel = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
    return Boolean(kernel) && kernel.status === 'idle'; }"""
IMAGE_BYTES = """async (img) => { const response = await fetch(img.src); const bytes = new Uint8Array(await response.arrayBuffer());
    let text = ''; for (const b of bytes) text += String.fromCharCode(b);
    return {width: img.naturalWidth, height: img.naturalHeight, data: btoa(text)}; }"""

def _drive(lab: JupyterLab, click: tuple[float, float], label: str, shots: Path) -> dict:
    "Open the notebook in headless Chromium, run all cells, click, type, Run; return what the page shows."
    from vitron_nb.app import DISPLAY_SIZE
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-proxy-server"])
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        started, timings = time.perf_counter(), {}
        mark = lambda name: timings.__setitem__(name, round(time.perf_counter() - started, 1))
        try:
            page.goto(f"{lab.base}/lab/tree/app.ipynb?token={lab.token}", wait_until="domcontentloaded", timeout=30_000)
            page.wait_for_function(KERNEL_IDLE, timeout=60_000, polling=250); mark("kernel idle")
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
            page.locator(".vitron-app").wait_for(timeout=60_000); mark("app shown")
            stage = page.locator(".vitron-picture")
            stage.click(position={"x": click[0] * DISPLAY_SIZE, "y": click[1] * DISPLAY_SIZE})     # the picture, where the object is
            page.wait_for_function("(label) => document.querySelector('.vitron-region input').value === label", arg=label, timeout=20_000)
            typed = page.locator(".vitron-instruction input")
            typed.fill(""); typed.press_sequentially(INSTRUCTION, delay=10); typed.press("Tab")
            page.locator("button.vitron-run").click()
            page.locator(".vitron-status .vitron-state-done, .vitron-status .vitron-state-error").wait_for(timeout=60_000); mark("turn shown")
            shown = {name: page.inner_text(f".vitron-{name}") for name in ("status", "reply", "call", "signals", "output-caption")}
            shown["region"], shown["instruction"] = page.input_value(".vitron-region input"), typed.input_value()
            output = page.locator("img.vitron-output")
            page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=output.element_handle(), timeout=20_000)
            shown["output"] = output.evaluate(IMAGE_BYTES); shown["timings"] = timings
            page.screenshot(path=str(shots / "app.png"), full_page=True)
            return shown
        except Exception:
            page.screenshot(path=str(shots / "failure.png"), full_page=True)
            raise
        finally: browser.close()

EXPECTED = '''import base64, json, sys, warnings, torch
torch.set_num_threads(1)
from vitron_nb.app import call_summary, signal_summary, draw_result
from vitron_nb.pipeline import Vitron
from vitron_nb.tasks import make_example
message, x, y = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
with warnings.catch_warnings():
    warnings.simplefilter("ignore"); vitron = Vitron.tiny(device="cpu")
result = vitron.chat(message, image=make_example("ref_seg", 3, "test").image, region=(x, y))
data, kind, caption = draw_result(result)
print(json.dumps(dict(answer=result.answer, reply=result.reply, call=call_summary(result), signals=signal_summary(result),
                      caption=caption, format=kind, data=base64.b64encode(data).decode(), text=repr(result))))'''

def _expected(click: tuple[float, float], folder: Path) -> subprocess.Popen:
    "What the pipeline says for the same turn, computed in a separate process (started now, read later)."
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MPLBACKEND="Agg", HF_HUB_OFFLINE="1", PYTHONWARNINGS="ignore")
    return subprocess.Popen([sys.executable, "-c", EXPECTED, INSTRUCTION, repr(click[0]), repr(click[1])], cwd=folder, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

def test_app_in_a_real_browser(tmp_path):
    import numpy as np
    from vitron_nb.tasks import make_example
    from vitron_nb.app import GRID
    started = time.perf_counter()
    example = make_example("ref_seg", 3, "test")                          # the app's first sample
    row, column = (np.argwhere(example.answer.mask).mean(0) * GRID / 64).astype(int)
    click = (float((column + 0.5) / GRID), float((row + 0.5) / GRID))   # the centre of the cell the browser clicks on
    label = f"{click[0]:.3f}, {click[1]:.3f}"
    _write_notebook(tmp_path)
    reference, lab = _expected(click, tmp_path), JupyterLab(tmp_path)   # the reference runs while the server starts
    try:
        lab.wait_ready(); print(f"server up after {time.perf_counter() - started:.1f} s")
        try: shown = _drive(lab, click, label, tmp_path)
        except Exception as e: raise AssertionError(f"{type(e).__name__}: {e}\nserver log:\n{lab.log_tail()}") from e
        out, err = reference.communicate(timeout=60)
    finally:
        lab.stop()
        if reference.poll() is None: reference.kill(); reference.wait()
    assert lab.process.poll() is not None
    assert reference.returncode == 0, err[-3000:]
    expected = json.loads(out.strip().splitlines()[-1])

    assert "Done in" in shown["status"], shown["status"]
    assert (shown["region"], shown["instruction"]) == (label, INSTRUCTION)
    assert shown["reply"] == f"Reply: {expected['reply']}"
    assert shown["call"].startswith(f"Call: {expected['call']}")
    assert expected["answer"] in shown["call"]                            # the raw answer, shown under the call
    assert shown["signals"] == f"Signals: {expected['signals']}" and ("signal embeddings of width" in shown["signals"] or "none sent" in shown["signals"])
    assert shown["output-caption"] == f"Output: {expected['caption']}"
    assert (shown["output"]["width"], shown["output"]["height"], expected["format"]) == (256, 256, "png")
    assert shown["output"]["data"] == expected["data"]                    # the very picture the app draws for this turn
    print(f"{shown['timings']}, total {time.perf_counter() - started:.1f} s; {expected['text']}")
