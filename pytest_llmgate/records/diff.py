"""What changed against a stored run, as the run record keeps it (per case and per suite), and its text; the
comparing itself is ``records.comparison``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import msgspec
from msgspec import Meta

from pytest_llmgate.model.costs import usd_change
from pytest_llmgate.model.decision import ComparabilityIssue
from pytest_llmgate.model.vocab import CaseChange, MatchedBy, Outcome

#: The scope of the metric deltas over every case, beside one per suite.
ALL_CASES = "all"
#: The order changes are listed in: what a reviewer must see first.
CHANGE_ORDER = (CaseChange.BROKEN, CaseChange.CHANGED, CaseChange.FIXED, CaseChange.NEW, CaseChange.REMOVED,
                CaseChange.NOT_COMPARED, CaseChange.UNCHANGED)


class CaseDelta(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One case whose outcome differs from the stored run's (``None``: no such case on that side)."""

    suite: Annotated[str, Meta(description="The suite the case is in.")]
    case_id: Annotated[str, Meta(description="The case's id.")]
    change: Annotated[CaseChange, Meta(
        description="How the case moved: broken, changed, fixed, new, removed or not_compared.")]
    before: Annotated[Outcome | None, Meta(description="Its outcome in the stored run; null: not there.")]
    after: Annotated[Outcome | None, Meta(description="Its outcome in this run; null: not here.")]


class MetricDelta(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """This run's metrics minus the stored run's, over one suite or every case; money, tokens and latency
    (``cost_usd`` over the cases whose calls were measured, call latency percentiles) only where both runs have
    the figure (absent: unknown on a side, or a candidate that made no call)."""

    unsafe_claim_served: Annotated[int, Meta(description="Change in the cases that served unsafely.")]
    unnecessary_abstention: Annotated[int, Meta(
        description="Change in the cases that abstained unnecessarily.")]
    exact_route_rate: Annotated[float, Meta(
        description="Change in the exact-route rate, a share (6 decimals; 0.01 is one point).")]
    error_count: Annotated[int, Meta(description="Change in the cases that errored.")]
    not_run_count: Annotated[int, Meta(description="Change in the cases that did not run.")]
    cost_usd: Annotated[float | None, Meta(
        description="Change in the cost in USD; absent unless both runs have it.")] = None
    input_tokens: Annotated[int | None, Meta(
        description="Change in the input tokens; absent unless both runs have them.")] = None
    output_tokens: Annotated[int | None, Meta(
        description="Change in the output tokens; absent unless both runs have them.")] = None
    latency_p50_ms: Annotated[float | None, Meta(
        description="Change in the median call latency, in milliseconds; absent unless both runs made calls "
                    "with a known latency.")] = None
    latency_p95_ms: Annotated[float | None, Meta(
        description="Change in the 95th percentile of the call latency, in milliseconds; absent unless both runs "
                    "made calls with a known latency.")] = None


class StoredComparison(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """A run against the stored run it is compared with (``--llmgate-compare-to``, ``llmgate diff``).

    When the two are not comparable nothing is compared: no counts, deltas or cases."""

    matched_by: Annotated[MatchedBy, Meta(
        description="How the stored run was chosen: template, handoff.candidate_template_id, "
                    "handoff.failing_template_id, or none (no stored run matched; nothing else is filled in).")]
    comparable: Annotated[bool, Meta(
        description="False when no stored run matched or the two differ in a compared param.")]
    against_run_id: Annotated[str | None, Meta(description="The stored run's id.")] = None
    against_template_id: Annotated[str | None, Meta(description="The stored run's template id.")] = None
    against_code_commit: Annotated[str | None, Meta(
        description="The code commit the stored run was made at.")] = None
    template_changed: Annotated[bool, Meta(
        description="True when the template's SHA-256 differs from the stored run's (edited, or another "
                    "file).")] = False
    comparability_issues: Annotated[tuple[ComparabilityIssue, ...], Meta(
        description="Each compared param whose value differs between the two runs.")] = ()
    counts: Annotated[dict[CaseChange, int], Meta(
        description="How many cases had each change, every change kind listed.")] = {}
    metric_deltas: Annotated[dict[str, MetricDelta], Meta(
        description="This run's metrics minus the stored run's: over every case (all) and per suite both runs "
                    "have; when either run left cases out (NOT_RUN, or no entry), over the cases both ran (a suite "
                    "with none has no delta), without money, tokens and latency.")] = {}
    cases: Annotated[tuple[CaseDelta, ...], Meta(
        description="Every case whose change is not unchanged, broken first; in the run record only (the "
                    "session report keeps the counts).")] = ()

    def summary(self) -> StoredComparison:
        """The same without the per-case list (for the session report)."""
        return msgspec.structs.replace(self, cases=())


#: The figures a delta holds, read from MetricDelta: the gating ones every delta has (fields of Metrics; the
#: side-by-side table of ``llmgate compare`` shows them too) and the money, token and latency ones, only where both
#: runs have them (fields of Metrics.cost).
GATING_FIGURES = tuple(field.name for field in msgspec.structs.fields(MetricDelta) if field.required)
COST_FIGURES = tuple(field.name for field in msgspec.structs.fields(MetricDelta) if not field.required)


# -- text ------------------------------------------------------------------------------------------


def with_sign(value: float) -> str:
    return f"{int(value):+d}"


def headline(comparison: StoredComparison) -> str:
    """One line: what it was compared with and the counts, or why nothing was compared."""
    if comparison.matched_by is MatchedBy.NONE:
        return "no earlier stored run of this template (nor, for a new template, of one its handoff names): nothing compared"
    notes = [f"template {comparison.against_template_id}"]
    if comparison.matched_by is not MatchedBy.TEMPLATE:
        notes.append(f"named by {comparison.matched_by.value}")
    if comparison.template_changed:
        notes.append("edited" if comparison.matched_by is MatchedBy.TEMPLATE else "another file")
    against = f"run {comparison.against_run_id} ({', '.join(notes)})"
    if not comparison.comparable:
        return f"NOT COMPARABLE with {against}: differs in {issue_text(comparison.comparability_issues)}; nothing compared"
    counts = ", ".join(f"{comparison.counts.get(change, 0)} {change.value}" for change in CHANGE_ORDER
                       if comparison.counts.get(change, 0) or change in (CaseChange.BROKEN, CaseChange.FIXED))
    return f"against {against}: {counts}"


def issue_text(issues: Sequence[ComparabilityIssue]) -> str:
    return "; ".join(f"{issue.field} ({' -> '.join(str(value) for value in issue.values.values())})" for issue in issues)


def delta_text(comparison: StoredComparison, scope: str = ALL_CASES) -> str:
    """The metric deltas of one scope, e.g. ``unsafe +1, unnecessary -1, exact +0 pt``."""
    delta = comparison.metric_deltas.get(scope)
    if delta is None:
        return ""
    text = (f"unsafe {with_sign(delta.unsafe_claim_served)}, unnecessary {with_sign(delta.unnecessary_abstention)}, "
            f"exact {round(delta.exact_route_rate * 100, 1):+g} pt, errors {with_sign(delta.error_count)}")
    return ", ".join([text, *cost_delta_parts(delta)])


def cost_delta_parts(delta: MetricDelta) -> list[str]:
    """The money, token and latency changes a delta holds, e.g. ``cost +$0.000036``, ``p95 -12ms``."""
    said = (("cost", delta.cost_usd, usd_change), ("tokens in", delta.input_tokens, "{:+d}".format),
            ("tokens out", delta.output_tokens, "{:+d}".format), ("p50", delta.latency_p50_ms, ms_change),
            ("p95", delta.latency_p95_ms, ms_change))
    return [f"{label} {text(value)}" for label, value, text in said if value is not None]


def ms_change(value: float) -> str:
    """A change of latency, signed: ``+12ms``, ``-0.42ms``."""
    return f"{value:+.0f}ms" if abs(value) >= 10 else f"{value:+.2g}ms"


def comparison_lines(comparison: StoredComparison, indent: str = "", limit: int = 10) -> list[str]:
    """The headline, the deltas per scope, then the changed cases by kind (at most ``limit`` of each kind)."""
    lines = [indent + headline(comparison)]
    if not comparison.comparable:
        return lines
    for scope, delta in comparison.metric_deltas.items():
        if scope == ALL_CASES or any(msgspec.structs.astuple(delta)):
            lines.append(f"{indent}  {scope}: {delta_text(comparison, scope)}")
    for change in CHANGE_ORDER[:-1]:
        cases = [delta for delta in comparison.cases if delta.change is change]
        if not cases:
            continue
        shown = ", ".join(f"{d.case_id} ({_outcome(d.before)} -> {_outcome(d.after)})" for d in cases[:limit])
        more = (f" and {len(cases) - limit} more" if shown else f"{len(cases)} case(s)") if len(cases) > limit else ""
        lines.append(f"{indent}  {change.value}: {shown}{more}")
    return lines


def _outcome(outcome: Outcome | None) -> str:
    return outcome.value if outcome is not None else "absent"

