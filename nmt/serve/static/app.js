// The page of `nmt serve`: POST /analyze (with the prefix, glossary and constraints boxes), then draw the
// translation, the n-best list, the word alignment (an SVG: one line.link per aligned pair), the attention heatmap
// (a CSS grid: one .cell per target piece x source piece) and the encoder gate strip (one .gate per source piece).
"use strict";

const $ = (id) => document.getElementById(id);
const piece = (p) => p.replace(/\u2581/g, " ").trim() || "\u2581";

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

let models = [];  // GET /models: name, languages, arch, attention

async function loadModels() {
  models = await (await fetch("/models")).json();
  for (const m of models) {
    const o = el("option", "", `${m.name} (${m.source}\u2192${m.target}, ${m.arch})`);
    o.value = m.name;
    $("model").appendChild(o);
  }
}

const SVG = "http://www.w3.org/2000/svg";

function svgEl(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

// Source words in a row above, target words below, and a line for each Moses "i-j" pair of the hard alignment.
function drawLinks(out) {
  const svg = $("links");
  svg.replaceChildren();
  $("alignment-section").hidden = out.alignment === undefined;
  if (out.alignment === undefined) return;
  const rows = [out.source_words, out.target_words], ys = [22, 112], gap = 16, pad = 8;
  const texts = rows.map((words, r) => words.map((w, i) => {
    const t = svgEl("text", { class: `word ${r ? "tgt" : "src"}`, y: ys[r], "data-i": i }, w);
    svg.appendChild(t);
    return t;
  }));
  const widths = texts.map((ts) => ts.map((t) => t.getComputedTextLength()));
  const totals = widths.map((ws) => ws.reduce((a, b) => a + b, 0) + gap * Math.max(ws.length - 1, 0));
  const width = Math.max(...totals, 100) + 2 * pad;
  const centers = texts.map((ts, r) => {
    let x = pad + (width - 2 * pad - totals[r]) / 2;
    return ts.map((t, i) => { t.setAttribute("x", x); const c = x + widths[r][i] / 2; x += widths[r][i] + gap; return c; });
  });
  Object.entries({ width, height: 130, viewBox: `0 0 ${width} 130` }).forEach(([k, v]) => svg.setAttribute(k, v));
  for (const [i, j] of out.alignment.split(" ").filter(Boolean).map((p) => p.split("-").map(Number))) {
    if (!(i in centers[0] && j in centers[1])) continue;
    const line = svgEl("line", { class: "link", x1: centers[0][i], y1: ys[0] + 6, x2: centers[1][j], y2: ys[1] - 16,
                                 "data-src": i, "data-tgt": j });
    line.appendChild(svgEl("title", {}, `${rows[0][i]} \u2192 ${rows[1][j]}`));
    line.addEventListener("mouseenter", () => highlight((l) => l === line));
    svg.insertBefore(line, svg.firstChild);  // under the words
  }
  texts.forEach((ts, r) => ts.forEach((t, i) => t.addEventListener("mouseenter", () =>
    highlight((l) => Number(r ? l.dataset.tgt : l.dataset.src) === i))));
}

// The links ``pick`` chooses, and the words at their ends, drawn highlighted; the rest plain.
function highlight(pick) {
  const on = new Set();
  for (const l of $("links").querySelectorAll("line.link")) {
    const hit = pick(l);
    l.classList.toggle("on", hit);
    if (hit) { on.add(`src ${l.dataset.src}`); on.add(`tgt ${l.dataset.tgt}`); }
  }
  for (const t of $("links").querySelectorAll("text.word")) {
    t.classList.toggle("on", on.has(`${t.classList.contains("src") ? "src" : "tgt"} ${t.dataset.i}`));
  }
}

function drawHeatmap(src, tgt, weights) {
  const grid = $("heatmap");
  grid.replaceChildren();
  $("no-attention").hidden = weights !== null;
  if (weights === null) return;
  grid.style.gridTemplateColumns = `max-content repeat(${src.length}, 28px)`;
  grid.appendChild(el("div", "label"));
  for (const s of src) grid.appendChild(el("div", "label col", piece(s)));
  tgt.forEach((t, i) => {
    grid.appendChild(el("div", "label", piece(t)));
    src.forEach((s, j) => {
      const w = weights[i][j];
      const c = el("div", "cell");
      c.style.background = `rgba(20, 20, 20, ${w})`;
      c.title = `${piece(t)} \u2190 ${piece(s)}: ${w.toFixed(3)}`;
      grid.appendChild(c);
    });
  });
}

function drawGates(src, gates) {
  const strip = $("gates");
  strip.replaceChildren();
  if (gates === null) { $("reading").textContent = "(shown for GRU models in fp32 only)"; return; }
  src.forEach((s, j) => {
    const g = el("div", "gate");
    const bars = el("div", "bars");
    for (const [cls, v, name] of [["z", gates.update[j], "update z"], ["r", gates.reset[j], "reset r"]]) {
      const b = el("div", `bar ${cls}`);
      b.style.height = `${Math.round(80 * v)}px`;
      b.title = `${name} at ${piece(s)}: ${v.toFixed(3)}`;
      bars.appendChild(b);
    }
    g.append(bars, el("div", "piece", piece(s)));
    strip.appendChild(g);
  });
  $("reading").textContent = `Blue: update z; orange: reset r. The encoder read the sentence ${gates.reading}.`;
}

// The glossary box as the API's glossary object: one "source = target" or "source<TAB>target" a line ("#" comments);
// a bad line is named by number.
function parseGlossary(text) {
  const pairs = {}, seen = {};
  const lines = text.split("\n");
  for (let n = 1; n <= lines.length; n++) {
    const line = lines[n - 1].trim();
    if (!line || line.startsWith("#")) continue;
    const parts = (lines[n - 1].includes("\t") ? lines[n - 1].split("\t") : line.split("=")).map((x) => x.trim());
    if (parts.length !== 2 || !parts[0] || !parts[1]) {
      return { error: `glossary line ${n}: write "source = target" (or source<TAB>target), got "${line}"` };
    }
    const [source, target] = parts;
    if (source in pairs && pairs[source] !== target) {
      return { error: `glossary line ${n}: "${source}" already has the target "${pairs[source]}" (line ${seen[source]})` };
    }
    pairs[source] = target;
    seen[source] = n;
  }
  return { pairs };
}

// The /analyze request the controls describe, or { error } naming what is wrong.
function request() {
  const choice = $("method").value;
  const gloss = parseGlossary($("glossary").value);
  $("glossary").setAttribute("aria-invalid", String(Boolean(gloss.error)));
  if (gloss.error) return gloss;
  const constraints = $("constraints").value.split("\n").map((x) => x.trim()).filter(Boolean);
  const held = constraints.length > 0 || Object.keys(gloss.pairs).length > 0;
  const model = models.find((m) => m.name === $("model").value) || models[0];
  const body = { q: $("source").value, model: model ? model.name : null, n_best: choice === "nbest" ? 5 : 1,
                 method: choice === "sample" ? "sample" : choice === "greedy" && !held ? "greedy" : "beam",
                 alignment: $("align").checked && model && model.attention ? "hard" : "none" };
  if (choice === "sample") Object.assign(body, { topk: 10, seed: Number($("seed").value) || 0 });
  if ($("prefix").value.trim()) body.prefix = $("prefix").value;
  if (Object.keys(gloss.pairs).length) body.glossary = gloss.pairs;
  if (constraints.length) body.constraints = constraints;
  return { body };
}

async function translate() {
  const { body, error } = request();
  if (error) { $("status").textContent = error; return; }
  $("status").textContent = "translating\u2026";
  const res = await fetch("/analyze", { method: "POST", headers: { "Content-Type": "application/json" },
                                        body: JSON.stringify(body) });
  const out = await res.json();
  if (!res.ok) { $("status").textContent = out.error; return; }
  $("status").textContent = "";
  $("translation").textContent = out.translation;
  $("missing").hidden = !out.missing.length;
  $("missing").textContent = `could not place: ${out.missing.map((m) => `"${m}"`).join(", ")}`;
  const list = $("nbest");
  list.replaceChildren();
  if (out.nbest.length > 1) {
    for (const h of out.nbest) {
      const li = el("li", "", h.translation);
      if (h.score !== null) li.appendChild(el("span", "score", `score ${h.score.toFixed(2)}`));
      list.appendChild(li);
    }
  }
  drawLinks(out);
  drawHeatmap(out.source_pieces, out.target_pieces, out.attention);
  drawGates(out.source_pieces, out.gates);
  document.body.dataset.done = String(Date.now());
}

$("translate").addEventListener("click", () => translate().catch((e) => { $("status").textContent = String(e); }));
$("source").addEventListener("keydown", (e) => { if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("translate").click(); } });
$("links").addEventListener("mouseleave", () => highlight(() => false));
$("method").addEventListener("change", () => { $("seed").disabled = $("method").value !== "sample"; });
loadModels();
