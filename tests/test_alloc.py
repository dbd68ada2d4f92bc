"""The allocator setting: applied once on glibc, off with CONVSCHED_MALLOPT=0, never an error."""

from __future__ import annotations

import os
import subprocess
import sys

CODE = "from convsched.search.alloc import tune_allocator as t; print(t(), t())"


def run(env_value: str | None) -> str:
    env = dict(os.environ)
    env.pop("CONVSCHED_MALLOPT", None)
    if env_value is not None:
        env["CONVSCHED_MALLOPT"] = env_value
    return subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, env=env,
                          check=True).stdout.split()


def test_turned_off_by_the_environment():
    assert run("0") == ["False", "False"]


def test_idempotent_and_never_fails():
    first, second = run(None)
    assert first == second
    if sys.platform.startswith("linux") and os.path.exists("/lib/x86_64-linux-gnu/libc.so.6"):
        assert first == "True"
