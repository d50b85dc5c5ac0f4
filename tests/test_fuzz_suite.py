"""The fuzz suite: every input kind, mutated, must end in success or a clean DeepvisError.

Each kind runs in its own process (tests/fuzz_worker.py) under a time limit, so a case that
kills the interpreter (a signal from a native library) or hangs fails the test with the
case's number instead of taking pytest down. Seeded: the same seed gives the same cases.
The default sizes keep the whole suite near two minutes on 2 cores;
DEEPVIS_FUZZ_CASES=N runs N cases of every kind, DEEPVIS_FUZZ_SEED picks other cases, and
DEEPVIS_FUZZ_REPORT=FILE appends each kind's counts (JSON lines) for the README's table.
"""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
CASES = {"onnx_bytes": 250, "onnx_structure": 200, "prototxt": 800, "caffemodel": 600,
         "yaml_settings": 120, "settings_py": 150, "images": 800, "npy": 400, "maxes": 400,
         "tarballs": 400}


def cases_for(kind: str) -> int:
    override = os.environ.get("DEEPVIS_FUZZ_CASES")
    return int(override) if override else CASES[kind]


@pytest.mark.parametrize("kind", sorted(CASES))
def test_every_mutated_input_ends_in_success_or_a_clean_error(kind, tmp_path):
    n = cases_for(kind)
    seed = int(os.environ.get("DEEPVIS_FUZZ_SEED", "0"))
    limit = 120 + 0.5 * n  # generous: a hang, not a slow machine, should trip it
    env = {**os.environ, "DEEPVIS_CACHE": str(tmp_path / "cache"), "PYTHONFAULTHANDLER": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    try:
        done = subprocess.run([sys.executable, "-m", "tests.fuzz_worker", kind, str(seed),
                               str(n), str(tmp_path / "work")], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        last = [line for line in out.splitlines() if line.startswith("case ")][-1:]
        pytest.fail(f"{kind}: hung past {limit:.0f} s at {last} (seed {seed})")
    lines = done.stdout.splitlines()
    last_case = [line for line in lines if line.startswith("case ")][-1:]
    assert done.returncode == 0, (f"{kind}: the worker died with code {done.returncode} "
                                  f"(a negative code is a signal) at {last_case}, seed {seed}:\n"
                                  f"{done.stderr[-3000:]}")
    summary = json.loads(lines[-1])
    report = os.environ.get("DEEPVIS_FUZZ_REPORT")
    if report:
        with open(report, "a", encoding="utf-8") as f:
            f.write(json.dumps({k: v for k, v in summary.items() if k != "crashes"}
                               | {"crashes": len(summary["crashes"]), "seed": seed}) + "\n")
    crashes = summary["crashes"]
    assert not crashes, (f"{kind}: {len(crashes)} of {n} cases crashed (seed {seed}); the "
                         "first:\n" + "\n".join(f"case {c['case']}:\n{c['error']}"
                                                for c in crashes[:3]))
    assert summary["cases"] == n and summary["ok"] + summary["clean"] == n
    # Both outcomes occur: mutations that never pass, or never fail, would test nothing
    # (checked at the default sizes; a handful of cases is a smoke run).
    if n >= CASES[kind]:
        assert summary["ok"] > 0 and summary["clean"] > 0, summary
