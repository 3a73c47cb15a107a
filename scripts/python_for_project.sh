#!/usr/bin/env bash
# Prints the Python interpreter the project's commands use: $PYTHON when set, the active
# venv's or conda env's `python`, else ./.venv/bin/python (install.sh creates it).
if [ -n "${PYTHON:-}" ]; then
  echo "$PYTHON"
elif [ -n "${VIRTUAL_ENV:-}" ] || [ -n "${CONDA_PREFIX:-}" ]; then
  echo python
else
  echo .venv/bin/python
fi
