#!/usr/bin/env bash
# gate.sh RESULTS A B: exits 1 unless runtime A does at least what runtime
# B does in a run of test/validation/run.sh (its results.tsv: name, program,
# status, ok, not-ok, skip, rc, secs, retries; tab-separated). A fails the
# gate when, on any program:
#   - B fully passes it and A does not;
#   - A passes fewer assertions than B (a run of A that made no assertions
#     at all, NONE or TIME, counts as 0; a program where B made none is not
#     compared, as runc does at random for process_rlimits under its 1 GiB
#     RLIMIT_AS);
# or when A has more failed assertions than B over the programs both ran.
# (Before, only the last two rules' failed counts were compared: a native
# that refused every spec with memory.swappiness passed 49 fewer assertions
# than runc and still got "superset of runc: ok". See test/MUTATIONS.md.)
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 RESULTS.tsv A B" >&2; exit 2; }
results=$1 A=$2 B=$3
[ -f "$results" ] || { echo "gate: no results file $results" >&2; exit 2; }
awk -F'\t' -v A="$A" -v B="$B" '
$1 == A { sa[$2] = $3; oka[$2] = $4; na[$2] = $5; progs[$2] = 1 }
$1 == B { sb[$2] = $3; okb[$2] = $4; nb[$2] = $5; progs[$2] = 1 }
END {
	rc = 0
	n = 0
	for (p in progs) list[++n] = p
	# sort the program names (awk has no sort of its own everywhere)
	for (i = 2; i <= n; i++) { v = list[i]; for (j = i - 1; j > 0 && list[j] > v; j--) list[j+1] = list[j]; list[j+1] = v }
	for (i = 1; i <= n; i++) {
		p = list[i]
		if (!(p in sa) || !(p in sb)) { printf "REQUIRE_SUPERSET: %s was not run for both %s and %s\n", p, A, B; rc = 1; continue }
		if (sb[p] == "PASS" && sa[p] != "PASS") { missing = missing " " p }
		if (sb[p] == "NONE" || sb[p] == "TIME") {
			if (sa[p] != sb[p]) skipped = skipped " " p "(" sa[p] "/" sb[p] ")"
			continue
		}
		if (oka[p] + 0 < okb[p] + 0) { fewer = fewer sprintf(" %s(%d<%d)", p, oka[p], okb[p]) }
		if (sa[p] != "NONE" && sa[p] != "TIME") { fa += na[p]; fb += nb[p] }
	}
	if (missing != "") { printf "REQUIRE_SUPERSET: %s does not fully pass what %s passes:%s\n", A, B, missing; rc = 1 }
	if (fewer != "") { printf "REQUIRE_SUPERSET: %s passes fewer assertions than %s on:%s\n", A, B, fewer; rc = 1 }
	if (skipped != "") printf "REQUIRE_SUPERSET: not compared, %s made no assertions there:%s\n", B, skipped
	if (fa > fb) { printf "REQUIRE_SUPERSET: %s has more failed assertions (%d) than %s (%d) on the programs both ran\n", A, fa, B, fb; rc = 1 }
	if (rc == 0) printf "REQUIRE_SUPERSET: %s is a superset of %s: ok (no program with fewer passes, %d failed assertions against %d)\n", A, B, fa, fb
	exit rc
}' "$results"
