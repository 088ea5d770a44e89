"""What a candidate costs: tokens and latency per call, money from a price list, figures per case and run, budgets.

A provider reports each call's ``Usage`` (tokens where the endpoint reports them, the call's latency, the 429s
it absorbed). Here they become a case's ``CaseCost`` and a run's ``CostMetrics``; money comes from the
``genai-prices`` package (the ``prices`` extra, imported lazily) or an artifact's ``price:`` override, and is
``None`` (unknown), never 0, when neither knows the model. A manifest's ``budget:`` block turns the figures into
a gate (``REJECT_OVER_BUDGET``).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from operator import attrgetter
from typing import Annotated

import msgspec

from pytest_llmgate.model.vocab import UnknownFigures

#: Per million tokens.
MTOK = 1_000_000

#: The genai-prices provider id for the API an LLM provider speaks.
PRICE_PROVIDERS = {"openai_chat": "openai", "anthropic_messages": "anthropic"}


# gc=False (msgspec): one or more per case, never part of a cycle; untracked, each is 16 bytes smaller and never
# scanned by the collector (benchmarks (a) and (e): 100,000 cases).
class Usage(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, gc=False, omit_defaults=True):
    """One call: the tokens the endpoint reported (None, absent when written: not reported), its latency, and the 429s absorbed.

    ``input_tokens`` counts every input token and ``output_tokens`` every output token; the other token counts
    are parts of them (docs/costs.md says where each comes from)."""

    input_tokens: Annotated[int | None, msgspec.Meta(
        description="Every input token of the call, cached ones included; absent: not reported.")] = None
    output_tokens: Annotated[int | None, msgspec.Meta(
        description="Every output token of the call, reasoning ones included; absent: not reported.")] = None
    cached_tokens: Annotated[int | None, msgspec.Meta(
        description="Of the input tokens, those read from the prompt cache; absent: not reported.")] = None
    reasoning_tokens: Annotated[int | None, msgspec.Meta(
        description="Of the output tokens, the reasoning ones; absent: not reported.")] = None
    latency_ms: Annotated[float | None, msgspec.Meta(
        description="Milliseconds from the start of the request's last attempt (after any 429) to the decoded "
                    "reply (an in-process candidate: the time it took); null: unknown (a recording made before "
                    "latencies were kept).")] = None
    rate_limited: Annotated[int, msgspec.Meta(
        description="HTTP 429 responses the call absorbed by retrying (not kept in a recording).")] = 0
    cache_write_tokens: Annotated[int | None, msgspec.Meta(
        description="Of the input tokens, those written to the prompt cache; absent: not reported.")] = None
    cache_write_1h_tokens: Annotated[int | None, msgspec.Meta(
        description="Of the cache writes, those with a one-hour lifetime; absent: not reported.")] = None
    input_audio_tokens: Annotated[int | None, msgspec.Meta(
        description="Of the input tokens, the audio ones; absent: not reported.")] = None
    output_audio_tokens: Annotated[int | None, msgspec.Meta(
        description="Of the output tokens, the audio ones; absent: not reported.")] = None
    usage_missing: Annotated[int, msgspec.Meta(
        description="1 when an LLM endpoint answered without a usable input or output token count.")] = 0


#: Token classes beyond input and output: a ``Usage`` field and the genai-prices ``Usage`` field it is priced as.
TOKEN_CLASSES = (
    ("cached_tokens", "cache_read_tokens"),
    ("cache_write_tokens", "cache_write_tokens"),
    ("cache_write_1h_tokens", "cache_write_1h_tokens"),
    ("reasoning_tokens", "output_reasoning_tokens"),
    ("input_audio_tokens", "input_audio_tokens"),
    ("output_audio_tokens", "output_audio_tokens"),
)
_TOKEN_COUNTS = ("input_tokens", "output_tokens", *(field for field, _ in TOKEN_CLASSES))


def impossible_usage(usage: Usage) -> str | None:
    """Why an endpoint's token counts cannot be true (a negative count, a part larger than its whole), or None."""
    for name in _TOKEN_COUNTS:
        value = getattr(usage, name)
        if value is not None and value < 0:
            return f"the endpoint reported {name} {value} (a negative token count)"
    for total, parts in (("input_tokens", ("cached_tokens", "cache_write_tokens", "input_audio_tokens")),
                         ("output_tokens", ("reasoning_tokens", "output_audio_tokens"))):
        whole = getattr(usage, total)
        if whole is None:
            continue
        for name in parts:
            value = getattr(usage, name)
            if value is not None and value > whole:
                return f"the endpoint reported {name} {value} > {total} {whole}"
    return None


def usd(value: float) -> str:
    """Money for people, never in exponent notation, with enough significant digits to tell two figures apart:
    ``$0``, ``$0.000035``, ``$0.00115``, ``$0.0123``, ``$0.50``, ``$1.0012``, ``$1,234.50``. The one money
    formatter of the package (terminal, Markdown, HTML, budget messages)."""
    if value == 0:
        return "$0"
    if abs(value) >= 0.01:
        text = f"{value:,.4f}".rstrip("0")
        whole, _, cents = text.partition(".")
        return f"${whole}.{cents.ljust(2, '0')}"
    text = f"{value:.3g}"
    if "e" in text:
        digits = -math.floor(math.log10(abs(value))) + 2
        text = f"{value:.{digits}f}".rstrip("0")
    return f"${text}"


def usd_change(value: float) -> str:
    """A change of money, signed: ``+$0.000036``, ``-$0.0120``, ``+$0.0000``."""
    return ("-" if value < 0 else "+") + usd(abs(value))


#: The figures a case's cost and a run's cost figures share: the same keys, the same meaning, summed over calls.
InputTokens = Annotated[int | None, msgspec.Meta(
    description="Input tokens summed, cached ones included; null: never reported.")]
OutputTokens = Annotated[int | None, msgspec.Meta(
    description="Output tokens summed, reasoning ones included; null: never reported.")]
CachedTokens = Annotated[int | None, msgspec.Meta(
    description="Input tokens read from the prompt cache, summed; null: never reported.")]
ReasoningTokens = Annotated[int | None, msgspec.Meta(
    description="Reasoning tokens among the output tokens, summed; null: never reported.")]
RateLimited = Annotated[int, msgspec.Meta(description="HTTP 429 responses the calls absorbed by retrying.")]
CacheWriteTokens = Annotated[int | None, msgspec.Meta(
    description="Input tokens written to the prompt cache, summed; absent: never reported.")]
CacheWrite1hTokens = Annotated[int | None, msgspec.Meta(
    description="Of the cache writes, those with a one-hour lifetime, summed; absent: never reported.")]
InputAudioTokens = Annotated[int | None, msgspec.Meta(
    description="Audio tokens among the input tokens, summed; absent: never reported.")]
OutputAudioTokens = Annotated[int | None, msgspec.Meta(
    description="Audio tokens among the output tokens, summed; absent: never reported.")]


# gc=False (msgspec): one per case that made calls, never part of a cycle; untracked, each is 16 bytes smaller and never
# scanned by the collector (benchmarks (a) and (e): 100,000 cases).
class CaseCost(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, gc=False, omit_defaults=True):
    """What one case cost, over its calls (one per trial): tokens summed (each token class the endpoint reported),
    money, the slowest call's latency and the 429s absorbed."""

    calls: Annotated[int, msgspec.Meta(description="Calls measured: one per trial.")]
    input_tokens: InputTokens
    output_tokens: OutputTokens
    cached_tokens: CachedTokens
    reasoning_tokens: ReasoningTokens
    cost_usd: Annotated[float | None, msgspec.Meta(
        description="What the calls cost, in USD; null: the model's price is unknown, or no tokens were "
                    "reported.")]
    latency_ms: Annotated[float | None, msgspec.Meta(
        description="The slowest call's latency, in milliseconds; null: unknown.")]
    rate_limited: RateLimited
    cache_write_tokens: CacheWriteTokens = None
    cache_write_1h_tokens: CacheWrite1hTokens = None
    input_audio_tokens: InputAudioTokens = None
    output_audio_tokens: OutputAudioTokens = None
    usage_missing: Annotated[int, msgspec.Meta(
        description="Calls whose endpoint answered without a usable input or output token count.")] = 0


class CostMetrics(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Tokens, money and latency over a set of cases (those whose calls were measured: an errored case may have
    none); None where nothing reported it.

    Latency percentiles are over calls (nearest rank); ``*_per_case`` figures are means over the cases whose calls
    were measured (docs/costs.md)."""

    calls: Annotated[int, msgspec.Meta(description="Calls measured.")]
    input_tokens: InputTokens
    output_tokens: OutputTokens
    cached_tokens: CachedTokens
    reasoning_tokens: ReasoningTokens
    cost_usd: Annotated[float | None, msgspec.Meta(
        description="What the cases cost, in USD; null when any case with tokens has an unknown price, or "
                    "none reported tokens.")]
    cost_per_case_usd: Annotated[float | None, msgspec.Meta(
        description="USD per case, the mean over the cases whose calls were measured (with calls_without_usage, "
                    "the calls that reported usage stand for every call); null when cost_usd is.")]
    output_tokens_per_case: Annotated[float | None, msgspec.Meta(
        description="Output tokens per case, the mean over the cases whose calls were measured (with "
                    "calls_without_usage, the calls that reported usage stand for every call); null: never "
                    "reported.")]
    latency_p50_ms: Annotated[float | None, msgspec.Meta(
        description="Median call latency, in milliseconds (nearest rank, over calls); null: none known.")]
    latency_p95_ms: Annotated[float | None, msgspec.Meta(
        description="95th percentile of the call latency, in milliseconds (nearest rank, over calls); null: none "
                    "known.")]
    latency_max_ms: Annotated[float | None, msgspec.Meta(
        description="The slowest call's latency, in milliseconds; null: none known.")]
    rate_limited: RateLimited
    cache_write_tokens: CacheWriteTokens = None
    cache_write_1h_tokens: CacheWrite1hTokens = None
    input_audio_tokens: InputAudioTokens = None
    output_audio_tokens: OutputAudioTokens = None
    calls_without_usage: Annotated[int, msgspec.Meta(
        description="Calls whose endpoint answered without usable usage; a cost or token budget blocks on them "
                    "unless its unknown_figures is allow.")] = 0

    @property
    def made_calls(self) -> bool:
        """Whether the run called a model endpoint: it reported tokens, or calls that answered without usage. A run
        that did not (a python or evidence_policy candidate) has only the time its in-process answers took."""
        return self.input_tokens is not None or self.output_tokens is not None or bool(self.calls_without_usage)


#: The largest price an artifact may set: any finite figure would do, and YAML's ``.inf`` must not pass (an
#: infinite cost would be written as null). A budget's ``.inf`` is refused where the manifest loads
#: (``records.experiment``), so that stored records keep any limit they were written with.
MAX_FIGURE = 1e15
#: A budget's limit: a number, 0 or more.
_Limit = Annotated[float, msgspec.Meta(ge=0)]


class Budget(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """The manifest's ``budget`` block: limits a candidate run must stay within to be eligible (each optional)."""

    max_cost_per_case_usd: Annotated[_Limit | None, msgspec.Meta(
        description="At most this many USD per case, on average.")] = None
    max_latency_p95_ms: Annotated[_Limit | None, msgspec.Meta(
        description="The 95th percentile of the calls' latency, in milliseconds, at most this.")] = None
    max_output_tokens_per_case: Annotated[_Limit | None, msgspec.Meta(
        description="At most this many output tokens per case, on average.")] = None
    unknown_figures: Annotated[UnknownFigures, msgspec.Meta(
        description="A call whose endpoint reported no usage under a cost or token limit: block (the default) "
                    "makes the run REJECT_OVER_BUDGET, allow lets the limit judge the calls that reported.")] = (
        UnknownFigures.BLOCK)


class Price(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """USD per million input and output tokens."""

    input_per_mtok: Annotated[float, msgspec.Meta(ge=0, le=MAX_FIGURE, description="USD per million input tokens.")]
    output_per_mtok: Annotated[float, msgspec.Meta(ge=0, le=MAX_FIGURE,
                                                   description="USD per million output tokens.")]

    def of(self, usage: Usage) -> float:
        return ((usage.input_tokens or 0) * self.input_per_mtok + (usage.output_tokens or 0) * self.output_per_mtok) / MTOK


#: A call's cost in USD, or None when the model has no known price.
Pricer = Callable[[Usage], "float | None"]


def override_price(settings: Mapping[str, object]) -> Price | None:
    """The artifact's ``price: {input_per_mtok, output_per_mtok}``, if it has one."""
    price = settings.get("price")
    return msgspec.convert(price, Price) if isinstance(price, Mapping) else None


def listed_pricer(model: str, provider: str, base_url: str | None) -> Pricer | None:
    """A pricer from the genai-prices list for ``model`` (None: not listed, or the ``prices`` extra is missing).

    The endpoint's URL is tried first; an endpoint the list does not know (a proxy, a loopback server) is priced
    as the API it speaks (OpenAI, Anthropic)."""
    try:
        import genai_prices
    except ImportError:
        return None

    def calc(usage: Usage, url: str | None, provider_id: str | None) -> float:
        listed = genai_prices.Usage(input_tokens=usage.input_tokens or 0, output_tokens=usage.output_tokens or 0,
                                    **{theirs: getattr(usage, ours) for ours, theirs in TOKEN_CLASSES
                                       if getattr(usage, ours)})
        if url is not None:
            return float(genai_prices.calc_price(listed, model, provider_api_url=url).total_price)
        return float(genai_prices.calc_price(listed, model, provider_id=provider_id).total_price)

    def priced(usage: Usage, url: str | None, where: str | None) -> float | None:
        try:
            return calc(usage, url, where)
        except (ValueError, ArithmeticError):  # figures the list refuses (negative, say): the price is unknown
            return None

    places = [(base_url, None)] if base_url else []
    for url, where in [*places, (None, PRICE_PROVIDERS.get(provider))]:
        try:
            calc(Usage(input_tokens=1, output_tokens=1), url, where)
        except LookupError:
            continue
        return functools.partial(priced, url=url, where=where)
    return None


def case_cost(calls: Sequence[Usage], pricer: Pricer | None) -> CaseCost:
    """A case's figures from its calls; its cost is None unless every call with tokens has a price.

    The tokens and money are those of the calls that reported their usage: a call without usable usage
    (``usage_missing``, one of its counts absent) adds none, not half, so that the reporting calls can stand for it
    (``cost_metrics``)."""
    reported = [call for call in calls if not call.usage_missing]
    prices = [pricer(call) for call in reported if _has_tokens(call)] if pricer is not None else []
    known = [price for price in prices if price is not None]
    cost = round(sum(known), 10) if prices and len(known) == len(prices) else None
    latencies = [call.latency_ms for call in calls if call.latency_ms is not None]
    return CaseCost(
        calls=len(calls),
        **{name: total_known([getattr(call, name) for call in reported]) for name in _TOKEN_COUNTS},
        cost_usd=cost,
        latency_ms=max(latencies) if latencies else None,
        rate_limited=sum(call.rate_limited for call in calls),
        usage_missing=sum(call.usage_missing for call in calls),
    )


def cost_metrics(cases: Sequence[CaseCost], latencies: Sequence[float]) -> CostMetrics:
    """A set of cases' figures; ``latencies``: every call's latency (the percentiles are over calls)."""
    ran = len(cases)
    tokens = {name: total_known(list(map(attrgetter(name), cases))) for name in _TOKEN_COUNTS}
    output = tokens["output_tokens"]
    priced = [case.cost_usd for case in cases if case.input_tokens is not None or case.output_tokens is not None]
    known = [price for price in priced if price is not None]
    cost = round(sum(known), 10) if priced and len(known) == len(priced) else None
    ordered = sorted(latencies)
    calls = sum(map(attrgetter("calls"), cases))
    silent = sum(map(attrgetter("usage_missing"), cases))

    def per_case(total: float | None) -> float | None:
        """A total over the cases as a mean per case; with calls that reported no usage (``unknown_figures:
        allow``), the calls that did report stand for every call (their mean per call times calls per case)."""
        if total is None or not ran or silent >= calls:
            return None
        return total / ran if not silent else total / (calls - silent) * calls / ran

    cost_per_case, output_per_case = per_case(cost), per_case(output)
    return CostMetrics(
        calls=calls,
        **tokens,
        cost_usd=cost,
        cost_per_case_usd=None if cost_per_case is None else round(cost_per_case, 10),
        output_tokens_per_case=None if output_per_case is None else round(output_per_case, 3),
        latency_p50_ms=percentile(ordered, 50),
        latency_p95_ms=percentile(ordered, 95),
        latency_max_ms=ordered[-1] if ordered else None,
        rate_limited=sum(map(attrgetter("rate_limited"), cases)),
        calls_without_usage=silent,
    )


def percentile(ordered: Sequence[float], p: float) -> float | None:
    """The nearest-rank ``p``-th percentile of sorted values (None: no values)."""
    if not ordered:
        return None
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def over_budget(budget: Budget | None, metrics: CostMetrics | None) -> tuple[str, ...]:
    """Each limit of ``budget`` the run breaks, with its figure and the limit; a cost or token limit on a run that
    reported tokens but whose figure is unknown (an unpriced model) cannot be shown to hold and is broken too, and
    so is one over calls whose endpoint reported no usage, unless the budget sets ``unknown_figures: allow``.

    A run that reported no tokens at all (a python or evidence_policy candidate) spends none: the cost and
    token limits hold for it; its latency limit applies."""
    if budget is None or metrics is None:
        return ()
    reasons = []
    tokens = metrics.input_tokens is not None or metrics.output_tokens is not None
    spending = budget.max_cost_per_case_usd is not None or budget.max_output_tokens_per_case is not None
    if spending and metrics.calls_without_usage and budget.unknown_figures is UnknownFigures.BLOCK:
        limits = ", ".join(f"{name} {_number(limit)}" for name, limit in (
            ("max_cost_per_case_usd", budget.max_cost_per_case_usd),
            ("max_output_tokens_per_case", budget.max_output_tokens_per_case)) if limit is not None)
        reasons.append(f"{metrics.calls_without_usage} call(s) reported no usage, so {limits} cannot be shown to "
                       f"hold (budget.unknown_figures: allow accepts them)")
    if budget.max_cost_per_case_usd is not None and tokens:
        figure = metrics.cost_per_case_usd
        if figure is None:
            reasons.append(f"cost per case unknown (no price for the model; set price: in the artifact), "
                           f"max_cost_per_case_usd {usd(budget.max_cost_per_case_usd)}")
        elif figure > budget.max_cost_per_case_usd:
            reasons.append(f"cost per case {usd(figure)} > max_cost_per_case_usd {usd(budget.max_cost_per_case_usd)}"
                           if usd(figure) != usd(budget.max_cost_per_case_usd) else
                           f"cost per case ${_number(figure)} > max_cost_per_case_usd "
                           f"${_number(budget.max_cost_per_case_usd)}")
    if budget.max_output_tokens_per_case is not None and tokens:
        per_case = metrics.output_tokens_per_case
        if per_case is None:
            reasons.append(f"output tokens per case unknown, max_output_tokens_per_case "
                           f"{_number(budget.max_output_tokens_per_case)}")
        elif per_case > budget.max_output_tokens_per_case:
            reasons.append(f"output tokens per case {_number(per_case)} > max_output_tokens_per_case "
                           f"{_number(budget.max_output_tokens_per_case)}")
    if budget.max_latency_p95_ms is not None:
        p95 = metrics.latency_p95_ms
        if p95 is None:
            reasons.append(f"latency p95 unknown, max_latency_p95_ms {_number(budget.max_latency_p95_ms)}")
        elif p95 > budget.max_latency_p95_ms:
            reasons.append(f"latency p95 {_number(p95)} ms > max_latency_p95_ms {_number(budget.max_latency_p95_ms)}")
    return tuple(reasons)


def limits_named(reasons: Sequence[str]) -> list[tuple[str, ...]]:
    """The budget limits each ``over_budget`` reason names, in order: what a check of a stored verdict compares (the
    figures are the record's own, and their wording may change between releases)."""
    return [tuple(re.findall(r"\bmax_\w+", reason)) for reason in reasons]


def _number(value: float) -> str:
    """A figure as written, every digit kept (``1000``, ``12.5``, ``0.00035``, ``0.000005``, never ``5e-06``): two
    different figures never look the same."""
    if value == int(value):
        return f"{value:.0f}"
    return format(Decimal(repr(value)), "f")  # repr's shortest digits, never in exponent notation


def _has_tokens(usage: Usage) -> bool:
    return usage.input_tokens is not None or usage.output_tokens is not None


def total_known(values: Sequence[int | None]) -> int | None:
    """The sum of the values reported (None: none was)."""
    if values and None not in values:
        return sum(values)  # type: ignore[arg-type]
    known = [value for value in values if value is not None]
    return sum(known) if known else None
