"""The ``llmgate`` command: audit, compare, diff, promote and watch a canary from stored records alone."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple, TextIO, cast

import msgspec

from pytest_llmgate.cli.calibrate import add_calibrate, positive
from pytest_llmgate.cli.view import add_view
from pytest_llmgate.io.audit import (
    Audited,
    StoredRun,
    SuiteCheck,
    Unverifiable,
    audit,
    check_run,
    decision_run,
    note_lines,
    read_run,
    read_verdict,
    refuse,
    report_runs,
    same_template,
    unverifiable,
)
from pytest_llmgate.io.history import find_runs, latest_per_template, resolve_runs, run_files
from pytest_llmgate.io.lock import lock_state, read_lock
from pytest_llmgate.io.signing import sign, signing_key
from pytest_llmgate.io.store import REPORT_FILE, RUNS, timestamp, utc_now, write_replacing
from pytest_llmgate.model.canary import canary_call
from pytest_llmgate.model.costs import usd, usd_change
from pytest_llmgate.model.decision import NAME_PATTERN, Decision, comparability_issues, decide, decision_text
from pytest_llmgate.model.defaults import DEFAULT_DIR, MANIFEST_NAME
from pytest_llmgate.model.errors import LlmgateError, RecordError, display_path
from pytest_llmgate.model.fingerprint import short
from pytest_llmgate.model.transcript import visible
from pytest_llmgate.model.vocab import (
    RUN_SCHEMA,
    SIGNING_KEY_ENV,
    CanaryVerdict,
    CaseChange,
    DecisionStatus,
    MatchedBy,
    Role,
    RunStatus,
)
from pytest_llmgate.records.canary_window import unsafe_requests_in
from pytest_llmgate.records.codec import dump, load, load_json, read_bytes
from pytest_llmgate.records.comparison import compare, counterpart
from pytest_llmgate.records.diff import GATING_FIGURES, comparison_lines, ms_change
from pytest_llmgate.records.experiment import load_experiment
from pytest_llmgate.records.run import RunRecord
from pytest_llmgate.records.suite import load_suite
from pytest_llmgate.reports.table import format_table, ms, rate

OK, REJECTED, ERROR = 0, 1, 2


class _Shown(io.TextIOBase):
    """A terminal stream as the commands write to it: nothing a record, manifest or reply holds acts on the terminal
    (an escape sequence, a bidi override: ``visible``); JSON printed stays the same JSON."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(visible(text))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with contextlib.redirect_stderr(cast("TextIO", _Shown(sys.stderr))):
            code = int(args.handler(args, cast("TextIO", _Shown(sys.stdout))))
        sys.stdout.flush()  # a closed pipe is said here, not at the interpreter's exit
        return code
    except LlmgateError as exc:
        print(visible(f"llmgate: error: {exc.message()}"), file=sys.stderr)
        return ERROR
    except BrokenPipeError:  # the reader went away (`llmgate runs | head -1`): stop quietly, as other tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's flush at exit has nowhere to fail
        return 1  # what the Python docs advise (signal module: "Note on SIGPIPE")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llmgate", description="Audit and decide from pytest-llmgate's stored run records."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    records_dir = f"the records folder (default {DEFAULT_DIR})"
    runs = commands.add_parser("runs", help="one line per stored run, oldest first")
    runs.add_argument("--experiment", metavar="NAME", help="only this experiment's runs")
    runs.add_argument("--template", metavar="ID", help="only this template's runs")
    runs.add_argument("--last", type=positive, metavar="N", help="only the last N runs (after the filters)")
    runs.add_argument("--all", action="store_true", help="partial runs too (of a session narrowed by -k, --deselect "
                      "or --lf, or stopped by -x); hidden by default")
    runs.add_argument("--dir", type=Path, default=None, help=records_dir)
    runs.set_defaults(handler=cmd_runs)

    compare = commands.add_parser("compare", help="comparability audit, then the runs side by side")
    _run_selection(compare, records_dir)
    compare.set_defaults(handler=cmd_compare)

    diff = commands.add_parser("diff", help="what changed from OLD to NEW: fixed, broken, unchanged cases")
    diff.add_argument("old", metavar="OLD", help="records folder, report.json, run file, or run id (prefix) in --dir")
    diff.add_argument("new", metavar="NEW", help="the same kinds; each of its runs is compared with its counterpart")
    diff.add_argument("--dir", type=Path, default=Path(DEFAULT_DIR), help=records_dir)
    diff.add_argument("--limit", type=_non_negative, default=10, metavar="N", help="cases listed per kind (default 10)")
    diff.set_defaults(handler=cmd_diff)

    promote = commands.add_parser("promote", help="the promotion decision over stored runs")
    _run_selection(promote, records_dir)
    promote.add_argument("--alias", type=_one_line,
                         help="alias to point at the promoted artifact (default: the recorded one)")
    promote.add_argument("--rollback", metavar="ARTIFACT", type=_one_line,
                         help="rollback artifact (default: the recorded one; never the promoted one)")
    promote.add_argument("--out", type=Path, metavar="FILE", help="write the decision JSON here instead of stdout")
    promote.set_defaults(handler=cmd_promote)

    canary = commands.add_parser("canary", help="continue the canary, or roll back")
    canary.add_argument("source", type=Path, metavar="REPORT_OR_DECISION", help="report.json or a decision JSON")
    observed = canary.add_mutually_exclusive_group(required=True)
    observed.add_argument("--unsafe-claims", type=_non_negative, metavar="N", help="unsafe claims observed in the canary")
    observed.add_argument("--window", type=Path, metavar="FILE.jsonl", help="one observed canary request per line")
    canary.add_argument("--dir", type=Path, metavar="DIR", help="the records folder holding a decision file's run "
                        f"(default: the folder beside the decision when it has a runs/ folder, else {DEFAULT_DIR})")
    canary.set_defaults(handler=cmd_canary)

    verify = commands.add_parser(
        "verify", help="check stored records, reports and decisions: recomputed fields, hashes, signatures",
        description="Check run records, session reports and decision files (a folder: its runs/ and report.json). "
                    f"With {SIGNING_KEY_ENV} set, a missing or wrong signature is refused too.",
    )
    verify.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="a record, report, decision or records folder")
    verify.set_defaults(handler=cmd_verify)

    merge = commands.add_parser("merge", help="the parts of a split run (one per CI job) as one run and decision")
    merge.add_argument("dirs", nargs="+", type=Path, metavar="DIR", help="a records folder holding part records")
    merge.add_argument("--out", type=Path, default=Path(DEFAULT_DIR), help=f"where the merged runs and report go "
                       f"(default {DEFAULT_DIR})")
    merge.add_argument("--markdown", type=Path, metavar="PATH", help="write the Markdown summary of the merged run")
    merge.add_argument("--html", type=Path, metavar="PATH", help="write the HTML report of the merged run")
    merge.add_argument("--mlflow", action="store_true", help="export the merged runs to MLflow, as a session with "
                       "--llmgate-mlflow does (pip install 'pytest-llmgate[mlflow]')")
    merge.add_argument("--mlflow-uri", metavar="URI", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, "
                       "else sqlite:///OUT/mlflow.db)")
    merge.add_argument("--wandb", action="store_true", help="export the merged runs to Weights & Biases, as a session "
                       "with --llmgate-wandb does; offline unless configured (pip install 'pytest-llmgate[wandb]')")
    merge.add_argument("--wandb-project", metavar="NAME", help="W&B project (default: the experiment's name)")
    merge.set_defaults(handler=cmd_merge)

    fingerprint = commands.add_parser("fingerprint", help="fingerprints of experiments or suites, against the lock")
    fingerprint.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="experiment directory or suite file")
    fingerprint.set_defaults(handler=cmd_fingerprint)

    add_calibrate(commands)
    add_view(commands)
    return parser


def _run_selection(command: argparse.ArgumentParser, records_dir: str) -> None:
    """The runs a command works on: named one by one, or the runs of a session by its report."""
    command.add_argument("runs", nargs="*", metavar="RUN", help="run id, unique id prefix, or path of a run record")
    which = command.add_mutually_exclusive_group()
    which.add_argument("--report", type=Path, metavar="REPORT.json",
                       help="the runs a session recorded, from its report (records beside it, in runs/)")
    which.add_argument("--last", action="store_true", help="the runs of the last session: --report DIR/report.json")
    command.add_argument("--experiment", metavar="NAME", help="with --report or --last: this experiment's runs")
    command.add_argument("--dir", type=Path, default=Path(DEFAULT_DIR), help=records_dir)


class SelectedRuns(NamedTuple):
    """The runs a command works on, checked: the stored files, the records and notes, and the selected candidates
    of their session that got no run (from its report)."""

    runs: list[StoredRun]
    audited: Audited
    not_run: list[str]


def _selected_runs(args: argparse.Namespace, *, promote: bool) -> SelectedRuns:
    """The runs named on the command line, or those of the session whose report is given (``--last``: in --dir),
    each checked as ``llmgate verify`` checks it (a report too: its signature, with a key, and its verdict)."""
    key = signing_key()
    report_path: Path | None = args.dir / REPORT_FILE if args.last else args.report
    if report_path is None:
        if not args.runs:
            raise RecordError(None, None, "name the runs (run ids or paths), or give --report REPORT.json or --last")
        runs = find_runs(args.runs, args.dir)
        of = sorted({run.record.experiment for run in runs})
        if promote and len(of) > 1:  # not comparable whatever their fields say: other manifests
            raise RecordError(None, None, f"the runs are of {len(of)} experiments ({', '.join(of)}): a decision is "
                              "taken over the runs of one experiment")
        return SelectedRuns(runs, audit(runs, key, promote=promote), [])
    if args.runs:
        raise RecordError(None, None, "give runs by id, or --report/--last, not both")
    report = read_verdict(report_path, key)
    experiments = [e for e in report.experiments if args.experiment in (None, e.experiment)]
    if not experiments:
        raise RecordError(report_path, None, f"has no experiment {args.experiment!r}" if args.experiment
                          else "lists no experiment")
    if len(experiments) > 1:
        names = ", ".join(e.experiment for e in experiments)
        raise RecordError(report_path, None, f"lists several experiments ({names}); pick one with --experiment")
    (experiment,) = experiments
    runs, audited = report_runs(report_path, experiment, key, promote=promote)
    return SelectedRuns(runs, audited, [e.template_id for e in experiment.not_run if e.role is Role.CANDIDATE])


def _print_notes(notes: Sequence[str], out: TextIO) -> None:
    for note in notes:
        print(f"note: {note}", file=out)


def _one_line(text: str) -> str:
    """A name for a decision file: one line of printable text (a line break would forge `canary`'s output)."""
    if not re.match(NAME_PATTERN, text):  # as the manifest and the decision file have it
        raise argparse.ArgumentTypeError("must be one line of printable text")
    return text


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


# -- runs ----------------------------------------------------------------------------------------
RUN_COLUMNS = ("time", "run id", "template", "role", "status", "unsafe", "unnecessary", "exact", "evaluation", "frozen")


def run_row(record: RunRecord) -> tuple[str, ...]:
    metrics = record.metrics
    return (
        record.finished_at, record.run_id, record.template_id, record.role.value, record.status.value,
        str(metrics.unsafe_claim_served), str(metrics.unnecessary_abstention), rate(metrics.exact_route_rate),
        record.evaluation_sha, "yes" if record.frozen else "no",
    )


def is_partial(record: RunRecord) -> bool:
    """A run of a session narrowed by -k, --deselect or --lf (or stopped early): cases not run, yet neither a part
    of a split run nor a merge of parts. It is incomplete: never promoted."""
    return record.part is None and not record.merged_from and record.metrics.not_run_count > 0


def cmd_runs(args: argparse.Namespace, out: TextIO) -> int:
    if args.dir is None:  # no session here yet: no stored runs
        args.dir = Path(DEFAULT_DIR)
    elif not args.dir.is_dir():  # a mistyped --dir is no empty history
        raise RecordError(args.dir, None, "is no records folder (a session writes one with --llmgate-out=DIR; "
                                          f"the default is {DEFAULT_DIR})")
    key = signing_key()
    suites = SuiteCheck()
    listed: list[tuple[RunRecord, list[str]]] = []
    refused: list[LlmgateError] = []
    for path in run_files(args.dir):
        try:
            run = read_run(path)
            found = check_run(run, key, suites)
            if found.refused:
                raise refuse(path, found.refused)
        except LlmgateError as exc:
            refused.append(exc)  # the others are listed; each bad file is named at the end
            continue
        listed.append((run.record, note_lines(path, found)))
    listed = [(record, notes) for record, notes in listed
              if (not args.experiment or record.experiment == args.experiment)
              and (not args.template or record.template_id == args.template)]
    partial = sum(is_partial(record) for record, _ in listed)
    if not args.all:
        listed = [(record, notes) for record, notes in listed if not is_partial(record)]
    if args.last:
        listed = listed[-args.last:]
    if not listed:
        filters = [f"experiment {args.experiment}"] * bool(args.experiment) + [f"template {args.template}"] * bool(args.template)
        print(f"no stored runs in {args.dir}" + (f" for {' and '.join(filters)}" if filters else ""), file=out)
    else:
        for line in format_table([RUN_COLUMNS, *(run_row(record) for record, _ in listed)], right={5, 6, 7}):
            print(line, file=out)
        _print_notes([note for _, notes in listed for note in notes], out)
    if partial and not args.all:
        print(f"{partial} partial run(s) hidden (sessions narrowed by -k, --deselect or --lf, or stopped early); "
              "--all lists them", file=out)
    for error in refused:
        print(f"llmgate: error: {error.message()}", file=sys.stderr)
    return ERROR if refused else OK


# -- compare ---------------------------------------------------------------------------------------
def cmd_compare(args: argparse.Namespace, out: TextIO) -> int:
    selection = _selected_runs(args, promote=False)
    records = selection.audited.records
    _print_notes(selection.audited.notes, out)
    issues = comparability_issues(records)
    if issues:
        print("NOT COMPARABLE: these runs are not ranked; they differ in:", file=out)
        for issue in issues:
            values = ", ".join(f"{run_id}={value}" for run_id, value in issue.values.items())
            print(f"  {issue.field}: {values}", file=out)
        return ERROR
    print(f"comparable: same policy, evidence, evaluator and fingerprints (evaluation {records[0].evaluation_sha})",
          file=out)
    for line in format_table(_side_by_side(records)):
        print(line, file=out)
    twice = same_template(selection.runs)
    print(f"decision: {'refused: ' + twice[1] if twice else decision_text(decide(records, (), selection.not_run))}",
          file=out)
    return OK


def _side_by_side(records: Sequence[RunRecord]) -> list[list[str]]:
    rows = [["", *(record.run_id for record in records)]]
    rows.append(["template", *(record.template_id for record in records)])
    rows.append(["role", *(record.role.value for record in records)])
    rows.append(["status", *(record.status.value for record in records)])
    rows.append(["complete", *("yes" if record.complete else "no" for record in records)])
    rows.append(["frozen", *("yes" if record.frozen else "no" for record in records)])
    for scope in ["", *records[0].suite_metrics]:
        scoped = [record.suite_metrics.get(scope) if scope else record.metrics for record in records]
        for key in GATING_FIGURES:
            values = [None if metrics is None else getattr(metrics, key) for metrics in scoped]
            shown = ["-" if value is None else rate(value) if key == "exact_route_rate" else str(value) for value in values]
            rows.append([f"{scope}.{key}" if scope else key, *shown])
    rows += _cost_rows(records)
    return rows


def _cost_rows(records: Sequence[RunRecord]) -> list[list[str]]:
    """Money, tokens and call latency of each run (rows only for figures some run has), each after the first with
    its change from the first: ``$0.000040 (+$0.000004)``."""
    rows = []
    costs = [record.metrics.cost for record in records]
    for label, name, shown, change in (
            ("cost", "cost_usd", usd, usd_change), ("tokens in", "input_tokens", str, "{:+d}".format),
            ("tokens out", "output_tokens", str, "{:+d}".format), ("latency p50", "latency_p50_ms", ms, ms_change),
            ("latency p95", "latency_p95_ms", ms, ms_change)):
        # the time an in-process candidate (no call) took to answer is no call latency: `-`, as in the summary
        values = [getattr(cost, name) if cost is not None and (cost.made_calls or not name.startswith("latency"))
                  else None for cost in costs]
        if all(value is None for value in values):
            continue
        first = values[0]
        cells = ["-" if value is None else shown(value) for value in values]
        for index, value in enumerate(values[1:], start=1):
            if value is not None and first is not None:
                cells[index] += f" ({change(value - first)})"
        rows.append([label, *cells])
    return rows


# -- diff ----------------------------------------------------------------------------------------
def _newest(ref: str, runs: list[RunRecord]) -> list[RunRecord]:
    """The runs a side of ``llmgate diff`` stands for: a folder's or report's newest of each template; runs named."""
    return latest_per_template(runs) if Path(ref).exists() else runs


def cmd_diff(args: argparse.Namespace, out: TextIO) -> int:
    key = signing_key()
    old_runs = resolve_runs(args.old, args.dir, key)
    new_runs = resolve_runs(args.new, args.dir, key)
    _print_notes(list(dict.fromkeys(old_runs.notes + new_runs.notes)), out)  # once each: DIR DIR reads one folder
    # a folder or report stands for its newest run of each template; OLD's every run is searched for counterparts,
    # so that a run both sides hold (`llmgate diff DIR DIR`) is compared with its template's run before it
    old, new = old_runs.records, _newest(args.new, new_runs.records)
    newest_old = _newest(args.old, old)
    single = len(newest_old) == 1 and len(new) == 1 and newest_old[0].run_id != new[0].run_id  # two runs named
    status = OK
    for run in new:
        before, matched_by = (newest_old[0], MatchedBy.TEMPLATE) if single else counterpart(run, old)
        comparison = compare(before, run, matched_by)
        print(f"{run.experiment}: {run.template_id} ({run.role.value}, run {run.run_id})", file=out)
        for line in comparison_lines(comparison, indent="  ", limit=args.limit):
            print(line, file=out)
        if comparison.comparability_issues:
            status = ERROR
        elif comparison.counts.get(CaseChange.BROKEN) and status == OK:
            status = REJECTED
    return status


# -- promote ---------------------------------------------------------------------------------------
def cmd_promote(args: argparse.Namespace, out: TextIO) -> int:
    key = signing_key()
    selection = _selected_runs(args, promote=True)
    records = selection.audited.records
    verdict = decide(records, (), selection.not_run)
    if verdict.decision is None:
        print(f"llmgate: no promotion: {verdict.status.value}: {verdict.reason}", file=sys.stderr)
        for record in records:
            if record.evidence is not None and record.role is Role.CANDIDATE:
                print(f"llmgate: evidence: {record.template_id}: {record.evidence.reason}", file=sys.stderr)
        return ERROR if verdict.status is DecisionStatus.RUNS_NOT_COMPARABLE else REJECTED
    decision = msgspec.structs.replace(verdict.decision, alias=args.alias or verdict.decision.alias,
                                       rollback_artifact=args.rollback or verdict.decision.rollback_artifact)
    if decision.rollback_artifact == decision.artifact_name:
        given = "--rollback" if args.rollback else "the manifest's rollback_artifact"
        print(f"llmgate: error: {given} {decision.rollback_artifact} is the artifact being promoted: a canary "
              "would roll back to itself", file=sys.stderr)
        return ERROR
    decision = sign(decision, key)
    if args.out:
        write_replacing(args.out, dump(decision))
        shown = msgspec.structs.replace(verdict, decision=decision)  # as written: --alias and --rollback applied
        print(f"decision written to {args.out}: {decision_text(shown)}", file=out)
    else:
        out.write(dump(decision).decode("utf-8"))
    return OK


# -- merge -----------------------------------------------------------------------------------------
def cmd_merge(args: argparse.Namespace, out: TextIO) -> int:
    """Merge, write, summarize; 1 when a merged candidate run broke a guardrail, its budget or its evidence
    requirement, or is incomplete (a candidate that ran in no part too)."""
    from pytest_llmgate.engine.merge import merge
    from pytest_llmgate.exporters.export import export_written, exporters_for
    from pytest_llmgate.reports.markdown import in_progress_markdown, markdown_summary, summary_target_problem
    from pytest_llmgate.reports.terminal import summary_lines

    targets = {option: path for option, path in (("markdown", args.markdown), ("html", args.html)) if path}
    problem = summary_target_problem(targets, args.out, "--")
    if problem is not None:
        print(f"llmgate: error: {problem}", file=sys.stderr)
        return ERROR
    started = timestamp(utc_now())  # until the merge is written, its summaries hold no verdict (a session's rule)
    if args.markdown:
        write_replacing(args.markdown, in_progress_markdown(started).encode("utf-8"))
    if args.html:
        from pytest_llmgate.reports.html import html_report, in_progress_html

        write_replacing(args.html, in_progress_html(started).encode("utf-8"))
    result, missing = merge(args.dirs, args.out)
    exporters = list(exporters_for(args.out, mlflow=args.mlflow, mlflow_uri=args.mlflow_uri, wandb=args.wandb,
                                   wandb_project=args.wandb_project).values())
    failed_exports: list[LlmgateError] = []
    if exporters:
        try:  # the merged records and report are written all the same
            result, failed_exports = export_written(result, args.out, exporters)
        except LlmgateError as exc:  # a candidate file that cannot be exported: nothing was
            failed_exports = [exc]
    for line in [*summary_lines(result), *(line for exporter in exporters for line in exporter.summary_lines())]:
        print(line, file=out)
    if args.markdown:
        write_replacing(args.markdown, markdown_summary(result).encode("utf-8"))
    if args.html:
        write_replacing(args.html, html_report(result, args.out).encode("utf-8"))
    for export_error in failed_exports:
        print(f"llmgate: error: {export_error.message()}", file=sys.stderr)
    if failed_exports:
        return ERROR
    # the session's rule: a candidate run that is not eligible broke a guardrail or a run-level gate
    failed = [record for outcome in result.outcomes for record in outcome.records
              if record.role is Role.CANDIDATE and record.status is not RunStatus.ELIGIBLE_FOR_CANARY_REVIEW]
    why = [f"{record.template_id} is {record.status.value}" for record in failed]
    why += [f"run {run_id} misses {len(ids)} case(s)" for run_id, ids in missing.items()
            if not any(record.run_id == run_id for record in failed)]
    why += [f"{plan.template_id} ran in no part" for outcome in result.outcomes for plan in outcome.not_run
            if plan.role is Role.CANDIDATE]  # selected, yet no part holds a case of it: incomplete
    if why:  # the exit status, and why, as pytest's last line says why a session failed
        print(f"llmgate: merge: exit 1: {'; '.join(why)}", file=out)
    return REJECTED if why else OK


# -- canary ----------------------------------------------------------------------------------------
def cmd_canary(args: argparse.Namespace, out: TextIO) -> int:
    decision, notes = _read_decision(args.source, args.dir)
    for note in notes:
        print(f"llmgate: note: {note}", file=sys.stderr)
    if args.window is None:
        unsafe, evidence = args.unsafe_claims, f"--unsafe-claims {args.unsafe_claims}"
    else:
        requests = unsafe_requests_in(args.window)
        unsafe = len(requests)
        shown = ", ".join(requests[:5]) + (f" and {len(requests) - 5} more" if len(requests) > 5 else "")
        evidence = f"in {args.window}: request(s) {shown}" if requests else f"in {args.window}"
    call = canary_call(unsafe, decision.rollback_artifact, args.source)
    print(call.line, file=out)
    if call.verdict is CanaryVerdict.ROLL_BACK:
        print(f"llmgate: {unsafe} unsafe claim(s) served, {evidence}; the canary of {decision.artifact_name} allows "
              f"none: roll back to {decision.rollback_artifact}", file=sys.stderr)
        return REJECTED
    return OK


def _read_decision(path: Path, records_dir: Path | None, suites: SuiteCheck | None = None) -> tuple[Decision, list[str]]:
    """The one promotion decision in a session report, or a decision file written by ``llmgate promote``, and the
    notes on its runs; checked against the run records it rests on (a report's beside it in ``runs/``; a decision
    file's in ``records_dir``, by default beside it when it has a ``runs/`` folder, else the default records
    folder), a run that cannot be checked refused too, and with a signing key by its signature."""
    key = signing_key()
    raw = read_bytes(path)
    data = load_json(raw, path)
    if isinstance(data, dict) and "experiments" in data:
        report = read_verdict(path, key)
        decided = [e for e in report.experiments if e.decision is not None]
        if len(decided) != 1:
            raise RecordError(path, None, f"holds {len(decided)} promotion decisions; give one decision "
                                          "(llmgate promote --out FILE)")
        audited = report_runs(path, decided[0], key, checkable=True, suites=suites)[1]
        decision, notes = decided[0].decision, audited.notes
    elif isinstance(data, dict) and "artifact_name" in data:
        decision = load(raw, Decision, path)
        if records_dir is None:
            records_dir = path.parent if (path.parent / RUNS).is_dir() else Path(DEFAULT_DIR)
        notes = decision_run(path, decision, raw, key, records_dir, checkable=True).notes
    else:
        raise RecordError(path, None, "is neither a session report nor a promotion decision")
    assert decision is not None
    if decision.rollback_artifact == decision.artifact_name:
        raise refuse(path, [f"its rollback {decision.rollback_artifact} is the artifact it promotes: a canary would "
                            "roll back to itself"])
    return decision, notes


# -- verify ----------------------------------------------------------------------------------------
def cmd_verify(args: argparse.Namespace, out: TextIO) -> int:
    key = signing_key()
    if key is None:
        print(f"{SIGNING_KEY_ENV} is not set: signatures are not checked, only what the files themselves show",
              file=out)
    suites = SuiteCheck()
    refused = unchecked = 0
    files = _verified_files(args.paths)
    listed = tuple(f"{display_path(path)}: " for path in files)  # a record on its own line: its note is there
    for path in files:
        try:
            changed = [note for note in _verify_one(path, key, suites) if not note.startswith(listed)]
        except Unverifiable as exc:
            unchecked += 1
            print(f"UNVERIFIABLE {exc.message()}", file=out)
        except LlmgateError as exc:
            refused += 1
            print(f"REFUSED {exc.message()}", file=out)
        else:
            print("; ".join([f"ok {display_path(path)}", *changed]), file=out)
    counts = [f"{refused} refused"] * bool(refused) + [f"{unchecked} unverifiable"] * bool(unchecked)
    print(", ".join(counts) or "all verified", file=out)
    return REJECTED if counts else OK


def _verified_files(paths: Sequence[Path]) -> list[Path]:
    """The files named, and those of each folder: a records folder's runs and report, a runs folder's records. A
    folder with none of them is an error: "all verified" is never said of nothing."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = run_files(path) + [report for report in (path / REPORT_FILE,) if report.is_file()]
            if not found and path.name == RUNS:
                found = sorted(path.glob("*.json"))
            if not found:
                raise RecordError(path, None, f"holds no run record or session report to verify (a records folder "
                                              f"holds {RUNS}/ and {REPORT_FILE})")
            files += found
        else:
            files.append(path)
    return list(dict.fromkeys(files))


def _verify_one(path: Path, key: bytes | None, suites: SuiteCheck) -> list[str]:
    """Check one file; what changed since its run (a run record's candidate file or suites), else nothing."""
    data = load_json(read_bytes(path), path)
    if isinstance(data, dict) and data.get("schema") == RUN_SCHEMA:
        run = read_run(path)
        found = check_run(run, key, suites)
        if found.refused:
            raise refuse(path, found.refused)
        if found.unverifiable:
            raise unverifiable(path, found.unverifiable)
        return found.changed
    if isinstance(data, dict) and "experiments" in data:  # as canary reads them: an unverifiable run is said
        report = read_verdict(path, key)  # the marker of a session that has not finished: never "ok"
        return [note for experiment in report.experiments
                for note in report_runs(path, experiment, key, checkable=True, suites=suites)[1].notes]
    if isinstance(data, dict) and "artifact_name" in data:
        return _read_decision(path, None, suites)[1]
    raise RecordError(path, None, "is not a run record, a session report or a promotion decision")


# -- fingerprint -----------------------------------------------------------------------------------
def cmd_fingerprint(args: argparse.Namespace, out: TextIO) -> int:
    statuses = [_experiment_prints(path, out) if path.is_dir() else _suite_prints(path, out) for path in args.paths]
    return max(statuses, default=OK)


def _experiment_prints(directory: Path, out: TextIO) -> int:
    experiment = load_experiment(directory)
    prints = "  ".join(f"{name} {value}" for name, value in experiment.short_fingerprints.items())
    print(f"{experiment.name} ({directory}): {prints}", file=out)
    state = lock_state(experiment)
    if not state.locked:
        print("  lock: none (not frozen; pytest --llmgate-freeze freezes it)", file=out)
        return OK
    if state.matches:
        print("  lock: matches", file=out)
        return OK
    print("  lock: DIFFERS", file=out)
    for line in [change.describe() for change in state.changes] or [state.describe()]:
        print(f"    {line}", file=out)
    return REJECTED


def _suite_prints(path: Path, out: TextIO) -> int:
    manifest_dir = next((p for p in path.resolve().parents if (p / MANIFEST_NAME).is_file()), None)
    suite = load_suite(path.name, path)
    line = f"{path}: {short(suite.fingerprint)}"
    if manifest_dir is None:
        print(f"{line} (no experiment)", file=out)
        return OK
    experiment = load_experiment(manifest_dir)
    name = next((s.name for s in experiment.suites if s.path == path.resolve()), None)
    lock = read_lock(experiment)
    if name is None or lock is None:
        print(f"{line} (lock: none)", file=out)
        return OK
    matches = lock.fingerprints.get(name) == suite.fingerprint
    print(f"{line} (suite {name}; lock: {'matches' if matches else 'DIFFERS'})", file=out)
    return OK if matches else REJECTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
