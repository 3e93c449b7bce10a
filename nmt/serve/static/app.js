// The page of `nmt serve`: POST /analyze, then draw the translation, the n-best list, the attention heatmap
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

async function loadModels() {
  const models = await (await fetch("/models")).json();
  for (const m of models) {
    const o = el("option", "", `${m.name} (${m.source}\u2192${m.target}, ${m.arch})`);
    o.value = m.name;
    $("model").appendChild(o);
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

async function translate() {
  const choice = $("method").value;
  const body = { q: $("source").value, model: $("model").value || null,
                 method: choice === "greedy" ? "greedy" : "beam", n_best: choice === "nbest" ? 5 : 1 };
  $("status").textContent = "translating\u2026";
  const res = await fetch("/analyze", { method: "POST", headers: { "Content-Type": "application/json" },
                                        body: JSON.stringify(body) });
  const out = await res.json();
  if (!res.ok) { $("status").textContent = out.error; return; }
  $("status").textContent = "";
  $("translation").textContent = out.translation;
  const list = $("nbest");
  list.replaceChildren();
  if (out.nbest.length > 1) {
    for (const h of out.nbest) {
      const li = el("li", "", h.translation);
      if (h.score !== null) li.appendChild(el("span", "score", `score ${h.score.toFixed(2)}`));
      list.appendChild(li);
    }
  }
  drawHeatmap(out.source_pieces, out.target_pieces, out.attention);
  drawGates(out.source_pieces, out.gates);
  document.body.dataset.done = String(Date.now());
}

$("translate").addEventListener("click", () => translate().catch((e) => { $("status").textContent = String(e); }));
$("source").addEventListener("keydown", (e) => { if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("translate").click(); } });
loadModels();
