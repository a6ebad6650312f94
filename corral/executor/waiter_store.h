/* The C waiter's journal writer: corral/store/observed.py's exited() and oom(), through libsqlite3.
 *
 * Why in C: the rows were written by a fresh Python interpreter (recorded.py), ~50 ms after the
 * init's exit, and Container.wait() and destroy wait for the monitor to be done with them. Here
 * they cost a sqlite3 transaction. The rows must be observed.py's, column for column
 * (tests/unit/test_waiter_store.py runs both on identical stores).
 */
#ifndef CORRAL_WAITER_STORE_H
#define CORRAL_WAITER_STORE_H

#include <sys/types.h>

struct store {
    const char *root;      /* the store's directory: corral.db, corral.events (the bell) */
    long long key;         /* the container's record */
    const char *lock_file; /* statemachine/locks.py's lock file, and the container's byte in it */
    long long lock_slot;
    pid_t init_pid;        /* the init seen: nothing is written for another */
    const char *now;       /* the timestamp to write ("%Y-%m-%d %H:%M:%S.%f"), NULL: the clock's */
};

/* 1: written; 0: nothing to write (not live, another init, a destroy under way, already written);
 * -1: an error (nothing written: the caller falls back to the Python recorder). */
int store_exited(const struct store *s, int has_status, int status, int sig, int oom_killed, const char *reason);
int store_oom(const struct store *s, long count);

#endif
