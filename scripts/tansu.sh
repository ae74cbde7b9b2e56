#!/usr/bin/env bash
# The test Kafka broker: tansu (a Kafka-protocol broker from crates.io), in memory, on a
# free loopback port. Installed once into a cache, then reused.
#
#   scripts/tansu.sh install         install tansu into $TANSU_ROOT if missing (~7 min once)
#   scripts/tansu.sh start           start it; prints the address, writes it to $TANSU_ADDR_FILE
#   scripts/tansu.sh stop            stop the broker started by `start`
#   scripts/tansu.sh addr            print the running broker's address
#   scripts/tansu.sh fastavro        make the cached fastavro virtualenv; prints its python
#
# Sourced (`. scripts/tansu.sh`), it defines the functions tansu_install, tansu_start
# (which exports RISKGATE_KAFKA_BROKERS for the tests), tansu_stop and fastavro_venv
# (which exports RISKGATE_FASTAVRO_PYTHON).
#
# Environment: TANSU_ROOT (default ~/.cache/riskgate/tansu; the binary is $TANSU_ROOT/bin/tansu),
# TANSU_VERSION (default 0.6.0), TANSU_STATE (default target/tansu: pid, address and log).

TANSU_ROOT="${TANSU_ROOT:-$HOME/.cache/riskgate/tansu}"
TANSU_VERSION="${TANSU_VERSION:-0.6.0}"
_tansu_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TANSU_STATE="${TANSU_STATE:-$_tansu_repo/target/tansu}"
TANSU_ADDR_FILE="$TANSU_STATE/addr"

tansu_install() {
    if [ -x "$TANSU_ROOT/bin/tansu" ]; then
        return 0
    fi
    echo "tansu: installing $TANSU_VERSION into $TANSU_ROOT (about 7 minutes, once)" >&2
    mkdir -p "$TANSU_ROOT"
    cargo install --locked tansu --version "$TANSU_VERSION" \
        --no-default-features --features dynostore --root "$TANSU_ROOT" >&2
}

# A free loopback TCP port, chosen by the kernel.
_tansu_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

tansu_start() {
    tansu_install || return 1
    tansu_stop
    mkdir -p "$TANSU_STATE"
    local port addr
    port="$(_tansu_free_port)"
    addr="127.0.0.1:$port"
    "$TANSU_ROOT/bin/tansu" broker \
        --listener-url "tcp://$addr" \
        --advertised-listener-url "tcp://$addr" \
        --storage-engine "memory://tansu/" \
        >"$TANSU_STATE/log" 2>&1 &
    echo $! >"$TANSU_STATE/pid"
    # Ready when the port accepts connections.
    local i
    for i in $(seq 1 100); do
        if python3 -c "import socket,sys; s=socket.socket(); s.settimeout(0.2); sys.exit(s.connect_ex(('127.0.0.1',$port)))" 2>/dev/null; then
            echo "$addr" >"$TANSU_ADDR_FILE"
            export RISKGATE_KAFKA_BROKERS="$addr"
            echo "$addr"
            return 0
        fi
        if ! kill -0 "$(cat "$TANSU_STATE/pid")" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    echo "tansu: did not start; its log:" >&2
    cat "$TANSU_STATE/log" >&2
    return 1
}

# A cached virtualenv with fastavro, the independent Avro decoder of the end-to-end test;
# exports RISKGATE_FASTAVRO_PYTHON (its python).
fastavro_venv() {
    local venv="${FASTAVRO_VENV:-$HOME/.cache/riskgate/fastavro-venv}"
    if ! "$venv/bin/python" -c 'import fastavro' 2>/dev/null; then
        python3 -m venv "$venv" >&2 && "$venv/bin/pip" install --quiet fastavro >&2 || return 1
    fi
    export RISKGATE_FASTAVRO_PYTHON="$venv/bin/python"
}

tansu_stop() {
    if [ -f "$TANSU_STATE/pid" ]; then
        kill "$(cat "$TANSU_STATE/pid")" 2>/dev/null || true
        rm -f "$TANSU_STATE/pid" "$TANSU_ADDR_FILE"
    fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    case "${1:-}" in
        install) tansu_install ;;
        start) tansu_start ;;
        stop) tansu_stop ;;
        addr) cat "$TANSU_ADDR_FILE" ;;
        fastavro) fastavro_venv && echo "$RISKGATE_FASTAVRO_PYTHON" ;;
        *) echo "usage: $0 install|start|stop|addr" >&2; exit 2 ;;
    esac
fi
