"""The plugin's options, in one table: each command-line option with its ini key, read back one way.

A value given on the command line wins; else the ini key (``pytest.ini``, ``pyproject.toml``, ``tox.ini``);
else the default. Paths on the command line are relative to where pytest was invoked, in an ini file to the
rootdir, as pytest does for its own options.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import msgspec
import pytest

from pytest_llmgate.model.defaults import DEFAULT_CONCURRENCY, DEFAULT_DIR, MAX_TRIALS
from pytest_llmgate.model.vocab import RecordMode, ShowMode

Kind = Literal["ids", "flag", "text", "path", "count", "choice"]


class Option(msgspec.Struct, frozen=True, kw_only=True):
    """One option: ``--llmgate-<name>`` on the command line and, unless ``ini`` is False, ``llmgate_<dest>`` in ini."""

    flag: str
    dest: str
    kind: Kind
    help: str
    metavar: str | None = None
    choices: tuple[str, ...] = ()
    ini: bool = True
    maximum: int | None = None  # a count's largest value

    @property
    def ini_key(self) -> str:
        return f"llmgate_{self.dest}"


OPTIONS: tuple[Option, ...] = (
    Option(flag="--llmgate-candidate", dest="candidates", kind="ids", metavar="ID",
           help="template id of a candidate that gates the session (repeatable; 'all' = every artifact)."),
    Option(flag="--llmgate-baseline", dest="baselines", kind="ids", metavar="ID",
           help="template id of a reference run: recorded, shown as expected failures, never gates (repeatable)."),
    Option(flag="--llmgate-freeze", dest="freeze", kind="flag", ini=False,
           help="write or refresh each experiment's llmgate.lock before running (starts a new comparison set)."),
    Option(flag="--llmgate-out", dest="out", kind="path", metavar="DIR",
           help=f"where run records and the report go (default: {DEFAULT_DIR} under the rootdir)."),
    Option(flag="--llmgate-concurrency", dest="concurrency", kind="count", metavar="N",
           help=f"LLM calls of a candidate in flight at once (default {DEFAULT_CONCURRENCY})."),
    Option(flag="--llmgate-record", dest="record", kind="choice", choices=tuple(mode.value for mode in RecordMode),
           help="record/replay of LLM replies (default none: replay only, a missing recording is an error)."),
    Option(flag="--llmgate-trials", dest="trials", kind="count", metavar="N", maximum=MAX_TRIALS,
           help="ask each case N times (overrides the artifact's trials:)."),
    Option(flag="--llmgate-show", dest="show", kind="choice", choices=tuple(mode.value for mode in ShowMode),
           help="what a failing LLM case shows in the terminal and JUnit: its rendered prompt and replies "
                "(failures, the default; long texts cut), the same uncut (full), or nothing of them nor of a "
                "candidate's exception text (none, for CI logs that must hold no input). Never written to records."),
    Option(flag="--llmgate-mlflow", dest="mlflow", kind="flag",
           help="export every run to MLflow (pip install 'pytest-llmgate[mlflow]')."),
    Option(flag="--llmgate-mlflow-uri", dest="mlflow_uri", kind="text", metavar="URI",
           help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///DIR/mlflow.db)."),
    Option(flag="--llmgate-wandb", dest="wandb", kind="flag",
           help="export every run to Weights & Biases, offline unless configured (pip install 'pytest-llmgate[wandb]')."),
    Option(flag="--llmgate-wandb-project", dest="wandb_project", kind="text", metavar="NAME",
           help="W&B project (default: the experiment name)."),
    Option(flag="--llmgate-markdown", dest="markdown", kind="path", metavar="PATH",
           help="write a Markdown summary (also appended to $GITHUB_STEP_SUMMARY when that is set)."),
    Option(flag="--llmgate-compare-to", dest="compare_to", kind="path", metavar="PATH",
           help="compare each run with a stored run (same template, else the one the handoff names) of this "
                "records folder or report.json, e.g. main's: fixed, broken and unchanged cases, metric deltas."),
    Option(flag="--llmgate-html", dest="html", kind="path", metavar="PATH",
           help="write a self-contained HTML report (decision, case x candidate matrix, metrics, provenance)."),
    Option(flag="--llmgate-save-replies", dest="save_replies", kind="path", metavar="PATH", ini=False,
           help="also write each candidate's prompt and replies per case to PATH (case input and model output: "
                "for you to read with `llmgate view PATH`; never inside the records folder, never in records, "
                "reports or exports; command line only)."),
    Option(flag="--llmgate-part", dest="part", kind="text", metavar="ID",
           help="this session runs one part of a split run (e.g. the CI matrix index): its records are parts, "
                "merged into one decision by `llmgate merge`. Deselected cases (pytest-split, pytest-shard, -k, "
                "--deselect) make a session a part without it."),
)

_BY_DEST = {option.dest: option for option in OPTIONS}
_INI_TYPE: dict[Kind, Any] = {"ids": "args", "flag": "bool", "text": "string", "path": "string", "count": "string",
                              "choice": "string"}


def add_options(parser: pytest.Parser) -> None:
    """Register every option of the table, and its ini key."""
    group = parser.getgroup("llmgate", "LLM candidate gate (pytest-llmgate)")
    for option in OPTIONS:
        dest = f"llmgate_{option.dest}"
        if option.kind == "flag":
            group.addoption(option.flag, action="store_true", default=False, dest=dest, help=option.help)
        else:
            # choices are checked by ``value`` as an ini key's are (argparse would stop pytest before the plugin
            # could replace the last session's verdict); the help shows them as argparse does
            metavar = "{" + ",".join(option.choices) + "}" if option.choices else option.metavar
            group.addoption(option.flag, action="append" if option.kind == "ids" else "store",
                            default=[] if option.kind == "ids" else None, metavar=metavar, dest=dest, help=option.help)
        if option.ini:
            parser.addini(option.ini_key, f"{option.help} (like {option.flag})", type=_INI_TYPE[option.kind],
                          default=[] if option.kind == "ids" else (False if option.kind == "flag" else ""))


def value(config: pytest.Config, dest: str) -> Any:
    """The option's value: command line, else ini, else its default ((), False or None); bad values are a
    usage error naming where they were given."""
    option = _BY_DEST[dest]
    given = config.getoption(f"llmgate_{dest}")
    if given or (given == "" and option.choices):  # an empty choice is refused, as argparse did
        return _parsed(option, given, option.flag, config.invocation_params.dir)
    if option.ini:
        ini = config.getini(option.ini_key)
        if ini:
            return _parsed(option, ini, f"{option.ini_key} (ini)", config.rootpath)
    return () if option.kind == "ids" else (False if option.kind == "flag" else None)


def check_given(config: pytest.Config) -> None:
    """Every option given on the command line, read once: a bad value there is a usage error whether or not the
    session gates, as argparse makes a bad choice (an ini key is read when the gate is built)."""
    for option in OPTIONS:
        if option.kind != "flag" and config.getoption(f"llmgate_{option.dest}") not in (None, []):
            value(config, option.dest)


def _parsed(option: Option, raw: Any, where: str, base: Path) -> Any:
    if option.kind == "count":
        try:
            number = int(raw)
        except (TypeError, ValueError):
            raise pytest.UsageError(f"{where}={raw!r}: expected a whole number") from None
        if number < 1:
            raise pytest.UsageError(f"{where}={number}: must be 1 or more")
        if option.maximum is not None and number > option.maximum:
            raise pytest.UsageError(f"{where}={number}: must be at most {option.maximum}")
        return number
    if option.kind == "choice" and raw not in option.choices:
        raise pytest.UsageError(f"{where}={raw!r}: expected one of {', '.join(option.choices)}")
    if option.kind == "path":
        return (base / str(raw)).resolve()
    if option.kind == "ids":
        return tuple(raw)
    return raw
