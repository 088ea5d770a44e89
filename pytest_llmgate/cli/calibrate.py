"""``llmgate calibrate``: run an experiment's judge over its calibration set and write the judge's figures."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import msgspec

from pytest_llmgate.io.provenance import llmgate_version
from pytest_llmgate.io.store import timestamp, utc_now, write_replacing
from pytest_llmgate.model.agreement import shortfalls
from pytest_llmgate.model.defaults import DEFAULT_CONCURRENCY
from pytest_llmgate.model.errors import RecordError, display_path
from pytest_llmgate.model.transcript import CUT_AT, cut
from pytest_llmgate.model.vocab import RecordMode
from pytest_llmgate.records.codec import dump
from pytest_llmgate.records.experiment import load_experiment

if TYPE_CHECKING:
    from pytest_llmgate.providers import ProviderFactory
    from pytest_llmgate.records.candidate import Candidate

MET, NOT_MET = 0, 1


def positive(text: str) -> int:
    """A whole number, 1 or more (argparse names the function in its message: 'invalid positive value')."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def add_calibrate(commands: Any) -> None:
    """Register the ``calibrate`` subcommand on the ``llmgate`` parser's subcommands."""
    parser = commands.add_parser(
        "calibrate", help="run an experiment's judge over its calibration set; write its figures beside it")
    parser.add_argument("experiment", type=Path, help="the experiment directory (its llmgate.yaml names the judge)")
    parser.add_argument("--record", choices=[mode.value for mode in RecordMode], default=RecordMode.NONE.value,
                        help="as --llmgate-record: none (the default) replays the judge's recordings only")
    parser.add_argument("--concurrency", type=positive, default=DEFAULT_CONCURRENCY, metavar="N",
                        help=f"judge calls in flight (default {DEFAULT_CONCURRENCY})")
    parser.add_argument("--show", choices=("failures", "full", "none"), default="failures",
                        help="what a disagreement shows of its reply and the judge's reason (terminal only; never "
                             "written): failures (cut long texts, the default), full, none")
    parser.set_defaults(handler=cmd_calibrate)


def _factory(candidate: Candidate) -> ProviderFactory:
    from pytest_llmgate.providers import builtin_factory, complete_factory, unknown_provider

    factory = builtin_factory(candidate.provider)
    if factory is None:
        raise unknown_provider(candidate)
    return complete_factory(factory)


def cmd_calibrate(args: argparse.Namespace, out: TextIO) -> int:
    """Exit 0 when the judge meets the manifest's requirement, 1 when not (or it failed on an item; on every item:
    nothing is written), 2 on bad input or a judge that can answer no item (no key for a live call, nothing
    recorded to replay). The judging engine and the providers are imported here, never by ``llmgate --help``."""
    from pytest_llmgate.engine.judging import calibrate
    from pytest_llmgate.records.evaluator import figures_text, read_calibration_result

    experiment = load_experiment(args.experiment)
    done = calibrate(experiment, _factory, record_mode=RecordMode(args.record), concurrency=args.concurrency,
                     calibrated_at=timestamp(utc_now()), version=llmgate_version())
    evaluator = experiment.evaluator
    assert evaluator is not None  # calibrate refuses an experiment without a judge
    result = done.result
    print(f"llmgate: judge {evaluator.evaluator_id} (model {evaluator.model}) on {result.calibration_path}: "
          f"{result.items + result.error_count} item(s) x {result.trials} trial(s)"
          + (f" ({result.error_count} without a verdict)" if result.error_count else ""), file=out)
    print(f"  {figures_text(result, done.labelled)}", file=out)
    limit = None if args.show == "full" else CUT_AT
    if done.disagreements:
        print(f"disagreements ({len(done.disagreements)}; shown here only, never written to a record):", file=out)
        for case_id, label, verdict, reply, reason in done.disagreements:
            print(f"  {case_id}: labelled {label.value}, the judge says {verdict.value}", file=out)
            if args.show != "none":
                print("    reply: " + cut(reply, limit).replace("\n", "\n      "), file=out)
                print("    judge: " + cut(reason, limit).replace("\n", "\n      "), file=out)
    for case_id, why in done.errors:
        print(f"  ERROR {case_id}: {why}", file=out)
    shown = display_path(evaluator.result_path)
    if not result.items:  # every item errored: no figures, and never in place of the ones the gate reads
        print(f"not written: the judge gave no verdict on any of the {result.error_count} item(s), so there are no "
              "figures to write; " + (f"{shown} is left as it was" if evaluator.result_path.exists()
                                      else f"there is no {shown}: the judge stays uncalibrated"), file=out)
        print(f"NOT MET: no verdict on any of {result.error_count} item(s): the judge was not measured", file=out)
        return NOT_MET
    try:
        before = read_calibration_result(evaluator.result_path)
    except RecordError:
        before = None  # not a calibration result: replaced
    if before is not None and msgspec.structs.replace(before, calibrated_at=result.calibrated_at) == result:
        # only the time would change: a committed result stays as it is
        print(f"unchanged {shown} (the same figures as calibrated at {before.calibrated_at})", file=out)
    else:
        write_replacing(evaluator.result_path, dump(result))
        print(f"wrote {shown}", file=out)
    missed = shortfalls(result.sensitivity_lower, result.specificity_lower, evaluator.min_sensitivity,
                        evaluator.min_specificity, labelled=done.labelled, errors=result.error_count)
    if done.errors:
        missed.append(f"no verdict on {len(done.errors)} item(s)")
    if missed:
        print(f"NOT MET: {'; '.join(missed)}: runs this judge judges are not eligible", file=out)
        return NOT_MET
    print("MET: the judge may gate (min_sensitivity "
          f"{_figure_or_none(evaluator.min_sensitivity)}, min_specificity {_figure_or_none(evaluator.min_specificity)})", file=out)
    return MET


def _figure_or_none(value: float | None) -> str:
    return "none" if value is None else f"{value:g}"
