#!/usr/bin/env bash
# Create the virtualenv (if missing) and install a requirements file into it.
set -euo pipefail
venv=${1:-.venv}
reqs=${2:-requirements.txt}
python=${PYTHON:-python3}
if [ ! -x "$venv/bin/python" ]; then
  echo "Creating virtualenv in $venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
fi
echo "Installing $reqs into $venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$reqs"
