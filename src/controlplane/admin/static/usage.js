// Usage charts of the dashboard (uPlot, served from /admin/static): each [data-usage] block
// holds its data in a JSON <script type="application/json"> (data, never executed, so the
// CSP's script-src 'self' holds) and a [data-chart] box per chart. The summary and the
// table next to the charts carry the same figures as text.
"use strict";
(function () {
  var COLORS = ["#2563eb", "#d97706", "#059669", "#7c3aed"];

  function format(value, unit) {
    if (value == null) return "–";
    var text = Math.abs(value) < 10 ? value.toFixed(2) : Math.round(value).toLocaleString();
    return unit ? text + " " + unit : text;
  }

  function draw(block) {
    var data = JSON.parse(block.querySelector(".usage-data").textContent);
    var times = data.points.map(function (p) { return p.time; });
    data.charts.forEach(function (chart) {
      var box = block.querySelector('[data-chart="' + chart.id + '"]');
      if (!box) return;
      var series = [{}].concat(chart.series.map(function (s, i) {
        return {
          label: s.label,
          stroke: COLORS[i % COLORS.length],
          width: 2,
          value: function (u, v) { return format(v, chart.unit); },
        };
      }));
      var columns = [times].concat(chart.series.map(function (s) {
        return data.points.map(function (p) { return p[s.key] == null ? null : p[s.key] * s.scale; });
      }));
      var plot = new uPlot({
        width: Math.max(box.clientWidth, 240),
        height: 160,
        series: series,
        scales: { y: { range: function (u, min, max) { return [0, Math.max(max, chart.unit === "%" ? 1 : 0.01) * 1.1]; } } },
        axes: [{}, { size: 56, values: function (u, ticks) { return ticks.map(function (t) { return format(t, ""); }); } }],
      }, columns, box);
      if (window.ResizeObserver) {
        new ResizeObserver(function () {
          plot.setSize({ width: Math.max(box.clientWidth, 240), height: 160 });
        }).observe(box);
      }
    });
  }

  function start() {
    if (!window.uPlot) return;
    document.querySelectorAll("[data-usage]").forEach(draw);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
