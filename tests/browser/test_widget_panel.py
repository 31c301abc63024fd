"""Notebook 10's panel, used as a person uses it, in headless Chromium: JupyterLab, Notebook 7,
Voila, and JupyterLab with ipywidgets 7 (what Colab ships).

JupyterLab: open the notebook (no kernel dialog), run all cells, then type a prompt, press Enter
and Tab in the text areas and drag a slider (no run may start), see tau disabled under the
'expected' estimator and live under 'st', press Run edit (the button disables, the progress bar
moves, a result with every S term appears, the run used the slider's value), submit an empty
prompt (one line, no traceback), upload a PNG and run on it with a 135-word prompt that its text
area shows whole (the history grows, two runs side by side), export a run (result.json on disk).
Notebook 7: run all, a press with progress and the S terms, an over-long prompt as one line.
ipywidgets 7 in JupyterLab: the same, with an upload. Voila: the panel renders, a press runs with
progress and the S terms, and a bad prompt is one line there too. Screenshots: outputs/browser/.
"""
import contextlib
import json
import re
import time
import urllib.request
from pathlib import Path

import pytest

SHOTS = Path(__file__).resolve().parents[2] / "outputs" / "browser"   # kept as CI artifacts

RUN_ALL_TIMEOUT = 150_000          # ms: the notebook runs in ~25 s on 2 cores
RUN_TIMEOUT = 60_000               # ms: one toy-world edit takes seconds
LONG_PROMPT = " ".join(["a bright red circle with a black outline, standing on the grey floor "
                        "beside the green triangle, lit from the upper left so it casts a "
                        "shadow"] * 5)            # 135 words


def log(t0, text):
    print(f"[{time.monotonic() - t0:6.1f} s] {text}", flush=True)


def progress_width(page) -> float:
    style = page.locator(".lr-progress .progress-bar").first.get_attribute("style") or ""
    m = re.search(r"width:\s*([0-9.]+)%", style)
    return float(m.group(1)) if m else 0.0


def press_and_watch(page, panel):
    """Click Run edit; poll the button and the bar until the run ends. Returns (seen disabled,
    bar widths seen)."""
    button = panel.locator("button.lr-run")
    button.click()
    disabled, widths = False, []
    end = time.monotonic() + RUN_TIMEOUT / 1000
    while time.monotonic() < end:
        is_disabled = button.is_disabled()
        disabled |= is_disabled
        widths.append(progress_width(page))
        if not is_disabled and len(widths) > 3:
            break
        page.wait_for_timeout(25)
    return disabled, widths


def drag(page, handle, dx: float) -> None:
    """Drag a slider's handle `dx` pixels sideways with the mouse (scrolled into view first:
    the mouse moves in the viewport's coordinates)."""
    handle.scroll_into_view_if_needed()
    box = handle.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] / 2, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 + dx, y, steps=8)
    page.mouse.up()


def kernel_ready(url: str, timeout: float = 60) -> None:
    """Until the server has a kernel that a client is connected to and that is idle (the
    notebook's execution indicator says idle before its kernel even exists)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with urllib.request.urlopen(f"{url}/api/kernels", timeout=5) as r:
            kernels = json.load(r)
        if any(k["execution_state"] == "idle" and k["connections"] > 0 for k in kernels):
            return
        time.sleep(0.3)
    pytest.fail(f"no kernel was ready in {timeout:.0f} s")


def run_all(page) -> None:
    """Run > Run All Cells, as a person does; again if the first code cell was not queued."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    for _ in range(2):
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        page.locator("li.lm-Menu-item[data-command='runmenu:run-all']").click()
        try:
            page.wait_for_function(
                "() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]"
                ".some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))", timeout=10_000)
            return
        except PlaywrightTimeout:
            continue
    pytest.fail("Run All Cells queued no cell")


def open_and_run_all(page, server: dict, path: str, t0: float) -> None:
    """Open the notebook at `path` (JupyterLab: /lab/tree/..., Notebook 7: /notebooks/...),
    check that no dialog asks for a kernel, run all cells and wait until the last one is done
    and no output is a traceback."""
    page.goto(f"{server['url']}{path}")
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook", timeout=60_000)
    kernel_ready(server["url"])
    page.wait_for_timeout(500)                  # a dialog, if one opens, opens now
    assert page.locator(".jp-Dialog").count() == 0, "a dialog (kernel choice?) opened"
    log(t0, "notebook open, kernel idle, no dialog")
    run_all(page)
    page.wait_for_selector(".lr-panel", timeout=RUN_ALL_TIMEOUT)
    page.wait_for_selector(".jp-OutputArea-output:has-text('asked: a yellow star')",
                           timeout=RUN_ALL_TIMEOUT)
    page.wait_for_function(
        "() => ![...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]"
        ".some(p => p.textContent.includes('[*]'))", timeout=RUN_ALL_TIMEOUT)
    text = page.locator(".jp-Notebook").inner_text()
    assert "Traceback" not in text and "Error displaying widget" not in text
    log(t0, "ran all cells, no traceback")


def run_and_check_scores(page, panel, number: int) -> list[float]:
    """Press Run edit once: the button is disabled while it runs, the bar shows progress, the
    status says the run is done and the result lists every term of S with its weights.
    Returns the bar widths seen."""
    disabled, widths = press_and_watch(page, panel)
    page.wait_for_function(f"() => document.querySelectorAll('.lr-history-card').length === "
                           f"{number}", timeout=RUN_TIMEOUT)
    status = panel.locator(".lr-status").inner_text()
    assert disabled, "the button stayed enabled during the run"
    assert any(0 < w < 100 for w in widths), f"no progress shown during the run: {widths}"
    assert f"run #{number} done" in status, status
    scores = panel.locator(".lr-scores").inner_text()
    for term in ("S_t2i", "S_i2i", "S_dir", "S_cap", "weighted sum", "alpha = 2", "delta = 30"):
        assert term in scores, term
    return widths


def bad_input_is_one_line(page, panel, prompt: str, words: str, runs: int) -> str:
    """Type a prompt the edit refuses and press: one line saying what to change, no traceback
    anywhere on the page, no run added to the history, the button usable again."""
    panel.locator(".lr-prompt textarea").fill(prompt)
    panel.locator("button.lr-run").click()
    page.wait_for_selector(".lr-status .lr-error", timeout=RUN_TIMEOUT)
    err = panel.locator(".lr-status").inner_text().strip()
    assert words in err and "\n" not in err, err
    assert "Traceback" not in page.locator("body").inner_text()
    assert history_cards(panel) == runs and panel.locator("button.lr-run").is_enabled()
    return err


def drag_m(page, panel) -> int:
    """Drag the M slider to the left with the mouse; returns the value it shows then."""
    before = int(panel.locator(".lr-M .widget-readout").inner_text())
    drag(page, panel.locator(".lr-M .noUi-handle, .lr-M .ui-slider-handle"), -60)
    shown = int(panel.locator(".lr-M .widget-readout").inner_text())
    assert shown < before, f"the drag did not move the M slider ({before})"
    return shown


def upload_green(page, panel, tmp_path) -> None:
    """Upload a green PNG through the upload button's file dialog, as a person does; it is
    selected, and the caption of the previous picture is cleared."""
    from PIL import Image
    png = tmp_path / "green.png"
    Image.new("RGB", (96, 96), (30, 180, 60)).save(png)
    with page.expect_file_chooser() as chooser:
        panel.locator(".lr-upload").click()
    chooser.value.set_files(str(png))
    page.wait_for_function(
        "() => document.querySelector('.lr-image select').value === 'upload: green.png'",
        timeout=20_000)
    page.wait_for_function("() => document.querySelector('.lr-caption textarea').value === ''",
                           timeout=10_000)


def settings_used(panel, i: int) -> dict:
    """The settings run i used, as its history card records them."""
    return json.loads(panel.locator(".lr-history-card").nth(i).locator("div[title]")
                      .get_attribute("title"))


@contextlib.contextmanager
def shot_on_failure(page, name: str):
    """When the block fails: a screenshot of the page (outputs/browser/NAME_failure.png), the
    browser console (NAME_console.txt, its errors and warnings also printed) and the text of
    every output area (NAME_outputs.txt), where a widget that did not render says why."""
    console = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    try:
        yield
    except BaseException:
        page.screenshot(path=str(SHOTS / f"{name}_failure.png"))
        (SHOTS / f"{name}_console.txt").write_text("\n".join(console))
        outputs = page.evaluate("() => [...document.querySelectorAll('.jp-OutputArea-output')]"
                                ".map(e => e.className + ': ' + e.innerText.slice(0, 300))")
        (SHOTS / f"{name}_outputs.txt").write_text("\n---\n".join(outputs))
        print(f"\nbrowser console ({name}), errors and warnings:")
        for line in console:
            if line.startswith(("error", "warning", "pageerror")):
                print("  " + line[:400])
        raise


def history_cards(panel) -> int:
    return panel.locator(".lr-history-card").count()


def test_panel_in_jupyterlab(browser, jupyterlab, tmp_path):
    t0 = time.monotonic()
    page = browser.new_page(viewport={"width": 1400, "height": 2400})
    with shot_on_failure(page, "lab"):
        page.goto(f"{jupyterlab['url']}/lab/tree/10_widgets.ipynb")
        page.wait_for_selector(".jp-NotebookPanel .jp-Notebook", timeout=60_000)
        kernel_ready(jupyterlab["url"])
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                               timeout=60_000)
        assert page.locator(".jp-Dialog").count() == 0, "a dialog (kernel choice?) opened"
        log(t0, "notebook open, kernel idle, no dialog")

        run_all(page)
        page.wait_for_selector(".lr-panel", timeout=RUN_ALL_TIMEOUT)
        page.wait_for_selector(".jp-OutputArea-output:has-text('asked: a yellow star')",
                               timeout=RUN_ALL_TIMEOUT)
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                               timeout=RUN_ALL_TIMEOUT)
        assert "Traceback" not in page.locator(".jp-Notebook").inner_text()
        log(t0, "ran all cells, no traceback")
        panel = page.locator(".lr-panel")
        panel.scroll_into_view_if_needed()
        assert history_cards(panel) == 0 and progress_width(page) == 0

        # type, press Enter and Tab in the text areas, drag a slider: nothing may run
        prompt = panel.locator(".lr-prompt textarea")
        prompt.click()
        prompt.press("Control+a")
        prompt.press_sequentially("a yellow star", delay=20)
        prompt.press("Enter")
        prompt.press("Tab")
        caption = panel.locator(".lr-caption textarea")
        caption.click()
        caption.press("End")
        caption.press("Enter")
        caption.press("Shift+Tab")
        # the caption's new line gives its text area a row (from the kernel): drag after that
        page.wait_for_function("() => document.querySelector('.lr-caption textarea')"
                               ".getAttribute('rows') === '3'", timeout=10_000)
        m_before = int(panel.locator(".lr-M .widget-readout").inner_text())
        drag(page, panel.locator(".lr-M .noUi-handle"), -60)
        m_shown = int(panel.locator(".lr-M .widget-readout").inner_text())
        assert m_shown < m_before, f"the drag did not move the M slider ({m_before})"
        panel.locator(".lr-prune select").select_option("off")
        tau_tip = panel.locator(".lr-tau label").get_attribute("title")
        assert "disabled" in tau_tip and "straight-through" in tau_tip, tau_tip
        assert panel.locator(".lr-tau .noUi-target[disabled]").count() == 1
        panel.locator(".lr-estimator button", has_text="st").click()      # tau comes alive
        page.wait_for_function("() => !document.querySelector('.lr-tau label').title"
                               ".startsWith('disabled')", timeout=10_000)
        assert panel.locator(".lr-tau .noUi-target[disabled]").count() == 0
        panel.locator(".lr-estimator button", has_text="expected").click()
        page.wait_for_function("() => document.querySelector('.lr-tau label').title"
                               ".startsWith('disabled')", timeout=10_000)
        page.wait_for_timeout(1500)                 # time for a run to start, if one would
        assert history_cards(panel) == 0 and progress_width(page) == 0
        assert panel.locator("button.lr-run").is_enabled()
        assert "running" not in panel.locator(".lr-status").inner_text()
        log(t0, f"typed, Enter, Tab, dragged M to {m_shown}: no run started")

        # press: the button disables, the bar moves, the result shows every term of S
        disabled, widths = press_and_watch(page, panel)
        panel.locator(".lr-history-card").first.wait_for(timeout=RUN_TIMEOUT)
        status = panel.locator(".lr-status").inner_text()
        assert disabled, "the button stayed enabled during the run"
        assert any(0 < w < 100 for w in widths), f"no progress shown during the run: {widths}"
        assert "run #1 done" in status, status
        scores = panel.locator(".lr-scores").inner_text()
        for term in ("S_t2i", "S_i2i", "S_dir", "S_cap", "weighted sum", "alpha = 2", "delta = 30"):
            assert term in scores, term
        card = panel.locator(".lr-history-card").first.inner_text()
        assert f"M={m_shown}" in card and "a yellow star" in card, card
        panel.screenshot(path=str(SHOTS / "lab_result.png"))
        log(t0, f"run #1: button disabled, bar widths {sorted(set(widths))}, S terms shown")

        # an empty prompt: one line, no traceback
        prompt.fill("")
        panel.locator("button.lr-run").click()
        page.wait_for_selector(".lr-status .lr-error", timeout=RUN_TIMEOUT)
        err = panel.locator(".lr-status").inner_text().strip()
        assert "prompt is empty" in err and "\n" not in err, err
        assert "Traceback" not in page.locator(".jp-Notebook").inner_text()
        assert history_cards(panel) == 1
        panel.locator(".lr-status").screenshot(path=str(SHOTS / "lab_error_line.png"))
        log(t0, f"empty prompt -> {err!r}")

        # upload a PNG, run on it: the history grows, two runs side by side; the caption named
        # the toy scene's red circle: cleared, so it is not searched for here
        upload_green(page, panel, tmp_path)
        # a 135-word prompt: all of it in view in its text area, all of it what the run edits
        prompt.fill(LONG_PROMPT)
        fits = "e => e.scrollHeight <= e.clientHeight + 2"
        for _ in range(50):                          # the kernel resizes it as the text comes
            if prompt.evaluate(fits):
                break
            page.wait_for_timeout(100)
        box = prompt.evaluate("e => [e.clientWidth, e.clientHeight, e.scrollHeight]")
        assert box[0] > 600 and box[2] <= box[1] + 2, f"the prompt does not fit: {box}"
        disabled, widths = press_and_watch(page, panel)
        page.wait_for_function("() => document.querySelectorAll('.lr-history-card').length === 2",
                               timeout=RUN_TIMEOUT)
        used = json.loads(panel.locator(".lr-history-card").nth(1).locator("div[title]")
                          .get_attribute("title"))
        assert disabled and used["image"] == "upload: green.png" and used["prompt"] == LONG_PROMPT
        assert panel.locator(".lr-compare .lr-compare-table").count() == 2
        log(t0, f"uploaded green.png, run #2 on it with a 135-word prompt (text area {box}); "
                "history has 2 runs, compared side by side")

        # export the run: result.json on disk, with the settings used
        panel.locator(".lr-export").click()
        page.wait_for_selector(".lr-status:has-text('exported run #2')", timeout=30_000)
        data = json.loads((jupyterlab["root"] / "lab-runs" / "run-2" / "result.json").read_text())
        assert data["prompt"] == LONG_PROMPT and data["config"]["M"] == m_shown
        panel.locator(".lr-history").scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / "lab_history.png"))
        log(t0, "exported run #2: lab-runs/run-2/result.json")
        page.close()


def test_panel_in_voila(browser, voila, tmp_path):
    t0 = time.monotonic()
    page = browser.new_page(viewport={"width": 1400, "height": 1800})
    with shot_on_failure(page, "voila"):
        page.goto(voila["url"], timeout=RUN_ALL_TIMEOUT)
        page.wait_for_selector(".lr-panel", timeout=RUN_ALL_TIMEOUT)
        panel = page.locator(".lr-panel")
        panel.locator("button.lr-run").wait_for()
        log(t0, "Voila rendered the panel")
        m_shown = drag_m(page, panel)
        page.wait_for_timeout(1000)                 # time for a run to start, if one would
        assert history_cards(panel) == 0 and progress_width(page) == 0
        run_and_check_scores(page, panel, 1)
        assert settings_used(panel, 0)["M"] == m_shown
        log(t0, f"Voila: dragged M to {m_shown}; run #1 used it, with progress and the S terms")
        err = bad_input_is_one_line(page, panel, "   ", "prompt is empty", 1)
        assert "Traceback" not in page.content()
        panel.screenshot(path=str(SHOTS / "voila_panel.png"))
        log(t0, f"Voila: empty prompt -> {err!r}")
        upload_green(page, panel, tmp_path)
        panel.locator(".lr-caption textarea").fill("the green square")
        panel.locator(".lr-prompt textarea").fill("a red circle")
        run_and_check_scores(page, panel, 2)
        assert settings_used(panel, 1)["image"] == "upload: green.png"
        log(t0, "Voila: uploaded green.png, run #2 on it")
        page.close()


def test_panel_in_notebook7(browser, notebook7, tmp_path):
    """Jupyter Notebook 7: the notebook opens on its kernel, runs all cells; a dragged slider
    runs nothing and its value is the one the next press uses; one edit per press with progress
    and the S terms; a bad prompt is one line; an upload is what the next run edits."""
    t0 = time.monotonic()
    page = browser.new_page(viewport={"width": 1400, "height": 2400})
    with shot_on_failure(page, "notebook7"):
        open_and_run_all(page, notebook7, "/notebooks/10_widgets.ipynb", t0)
        panel = page.locator(".lr-panel")
        panel.scroll_into_view_if_needed()
        assert "ipywidgets 8." in panel.locator(".lr-head").inner_text()
        prompt = panel.locator(".lr-prompt textarea")
        prompt.fill("a yellow star")
        prompt.press("Enter")
        m_shown = drag_m(page, panel)
        page.wait_for_timeout(1000)                 # time for a run to start, if one would
        assert history_cards(panel) == 0 and progress_width(page) == 0
        widths = run_and_check_scores(page, panel, 1)
        used = settings_used(panel, 0)
        assert used["prompt"] == "a yellow star" and used["M"] == m_shown, used
        panel.screenshot(path=str(SHOTS / "notebook7_result.png"))
        log(t0, f"dragged M to {m_shown}; run #1 used it: bar widths {sorted(set(widths))}, "
                "S terms shown")
        err = bad_input_is_one_line(page, panel, "a red apple " * 250, "tokens", 1)
        panel.locator(".lr-status").screenshot(path=str(SHOTS / "notebook7_error_line.png"))
        log(t0, f"over-long prompt -> {err!r}")
        upload_green(page, panel, tmp_path)
        panel.locator(".lr-caption textarea").fill("the green square")
        prompt.fill("a red circle")
        run_and_check_scores(page, panel, 2)
        used = settings_used(panel, 1)
        assert used["image"] == "upload: green.png" and used["caption"] == "the green square"
        log(t0, "uploaded green.png, run #2 on it")
        page.close()


def test_panel_with_ipywidgets7_in_jupyterlab(browser, jupyterlab_ipywidgets7, tmp_path):
    """ipywidgets 7 (what Colab ships) in the kernel and its widget manager in JupyterLab: the
    panel renders with ipywidgets 7's own controls, Enter runs nothing, tau does not move under
    'expected' (its tooltip says why) and does under 'st', a press runs with progress and the S terms, an upload (ipywidgets 7's value
    shape) is what the next run edits, and a bad prompt is one line."""
    t0 = time.monotonic()
    page = browser.new_page(viewport={"width": 1400, "height": 2400})
    with shot_on_failure(page, "lab_ipywidgets7"):
        open_and_run_all(page, jupyterlab_ipywidgets7, "/lab/tree/10_widgets.ipynb", t0)
        panel = page.locator(".lr-panel")
        panel.scroll_into_view_if_needed()
        # the kernel's ipywidgets, as the panel's head line names it (ipywidgets 8's front end
        # has no models for ipywidgets 7's controls: the panel renders only with its own)
        assert "ipywidgets 7." in panel.locator(".lr-head").inner_text()
        tau_tip = panel.locator(".lr-tau label").get_attribute("title") or ""
        assert "disabled" in tau_tip and "straight-through" in tau_tip, tau_tip
        tau_before = panel.locator(".lr-tau .widget-readout").inner_text()
        # ipywidgets 7 draws its log slider with jQuery UI, the others with noUiSlider
        tau = panel.locator(".lr-tau .noUi-handle, .lr-tau .ui-slider-handle")
        assert tau.count() == 1, panel.locator(".lr-tau").evaluate("e => e.outerHTML")
        drag(page, tau, 60)                                          # disabled: it stays
        page.wait_for_timeout(300)
        assert panel.locator(".lr-tau .widget-readout").inner_text() == tau_before
        panel.locator(".lr-estimator button", has_text="st").click()      # live: it moves
        page.wait_for_function("() => !document.querySelector('.lr-tau label').title"
                               ".startsWith('disabled')", timeout=10_000)
        drag(page, tau, 60)
        page.wait_for_timeout(300)
        tau_after = panel.locator(".lr-tau .widget-readout").inner_text()
        assert tau_after != tau_before, f"tau did not move under 'st' ({tau_before})"
        panel.locator(".lr-estimator button", has_text="expected").click()
        page.wait_for_function("() => document.querySelector('.lr-tau label').title"
                               ".startsWith('disabled')", timeout=10_000)
        log(t0, f"ipywidgets 7: tau fixed at {tau_before} under 'expected', "
                f"dragged to {tau_after} under 'st'")
        prompt = panel.locator(".lr-prompt textarea")
        prompt.fill("a yellow star")
        prompt.press("Enter")
        page.wait_for_timeout(1000)                 # time for a run to start, if one would
        assert history_cards(panel) == 0 and progress_width(page) == 0
        run_and_check_scores(page, panel, 1)
        log(t0, "ipywidgets 7: run #1 with progress and the S terms")

        upload_green(page, panel, tmp_path)
        panel.locator(".lr-caption textarea").fill("the green square")
        prompt.fill("a red circle")
        run_and_check_scores(page, panel, 2)
        assert "upload: green.png" in panel.locator(".lr-history-card").nth(1)\
            .locator("div[title]").get_attribute("title")
        assert panel.locator(".lr-compare .lr-compare-table").count() == 2
        panel.screenshot(path=str(SHOTS / "lab_ipywidgets7_result.png"))
        log(t0, "ipywidgets 7: uploaded green.png, run #2 on it, compared side by side")
        err = bad_input_is_one_line(page, panel, "", "prompt is empty", 2)
        log(t0, f"ipywidgets 7: empty prompt -> {err!r}")
        page.close()
