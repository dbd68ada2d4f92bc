"""The HTML report as a reader sees it: rendered by headless Chromium (Debian's `chromium`), skipped where
it is not installed. No horizontal overflow at 1280 (and 1024) pixels, schedules on one line, every row one
line tall, figures before the layer table, sticky table headers."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium ('chromium') is not installed")

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# Written into the page after it has loaded; --dump-dom then prints it with the DOM.
PROBE = """<script>
window.addEventListener('load', () => {
  const root = document.documentElement;
  const layers = [...document.querySelectorAll('h2')].find(h => h.textContent === 'Layers');
  let box = layers.nextElementSibling;
  while (!(box.matches('table') || box.querySelector('table'))) box = box.nextElementSibling;
  const table = box.matches('table') ? box : box.querySelector('table');
  const heights = [...table.querySelectorAll('tbody tr')].map(tr => tr.getBoundingClientRect().height);
  const check = {
    scrollWidth: root.scrollWidth, innerWidth: window.innerWidth,
    wrappedSchedules: [...table.querySelectorAll('td code')].filter(c => c.getClientRects().length > 1).length,
    schedules: table.querySelectorAll('td code').length,
    rowHeights: [Math.min(...heights), Math.max(...heights)],
    figureTop: document.querySelector('figure').getBoundingClientRect().top,
    layersTop: layers.getBoundingClientRect().top,
    headerPosition: getComputedStyle(table.querySelector('thead th')).position,
  };
  document.body.setAttribute('data-check', JSON.stringify(check));
});
</script>"""


@pytest.fixture(scope="module")
def page() -> str:
    """The report of ResNet-18 at 64 KiB: 21 layers, schedules up to five loops, long layer names."""
    from convsched.core.arch import Architecture
    from convsched.report.html import build_report, render
    from convsched.networks import load_target
    data = build_report(load_target("resnet18"), Architecture.from_flags(None, None).with_capacity(64 * 1024),
                        samples=2)
    return render(data, "html").text


def render_check(page: str, width: int, folder: Path) -> dict:
    probe = folder / "probe.html"
    probe.write_text(page.replace("</body>", PROBE + "</body>"))
    profile = tempfile.mkdtemp(prefix="chromium-profile-", dir=folder)
    r = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},900",
                        "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()],
                       capture_output=True, text=True, timeout=120)
    found = re.search(r'data-check="([^"]*)"', r.stdout)
    assert found, (r.returncode, r.stderr[-2000:])
    return json.loads(html.unescape(found.group(1)))


@pytest.mark.parametrize("width", [1280, 1024])
def test_report_has_no_horizontal_overflow(page, width, tmp_path):
    check = render_check(page, width, tmp_path)
    assert check["innerWidth"] == width
    assert check["scrollWidth"] <= check["innerWidth"], check
    assert check["schedules"] == 21 and check["wrappedSchedules"] == 0, check
    low, high = check["rowHeights"]
    assert high < 1.5 * low, check                     # every row is one line tall
    assert check["figureTop"] < check["layersTop"], check
    assert check["headerPosition"] == "sticky"
