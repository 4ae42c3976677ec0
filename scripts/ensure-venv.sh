#!/usr/bin/env bash
# Create the virtualenv (if missing), install a requirements file into it, then the project itself
# (editable, without dependencies: `import core` and the `lattice` command work from any directory).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
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
echo "Installing the project (editable) into $venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -e "$root"
