"""A student's first minutes in a real browser (issue 22): Playwright drives Debian's chromium.

`mcunet-lite lab --no-browser --port` starts JupyterLab on a student copy (as root in CI); Lab 00
opens unmodified, Run All goes past the unfinished exercises to the figures and the widget, and a
widget slider redraws its figure. Then the student book: figures, no answers, rendered math.
Screenshots go to $MCUNET_LITE_SCREENSHOTS when set (else the test's temporary folder).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mcunet_lite.kit import build as kit

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(not CHROMIUM, reason="needs Debian's chromium (make setup installs it)")
LAB = "00_memory_wall"
CODE_CELLS = sum(c["cell_type"] == "code" for c in json.loads((kit.LABS / f"{LAB}.ipynb").read_text())["cells"])


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("MCUNET_LITE_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def jupyterlab(tmp_path):
    """`mcunet-lite lab` on a fresh student copy, without a browser; yields the URL it printed."""
    from mcunet_lite.kit.jupyter import free_port
    proc = subprocess.Popen([sys.executable, "-m", "mcunet_lite.cli", "lab", "--dir", str(tmp_path / "my-labs"),
                             "--no-browser", "--port", str(free_port(8890))], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    url, seen = None, []
    for line in proc.stdout:
        seen.append(line)
        url = url or (re.search(r"(http://localhost:\d+/lab\?token=\w+)", line) or [None])[0]
        if url and ("is running at" in line or "Use Control-C" in line):
            break
    assert url, "".join(seen)
    yield url
    os.killpg(proc.pid, 15)
    proc.wait(30)


def _page(pw):
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
    return browser, browser.new_page(viewport={"width": 1280, "height": 900})


def test_run_all_reaches_the_figures_and_the_widget_redraws(jupyterlab, shots):
    t0 = time.monotonic()
    with sync_api.sync_playwright() as pw:
        browser, page = _page(pw)
        page.goto(jupyterlab.replace("/lab?", f"/lab/tree/{LAB}.ipynb?"))
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
        page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=60_000)  # the kernel is connected
        page.wait_for_timeout(2000)  # JupyterLab has written the kernel's metadata into the notebook
        tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.jp-mod-current")
        assert "jp-mod-dirty" not in (tab.get_attribute("class") or ""), "the notebook shows as modified on opening"

        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_text("Run All Cells", exact=True).click()
        try:  # every code cell ran: its prompt holds an execution count, none is busy or empty
            page.wait_for_function("""(n) => {
                const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')];
                return prompts.filter(p => /\\[\\d+\\]/.test(p.textContent)).length === n;
            }""", arg=CODE_CELLS, timeout=300_000)
        except Exception:
            page.screenshot(path=str(shots / "lab00_run_all_failed.png"))
            raise
        text = page.locator(".jp-Notebook").text_content()  # text of cells scrolled out of view too
        assert "conv_layer_cost: not implemented yet" in text and "NOTE: live_bytes" in text
        assert "Traceback" not in text and "Error" not in text.replace("NotImplementedError", "")
        assert page.locator(".jp-OutputArea-output img").count() >= 3  # block memory, size vs activations, ...
        news = page.get_by_role("button", name="No", exact=True)  # JupyterLab's "official news?" prompt
        if news.count():
            news.click()
        page.get_by_text("NOTE: live_bytes").nth(1).scroll_into_view_if_needed()  # the per-block figure
        page.screenshot(path=str(shots / "lab00_after_run_all.png"))

        widget = page.locator(".widget-interact").first
        widget.scroll_into_view_if_needed()
        widget.locator("img").first.wait_for(timeout=60_000)
        before = widget.locator("img").first.get_attribute("src")
        widget.screenshot(path=str(shots / "widget_before.png"))
        handle = widget.locator(".widget-slider .noUi-handle").nth(1)  # resolution
        handle.focus()
        page.keyboard.press("ArrowRight")  # one step: 224 -> 240 px, one redraw
        page.wait_for_function("""(before) => {
            const img = document.querySelector('.widget-interact img');
            return img && img.getAttribute('src') !== before;
        }""", arg=before, timeout=60_000)
        assert widget.locator(".widget-readout").nth(1).inner_text() == "240"
        widget.screenshot(path=str(shots / "widget_after.png"))
        browser.close()
    print(f"browser: Run All of {LAB} and the widget in {time.monotonic() - t0:.0f} s")


def test_student_book_shows_figures_and_math_and_no_answers(tmp_path, shots):
    html = kit.book(tmp_path / "book")
    with sync_api.sync_playwright() as pw:
        browser, page = _page(pw)
        for lab in (LAB, "04_search_space"):
            page.goto((html / "labs" / f"{lab}.html").as_uri())
            page.wait_for_selector("main img")
            text = page.locator("main").inner_text()
            assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text and "NotImplementedError" in text
            assert page.locator("main img").count() >= 1
            page.locator("main img").first.scroll_into_view_if_needed()
            page.screenshot(path=str(shots / f"book_{lab}_figure.png"))
        page.wait_for_selector("mjx-container, .MathJax_CHTML, .mjx-chtml", timeout=30_000)  # MathJax ran
        assert "\\times" not in page.locator("main").inner_text()  # no raw TeX left
        page.locator(".mjx-chtml").first.scroll_into_view_if_needed()
        page.screenshot(path=str(shots / "book_04_search_space.png"))
        browser.close()
