#!/usr/bin/env bash
# Set up and serve omi-memory on http://127.0.0.1:8000 (called by `make run`).
# With REDIS_URL set, a Celery worker and Celery beat (the sweeper) run beside the web server; without
# it, tasks run in-process and `manage.py sweep --every` stands in for beat.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
export TORCH_THREADS="${TORCH_THREADS:-1}"
# Without SECRET_KEY (and DEBUG off) the app refuses to start: the laptop keeps one of its own,
# made once in var/secret_key (git ignores var/). Other commands: export SECRET_KEY=$(cat var/secret_key)
if [ -z "${SECRET_KEY:-}" ]; then
  mkdir -p var
  [ -s var/secret_key ] || (umask 077 && $BIN/python -c 'import secrets; print(secrets.token_urlsafe(50))' > var/secret_key)
  SECRET_KEY="$(cat var/secret_key)"
  export SECRET_KEY
fi

# Metrics: every process (web workers, Celery worker, these commands) writes its counters to one
# directory, which /metrics adds up; emptied at start (prometheus_client's multiprocess mode).
export PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-$PWD/var/metrics}"
mkdir -p "$PROMETHEUS_MULTIPROC_DIR" && rm -f "$PROMETHEUS_MULTIPROC_DIR"/*.db

$BIN/python manage.py migrate --noinput
$BIN/python manage.py collectstatic --noinput --verbosity 0
$BIN/python manage.py load_demo

# Run a command, and again whenever it exits, until this script ends (as a supervisor would: a
# Celery worker may stop when Redis goes away).
supervise() {
  local child=""
  trap 'kill "$child" 2>/dev/null; exit 0' TERM INT
  while true; do
    "$@" &
    child=$!
    wait "$child" || true
    echo "$* exited; starting it again in 2 s" >&2
    sleep 2
  done
}

pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT INT TERM
if [ -n "${REDIS_URL:-}" ]; then
  echo "REDIS_URL is set: starting a Celery worker and Celery beat (which runs the sweeper)"
  supervise $BIN/celery -A omi_memory worker --loglevel info --concurrency "${CELERY_CONCURRENCY:-1}" &
  pids+=($!)
  mkdir -p var
  supervise $BIN/celery -A omi_memory beat --loglevel info --schedule var/celerybeat-schedule &
  pids+=($!)
else
  echo "REDIS_URL is not set: tasks run in-process; the sweeper runs every ${PIPELINE_SWEEP_SECONDS:-60} s"
  supervise $BIN/python manage.py sweep --every "${PIPELINE_SWEEP_SECONDS:-60}" &
  pids+=($!)
fi
echo "Serving on http://127.0.0.1:${PORT:-8000} (the MCP server at /mcp: Authorization: Bearer <API key>)"
$BIN/gunicorn omi_memory.wsgi --config scripts/gunicorn.conf.py --bind "127.0.0.1:${PORT:-8000}" --workers "${WEB_WORKERS:-2}" --threads 4 \
  --timeout 300 --access-logfile - &
pids+=($!)
wait -n "${pids[@]}"
