"""Parts are checked before they are merged, and the merge writes large runs piece by piece."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from pytest_llmgate.cli.main import main
from pytest_llmgate.io.signing import canonical, signature_of
from pytest_llmgate.model.vocab import SIGNING_KEY_ENV, Outcome, Route
from pytest_llmgate.records.codec import dump, dump_chunks, to_data
from pytest_llmgate.records.run import CaseEntry, RunRecord

from .test_split import big_experiment, run_parts

LISTS = [[f"--llmgate-part=k{start}", "-k", " or ".join(f"c{i:05d}" for i in range(start, 40, 2))]
         for start in range(2)]
ARGS = ["--llmgate-candidate=good"]


def part_files(out: Path) -> list[Path]:
    return sorted((out / "runs").glob("*.json"))


def test_a_split_job_holds_the_cases_it_evaluated_and_the_ids_of_the_whole_run(pytester: pytest.Pytester) -> None:
    big_experiment(pytester.path, 40)
    jobs = [[*selection, f"--llmgate-part=job{start}"] for start, selection in enumerate(LISTS)]
    outs = run_parts(pytester, "big", ARGS, jobs, xdist_part=-1)
    for start, out in enumerate(outs):
        (path,) = part_files(out)
        record = json.loads(path.read_text())
        assert [entry["case_id"] for entry in record["cases"]] == [f"c{i:05d}" for i in range(start, 40, 2)]
        assert record["part"]["case_ids"] == [f"c{i:05d}" for i in range(40)]
        assert record["metrics"]["case_count"] == 20 and record["complete"] is False
        assert record["status"] == "INCOMPLETE_EVALUATION"


def test_a_session_narrowed_by_k_lists_every_case_and_is_no_part(
        pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    """Only a splitter or --llmgate-part makes a part: a -k session is partial, its record lists every case."""
    big_experiment(pytester.path, 40)
    outs = run_parts(pytester, "big", ARGS, [selection[1:] for selection in LISTS], xdist_part=-1)
    (path,) = part_files(outs[0])
    record = json.loads(path.read_text())  # SPEC 5.1: the cases it did not run are NOT_RUN
    assert len(record["cases"]) == 40 and record["metrics"]["not_run_count"] == 20 and "part" not in record
    assert {entry["outcome"] for entry in record["cases"][1::2]} == {"NOT_RUN"}
    assert main(["merge", *map(str, outs), "--out", str(pytester.path / "merged")]) == 2
    assert "no part records in" in capsys.readouterr().err


def test_a_tampered_part_is_refused_naming_its_file_and_the_case(
        pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    big_experiment(pytester.path, 40)
    outs = run_parts(pytester, "big", ["--llmgate-candidate=wide"], LISTS, xdist_part=-1)
    (path,) = part_files(outs[1])
    record = json.loads(path.read_text())
    failing = next(entry for entry in record["cases"] if entry["outcome"] != "PASS")
    failing["outcome"] = "PASS"  # a failure edited away by hand
    path.write_text(json.dumps(record, indent=2))
    assert main(["merge", *map(str, outs), "--out", str(pytester.path / "merged")]) == 2
    error = capsys.readouterr().err
    assert path.name in error and failing["case_id"] in error and "outcome is PASS" in error
    assert not (pytester.path / "merged" / "runs").exists()


def test_a_part_whose_case_was_replaced_and_its_digest_made_to_agree_is_refused(
        pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    """Without a key a part's own digest can be recomputed; the merged cases must still give the case set the
    parts were split from."""
    from pytest_llmgate.records.run import cases_digest

    big_experiment(pytester.path, 40)
    outs = run_parts(pytester, "big", ARGS, LISTS, xdist_part=-1)
    (path,) = part_files(outs[1])
    record = json.loads(path.read_text())
    record["cases"][0]["case_sha256"] = "0" * 64  # another case's hash in its place
    record["cases_sha256"] = cases_digest(entry["case_sha256"] for entry in record["cases"])
    path.write_text(json.dumps(record, indent=2))
    assert main(["merge", *map(str, outs), "--out", str(pytester.path / "merged")]) == 2
    assert "do not give the case set they were split from (cases_sha256): a part's cases were replaced" in (
        capsys.readouterr().err)
    assert not (pytester.path / "merged" / "runs").exists()


def test_parts_whose_fingerprints_were_emptied_alike_are_refused_naming_the_field(
        pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    """The merged run keeps its parts' fingerprints: emptied in every part (so that the parts agree), the merge
    ended in a KeyError traceback while writing the merged run's redacted report."""
    big_experiment(pytester.path, 40)
    outs = run_parts(pytester, "big", ARGS, LISTS, xdist_part=-1)
    for out in outs:
        (path,) = part_files(out)
        record = json.loads(path.read_text())
        evaluation_sha = record["params"]["evaluation_sha"]
        record["fingerprints"] = {}
        path.write_text(json.dumps(record, indent=2))
    assert main(["merge", *map(str, outs), "--out", str(pytester.path / "merged")]) == 2
    error = capsys.readouterr().err
    assert f"{part_files(outs[0])[0].name}: refused: fingerprints has no 'main', but params.main_sha is " in error
    assert f"fingerprints has no 'evaluation', but params.evaluation_sha is {evaluation_sha}" in error
    assert not (pytester.path / "merged" / "runs").exists()


def test_signed_parts_merge_into_a_signed_run_that_verifies(
        pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SIGNING_KEY_ENV, "k3y-for-tests")
    big_experiment(pytester.path, 40)
    outs = run_parts(pytester, "big", ARGS, LISTS, xdist_part=-1)
    merged = pytester.path / "merged"
    assert main(["merge", *map(str, outs), "--out", str(merged)]) == 0
    (run,) = part_files(merged)
    assert json.loads(run.read_text())["signature"].startswith("hmac-sha256:")
    capsys.readouterr()
    assert main(["verify", str(run)]) == 0, capsys.readouterr().out
    # a part whose signature was removed is refused while the key is set
    (path,) = part_files(outs[0])
    record = json.loads(path.read_text())
    del record["signature"]
    path.write_text(json.dumps(record))
    assert main(["merge", *map(str, outs), "--out", str(pytester.path / "again")]) == 2
    error = capsys.readouterr().err
    assert path.name in error and "is not signed" in error


def entries(count: int) -> tuple[CaseEntry, ...]:
    return tuple(CaseEntry(suite="main", case_id=f"c{i:05d}", slice_name="Zürich ✓", evidence_state="log",
                           expected_route=Route.SERVE, predicted_route=Route.SERVE if i % 4 else Route.ABSTAIN,
                           outcome=Outcome.PASS if i % 4 else Outcome.UNNECESSARY_ABSTENTION, input_sha256=f"{i:064x}")
                 for i in range(count))


@pytest.mark.parametrize("count", [3, 40, 5000])
def test_a_long_record_is_written_piece_by_piece_and_signed_over_its_sorted_encoding(count: int) -> None:
    golden = Path(__file__).parent / "golden"
    record = msgspec.json.decode(next((golden / "v0.1.0" / "runs").glob("*.json")).read_bytes(), type=RunRecord)
    record = msgspec.structs.replace(record, cases=entries(count))
    assert b"".join(dump_chunks(record)) == dump(record)
    data = to_data(record)
    # the same JSON as the plain, dict-by-dict encoding of the whole record (its bytes are laid out otherwise)
    reference = json.dumps(data, indent=2, ensure_ascii=False).encode("utf-8")
    assert json.loads(dump(record)) == json.loads(reference)
    if count > 8:  # one line per case, each the entry as msgspec encodes it alone
        lines = [line.rstrip(b",") for line in dump(record).split(b"\n") if b'"case_id"' in line]
        assert lines == [b"    " + msgspec.json.encode(entry) for entry in record.cases]
    # signed over msgspec's sorted encoding of the objects: the same bytes as the sorted encoding of its data
    body = {name: value for name, value in data.items() if name != "signature"}
    assert canonical(record) == msgspec.json.encode(body, order="sorted")
    assert signature_of(record, b"key") != signature_of(record, b"other")


@pytest.mark.parametrize("count", [0, 1, 8192, 20_000])
def test_the_case_set_digest_is_hashed_in_slices_as_one_joined_text(count: int) -> None:
    import hashlib

    from pytest_llmgate.records.run import cases_digest

    hashes = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(count)][::-1]
    assert cases_digest(hashes) == hashlib.sha256("\n".join(sorted(hashes)).encode("ascii")).hexdigest()


def test_a_large_part_holds_each_label_value_once() -> None:
    from pytest_llmgate.engine.merge import share_labels

    decoded = msgspec.json.decode(msgspec.json.encode(entries(3)), type=list[CaseEntry])
    assert decoded[0].slice_name is not decoded[1].slice_name
    share_labels(decoded)
    assert decoded[0].slice_name is decoded[1].slice_name is decoded[2].slice_name
    assert decoded[0].suite is decoded[2].suite and decoded[0].evidence_state is decoded[1].evidence_state
    assert [entry.slice_name for entry in decoded] == ["Zürich ✓"] * 3


def test_the_merged_report_keeps_what_the_parts_said_once_but_not_that_they_were_parts(
        pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    big_experiment(pytester.path, 40)
    outs = run_parts(pytester, "big", ARGS, LISTS, xdist_part=-1)
    said = "llmgate: no known price for model 'x' (templates/good.yaml): its cost is reported as unknown (null)"
    for out in outs:  # each job's session said it (as a session does for an unpriced model), and that it was a part
        report = json.loads((out / "report.json").read_text())
        assert any("waits for `llmgate merge`" in note for note in report["notes"])
        report["notes"].append(said)
        (out / "report.json").write_text(json.dumps(report))
    assert main(["merge", *map(str, outs), "--out", str(pytester.path / "merged")]) == 0
    assert json.loads((pytester.path / "merged" / "report.json").read_text())["notes"] == [said]


def test_with_a_key_merge_refuses_an_edited_part_report_and_signs_what_it_writes(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(SIGNING_KEY_ENV, "k")
    big_experiment(pytester.path, 40)
    outs = run_parts(pytester, "big", ARGS, LISTS, xdist_part=-1)
    assert main(["merge", *map(str, outs), "--out", str(pytester.path / "merged")]) == 0
    assert main(["verify", str(pytester.path / "merged")]) == 0
    report = outs[1] / "report.json"
    edited = json.loads(report.read_text())
    edited["notes"].append("a note the job never wrote")
    report.write_text(json.dumps(edited))
    capsys.readouterr()
    assert main(["merge", *map(str, outs), "--out", str(pytester.path / "again")]) == 2
    assert f"{report.name}: refused: signature does not match" in capsys.readouterr().err
