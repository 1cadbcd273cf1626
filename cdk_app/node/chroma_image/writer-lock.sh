#!/bin/sh
# The node's entrypoint: take the writer lock on the node's data directory, then become Chroma, still holding it.
#
# Two Chroma processes on one directory lose data, and ECS can start a replacement task while the old one is still
# stopping. So Chroma starts only once this process holds an exclusive lock on a file in the directory. flock(1) on
# an NFS mount (EFS) is a whole-file POSIX byte-range lock, which EFS enforces across clients; on a local disk it
# behaves the same between processes. The lock lives on file descriptor 9, which `exec` hands to Chroma (the shell
# does not mark it close-on-exec): it is released when Chroma exits, however it exits (SIGTERM, kill -9, OOM).
#
# A second task waits, says why every few seconds, and gives up after WRITER_LOCK_WAIT_SECONDS with exit code
# 75 instead of starting Chroma (the ECS deployment circuit breaker then rolls back). POSIX sh and util-linux flock
# only: the official Chroma image has neither Python nor bash guaranteed. Its settings are WRITER_LOCK_* (not
# CHROMA_*, which Chroma reads as its own configuration).
set -eu

data="${CHROMA_PERSIST_PATH:-/data}"
lock="${WRITER_LOCK_FILE:-$data/.chroma-writer.lock}"
wait_seconds="${WRITER_LOCK_WAIT_SECONDS:-90}"
report_every="${WRITER_LOCK_REPORT_SECONDS:-5}"
chroma="${WRITER_LOCK_CHROMA:-chroma}"

say() {  # one JSON line on stderr (the container log); values here are numbers and fixed words only
    printf '{"logger": "writer-lock", "event": "%s", "lock_file": "%s", "waited_seconds": %s, "message": "%s"}\n' \
        "$1" "$lock" "$2" "$3" >&2
}

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
say writer_lock_acquired "$waited" "this node is the only writer of its directory; starting Chroma"
exec "$chroma" "$@"
