"""The drawn graph's text stays in its boxes when a browser draws it with a wider fallback font (DejaVu Sans):
checked in headless Chromium by tools/check_svg_fonts.py. Needs Chromium and DejaVu Sans (Debian packages
chromium and fonts-dejavu-core, which .ci/run installs); skips only when they are absent."""

import os

import pytest

from tests.helpers import ROOT, load_file
from tinygrad_cnn.viz import build

TOOL = ROOT / "tools" / "check_svg_fonts.py"
pytestmark = pytest.mark.slow  # Chromium


@pytest.fixture(scope="module")
def check():
    module = load_file(TOOL, "check_svg_fonts")
    if module.find_chromium() is None or not os.path.isdir(module.FONT_DIRS["DejaVu Sans"]):
        pytest.skip("needs chromium and fonts-dejavu-core (apt-get install -y chromium fonts-dejavu-core)")
    return module


def test_drawn_cnn_step_has_no_overflow_in_dejavu_sans(check, tmp_path, capsys):
    shot = tmp_path / "shot.png"
    assert check.main(["--screenshot", str(shot)]) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert "cnn_step.svg:" in out and "0 overflows" in out
    assert shot.stat().st_size > 10_000


def test_the_check_finds_text_run_together_without_the_room_left_for_a_wider_font(check, monkeypatch, capsys):
    monkeypatch.setattr(build, "SLACK", 0.0)
    monkeypatch.setattr(build, "BOLD_SLACK", 0.0)
    assert check.main(["--screenshot", ""]) == 1
    assert "overflow" in capsys.readouterr().out
