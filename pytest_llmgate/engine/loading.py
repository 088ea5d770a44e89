"""A session's experiments: each loaded once, its artifacts checked against their providers, and its lock."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pytest_llmgate.engine.judging import check_evaluator
from pytest_llmgate.io.lock import frozen_state, read_lock, write_lock
from pytest_llmgate.model.errors import LlmgateError, ManifestError, display_path
from pytest_llmgate.model.fingerprint import short
from pytest_llmgate.providers import ProviderFactory, check_settings
from pytest_llmgate.records.candidate import Candidate
from pytest_llmgate.records.experiment import EVALUATION, Experiment, load_experiment


class Experiments:
    """The experiments of a session, loaded once each (a load error is kept and raised each time they are asked
    for), and whether each matches its lock; ``notices`` says what a freeze did."""

    def __init__(self, factory: Callable[[Candidate], ProviderFactory]) -> None:
        self._factory = factory
        self._loaded: dict[Path, Experiment | LlmgateError] = {}
        self._frozen: dict[Path, bool] = {}
        self.notices: list[str] = []  # what the session did before the runs (a freeze), for the header

    def load(self, directory: Path) -> Experiment:
        """The experiment in ``directory``, loaded once per session; a load error is raised each time."""
        directory = directory.resolve()
        found = self._loaded.get(directory)
        if found is None:
            try:
                found = load_experiment(directory)
                for candidate in found.candidates.values():
                    check_settings(candidate, self._factory(candidate))
                if found.evaluator is not None:
                    check_evaluator(found.evaluator, self._factory)
                twin = next((other for other in self.loaded if other.name == found.name), None)
                if twin is not None:  # records, reports and `--experiment` know an experiment by its name
                    raise ManifestError(found.manifest_path, None, f"experiment {found.name!r} is also the name of "
                                        f"{display_path(twin.directory)}: give each experiment its own name")
            except LlmgateError as exc:
                found = exc
            self._loaded[directory] = found
        if isinstance(found, LlmgateError):
            raise found
        return found

    @property
    def loaded(self) -> list[Experiment]:
        return [found for found in self._loaded.values() if isinstance(found, Experiment)]

    @property
    def load_errors(self) -> list[LlmgateError]:
        return [found for found in self._loaded.values() if isinstance(found, LlmgateError)]

    def claims(self, path: Path) -> bool:
        """Whether a loaded experiment lists the suite file at ``path``."""
        resolved = path.resolve()
        return any(resolved in experiment.suite_paths() for experiment in self.loaded)

    def found(self, directory: Path) -> Experiment | LlmgateError | None:
        """What loading ``directory`` gave, if this process loaded it."""
        return self._loaded.get(directory)

    def frozen(self, experiment: Experiment) -> bool:
        """Whether the experiment matches its lock (False: no lock); a mismatch raises ``LockError``."""
        if experiment.directory not in self._frozen:
            self._frozen[experiment.directory] = frozen_state(experiment)
        return self._frozen[experiment.directory]

    def freeze_all(self) -> None:
        """Write or refresh the lock of every loaded experiment (``--llmgate-freeze``), saying what it did."""
        for experiment in self.loaded:
            try:
                old = read_lock(experiment)
            except LlmgateError:
                old = None  # an unreadable lock is replaced whole
            where = display_path(write_lock(experiment))
            new_sha = short(experiment.fingerprints[EVALUATION])
            if old is None:
                self.notices.append(f"llmgate: froze {experiment.name}: wrote {where} (evaluation {new_sha})")
            elif old.fingerprints == experiment.fingerprints:
                self.notices.append(f"llmgate: {experiment.name}: {where} unchanged (evaluation {new_sha})")
            else:
                old_sha = short(old.fingerprints.get(EVALUATION, "none"))
                self.notices.append(
                    f"llmgate: refroze {experiment.name}: replaced {where}; a new comparison set starts "
                    f"(evaluation {old_sha} -> {new_sha}); runs before it are not comparable with runs after it"
                )
