#!/usr/bin/env bash
# gate_test.sh: the REQUIRE_SUPERSET gate (gate.sh) on made-up results,
# among them the mutation it once missed (make validation runs this first).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
fails=0
# check NAME WANT_RC ROWS...: each row "runtime program status ok notok"
check() {
	local name=$1 want=$2 out rc=0
	shift 2
	: >"$t/r.tsv"
	for row in "$@"; do
		read -r rt prog st ok notok <<<"$row"
		printf '%s\t%s\t%s\t%s\t%s\t0\t0\t1\t0\n' "$rt" "$prog" "$st" "$ok" "$notok" >>"$t/r.tsv"
	done
	out=$("$here/gate.sh" "$t/r.tsv" proxcage runc 2>&1) || rc=$?
	if [ "$rc" = "$want" ]; then
		echo "ok - $name"
	else
		echo "not ok - $name: exit $rc, want $want"$'\n'"$out" | sed '2,$s/^/#   /'
		fails=$((fails + 1))
	fi
}
check "same results pass" 0 \
	"proxcage default PASS 307 0" "runc default PASS 307 0" \
	"proxcage delete FAIL 3 2" "runc delete FAIL 3 2"
# The mutation the old gate missed: native refuses specs with
# memory.swappiness; no program runc fully passes changes, no more
# assertions fail in total, but 49 fewer pass.
check "fewer passed assertions on programs runc fails too" 1 \
	"proxcage linux_cgroups_memory FAIL 0 6" "runc linux_cgroups_memory FAIL 42 12" \
	"proxcage linux_cgroups_relative_memory FAIL 0 1" "runc linux_cgroups_relative_memory FAIL 7 2"
check "a program runc passes, proxcage does not" 1 \
	"proxcage create FAIL 3 1" "runc create PASS 4 0"
check "more failed assertions in total" 1 \
	"proxcage a FAIL 10 3" "runc a FAIL 10 2"
check "runc without assertions (its random RLIMIT_AS failure) is not compared" 0 \
	"proxcage process_rlimits FAIL 5 1" "runc process_rlimits NONE 0 0"
check "proxcage without assertions where runc has some" 1 \
	"proxcage hooks NONE 0 0" "runc hooks FAIL 4 1"
check "a program run for one runtime only" 1 \
	"proxcage a PASS 1 0"
if [ "$fails" -gt 0 ]; then
	echo "gate_test: $fails failed"
	exit 1
fi
echo "gate_test: all passed"
