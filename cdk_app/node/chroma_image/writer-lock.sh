#!/bin/sh
# The node's entrypoint: take the writer lock on the node's data directory, have the directory checked, then become
# Chroma, still holding the lock, with a watchdog that stops Chroma if the lock is lost.
#
# Two Chroma processes on one directory lose data, and ECS can start a replacement task while the old one is still
# stopping. So Chroma starts only once this process holds an exclusive lock on a file in the directory. flock(1) on
# an NFS mount (EFS) is a whole-file POSIX byte-range lock, which EFS enforces across clients; on a local disk it
# behaves the same between processes. The lock lives on file descriptor 9, which `exec` hands to Chroma (the shell
# does not mark it close-on-exec): it is released when Chroma exits, however it exits (SIGTERM, kill -9, OOM).
#
# A second task waits, says why every few seconds, and gives up after WRITER_LOCK_WAIT_SECONDS with exit code
# 75 instead of starting Chroma (the ECS deployment circuit breaker then rolls back).
#
# Start check (NODE_START_DIR set, a task volume shared with the gateway): with the lock held and before Chroma
# starts, this script announces `writer-lock-held` there and waits up to START_CHECK_WAIT_SECONDS for the gateway's
# verdict on every collection's index (gateway/integrity.py: the official image has no Python). `start-check.passed`
# starts Chroma (collections that failed are quarantined by the gateway; the signatures of the indexes that passed
# are saved as .chroma-verified.json, so the next check reads only indexes written since); `start-check.failed`
# (the directory could not be read at all) or no verdict in time exits 78 without starting Chroma.
#
# Watchdog: every second it checks that Chroma is alive (else it exits, releasing its copy of the lock at once);
# every WRITER_LOCK_HEARTBEAT_SECONDS it writes one byte through the locked descriptor and checks that the lock file
# is still the file it locked. A failed write (Linux fails I/O on a descriptor whose NFSv4 lock was lost, for
# example after a partition longer than the lease) or a removed or replaced lock file stops Chroma: SIGTERM, then
# SIGKILL after WRITER_LOCK_STOP_SECONDS.
#
# POSIX sh, util-linux flock and coreutils only. Settings are WRITER_LOCK_* / NODE_* / START_CHECK_* (not CHROMA_*,
# which Chroma reads as its own configuration).
set -eu

data="${CHROMA_PERSIST_PATH:-/data}"
lock="${WRITER_LOCK_FILE:-$data/.chroma-writer.lock}"
wait_seconds="${WRITER_LOCK_WAIT_SECONDS:-90}"
report_every="${WRITER_LOCK_REPORT_SECONDS:-5}"
heartbeat_every="${WRITER_LOCK_HEARTBEAT_SECONDS:-10}"
stop_seconds="${WRITER_LOCK_STOP_SECONDS:-10}"
chroma="${WRITER_LOCK_CHROMA:-chroma}"
start_dir="${NODE_START_DIR:-}"
check_wait="${START_CHECK_WAIT_SECONDS:-120}"

say() {  # one JSON line on stderr (the container log); values here are numbers and fixed words only
    printf '{"logger": "writer-lock", "event": "%s", "lock_file": "%s", "waited_seconds": %s, "message": "%s"}\n' \
        "$1" "$lock" "$2" "$3" >&2
}

if [ -n "$start_dir" ]; then
    rm -f "$start_dir/writer-lock-held" "$start_dir/start-check.passed" "$start_dir/start-check.failed" \
        "$start_dir/start-check.verified.json"
fi

exec 9>>"$lock"  # append: opening never truncates or replaces the file another node holds a lock on
waited=0
until flock --exclusive --wait "$report_every" 9; do
    waited=$((waited + report_every))
    if [ "$waited" -ge "$wait_seconds" ]; then
        say writer_lock_timeout "$waited" "another Chroma process holds this directory; not starting a second writer"
        exit 75
    fi
    say writer_lock_wait "$waited" "another Chroma process holds this directory; waiting for it to stop"
done
: > "$lock"  # ours now: drop the previous holder's heartbeat bytes
held="$(stat -L -c '%d:%i' "$lock")"
say writer_lock_acquired "$waited" "this node is the only writer of its directory"

if [ -n "$start_dir" ]; then
    : > "$start_dir/writer-lock-held"
    checked=0
    until [ -e "$start_dir/start-check.passed" ] || [ -e "$start_dir/start-check.failed" ]; do
        if [ "$checked" -ge "$check_wait" ]; then
            say start_check_timeout "$checked" "no verdict from the gateway's start check; not starting Chroma"
            exit 78
        fi
        sleep 1 9>&-
        checked=$((checked + 1))
    done
    if [ -e "$start_dir/start-check.failed" ]; then
        say start_check_failed "$checked" "the start check could not read this directory (see the gateway log); not starting Chroma"
        exit 78
    fi
    if [ -e "$start_dir/start-check.verified.json" ]; then  # what passed, so the next start reads only what changes
        cp "$start_dir/start-check.verified.json" "$data/.chroma-verified.json.tmp"
        mv -f "$data/.chroma-verified.json.tmp" "$data/.chroma-verified.json"
    fi
    say start_check_passed "$checked" "the start check is done; quarantined collections, if any, are in the gateway log"
fi

watchdog() {  # $1: Chroma's pid (this shell's, after exec)
    beat=0
    while sleep 1 9>&-; do
        kill -0 "$1" 2>/dev/null || exit 0  # Chroma is gone; exiting releases this copy of the lock
        beat=$((beat + 1))
        [ "$beat" -lt "$heartbeat_every" ] && continue
        beat=0
        if ! printf . >&9 2>/dev/null; then
            reason="writing through the locked descriptor failed: the lock may be lost"
        elif [ "$(stat -L -c '%d:%i' "$lock" 2>/dev/null)" != "$held" ]; then
            reason="the lock file was removed or replaced: another node could lock a new one"
        else
            continue
        fi
        say writer_lock_lost 0 "$reason; stopping Chroma"
        kill -TERM "$1" 2>/dev/null || exit 0
        waited=0
        while kill -0 "$1" 2>/dev/null && [ "$waited" -lt "$stop_seconds" ]; do sleep 1 9>&-; waited=$((waited + 1)); done
        kill -KILL "$1" 2>/dev/null || true
        exit 0
    done
}
watchdog "$$" &
say chroma_starting 0 "starting Chroma with the writer lock held"
exec "$chroma" "$@"
