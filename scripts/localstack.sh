#!/usr/bin/env bash
# LocalStack for the end-to-end suite: start | stop | status | logs.
#
# With a Docker engine it runs the localstack/localstack image; without one (these machines) it
# runs localstack-core on the host from its own virtualenv (.localstack/venv), the version and
# pins that work there without an auth token (see docs/deploy.md). Either way it listens on
# 127.0.0.1:${LOCALSTACK_PORT:-4566}; `start` returns once /_localstack/health answers.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION="4.9.2"
PORT="${LOCALSTACK_PORT:-4566}"
STATE_DIR="${LOCALSTACK_STATE_DIR:-$PWD/.localstack}"
VENV="$STATE_DIR/venv"
PID_FILE="$STATE_DIR/localstack.pid"
LOG_FILE="$STATE_DIR/localstack.log"
CONTAINER="medialens-localstack"
PYTHON="${PYTHON:-python3}"
SERVICES="s3,sqs,stepfunctions,dynamodb,events,sts,iam"
# Host mode leaves DynamoDB out: LocalStack runs it on DynamoDB Local, which needs a Java 21 and
# a jar it downloads from outside the package registries. `make localstack-test` then points the
# registry at a moto server instead (MEDIALENS_LOCALSTACK_DYNAMODB=moto); see docs/deploy.md.
HOST_SERVICES="s3,sqs,stepfunctions,events,sts,iam"
HEALTH_URL="http://127.0.0.1:$PORT/_localstack/health"
# Pins that keep localstack-core 4.9.2 importable on Python 3.11 (newer majors changed APIs).
PINS=("cbor2<6" "pyopenssl<25" "cryptography<45")

docker_available() {
  command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1
}

healthy() {
  curl -fsS --max-time 2 "$HEALTH_URL" >/dev/null 2>&1
}

wait_healthy() {
  local deadline=$((SECONDS + ${LOCALSTACK_START_TIMEOUT:-120}))
  until healthy; do
    if [ $SECONDS -ge $deadline ]; then
      echo "LocalStack did not become healthy on $HEALTH_URL; last log lines:" >&2
      tail -n 40 "$LOG_FILE" >&2 2>/dev/null || docker logs --tail 40 "$CONTAINER" >&2 2>/dev/null || true
      return 1
    fi
    if [ -f "$PID_FILE" ] && ! kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
      echo "LocalStack exited during start; last log lines:" >&2
      tail -n 40 "$LOG_FILE" >&2
      return 1
    fi
    sleep 0.5
  done
}

install_host() {
  if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import localstack.runtime.main" 2>/dev/null \
    && [ "$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("localstack-core"))')" = "$VERSION" ]; then
    return 0
  fi
  echo "installing localstack-core $VERSION into $VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  local pins="$STATE_DIR/pins.txt"
  printf '%s\n' "${PINS[@]}" >"$pins"
  "$VENV/bin/pip" install -q -c "$pins" "localstack-core[runtime]==$VERSION" service_identity
}

start() {
  mkdir -p "$STATE_DIR"
  if healthy; then
    echo "LocalStack already answers on $HEALTH_URL"
    return 0
  fi
  if docker_available && [ "${LOCALSTACK_HOST_MODE:-0}" != "1" ]; then
    docker rm -f "$CONTAINER" >/dev/null 2>&1 || true
    docker run -d --name "$CONTAINER" -p "127.0.0.1:$PORT:4566" -e "SERVICES=$SERVICES" \
      "localstack/localstack:$VERSION" >/dev/null
    echo "docker" >"$STATE_DIR/mode"
  else
    install_host
    local data="$STATE_DIR/data"
    rm -rf "$data" && mkdir -p "$data/tmp"
    # Host mode: no Docker inside, no DNS server (port 53), no certificate download, no analytics.
    env OVERRIDE_IN_DOCKER=0 GATEWAY_LISTEN="127.0.0.1:$PORT" DISABLE_EVENTS=1 SKIP_SSL_CERT_DOWNLOAD=1 \
      DNS_ADDRESS=0 SERVICES="$HOST_SERVICES" EAGER_SERVICE_LOADING=0 \
      FILESYSTEM_ROOT="$data" LOCALSTACK_VOLUME_DIR="$data" TMPDIR="$data/tmp" \
      nohup "$VENV/bin/python" -m localstack.runtime.main >"$LOG_FILE" 2>&1 &
    echo $! >"$PID_FILE"
    echo "host" >"$STATE_DIR/mode"
  fi
  local started=$SECONDS
  wait_healthy
  echo "LocalStack $VERSION ($(cat "$STATE_DIR/mode") mode) healthy on 127.0.0.1:$PORT after $((SECONDS - started))s"
}

stop() {
  local mode
  mode="$(cat "$STATE_DIR/mode" 2>/dev/null || echo host)"
  if [ "$mode" = "docker" ]; then
    docker rm -f "$CONTAINER" >/dev/null 2>&1 || true
  elif [ -f "$PID_FILE" ]; then
    local pid
    pid="$(cat "$PID_FILE")"
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"
      for _ in $(seq 1 40); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.25
      done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    fi
  fi
  rm -f "$PID_FILE" "$STATE_DIR/mode"
  echo "LocalStack stopped"
}

status() {
  if healthy; then
    curl -fsS "$HEALTH_URL"
    echo
  else
    echo "LocalStack is not running on 127.0.0.1:$PORT"
    return 1
  fi
}

mode() {
  cat "$STATE_DIR/mode" 2>/dev/null || echo none
}

case "${1:-}" in
  start) start ;;
  mode) mode ;;
  stop) stop ;;
  status) status ;;
  logs) tail -n "${2:-100}" "$LOG_FILE" ;;
  *)
    echo "usage: $0 start|stop|status|mode|logs [lines]" >&2
    exit 2
    ;;
esac
