"""The README's (and docs/*.md's) code blocks run as written, its two commands are the ones CI runs, and its links
and the file names it mentions point at something that exists."""

import re

import numpy as np
import pytest

from tests.helpers import ROOT
from tinygrad_cnn import Tensor, nn

README = (ROOT / "README.md").read_text()
# README.md and docs/*.md: every python block of each runs
DOCS = {"README.md": README, **{f"docs/{p.name}": p.read_text() for p in sorted((ROOT / "docs").glob("*.md"))}}
BLOCKS = [(name, code) for name, text in DOCS.items() for code in re.findall(r"```python\n(.*?)```", text, re.S)]


@pytest.mark.parametrize("name, code", BLOCKS, ids=[f"{name}-block{i}" for i, (name, _) in enumerate(BLOCKS)])
def test_readme_python_blocks_run(name, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code, name, "exec"), namespace)
    tensors = [v for v in namespace.values() if isinstance(v, Tensor)]
    tensors += [p for v in namespace.values() if isinstance(v, nn.Module) for p in v.parameters()]
    params = [t for t in tensors if t.requires_grad and t.is_leaf]
    if "backward()" in code:  # every block that calls backward leaves a finite gradient on each parameter
        assert params and all(t.grad is not None and np.all(np.isfinite(t.grad)) for t in params)
    elif "check(" in code:  # the checker block: the learner's slip is named as the comment says
        assert not namespace["report"].ok and namespace["report"].tags == {"average_divisor"}
    else:
        assert "steps" in code  # the notebook block: plain numpy arrays
        assert np.isfinite(namespace["dW"]).all() and namespace["dW"].shape == namespace["W"].shape


def test_ci_runs_the_readme_test_command():
    ci_command = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci_command in README
    assert "pytest" in ci_command


# ----------------------------------------------------------------------------- links and file names
PACKAGE_DIRS = ("ops", "kernels", "nn", "optim", "viz", "explorer", "check")


def _prose(text: str) -> str:
    """The text without its fenced code blocks (a `# comment` there is no heading)."""
    return re.sub(r"```.*?```", "", text, flags=re.S)


def _github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation but - and _ dropped, spaces as -."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_readme_links_to_its_own_sections_resolve():
    text = _prose(README)
    anchors = {_github_anchor(h) for h in re.findall(r"^#{1,6} (.+)$", text, re.M)}
    links = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert len(links) > 10 and links <= anchors, sorted(links - anchors)


@pytest.mark.parametrize("name", sorted(DOCS))
def test_the_files_the_docs_name_exist(name):
    text = DOCS[name]
    paths = set(re.findall(r"\]\(([\w./-]+)\)", _prose(text)))  # pictures and links to files
    paths |= set(re.findall(r"`((?:tinygrad_cnn|examples|tools|benchmarks|docs|tests|\.ci)/[\w./*-]*)", text))
    found = {p for p in paths if not p.startswith("examples/out")}
    found |= {f"tinygrad_cnn/{p}" for p in re.findall(rf"`((?:{'|'.join(PACKAGE_DIRS)})/[\w.]+\.py)", text)}
    missing = [p for p in found if not any(ROOT.glob(p.rstrip("/")))]
    assert found and not missing, missing
