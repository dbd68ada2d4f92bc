"""Test-wide settings."""

import os
import tempfile

# The optimizer keeps its structure lists in an on-disk cache; tests use a fresh,
# private one (inherited by the CLI subprocesses) and never touch the user's.
os.environ["CONVSCHED_CACHE_DIR"] = tempfile.mkdtemp(prefix="convsched-test-cache-")
