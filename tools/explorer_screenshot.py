"""A screenshot of the explorer page in headless Chromium, driven by Playwright (the README's picture).

    apt-get install -y chromium          # Playwright drives the system Chromium: nothing is downloaded
    PYTHONPATH=. python tools/explorer_screenshot.py                     # -> docs/explorer.png
    PYTHONPATH=. python tools/explorer_screenshot.py page.html --node conv2.W --out shot.png

Without a page it makes one: a training step of the digits CNN (random images, so no data set is needed) under
``profile()``, saved with ``save_html``. The shot shows the page with a node chosen and one of its explained
entries open. ``launch`` is how the tests start the browser too (tests/test_explorer.py).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def find_chromium() -> str | None:
    return next(filter(None, map(shutil.which, ("chromium", "chromium-browser"))), None)


def launch(playwright):
    """The system Chromium, headless, under Playwright (``playwright install`` is never needed)."""
    return playwright.chromium.launch(executable_path=find_chromium(), args=CHROMIUM_ARGS)


def digits_step_page(path: Path) -> Path:
    """Save the explorer of one profiled training step of the digits CNN (4 random 8x8 images) to ``path``."""
    import numpy as np

    from tinygrad_cnn import Tensor, nn, profile, save_html
    from tinygrad_cnn.functional import cross_entropy

    rng = np.random.default_rng(0)
    model = nn.Sequential(
        conv1=nn.Conv2d(1, 16, 3, pad=1, seed=rng), relu1=nn.ReLU(), pool1=nn.MaxPool2d(2),
        conv2=nn.Conv2d(16, 32, 3, pad=1, seed=rng), relu2=nn.ReLU(), pool2=nn.MaxPool2d(2),
        flatten=nn.Flatten(), fc=nn.Linear(2 * 2 * 32, 10, init="glorot", seed=rng))
    x, y = rng.uniform(0, 1, (4, 8, 8, 1)).astype(np.float32), rng.integers(0, 10, 4)
    with profile() as prof:
        loss = cross_entropy(model(Tensor(x, name="x")), y)
        loss.backward()
    loss.name = "loss"
    return Path(save_html(loss, path, profile=prof))


def screenshot(page_path: Path, out: Path, node: str, width: int = 1400, height: int = 860) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": width, "height": height})
        page.goto(page_path.resolve().as_uri())
        page.click(f'g.node[data-node="{node}"]')
        goto = page.query_selector("[data-goto]")
        if goto:
            goto.click()
        page.eval_on_selector("#panel", "panel => panel.scrollTo(0, panel.scrollHeight)")
        page.screenshot(path=str(out))
        browser.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", nargs="?", help="an explorer page (default: make one of the digits CNN)")
    parser.add_argument("--node", default="conv1.W", help="the node to show (its data-node)")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "docs" / "explorer.png"))
    args = parser.parse_args(argv)
    if find_chromium() is None:
        print("needs chromium (apt-get install -y chromium)")
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(args.page) if args.page else digits_step_page(Path(tmp) / "explorer.html")
        screenshot(page, Path(args.out), args.node)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
