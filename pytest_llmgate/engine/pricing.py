"""How a session prices its runs' calls: an artifact's ``price:`` override, else the genai-prices list."""

from __future__ import annotations

import msgspec

from pytest_llmgate.model.costs import Pricer, listed_pricer, override_price
from pytest_llmgate.model.errors import CandidateError
from pytest_llmgate.model.results import RunResults
from pytest_llmgate.records.candidate import Candidate


class Pricing:
    """Each model's price looked up once per session; ``notes`` names a model neither knows, once."""

    def __init__(self) -> None:
        self._priced: dict[tuple[str, str, str | None], Pricer | None] = {}
        self.notes: list[str] = []

    def pricer(self, candidate: Candidate, results: RunResults) -> Pricer | None:
        """How a candidate's calls are priced: its ``price:`` override, else the genai-prices list (looked up only
        when a call reported tokens); a model neither knows is named once per session in the notes."""
        try:
            price = override_price(candidate.settings)
        except msgspec.ValidationError as exc:  # a plugin's artifact, not checked against the built-in Price
            raise CandidateError(candidate.path, candidate.line_of("price"), f"price: {exc}") from None
        if price is not None:
            return price.of
        if not results.reported_tokens():
            return None
        model = str(candidate.settings.get("model", candidate.template_id))
        base_url = candidate.settings.get("base_url")
        key = (candidate.provider, model, base_url)
        if key not in self._priced:
            self._priced[key] = listed_pricer(model, candidate.provider, base_url)
            if self._priced[key] is None:
                self.notes.append(_unpriced_note(model, candidate))
        return self._priced[key]


def _unpriced_note(model: str, candidate: Candidate) -> str:
    try:
        import genai_prices  # noqa: F401
    except ImportError:
        why = "the prices extra is not installed (pip install 'pytest-llmgate[prices]')"
    else:
        why = "the genai-prices list does not know it"
    return (f"llmgate: no known price for model {model!r} ({candidate.relative_path}): {why}; its cost is "
            "reported as unknown (null); set price: {input_per_mtok: ..., output_per_mtok: ...} in the artifact")
