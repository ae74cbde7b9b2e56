#!/usr/bin/env bash
# Fails when risk-core depends on an I/O crate or its sources read files, sockets or the clock.
set -euo pipefail
cd "$(dirname "$0")/.."
banned='^(tokio|hyper|tonic|rdkafka|postgres|tokio-postgres|sqlx|reqwest|mio|socket2|async-std|rand)$'
deps=$(cargo tree -p risk-core -e normal --all-features --prefix none --format '{p}' | awk '{print $1}' | sort -u)
bad=$(grep -E "$banned" <<<"$deps" || true)
if [ -n "$bad" ]; then
  echo "purity: risk-core depends on I/O crates: $bad" >&2
  exit 1
fi
# Source scan: no filesystem, network, process or clock access in the core.
if grep -rnE 'std::(fs|net|process)|File::|TcpStream|UdpSocket|SystemTime|Instant::now|Utc::now|Local::now|thread_rng|env::var' risk-core/src; then
  echo "purity: risk-core/src uses I/O or the clock (lines above)" >&2
  exit 1
fi
echo "purity: risk-core depends on $(wc -l <<<"$deps") crates, none of them I/O; sources clean"
