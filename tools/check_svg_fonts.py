"""Does the drawn graph's text fit its boxes when a browser substitutes a wider font? Checked in Chromium.

    apt-get install -y chromium fonts-dejavu-core
    PYTHONPATH=. python tools/check_svg_fonts.py                 # draws a CNN step, checks it with DejaVu Sans
    PYTHONPATH=. python tools/check_svg_fonts.py some.svg --screenshot shot.png

The SVGs Graphviz writes place every text by its own font metrics (Helvetica's); a browser draws them with
the fonts it has. This runs headless Chromium with a fontconfig setup that has only DejaVu Sans (wider than
Helvetica, Arial and Liberation Sans) and maps Helvetica, Arial, Liberation Sans, Nimbus Sans and sans-serif
to it, as on a Linux machine without the metric-compatible fonts. The page measures, in the browser, the
drawn extent of every text (first to last visible glyph) and reports:

- text running past the left or right edge of its node's outline,
- two texts of one line (e.g. the bold op name and its settings) drawn over each other,
- caption text running past the drawing's edges.

Exit status 0 when nothing overflows (by more than --tolerance points), 1 otherwise, 2 without Chromium.
Also saves a screenshot of the drawing as the browser shows it (--screenshot).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]
FONT_DIRS = {"DejaVu Sans": "/usr/share/fonts/truetype/dejavu",  # the wide fallback: the check
             "Liberation Sans": "/usr/share/fonts/truetype/liberation"}  # Helvetica's metrics: how it should look
SUBSTITUTED = ("Helvetica", "Arial", "Liberation Sans", "Nimbus Sans", "sans-serif", "Times", "serif")

FONTS_CONF = """<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "fonts.dtd">
<fontconfig>
  <dir>{fonts}</dir>
  <cachedir>{cache}</cachedir>
{aliases}
</fontconfig>
"""
ALIAS = '  <alias binding="same"><family>{name}</family><prefer><family>{font}</family></prefer></alias>'

# Runs in the page: measures each text's drawn extent against its node's outline, its line's neighbours
# and the drawing's edges; writes the findings as JSON into <pre id="result">.
MEASURE_JS = r"""
function extent(t) {
  const s = t.textContent, first = s.search(/\S/);
  if (first < 0) return null;
  const last = s.length - 1 - s.split('').reverse().join('').search(/\S/);
  const a = t.getExtentOfChar(first), b = t.getExtentOfChar(last);
  return {left: a.x, right: b.x + b.width, text: s.trim(), y: t.getAttribute('y')};
}
const svg = document.querySelector('svg'), tol = TOLERANCE, problems = [];
let texts = 0;
for (const node of svg.querySelectorAll('g.node')) {
  const box = node.querySelector('path, polygon, ellipse').getBBox();
  const name = node.querySelector('title').textContent;
  const lines = {};
  for (const t of node.querySelectorAll('text')) {
    const e = extent(t); if (!e) continue; texts++;
    const over = Math.max(e.right - (box.x + box.width), box.x - e.left);
    if (over > tol) problems.push({node: name, kind: 'past its box', text: e.text, by: +over.toFixed(2)});
    (lines[e.y] = lines[e.y] || []).push(e);
  }
  for (const line of Object.values(lines)) {
    line.sort((p, q) => p.left - q.left);
    for (let i = 1; i < line.length; i++) {
      const over = line[i - 1].right - line[i].left;
      if (over > tol) problems.push({node: name, kind: 'runs into',
        text: line[i - 1].text + ' | ' + line[i].text, by: +over.toFixed(2)});
    }
  }
}
const page = svg.querySelector('g.graph > polygon').getBBox();
for (const t of svg.querySelectorAll('g.graph > text')) {
  const e = extent(t); if (!e) continue; texts++;
  const over = Math.max(e.right - (page.x + page.width), page.x - e.left);
  if (over > tol) problems.push({node: 'caption', kind: 'past the drawing', text: e.text, by: +over.toFixed(2)});
}
const fonts = [...new Set([...svg.querySelectorAll('text')].map(t => getComputedStyle(t).fontFamily))];
document.getElementById('result').textContent = JSON.stringify({texts, problems, fonts});
"""


def find_chromium() -> str | None:
    return next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)


def one_font_env(tmp: Path, font: str) -> dict:
    """Environment whose fontconfig has only ``font``'s directory, the usual families all mapped to ``font``."""
    conf = tmp / "fonts.conf"
    aliases = "\n".join(ALIAS.format(name=name, font=font) for name in SUBSTITUTED)
    conf.write_text(FONTS_CONF.format(fonts=FONT_DIRS[font], cache=tmp / "fc-cache", aliases=aliases))
    return {**os.environ, "FONTCONFIG_FILE": str(conf), "HOME": str(tmp)}


def chromium(browser: str, tmp: Path, env: dict, *args: str) -> str:
    profile = tempfile.mkdtemp(dir=tmp, prefix="profile-")
    proc = subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                          text=True, env=env, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"chromium failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return proc.stdout


def svg_size(svg: str) -> tuple[int, int]:
    """The drawing's size in CSS pixels (Graphviz writes width="427pt" height="524pt")."""
    width, height = (float(re.search(rf'{key}="([0-9.]+)pt"', svg).group(1)) for key in ("width", "height"))
    return round(width * 4 / 3) + 16, round(height * 4 / 3) + 16


def measure(browser: str, svg: str, tmp: Path, env: dict, tolerance: float) -> dict:
    svg_body = svg[svg.index("<svg"):]
    script = MEASURE_JS.replace("TOLERANCE", repr(tolerance))
    page = tmp / "measure.html"
    page.write_text(f'<!DOCTYPE html><html><body style="margin:8px">{svg_body}<pre id="result"></pre>'
                    f"<script>{script}</script></body></html>")
    dom = chromium(browser, tmp, env, "--dump-dom", page.as_uri())
    found = re.search(r'<pre id="result">(.*?)</pre>', dom, re.S)
    if not found or not found.group(1):
        raise RuntimeError("the measuring script wrote no result: " + dom[-2000:])
    return json.loads(found.group(1).replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))


def screenshot(browser: str, svg_path: Path, svg: str, out: Path, tmp: Path, env: dict) -> None:
    width, height = svg_size(svg)
    page = tmp / "shot.html"
    page.write_text(f'<!DOCTYPE html><html><body style="margin:8px;background:white">{svg[svg.index("<svg"):]}'
                    "</body></html>")
    chromium(browser, tmp, env, f"--screenshot={out.resolve()}", f"--window-size={width},{height}", page.as_uri())


def draw_cnn_steps(tmp: Path) -> list[Path]:
    """Two drawings: the graph of examples/step_by_step.py (conv -> relu -> max pool -> mean, with gradients
    and rules), and the same cut to max_nodes=5 (a note and an edge label)."""
    import numpy as np

    from tinygrad_cnn import Tensor
    from tinygrad_cnn.viz import save_graph

    np.random.seed(1)
    A_prev, W, b = (Tensor(np.random.randn(*shape), requires_grad=True, name=name)
                    for shape, name in (((2, 5, 7, 4), "A_prev"), ((3, 3, 4, 8), "W"), ((8,), "b")))
    loss = A_prev.conv2d(W, b, stride=2, pad=1).relu().max_pool2d(2).flatten(1).mean()
    loss.backward()
    title = "loss = mean(flatten(max_pool2d(relu(conv2d(A_prev, W, b)))))"
    save_graph(loss, tmp / "cnn_step.svg", title=title, show_rule=True)
    save_graph(loss, tmp / "cnn_step_cut.svg", title=title, max_nodes=5)
    return [tmp / "cnn_step.svg", tmp / "cnn_step_cut.svg"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("svg", nargs="*", help="SVG files to check (default: draw a CNN step, in full and cut)")
    parser.add_argument("--screenshot", default="examples/out/svg_fonts_dejavu.png",
                        help="where to save a screenshot of the (first) drawing")
    parser.add_argument("--font", choices=sorted(FONT_DIRS), default="DejaVu Sans",
                        help="the one font the browser has (Liberation Sans has Helvetica's widths)")
    parser.add_argument("--tolerance", type=float, default=0.5, help="overflow allowed, in points")
    args = parser.parse_args(argv)
    browser = find_chromium()
    if browser is None:
        print("chromium not found: apt-get install -y chromium fonts-dejavu-core", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="svg-fonts-") as tmp:
        tmp = Path(tmp)
        env = one_font_env(tmp, args.font)
        paths = [Path(p) for p in args.svg] or draw_cnn_steps(tmp)
        failed = False
        for i, path in enumerate(paths):
            svg = path.read_text()
            result = measure(browser, svg, tmp, env, args.tolerance)
            problems = result["problems"]
            print(f"{path.name}: {result['texts']} texts drawn in {' / '.join(result['fonts'])}: "
                  f"{len(problems)} overflow" + ("" if len(problems) == 1 else "s")
                  + (f", worst {max(p['by'] for p in problems):.1f} pt" if problems else ""))
            for p in problems:
                print(f"  {p['node']:>8}  {p['kind']:<16} by {p['by']:5.1f} pt  {p['text']}")
            failed |= bool(problems)
            if i == 0 and args.screenshot:
                out = Path(args.screenshot)
                out.parent.mkdir(parents=True, exist_ok=True)
                screenshot(browser, path, svg, out, tmp, env)
                print(f"screenshot: {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
