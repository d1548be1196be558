#!/usr/bin/env bash
# TLS audit of loch's default policy with Debian's testssl.sh (issue 13: "testssl.sh finds no weak
# protocol or cipher on the default policy"; it belongs in bench/, not in every CI run). Runs
# `pnpm start` as a user does (the demo: config/default.toml, its HTTPS listener on
# 127.0.0.1:8443 with the self-signed ECDSA P-256 certificate made at start; Loch's default TLS
# policy, nothing set in the tls table but the certificate), runs testssl against that listener
# with the flags of the first, manual audit (protocols, cipher categories, server defaults,
# vulnerabilities), stops loch (SIGINT to its process group, as Ctrl-C), and writes
# bench/results/tls-audit.md: the findings (weak protocols, weak cipher categories,
# vulnerabilities), the lines that changed since the previous audit in that file (certificate
# serial, fingerprints, validity and dates left out: they change with every certificate), and
# testssl's whole output.
#
# Usage: bench/https/testssl.sh [output=bench/results/tls-audit.md]
# Env: LOCH_DRIVER (the runtime driver; default: loch's choice). Needs testssl (Debian
# testssl.sh, which scripts/setup installs), openssl, curl, pnpm; ports 8080, 8443 and 18081 free
# (the default config's). Exits 1 when a weak protocol, a weak cipher category or a vulnerability
# is reported.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$root/bench/results/tls-audit.md}
work=$(mktemp -d /tmp/loch-testssl-XXXXXX)
target=127.0.0.1:8443
flags=(--quiet --color 0 -p -s -S -U --fast)

for port in 8080 8443 18081; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is in use (a pnpm start running?): the default config needs it" >&2
    exit 2
  fi
done

cd "$root"
setsid pnpm start >"$work/loch.out" 2>"$work/loch.err" &
loch=$!
stop() {
  if kill -0 "$loch" 2>/dev/null; then
    kill -INT -- "-$loch" 2>/dev/null || true
    for _ in $(seq 1 150); do
      kill -0 "$loch" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL -- "-$loch" 2>/dev/null || true
  fi
}
trap stop EXIT

for _ in $(seq 1 450); do
  grep -q 'info started' "$work/loch.err" && break
  kill -0 "$loch" 2>/dev/null || { cat "$work/loch.err" >&2; exit 1; }
  sleep 0.2
done
grep -q 'info started' "$work/loch.err" || { cat "$work/loch.err" >&2; exit 1; }
curl -sSk --max-time 10 "https://$target/" >/dev/null
started=$(grep -o 'started [0-9]* worker(s), driver [a-z]*' "$work/loch.err" | head -1)

testssl "${flags[@]}" "$target" >"$work/testssl.txt" 2>"$work/testssl.err" || true
stop
trap - EXIT
grep -q 'Testing protocols' "$work/testssl.txt" || { cat "$work/testssl.txt" "$work/testssl.err" >&2; exit 1; }
# testssl's note about the local openssl binary (no GOST engine) is about this machine, not loch.
grep -v 'No engine or GOST support' "$work/testssl.txt" | cat -s >"$work/report.txt"

# Findings, from testssl's lines.
report=$work/report.txt
weak_protocols=$(grep -E '^ (SSLv2|SSLv3|TLS 1 |TLS 1\.1) ' "$report" | grep -v 'not offered' || true)
weak_ciphers=$(grep -E '^ (NULL ciphers|Anonymous NULL|Export ciphers|LOW: 64 Bit|Triple DES|Obsolete CBC)' "$report" |
  grep -v 'not offered' || true)
vulnerable=$(grep -E 'VULNERABLE|NOT ok' "$report" | grep -vE 'OCSP|CRL|Chain of trust' || true)
protocols=$(grep -E '^ TLS 1\.[23] ' "$report" | grep 'offered (OK)' | sed -E 's/^ (TLS 1\.[23]).*/\1/' | paste -sd, - |
  sed 's/,/ and /')
aead=$(grep -E '^ Strong encryption \(AEAD ciphers\)' "$report" | grep -c 'offered (OK)' || true)
if [ -z "$weak_protocols" ] && [ -z "$weak_ciphers" ] && [ -z "$vulnerable" ]; then
  verdict="no weak protocol or cipher is offered (${protocols:-?} only$([ "$aead" = 1 ] && echo ', AEAD ciphers only')), no vulnerability found"
  status=0
else
  verdict="**findings**: weak protocols: ${weak_protocols:-none}; weak ciphers: ${weak_ciphers:-none}; vulnerabilities: ${vulnerable:-none}"
  status=1
fi

# What changed since the previous audit (volatile certificate lines left out).
volatile='Serial|Fingerprints|^ +SHA256 [0-9A-F]{64}|Certificate Validity|Done [0-9]{4}-|Start [0-9]{4}-'
previous_date=
if [ -f "$out" ]; then
  sed -n '/^```text$/,/^```$/p' "$out" | sed '1d;$d' | grep -vE "$volatile" >"$work/previous.txt" || true
  previous_date=$(grep -oE '^Result \([0-9-]+' "$out" | head -1 | sed 's/Result (//')
fi
grep -vE "$volatile" "$report" >"$work/current.txt" || true
changes=$(diff -u -B "$work/previous.txt" "$work/current.txt" 2>/dev/null | tail -n +3 | grep -E '^[-+]' || true)

today=$(date -u +%F)
commit=$(git -C "$root" rev-parse --short HEAD)
version=$(testssl --version 2>/dev/null | grep -oE 'testssl +[0-9.]+' | head -1 | awk '{print $2}')
{
  echo "# TLS audit of loch's default policy (testssl.sh)"
  echo
  echo "The HTTPS listener of \`pnpm start\` (config/default.toml, the self-signed ECDSA P-256"
  echo "certificate the demo makes; TLS policy: Loch's defaults) audited with Debian's testssl.sh ${version:-3},"
  echo "which scripts/setup installs, by \`bench/https/testssl.sh\` (it starts \`pnpm start\`, runs:"
  echo
  echo '```sh'
  echo "testssl ${flags[*]} $target"
  echo '```'
  echo
  echo "and stops loch; loch: ${started:-?}; code at $commit)."
  echo
  echo "Result ($today): $verdict. OCSP stapling and certificate checks (self-signed, no chain of" \
    "trust) are not part of the policy audit." | fmt -w 96
  echo
  if [ -n "$previous_date" ]; then
    echo "Compared with the previous audit ($previous_date; certificate serial, fingerprints and" \
      "dates left out, they change with every certificate):" | fmt -w 96
    echo
    if [ -z "$changes" ]; then
      echo "no line changed."
    else
      echo '```diff'
      echo "$changes"
      echo '```'
    fi
    echo
  fi
  echo "Full output:"
  echo
  echo '```text'
  cat "$report"
  echo '```'
} >"$out.tmp"
mv "$out.tmp" "$out"
rm -rf "$work"
echo "$verdict"
echo "wrote $out"
exit $status
