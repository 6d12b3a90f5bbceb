"""Opening the labs for a student: a private copy of the notebooks and JupyterLab on it (`mcunet-lite lab`)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from ..errors import UserError


def open_labs(work: Path, port: int | None = None, no_browser: bool = False, copy_only: bool = False) -> None:
    """Copy the student notebooks into a work folder (never overwriting) and open JupyterLab there."""
    import subprocess

    from .build import LABS
    if work.exists() and not work.is_dir():
        raise UserError(f"--dir '{work}' is a file; give a folder for your copies of the labs")
    work.mkdir(parents=True, exist_ok=True)
    for nb in sorted(LABS.glob("*.ipynb")):
        if not (work / nb.name).exists():
            copy_for_this_kernel(nb, work / nb.name)
            print(f"copied {nb.name} -> {work}/")
    if copy_only:
        return
    command, url = jupyterlab_command(work, port, no_browser)
    print(f"JupyterLab on {work}/: {url}  (Ctrl-C to stop)", flush=True)
    code = subprocess.run(command, check=False).returncode
    if code not in (0, 130, -2):  # 130 / -2: stopped with Ctrl-C
        raise UserError(f"JupyterLab failed (exit code {code}); see its messages above")


def copy_for_this_kernel(src: Path, dest: Path) -> None:
    """Copy a notebook with the kernelspec and language_info this machine's Python kernel reports:
    JupyterLab writes those into a notebook as it opens it, and any difference showed the student's
    untouched copy as modified."""
    import nbformat
    from ipykernel.ipkernel import IPythonKernel
    from jupyter_client.kernelspec import KernelSpecManager
    nb = nbformat.read(src, as_version=4)
    spec = KernelSpecManager().get_kernel_spec("python3")
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": spec.display_name, "language": spec.language}
    nb.metadata["language_info"] = dict(IPythonKernel.language_info)
    nbformat.write(nb, dest)


def jupyterlab_command(work: Path, port: int | None, no_browser: bool) -> tuple[list[str], str]:
    """JupyterLab on `work` at a known port and token, so the printed URL is the one it serves; as
    root (course containers) with --allow-root, which JupyterLab otherwise refuses."""
    import secrets
    port = port or free_port()
    token = secrets.token_hex(16)
    command = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={work.resolve()}", f"--port={port}",
               "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}"]
    if no_browser:
        command.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    return command, f"http://localhost:{port}/lab?token={token}"


def free_port(first: int = 8888, tries: int = 50) -> int:
    """The first port from `first` on that nothing listens on (JupyterLab's own default is 8888)."""
    import socket
    for port in range(first, first + tries):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise UserError(f"no free port in {first}..{first + tries - 1}; pass --port")
