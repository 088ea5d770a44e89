"""``llmgate view``: the replies a session saved (``--llmgate-save-replies``) as a page, candidates side by side."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, TextIO

from pytest_llmgate.io.store import REPORT_FILE, RUNS, write_replacing
from pytest_llmgate.model.errors import RecordError, display_path
from pytest_llmgate.records.replies import read_replies
from pytest_llmgate.reports.replies import replies_page


def add_view(commands: Any) -> None:
    """Register the ``view`` subcommand on the ``llmgate`` parser's subcommands."""
    parser = commands.add_parser(
        "view", help="the replies a session saved (--llmgate-save-replies) as a page: candidates side by side")
    parser.add_argument("replies", type=Path, help="the file --llmgate-save-replies wrote")
    parser.add_argument("--out", type=Path, default=None, metavar="HTML",
                        help="where the page goes (default: beside the replies file, with .html)")
    parser.set_defaults(handler=cmd_view)


#: The replies page says it is one (``reports/replies.py``): only such a page is ever replaced.
_OURS = b'<meta name="generator" content="llmgate view">'


def _in_records(target: Path) -> bool:
    """Whether ``target`` is in a records folder: beside its ``runs/``, or anywhere under a folder holding
    ``runs/`` and ``report.json`` (its ``runs/`` and ``reports/`` included)."""
    folder = target.resolve().parent
    return (folder / RUNS).is_dir() or any((parent / RUNS).is_dir() and (parent / REPORT_FILE).is_file()
                                           for parent in folder.parents)


def cmd_view(args: argparse.Namespace, out: TextIO) -> int:
    saved = read_replies(args.replies)
    target: Path = args.out or args.replies.with_suffix(".html")
    if _in_records(target):
        raise RecordError(target, None, f"is in a records folder (beside its {RUNS}/ or under it): the page holds case "
                                        "input and model output and never goes there")
    if target.is_file():
        with target.open("rb") as existing:
            head = existing.read(1024)
            if head and _OURS not in head:  # an empty file holds nothing, as for the summaries
                raise RecordError(target, None, "is a file that is not a replies page; it is never replaced: name "
                                                "a new one with --out")
    write_replacing(target, replies_page(saved, display_path(args.replies)).encode("utf-8"))
    candidates = len({case.template_id for case in saved.cases})
    cases = len({(case.experiment, case.suite, case.case_id) for case in saved.cases})
    print(f"replies view: {display_path(target)} ({cases} case(s), {candidates} candidate(s)); it holds case input "
          "and model output: open it yourself, keep it out of records and CI artifacts", file=out)
    return 0
