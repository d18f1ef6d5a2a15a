"""The dashboard in a real browser: headless Chromium against `capstone dashboard`.

The dashboard is started on 127.0.0.1 as a user would start it, over the analysed database
shared with tests/test_dashboard.py. Chromium takes a warm-up shot (the first load of a
Streamlit app may be a skeleton), then a screenshot of every page after its data is shown;
the page's DOM dump must contain the expected text. PNGs are kept in artifacts/screenshots/.

Needs `chromium` on PATH (CI: `command -v chromium || apt-get install -y chromium`).
"""

from __future__ import annotations

import base64
import html
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ARTIFACTS, ROOT, free_port
from tests.test_dashboard import analyzed_database

SHOTS = ARTIFACTS / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not installed (apt-get install -y chromium): browser test skipped",
)

# page path -> texts its DOM must contain once data is shown
PAGES = {
    "videos": ("/", ["Videos", "Upload a video", "Completed analyses"]),
    "video": ("/video?video=bikes", ["Events timeline", "keyframe thumbnails", "Trails & heatmap"]),
    "events": ("/events?video=pets09", ["Matching events", "Export CSV", "showing 1"]),
    "search": ("/search?q=person", ["results", "found by", "pets09 · frame"]),
    "ask": ("/ask?q=how+many+people+walked+left%3F", ["Understood", "person dir:left", "Answer"]),
    "ask-where": ("/ask?q=where+were+the+people%3F", ["Understood", "where for", "where: pets09"]),
    "ask-fastest": (
        "/ask?q=show+me+the+fastest+person",
        ["Understood", "person sort:-speed limit:1", "The fastest of", "px/s", "1 moment"],
    ),
    "ask-per-period": (
        "/ask?q=how+many+people+per+second%3F",
        ["Understood", "how many per 0:01.0 of", "(0:00.0-0:01.0)", "(0:01.0-0:02.0)", "Answer"],
    ),
    "ask-by": (
        "/ask?q=which+direction+did+most+people+walk%3F",
        ["Understood", "counted by direction", "by direction, most first", "moving"],
    ),
    "ask-yes-no": (
        "/ask?q=were+there+any+people+not+walking+left%3F",
        ["whether there are any", "person -dir:left", "Answer", "Yes"],
    ),
    "ask-in-view": (
        "/ask?q=on+average%2C+how+many+people+were+in+view%3F&video=pets09",
        [
            "how many at a time on average",
            "in view at a time on average in pets09",
            "In view at a time, on average",
            "At most at once",
        ],
    ),
    "pipeline": ("/pipeline", ["Recent analyses", "Analyses completed", "No queue configured"]),
}


@pytest.fixture(scope="module")
def dashboard_url(
    request: pytest.FixtureRequest, pg_server_url: str, template_db: str
) -> Iterator[str]:
    """`capstone dashboard` serving the analysed database on a free port."""
    db = analyzed_database(request, pg_server_url, template_db)
    port = free_port()
    env = {**os.environ, "DATABASE_URL": db, "CAPSTONE_HOME": str(ROOT / ".capstone" / "test")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "capstone", "dashboard", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            out = proc.stdout.read().decode() if proc.stdout else ""
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"capstone dashboard did not come up: {out[-2000:]}")
        time.sleep(0.3)
    yield url
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


BASE_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
    "--hide-scrollbars",
]


class DevToolsBrowser:
    """One headless Chromium driven over the DevTools protocol (screenshots once rendered).

    `--screenshot` shoots when virtual time runs out, which can be before Streamlit's
    websocket has delivered the page; here the shot waits until the script has finished
    (`data-test-script-state` is `notRunning`), the expected text is on the page and the
    images have loaded.
    """

    def __init__(self, profile: str) -> None:
        import websocket

        assert CHROMIUM is not None
        self.port = free_port()
        self.proc = subprocess.Popen(
            [CHROMIUM, *BASE_FLAGS, f"--user-data-dir={profile}",
             f"--remote-debugging-port={self.port}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list") as r:
                    pages = [t for t in json.load(r) if t["type"] == "page"]
                if pages:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "chromium DevTools did not come up"
            time.sleep(0.2)
        self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=60)
        self.next_id = 0

    def call(self, method: str, **params: object) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == self.next_id:
                assert "error" not in reply, reply["error"]
                return reply["result"]

    def evaluate(self, expression: str) -> object:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    def shoot(self, url: str, expected: list[str], path: Path, timeout: float = 60) -> str:
        """Open `url`, wait until rendered with `expected` text, save PNG + DOM; page text + DOM."""
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        body = ""
        while time.monotonic() < deadline:
            time.sleep(0.5)
            state = self.evaluate(
                "(() => { const a = document.querySelector('[data-test-script-state]');"
                " return a ? a.getAttribute('data-test-script-state') : null; })()"
            )
            body = str(self.evaluate("document.body ? document.body.innerText : ''") or "")
            images = self.evaluate("Array.from(document.images).every(i => i.complete)")
            if state == "notRunning" and images and all(t in body for t in expected):
                break
        time.sleep(1.0)  # let charts finish their transitions
        png = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(png))
        dom = str(self.evaluate("document.documentElement.outerHTML") or "")
        path.with_suffix(".dom.html").write_text(dom)  # the DOM dump, kept with the PNG
        return body + "\n" + html.unescape(dom)

    def close(self) -> None:
        self.ws.close()
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(15)


def test_every_page_renders_in_chromium(dashboard_url: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        browser = DevToolsBrowser(profile)
        try:
            # warm-up: the first load of a Streamlit app may still be its skeleton
            browser.shoot(dashboard_url + "/", ["Videos"], SHOTS / "00-warm-up.png", timeout=30)
            for i, (name, (path, expected)) in enumerate(PAGES.items(), start=1):
                text = browser.shoot(dashboard_url + path, expected, SHOTS / f"{i:02d}-{name}.png")
                missing = [t for t in expected if t not in text]
                assert not missing, f"{name}: {missing} not rendered"
                assert "Traceback" not in text and "internal error" not in text, name
                assert (SHOTS / f"{i:02d}-{name}.png").stat().st_size > 20_000, name
        finally:
            browser.close()
