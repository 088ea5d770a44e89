#!/usr/bin/env bash
# The gate's shell steps in the pull-request workflow of docs/ci.md; run from the repository's root.
#
#   pr-gate.sh main   on main: run the gate into .llmgate/ (the workflow uploads it as the artifact llmgate-main)
#   pr-gate.sh pr     on a pull request: run the gate compared with main's records ($LLMGATE_MAIN, when the
#                     download found them), write the comment and the HTML report, post or update one comment
#                     (only a finished session's summary: nothing when the gate stopped before its end)
#
# Environment: LLMGATE_ARGS  the gate's pytest arguments (default: example_suites --llmgate-candidate=all)
#              LLMGATE_MAIN  where main's records were downloaded (default: main-llmgate)
#              PR_NUMBER     the pull request to comment on (no comment without it); gh needs GH_TOKEN
#              PYTHON        the interpreter with pytest-llmgate installed (default: python)
# Exit status: the gate's (pytest's) own, whether or not the comment could be posted.
set -uo pipefail
mode=${1:?usage: pr-gate.sh main|pr}
python=${PYTHON:-python}
read -r -a gate_args <<< "${LLMGATE_ARGS:-example_suites --llmgate-candidate=all}"
out=.llmgate

case "$mode" in
  main)
    "$python" -m pytest "${gate_args[@]}" --llmgate-out="$out" --llmgate-html="$out/report.html"
    exit $?
    ;;
  pr)
    main_dir=${LLMGATE_MAIN:-main-llmgate}
    compare=()
    if [ -d "$main_dir/runs" ]; then
      compare=("--llmgate-compare-to=$main_dir")
    else
      echo "pr-gate: no records of main in $main_dir: the comment shows this run alone" >&2
    fi
    "$python" -m pytest "${gate_args[@]}" --llmgate-out="$out" "${compare[@]}" \
      --llmgate-markdown=llmgate-comment.md --llmgate-html="$out/report.html"
    status=$?
    # The gate replaces the file with a "no verdict" page at its start and writes the summary at its end: post
    # only a summary (its first line says so), never a no-verdict page nor a previous run's comment.
    if [ "$(head -n 1 llmgate-comment.md 2>/dev/null)" != "<!-- pytest-llmgate summary -->" ]; then
      echo "pr-gate: no verdict in llmgate-comment.md (the gate stopped before its end, exit $status): nothing posted" >&2
    elif [ -n "${PR_NUMBER:-}" ]; then
      # One comment per pull request: edit this job's last comment, or post the first one.
      gh pr comment "$PR_NUMBER" --edit-last --body-file llmgate-comment.md \
        || gh pr comment "$PR_NUMBER" --body-file llmgate-comment.md \
        || echo "pr-gate: could not post the comment (the gate's verdict stands)" >&2
    fi
    exit $status
    ;;
  *)
    echo "usage: pr-gate.sh main|pr" >&2
    exit 2
    ;;
esac
