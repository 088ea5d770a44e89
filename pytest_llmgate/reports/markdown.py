"""The Markdown summary of a session: for a CI job summary (``$GITHUB_STEP_SUMMARY``), a pull-request comment,
or any file. It stays under GitHub's comment limit however many cases there are: rows beyond a few go into a
collapsed ``<details>``, rows beyond the budget are left out and counted, never cut silently."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import msgspec

from pytest_llmgate.io.store import PREVIOUS_REPORT_FILE, REPORT_FILE, REPORTS, RUNS
from pytest_llmgate.model.decision import decision_text
from pytest_llmgate.model.transcript import visible
from pytest_llmgate.model.vocab import CaseChange, Outcome
from pytest_llmgate.records.diff import ALL_CASES, CHANGE_ORDER, CaseDelta, StoredComparison, delta_text, headline
from pytest_llmgate.records.outcome import ExperimentOutcome, SessionResult
from pytest_llmgate.records.run import CaseEntry, RunRecord
from pytest_llmgate.reports.table import rate
from pytest_llmgate.reports.terminal import cost_cells, cost_columns, run_notes

FAILING = (Outcome.UNSAFE_CLAIM_SERVED, Outcome.UNNECESSARY_ABSTENTION, Outcome.ERROR, Outcome.NOT_RUN)
#: GitHub's limit on a comment body (characters); the summary stays below it with room to spare.
COMMENT_LIMIT = 65_536
BUDGET = 60_000
#: Room kept for the lines that say what was left out.
RESERVE = 1_000
#: The most characters of any one text a user wrote (a limitation, a name, a reason) in the summary.
TEXT_LIMIT = 1_000
#: The notes and errors shown; the rest are counted.
SHOWN_MESSAGES = 20
#: Rows of a table shown open; the rest go into a collapsed ``<details>``.
OPEN_ROWS = 5
#: The first line of every summary: a pull-request workflow finds its own comment by it.
MARKER = "<!-- pytest-llmgate summary -->"
#: The first line of the file a session writes at its start, before any verdict: a workflow posts nothing then.
IN_PROGRESS_MARKER = "<!-- pytest-llmgate in progress: no verdict -->"
#: What the in-progress marker says, in Markdown and in the HTML page.
NO_VERDICT = ("No verdict: the session that writes this summary started at {started}; it replaces this page when "
              "it finishes. Still here after it ended: it gated nothing, stopped at collection or on a usage error, "
              "or was interrupted or killed. Nothing here is a decision.")


#: What each summary file starts with (within its first kilobyte) once the gate wrote it: only such a file is replaced.
_SUMMARY_MARKS = {"markdown": (MARKER.encode(), IN_PROGRESS_MARKER.encode()), "html": (b"<title>pytest-llmgate",)}


def summary_target_problem(targets: Mapping[str, Path], out_dir: Path, prefix: str) -> str | None:
    """Why the Markdown summary or the HTML report (``targets``: ``markdown``/``html`` to a path; options named
    ``prefix`` + the key) may not be written there, or None: the records folder's own files (``report.json``,
    ``runs/``, ``reports/``), the other one's file, or an existing file the gate did not write (a suite, another
    tool's report; an empty file holds nothing and may be)."""
    if len({path.resolve() for path in targets.values()}) < len(targets):
        return f"{prefix}markdown and {prefix}html name the same file ({targets['html']}); name two"
    records = out_dir.resolve()
    own = {records / REPORT_FILE, records / PREVIOUS_REPORT_FILE}
    for option, path in targets.items():
        resolved = path.resolve()
        if resolved in own or any(resolved.is_relative_to(records / folder) for folder in (RUNS, REPORTS)):
            return (f"{prefix}{option}={path}: is one of the records folder's own files; name another (beside them "
                    "is fine: DIR/report.html)")
        if path.is_file():
            with path.open("rb") as existing:
                head = existing.read(1024)
            if head and not any(mark in head for mark in _SUMMARY_MARKS[option]):
                return (f"{prefix}{option}={path}: is a file the gate did not write; it is never replaced: name a "
                        "new one, or remove it")
    return None


def in_progress_markdown(started: str) -> str:
    """What ``--llmgate-markdown`` holds from a session's start to its end: no verdict (never a stale one)."""
    return f"{IN_PROGRESS_MARKER}\n## pytest-llmgate\n\n**{NO_VERDICT.format(started=started)}**\n"


class _Rows(msgspec.Struct):
    """A table whose rows share the remaining budget with every other table; ``what`` names its rows."""

    what: str
    header: list[str]
    rows: list[str]
    kept: int = 0

    @property
    def overhead(self) -> int:
        """The header twice (open and collapsed parts), the <details> wrapper and the "left out" line."""
        return 2 * sum(len(line) + 1 for line in self.header) + 300


def markdown_summary(result: SessionResult, budget: int = BUDGET) -> str:
    """Per experiment: the table, fingerprints, decision, the changes against stored runs (broken first) and the
    failing cases with their guardrail; within ``budget`` characters. Experiments that do not fit are listed with
    their decision, then counted; every text a user wrote (names, ids, the limitation, reasons) is shown as text:
    no mention, link, image or HTML of it is live."""
    head: list[str | _Rows] = [MARKER, "## pytest-llmgate", ""]
    tail: list[str | _Rows] = [f"> **note:** {_text(note.removeprefix('llmgate: '))}"
                               for note in result.notes[:SHOWN_MESSAGES]]
    tail += [f"> **error:** {_text(error.message())}" for error in result.errors[:SHOWN_MESSAGES]]
    more = max(0, len(result.notes) - SHOWN_MESSAGES) + max(0, len(result.errors) - SHOWN_MESSAGES)
    if more:
        tail.append(f"> {more} more note(s) and error(s) left out of this summary; the terminal shows them all.")
    left = budget - _size(head) - _size(tail) - RESERVE
    blocks = list(head)
    outcomes = list(result.outcomes)
    while outcomes and _size(shown := _experiment_blocks(outcomes[0])) <= left:
        blocks += shown
        left -= _size(shown)
        outcomes.pop(0)
    if outcomes:  # the rest: one line each while they fit, then a count
        listed = []
        for outcome in outcomes:
            line = f"- {_text(outcome.experiment.name, 200)}: {outcome.verdict.status.value}"
            if len(line) + 1 > left:
                break
            listed.append(line)
            left -= len(line) + 1
        blocks += ["#### More experiments", "", *listed, "",
                   f"> {len(outcomes)} experiment(s) summarised in one line"
                   + (f" ({len(outcomes) - len(listed)} left out entirely)" if len(listed) < len(outcomes) else "")
                   + f" to stay under GitHub's {COMMENT_LIMIT:,}-character limit; report.json, the run records "
                   "and the HTML report hold every one.", ""]
    blocks += tail
    _share(blocks, budget)
    return "\n".join(_render(blocks)).rstrip() + "\n"


def _size(blocks: list[str | _Rows]) -> int:
    """What blocks take before any table row is given: their lines and each table's overhead."""
    return sum(len(block) + 1 if isinstance(block, str) else block.overhead for block in blocks)


def _experiment_blocks(outcome: ExperimentOutcome) -> list[str | _Rows]:
    """One experiment's part of the summary; its tables get their rows later (``_share``)."""
    experiment = outcome.experiment
    compared = any(record.comparison is not None for record in outcome.records)
    columns = cost_columns(outcome)
    blocks: list[str | _Rows] = [
        f"### {_text(experiment.name)}", "",
        "| template | role | unsafe | unnecessary | exact | "
        + "".join(f"{column} | " for column in columns) + "status |"
        + (" vs stored run |" if compared else ""),
        "|---|---|---:|---:|---:|" + "---:|" * len(columns) + "---|"
        + ("---|" if compared else "")]
    for record in outcome.records:
        metrics = record.metrics
        cells = "".join(f"{cell} | " for cell in cost_cells(outcome, record))
        vs = f" {_text(_short(record.comparison))} |" if compared else ""
        blocks.append(f"| {_code(record.template_id)} | {record.role.value} | {metrics.unsafe_claim_served} | "
                      f"{metrics.unnecessary_abstention} | {rate(metrics.exact_route_rate)} | {cells}"
                      f"{record.status.value} |" + vs)
    for record in outcome.records:
        if record.over_budget:
            blocks += ["", f"**Over budget:** {_code(record.template_id)}: {_text('; '.join(record.over_budget))}"]
    notes = [note for record in outcome.records for note in run_notes(record)]
    if notes:
        blocks += [""] + [f"- {_text(note)}" for note in notes]
    prints = ", ".join(f"{_text(name)} {_code(value)}" for name, value in experiment.short_fingerprints.items())
    blocks += ["", f"**Fingerprints:** {prints}" + ("" if outcome.frozen else " (not frozen: no `llmgate.lock`)"),
               "", f"**Decision:** {_text(decision_text(outcome.verdict))}", ""]
    if compared:
        blocks += ["#### Changes against the stored runs", ""]
        changes: list[tuple[RunRecord, CaseDelta]] = []
        for record in outcome.records:
            if record.comparison is None:
                continue
            blocks.append(f"- {_code(record.template_id)} ({record.role.value}): "
                          + _text(headline(record.comparison)
                                  + (f"; {delta_text(record.comparison)}" if record.comparison.comparable else "")))
            changes += [(record, delta) for delta in record.comparison.cases]
        blocks.append("")
        if changes:
            changes.sort(key=lambda pair: CHANGE_ORDER.index(pair[1].change))  # broken first, stable within
            blocks.append(_Rows("changed cases", ["| template | case | suite | change | before | after |",
                                                  "|---|---|---|---|---|---|"],
                                [_change_row(record, delta) for record, delta in changes]))
    failing = [_failing_row(record, case) for record in outcome.records for case in record.cases
               if case.outcome in FAILING]
    if failing:
        blocks.append(_Rows("failing cases", ["| template | case | suite | slice | evidence | outcome |",
                                              "|---|---|---|---|---|---|"], failing))
    return blocks


def _share(blocks: list[str | _Rows], budget: int) -> None:
    """Give each table as many rows as fit, changed cases before failing cases, in order."""
    left = budget - _size(blocks)
    tables = [block for block in blocks if isinstance(block, _Rows)]
    for table in sorted(tables, key=lambda table: table.what != "changed cases"):
        for row in table.rows:
            if len(row) + 1 > left:
                break
            left -= len(row) + 1
            table.kept += 1


def _render(blocks: list[str | _Rows]) -> list[str]:
    lines: list[str] = []
    for block in blocks:
        if isinstance(block, str):
            lines.append(block)
            continue
        shown = block.rows[:min(block.kept, OPEN_ROWS)]
        hidden = block.rows[len(shown):block.kept]
        left_out = len(block.rows) - block.kept
        if shown:
            lines += [*block.header, *shown, ""]
        if hidden:
            lines += [f"<details><summary>{len(hidden)} more {block.what}</summary>", "", *block.header, *hidden, "",
                      "</details>", ""]
        if left_out:
            lines += [f"> {left_out} more {block.what} left out of this summary to stay under GitHub's "
                      f"{COMMENT_LIMIT:,}-character limit; every case is in the run records and the HTML report.", ""]
    return lines


def _short(comparison: StoredComparison | None) -> str:
    if comparison is None:
        return "-"
    if not comparison.comparable:
        return "not comparable" if comparison.comparability_issues else "no stored run"
    counts = comparison.counts
    parts = [f"{counts.get(change, 0)} {change.value}" for change in (CaseChange.BROKEN, CaseChange.FIXED)]
    delta = comparison.metric_deltas.get(ALL_CASES)
    if delta is not None and delta.exact_route_rate:
        parts.append(f"exact {delta.exact_route_rate * 100:+.1f} pt")
    return ", ".join(parts)


def _change_row(record: RunRecord, delta: CaseDelta) -> str:
    before = delta.before.value if delta.before is not None else "-"
    after = delta.after.value if delta.after is not None else "-"
    return (f"| {_code(record.template_id)} | {_code(delta.case_id)} | {_text(delta.suite)} | {delta.change.value} | "
            f"{before} | {after} |")


def _failing_row(record: RunRecord, case: CaseEntry) -> str:
    return (f"| {_code(record.template_id)} ({record.role.value}) | {_code(case.case_id)} | {_text(case.suite)} | "
            f"{_text(case.slice_name)} | {_text(case.evidence_state)} | {case.outcome.value} |")


def _cut(text: str, limit: int) -> str:
    """One line of at most ``limit`` characters of ``text``, saying how much was cut, nothing in it acting
    (``visible``)."""
    text = visible(" ".join(text.split()))
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} more characters cut)"


#: The Markdown signs escaped in a user's text: a backslash, a code span, a link or image (brackets), a column
#: break, emphasis and strike-through.
_MARKDOWN_SIGNS = re.compile(r"([\\`\[\]|*~])")
#: Where GitHub would make a link of its own: a mention, a URL, an issue or pull-request number.
_AUTOLINKS = re.compile(r"(@|:(?=//)|(?<![A-Za-z0-9])www(?=\.)|#(?=[0-9]))", re.IGNORECASE)


def _text(text: str, limit: int = TEXT_LIMIT) -> str:
    """Text a user wrote, safe anywhere in a comment, a table cell included, and shown as written: one line, cut to
    ``limit`` characters; the Markdown signs of links, images, code and columns escaped; HTML escaped; a
    zero-width space after each ``@`` (no mention), inside ``://`` and ``www.`` (no autolink) and after a ``#``
    before a digit (no issue link)."""
    text = _MARKDOWN_SIGNS.sub(r"\\\1", _cut(text, limit))
    text = text.replace("&", "&amp;").replace("<", "&lt;")  # no tag, no autolink <...>, no entity of the user's
    return _AUTOLINKS.sub(lambda match: match.group(1) + "&#8203;", text)


def _code(text: str) -> str:
    """An id shown as code (nothing in a code span is live: no mention, link, image or HTML), on one line of at
    most 200 characters, with no backtick that could end the span; a ``|`` escaped for tables (GitHub shows ``|``)."""
    return "`" + _cut(text, 200).replace("`", "'").replace("|", "\\|") + "`"
