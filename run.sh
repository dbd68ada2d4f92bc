#!/usr/bin/env bash
# The main job: optimize a whole built-in network for a default buffer and print the result.
# Sets up .venv on first use. Extra arguments replace the default command, e.g.
#   ./run.sh optimize vgg16 --buffer 16KiB
set -euo pipefail
cd "$(dirname "$0")"
source scripts/setup-venv.sh
if [ "$#" -eq 0 ]; then
  set -- optimize mobilenet_v2 --buffer 16KiB
fi
exec .venv/bin/convsched "$@"
