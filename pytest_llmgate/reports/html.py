"""The HTML report (``--llmgate-html``): one self-contained file, no network, every value escaped, no case input.

The static parts (decision, runs, metrics, fingerprints, provenance, the chart) are rendered here; the case x
run matrix is drawn in the page from the data embedded as JSON in a ``<script type="application/json">``, with a
small script for its filters (failures only, changes against the compared run only)."""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import msgspec

from pytest_llmgate.model.decision import decision_text
from pytest_llmgate.records.diff import CHANGE_ORDER, delta_text, headline
from pytest_llmgate.io.history import run_files
from pytest_llmgate.records.run import Metrics, RunRecord
from pytest_llmgate.records.outcome import ExperimentOutcome, SessionResult
from pytest_llmgate.reports.table import rate
from pytest_llmgate.model.vocab import CaseChange, Outcome

#: One letter per outcome and per change in the embedded matrix (a 100,000-case run stays a few MB).
OUTCOME_CODES = {Outcome.PASS: "P", Outcome.UNSAFE_CLAIM_SERVED: "U", Outcome.UNNECESSARY_ABSTENTION: "N",
                 Outcome.ERROR: "E", Outcome.NOT_RUN: "-"}
CHANGE_CODES = {CaseChange.BROKEN: "b", CaseChange.CHANGED: "c", CaseChange.FIXED: "f", CaseChange.NEW: "n",
                CaseChange.REMOVED: "r", CaseChange.NOT_COMPARED: "x", CaseChange.UNCHANGED: "."}
PROVENANCE_PARAMS = ("template_sha256", "provider", "code_commit", "llmgate_version")


class _RunHead(msgspec.Struct, frozen=True):
    """What the chart reads of a stored run (the rest of the record is skipped unread)."""

    run_id: str
    experiment: str
    params: dict[str, str]
    metrics: Metrics


def in_progress_html(started: str) -> str:
    """What ``--llmgate-html`` holds from a session's start to its end: a page with no verdict."""
    from pytest_llmgate.reports.markdown import IN_PROGRESS_MARKER, NO_VERDICT

    return (f'<!doctype html>\n{IN_PROGRESS_MARKER}\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="default-src \'none\'">'
            f'<title>pytest-llmgate: no verdict</title></head><body><h1>pytest-llmgate</h1>'
            f'<p class="in-progress">{_e(NO_VERDICT.format(started=started))}</p></body></html>\n')


def html_report(result: SessionResult, out_dir: Path) -> str:
    """The report page of a finished session; the chart's history is read from ``out_dir/runs``."""
    history = _history(out_dir)
    sections = [_experiment_section(index, outcome, history) for index, outcome in enumerate(result.outcomes)]
    data = {"experiments": [_matrix_data(outcome) for outcome in result.outcomes],
            "codes": {"outcome": {code: outcome.value for outcome, code in OUTCOME_CODES.items()},
                      "change": {code: change.value for change, code in CHANGE_CODES.items()}}}
    decisions = "".join(
        f'<section class="decision" data-status="{_e(outcome.verdict.status.value)}">'
        f'<h2><span class="exp">{_e(outcome.experiment.name)}</span> <span class="status">'
        f'{_e(outcome.verdict.status.value)}</span></h2><p class="decision-text">{_e(decision_text(outcome.verdict))}</p>'
        f'<p class="reason">{_e(outcome.verdict.reason)}</p></section>'
        for outcome in result.outcomes
    )
    errors = "".join(f'<p class="error">{_e(error.message())}</p>' for error in result.errors)
    return _PAGE.format(style=_STYLE, decisions=decisions, errors=errors, sections="".join(sections),
                        data=_json_script(data), script=_SCRIPT)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _json_script(data: Any) -> str:
    """JSON that cannot end its ``<script>`` element early or open a comment."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _history(out_dir: Path) -> list[_RunHead]:
    heads = []
    decoder = msgspec.json.Decoder(_RunHead)
    for path in run_files(out_dir):
        try:
            heads.append(decoder.decode(path.read_bytes()))
        except (OSError, msgspec.DecodeError):
            continue  # a record that cannot be read is not charted; `llmgate runs` names it
    return heads


def _experiment_section(index: int, outcome: ExperimentOutcome, history: Sequence[_RunHead]) -> str:
    experiment = outcome.experiment
    verdict = outcome.verdict
    comparable = "yes" if verdict.comparable else "NO: " + "; ".join(
        f"{issue.field} differs" for issue in verdict.issues)
    rows = "".join(_run_row(record) for record in outcome.records)
    not_run = "".join(f"<li>{_e(plan.template_id)} ({_e(plan.role.value)}): not run, no record</li>"
                      for plan in outcome.not_run)
    prints = "".join(f"<tr><th>{_e(name)}</th><td><code>{_e(value)}</code></td></tr>"
                     for name, value in experiment.fingerprints.items())
    provenance = "".join(
        f"<tr><th>{_e(record.template_id)}</th><td><code>{_e(record.run_id)}</code></td>"
        + "".join(f"<td><code>{_e(record.params.get(key, '-'))}</code></td>" for key in PROVENANCE_PARAMS)
        + f"<td>{_e(record.started_at)} - {_e(record.finished_at)}</td></tr>"
        for record in outcome.records
    )
    suites = sorted({suite for record in outcome.records for suite in record.suite_metrics})
    suite_rows = "".join(
        f"<tr><th>{_e(record.template_id)}</th>" + "".join(_metric_cells(record.suite_metrics.get(suite))
                                                           for suite in suites) + "</tr>"
        for record in outcome.records
    )
    suite_head = "".join(f'<th colspan="3">{_e(suite)}</th>' for suite in suites)
    suite_sub = "<th>unsafe</th><th>unnecessary</th><th>exact</th>" * len(suites)
    comparisons = "".join(
        f"<li><b>{_e(record.template_id)}</b>: {_e(headline(record.comparison))}"
        + (f"; {_e(delta_text(record.comparison))}" if record.comparison.comparable else "") + "</li>"
        for record in outcome.records if record.comparison is not None
    )
    charts = "".join(_chart(record, history) for record in outcome.records)
    return f"""
<section class="experiment" id="exp-{index}">
<h2>{_e(experiment.name)}</h2>
<p>Comparable: <b class="comparable">{_e(comparable)}</b>; frozen: {"yes" if outcome.frozen else "no (no llmgate.lock)"}</p>
<h3>Runs</h3>
<table class="runs"><thead><tr><th>template</th><th>role</th><th>unsafe</th><th>unnecessary</th><th>errors</th>
<th>not run</th><th>exact</th><th>status</th><th>vs compared run</th></tr></thead><tbody>{rows}</tbody></table>
{f"<ul>{not_run}</ul>" if not_run else ""}
{f"<h3>Against the compared runs</h3><ul class='comparisons'>{comparisons}</ul>" if comparisons else ""}
<h3>Cases</h3>
<p class="filters"><label><input type="checkbox" class="only-failures"> failures only</label>
<label><input type="checkbox" class="only-changes"> changes against the compared run only</label>
<span class="shown"></span></p>
<div class="matrix-wrap"><table class="matrix" data-experiment="{index}"><thead></thead><tbody></tbody></table></div>
<h3>Metrics per suite</h3>
<table class="suites"><thead><tr><th></th>{suite_head}</tr><tr><th></th>{suite_sub}</tr></thead>
<tbody>{suite_rows}</tbody></table>
<h3>Over the stored runs of this comparison set (evaluation {_e(experiment.short_fingerprints.get("evaluation", ""))})</h3>
<div class="charts">{charts}</div>
<h3>Fingerprints</h3><table class="prints">{prints}</table>
<h3>Provenance</h3>
<table class="provenance"><thead><tr><th>template</th><th>run</th>{"".join(f"<th>{_e(k)}</th>" for k in PROVENANCE_PARAMS)}
<th>time</th></tr></thead><tbody>{provenance}</tbody></table>
</section>"""


def _run_row(record: RunRecord) -> str:
    metrics = record.metrics
    comparison = record.comparison
    versus = "-" if comparison is None else (
        ", ".join(f"{comparison.counts.get(change, 0)} {change.value}" for change in CHANGE_ORDER[:3])
        if comparison.comparable else "not comparable" if comparison.comparability_issues else "no stored run")
    return (f'<tr data-role="{_e(record.role.value)}"><th>{_e(record.template_id)}</th><td>{_e(record.role.value)}</td>'
            f"<td>{metrics.unsafe_claim_served}</td><td>{metrics.unnecessary_abstention}</td><td>{metrics.error_count}</td>"
            f"<td>{record.unevaluated}</td><td>{rate(metrics.exact_route_rate)}</td>"
            f'<td class="run-status">{_e(record.status.value)}</td><td>{_e(versus)}</td></tr>')


def _metric_cells(metrics: Metrics | None) -> str:
    if metrics is None:
        return "<td>-</td>" * 3
    return (f"<td>{metrics.unsafe_claim_served}</td><td>{metrics.unnecessary_abstention}</td>"
            f"<td>{rate(metrics.exact_route_rate)}</td>")


def _matrix_data(outcome: ExperimentOutcome) -> dict[str, Any]:
    records = outcome.records
    order: dict[tuple[str, str], int] = {}
    cases: list[list[str]] = []
    for record in records:
        for entry in record.cases:
            key = (entry.suite, entry.case_id)
            if key not in order:
                order[key] = len(cases)
                cases.append([entry.case_id, entry.suite, entry.slice_name, entry.evidence_state,
                              entry.expected_route.value])
    outcomes: list[str] = []
    changes: list[str | None] = []
    for record in records:
        codes = ["-"] * len(cases)
        for entry in record.cases:
            codes[order[(entry.suite, entry.case_id)]] = OUTCOME_CODES[entry.outcome]
        outcomes.append("".join(codes))
        comparison = record.comparison
        if comparison is None or not comparison.comparable:
            changes.append(None)
            continue
        marks = ["."] * len(cases)
        for delta in comparison.cases:
            position = order.get((delta.suite, delta.case_id))
            if position is not None:
                marks[position] = CHANGE_CODES[delta.change]
        changes.append("".join(marks))
    return {"runs": [{"template_id": r.template_id, "role": r.role.value} for r in records],
            "cases": cases, "outcomes": outcomes, "changes": changes}


def _chart(record: RunRecord, history: Iterable[_RunHead]) -> str:
    """A small SVG of the exact-route rate and the guardrail-failure rate over the stored runs of this template
    with the same evaluation fingerprint (this run included), oldest first."""
    points = [head for head in history if head.experiment == record.experiment
              and head.params.get("template_id") == record.template_id
              and head.params.get("evaluation_sha") == record.evaluation_sha]
    if not any(head.run_id == record.run_id for head in points):
        points.append(_RunHead(run_id=record.run_id, experiment=record.experiment, params=record.params,
                               metrics=record.metrics))
    points.sort(key=lambda head: head.run_id)
    width, height, pad = 260, 90, 12
    step = (width - 2 * pad) / max(len(points) - 1, 1)

    def y(value: float) -> float:
        return round(height - pad - value * (height - 2 * pad), 1)

    def line(values: list[float], css: str) -> str:
        coords = " ".join(f"{round(pad + i * step, 1)},{y(v)}" for i, v in enumerate(values))
        dots = "".join(f'<circle cx="{round(pad + i * step, 1)}" cy="{y(v)}" r="2.5" class="{css}">'
                       f"<title>{_e(points[i].run_id)}: {rate(v)}</title></circle>" for i, v in enumerate(values))
        return f'<polyline points="{coords}" class="{css}" fill="none"/>{dots}'

    exact = [head.metrics.exact_route_rate for head in points]
    failing = [(head.metrics.unsafe_claim_served + head.metrics.unnecessary_abstention) / head.metrics.case_count
               if head.metrics.case_count else 0.0 for head in points]
    return (f'<figure class="chart"><svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'role="img" aria-label="{_e(record.template_id)} over {len(points)} run(s)">'
            f'<rect x="0" y="0" width="{width}" height="{height}" class="frame"/>'
            f"{line(exact, 'exact')}{line(failing, 'failing')}</svg>"
            f"<figcaption>{_e(record.template_id)}: {len(points)} run(s); "
            f'<span class="exact">exact-route rate</span>, <span class="failing">guardrail failures</span> '
            f"(last {rate(exact[-1])}, {rate(failing[-1])})</figcaption></figure>")


_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1b1f24}
table{border-collapse:collapse;margin:.4em 0}th,td{border:1px solid #d0d7de;padding:2px 6px;text-align:left}
.decision{border:2px solid #57606a;padding:.2em 1em;margin-bottom:.6em}
.decision[data-status=PROMOTE]{border-color:#1a7f37;background:#dafbe1}
.decision h2{margin:.2em 0}.error{color:#cf222e}
.matrix-wrap{max-height:70vh;overflow:auto}.matrix td{font-family:monospace;font-size:12px}
table.only-f tbody tr:not(.f),table.only-ch tbody tr:not(.ch){display:none}
td.o-PASS{background:#dafbe1}td.o-UNSAFE_CLAIM_SERVED{background:#ffcecb}
td.o-UNNECESSARY_ABSTENTION{background:#fff1c2}td.o-ERROR{background:#e0c8ff}td.o-NOT_RUN{background:#eaeef2}
td.c-broken{outline:2px solid #cf222e;outline-offset:-2px}td.c-fixed{outline:2px solid #1a7f37;outline-offset:-2px}
.charts{display:flex;flex-wrap:wrap;gap:1em}.chart{margin:0}.frame{fill:#f6f8fa;stroke:#d0d7de}
polyline.exact{stroke:#0969da;stroke-width:2}circle.exact{fill:#0969da}
polyline.failing{stroke:#cf222e;stroke-width:2}circle.failing{fill:#cf222e}
span.exact{color:#0969da}span.failing{color:#cf222e}
"""

_SCRIPT = """
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("llmgate-data").textContent);
  var esc = function (text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
    });
  };
  document.querySelectorAll("table.matrix").forEach(function (table) {
    var exp = data.experiments[Number(table.dataset.experiment)];
    var section = table.closest("section");
    var failures = section.querySelector(".only-failures");
    var changes = section.querySelector(".only-changes");
    var shown = section.querySelector(".shown");
    var head = "<tr><th>case</th><th>suite</th><th>slice</th><th>evidence</th><th>expected</th>";
    exp.runs.forEach(function (run) { head += "<th>" + esc(run.template_id) + " (" + esc(run.role) + ")</th>"; });
    table.tHead.innerHTML = head + "</tr>";
    if (!exp.changes.some(function (c) { return c !== null; })) { changes.disabled = true; }
    var rows = exp.cases.map(function (c, i) {
      var failing = false, changed = false, cells = "";
      exp.runs.forEach(function (run, r) {
        var code = exp.outcomes[r].charAt(i);
        var outcome = data.codes.outcome[code];
        var mark = exp.changes[r] === null ? "." : exp.changes[r].charAt(i);
        var change = data.codes.change[mark];
        if (code !== "P") { failing = true; }
        if (mark !== ".") { changed = true; }
        cells += '<td data-run="' + r + '" class="o-' + outcome + (mark !== "." ? " c-" + change : "") + '">' +
          esc(outcome) + (mark !== "." ? " [" + esc(change) + "]" : "") + "</td>";
      });
      return {failing: failing, changed: changed,
              html: "<tr" + (failing || changed ? ' class="' + (failing ? "f" : "") + (changed ? " ch" : "") + '"' : "") +
                    "><td>" + esc(c[0]) + "</td><td>" + esc(c[1]) + "</td><td>" + esc(c[2]) + "</td><td>" +
                    esc(c[3]) + "</td><td>" + esc(c[4]) + "</td>" + cells + "</tr>"};
    });
    // Every row is drawn once; a filter only sets a class on the table, and the style hides the other rows.
    table.tBodies[0].innerHTML = rows.map(function (row) { return row.html; }).join("");
    var draw = function () {
      table.classList.toggle("only-f", failures.checked);
      table.classList.toggle("only-ch", changes.checked);
      var count = 0;
      rows.forEach(function (row) {
        if (!((failures.checked && !row.failing) || (changes.checked && !row.changed))) { count += 1; }
      });
      shown.textContent = "showing " + count + " of " + rows.length + " cases";
      table.dataset.shown = String(count);
    };
    failures.addEventListener("change", draw);
    changes.addEventListener("change", draw);
    draw();
  });
  document.body.dataset.ready = "true";
})();
"""

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>pytest-llmgate report</title><style>{style}</style></head>
<body>
<h1>pytest-llmgate</h1>
{decisions}{errors}{sections}
<script type="application/json" id="llmgate-data">{data}</script>
<script>{script}</script>
</body></html>
"""
