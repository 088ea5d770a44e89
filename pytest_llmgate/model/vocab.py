"""The closed vocabularies of the gate: routes, outcomes, roles, statuses, record modes and canary verdicts."""

from __future__ import annotations

from enum import Enum


class Route(str, Enum):
    """What a candidate does with a request."""

    SERVE = "SERVE"
    ABSTAIN = "ABSTAIN"


class Outcome(str, Enum):
    """How one case went for one candidate."""

    PASS = "PASS"
    UNSAFE_CLAIM_SERVED = "UNSAFE_CLAIM_SERVED"
    UNNECESSARY_ABSTENTION = "UNNECESSARY_ABSTENTION"
    ERROR = "ERROR"
    NOT_RUN = "NOT_RUN"


class Role(str, Enum):
    """Whether a run gates the session (candidate) or is a reference (baseline)."""

    CANDIDATE = "candidate"
    BASELINE = "baseline"


class RunStatus(str, Enum):
    """The verdict on one run; the first that applies wins, in this order."""

    INCOMPLETE_EVALUATION = "INCOMPLETE_EVALUATION"
    REJECT_UNSAFE_SERVE = "REJECT_UNSAFE_SERVE"
    REJECT_UNNECESSARY_ABSTENTION = "REJECT_UNNECESSARY_ABSTENTION"
    REJECT_OVER_BUDGET = "REJECT_OVER_BUDGET"  # over a limit of the manifest's budget block
    #: The guardrails held, but an upper confidence bound is above the manifest's requirement (docs/statistics.md).
    INSUFFICIENT_EVIDENCE = "INSUFFICIENT_EVIDENCE"
    ELIGIBLE_FOR_CANARY_REVIEW = "ELIGIBLE_FOR_CANARY_REVIEW"


class UnknownFigures(str, Enum):
    """What a cost or token budget does with a call whose endpoint reported no usage (the manifest's
    ``budget.unknown_figures``): ``block`` the run (the default: an unknown figure is not a pass) or ``allow`` it."""

    BLOCK = "block"
    ALLOW = "allow"


class DecisionStatus(str, Enum):
    """The verdict on a set of runs of one experiment."""

    PROMOTE = "PROMOTE"
    NO_ELIGIBLE_CANDIDATE = "NO_ELIGIBLE_CANDIDATE"
    TIE_REQUIRES_REVIEW = "TIE_REQUIRES_REVIEW"
    RUNS_NOT_COMPARABLE = "RUNS_NOT_COMPARABLE"
    INCOMPLETE_EVALUATION = RunStatus.INCOMPLETE_EVALUATION.value


class ApprovalStatus(str, Enum):
    """The status of a promotion decision: the artifact may get canary traffic."""

    APPROVED_FOR_CANARY = "APPROVED_FOR_CANARY"


class CanaryVerdict(str, Enum):
    """What ``llmgate canary`` says about a running canary (SPEC §5.3); a roll-back names its artifact after ``:``."""

    CONTINUE = "CONTINUE_CANARY_MONITORING"
    ROLL_BACK = "ROLL_BACK_TO"


class CaseChange(str, Enum):
    """How one case went against the stored run it is compared with (``--llmgate-compare-to``, ``llmgate diff``)."""

    BROKEN = "broken"  # passed in the stored run, fails (a guardrail or an error) now
    CHANGED = "changed"  # failed in both, with a different outcome (say ERROR -> UNSAFE_CLAIM_SERVED)
    FIXED = "fixed"  # failed in the stored run, passes now
    NEW = "new"  # not in the stored run
    REMOVED = "removed"  # in the stored run, not in this one
    NOT_COMPARED = "not_compared"  # not run on one side: no verdict either way
    UNCHANGED = "unchanged"  # the same outcome on both sides


class MatchedBy(str, Enum):
    """Why a stored run was chosen to compare a run with: its template, or the manifest's handoff naming it."""

    TEMPLATE = "template"  # the same template_id
    HANDOFF_CANDIDATE = "handoff.candidate_template_id"
    HANDOFF_FAILING = "handoff.failing_template_id"
    NONE = "none"  # no stored run of the experiment matches


class RecordMode(str, Enum):
    """The vcrpy vocabulary: when a reply may come from the endpoint rather than the recording."""

    NONE = "none"  # replay only; a missing recording is an error
    ONCE = "once"  # record when there is no recordings file yet, else replay only
    NEW_EPISODES = "new_episodes"  # replay what is recorded, record what is not
    ALL = "all"  # always call the endpoint and record the reply


#: Schema versions on the root of every JSON file the gate writes.
RUN_SCHEMA = "llmgate.run/1"
REPORT_SCHEMA = "llmgate.report/1"
REDACTED_EVAL_SCHEMA = "llmgate.redacted-eval/1"
LOCK_SCHEMA = "llmgate.lock/1"


class ShowMode(str, Enum):
    """What a failing LLM case shows in the terminal and JUnit (``--llmgate-show``); never written to a record."""

    FAILURES = "failures"  # the rendered messages and each trial's reply, long texts cut
    FULL = "full"  # the same, never cut
    NONE = "none"  # nothing of the prompt, the reply or a candidate's exception text (CI logs that must hold no input)


#: The environment variable holding the key that signs and checks records, reports and decisions (docs/records.md).
SIGNING_KEY_ENV = "LLMGATE_SIGNING_KEY"
