"""The replies view (``llmgate view``): per case, each candidate's prompt and replies side by side, with its verdict.

Read from the replies file a session wrote when asked (``--llmgate-save-replies``), never from the records: the
page holds case input and model output, for the person who ran the session. One self-contained file, no
network, every value escaped."""

from __future__ import annotations

from collections.abc import Sequence

from pytest_llmgate.records.replies import CaseReplies, SavedReplies, TrialReply
from pytest_llmgate.reports.table import escape


def replies_page(saved: SavedReplies, source: str) -> str:
    """The page: one section per case (in run order), one column per candidate run, one block per trial."""
    groups: dict[tuple[str, str, str], list[CaseReplies]] = {}
    for case in saved.cases:
        groups.setdefault((case.experiment, case.suite, case.case_id), []).append(case)
    templates = sorted({case.template_id for case in saved.cases})
    sections = "".join(_case_section(key, runs) for key, runs in groups.items())
    return _REPLIES_PAGE.format(
        style=_REPLIES_STYLE, source=escape(source), written=escape(saved.written_at), cases=len(groups),
        templates=escape(", ".join(templates)), sections=sections or "<p>No case has a reply in this file.</p>")


def _case_section(key: tuple[str, str, str], runs: Sequence[CaseReplies]) -> str:
    experiment, suite, case_id = key
    prompts = {_messages_html(trial) for run in runs for trial in run.trials[:1]}
    shared = len(prompts) == 1 and len(runs) > 1  # every candidate sent the same prompt: shown once
    prompt = f'<details class="prompt" open><summary>prompt (the same for every candidate)</summary>{prompts.pop()}</details>' \
        if shared else ""
    columns = "".join(_column(run, show_prompt=not shared) for run in runs)
    return (f'<section class="case" data-case="{escape(case_id)}"><h2>{escape(case_id)} <small>{escape(experiment)} / '
            f"suite {escape(suite)} / expected {escape(runs[0].expected_route.value)}</small></h2>{prompt}"
            f'<div class="side-by-side">{columns}</div></section>')


def _column(run: CaseReplies, show_prompt: bool) -> str:
    verdict = run.outcome.value if run.outcome is not None else "not judged (no run record)"
    count = len(run.trials)
    passed = f" ({run.passed_trials}/{count} trials passed)" if run.passed_trials is not None and count > 1 else ""
    prompt = (f'<details class="prompt"><summary>prompt</summary>{_messages_html(run.trials[0])}</details>'
              if show_prompt and run.trials else "")
    trials = "".join(_trial(trial, count) for trial in run.trials)
    status = run.outcome.value if run.outcome is not None else "NONE"
    return (f'<article class="candidate o-{escape(status)}" data-template="{escape(run.template_id)}">'
            f"<h3>{escape(run.template_id)} <small>({escape(run.role.value)})</small></h3>"
            f'<p class="verdict">{escape(verdict)}{escape(passed)}</p>{prompt}{trials}</article>')


def _trial(trial: TrialReply, count: int) -> str:
    label = f"trial {trial.trial + 1} of {count}" if count > 1 else "reply"
    route = f": {trial.route.value}" if trial.route is not None else ""
    body = (f'<pre class="reply">{escape(trial.reply)}</pre>' if trial.reply is not None
            else f'<p class="no-reply">no reply{": " + escape(trial.note) if trial.note else ""}</p>')
    return f'<div class="trial"><p class="trial-head">{escape(label)}{escape(route)} <small>({escape(trial.source)})</small></p>{body}</div>'


def _messages_html(trial: TrialReply) -> str:
    return "".join(f'<p class="role">{escape(role)}</p><pre class="message">{escape(text)}</pre>'
                   for role, text in trial.messages) or '<p class="no-reply">no messages</p>'


_REPLIES_STYLE = """
*{box-sizing:border-box}
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1b1f24}
h1,h2,h3,p{overflow-wrap:anywhere}h2 small,h3 small{font-weight:normal;color:#57606a}
.warning{border:1px solid #bf8700;background:#fff8c5;padding:.4em .8em}
.case{border-top:2px solid #d0d7de;margin-top:1.2em}
.side-by-side{display:grid;grid-template-columns:repeat(auto-fit,minmax(18em,1fr));gap:1em;align-items:start}
.candidate{border:1px solid #d0d7de;border-top-width:4px;padding:.3em .8em;min-width:0}
.candidate h3{margin:.2em 0}.verdict{font-weight:600;margin:.2em 0}
.o-PASS{border-top-color:#1a7f37}.o-UNSAFE_CLAIM_SERVED{border-top-color:#cf222e}
.o-UNNECESSARY_ABSTENTION{border-top-color:#bf8700}.o-ERROR{border-top-color:#8250df}
pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#f6f8fa;padding:.4em;margin:.2em 0}
.role,.trial-head{margin:.4em 0 0;color:#57606a}.no-reply{color:#cf222e}
@media (max-width:700px){body{margin:.5em;font-size:13px}}
"""

_REPLIES_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="llmgate view">
<title>pytest-llmgate replies</title><style>{style}</style></head>
<body>
<h1>pytest-llmgate: replies</h1>
<p class="warning">This page holds case input and model output, from <code>{source}</code> (written {written}):
it is for you, not for the records, a CI artifact or a pull request.</p>
<p>{cases} case(s); candidates: {templates}.</p>
{sections}
</body></html>
"""
