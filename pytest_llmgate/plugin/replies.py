"""``--llmgate-save-replies=PATH``: each candidate's prompt and replies per case, to a local file for ``llmgate view``.

The transcripts are the ones a failing case shows in the terminal (``provider.transcript``), taken for every case
after it ran. Each process keeps those of the items it ran; under xdist a worker hands its own over in a part
file beside ``PATH`` that the controller merges and removes. The controller adds each case's verdict from the
session's run records and writes ``PATH`` (temp file + rename). It is refused inside the records folder, and
nothing in the records, the report, the exports or the Markdown reads it.
"""

from __future__ import annotations

import contextlib
import datetime
from pathlib import Path

import msgspec
import pytest

from pytest_llmgate.io.store import check_writable, write_replacing
from pytest_llmgate.model.errors import LlmgateError, RecordError, display_path
from pytest_llmgate.model.vocab import Route
from pytest_llmgate.plugin.nodes import CaseItem, SuiteCollector
from pytest_llmgate.plugin.options import value
from pytest_llmgate.records.outcome import SessionResult
from pytest_llmgate.records.replies import CaseReplies, SavedReplies, TrialReply
from pytest_llmgate.records.run import CaseEntry

_PART_SUFFIX = ".part"


def refuse_inside_records(path: Path, out_dir: Path) -> None:
    """A usage error when ``path`` is in the records folder (where it would travel with the records)."""
    if path.resolve().is_relative_to(out_dir.resolve()):
        raise pytest.UsageError(
            f"--llmgate-save-replies={path}: is inside the records folder {out_dir}; the replies hold case input "
            "and model output and never go there: name a file outside it (e.g. ~/llmgate-replies.json)")


def refuse_another_file(path: Path, config: pytest.Config) -> None:
    """A usage error when ``path`` is the session's HTML report or Markdown summary, or an existing file that is
    not saved replies (a suite, a manifest): the replies never replace another file."""
    for option in ("html", "markdown"):
        other = value(config, option)
        if other and Path(other).resolve() == path.resolve():
            raise pytest.UsageError(f"--llmgate-save-replies={path}: is also --llmgate-{option}'s file; name another")
    if path.is_file():
        with path.open("rb") as existing:
            head = existing.read(200)
        if head and b'"llmgate.replies/' not in head:  # an empty file holds nothing, as for the summaries
            raise pytest.UsageError(f"--llmgate-save-replies={path}: is a file that holds no saved replies; the "
                                    "replies never replace another file: name a new one")


class ReplySaver:
    """Keeps the transcripts of the items this process ran; writes them at the end of the session."""

    def __init__(self, path: Path, out_dir: Path, config: pytest.Config) -> None:
        refuse_inside_records(path, out_dir)
        refuse_another_file(path, config)
        self.path = path
        self.config = config
        self.cases: list[CaseReplies] = []
        self.written = False
        if not hasattr(config, "workerinput") and not config.option.collectonly:  # --collect-only writes nothing
            try:  # said before any call is made (and paid for), not at the end
                check_writable(path)
            except LlmgateError as exc:
                raise pytest.UsageError(f"--llmgate-save-replies: {exc.message()}") from None
            for stale in self._parts():  # a part left by an interrupted session is not this session's
                stale.unlink(missing_ok=True)

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> None:
        suite = item.parent
        if not isinstance(item, CaseItem) or not isinstance(suite, SuiteCollector):
            return
        trials = item.transcripts()
        if not trials or any(transcript is None for transcript in trials):
            return  # a python or evidence_policy candidate has no prompt and no reply
        self.cases.append(CaseReplies(
            experiment=suite.experiment.name, suite=item.case.suite, case_id=item.case.case_id,
            template_id=item.plan.template_id, role=item.plan.role, expected_route=item.case.expected_route,
            trials=tuple(TrialReply(trial=t.trial, messages=t.messages, reply=t.reply, source=t.source, note=t.note)
                         for t in trials if t is not None)))

    def _parts(self) -> list[Path]:
        return sorted(self.path.parent.glob(f".{self.path.name}.*{_PART_SUFFIX}"))

    def _part(self, worker: str) -> Path:
        return self.path.with_name(f".{self.path.name}.{worker}{_PART_SUFFIX}")

    def write_part(self) -> None:
        """An xdist worker: its transcripts, for the controller to merge."""
        worker = str(self.config.workerinput["workerid"])  # type: ignore[attr-defined]
        if self.cases:
            # on failure the controller's file lacks this worker's cases; the session's verdict stands
            with contextlib.suppress(LlmgateError):
                write_replacing(self._part(worker), msgspec.json.encode(self.cases))

    def write(self, result: SessionResult) -> list[LlmgateError]:
        """The controller: every process's transcripts with their verdicts, to ``PATH``."""
        cases = list(self.cases)
        decoder = msgspec.json.Decoder(list[CaseReplies])
        errors: list[LlmgateError] = []
        for part in self._parts():
            try:
                cases.extend(decoder.decode(part.read_bytes()))
                part.unlink()
            except (OSError, msgspec.DecodeError) as exc:
                errors.append(RecordError(part, None, f"a worker's replies cannot be read: {exc}"))
        entries = {(record.experiment, record.template_id, entry.suite, entry.case_id): entry
                   for outcome in result.outcomes for record in outcome.records for entry in record.cases}
        judged = [_with_verdict(case, entries.get((case.experiment, case.template_id, case.suite, case.case_id)))
                  for case in cases]
        # in the records' order: cases as their suites list them, runs as the session made them
        places: dict[tuple[str, str, str], int] = {}
        runs: dict[tuple[str, str], int] = {}
        for experiment, template_id, suite, case_id in entries:
            places.setdefault((experiment, suite, case_id), len(places))
            runs.setdefault((experiment, template_id), len(runs))
        judged.sort(key=lambda case: (places.get((case.experiment, case.suite, case.case_id), len(places)),
                                      case.experiment, case.suite, case.case_id,
                                      runs.get((case.experiment, case.template_id), len(runs)), case.template_id))
        saved = SavedReplies(written_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                             cases=tuple(judged))
        try:
            write_replacing(self.path, msgspec.json.encode(saved))
            self.written = True
        except LlmgateError as exc:
            errors.append(exc)
        return errors

    def summary_lines(self) -> list[str]:
        """Where the replies went, once they are written (an ERROR line says why when they were not)."""
        shown = display_path(self.path)
        return [f"replies: {shown} (case input and model output: yours to read with `llmgate view {shown}`, never "
                "part of the records)"] if self.written else []


def _with_verdict(case: CaseReplies, entry: CaseEntry | None) -> CaseReplies:
    """The case with its verdict and each trial's route from its run record (when the session wrote one)."""
    if entry is None:
        return case
    routes: tuple[Route | None, ...] = entry.trial_routes or (entry.predicted_route,)
    trials = tuple(msgspec.structs.replace(trial, route=routes[trial.trial]) if trial.trial < len(routes) else trial
                   for trial in case.trials)
    passed = entry.trial_counts()[1] if entry.predicted_route is not None else None
    return msgspec.structs.replace(case, outcome=entry.outcome, passed_trials=passed, trials=trials)
