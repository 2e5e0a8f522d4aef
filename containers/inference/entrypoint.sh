#!/bin/sh
# SageMaker starts the container with "serve"; Batch/ECS start it with the worker's flags.
set -e
if [ "${1:-}" = "serve" ]; then
  exec /opt/venv/bin/python -m medialens.worker.serve
fi
exec /opt/venv/bin/python -m medialens.worker.heavy "$@"
