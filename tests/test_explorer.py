"""The explorer in a real browser: headless Chromium driven by Playwright (the system Chromium, launched by path:
nothing is downloaded). Skips only when Chromium or Playwright is absent (.ci/run installs both).

One browser for the module; the graph is one profiled training step of the digits CNN (random images)."""

import json
import os
import re
import socket
import struct
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import ROOT, load_file
from tinygrad_cnn import Tensor, explain, explore, nn, profile, save_html
from tinygrad_cnn.explorer import node_names, nodes
from tinygrad_cnn.functional import cross_entropy

TOOL = ROOT / "tools" / "explorer_screenshot.py"
# the hooks issue 19 names (the page keeps them; README.md and the explorer's docstring list them)
PANEL_FIELDS = ("op", "rule", "created-at", "shape", "dtype", "value-mean", "value-std", "grad-norm", "forward-ms",
                "backward-ms", "saved-bytes")
HOOKS = ("data-node", "#panel", "data-field", "data-value", "data-entry", "data-explained", "#explain", "data-total",
         "data-grad")


def load_tool():
    return load_file(TOOL, "explorer_screenshot")


@pytest.fixture(scope="module")
def browser():
    tool = load_tool()
    if tool.find_chromium() is None:
        pytest.skip("needs chromium (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (pip install playwright)")
    with sync_api.sync_playwright() as p:
        chromium = tool.launch(p)
        yield chromium
        chromium.close()


class Step:
    """One profiled training step of the digits CNN on 4 random images."""

    def __init__(self):
        rng = np.random.default_rng(0)
        self.model = nn.Sequential(
            conv1=nn.Conv2d(1, 16, 3, pad=1, seed=rng), relu1=nn.ReLU(), pool1=nn.MaxPool2d(2),
            conv2=nn.Conv2d(16, 32, 3, pad=1, seed=rng), relu2=nn.ReLU(), pool2=nn.MaxPool2d(2),
            flatten=nn.Flatten(), fc=nn.Linear(2 * 2 * 32, 10, init="glorot", seed=rng))
        x, y = rng.uniform(0, 1, (4, 8, 8, 1)).astype(np.float32), rng.integers(0, 10, 4)
        with profile() as self.prof:
            self.loss = cross_entropy(self.model(Tensor(x, name="x")), y)
            self.loss.backward()
        self.loss.name = "loss"
        self.nodes = node_names(self.loss)


@pytest.fixture(scope="module")
def step():
    return Step()


@pytest.fixture(scope="module")
def saved(step, tmp_path_factory):
    path = tmp_path_factory.mktemp("explorer") / "step.html"
    W = step.model.conv1.W
    save_html(step.loss, path, profile=step.prof, explain=[(W, (0, 0, 0, 0))])
    return path


@pytest.fixture()
def saved_page(browser, saved):
    """The saved page open in a fresh tab, and every request it makes."""
    page = browser.new_page(viewport={"width": 1300, "height": 850})
    requests, errors = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(saved.as_uri())
    yield page, requests
    page.close()
    assert errors == []


def panel_fields(page) -> dict:
    """{field: (text, data-value)} of the panel shown."""
    rows = page.eval_on_selector_all("#panel [data-field]",
                                     "els => els.map(e => [e.dataset.field, e.textContent, e.dataset.value ?? null])")
    return {field: (text, value) for field, text, value in rows}


@pytest.mark.slow  # Chromium
def test_every_node_of_the_digits_cnn_shows_pythons_numbers(saved_page, step):
    page, _ = saved_page
    drawn = page.eval_on_selector_all("g.node[data-node]", "els => els.map(e => e.getAttribute('data-node'))")
    assert sorted(drawn) == sorted(step.nodes) and {"conv1.W", "conv2.b", "fc.W", "x", "loss"} <= set(drawn)
    for name, t in step.nodes.items():
        page.click(f'g.node[data-node="{name}"]')
        assert page.get_attribute("#panel", "data-node") == name
        fields = panel_fields(page)
        data64 = t.data.astype(np.float64)
        assert fields["op"][0] == (t.op_label if t.op else "")
        assert fields["rule"][0] == (t.rule or "")
        assert fields["shape"][0] == str(t.shape) and fields["dtype"][0] == t.dtype.name
        assert float(fields["value-mean"][1]) == pytest.approx(data64.mean(), rel=1e-12, abs=1e-300)
        assert float(fields["value-std"][1]) == pytest.approx(data64.std(), rel=1e-12, abs=1e-300)
        stats = step.prof.node(t)
        if t.grad is not None:
            norm = np.linalg.norm(t.grad.astype(np.float64).reshape(-1))
            assert float(fields["grad-norm"][1]) == pytest.approx(norm, rel=1e-12)
        else:
            assert fields["grad-norm"] == ("", None)  # x: an input, no gradient
        if stats is None:
            assert t.is_leaf and fields["created-at"][0] == ""
            continue
        assert set(PANEL_FIELDS) <= set(fields)  # an op's panel, profiled: every field the issue names
        assert fields["created-at"][0] == stats.where and "test_explorer.py:" in stats.where
        assert float(fields["forward-ms"][1]) == pytest.approx(stats.forward * 1e3, rel=1e-12)
        assert float(fields["backward-ms"][1]) == pytest.approx(stats.backward * 1e3, rel=1e-12)
        assert int(fields["saved-bytes"][1]) == stats.saved_bytes


EXPLAIN_STATE = """([entry, goto]) => {
  if (goto) document.querySelector(`[data-goto="${entry}"]`).click();
  const out = document.getElementById("explain"), cell = document.querySelector(
    `[data-map="grad"] .cell[data-entry="${entry}"]`);
  return {entry: out.dataset.entry, total: out.dataset.total, grad: out.dataset.grad,
          precomputed: out.hasAttribute("data-precomputed"), cell: cell !== null,
          explained: cell !== null && cell.hasAttribute("data-explained")};
}"""


@pytest.mark.slow  # Chromium
def test_explained_entries_add_up_to_the_gradient(saved_page, step):
    """Each node's precomputed entries (its 3 largest |grad|): the explanation's total (the sum of its terms) and
    its gradient entry agree with x.grad[index]; the first of each node is clicked on its heat-map cell."""
    page, _ = saved_page
    checked = clicked_cells = 0
    for name, t in step.nodes.items():
        if t.grad is None:
            continue
        page.click(f'g.node[data-node="{name}"]')
        entries = page.eval_on_selector_all("#panel [data-goto]", "els => els.map(e => e.dataset.goto)")
        assert len(entries) >= min(3, t.size)
        for entry in entries:
            found = page.evaluate(EXPLAIN_STATE, [entry, True])  # its button: the image holding it, the explanation
            if found["cell"] and clicked_cells < checked // 3 + 1:  # past the caps an entry has its button only
                page.click(f'[data-map="grad"] .cell[data-entry="{entry}"]')
                found = page.evaluate(EXPLAIN_STATE, [entry, False])
                clicked_cells += 1
            assert found["entry"] == entry and found["precomputed"] and found["explained"] == found["cell"]
            index = tuple(int(i) for i in entry.split(",")) if entry else ()
            grad = float(found["grad"])
            assert grad == pytest.approx(float(t.grad[index]), rel=1e-12)
            assert float(found["total"]) == pytest.approx(grad, rel=1e-5, abs=1e-8)  # float32 terms, float64 sum
            checked += 1
    assert checked >= 3 * len([t for t in step.nodes.values() if t.grad is not None and t.size >= 3])
    assert clicked_cells >= 5
    page.click('g.node[data-node="conv1.W"]')
    assert page.query_selector('[data-map="grad"] .cell[data-entry="0,0,0,0"][data-explained]')  # explain=[...]


@pytest.mark.slow  # Chromium
def test_an_entry_not_precomputed_shows_the_python_line(saved_page):
    page, _ = saved_page
    page.click('g.node[data-node="conv1.W"]')
    cell = page.query_selector('[data-map="grad"] .cell:not([data-explained])')
    entry = cell.get_attribute("data-entry")
    cell.click()
    text = page.inner_text("#explain")
    assert f"print(explain(root, x, ({entry.replace(',', ', ')})))" in text and '"conv1.W"' in text
    assert page.get_attribute("#explain", "data-total") is None


MAP_CELLS = """kind => [...document.querySelectorAll(`[data-map="${kind}"] .cell`)].map(
  cell => [cell.dataset.entry, Number(cell.title.split(" = ")[1])])"""


@pytest.mark.slow  # Chromium
def test_heat_maps_show_each_entry_where_its_index_says_one_map_per_channel_capped(saved_page, step):
    """Every cell of each node's value and gradient maps holds the entry its data-entry names (float32); an NHWC
    tensor shows one map per channel of the image chosen, at most 16 ("showing first 16 of 32 channels"); a 0-D,
    1-D or 2-D tensor one map, its rows and columns capped at 64 with a note."""
    page, _ = saved_page
    channels = set()
    for name, t in step.nodes.items():
        page.click(f'g.node[data-node="{name}"]')
        for kind, a in (("value", t.data), ("grad", t.grad)):
            cells = page.evaluate(MAP_CELLS, kind)
            assert (cells == []) == (a is None)
            for entry, shown in cells:
                index = tuple(int(i) for i in entry.split(",")) if entry else ()
                assert shown == float(np.float32(a[index])), (name, kind, entry)
        maps = page.eval_on_selector_all('[data-map="value"] .map', "els => els.length")
        notes = page.eval_on_selector_all("#panel .notes", "els => els.map(e => e.textContent)")
        if t.ndim == 4 and t.op == "relu":  # an NHWC image batch
            m, H, W, C = t.shape
            assert maps == min(C, 16) and notes == ([f"showing first 16 of {C} channels"] if C > 16 else [])
            assert {entry for entry, _ in page.evaluate(MAP_CELLS, "value")} == {
                f"0,{h},{w},{c}" for h in range(H) for w in range(W) for c in range(min(C, 16))}
            channels.add(C)
        elif t.ndim <= 2:
            sides = zip(t.shape, ("row", "column")[2 - t.ndim:], strict=True)
            assert maps == 1 and notes == [f"showing first 64 of {n} {what}s" for n, what in sides if n > 64]
    assert channels == {16, 32}


@pytest.mark.slow  # Chromium
def test_the_saved_page_requests_nothing_but_itself(saved_page, saved, step):
    page, requests = saved_page
    page.evaluate("""() => {
      for (const node of document.querySelectorAll("g.node[data-node]")) {
        node.dispatchEvent(new MouseEvent("click", {bubbles: true}));
        for (const cell of document.querySelectorAll("[data-map] .cell[data-explained]")) cell.click();
        document.querySelector("[data-map] .cell").click();
      }
    }""")
    assert page.get_attribute("#panel", "data-node") == "loss"
    page.click("#zoom-in")
    page.click("#zoom-fit")
    assert requests == [saved.as_uri()]
    html = saved.read_text()
    assert "http://" not in html.replace("http://www.w3.org/", "") and "https://" not in html


@pytest.mark.slow  # Chromium
def test_the_keyboard_reaches_every_node_and_explains_an_entry(saved_page, step):
    page, _ = saved_page
    reached = []
    for _ in range(len(step.nodes) + 8):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("document.activeElement.getAttribute('data-node')"))
    assert set(step.nodes) <= set(reached)
    page.focus('g.node[data-node="conv2.W"]')
    page.keyboard.press("Enter")
    assert page.get_attribute("#panel", "data-node") == "conv2.W"
    for _ in range(80):  # on from the node, no mouse: the nodes after it, the panel's buttons, each map's first cell
        page.keyboard.press("Tab")
        if page.evaluate("""document.activeElement.matches('[data-map="grad"] .cell')"""):
            break
    assert page.evaluate("document.activeElement.dataset.entry") == "0,0,0,0"
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    assert page.get_attribute("#explain", "data-entry") == "1,1,0,0"  # W (f_h, f_w, C_in, C_out): row 1, col 1
    before = page.get_attribute("svg", "width")
    page.focus("#graph")
    page.keyboard.press("+")
    assert float(page.get_attribute("svg", "width")) > float(before)


@pytest.mark.slow  # Chromium
def test_a_large_graph_is_summarised_as_draw_does(browser, tmp_path):
    x = Tensor.randn(3, 4, seed=0, requires_grad=True, name="x")
    y = x
    for _ in range(30):
        y = (y * 1.01).tanh()
    loss = y.sum()
    loss.backward()
    path = save_html(loss, tmp_path / "long.html", max_nodes=20, explain_top=1)
    page = browser.new_page()
    page.goto(Path(path).as_uri())
    assert page.eval_on_selector_all("g.node[data-node]", "els => els.length") == 20
    assert "over max_nodes=20" in page.text_content("svg")
    page.close()


@pytest.mark.slow  # Chromium
def test_the_readme_screenshot_comes_from_the_same_playwright_setup(tmp_path):
    """tools/explorer_screenshot.py (docs/explorer.png) runs as the README says: a PNG of the page, 1400x860."""
    if load_tool().find_chromium() is None:
        pytest.skip("needs chromium (apt-get install -y chromium)")
    pytest.importorskip("playwright.sync_api", reason="needs playwright (pip install playwright)")
    shot = tmp_path / "shot.png"
    done = subprocess.run([sys.executable, str(TOOL), "--out", str(shot)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0 and f"wrote {shot}" in done.stdout, done.stderr
    for png in (shot, ROOT / "docs" / "explorer.png"):
        head = png.read_bytes()[:24]
        assert head[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", head[16:24]) == (1400, 860)


# ----------------------------------------------------------------------------- the live page
@pytest.fixture(scope="module")
def live(step):
    with explore(step.loss, profile=step.prof, open_browser=False) as server:
        yield server


def get(url: str, host: str | None = None):
    """(status, body) of a GET, 4xx included."""
    request = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.mark.slow  # Chromium
def test_the_live_page_explains_an_entry_on_demand(browser, live, step):
    page = browser.new_page(viewport={"width": 1300, "height": 850})
    page.goto(live.url)
    assert page.query_selector("[data-explained]") is None  # nothing precomputed: all on demand
    relu = next(name for name, t in step.nodes.items() if t.op == "relu")
    for name, entry, sample in (("conv1.W", "1,2,0,5", "0"), (relu, "2,3,1,7", "2")):
        page.click(f'g.node[data-node="{name}"]')
        page.click(f'[data-sample="{sample}"]')  # conv1.W: input channel 0; the relu's output: image 2
        page.click(f'[data-map="grad"] .cell[data-entry="{entry}"]')
        page.wait_for_selector(f'#explain[data-entry="{entry}"][data-total]')
        index = tuple(int(i) for i in entry.split(","))
        why = explain(step.loss, step.nodes[name], index)
        assert float(page.get_attribute("#explain", "data-total")) == pytest.approx(why.total, rel=1e-12)
        assert float(page.get_attribute("#explain", "data-grad")) == float(step.nodes[name].grad[index])
        assert why.table().splitlines()[0] in page.inner_text("#explain")
    page.close()


def test_requests_without_the_token_are_refused(live):
    base = f"http://127.0.0.1:{live.port}"
    assert get(live.url)[0] == 200
    assert get(base + "/")[0] == 403
    assert get(base + "/?token=wrong")[0] == 403
    assert get(base + "/explain?node=conv1.W&entry=0,0,0,0")[0] == 403
    assert get(live.url, host=f"attacker.example:{live.port}")[0] == 403  # a DNS-rebinding page
    status, body = get(f"{base}/explain?token={live.token}&node=conv1.W&entry=0,0,0,0")
    assert status == 200 and json.loads(body)["entry"] == "0,0,0,0"
    status, body = get(f"{base}/explain?token={live.token}&node=nope&entry=0")
    assert status == 400 and "no drawn tensor is called 'nope'" in json.loads(body)["error"]
    status, body = get(f"{base}/explain?token={live.token}&node=conv1.W&entry=9,0,0,0")
    assert status == 400 and "not an index of a tensor of shape (3, 3, 1, 16)" in json.loads(body)["error"]
    assert get(f"{base}/other?token={live.token}")[0] == 404


def test_the_server_listens_on_127_0_0_1_only_and_stops_on_close(step):
    server = explore(step.loss, open_browser=False)
    assert server.host == "127.0.0.1" and server.url.startswith(f"http://127.0.0.1:{server.port}/?token=")
    assert server._httpd.socket.getsockname()[0] == "127.0.0.1"
    assert len(server.token) >= 32 and server.token != explore(step.loss, open_browser=False).token
    server.close()
    server.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=5).close()
    assert "closed" in repr(server)


def test_in_jupyter_explore_also_shows_the_page_inline(step, monkeypatch):
    ipython = pytest.importorskip("IPython")
    import IPython.display
    shown = []
    monkeypatch.setattr(ipython, "get_ipython", lambda: type("Shell", (), {"kernel": object()})(), raising=False)
    monkeypatch.setattr(IPython.display, "display", shown.append)
    with explore(step.loss, open_browser=False) as server:
        (frame,) = shown
        assert isinstance(frame, IPython.display.IFrame) and frame.src == server.url
    assert "IPython" in sys.modules


# ----------------------------------------------------------------------------- without a browser
def test_node_names_are_the_drawn_names_made_unique():
    a = Tensor([1.0, 2.0], requires_grad=True, name="h")
    b = Tensor([3.0, 4.0], requires_grad=True, name="h")
    c = Tensor([5.0, 6.0], requires_grad=True, name="n4")  # the id of the unnamed constant 2.0 (n4)
    loss = ((a * b) + c * 2.0).sum()
    names = node_names(loss)
    assert len(names) == 8 and names["h@n0"] is a and names["h@n1"] is b
    assert names["n4@n3"] is c and names["n4@n4"].data == 2.0 and names["n2"].op == "mul"
    assert node_names(loss, params={"W": a})["W"] is a


def test_save_html_refuses_to_explain_a_tensor_not_drawn(tmp_path):
    x = Tensor([1.0, 2.0], requires_grad=True, name="x")
    loss = (x * x).sum()
    loss.backward()
    with pytest.raises(ValueError, match="explain= names a tensor that is not drawn"):
        save_html(loss, tmp_path / "page.html", explain=[(Tensor([1.0]), (0,))])
    path = save_html(loss, tmp_path / "page.html", explain=[(x, 1)], explain_top=0)
    data = json.loads(Path(path).read_text().split('id="explorer-data">')[1].split("</script>")[0])
    assert list(data["nodes"]["x"]["explained"]) == ["1"] and data["nodes"]["x"]["top"] == []
    assert "default-src 'none'" in Path(path).read_text()


def test_heat_maps_read_a_filter_bank_from_the_ops_declared_facts_not_its_name():
    """Input 1 of the library's conv2d / conv_transpose2d is a filter bank, its channel axes named per op
    (conv_transpose2d's W is (f_h, f_w, C_out, C_in)); a user's op named "conv2d" is not the library's."""
    x = Tensor(np.ones((2, 8, 8, 3)), requires_grad=True)
    W = Tensor(np.ones((3, 3, 3, 4)), requires_grad=True)
    conv = x.conv2d(W)
    up = conv.conv_transpose2d(Tensor(np.ones((3, 3, 5, 4)), requires_grad=True))
    assert nodes.map_axes(W, [conv]) == (2, 3, 0, 1)
    assert nodes.heat_maps(W, [conv])["names"] == ["input channel", "output channel", "row", "column"]
    assert nodes.heat_maps(up.parents[1], [up])["names"] == ["output channel", "input channel", "row", "column"]
    b = Tensor(np.ones((2, 8, 8, 3)), requires_grad=True)
    mine = Tensor.from_op(x.data + b.data, (x, b), "conv2d", lambda g: (g, g), rule="da = g, db = g")  # a user op
    assert nodes.map_axes(b, [mine]) == (0, 3, 1, 2)
    assert nodes.heat_maps(b, [mine])["names"] == ["image", "channel", "row", "column"]


def test_a_closed_server_keeps_nothing_alive():
    """A live server holds its graph while it serves (its thread does); close() lets both go: the atexit hook is
    taken off, so no reference is left until the process ends."""
    import gc
    import weakref
    x = Tensor(np.ones(3), requires_grad=True)
    loss = (x * x).sum()
    loss.backward()
    server = explore(loss, open_browser=False)
    graph, running = weakref.ref(loss), weakref.ref(server)
    del loss
    gc.collect()
    assert graph() is not None  # served
    server.close()
    del server
    gc.collect()
    assert running() is None and graph() is None


def test_the_page_draws_what_draw_draws_stale_marks_included(tmp_path):
    """The page's SVG is draw()'s (labels, rules, profile rows, stale marks), with the hooks added to each node."""
    from tinygrad_cnn.optim import SGD
    W = Tensor(np.array([[1.0, -2.0], [3.0, 4.0]]), requires_grad=True, name="W")
    with profile() as prof:
        loss = (Tensor(np.array([[1.0, -1.0]]), name="x") @ W).relu().sum()
        loss.backward()
    SGD([W], lr=0.1).step()  # W changes after the forward: stale in the drawing
    html = Path(save_html(loss, tmp_path / "page.html", profile=prof)).read_text()
    shown = re.sub(r' data-node="[^"]*" tabindex="0" role="button" aria-label="[^"]*"', "",
                   html[html.index("<svg"):html.index("</svg>")])
    drawn = loss.draw(show_rule=True, profile=prof).pipe(format="svg", encoding="utf-8")
    assert shown == drawn[drawn.index("<svg"):drawn.index("</svg>")]
    assert "stale: data replaced after use (version 0 &#45;&gt; 1)" in shown and " ms, bwd " in shown


def test_the_server_stops_when_the_process_ends(tmp_path):
    """A script that never calls close() still exits (the server's thread is a daemon), and its port is free."""
    script = tmp_path / "serve.py"
    script.write_text("from tinygrad_cnn import Tensor, explore\n"
                      "x = Tensor([1.0, 2.0], requires_grad=True)\n"
                      "loss = (x * x).sum()\nloss.backward()\n"
                      "print(explore(loss, open_browser=False).port, flush=True)\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", int(done.stdout)), timeout=5).close()


def test_the_hooks_are_listed_in_the_readme_and_the_explorers_docstring():
    import tinygrad_cnn.explorer as explorer
    for doc in ((ROOT / "README.md").read_text(), explorer.__doc__):
        listed = re.search(r'data-field="([^"]+)"', doc)
        assert listed and set(PANEL_FIELDS) <= set(re.sub(r"\s", "", listed.group(1)).split("|"))
        assert [hook for hook in HOOKS if hook not in doc] == []
