#!/bin/sh
# keepalived notify script for a primary-backup conntrackd setup: the logic of primary-backup.sh shipped
# in conntrackd's documentation (doc/sync/primary-backup.sh, (C) 2006-2011 Pablo Neira Ayuso, GPL-2.0+),
# with the conntrackd configuration and lock file given as arguments (one conntrackd per namespace, each
# with its own UNIX socket and lock file) and messages written to a log file beside the configuration
# instead of syslog.
#
# Usage: primary-backup.sh primary|backup|fault CONNTRACKD_CONFIG CONNTRACKD_LOCK

CONNTRACKD_BIN=${CONNTRACKD_BIN:-/usr/sbin/conntrackd}
CONNTRACKD_CONFIG=$2
CONNTRACKD_LOCK=$3
LOG=${CONNTRACKD_CONFIG%.conf}.notify.log

log() {
    echo "$(date +%s.%N) $*" >> "$LOG"
}

if [ -z "$CONNTRACKD_CONFIG" ] || [ -z "$CONNTRACKD_LOCK" ]; then
    echo "Usage: primary-backup.sh {primary|backup|fault} CONNTRACKD_CONFIG CONNTRACKD_LOCK" >&2
    exit 1
fi

log "transition to $1"
case "$1" in
  primary)
    # commit the external cache into the kernel table
    $CONNTRACKD_BIN -C "$CONNTRACKD_CONFIG" -c
    [ $? -eq 1 ] && log "ERROR: failed to invoke conntrackd -c"
    # flush the internal and the external caches
    $CONNTRACKD_BIN -C "$CONNTRACKD_CONFIG" -f
    [ $? -eq 1 ] && log "ERROR: failed to invoke conntrackd -f"
    # resynchronize my internal cache to the kernel table
    $CONNTRACKD_BIN -C "$CONNTRACKD_CONFIG" -R
    [ $? -eq 1 ] && log "ERROR: failed to invoke conntrackd -R"
    # send a bulk update to backups
    $CONNTRACKD_BIN -C "$CONNTRACKD_CONFIG" -B
    [ $? -eq 1 ] && log "ERROR: failed to invoke conntrackd -B"
    ;;
  backup)
    # is conntrackd running? request some statistics to check it
    $CONNTRACKD_BIN -C "$CONNTRACKD_CONFIG" -s > /dev/null
    if [ $? -eq 1 ]; then
        # something's wrong, do we have a lock file?
        if [ -f "$CONNTRACKD_LOCK" ]; then
            log "WARNING: conntrackd was not cleanly stopped."
            rm -f "$CONNTRACKD_LOCK"
        fi
        $CONNTRACKD_BIN -C "$CONNTRACKD_CONFIG" -d
        if [ $? -eq 1 ]; then
            log "ERROR: cannot launch conntrackd"
            exit 1
        fi
    fi
    # shorten kernel conntrack timers to remove the zombie entries.
    $CONNTRACKD_BIN -C "$CONNTRACKD_CONFIG" -t
    [ $? -eq 1 ] && log "ERROR: failed to invoke conntrackd -t"
    # request resynchronization with master firewall replica (if any)
    $CONNTRACKD_BIN -C "$CONNTRACKD_CONFIG" -n
    [ $? -eq 1 ] && log "ERROR: failed to invoke conntrackd -n"
    ;;
  fault)
    # shorten kernel conntrack timers to remove the zombie entries.
    $CONNTRACKD_BIN -C "$CONNTRACKD_CONFIG" -t
    [ $? -eq 1 ] && log "ERROR: failed to invoke conntrackd -t"
    ;;
  *)
    log "ERROR: unknown state transition $1"
    echo "Usage: primary-backup.sh {primary|backup|fault} CONNTRACKD_CONFIG CONNTRACKD_LOCK" >&2
    exit 1
    ;;
esac
log "transition to $1 done"
exit 0
