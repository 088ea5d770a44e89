"""The ``llmgate`` command: audit, compare, diff, promote and watch a canary from stored records alone."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO, TypeVar

import msgspec

from ._canary import canary_call, unsafe_claims_in
from ._codec import dump, from_data
from ._decision import Decision, comparability_issues, decide, decision_text
from ._errors import LlmgateError, RecordError
from ._experiment import MANIFEST_NAME, load_experiment
from ._diff import compare, comparison_lines, counterpart
from ._fingerprint import short
from ._history import find_runs, load_run, resolve_runs, run_files
from ._lock import lock_state, read_lock
from ._record import RunRecord
from ._report import SessionReport
from ._store import DEFAULT_DIR, write_replacing
from ._suite import load_suite
from ._table import format_table, rate
from ._vocab import CanaryVerdict, CaseChange, DecisionStatus, MatchedBy

OK, REJECTED, ERROR = 0, 1, 2
T = TypeVar("T")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.handler(args, sys.stdout))
    except LlmgateError as exc:
        print(f"llmgate: error: {exc.message()}", file=sys.stderr)
        return ERROR


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llmgate", description="Audit and decide from pytest-llmgate's stored run records."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    runs = commands.add_parser("runs", help="one line per stored run")
    runs.add_argument("--experiment", metavar="NAME", help="only this experiment's runs")
    runs.add_argument("--dir", type=Path, default=Path(DEFAULT_DIR), help="the records folder (default .llmgate)")
    runs.set_defaults(handler=cmd_runs)

    compare = commands.add_parser("compare", help="comparability audit, then the runs side by side")
    compare.add_argument("runs", nargs="+", metavar="RUN", help="run id, unique id prefix, or path")
    compare.add_argument("--dir", type=Path, default=Path(DEFAULT_DIR))
    compare.set_defaults(handler=cmd_compare)

    diff = commands.add_parser("diff", help="what changed from OLD to NEW: fixed, broken, unchanged cases")
    diff.add_argument("old", metavar="OLD", help="records folder, report.json, run file, or run id (prefix) in --dir")
    diff.add_argument("new", metavar="NEW", help="the same kinds; each of its runs is compared with its counterpart")
    diff.add_argument("--dir", type=Path, default=Path(DEFAULT_DIR))
    diff.add_argument("--limit", type=_count, default=10, metavar="N", help="cases listed per kind (default 10)")
    diff.set_defaults(handler=cmd_diff)

    promote = commands.add_parser("promote", help="the promotion decision over stored runs")
    promote.add_argument("runs", nargs="+", metavar="RUN", help="run id, unique id prefix, or path")
    promote.add_argument("--alias", help="alias to point at the promoted artifact (default: the recorded one)")
    promote.add_argument("--rollback", metavar="ARTIFACT", help="rollback artifact (default: the recorded one)")
    promote.add_argument("--out", type=Path, metavar="FILE", help="write the decision JSON here instead of stdout")
    promote.add_argument("--dir", type=Path, default=Path(DEFAULT_DIR))
    promote.set_defaults(handler=cmd_promote)

    canary = commands.add_parser("canary", help="continue the canary, or roll back")
    canary.add_argument("source", type=Path, metavar="REPORT_OR_DECISION", help="report.json or a decision JSON")
    observed = canary.add_mutually_exclusive_group(required=True)
    observed.add_argument("--unsafe-claims", type=_count, metavar="N", help="unsafe claims observed in the canary")
    observed.add_argument("--window", type=Path, metavar="FILE.jsonl", help="one observed canary request per line")
    canary.set_defaults(handler=cmd_canary)

    fingerprint = commands.add_parser("fingerprint", help="fingerprints of experiments or suites, against the lock")
    fingerprint.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="experiment directory or suite file")
    fingerprint.set_defaults(handler=cmd_fingerprint)
    return parser


def _count(text: str) -> int:
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


def cmd_runs(args: argparse.Namespace, out: TextIO) -> int:
    records = [load_run(path) for path in run_files(args.dir)]
    if args.experiment:
        records = [record for record in records if record.experiment == args.experiment]
    if not records:
        print(f"no stored runs in {args.dir}" + (f" for experiment {args.experiment}" if args.experiment else ""), file=out)
        return OK
    for line in format_table([RUN_COLUMNS, *map(run_row, records)], right={5, 6, 7}):
        print(line, file=out)
    return OK


# -- compare ---------------------------------------------------------------------------------------
def cmd_compare(args: argparse.Namespace, out: TextIO) -> int:
    records = find_runs(args.runs, args.dir)
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
    print(f"decision: {decision_text(decide(records))}", file=out)
    return OK


def _side_by_side(records: Sequence[RunRecord]) -> list[list[str]]:
    rows = [["", *(record.run_id for record in records)]]
    rows.append(["template", *(record.template_id for record in records)])
    rows.append(["role", *(record.role.value for record in records)])
    rows.append(["status", *(record.status.value for record in records)])
    rows.append(["complete", *("yes" if record.complete else "no" for record in records)])
    rows.append(["frozen", *("yes" if record.frozen else "no" for record in records)])
    for scope in ["", *records[0].suite_metrics]:
        for key in ("unsafe_claim_served", "unnecessary_abstention", "exact_route_rate", "error_count"):
            label = f"{scope}.{key}" if scope else key
            values = []
            for record in records:
                metrics = record.suite_metrics.get(scope) if scope else record.metrics
                value = getattr(metrics, key) if metrics is not None else None
                values.append("-" if value is None else rate(value) if key == "exact_route_rate" else str(value))
            rows.append([label, *values])
    return rows


# -- diff ----------------------------------------------------------------------------------------
def cmd_diff(args: argparse.Namespace, out: TextIO) -> int:
    old = resolve_runs(args.old, args.dir)
    new = resolve_runs(args.new, args.dir)
    single = len(old) == 1 and len(new) == 1
    status = OK
    for run in new:
        before, matched_by = (old[0], MatchedBy.TEMPLATE) if single else counterpart(run, old)
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
    records = find_runs(args.runs, args.dir)
    verdict = decide(records)
    if verdict.decision is None:
        print(f"llmgate: no promotion: {verdict.status.value}: {verdict.reason}", file=sys.stderr)
        return ERROR if verdict.status is DecisionStatus.RUNS_NOT_COMPARABLE else REJECTED
    decision = verdict.decision
    if args.alias:
        decision = msgspec.structs.replace(decision, alias=args.alias)
    if args.rollback:
        decision = msgspec.structs.replace(decision, rollback_artifact=args.rollback)
    if args.out:
        write_replacing(args.out, dump(decision))
        print(f"decision written to {args.out}: {decision_text(verdict)}", file=out)
    else:
        out.write(dump(decision).decode("utf-8"))
    return OK


# -- canary ----------------------------------------------------------------------------------------
def cmd_canary(args: argparse.Namespace, out: TextIO) -> int:
    decision = _read_decision(args.source)
    unsafe = args.unsafe_claims if args.window is None else unsafe_claims_in(args.window)
    call = canary_call(unsafe, decision.rollback_artifact, args.source)
    print(call.line, file=out)
    return OK if call.verdict is CanaryVerdict.CONTINUE else REJECTED


def _read_decision(path: Path) -> Decision:
    """The one promotion decision in a session report, or a decision file written by ``llmgate promote``."""
    try:
        data = json.loads(path.read_bytes())
    except OSError as exc:
        raise RecordError(path, None, f"cannot be read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise RecordError(path, None, f"is not JSON: {exc}") from None
    if isinstance(data, dict) and "experiments" in data:
        report = _convert(data, SessionReport, path)
        decisions = [e.decision for e in report.experiments if e.decision is not None]
        if len(decisions) != 1:
            raise RecordError(
                path, None,
                f"holds {len(decisions)} promotion decisions; give one decision (llmgate promote --out FILE)",
            )
        return decisions[0]
    if isinstance(data, dict) and "artifact_name" in data:
        return _convert(data, Decision, path)
    raise RecordError(path, None, "is neither a session report nor a promotion decision")


def _convert(data: Any, kind: type[T], path: Path) -> T:
    try:
        return from_data(data, kind)
    except msgspec.ValidationError as exc:
        raise RecordError(path, None, f"is not a valid {kind.__name__} ({exc})") from None


# -- fingerprint -----------------------------------------------------------------------------------
def cmd_fingerprint(args: argparse.Namespace, out: TextIO) -> int:
    status = OK
    for path in args.paths:
        if path.is_dir():
            status = max(status, _experiment_prints(path, out))
        else:
            status = max(status, _suite_prints(path, out))
    return status


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
