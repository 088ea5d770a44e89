"""The HTML report (``--llmgate-html``): one self-contained file, no network, every value escaped, no case input.

The sections are rendered here; the case x run matrix is drawn in the page from data embedded as JSON in a
``<script type="application/json">``, with a small script for its filters (failures only, changes only)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import msgspec

from pytest_llmgate.io.history import run_files
from pytest_llmgate.model.costs import Budget, usd
from pytest_llmgate.model.decision import decision_text
from pytest_llmgate.model.evidence import percent
from pytest_llmgate.model.vocab import CaseChange, Outcome
from pytest_llmgate.records.diff import CHANGE_ORDER, delta_text, headline
from pytest_llmgate.records.outcome import ExperimentOutcome, SessionResult
from pytest_llmgate.records.run import CaseEntry, Metrics, RunRecord
from pytest_llmgate.reports.table import count, escape, money, ms, rate

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
            f'<p class="in-progress">{escape(NO_VERDICT.format(started=started))}</p></body></html>\n')


def html_report(result: SessionResult, out_dir: Path) -> str:
    """The report page of a finished session; the chart's history is read from ``out_dir/runs``."""
    history = _history(out_dir)
    sections = [_experiment_section(index, outcome, history) for index, outcome in enumerate(result.outcomes)]
    data = {"experiments": [_matrix_data(outcome) for outcome in result.outcomes],
            "codes": {"outcome": {code: outcome.value for outcome, code in OUTCOME_CODES.items()},
                      "change": {code: change.value for change, code in CHANGE_CODES.items()}}}
    decisions = "".join(
        f'<section class="decision" data-status="{escape(outcome.verdict.status.value)}">'
        f'<h2><span class="exp">{escape(outcome.experiment.name)}</span> <span class="status">'
        f'{escape(outcome.verdict.status.value)}</span></h2><p class="decision-text">{escape(decision_text(outcome.verdict))}</p>'
        f'<p class="reason">{escape(outcome.verdict.reason)}</p></section>'
        for outcome in result.outcomes
    )
    errors = "".join(f'<p class="error">{escape(error.message())}</p>' for error in result.errors)
    return _PAGE.format(style=_STYLE, decisions=decisions, errors=errors, sections="".join(sections),
                        data=_json_script(data), script=_SCRIPT)


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
    records = outcome.records
    comparable = "yes" if verdict.comparable else "NO: " + "; ".join(
        f"{issue.field} differs" for issue in verdict.issues)
    rows = "".join(_run_row(record) for record in records)
    not_run = "".join(f"<li>{escape(plan.template_id)} ({escape(plan.role.value)}): not run, no record</li>"
                      for plan in outcome.not_run)
    prints = "".join(f"<tr><th>{escape(name)}</th><td><code>{escape(value)}</code></td></tr>"
                     for name, value in experiment.fingerprints.items())
    suites = sorted({suite for record in records for suite in record.suite_metrics})
    suite_rows = "".join(
        f"<tr><th>{escape(record.template_id)}</th>" + "".join(_metric_cells(record.suite_metrics.get(suite))
                                                           for suite in suites) + "</tr>"
        for record in records
    )
    suite_head = "".join(f'<th colspan="3">{escape(suite)}</th>' for suite in suites)
    suite_sub = "<th>unsafe</th><th>unnecessary</th><th>exact</th>" * len(suites)
    charts = "".join(_chart(record, history) for record in records)
    return f"""
<section class="experiment" id="exp-{index}">
<h2>{escape(experiment.name)}</h2>
<p>Comparable: <b class="comparable">{escape(comparable)}</b>; frozen: {"yes" if outcome.frozen else "no (no llmgate.lock)"}</p>
<h3>Runs</h3>
<div class="wrap"><table class="runs"><thead><tr><th>template</th><th>role</th><th>unsafe</th><th>unnecessary</th>
<th>errors</th><th>not run</th><th>exact</th><th>status</th><th>vs compared run</th></tr></thead>
<tbody>{rows}</tbody></table></div>
{f"<ul>{not_run}</ul>" if not_run else ""}
{_trials_section(records)}
{_paired_section(records)}
{_cost_section(experiment.budget, records)}
{_judge_section(records)}
{_compared_section(records)}
<h3>Cases</h3>
<p class="filters"><label><input type="checkbox" class="only-failures"> failures only</label>
<label><input type="checkbox" class="only-changes"> changes against the compared run only</label>
<span class="shown"></span></p>
<p class="legend">A cell: the case's outcome; with trials, how many of them passed (<code>19/20</code>) and
their agreement; then the case's cost and its slowest call, when measured.</p>
<div class="matrix-wrap"><table class="matrix" data-experiment="{index}"><thead></thead><tbody></tbody></table></div>
<h3>Metrics per suite</h3>
<div class="wrap"><table class="suites"><thead><tr><th></th>{suite_head}</tr><tr><th></th>{suite_sub}</tr></thead>
<tbody>{suite_rows}</tbody></table></div>
<h3>Over the stored runs of this comparison set (evaluation {escape(experiment.short_fingerprints.get("evaluation", ""))})</h3>
<div class="charts">{charts}</div>
<h3>Fingerprints</h3><div class="wrap"><table class="prints">{prints}</table></div>
<h3>Provenance</h3>
<div class="provenance-list">{"".join(_provenance(record) for record in records)}</div>
</section>"""


def _run_row(record: RunRecord) -> str:
    metrics = record.metrics
    comparison = record.comparison
    versus = "-" if comparison is None else (
        ", ".join(f"{comparison.counts.get(change, 0)} {change.value}" for change in CHANGE_ORDER[:3])
        if comparison.comparable else "not comparable" if comparison.comparability_issues else "no stored run")
    return (f'<tr data-role="{escape(record.role.value)}" data-template="{escape(record.template_id)}">'
            f"<th>{escape(record.template_id)}</th><td>{escape(record.role.value)}</td>"
            f"<td>{metrics.unsafe_claim_served}</td><td>{metrics.unnecessary_abstention}</td><td>{metrics.error_count}</td>"
            f"<td>{record.unevaluated}</td><td>{rate(metrics.exact_route_rate)}</td>"
            f'<td class="run-status">{escape(record.status.value)}</td><td>{escape(versus)}</td></tr>')


def _trials_section(records: Sequence[RunRecord]) -> str:
    """Case-trials, each guardrail's rate with its upper confidence bound, flaky cases and the evidence."""
    rows = []
    for record in records:
        metrics = record.metrics
        if metrics.trial_count is None:
            continue
        per_case = record.params.get("trials", "1")
        confidence = rate(metrics.confidence or 0.95)
        evidence = record.evidence.reason if record.evidence is not None else "no requirement set"
        flaky = sorted((case for case in record.cases if case.flaky), key=lambda case: (case.agreement or 0, case.case_id))
        worst = ", ".join(f"{case.case_id} ({case.passed_trials}/{len(case.trial_routes)} passed, agreement "
                          f"{rate(case.agreement or 0)})" for case in flaky[:3])
        rows.append(
            f'<tr data-template="{escape(record.template_id)}"><th>{escape(record.template_id)}</th>'
            f"<td>{metrics.trial_count} ({escape(per_case)} per case)</td>"
            f'<td class="unsafe-rate">{metrics.unsafe_trials} ({_percent(metrics.unsafe_rate)})</td>'
            f'<td class="unsafe-bound">{_percent(metrics.unsafe_rate_upper)} at {confidence}</td>'
            f'<td class="unnecessary-rate">{metrics.unnecessary_trials} ({_percent(metrics.unnecessary_rate)})</td>'
            f'<td class="unnecessary-bound">{_percent(metrics.unnecessary_rate_upper)} at {confidence}</td>'
            f'<td class="flaky">{metrics.flaky_count or 0}{": " + escape(worst) if worst else ""}</td>'
            f'<td class="evidence">{escape(evidence)}</td></tr>')
    if not rows:
        return ""
    return ("<h3>Trials and confidence bounds</h3>"
            '<div class="wrap"><table class="trials"><thead><tr><th>template</th><th>case-trials</th>'
            "<th>unsafe trials (rate)</th><th>unsafe upper bound</th><th>unnecessary trials (rate)</th>"
            "<th>unnecessary upper bound</th><th>flaky cases (worst)</th><th>evidence</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def _paired_section(records: Sequence[RunRecord]) -> str:
    """Each candidate against each baseline of the session, case by case, with the exact McNemar p-value."""
    rows = "".join(
        f'<tr data-template="{escape(record.template_id)}" data-baseline="{escape(comparison.baseline_template_id)}">'
        f"<th>{escape(record.template_id)}</th><td>{escape(comparison.baseline_template_id)}</td>"
        f"<td>{len(comparison.fixed)}{_ids(comparison.fixed)}</td><td>{len(comparison.broken)}{_ids(comparison.broken)}</td>"
        f"<td>{comparison.both_pass}</td><td>{comparison.both_fail}</td>"
        f'<td class="mcnemar-p">{escape(f"{comparison.p_value:.4g}")}</td></tr>'
        for record in records for comparison in record.comparisons
    )
    if not rows:
        return ""
    return ("<h3>Against the baseline, case by case</h3>"
            '<div class="wrap"><table class="paired"><thead><tr><th>candidate</th><th>baseline</th><th>fixed</th>'
            "<th>broken</th><th>both pass</th><th>both fail</th><th>exact McNemar p</th></tr></thead>"
            f"<tbody>{rows}</tbody></table></div>"
            '<p class="note">Pass = every trial passed; cases that errored or did not run on either side are not '
            "paired. The p-value is evidence for the reviewer; the decision stays the guardrail rule.</p>")


def _ids(ids: Sequence[str]) -> str:
    if not ids:
        return ""
    return " (" + escape(", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")) + ")"


def _cost_section(budget: Budget | None, records: Sequence[RunRecord]) -> str:
    """Tokens, money and latency per run, the budget's limits and each limit a run broke."""
    if budget is None and all(record.metrics.cost is None for record in records):
        return ""
    rows = []
    for record in records:
        cost = record.metrics.cost
        cells: list[str] = ["-"] * 10 if cost is None else [
            str(cost.calls), count(cost.input_tokens), count(cost.output_tokens),
            money(cost.cost_usd, cost), money(cost.cost_per_case_usd, cost),
            count(cost.output_tokens_per_case), ms(cost.latency_p50_ms, space=" "), ms(cost.latency_p95_ms, space=" "),
            ms(cost.latency_max_ms, space=" "), str(cost.rate_limited)]
        names = ("calls", "tokens-in", "tokens-out", "cost", "cost-per-case", "out-per-case", "p50", "p95", "max",
                 "rate-limited")
        budget_cell = ("over: " + "; ".join(record.over_budget)) if record.over_budget else (
            "within" if budget is not None and record.complete else "-")
        rows.append(f'<tr data-template="{escape(record.template_id)}"><th>{escape(record.template_id)}</th>'
                    + "".join(f'<td class="{name}">{escape(cell)}</td>' for name, cell in zip(names, cells, strict=True))
                    + f'<td class="budget">{escape(budget_cell)}</td></tr>')
    set_limits = [] if budget is None else [f"{name} {_limit(name, value)}"
                                            for name, value in msgspec.structs.asdict(budget).items()
                                            if value is not None]
    limits = "budget: " + ", ".join(set_limits) if set_limits else "no budget set"
    return ("<h3>Cost and latency</h3>"
            f'<p class="budget-limits">{escape(limits)}</p>'
            '<div class="wrap"><table class="costs"><thead><tr><th>template</th><th>calls</th><th>tokens in</th>'
            "<th>tokens out</th><th>cost</th><th>cost per case</th><th>output tokens per case</th>"
            "<th>latency p50</th><th>latency p95</th><th>latency max</th><th>429s absorbed</th><th>budget</th></tr>"
            f"</thead><tbody>{''.join(rows)}</tbody></table></div>"
            '<p class="note">Latency percentiles are over calls (nearest rank); cost <code>?</code>: the model has '
            "no known price; <code>-</code>: no tokens reported.</p>")


def _limit(name: str, value: object) -> str:
    if not isinstance(value, (int, float)):
        return str(getattr(value, "value", value))  # unknown_figures: block or allow
    if name.endswith("_usd"):
        return usd(value)
    if name.endswith("_ms"):
        return ms(value, space=" ")
    return f"{value:g}"


def _judge_section(records: Sequence[RunRecord]) -> str:
    rows = "".join(
        f"<tr><th>{escape(record.template_id)}</th><td>{escape(judge.evaluator_id)} ({escape(judge.kind)}"
        f"{', ' + escape(judge.model) if judge.model else ''})</td><td>{'yes' if judge.may_gate else 'NO'}</td>"
        f"<td>{escape(judge.reason)}</td><td>{judge.judge_calls}</td>"
        f"<td>{count(judge.judge_input_tokens)} / {count(judge.judge_output_tokens)}</td></tr>"
        for record in records if (judge := record.evaluator) is not None
    )
    if not rows:
        return ""
    return ("<h3>Evaluator</h3>"
            '<div class="wrap"><table class="judge"><thead><tr><th>template</th><th>evaluator</th><th>may gate</th>'
            "<th>why</th><th>judge calls</th><th>judge tokens in / out</th></tr></thead>"
            f"<tbody>{rows}</tbody></table></div>")


def _compared_section(records: Sequence[RunRecord]) -> str:
    """Each run against its stored counterpart (``--llmgate-compare-to``): the headline, deltas, changed cases."""
    parts = []
    for record in records:
        comparison = record.comparison
        if comparison is None:
            continue
        deltas = f"; {escape(delta_text(comparison))}" if comparison.comparable else ""
        changed = "".join(
            f'<tr class="ch-{escape(delta.change.value)}"><td>{escape(delta.case_id)}</td><td>{escape(delta.suite)}</td>'
            f"<td>{escape(delta.change.value)}</td><td>{escape(delta.before.value if delta.before else 'absent')}</td>"
            f"<td>{escape(delta.after.value if delta.after else 'absent')}</td></tr>"
            for delta in comparison.cases)
        table = ('<div class="wrap"><table class="changed"><thead><tr><th>case</th><th>suite</th><th>change</th>'
                 f"<th>before</th><th>after</th></tr></thead><tbody>{changed}</tbody></table></div>") if changed else ""
        parts.append(f"<li><b>{escape(record.template_id)}</b>: {escape(headline(comparison))}{deltas}{table}</li>")
    if not parts:
        return ""
    return f"<h3>Against the compared runs</h3><ul class='comparisons'>{''.join(parts)}</ul>"


def _provenance(record: RunRecord) -> str:
    """One run's provenance as a two-column table: it holds on a phone, long hashes wrap."""
    rows = [("run", record.run_id), *((key, record.params.get(key, "-")) for key in PROVENANCE_PARAMS),
            ("started", record.started_at), ("finished", record.finished_at)]
    return (f'<table class="provenance"><caption>{escape(record.template_id)} ({escape(record.role.value)})</caption>'
            + "".join(f"<tr><th>{escape(name)}</th><td><code>{escape(text)}</code></td></tr>" for name, text in rows)
            + "</table>")


def _metric_cells(metrics: Metrics | None) -> str:
    if metrics is None:
        return "<td>-</td>" * 3
    return (f"<td>{metrics.unsafe_claim_served}</td><td>{metrics.unnecessary_abstention}</td>"
            f"<td>{rate(metrics.exact_route_rate)}</td>")


# -- figures as people read them ------------------------------------------------------------------
def _percent(value: float | None) -> str:
    return "-" if value is None else percent(value)


def _case_detail(entry: CaseEntry) -> str:
    """What a matrix cell says beyond the outcome: k of n trials passed and their agreement, cost, latency."""
    parts = []
    if entry.trial_routes:
        parts.append(f"{entry.passed_trials}/{len(entry.trial_routes)} passed, agreement {rate(entry.agreement or 0)}")
    cost = entry.cost
    if cost is not None:
        if cost.cost_usd is not None:
            parts.append(usd(cost.cost_usd))
        if cost.latency_ms is not None:
            parts.append(ms(cost.latency_ms, space=" "))
        if cost.rate_limited:
            parts.append(f"{cost.rate_limited} 429s")
    return "; ".join(parts)


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
    details: list[list[str] | None] = []
    for record in records:
        codes = ["-"] * len(cases)
        detail = [""] * len(cases)
        for entry in record.cases:
            position = order[(entry.suite, entry.case_id)]
            codes[position] = OUTCOME_CODES[entry.outcome]
            detail[position] = _case_detail(entry)
        outcomes.append("".join(codes))
        details.append(detail if any(detail) else None)
        comparison = record.comparison
        if comparison is None or not comparison.comparable:
            changes.append(None)
            continue
        marks = ["."] * len(cases)
        for delta in comparison.cases:
            found = order.get((delta.suite, delta.case_id))
            if found is not None:
                marks[found] = CHANGE_CODES[delta.change]
        changes.append("".join(marks))
    return {"runs": [{"template_id": r.template_id, "role": r.role.value} for r in records],
            "cases": cases, "outcomes": outcomes, "changes": changes, "details": details}


def _chart(record: RunRecord, history: Iterable[_RunHead]) -> str:
    """An SVG of the exact-route rate and the guardrail-failure rate (percent, y) over the stored runs (x, oldest
    first) of this template with the same evaluation fingerprint and the same trials per case, this run included."""
    trials = record.params.get("trials", "1")
    points = [head for head in history if head.experiment == record.experiment
              and head.params.get("template_id") == record.template_id
              and head.params.get("evaluation_sha") == record.evaluation_sha
              and head.params.get("trials", "1") == trials]
    if not any(head.run_id == record.run_id for head in points):
        points.append(_RunHead(run_id=record.run_id, experiment=record.experiment, params=record.params,
                               metrics=record.metrics))
    points.sort(key=lambda head: head.run_id)
    width, height = 300, 150
    left, right, top, bottom = 40, 10, 10, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / max(len(points) - 1, 1)

    def x(i: int) -> float:
        return round(left + (i * step if len(points) > 1 else plot_w / 2), 1)

    def y(value: float) -> float:
        return round(top + plot_h - value * plot_h, 1)

    def line(values: list[float], css: str) -> str:
        coords = " ".join(f"{x(i)},{y(v)}" for i, v in enumerate(values))
        dots = "".join(f'<circle cx="{x(i)}" cy="{y(v)}" r="3" class="{css}">'
                       f"<title>{escape(points[i].run_id)}: {rate(v)}</title></circle>" for i, v in enumerate(values))
        return f'<polyline points="{coords}" class="{css}" fill="none"/>{dots}'

    ticks = "".join(
        f'<line x1="{left}" y1="{y(v)}" x2="{width - right}" y2="{y(v)}" class="grid"/>'
        f'<text x="{left - 4}" y="{y(v) + 4}" text-anchor="end" class="tick">{int(v * 100)}%</text>'
        for v in (0.0, 0.5, 1.0))
    axes = (f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" class="axis"/>'
            f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" class="axis"/>'
            f'<text x="{left}" y="{height - 18}" class="tick">1</text>'
            f'<text x="{width - right}" y="{height - 18}" text-anchor="end" class="tick">{len(points)}</text>'
            f'<text x="{left + plot_w / 2}" y="{height - 4}" text-anchor="middle" class="axis-label">'
            "stored run (oldest first)</text>")
    exact = [head.metrics.exact_route_rate for head in points]
    failing = [(head.metrics.unsafe_claim_served + head.metrics.unnecessary_abstention) / head.metrics.case_count
               if head.metrics.case_count else 0.0 for head in points]
    per_case = f"{trials} trials per case" if trials != "1" else "one trial per case"
    return (f'<figure class="chart"><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" role="img" aria-label="{escape(record.template_id)} over '
            f'{len(points)} run(s)"><rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" class="frame"/>'
            f"{ticks}{axes}{line(exact, 'exact')}{line(failing, 'failing')}</svg>"
            f"<figcaption>{escape(record.template_id)}: {len(points)} run(s), {per_case}; y: percent of cases; "
            f'<span class="exact">exact-route rate</span>, <span class="failing">guardrail failures</span> '
            f"(last {rate(exact[-1])}, {rate(failing[-1])})</figcaption></figure>")


_STYLE = """
*{box-sizing:border-box}
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1b1f24;max-width:100%}
h1,h2,h3,p,li{overflow-wrap:anywhere}
table{border-collapse:collapse;margin:.4em 0;overflow-wrap:normal}th,td{border:1px solid #d0d7de;padding:2px 6px;text-align:left;
vertical-align:top}caption{text-align:left;font-weight:600;padding:.2em 0}
td code{word-break:break-all}
.wrap{max-width:100%;overflow-x:auto}
.decision{border:2px solid #57606a;padding:.2em 1em;margin-bottom:.6em}
.decision[data-status=PROMOTE]{border-color:#1a7f37;background:#dafbe1}
.decision h2{margin:.2em 0}.error{color:#cf222e}.note,.legend,.budget-limits{color:#57606a}
.matrix-wrap{max-height:70vh;max-width:100%;overflow:auto}.matrix td{font-family:monospace;font-size:12px}
.matrix td small{display:block;color:#424a53;white-space:nowrap}
table.only-f tbody tr:not(.f),table.only-ch tbody tr:not(.ch){display:none}
td.o-PASS{background:#dafbe1}td.o-UNSAFE_CLAIM_SERVED{background:#ffcecb}
td.o-UNNECESSARY_ABSTENTION{background:#fff1c2}td.o-ERROR{background:#e0c8ff}td.o-NOT_RUN{background:#eaeef2}
td.c-broken{outline:2px solid #cf222e;outline-offset:-2px}td.c-fixed{outline:2px solid #1a7f37;outline-offset:-2px}
.provenance-list{display:flex;flex-wrap:wrap;gap:1em}.provenance-list table{max-width:36em;width:100%}
.provenance th{white-space:nowrap}
.charts{display:flex;flex-wrap:wrap;gap:1em}.chart{margin:0;width:300px;max-width:100%}.chart svg{max-width:100%;height:auto}
.frame{fill:#f6f8fa;stroke:none}.grid{stroke:#d0d7de;stroke-dasharray:2 2}.axis{stroke:#57606a}
.tick,.axis-label{font-size:10px;fill:#424a53}
polyline.exact{stroke:#0969da;stroke-width:2}circle.exact{fill:#0969da}
polyline.failing{stroke:#cf222e;stroke-width:2}circle.failing{fill:#cf222e}
span.exact{color:#0969da}span.failing{color:#cf222e}
@media (max-width:700px){body{margin:.5em;font-size:13px}th,td{padding:2px 4px}}
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
        var detail = exp.details[r] === null ? "" : exp.details[r][i];
        cells += '<td data-run="' + r + '" class="o-' + outcome + (mark !== "." ? " c-" + change : "") + '">' +
          '<span class="verdict">' + esc(outcome) + (mark !== "." ? " [" + esc(change) + "]" : "") + "</span>" +
          (detail ? "<small>" + esc(detail) + "</small>" : "") + "</td>";
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
