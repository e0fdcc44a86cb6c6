"""Files the HTML pages embed (read with :func:`importlib.resources.files`, shipped as package data).

* ``chart.umd.min.js`` — Chart.js 4.6.2 (https://www.chartjs.org), MIT licence
  (``chart.js.LICENSE.md``; its header comment is kept in the file and in every page that embeds
  it), taken unchanged from the npm package's ``dist/chart.umd.min.js`` (``npm pack chart.js@4.6.2``).
  Chosen over plotly.js for size (about 210 KB against 3.5 MB): a page stays small enough to mail.
* ``charts.js`` — the chart drawing shared by the viewer and the single-run report (bars with
  95% intervals, reliability diagram, letter shares, extraction rules), on Chart.js.
* ``viewer.js`` / ``viewer.css`` — the viewer's page (``chimed-eval view``).
* ``report.js`` — the single-run report's charts (``chimed-eval report``).
"""
