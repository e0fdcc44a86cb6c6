/* chimed-eval report: the single-run report's charts (data: #report-data, computed by
   chimed_eval/reports/html.py and charts.py), drawn with Chart.js through charts.js. */
(function () {
  'use strict';
  var C = window.ChimedCharts, fmt = C.fmt;
  var D = JSON.parse(document.getElementById('report-data').textContent);
  var label = D.model || 'run';

  var box = document.getElementById('chart');
  if (box && D.headline.length) {
    box.textContent = '';
    C.bars(C.figure(box, 'Headline figure per task (95% interval)', 60 + 34 * D.headline.length, 'headline-chart'),
           D.headline.map(function (h) { return h.task + ' ' + h.metric; }),
           [{label: label, values: D.headline.map(function (h) { return h.value; }),
             lo: D.headline.map(function (h) { return h.ci_low; }), hi: D.headline.map(function (h) { return h.ci_high; }),
             counts: D.headline.map(function (h) { return h.n; })}],
           {horizontal: true, valueTitle: 'value'});
    box.setAttribute('data-rendered', 'true');
  }

  Array.prototype.forEach.call(document.querySelectorAll('.task-charts'), function (div) {
    var t = D.tasks[div.getAttribute('data-task')];
    if (!t) return;
    if (t.subjects.length) {
      var pick = function (k) { return t.subjects.map(function (s) { return s[k]; }); };
      var own = t.subjects[0].metric;  // the task's own breakdown (NER types): its figure, no interval
      C.bars(C.figure(div, own ? 'Per group: ' + own + ' (%)' : 'Per subject: mean item score (%), 95% interval',
                      60 + 26 * t.subjects.length, 'subjects-chart'),
             pick('subject'), [{label: label, values: pick('value'), lo: pick('ci_low'), hi: pick('ci_high'), counts: pick('n')}],
             {horizontal: true, valueTitle: own ? own + ' (%)' : 'mean item score (%)', max: 100});
    }
    if (t.reliability) {
      C.reliability(C.figure(div, 'Reliability diagram (' + t.reliability.n + ' items; n = items per bin)', 320,
                             'reliability-chart'), [{label: label, rel: t.reliability}]);
    }
    if (t.letters) {
      C.letters(C.figure(div, 'Position bias: share of each option letter among predictions vs gold', 260, 'letters-chart'),
                [{label: label, letters: t.letters}]);
      C.bars(C.figure(div, "Accuracy by the gold answer's position (%)", 220, 'position-chart'), t.letters.letters,
             [{label: label, values: t.letters.acc_by_gold}], {valueTitle: 'accuracy (%)', catTitle: 'gold letter', max: 100});
    }
    var rules = Object.keys(t.rules);
    if (rules.length) {
      var tot = 0; rules.forEach(function (k) { tot += t.rules[k]; });
      C.bars(C.figure(div, 'Answer extraction: records per rule', 60 + 28 * rules.length, 'rules-chart'), rules,
             [{label: label, values: rules.map(function (k) { return tot ? 100 * t.rules[k] / tot : 0; }),
               counts: rules.map(function (k) { return t.rules[k]; })}], {horizontal: true, valueTitle: '% of records', max: 100});
    }
  });

  var jbox = document.getElementById('judge-charts');
  if (jbox) {
    D.judges.forEach(function (j) {
      if (!j.judges.length) return;
      var cap = j.task + ' (' + j.protocol + '): each judge\'s figure, 95% interval' +
        (j.kappa ? "; Cohen's kappa " + j.kappa : '') + (j.alpha != null ? "; Krippendorff's alpha " + fmt(j.alpha) : '');
      var pick = function (k) { return j.judges.map(function (x) { return x[k]; }); };
      C.bars(C.figure(jbox, cap, 60 + 30 * j.judges.length, 'judge-chart'), pick('judge'),
             [{label: 'figure', values: pick('value'), lo: pick('ci_low'), hi: pick('ci_high'), counts: pick('n')}],
             {horizontal: true, valueTitle: 'figure'});
    });
  }
  document.body.setAttribute('data-ready', 'true');
})();
