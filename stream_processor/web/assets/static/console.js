// facegate console: keeps the server-rendered numbers live from /console/live (SSE)
// and draws the per-minute chart with uPlot. No data leaves this page.
"use strict";
(function () {
  const pct = (v) => (v === null || v === undefined ? "\u2013" : (v * 100).toFixed(1) + "%");
  const charts = new Map();

  function sum(arrays) {
    const out = new Array(arrays.length ? arrays[0].length : 0).fill(0);
    for (const a of arrays) a.forEach((v, i) => { out[i] += v; });
    return out;
  }

  function drawChart(box, ov) {
    const key = box.dataset.chart;
    const sites = ov.sites.filter((s) => key === "*" || s.site === key);
    const xs = ov.minute_ms.map((t) => t / 1000);
    const ys = sum(sites.map((s) => s.per_minute));
    let chart = charts.get(box);
    if (!chart && window.uPlot) {
      const width = Math.max(280, box.clientWidth || 600);
      chart = new window.uPlot({
        width: width, height: 180,
        series: [{}, { label: box.closest("section").querySelector("h2").textContent,
                      stroke: "#1f6feb", fill: "rgba(31,111,235,0.12)" }],
      }, [xs, ys], box);
      charts.set(box, chart);
    } else if (chart) {
      chart.setData([xs, ys]);
    }
  }

  function update(ov) {
    for (const s of ov.sites) {
      const row = document.querySelector('tr[data-site="' + CSS.escape(s.site) + '"]');
      if (!row) continue;
      const set = (f, v) => { const el = row.querySelector('[data-f="' + f + '"]'); if (el) el.textContent = v; };
      set("per_min", Object.values(s.events_last_minute).reduce((a, b) => a + b, 0));
      set("hour", s.events_last_hour);
      set("face", pct(s.face_share));
      set("denial", pct(s.denial_rate));
      set("discards", Object.entries(s.discards).map(([k, n]) => k + " " + n).join(", ") || "\u2013");
      set("devices", s.devices_online + "/" + s.devices_offline);
      set("keycards", s.open_keycards);
    }
    document.querySelectorAll(".uplot-box").forEach((box) => drawChart(box, ov));
    const live = document.getElementById("live");
    if (live) {
      live.classList.add("on");
      live.title = new Date(ov.now_ms).toISOString();
      live.dataset.frames = String(1 + Number(live.dataset.frames || 0));
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (!document.getElementById("live")) return;
    const source = new EventSource("/console/live");
    source.addEventListener("overview", (ev) => update(JSON.parse(ev.data)));
    source.onerror = () => { const l = document.getElementById("live"); if (l) l.classList.remove("on"); };
  });
})();
