"""Issue 18 ("Faster than the detector"): `capstone eval mot --detect-every N|auto` is
validated like every other CLI value: a bad one is one `Error:` line and exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from capstone.cli.evaluate import parse_detect_every
from tests.test_cli_usage import QUIET_ENV, assert_usage_error


@pytest.mark.parametrize("value", ["0", "fast", "31", "-1", "2.5", ""])
def test_eval_mot_rejects_a_bad_detect_every(
    value: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from capstone.cli import main

    for var in QUIET_ENV:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("CAPSTONE_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exc:
        main(["eval", "mot", "--seq", "no-such-dir", "--detect-every", value])
    printed = capsys.readouterr()
    assert_usage_error(
        exc.value.code, printed.out, printed.err, "Invalid value for '--detect-every'"
    )


@pytest.mark.parametrize(("value", "parsed"), [("1", 1), ("3", 3), ("30", 30), ("auto", "auto")])
def test_detect_every_values(value: str, parsed: int | str) -> None:
    assert parse_detect_every(value) == parsed


@pytest.mark.parametrize(("value", "parsed"), [("3", 3), ("auto", "auto")])
def test_eval_mot_passes_detect_every_to_the_default_row(
    value: str,
    parsed: int | str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The `default` row is `analyze_rows(video, AnalysisParams(..., detect_every=N))`
    (the detector, tracker and scoring are stubbed: only the plumbing is under test)."""
    from types import SimpleNamespace

    from capstone.cli import main
    from capstone.eval import mot as evaluate
    from capstone.io import mot as mot_files

    video = tmp_path / "clip.mp4"
    video.write_bytes(b"")
    seen: list[object] = []
    monkeypatch.setattr(
        mot_files,
        "load_sequence",
        lambda seq: SimpleNamespace(name="S", root=tmp_path, frame_rate=25.0, length=1),
    )
    monkeypatch.setattr(evaluate, "detect_video", lambda video, params: ([], [], None))
    monkeypatch.setattr(evaluate, "track_detections", lambda *a, **k: [])
    monkeypatch.setattr(
        evaluate, "analyze_rows", lambda video, params: seen.append(params.detect_every) or []
    )
    monkeypatch.setattr(
        evaluate,
        "evaluate_many",
        lambda root, rows: {n: dict.fromkeys(("MOTA", "IDF1", "HOTA"), 0.0) for n in rows},
    )
    monkeypatch.setattr("capstone.cli.evaluate.print_table", lambda *a: None)
    main(
        [
            "eval", "mot", "--seq", str(tmp_path), "--video", str(video),
            "--tracker", "bytetrack", "--no-repair", "--output", str(tmp_path / "out"),
            "--detect-every", value,
        ]
    )  # fmt: skip
    assert seen == [parsed]
