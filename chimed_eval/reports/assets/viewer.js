/* chimed-eval view: the page comparing runs (data: #viewer-data, computed by
   chimed_eval/reports/viewer.py). Text from runs goes into the DOM with textContent only. */
(function () {
  'use strict';
  var C = window.ChimedCharts, el = C.el, fmt = C.fmt;
  var D = JSON.parse(document.getElementById('viewer-data').textContent);
  var app = document.getElementById('app');
  var labels = D.runs.map(function (r) { return r.label; });

  function section(id, title) {
    var s = el('section', {id: id}); s.appendChild(el('h2', {}, title)); app.appendChild(s); return s;
  }
  function table(parent, head, cls) {
    var t = el('table', {'class': cls || ''}), tr = el('tr');
    head.forEach(function (h) { tr.appendChild(el('th', {}, h)); });
    t.appendChild(el('thead')).appendChild(tr); t.appendChild(el('tbody')); parent.appendChild(t);
    return t.tBodies[0];
  }
  function row(body, cells, cls) {
    var tr = el('tr', cls ? {'class': cls} : {});
    cells.forEach(function (c) {
      var td = el('td', c && c.cls ? {'class': c.cls} : {});
      if (c && c.node) td.appendChild(c.node); else td.textContent = c && typeof c === 'object' ? c.text : c;
      if (c && c.attrs) for (var k in c.attrs) td.setAttribute(k, c.attrs[k]);
      tr.appendChild(td);
    });
    body.appendChild(tr); return tr;
  }
  /* A p-value as shown: 4 decimals, very small ones in exponent form; a bootstrap p of 0 only says
     that no resample crossed zero, so it reads as below one in the number of resamples. */
  function pText(p) {
    if (p.p === 0) return '< ' + (/bootstrap \((\d+)/.exec(p.test) ? (1 / Number(/bootstrap \((\d+)/.exec(p.test)[1])).toExponential(0) : '1e-4');
    return p.p < 0.001 ? p.p.toExponential(2) : fmt(p.p, 4);
  }
  function ci(lo, hi) { return lo == null ? '' : '[' + fmt(lo) + ', ' + fmt(hi) + ']'; }

  function runsSection() {
    var s = section('runs', 'Runs');
    var b = table(s, ['run', 'model', 'directory', 'seed', 'figures']);
    D.runs.forEach(function (r) { row(b, [r.label, r.model || '-', r.dir, r.seed == null ? '-' : r.seed, r.integrity]); });
  }

  function headlineSection() {
    var s = section('headline', 'Headline figures (95% intervals)');
    var tasks = D.tasks.filter(function (t) { return t.runs.some(function (r) { return r && r.headline; }); });
    if (!tasks.length) { s.appendChild(el('p', {'class': 'muted'}, 'no figures (no results.json)')); return; }
    var b = table(s, ['task', 'metric'].concat(labels), 'figures');
    tasks.forEach(function (t) {
      var h = (t.runs.find(function (r) { return r && r.headline; }) || {}).headline;
      row(b, [t.task, h.metric].concat(t.runs.map(function (r, i) {
        var x = r && r.headline;
        return x ? {text: fmt(x.value) + ' ' + ci(x.ci_low, x.ci_high), cls: 'num fig',
                    attrs: {'data-task': t.task, 'data-run': i}} : '';
      })));
    });
    var series = D.runs.map(function (r, i) {
      var pick = function (k) { return tasks.map(function (t) { var x = t.runs[i] && t.runs[i].headline; return x ? x[k] : null; }); };
      return {label: r.label, values: pick('value'), lo: pick('ci_low'), hi: pick('ci_high')};
    });
    var names = tasks.map(function (t) { var h = t.runs.find(function (r) { return r && r.headline; }).headline; return t.task + ' ' + h.metric; });
    C.bars(C.figure(s, 'Headline figure per task', 60 + 34 * tasks.length * Math.max(1, D.runs.length), 'headline-chart'),
           names, series, {horizontal: true, valueTitle: 'value (%)'});
  }

  function pairedSection() {
    if (D.runs.length < 2) return;
    var s = section('paired', 'Paired differences on shared items (each run minus the first run holding the task)');
    s.appendChild(el('p', {'class': 'muted'}, 'Mean per-item score difference in points with the paired bootstrap\'s ' +
      '95% interval; p from McNemar\'s exact test when every score is right/wrong, else from the paired bootstrap.'));
    var b = table(s, ['task', 'run', 'against', 'shared items', 'mean: against', 'mean: run', 'difference',
                      '95% interval', 'test', 'p', 'items changed'], 'paired');
    D.paired.forEach(function (p) {
      row(b, [p.task, labels[p.b], labels[p.a], p.n_common, fmt(p.mean_a), fmt(p.mean_b),
              {text: (p.diff >= 0 ? '+' : '') + fmt(p.diff), cls: 'num diff'},
              {text: ci(p.ci_low, p.ci_high), cls: 'num diff-ci'}, p.test,
              {text: pText(p), cls: 'num' + (p.p < 0.05 ? ' signif' : '')},
              p.changed], 'pair');
    });
    if (D.paired.length) {
      C.bars(C.figure(s, 'Paired difference (points, 95% interval)', 60 + 34 * D.paired.length, 'paired-chart'),
             D.paired.map(function (p) { return p.task + ': ' + labels[p.b]; }),
             [{label: 'difference', values: D.paired.map(function (p) { return p.diff; }),
               lo: D.paired.map(function (p) { return p.ci_low; }), hi: D.paired.map(function (p) { return p.ci_high; })}],
             {horizontal: true, valueTitle: 'difference (points)', min: Math.min.apply(null, D.paired.map(function (p) { return Math.min(0, p.ci_low) * 1.1; }))});
    }
  }

  function taskSection(t) {
    var s = section('task-' + t.task, t.task);
    var have = t.runs.map(function (r, i) { return r ? {label: labels[i], r: r} : null; }).filter(Boolean);
    var subj = have.filter(function (x) { return x.r.subjects.length; });
    if (subj.length) {
      var names = []; subj.forEach(function (x) { x.r.subjects.forEach(function (v) { if (names.indexOf(v.subject) < 0) names.push(v.subject); }); });
      var series = subj.map(function (x) {
        var by = {}; x.r.subjects.forEach(function (v) { by[v.subject] = v; });
        var pick = function (k) { return names.map(function (n) { return by[n] ? by[n][k] : null; }); };
        return {label: x.label, values: pick('value'), lo: pick('ci_low'), hi: pick('ci_high'), counts: subj.length === 1 ? pick('n') : null};
      });
      var own = subj[0].r.subjects[0].metric;  // the task's own breakdown (NER types): its figure, no interval
      C.bars(C.figure(s, own ? 'Per group: ' + own + ' (%)' : 'Per subject: mean item score (%), 95% interval',
                      60 + 30 * names.length * subj.length, 'subjects-chart'),
             names, series, {horizontal: true, valueTitle: own ? own + ' (%)' : 'mean item score (%)', max: 100});
    }
    var rel = have.filter(function (x) { return x.r.reliability; }).map(function (x) { return {label: x.label, rel: x.r.reliability}; });
    if (rel.length) C.reliability(C.figure(s, 'Reliability diagram (' + rel[0].rel.n + ' items with option log-probabilities; n = items per bin)', 320, 'reliability-chart'), rel);
    var let_ = have.filter(function (x) { return x.r.letters; }).map(function (x) { return {label: x.label, letters: x.r.letters}; });
    if (let_.length) {
      C.letters(C.figure(s, 'Position bias: share of each option letter among predictions vs gold', 280, 'letters-chart'), let_);
      C.bars(C.figure(s, 'Accuracy by the gold answer\'s position (%)', 240, 'position-chart'), let_[0].letters.letters,
             let_.map(function (x) { return {label: x.label, values: x.letters.acc_by_gold}; }),
             {valueTitle: 'accuracy (%)', catTitle: 'gold letter', max: 100});
    }
    var rules = have.filter(function (x) { return Object.keys(x.r.rules).length; });
    if (rules.length) {
      var rn = []; rules.forEach(function (x) { Object.keys(x.r.rules).forEach(function (k) { if (x.r.rules[k] && rn.indexOf(k) < 0) rn.push(k); }); });
      C.bars(C.figure(s, 'Answer extraction: records per rule (% of records)', 60 + 28 * rn.length * rules.length, 'rules-chart'), rn,
             rules.map(function (x) {
               var tot = 0; for (var k in x.r.rules) tot += x.r.rules[k];
               return {label: x.label, values: rn.map(function (k) { return tot ? 100 * (x.r.rules[k] || 0) / tot : 0; }),
                       counts: rn.map(function (k) { return x.r.rules[k] || 0; })};
             }), {horizontal: true, valueTitle: '% of records', max: 100});
    }
  }

  function judgeSection() {
    var any = D.judges.some(function (j) { return j.length; });
    if (!any) return;
    var s = section('judges', 'Judges');
    var b = table(s, ['run', 'task', 'protocol', 'judge', 'figure', '95% interval', "Cohen's kappa", "Krippendorff's alpha"], 'judges');
    D.judges.forEach(function (list, i) {
      list.forEach(function (j) {
        j.judges.forEach(function (x) {
          row(b, [labels[i], j.task, j.protocol, x.judge, fmt(x.value), ci(x.ci_low, x.ci_high), j.kappa || '', fmt(j.alpha)]);
        });
      });
    });
  }

  // --- the item browser ---------------------------------------------------------------------------
  var state = {text: '', task: '', wrong: false, disagree: false, sort: null, desc: false, shown: 200};
  function itemText(it) {
    var parts = [it.task, it.id, it.subject || '', it.gold, it.prompt];
    it.runs.forEach(function (r) { if (r) parts.push(r.output || '', r.extracted || '', (r.verdicts || []).join(' ')); });
    return parts.join('\n').toLowerCase();
  }
  D.items.forEach(function (it) { it._text = itemText(it); });
  function matches(it) {
    if (state.task && it.task !== state.task) return false;
    if (state.text && it._text.indexOf(state.text.toLowerCase()) < 0) return false;
    var sc = it.runs.map(function (r) { return r ? r.score : null; });
    if (state.wrong && !sc.some(function (x) { return x != null && x < 1; })) return false;
    if (state.disagree && !sc.some(function (x) { return x !== sc[0]; })) return false;
    return true;
  }
  function sortKey(it) {
    var k = state.sort;
    if (k == null) return null;
    if (typeof k === 'number') return it.runs[k] ? it.runs[k].score : -1;
    return it[k] == null ? '' : it[k];
  }
  function filtered() {
    var rows = D.items.filter(matches);
    if (state.sort != null) {
      rows = rows.slice().sort(function (a, b) {
        var x = sortKey(a), y = sortKey(b), c = x < y ? -1 : x > y ? 1 : 0;
        return state.desc ? -c : c;
      });
    }
    return rows;
  }
  function pre(text, cls) { return el('pre', cls ? {'class': cls} : {}, text == null ? '' : text); }
  /* A long text shown clipped (its head, or for a prompt its tail, where the question is), the whole
     of it one click away. */
  var CLIP = 240;
  function clipped(text, cls, keep) {
    text = text == null ? '' : String(text);
    if (text.length <= CLIP) return pre(text, cls);
    var d = el('details', {'class': 'clipped'});
    d.appendChild(el('summary', {}, keep === 'tail' ? '…' + text.slice(-CLIP) : text.slice(0, CLIP) + '…'));
    d.appendChild(pre(text, cls));
    return d;
  }
  function runCell(r) {
    var box = el('div', {'class': 'run-cell'});
    if (!r) { box.appendChild(el('span', {'class': 'muted'}, 'not recorded')); return box; }
    var head = el('div', {'class': 'answer'});
    head.appendChild(el('span', {'class': 'score ' + (r.score >= 1 ? 'right' : 'wrong')}, fmt(r.score, 3)));
    head.appendChild(el('span', {'class': 'extracted'}, r.failed ? 'no answer read' : (r.extracted == null ? '' : r.extracted)));
    if (r.rule) head.appendChild(el('span', {'class': 'rule'}, r.rule));
    box.appendChild(head);
    box.appendChild(clipped(r.output, 'output', 'head'));
    (r.verdicts || []).forEach(function (v) { box.appendChild(el('div', {'class': 'verdict'}, v)); });
    if (!r.same_prompt) box.appendChild(el('div', {'class': 'muted'}, '(a different prompt than the first run\'s)'));
    return box;
  }
  function drawItems() {
    var rows = filtered(), body = document.getElementById('items-body');
    body.textContent = '';
    rows.slice(0, state.shown).forEach(function (it) {
      row(body, [it.task, it.id, it.subject || '', {node: pre(it.gold, 'gold')}, {node: clipped(it.prompt, 'prompt', 'tail')}]
        .concat(it.runs.map(function (r) { return {node: runCell(r)}; })), 'item');
    });
    document.getElementById('row-count').textContent = rows.length + ' of ' + D.items.length + ' items match' +
      (rows.length > state.shown ? ' (first ' + state.shown + ' shown)' : '');
    document.getElementById('more').style.display = rows.length > state.shown ? '' : 'none';
    document.getElementById('items').setAttribute('data-rows', String(Math.min(rows.length, state.shown)));
    return rows.length;
  }
  function browserSection() {
    var s = section('browser', 'Items');
    var bar = el('div', {'class': 'controls'});
    var text = el('input', {id: 'filter-text', type: 'search', placeholder: 'filter: id, text, answer…'});
    var task = el('select', {id: 'filter-task'});
    task.appendChild(el('option', {value: ''}, 'all tasks'));
    D.tasks.forEach(function (t) { task.appendChild(el('option', {value: t.task}, t.task)); });
    function check(id, label) { var l = el('label'), c = el('input', {type: 'checkbox', id: id}); l.appendChild(c); l.appendChild(document.createTextNode(' ' + label)); bar.appendChild(l); return c; }
    bar.appendChild(text); bar.appendChild(task);
    var wrong = check('filter-wrong', 'wrong in some run'), dis = check('filter-disagree', 'runs disagree');
    bar.appendChild(el('span', {id: 'row-count'}));
    s.appendChild(bar);
    D.tasks.forEach(function (t) {
      var held = D.items.filter(function (it) { return it.task === t.task; }).length;
      if (t.items_total > held) {
        s.appendChild(el('p', {'class': 'muted'}, t.task + ': the first ' + held + ' of ' + t.items_total +
          ' items are in the browser (--max-items); every figure counts them all.'));
      }
    });
    var t = el('table', {id: 'items', 'class': 'items'}), tr = el('tr');
    var cols = [['task', 'task'], ['id', 'id'], ['subject', 'subject'], ['gold', 'gold'], ['prompt', null]]
      .concat(labels.map(function (l, i) { return [l, i]; }));
    cols.forEach(function (c) {
      var th = el('th', {}, c[0]);
      if (c[1] != null) {
        th.className = 'sortable'; th.title = 'sort';
        th.addEventListener('click', function () { state.desc = state.sort === c[1] ? !state.desc : false; state.sort = c[1]; drawItems(); });
      }
      tr.appendChild(th);
    });
    t.appendChild(el('thead')).appendChild(tr); t.appendChild(el('tbody', {id: 'items-body'})); s.appendChild(t);
    var more = el('button', {id: 'more', type: 'button'}, 'show more');
    more.addEventListener('click', function () { state.shown += 500; drawItems(); });
    s.appendChild(more);
    text.addEventListener('input', function () { state.text = text.value; drawItems(); });
    task.addEventListener('change', function () { state.task = task.value; drawItems(); });
    wrong.addEventListener('change', function () { state.wrong = wrong.checked; drawItems(); });
    dis.addEventListener('change', function () { state.disagree = dis.checked; drawItems(); });
    drawItems();
  }

  /* #selftest: exercise the page as a user would and write what happened into the DOM, for the
     headless browser test (chromium --dump-dom). */
  function selfTest() {
    var out = {errors: window.__errors || [], charts: document.querySelectorAll('figure.chart[data-rendered=true]').length};
    out.rows_all = drawItems();
    var input = document.getElementById('filter-text'), probe = D.items.length ? D.items[D.items.length - 1].id : '';
    input.value = probe; input.dispatchEvent(new Event('input'));
    out.filter = probe; out.rows_filtered = Number(document.getElementById('items').getAttribute('data-rows'));
    out.rows_filtered_ids = Array.prototype.map.call(document.querySelectorAll('#items-body tr'), function (tr) { return tr.cells[1].textContent; });
    input.value = ''; input.dispatchEvent(new Event('input'));
    var w = document.getElementById('filter-wrong'); w.checked = true; w.dispatchEvent(new Event('change'));
    out.rows_wrong = Number(document.getElementById('items').getAttribute('data-rows'));
    w.checked = false; w.dispatchEvent(new Event('change'));
    document.querySelectorAll('#items th.sortable')[1].click();
    out.sorted_first = (document.querySelector('#items-body tr') || {cells: [0, {textContent: ''}]}).cells[1].textContent;
    out.paired = Array.prototype.map.call(document.querySelectorAll('#paired tr.pair'), function (tr) {
      return {task: tr.cells[0].textContent, diff: tr.cells[6].textContent, ci: tr.cells[7].textContent, p: tr.cells[9].textContent};
    });
    out.errors = (window.__errors || []).slice();
    var p = el('pre', {id: 'selftest-result'}, JSON.stringify(out)); document.body.appendChild(p);
  }

  runsSection(); headlineSection(); pairedSection();
  D.tasks.forEach(taskSection);
  judgeSection(); browserSection();
  var show = /^#show=([\w,-]+)$/.exec(location.hash);
  if (show) {
    var keep = show[1].split(',');
    Array.prototype.forEach.call(document.querySelectorAll('#app > section'), function (s) {
      if (keep.indexOf(s.id) < 0) s.style.display = 'none';
    });
  }
  document.body.setAttribute('data-ready', 'true');
  if (location.hash === '#selftest') selfTest();
})();
