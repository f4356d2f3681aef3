/* tinygrad_cnn explorer: click (or Tab + Enter) a node of the graph to see its numbers in #panel; click (or
   arrow keys + Enter) an entry of a heat map to see why its gradient is what it is in #explain.
   The data is the JSON in #explorer-data (made by tinygrad_cnn/explorer/page.py). The hooks the tests use are
   documented in tinygrad_cnn/explorer/__init__.py; keep them stable. No library, no request except, on the live
   page, "explain?..." to the server that served it. */
(function () {
  "use strict";
  const DATA = JSON.parse(document.getElementById("explorer-data").textContent);
  const graphBox = document.getElementById("graph");
  const panel = document.getElementById("panel");
  const svg = graphBox.querySelector("svg");
  const state = {node: null, sample: 0, scale: 1, entry: null};
  const liveCache = {};

  // ------------------------------------------------------------------ small helpers
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") e.textContent = value;
      else if (key === "cls") e.className = value;
      else e.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children) if (child !== null && child !== undefined) e.append(child);
    return e;
  }
  function fmt(v) {
    v = Number(v);
    return Number.isFinite(v) ? String(+v.toPrecision(4)) : String(v);
  }
  function pyTuple(items) {
    return items.length === 1 ? `(${items[0]},)` : `(${items.join(", ")})`;
  }
  function bytesText(n) {
    return n < 1024 ? `${n} bytes` : `${(n / 2 ** 20).toFixed(3)} MB (${n.toLocaleString("en-US")} bytes)`;
  }
  function decode(b64) {
    const bin = atob(b64), bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return new Float32Array(bytes.buffer);
  }
  function colour(v, amax) {
    if (!Number.isFinite(v)) return "#000";
    const t = amax > 0 ? Math.min(1, Math.abs(v) / amax) : 0;
    const [r, g, b] = v >= 0 ? [215, 48, 39] : [33, 102, 172];  // red positive, blue negative, white 0
    const mix = (c) => Math.round(255 + (c - 255) * t);
    return `rgb(${mix(r)},${mix(g)},${mix(b)})`;
  }
  function nodeGroup(name) {
    return svg.querySelector(`g.node[data-node="${CSS.escape(name)}"]`);
  }

  // ------------------------------------------------------------------ header: summary and zoom
  let summary = `${Object.keys(DATA.nodes).length} tensors drawn, root ${DATA.root}`;
  if (DATA.profile) {
    summary += `; profiled: ops ${fmt(DATA.profile["ops-ms"])} ms of ${fmt(DATA.profile["total-ms"])} ms wall`;
  }
  summary += DATA.live ? "; live: any entry explained on demand" : "; saved page: precomputed explanations marked";
  document.getElementById("summary").textContent = summary;

  const box = svg.viewBox.baseVal;
  const natural = {w: box.width * 4 / 3, h: box.height * 4 / 3};  // Graphviz sizes are in points
  function zoom(scale) {
    state.scale = Math.min(8, Math.max(0.05, scale));
    svg.setAttribute("width", (natural.w * state.scale).toFixed(1));
    svg.setAttribute("height", (natural.h * state.scale).toFixed(1));
  }
  function fitScale() {
    return Math.min(graphBox.clientWidth / natural.w, graphBox.clientHeight / natural.h);
  }
  zoom(Math.max(0.5, Math.min(1, fitScale())));
  document.getElementById("zoom-in").addEventListener("click", () => zoom(state.scale * 1.25));
  document.getElementById("zoom-out").addEventListener("click", () => zoom(state.scale / 1.25));
  document.getElementById("zoom-fit").addEventListener("click", () => zoom(fitScale()));
  document.getElementById("zoom-one").addEventListener("click", () => zoom(1));
  graphBox.addEventListener("keydown", (e) => {
    const keys = {"+": 1.25, "=": 1.25, "-": 1 / 1.25};
    if (e.key in keys) { zoom(state.scale * keys[e.key]); e.preventDefault(); }
    else if (e.key === "0") { zoom(fitScale()); e.preventDefault(); }
  });
  graphBox.addEventListener("wheel", (e) => {
    if (!e.ctrlKey) return;
    e.preventDefault();
    zoom(state.scale * (e.deltaY < 0 ? 1.1 : 1 / 1.1));
  }, {passive: false});

  for (const g of svg.querySelectorAll("g.node[data-node]")) {
    g.addEventListener("click", () => show(g.getAttribute("data-node")));
    g.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); show(g.getAttribute("data-node")); }
    });
  }

  // ------------------------------------------------------------------ the panel of one node
  function show(name) {
    const f = DATA.nodes[name];
    if (!f) return;
    Object.assign(state, {node: name, sample: 0, entry: null});
    for (const g of svg.querySelectorAll("g.node.selected")) g.classList.remove("selected");
    const g = nodeGroup(name);
    if (g) g.classList.add("selected");
    panel.setAttribute("data-node", name);
    panel.replaceChildren(el("h2", {text: name}), fields(f), heatMaps(f), explainedList(f),
                          el("section", {id: "explain", "aria-live": "polite"}));
  }

  function fields(f) {
    const list = el("div", {cls: "fields"});
    const add = (key, field, text, value, note) => list.append(
      el("span", {cls: "key", text: key}),
      el("span", {}, el("span", {"data-field": field, "data-value": value, text: text}),
         note ? el("span", {cls: "muted", text: note}) : null));
    const kinds = {param: "a parameter (leaf, requires grad)", input: "an input or constant (leaf)",
                   interior: "an op's result", root: "the root (drawn from here)"};
    add("kind", "kind", f.kind, null, ` ${kinds[f.kind]}`);
    add("op", "op", f.op, null, f.op ? null : "none: a leaf");
    add("rule", "rule", f.rule, null, f.rule ? null : "none");
    add("created at", "created-at", f.created_at, null, f.created_at ? null : !f.op ? "not recorded for a leaf"
        : "not recorded: build the graph inside profile() or detect_anomaly()");
    add("shape", "shape", pyTuple(f.shape));
    add("dtype", "dtype", f.dtype);
    for (const [key, stat] of Object.entries(f.value)) add(`value ${key}`, `value-${key}`, stat.text, stat.value);
    if (f.grad) {
      for (const [key, stat] of Object.entries(f.grad)) add(`grad ${key}`, `grad-${key}`, stat.text, stat.value);
    } else {
      add("grad norm", "grad-norm", "", null,
          f.requires_grad ? "no gradient: backward() has not reached it" : "none: does not require grad");
    }
    if (f.profile) {
      add("forward", "forward-ms", `${fmt(f.profile["forward-ms"])} ms`, f.profile["forward-ms"]);
      add("backward", "backward-ms", `${fmt(f.profile["backward-ms"])} ms`, f.profile["backward-ms"]);
      add("saved by backward", "saved-bytes", bytesText(Number(f.profile["saved-bytes"])), f.profile["saved-bytes"]);
    } else if (DATA.profile) {
      add("forward", "forward-ms", "", null, f.op ? "not recorded by the profile" : "none: a leaf");
    }
    return list;
  }

  // ------------------------------------------------------------------ heat maps
  function heatMaps(f) {
    const m = f.maps;
    if (!m) return el("p", {cls: "muted", text: "no heat map: an empty tensor, or more than 4 axes"});
    const section = el("section", {cls: "heat"});
    for (const note of m.notes) section.append(el("p", {cls: "notes", text: note}));
    const kinds = [["value", decode(m.value)]];
    if (m.grad) kinds.push(["grad", decode(m.grad)]);
    const containers = kinds.map(([kind, values]) => {
      let amax = 0;
      for (const v of values) if (Number.isFinite(v)) amax = Math.max(amax, Math.abs(v));
      return {kind, values, amax, box: el("div", {cls: "maps", "data-map": kind})};
    });
    if (m.axes[0] >= 0) {
      const picker = el("div", {cls: "samples", role: "group", "aria-label": `choose the ${m.names[0]}`},
                        el("span", {text: `${m.names[0]}:`}));
      for (let s = 0; s < m.dims[0]; s++) {
        const button = el("button", {type: "button", "data-sample": s, "aria-pressed": String(s === 0), text: s});
        button.addEventListener("click", () => {
          state.sample = s;
          for (const b of picker.querySelectorAll("button")) b.setAttribute("aria-pressed", String(b === button));
          drawAll();
        });
        picker.append(button);
      }
      section.append(picker);
    }
    function drawAll() {
      for (const c of containers) drawMaps(f, c);
    }
    for (const c of containers) {
      section.append(el("h3", {text: c.kind === "value" ? "value" : "gradient"}), c.box);
      c.box.addEventListener("click", (e) => {
        const cell = e.target.closest(".cell");
        if (cell) { moveFocus(cell); choose(cell.getAttribute("data-entry")); }
      });
      c.box.addEventListener("keydown", (e) => cellKey(e));
    }
    drawAll();
    return section;
  }

  function drawMaps(f, c) {
    const m = f.maps, [, C, H, W] = m.dims, s = state.sample;
    const size = Math.max(4, Math.min(18, Math.floor(220 / Math.max(H, W))));
    const figures = [];
    for (let ch = 0; ch < C; ch++) {
      const grid = el("div", {cls: "map", role: "grid", "data-cols": W,
                              style: `grid-template-columns: repeat(${W}, ${size}px); grid-auto-rows: ${size}px`});
      for (let h = 0; h < H; h++) {
        for (let w = 0; w < W; w++) {
          const coords = [s, ch, h, w], index = new Array(f.shape.length);
          m.axes.forEach((axis, d) => { if (axis >= 0) index[axis] = coords[d]; });
          const entry = index.join(","), v = c.values[((s * C + ch) * H + h) * W + w];
          grid.append(el("span", {
            cls: state.entry === entry ? "cell chosen" : "cell", role: "gridcell", "data-entry": entry,
            "data-explained": entry in f.explained, tabindex: h === 0 && w === 0 ? "0" : "-1",
            title: `${c.kind}[${entry}] = ${v}`, style: `background:${colour(v, c.amax)}`,
          }));
        }
      }
      const caption = m.axes[1] >= 0 ? `${m.names[1]} ${ch}` : `${c.kind}`;
      figures.push(el("figure", {}, el("figcaption", {text: caption}), grid));
    }
    c.box.replaceChildren(...figures);
  }

  function moveFocus(cell) {
    const grid = cell.parentElement;
    for (const other of grid.querySelectorAll('.cell[tabindex="0"]')) other.setAttribute("tabindex", "-1");
    cell.setAttribute("tabindex", "0");
    cell.focus();
  }

  function cellKey(e) {
    const cell = e.target.closest(".cell");
    if (!cell) return;
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); choose(cell.getAttribute("data-entry")); return; }
    const grid = cell.parentElement, cells = grid.children, cols = Number(grid.getAttribute("data-cols"));
    const at = Array.prototype.indexOf.call(cells, cell);
    const step = {ArrowLeft: -1, ArrowRight: 1, ArrowUp: -cols, ArrowDown: cols}[e.key];
    if (step === undefined) return;
    e.preventDefault();
    const next = cells[at + step];
    if (next && !(Math.abs(step) === 1 && Math.floor((at + step) / cols) !== Math.floor(at / cols))) moveFocus(next);
  }

  function explainedList(f) {
    const entries = [...new Set([...Object.keys(f.explained), ...f.top])];
    if (!f.grad || entries.length === 0) return null;
    const list = el("div", {cls: "explained-list"});
    for (const entry of entries) {
      const button = el("button", {type: "button", "data-goto": entry, text: `[${entry}]`,
                                   title: entry in f.explained ? "precomputed" : "largest |grad|"});
      button.addEventListener("click", () => goTo(entry));
      list.append(button);
    }
    const what = DATA.live ? "largest |grad| entries" : "explained entries (precomputed)";
    return el("section", {}, el("h3", {text: what}), list);
  }

  function goTo(entry) {
    const f = DATA.nodes[state.node], m = f.maps;
    if (m && m.axes[0] >= 0) {
      const s = Number(entry.split(",")[m.axes[0]]);
      const button = panel.querySelector(`button[data-sample="${s}"]`);
      if (button && s !== state.sample) button.click();
    }
    choose(entry);
    const cell = panel.querySelector(`[data-map] .cell[data-entry="${entry}"]`);
    if (cell) moveFocus(cell);
  }

  // ------------------------------------------------------------------ explanations
  function choose(entry) {
    state.entry = entry;
    for (const c of panel.querySelectorAll(".cell.chosen")) c.classList.remove("chosen");
    for (const c of panel.querySelectorAll(`.cell[data-entry="${entry}"]`)) c.classList.add("chosen");
    explainEntry(state.node, entry);
  }

  function explainEntry(name, entry) {
    const f = DATA.nodes[name], out = document.getElementById("explain");
    for (const a of ["data-total", "data-grad", "data-precomputed"]) out.removeAttribute(a);
    out.setAttribute("data-entry", entry);
    if (!f.grad) {
      out.replaceChildren(el("p", {cls: "muted", text: `${name} has no gradient to explain`}));
      return;
    }
    if (entry in f.explained) { fill(out, f.explained[entry], DATA.live ? "computed with the page" : "precomputed"); return; }
    const key = `${name}@${entry}`;
    if (key in liveCache) { fill(out, liveCache[key], "computed on demand"); return; }
    if (DATA.live) {
      out.replaceChildren(el("p", {cls: "muted", text: `computing explain(${DATA.root}, ${name}, (${entry}))...`}));
      out.setAttribute("aria-busy", "true");
      const query = `token=${encodeURIComponent(DATA.token)}&node=${encodeURIComponent(name)}` +
                    `&entry=${encodeURIComponent(entry)}`;
      fetch(`explain?${query}`)
        .then((r) => r.json().then((body) => ({ok: r.ok, body})))
        .then(({ok, body}) => {
          if (!ok) throw new Error(body.error || "the server refused");
          liveCache[key] = body;
          if (state.node === name && state.entry === entry) fill(out, body, "computed on demand");
        })
        .catch((err) => {
          if (state.node === name && state.entry === entry) {
            out.replaceChildren(el("p", {cls: "error", text: String(err.message || err)}));
          }
        })
        .finally(() => out.removeAttribute("aria-busy"));
      return;
    }
    const index = entry === "" ? [] : entry.split(",");
    out.replaceChildren(
      el("h3", {text: `why ${name}.grad[${entry}]`}),
      el("p", {text: "Not precomputed on this saved page (save_html(..., explain=[(x, index)]) adds it). " +
                     "In Python, with the same graph:"}),
      el("pre", {cls: "python", text: `from tinygrad_cnn import explain\nprint(explain(root, x, ${pyTuple(index)}))\n` +
                                      `# root: the tensor drawn as "${DATA.root}"; x: the tensor drawn as "${name}"`}));
  }

  function fill(out, why, how) {
    out.setAttribute("data-total", why.total);
    out.setAttribute("data-grad", why.grad);
    if (how === "precomputed") out.setAttribute("data-precomputed", "");
    out.replaceChildren(el("h3", {}, `why ${state.node}.grad[${why.entry}] = ${fmt(why.grad)} `,
                           el("span", {cls: "tag", text: how})),
                        el("pre", {text: why.text}));
  }
})();
