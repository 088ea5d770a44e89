"""The ``llmgate`` command: audit, compare, promote and watch a canary from stored records alone."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from ._decision import comparability_issues, decide
from ._errors import LlmgateError, RecordError
from ._experiment import MANIFEST_NAME, load_experiment
from ._fingerprint import short
from ._history import find_runs, load_run, run_files
from ._lock import lock_changes, read_lock
from ._record import RunRecord
from ._store import dump, write_replacing
from ._suite import load_suite
from ._table import format_table, rate
from ._terminal import decision_text
from ._vocab import DecisionStatus

OK, REJECTED, ERROR = 0, 1, 2
CONTINUE = "CONTINUE_CANARY_MONITORING"
ROLL_BACK = "ROLL_BACK_TO:"
DEFAULT_DIR = ".llmgate"


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


# -- promote ---------------------------------------------------------------------------------------
def cmd_promote(args: argparse.Namespace, out: TextIO) -> int:
    records = find_runs(args.runs, args.dir)
    verdict = decide(records)
    if verdict.decision is None:
        print(f"llmgate: no promotion: {verdict.status.value}: {verdict.reason}", file=sys.stderr)
        return ERROR if verdict.status is DecisionStatus.RUNS_NOT_COMPARABLE else REJECTED
    decision = verdict.decision.to_json()
    if args.alias:
        decision["alias"] = args.alias
    if args.rollback:
        decision["rollback_artifact"] = args.rollback
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
    if unsafe == 0:
        print(CONTINUE, file=out)
        return OK
    rollback = decision.get("rollback_artifact")
    if not rollback:
        raise RecordError(args.source, None, f"{unsafe} unsafe claim(s) observed, but the decision names no rollback_artifact")
    print(f"{ROLL_BACK}{rollback}", file=out)
    return REJECTED


def _read_decision(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RecordError(path, None, f"cannot be read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise RecordError(path, None, f"is not JSON: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("experiments"), list):
        decisions = [e["decision"] for e in data["experiments"] if isinstance(e, dict) and e.get("decision")]
        if len(decisions) != 1:
            raise RecordError(
                path, None,
                f"holds {len(decisions)} promotion decisions; give one decision (llmgate promote --out FILE)",
            )
        return dict(decisions[0])
    if isinstance(data, dict) and "artifact_name" in data and "rollback_artifact" in data:
        return data
    raise RecordError(path, None, "is neither a session report nor a promotion decision")


def unsafe_claims_in(window: Path) -> int:
    """Served requests whose claim was not supported, in a JSON Lines window of canary requests."""
    try:
        lines = window.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise RecordError(window, None, f"cannot be read: {exc.strerror or exc}") from None
    unsafe = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            request = json.loads(line)
        except ValueError as exc:
            raise RecordError(window, number, f"not a JSON object: {exc}") from None
        problem = _window_problem(request)
        if problem:
            raise RecordError(window, number, problem)
        unsafe += request["route"] == "SERVE" and request["supported"] is False
    return unsafe


def _window_problem(request: Any) -> str | None:
    if not isinstance(request, dict):
        return "not a JSON object"
    missing = [key for key in ("request_id", "route", "supported") if key not in request]
    if missing:
        return f"missing {', '.join(missing)} (each line needs request_id, route and supported)"
    if request["route"] not in ("SERVE", "ABSTAIN"):
        return f"route {request['route']!r} is not SERVE or ABSTAIN"
    if not isinstance(request["supported"], bool):
        return f"supported {request['supported']!r} is not true or false"
    return None


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
    lock = read_lock(experiment)
    if lock is None:
        print("  lock: none (not frozen; pytest --llmgate-freeze freezes it)", file=out)
        return OK
    changes = lock_changes(lock, experiment)
    if not changes and lock.get("fingerprints") == experiment.fingerprints:
        print("  lock: matches", file=out)
        return OK
    print("  lock: DIFFERS", file=out)
    for change in changes:
        print(f"    {change.describe()}", file=out)
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
    matches = lock.get("fingerprints", {}).get(name) == suite.fingerprint
    print(f"{line} (suite {name}; lock: {'matches' if matches else 'DIFFERS'})", file=out)
    return OK if matches else REJECTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
