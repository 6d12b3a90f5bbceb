"""`mcunet-lite lab`: copies never overwrite, a known port and token (the printed URL), root allowed,
JupyterLab's failure is the command's failure."""
import socket
import subprocess
import sys

from mcunet_lite import cli
from mcunet_lite.kit import jupyter


def test_command_runs_as_root_without_a_browser_at_the_given_port(monkeypatch, tmp_path):
    monkeypatch.setattr(jupyter.os, "geteuid", lambda: 0)
    command, url = jupyter.jupyterlab_command(tmp_path, 8999, no_browser=True)
    assert {"--allow-root", "--no-browser", "--port=8999", "--ServerApp.port_retries=0"} <= set(command)
    token = url.split("token=")[1]
    assert url.startswith("http://localhost:8999/lab?token=") and f"--IdentityProvider.token={token}" in command
    monkeypatch.setattr(jupyter.os, "geteuid", lambda: 1000)
    assert "--allow-root" not in jupyter.jupyterlab_command(tmp_path, 8999, no_browser=False)[0]


def test_a_jupyterlab_that_fails_fails_the_command(tmp_path):
    with socket.socket() as busy:  # JupyterLab cannot listen on a port that is taken
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "mcunet_lite.cli", "lab", "--dir", str(tmp_path / "work"),
                            "--port", str(port), "--no-browser"], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0, r.stdout + r.stderr
    assert f"http://localhost:{port}/lab?token=" in r.stdout and "JupyterLab failed" in r.stderr
    assert sorted(p.name for p in (tmp_path / "work").iterdir())[0] == "00_memory_wall.ipynb"


def test_copies_carry_this_kernels_metadata_so_an_untouched_copy_opens_unmodified(tmp_path):
    import json

    from ipykernel.ipkernel import IPythonKernel

    from mcunet_lite.kit import build as kit
    src = kit.LABS / "00_memory_wall.ipynb"
    jupyter.copy_for_this_kernel(src, tmp_path / src.name)
    copy, original = (json.loads(p.read_text()) for p in (tmp_path / src.name, src))
    assert copy["metadata"]["language_info"] == IPythonKernel.language_info
    assert copy["metadata"]["kernelspec"]["display_name"] != original["metadata"]["kernelspec"]["display_name"] or \
        copy["metadata"]["language_info"] != original["metadata"]["language_info"]
    assert copy["cells"] == original["cells"] and copy["metadata"]["mcunet_lite"] == original["metadata"]["mcunet_lite"]
