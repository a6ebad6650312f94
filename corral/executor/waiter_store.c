/* corral/store/observed.py's exited() and oom() in C (see waiter_store.h for why).
 *
 * The same rules, in the same order: pin a byte of SQLite's SHARED range (so that closing this,
 * often the store's only connection, never deletes its -wal and -shm files); take the container's
 * OFD lock without blocking, retried with a growing sleep, and give up as soon as there is nothing
 * left to record; in one BEGIN IMMEDIATE transaction, write only if the record is live and names
 * the init seen, bump the version, add the journal row (detail as json.dumps(sort_keys=True)
 * writes it); ring the bell after the commit. Keep it in step with observed.py.
 */
#define _GNU_SOURCE
#include "waiter_store.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SHARED_FIRST (0x40000000LL + 2) /* observed._SHARED_FIRST */
#define BUSY_TIMEOUT_MS 30000           /* observed.BUSY_TIMEOUT_S */
#define MAX_BACKOFF_NS (50 * 1000 * 1000L) /* observed.MAX_BACKOFF */
#define NO_REASON "not observed (no reason was given)"
/* json.loads(detail or "{}") */
#define DETAIL "COALESCE(NULLIF(detail, ''), '{}')"
#define LIVE "state IN ('created', 'running', 'paused')"

static int ofd_lock(int fd, int type, long long start, int wait) {
    struct flock lock = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = 1, .l_pid = 0};
    return fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &lock);
}

static void timestamp(const struct store *s, char *buf, size_t size) {
    if (s->now != NULL) {
        snprintf(buf, size, "%s", s->now);
        return;
    }
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(buf + n, size - n, ".%06ld", ts.tv_nsec / 1000);
}

static int run(sqlite3 *db, const char *sql) {
    return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

/* One integer from a one-row query with `key` bound to ?1: 1 if a row, 0 if none, -1 on error. */
static int query_int(sqlite3 *db, const char *sql, long long key, long long *out) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return -1;
    sqlite3_bind_int64(st, 1, key);
    int rc = sqlite3_step(st), found = 0;
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        found = 1;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? found : -1;
}

/* observed._pointless, and the live check of observed._record: 1 if nothing is left to record. */
static int pointless(sqlite3 *db, const struct store *s, int destroy_too) {
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT " LIVE " AND init_pid IS %d%s FROM containers WHERE key = ?1", (int)s->init_pid,
             destroy_too ? " AND pending_event IS NOT 'destroy'" : "");
    long long live = 0;
    int found = query_int(db, sql, s->key, &live);
    return found < 0 ? -1 : !(found && live);
}

/* Hold the container's lock: its fd, -2 once there is nothing left to record, -1 on error. */
static int container_lock(sqlite3 *db, const struct store *s) {
    int fd = open(s->lock_file, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return -1;
    long delay = 1000 * 1000L;
    while (ofd_lock(fd, F_WRLCK, s->lock_slot, 0) < 0) {
        if (errno != EAGAIN && errno != EACCES && errno != EINTR) {
            close(fd);
            return -1;
        }
        int done = pointless(db, s, 1);
        if (done != 0) {
            close(fd);
            return done < 0 ? -1 : -2;
        }
        struct timespec pause = {0, delay};
        nanosleep(&pause, NULL);
        delay = delay * 2 > MAX_BACKOFF_NS ? MAX_BACKOFF_NS : delay * 2;
    }
    return fd;
}

/* observed._record: one transition on the live record; `skip_sql` (count bound to ?2) says "already written". */
static int record(sqlite3 *db, const struct store *s, const char *event, const char *detail, int exited,
                  const int *exit_status, const int *exit_signal, int oom_killed, const char *skip_sql,
                  long count) {
    if (run(db, "BEGIN IMMEDIATE") < 0) return -1;
    int result = -1;
    sqlite3_stmt *st = NULL;
    long long version = 0;
    char state[16] = "", now[64];
    if (sqlite3_prepare_v2(db, "SELECT state, version FROM containers WHERE key = ?1", -1, &st, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_int64(st, 1, s->key);
    if (sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char *text = sqlite3_column_text(st, 0); /* NULL: not live, refused below */
        snprintf(state, sizeof state, "%s", text != NULL ? (const char *)text : "");
        version = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    st = NULL;
    int gone = pointless(db, s, 0);
    if (gone != 0) {
        result = gone < 0 ? -1 : 0;
        goto out;
    }
    if (skip_sql != NULL) {
        long long seen = 0;
        if (sqlite3_prepare_v2(db, skip_sql, -1, &st, NULL) != SQLITE_OK) goto out;
        sqlite3_bind_int64(st, 1, s->key);
        sqlite3_bind_int64(st, 2, count);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) seen = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        st = NULL;
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) goto out;
        if (seen) {
            result = 0;
            goto out;
        }
    }
    const char *to_state = exited ? "stopped" : state;
    timestamp(s, now, sizeof now);
    const char *update = exited
        ? "UPDATE containers SET exit_status = ?5, exit_signal = ?6, oom_killed = ?7, state = ?1, pending_event = NULL,"
          " pending_since = NULL, updated_at = ?2, version = ?3, live_id = id WHERE key = ?4 AND version = ?3 - 1"
        : "UPDATE containers SET state = ?1, pending_event = NULL, pending_since = NULL, updated_at = ?2,"
          " version = ?3, live_id = id WHERE key = ?4 AND version = ?3 - 1";
    if (sqlite3_prepare_v2(db, update, -1, &st, NULL) != SQLITE_OK) goto out;
    sqlite3_bind_text(st, 1, to_state, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, now, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, version + 1);
    sqlite3_bind_int64(st, 4, s->key);
    if (exited) {
        if (exit_status) sqlite3_bind_int(st, 5, *exit_status); else sqlite3_bind_null(st, 5);
        if (exit_signal) sqlite3_bind_int(st, 6, *exit_signal); else sqlite3_bind_null(st, 6);
        sqlite3_bind_int(st, 7, oom_killed);
    }
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    st = NULL;
    if (rc != SQLITE_DONE) goto out;
    if (sqlite3_changes(db) != 1) { /* cannot happen under BEGIN IMMEDIATE; never write past it */
        result = 0;
        goto out;
    }
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO journal (container_key, event, from_state, to_state, at, detail)"
                           " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                           -1, &st, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_int64(st, 1, s->key);
    sqlite3_bind_text(st, 2, event, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, state, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, to_state, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 5, now, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 6, detail, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    st = NULL;
    if (rc != SQLITE_DONE || run(db, "COMMIT") < 0) goto out;
    return 1;
out:
    if (st != NULL) sqlite3_finalize(st);
    if (!sqlite3_get_autocommit(db)) run(db, "ROLLBACK");
    return result;
}

/* observed.ring: the bell's byte, after the commit; a bell that cannot be rung is left unrung. */
static void ring(const char *root) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s/corral.events", root) >= (int)sizeof path) return;
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return;
    (void)!pwrite(fd, "\n", 1, 0);
    close(fd);
}

enum kind { EXITED, OOM };

struct request {
    enum kind kind;
    int has_status, status, sig, oom_killed;
    const char *reason;
    long count;
};

/* observed._connected + _container_lock around the write: the pin, the connection, the lock. */
static int with_store(const struct store *s, const struct request *r) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s/corral.db", s->root) >= (int)sizeof path) return -1;
    int pin = open(path, O_RDONLY | O_CLOEXEC);
    if (pin < 0) return -1;
    int result = -1;
    sqlite3 *db = NULL;
    if (ofd_lock(pin, F_RDLCK, SHARED_FIRST, 1) < 0) goto out;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) goto out; /* never creates */
    sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
    if (run(db, "PRAGMA foreign_keys = ON") < 0 || run(db, "PRAGMA synchronous = NORMAL") < 0) goto out;
    int lock = container_lock(db, s);
    if (lock < 0) {
        result = lock == -2 ? 0 : -1;
        goto out;
    }
    char detail[1024];
    if (r->kind == OOM) {
        snprintf(detail, sizeof detail, "{\"oom_kills\": %ld}", r->count);
        result = record(db, s, "oom", detail, 0, NULL, NULL, 0,
                        "SELECT COALESCE((SELECT CAST(COALESCE(json_extract(" DETAIL ", '$.oom_kills'), 0)"
                        " AS INTEGER) FROM journal WHERE container_key = ?1 AND event = 'oom' ORDER BY seq DESC"
                        " LIMIT 1), -1) >= ?2",
                        r->count);
    } else {
        int oom_killed = r->has_status && r->oom_killed, sig = r->has_status ? r->sig : 0;
        if (oom_killed) { /* observed._sigkilled_by_corral: a SIGKILL journalled by corral is no OOM kill */
            long long by_us = 0;
            int found = query_int(db,
                                  "SELECT EXISTS (SELECT 1 FROM journal WHERE container_key = ?1 AND event = 'signal'"
                                  " AND CASE WHEN json_valid(" DETAIL ") THEN json_type(" DETAIL ") = 'object'"
                                  " AND json_extract(" DETAIL ", '$.signal') = 9 ELSE 0 END)",
                                  s->key, &by_us);
            if (found < 0) goto unlock;
            if (by_us) oom_killed = 0;
        }
        char status[16] = "null", signal[16] = "null";
        if (r->has_status) snprintf(status, sizeof status, "%d", r->status);
        if (sig > 0) snprintf(signal, sizeof signal, "%d", sig);
        const char *oom = oom_killed ? "true" : "false";
        int n;
        if (r->has_status) {
            n = snprintf(detail, sizeof detail, "{\"exit_status\": %s, \"oom_killed\": %s, \"signal\": %s}", status,
                         oom, signal);
        } else {
            const char *reason = r->reason != NULL && r->reason[0] ? r->reason : NO_REASON;
            for (const char *c = reason; *c; c++) /* json.dumps escapes these: leave them to observed.py */
                if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f || *c == '"' || *c == '\\') goto unlock;
            n = snprintf(detail, sizeof detail,
                         "{\"exit\": \"unknown\", \"exit_status\": null, \"exit_unknown_reason\": \"%s\","
                         " \"oom_killed\": false, \"signal\": null}",
                         reason);
        }
        if (n < 0 || n >= (int)sizeof detail) goto unlock;
        int code = r->status;
        result = record(db, s, "exited", detail, 1, r->has_status ? &code : NULL, sig > 0 ? &sig : NULL, oom_killed,
                        NULL, 0);
    }
unlock:
    close(lock); /* closing the description releases the OFD lock */
out:
    if (db != NULL) sqlite3_close(db);
    close(pin);
    if (result == 1) ring(s->root);
    return result;
}

int store_exited(const struct store *s, int has_status, int status, int sig, int oom_killed, const char *reason) {
    struct request r = {.kind = EXITED, .has_status = has_status, .status = status, .sig = sig,
                        .oom_killed = oom_killed, .reason = reason};
    return with_store(s, &r);
}

int store_oom(const struct store *s, long count) {
    struct request r = {.kind = OOM, .count = count};
    return with_store(s, &r);
}
