// Small SVG charts for the dashboard: line charts with markers and grouped bar charts. No dependencies.
"use strict";
const FedCharts = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777",
                   "#4b5563", "#65a30d", "#7c3aed", "#0d9488"];
  const color = (i) => PALETTE[i % PALETTE.length];

  function el(name, attrs, parent) {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (parent) parent.appendChild(node);
    return node;
  }

  function frame(container, opts) {
    const width = opts.width || 560, height = opts.height || 260;
    const pad = { l: 48, r: 12, t: 12, b: 34 };
    container.replaceChildren();
    const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img",
                            "aria-label": opts.label || "chart", class: "fedchart" }, container);
    return { svg, width, height, pad, w: width - pad.l - pad.r, h: height - pad.t - pad.b };
  }

  // the smallest yMin + 4·step ≥ yMax with a round step (1, 1.5, 2, 2.5, 3 or 5 × 10^k): ticks 20%, 40%, ... not 18%, 35%
  function niceTop(yMin, yMax) {
    const span = yMax - yMin;
    if (!(span > 0)) return yMin + 1;
    const unit = 10 ** Math.floor(Math.log10(span / 4));
    const step = [1, 1.5, 2, 2.5, 3, 5, 10].map((m) => m * unit).find((s) => 4 * s >= span * (1 - 1e-9));
    return yMin + 4 * step;
  }

  function axes(f, xs, yMin, yMax, yFormat) {
    const g = el("g", { class: "axes" }, f.svg);
    const ticks = 4;
    for (let i = 0; i <= ticks; i++) {
      const v = yMin + (yMax - yMin) * i / ticks;
      const y = f.pad.t + f.h - f.h * i / ticks;
      el("line", { x1: f.pad.l, x2: f.pad.l + f.w, y1: y, y2: y, class: "gridline" }, g);
      el("text", { x: f.pad.l - 6, y: y + 4, "text-anchor": "end", class: "tick" }, g).textContent = yFormat(v);
    }
    const step = Math.max(1, Math.ceil(xs.length / 12));
    xs.forEach((x, i) => {
      if (i % step) return;
      el("text", { x: xPos(f, xs, i), y: f.pad.t + f.h + 16, "text-anchor": "middle", class: "tick" }, g).textContent = x;
    });
    return g;
  }

  function xPos(f, xs, i) {
    return xs.length <= 1 ? f.pad.l + f.w / 2 : f.pad.l + f.w * i / (xs.length - 1);
  }

  function empty(container, text) {
    container.replaceChildren();
    const p = document.createElement("p");
    p.className = "muted chart-empty";
    p.textContent = text;
    container.appendChild(p);
  }

  /** series: [{name, values (null = gap), marks: [{i, label}]}]; one <g class="series"> per series. */
  function line(container, xs, series, opts) {
    if (!xs.length) return empty(container, "no finalized rounds yet");
    const f = frame(container, opts);
    const all = series.flatMap((s) => s.values.filter((v) => v !== null && v !== undefined));
    let yMin = opts.yMin ?? Math.min(...all, 0), yMax = opts.yMax ?? niceTop(yMin, Math.max(...all, 1e-9));
    if (yMax <= yMin) yMax = yMin + 1;
    axes(f, xs, yMin, yMax, opts.yFormat || ((v) => v.toFixed(2)));
    const y = (v) => f.pad.t + f.h - f.h * (v - yMin) / (yMax - yMin);
    series.forEach((s, k) => {
      const g = el("g", { class: "series", "data-series": s.name, stroke: s.color || color(k), fill: s.color || color(k) }, f.svg);
      el("title", {}, g).textContent = s.name;
      let d = "";
      s.values.forEach((v, i) => {
        if (v === null || v === undefined) return;
        d += `${d && s.values[i - 1] !== null && s.values[i - 1] !== undefined ? "L" : "M"}${xPos(f, xs, i)},${y(v)}`;
      });
      if (d) el("path", { d, class: "line", fill: "none" }, g);
      s.values.forEach((v, i) => {
        if (v === null || v === undefined) return;
        const dot = el("circle", { cx: xPos(f, xs, i), cy: y(v), r: 3, class: "point", "data-round": xs[i] }, g);
        el("title", {}, dot).textContent = `${s.name}, round ${xs[i]}: ${(opts.yFormat || ((t) => t.toFixed(3)))(v)}`;
      });
      (s.marks || []).forEach((m) => {
        const cx = xPos(f, xs, m.i), cy = y(s.values[m.i] ?? yMin);
        const mark = el("g", { class: "removal-mark", "data-round": xs[m.i], "data-series": s.name }, f.svg);
        el("path", { d: `M${cx - 6},${cy - 6}L${cx + 6},${cy + 6}M${cx - 6},${cy + 6}L${cx + 6},${cy - 6}`, class: "cross" }, mark);
        el("title", {}, mark).textContent = m.label;
      });
    });
    legend(container, series.map((s, k) => ({ name: s.name, color: s.color || color(k), removed: (s.marks || []).length > 0 })));
  }

  /** groups: [{name, values: [a, b]}], keys: names of the bars in each group. */
  function bars(container, groups, keys, opts) {
    if (!groups.length) return empty(container, "no data owners yet");
    const f = frame(container, opts);
    const all = groups.flatMap((g) => g.values);
    const yMax = niceTop(0, Math.max(...all, 1e-9));
    axes(f, [], 0, yMax, opts.yFormat || ((v) => v.toFixed(2)));
    const slot = f.w / groups.length, bw = Math.min(22, slot / (keys.length + 1));
    groups.forEach((grp, i) => {
      const g = el("g", { class: "group", "data-group": grp.name }, f.svg);
      grp.values.forEach((v, k) => {
        const h = f.h * v / yMax, x = f.pad.l + slot * i + slot / 2 - bw * keys.length / 2 + bw * k;
        const bar = el("rect", { x, y: f.pad.t + f.h - h, width: bw - 2, height: Math.max(h, 0.5), fill: color(k),
                                 class: `bar bar-${k}`, "data-key": keys[k] }, g);
        el("title", {}, bar).textContent = `${grp.name} · ${keys[k]}: ${(opts.yFormat || ((t) => t.toFixed(3)))(v)}`;
      });
      el("text", { x: f.pad.l + slot * i + slot / 2, y: f.pad.t + f.h + 16, "text-anchor": "middle",
                   class: `tick${grp.removed ? " removed-label" : ""}` }, g).textContent = grp.label || grp.name;
    });
    legend(container, keys.map((k, i) => ({ name: k, color: color(i) })));
  }

  function legend(container, items) {
    const box = document.createElement("div");
    box.className = "legend";
    items.forEach((it) => {
      const span = document.createElement("span");
      span.className = it.removed ? "legend-item removed" : "legend-item";
      const sw = document.createElement("i");
      sw.style.background = it.color;
      span.append(sw, document.createTextNode(it.name + (it.removed ? " ×" : "")));
      box.appendChild(span);
    });
    container.appendChild(box);
  }

  return { line, bars, color };
})();
