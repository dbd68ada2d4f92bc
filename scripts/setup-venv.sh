# Sourced by run.sh and test.sh: create .venv and install convsched (with the
# test and optional extras) when missing or when pyproject.toml changed.
PY=${PYTHON:-python3}
if ! command -v "$PY" >/dev/null 2>&1; then
  echo "error: $PY not found; install Python 3.11 or newer" >&2; exit 2
fi
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || {
  echo "error: convsched needs Python 3.11 or newer ($("$PY" --version) found); set PYTHON=python3.11" >&2; exit 2; }
stamp=.venv/.installed-$(cksum pyproject.toml | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ ! -f "$stamp" ]; then
  echo "setting up .venv (first run only) ..." >&2
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  if ! { .venv/bin/python -m pip install --disable-pip-version-check --upgrade pip &&
         .venv/bin/python -m pip install --disable-pip-version-check -e '.[all]'; } > .venv/install.log 2>&1; then
    tail -n 30 .venv/install.log >&2
    echo "error: installing convsched into .venv failed (full log: .venv/install.log)" >&2
    exit 2
  fi
  rm -f .venv/.installed-*
  touch "$stamp"
fi
