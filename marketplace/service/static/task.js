// The task page's charts, redrawn from /api/tasks/{id}/series; polled while the task runs.
"use strict";
(() => {
  const root = document.getElementById("charts");
  if (!root) return;
  const taskId = root.dataset.task;
  const refresh = Number(root.dataset.refresh || 3000);
  const short = (a) => `#${a.index} ${a.address.slice(0, 6)}…${a.address.slice(-4)}`;

  function draw(data) {
    const xs = data.rounds;
    FedCharts.line(document.getElementById("chart-accuracy"), xs,
      [{ name: "accuracy", values: data.accuracy }], { yMin: 0, yMax: 1, label: "accuracy per round" });
    const reputation = data.owners.map((o) => ({
      name: short(o),
      values: o.reputation,
      marks: o.removed_round ? [{ i: Math.max(xs.indexOf(o.removed_round), 0), label: `${short(o)} removed in round ${o.removed_round}` }] : [],
    }));
    FedCharts.line(document.getElementById("chart-reputation"), xs, reputation,
      { yMin: 0, label: "reputation per data owner", yFormat: (v) => v.toFixed(3) });
    const paid = data.owners.map((o) => BigInt(o.payout.length ? o.payout[o.payout.length - 1] : "0"));
    const totalPaid = paid.reduce((a, b) => a + b, 0n);
    const contributed = data.owners.map((o) => (o.contribution.length ? o.contribution[o.contribution.length - 1] : 0));
    const totalContributed = contributed.reduce((a, b) => a + b, 0);
    const groups = data.owners.map((o, i) => ({
      name: short(o), label: `#${o.index}${o.removed_round ? " ×" : ""}`, removed: Boolean(o.removed_round),
      values: [totalContributed ? contributed[i] / totalContributed : 0,
               totalPaid ? Number((paid[i] * 1000000n) / totalPaid) / 1e6 : 0],
    }));
    FedCharts.bars(document.getElementById("chart-payouts"), groups, ["contribution share", "payout share"],
      { width: 1100, height: 270, label: "cumulative payouts vs contributions", yFormat: (v) => `${(100 * v).toFixed(0)}%` });
    root.dataset.status = data.status;
    root.dataset.rounds = String(xs.length);
    const status = document.getElementById("task-status");
    if (status && status.textContent !== data.status) { status.textContent = data.status; status.className = `badge ${data.status}`; }
    const note = document.getElementById("live-note");
    const live = data.status === "open" || data.status === "running";
    if (note) note.textContent = live ? `live: refreshing every ${refresh / 1000} s` : "";
    root.classList.add("ready");
    return live;
  }

  async function tick() {
    let live = true;
    try {
      const response = await fetch(`/api/tasks/${taskId}/series`, { headers: { accept: "application/json" } });
      if (response.ok) live = draw(await response.json());
    } catch (err) {
      const note = document.getElementById("live-note");
      if (note) note.textContent = `update failed: ${err}`;
    }
    if (live) setTimeout(tick, refresh);
  }
  tick();
})();
