#!/usr/bin/env bash
# ci/sluice-ci.sh - propose -> gate -> approve (where policy asks) -> promote one
# update from a CI job. The GitHub Actions workflow and the GitLab CI template in
# this folder call it; any other CI can too (it needs bash, jq and sluice).
#
#   sluice-ci.sh --repo DIR --channel C --lora DIR [options]
#
# Options:
#   --repo DIR          the sluice repository (default $SLUICE_REPO)
#   --remote URL        instead of --repo: clone the repository from URL (a path, file://,
#                       git://) into a fresh directory, as an ephemeral runner does, and
#                       push the result back; with --chunks URL (its chunk store) and
#                       --root FINGERPRINT (refuse a remote pinning other root keys)
#   --channel C         the channel to promote to (required)
#   --lora DIR          the PEFT adapter to propose (adapter_config.json + safetensors)
#   --name NAME         the adapter's name in the stack (default: the directory's name)
#   --scale S           its scale in the stack (default 1)
#   --onto REF          what to propose onto when the channel is empty (default: the channel)
#   -m, --message MSG   the update's summary (default: "CI: <adapter name>")
#   --key NAME          the CI key: proposes, gates and promotes (default: ci)
#   --proposer-key, --gate-key, --operator-key NAME   a separate key per role
#   --approver NAME     an approver key to approve with when the policy asks (repeatable)
#   --junit FILE        the gate's JUnit report (one test case per check)
#   --attempts N        times to re-gate when another job moves the channel first (default 3)
#   --sluice PATH       the sluice program (default $SLUICE or `sluice` on PATH)
#
# Keys never touch disk unprotected. Each key named above is read, in order, from:
#   $SLUICE_CI_KEY_<NAME>      the OpenSSH private key text (NAME upper-cased, other
#                              characters than A-Z 0-9 as _), e.g. SLUICE_CI_KEY_CI
#   $SLUICE_CI_KEY_FD_<NAME>   a file descriptor the CI opened on the key
#   $SLUICE_KEYS/NAME.key      an existing private keys directory (a developer's machine)
# Secrets from the first two go to a directory of mode 0700 on a memory file system
# ($XDG_RUNTIME_DIR or /dev/shm), files 0600, removed when the script exits.
#
# Exit status: 0 promoted; 1 a gate failed; 2 a gate was inconclusive (a person must
# decide: sluice approve --accept-inconclusive); 3 the policy still blocks (approvals
# missing; the message names the rule); 4 bad input; 5 the channel kept moving, or
# another error.
set -uo pipefail

die() { # die STATUS MESSAGE
	echo "sluice-ci: $2" >&2
	exit "$1"
}

repo=${SLUICE_REPO:-} remote= chunks= root= channel= lora= name= scale= onto= message= key=ci
proposer= gater= operator= approvers=() junit= attempts=3 sluice=${SLUICE:-sluice}
while [ $# -gt 0 ]; do
	case $1 in
	--repo) repo=$2 ;;
	--remote) remote=$2 ;;
	--chunks) chunks=$2 ;;
	--root) root=$2 ;;
	--channel) channel=$2 ;;
	--lora) lora=$2 ;;
	--name) name=$2 ;;
	--scale) scale=$2 ;;
	--onto) onto=$2 ;;
	-m | --message) message=$2 ;;
	--key) key=$2 ;;
	--proposer-key) proposer=$2 ;;
	--gate-key) gater=$2 ;;
	--operator-key) operator=$2 ;;
	--approver) approvers+=("$2") ;;
	--junit) junit=$2 ;;
	--attempts) attempts=$2 ;;
	--sluice) sluice=$2 ;;
	-h | --help)
		sed -n '2,/^set -uo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
		exit 0
		;;
	*) die 4 "unknown argument '$1' (see --help)" ;;
	esac
	[ $# -ge 2 ] || die 4 "$1 needs a value"
	shift 2
done
[ -n "$repo" ] || [ -n "$remote" ] || die 4 "no repository: --repo DIR, --remote URL or \$SLUICE_REPO"
[ -n "$channel" ] || die 4 "no channel: --channel C"
[ -n "$lora" ] || die 4 "no update: --lora DIR"
[ -f "$lora/adapter_config.json" ] || die 4 "$lora/adapter_config.json: no such file (--lora wants a PEFT adapter directory)"
case $attempts in '' | *[!0-9]* | 0) die 4 "--attempts wants a positive integer, not '$attempts'" ;; esac
command -v jq >/dev/null || die 5 "jq is needed to read sluice's --json output (apt-get install jq)"
command -v "$sluice" >/dev/null || die 5 "cannot run '$sluice' (--sluice PATH or \$SLUICE)"
: "${proposer:=$key}" "${gater:=$key}" "${operator:=$key}" "${name:=$(basename "$lora")}"
: "${message:=CI: $name}"

# ---- keys --------------------------------------------------------------------
keydir= workdir=
cleanup() {
	[ -n "$keydir" ] && rm -rf "$keydir"
	[ -n "$workdir" ] && rm -rf "$workdir"
	return 0
}
trap cleanup EXIT
trap 'exit 5' INT TERM

# Copy every key given through the environment into a private directory in memory.
setup_keys() {
	local k var fdvar text base
	for k in "$@"; do
		[ -n "$keydir" ] && [ -e "$keydir/$k.key" ] && continue # a name given twice
		var=SLUICE_CI_KEY_$(printf '%s' "$k" | tr 'a-z' 'A-Z' | tr -c 'A-Z0-9' '_')
		fdvar=SLUICE_CI_KEY_FD_${var#SLUICE_CI_KEY_}
		text=
		if [ -n "${!var:-}" ]; then
			text=${!var}
		elif [ -n "${!fdvar:-}" ]; then
			case ${!fdvar} in *[!0-9]*) die 4 "$fdvar is not a file descriptor number" ;; esac
			text=$(cat <&"${!fdvar}") || die 4 "cannot read the key from fd ${!fdvar} ($fdvar)"
		else
			continue
		fi
		if [ -z "$keydir" ]; then
			base=${XDG_RUNTIME_DIR:-/dev/shm}
			[ -d "$base" ] && [ -w "$base" ] || die 5 "no memory file system for keys ($base); set XDG_RUNTIME_DIR"
			keydir=$(umask 077 && mktemp -d "$base/sluice-ci-keys.XXXXXX") || die 5 "cannot create a private keys directory in $base"
			# Keys already in $SLUICE_KEYS stay usable beside the ones from secrets.
			if [ -n "${SLUICE_KEYS:-}" ] && [ -d "$SLUICE_KEYS" ]; then
				for f in "$SLUICE_KEYS"/*.key; do
					[ -e "$f" ] && (umask 077 && cp "$f" "$keydir/")
				done
			fi
		fi
		(umask 077 && printf '%s\n' "$text" >"$keydir/$k.key") || die 5 "cannot write key $k"
	done
	[ -n "$keydir" ] && export SLUICE_KEYS=$keydir
	return 0
}
setup_keys "$proposer" "$gater" "$operator" "${approvers[@]}"

S() { "$sluice" -C "$repo" "$@"; }

# The channel's head, or nothing when it is empty.
head_of() {
	S status --json | jq -r --arg c "$1" '.channels[] | select(.name == $c) | .head'
}

# ---- propose -> gate -> approve -> promote, again if the channel moved --------
# With --remote, a fresh clone per attempt: what an ephemeral runner starts from.
fresh_clone() {
	local args
	[ -n "$workdir" ] || workdir=$(mktemp -d "${TMPDIR:-/tmp}/sluice-ci-repo.XXXXXX") || die 5 "cannot create a work directory"
	rm -rf "$workdir/repo"
	args=(clone "$remote" "$workdir/repo")
	[ -n "$chunks" ] && args+=(--chunks "$chunks")
	[ -n "$root" ] && args+=(--root "$root")
	"$sluice" "${args[@]}" >/dev/null || die 5 "cannot clone $remote (above)"
	repo=$workdir/repo
}

attempt=0
while :; do
	attempt=$((attempt + 1))
	[ -n "$remote" ] && fresh_clone
	head=$(head_of "$channel") || die 5 "cannot read the state of $repo"
	base=${head:-$onto}
	[ -n "$base" ] || die 4 "channel $channel is empty: say what to propose onto with --onto REF"
	echo "sluice-ci: attempt $attempt: proposing $name onto $base"
	args=(propose lora "$lora" --onto "$base" --name "$name" --key "$proposer" -m "$message")
	[ -n "$scale" ] && args+=(--scale "$scale")
	cand=$(S "${args[@]}" | tail -n1)
	[ -n "$cand" ] || die 4 "the proposal was refused (above)"

	gargs=(gate "$cand" --channel "$channel" --key "$gater")
	[ -n "$junit" ] && gargs+=(--junit "$junit")
	S "${gargs[@]}"
	rc=$?
	case $rc in
	0) ;;
	1) die 1 "the gates failed $cand for $channel; it is not promoted" ;;
	2) die 2 "a gate was inconclusive for $cand on $channel; a person must decide (sluice approve $cand --channel $channel --accept-inconclusive GATE)" ;;
	*) die 5 "sluice gate stopped with status $rc" ;;
	esac

	if ! S policy check "$cand" --channel "$channel" --json >/dev/null; then
		for a in "${approvers[@]}"; do
			S approve "$cand" --channel "$channel" --key "$a" || echo "sluice-ci: approval by $a refused (above)" >&2
		done
		if ! blocked=$(S policy check "$cand" --channel "$channel" --json); then
			die 3 "the policy blocks $cand on $channel: $(printf '%s' "$blocked" | jq -r '[.checks[] | select(.ok | not) | "\(.rule): \(.detail)"] | join("; ")')"
		fi
	fi

	if S promote "$cand" --channel "$channel" --key "$operator"; then
		if [ -z "$remote" ]; then
			echo "sluice-ci: promoted $cand to $channel"
			exit 0
		fi
		# The promotion exists only in this clone until the remote takes it. A remote
		# that moved meanwhile refuses the push (its journal is no longer an ancestor):
		# start again from a fresh clone, so the update is gated against the new head.
		if perr=$(S push origin 2>&1 >/dev/null); then
			echo "sluice-ci: promoted $cand to $channel and pushed to $remote"
			exit 0
		fi
		printf '%s\n' "$perr" >&2
		case $perr in
		*diverged* | *"is ahead"* | *"moved while"*) ;;
		*) die 5 "the push to $remote failed (above); $channel there is unchanged" ;;
		esac
		[ "$attempt" -lt "$attempts" ] || die 5 "$remote moved $attempt times while this job gated; giving up: run the job again"
		echo "sluice-ci: $remote moved while this job gated; starting again from a fresh clone" >&2
		continue
	fi
	now=$(head_of "$channel")
	[ "$now" != "$head" ] || die 5 "promotion of $cand to $channel was refused (above)"
	# Another job moved the channel while this one gated: the verdict was against the
	# old head, so it does not count. Propose onto the new head and gate again.
	[ "$attempt" -lt "$attempts" ] || die 5 "$channel moved $attempt times while this job gated (now $now); giving up: run the job again"
	echo "sluice-ci: $channel moved from ${head:-(empty)} to $now while gating; gating again against the new head" >&2
done
