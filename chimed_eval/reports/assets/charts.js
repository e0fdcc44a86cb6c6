/* chimed-eval: charts shared by the viewer and the single-run report, drawn with Chart.js.
   Data comes from the page's JSON (computed in Python: chimed_eval/reports/charts.py); text from a
   run is only ever put into the page with textContent. */
(function () {
  'use strict';
  var font = getComputedStyle(document.documentElement).getPropertyValue('--font').trim() || 'sans-serif';
  Chart.defaults.font.family = font;
  Chart.defaults.animation = false;  // drawn at once: the headless test reads the page right after load
  Chart.defaults.maintainAspectRatio = false;
  var COLORS = ['#3b75af', '#e1812c', '#3a923a', '#c03d3e', '#9372b2', '#845b53', '#d684bd', '#7f7f7f'];

  function fmt(x, d) { return x == null || isNaN(x) ? '' : Number(x).toFixed(d == null ? 2 : d); }

  // whiskers: a dataset with `lo` / `hi` arrays gets its 95% interval drawn over each bar
  Chart.register({
    id: 'whiskers',
    afterDatasetsDraw: function (chart) {
      var ctx = chart.ctx, horiz = chart.options.indexAxis === 'y';
      var scale = horiz ? chart.scales.x : chart.scales.y;
      chart.data.datasets.forEach(function (ds, di) {
        var meta = chart.getDatasetMeta(di);
        if (meta.hidden) return;
        meta.data.forEach(function (el, i) {
          if (ds.counts && ds.counts[i]) {  // a count written above (or beside) the bar
            ctx.save(); ctx.fillStyle = '#333'; ctx.font = '11px ' + font; ctx.textAlign = 'center';
            if (horiz) { ctx.textAlign = 'left'; ctx.fillText('n=' + ds.counts[i], el.x + 4, el.y + 4); }
            else ctx.fillText('n=' + ds.counts[i], el.x, Math.min(el.y, el.base) - 4);
            ctx.restore();
          }
          if (!ds.lo || ds.lo[i] == null || ds.hi[i] == null) return;
          var a = scale.getPixelForValue(ds.lo[i]), b = scale.getPixelForValue(ds.hi[i]);
          ctx.save(); ctx.strokeStyle = '#222'; ctx.lineWidth = 1.5; ctx.beginPath();
          if (horiz) {
            ctx.moveTo(a, el.y); ctx.lineTo(b, el.y);
            ctx.moveTo(a, el.y - 4); ctx.lineTo(a, el.y + 4); ctx.moveTo(b, el.y - 4); ctx.lineTo(b, el.y + 4);
          } else {
            ctx.moveTo(el.x, a); ctx.lineTo(el.x, b);
            ctx.moveTo(el.x - 4, a); ctx.lineTo(el.x + 4, a); ctx.moveTo(el.x - 4, b); ctx.lineTo(el.x + 4, b);
          }
          ctx.stroke(); ctx.restore();
        });
      });
    }
  });

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text != null) e.textContent = text;
    return e;
  }

  /* A titled figure holding a canvas (height in px grows with the rows of a horizontal chart). */
  function figure(parent, title, height, cls) {
    var fig = el('figure', {'class': 'chart ' + (cls || '')});
    fig.appendChild(el('figcaption', {}, title));
    var box = el('div', {'class': 'chart-box', style: 'height:' + height + 'px'});
    var canvas = el('canvas', {role: 'img', 'aria-label': title});
    box.appendChild(canvas); fig.appendChild(box); parent.appendChild(fig);
    return canvas;
  }

  function axis(title, min, max) {
    var a = {title: {display: true, text: title}, ticks: {}};
    if (min != null) a.min = min;
    if (max != null) a.suggestedMax = max;
    return a;
  }

  /* Bars with 95% intervals: series = [{label, values, lo, hi, counts}], one colour each. */
  function bars(canvas, labels, series, o) {
    o = o || {};
    var top = 0;
    series.forEach(function (s) { (s.hi || s.values).concat(s.values).forEach(function (v) { if (v != null && v > top) top = v; }); });
    var max = o.max != null ? o.max : top <= 100 ? 100 : top * 1.08;  // percentages end at 100
    var valueAxis = axis(o.valueTitle || '%', o.min == null ? 0 : o.min, max);
    var catAxis = axis(o.catTitle || '', null, null);
    var chart = new Chart(canvas, {
      type: 'bar',
      data: {labels: labels, datasets: series.map(function (s, i) {
        return {label: s.label, data: s.values, lo: s.lo, hi: s.hi, counts: s.counts,
                backgroundColor: s.color || COLORS[i % COLORS.length]};
      })},
      options: {indexAxis: o.horizontal ? 'y' : 'x', responsive: true, layout: {padding: {right: o.horizontal ? 48 : 0}},
                plugins: {legend: {display: series.length > 1 || !!o.legend},
                          tooltip: {callbacks: {label: function (c) {
                            var s = series[c.datasetIndex], i = c.dataIndex, t = s.label + ': ' + fmt(s.values[i]);
                            if (s.lo && s.lo[i] != null) t += ' [' + fmt(s.lo[i]) + ', ' + fmt(s.hi[i]) + ']';
                            if (s.counts && s.counts[i] != null) t += ' n=' + s.counts[i];
                            return t; }}}},
                scales: o.horizontal ? {x: valueAxis, y: catAxis} : {x: catAxis, y: valueAxis}}
    });
    canvas.parentNode.parentNode.setAttribute('data-rendered', 'true');
    return chart;
  }

  /* Reliability diagram: per run, accuracy (%) of each confidence bin with the bin's count above
     the bar, and the diagonal of perfect calibration. */
  function reliability(canvas, runs) {
    var bins = runs[0].rel.bins;
    var labels = bins.map(function (b) { return fmt(b.lower, 1) + '–' + fmt(b.upper, 1); });
    var datasets = runs.map(function (r, i) {
      return {type: 'bar', label: r.label + ' (ECE ' + fmt(r.rel.ece) + ')', backgroundColor: COLORS[i % COLORS.length],
              data: r.rel.bins.map(function (b) { return b.count ? 100 * b.accuracy : null; }),
              counts: r.rel.bins.map(function (b) { return b.count; })};
    });
    datasets.push({type: 'line', label: 'perfect calibration', borderColor: '#c33', borderDash: [4, 3], pointRadius: 0,
                   fill: false, data: bins.map(function (b) { return 50 * (b.lower + b.upper); })});
    new Chart(canvas, {data: {labels: labels, datasets: datasets},
      options: {plugins: {legend: {display: true}}, scales: {
        x: axis("confidence (top option's probability)"),
        y: {min: 0, max: 105, title: {display: true, text: 'accuracy (%)'}, ticks: {stepSize: 20}}}}});
    canvas.parentNode.parentNode.setAttribute('data-rendered', 'true');
  }

  /* Position bias: per option letter, the share of predictions of each run beside the share of
     gold answers (grey). */
  function letters(canvas, runs) {
    var labels = runs[0].letters.letters;
    var series = [{label: 'gold', color: '#aaaaaa', values: runs[0].letters.gold_share}];
    runs.forEach(function (r, i) {
      series.push({label: r.label + ' predicted', values: r.letters.pred_share, color: COLORS[i % COLORS.length]});
    });
    return bars(canvas, labels, series, {valueTitle: '% of records', catTitle: 'option letter', legend: true});
  }

  window.ChimedCharts = {COLORS: COLORS, bars: bars, reliability: reliability, letters: letters, figure: figure,
                         el: el, fmt: fmt};
})();
