/* corral-waiter: the steady state of a container's monitor and keeper, in C.
 *
 * Why: a monitor or keeper is a fork of the Python spawn helper, and once the
 * init runs it only waits; yet its copy-on-write pages (the interpreter's heap,
 * touched by reference counts and the garbage collector) cost 1.6-3 MiB private
 * per process (benchmarks/README.md, "monitor memory"). Exec'd here once set-up
 * is done, each costs what a small C process costs (~0.1 MiB). exec keeps the
 * process's children, its subreaper flag, its PID and the exit file's flock.
 *
 *   corral-waiter monitor INIT_PID EXIT_FD EXIT_PATH OOM_FILE WAKE_FD WAKE_KIND REPORTED
 *                 [--store ROOT KEY LOCK_FILE LOCK_SLOT] [-- RECORDER...]
 *   corral-waiter keep MONITOR_PID EXIT_FD EXIT_PATH
 *   corral-waiter record ROOT KEY LOCK_FILE LOCK_SLOT INIT_PID NOW (oom COUNT | exited STATUS SIGNAL OOM_KILLED REASON)
 *
 * monitor: reap children (a subreaper) until INIT_PID is reaped; write the exit
 * file as protocol.overwrite_exit_file (EXIT_FD >= 0, the placeholder, in place,
 * padded) or protocol.write_exit_file (by path) would; then exec RECORDER with
 * "exited REPORTED COUNT STATUS SIGNAL REASON" appended (RECORDER: the file to
 * run, then its argv; corral/executor/recorded.py records the journal rows, as
 * Observer.exited does, COUNT being the kill count read now). While the init runs, each
 * growth of the OOM kill count (the `oom_kill` line of OOM_FILE, re-read when
 * WAKE_FD fires: an eventfd registered for memory.oom_control on v1, memory.events
 * polled for POLLPRI on v2, and every OOM_RECHECK_S) forks RECORDER with
 * "oom COUNT" appended, one at a time, in order.
 * With --store (the recorder is corral/store/observed.py, of that store), the
 * rows are written here, through libsqlite3 (waiter_store.c), and RECORDER
 * runs only if that failed: a Python start costs ~50 ms that Container.wait()
 * and destroy would wait for.
 * keep: wait for MONITOR_PID; if it was killed (or vanished) and an orphan
 * (the init, reparented here) was reaped, write that orphan's status.
 *
 * Nothing here may fail the container: a write that fails is left as it is (the
 * placeholder says the status is unknown), a recorder that cannot run is skipped.
 * record: one row through waiter_store.c, as a test compares it with observed.py
 * (NOW: the timestamp to write, "" for the clock; "none": no status or signal);
 * exits 0 if written, 1 if there was nothing to write, 2 on an error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "waiter_store.h"

#define EXIT_FILE_SIZE 512 /* protocol.EXIT_FILE_SIZE */
#define OOM_RECHECK_MS (600 * 1000) /* observer.OOM_RECHECK_S */
#define EAGER_MS 500 /* after a v1 notification: re-read every 10 ms for this long (cgroups/v1.py) */
#define NO_REAP_REASON "the monitor could not reap the init (it was not its child)"

static sigset_t old_mask;

/* The record as json.dumps writes it: {"status": 7, "signal": null} */
static int format_record(char *buf, size_t size, int has_status, int status, int sig, const char *reason) {
    char s[16], g[16];
    if (has_status) snprintf(s, sizeof s, "%d", status); else strcpy(s, "null");
    if (sig > 0) snprintf(g, sizeof g, "%d", sig); else strcpy(g, "null");
    if (reason != NULL) /* only our own constant reasons: plain ASCII, nothing to escape */
        return snprintf(buf, size, "{\"status\": %s, \"signal\": %s, \"reason\": \"%s\"}", s, g, reason);
    return snprintf(buf, size, "{\"status\": %s, \"signal\": %s}", s, g);
}

static void write_exit_file(int fd, const char *path, int has_status, int status, int sig, const char *reason) {
    char buf[EXIT_FILE_SIZE + 1];
    if (fd >= 0) { /* overwrite_exit_file: in place, padded with spaces, no new space needed */
        int n = format_record(buf, sizeof buf, has_status, status, sig, reason);
        if (n < 0 || n > EXIT_FILE_SIZE) return;
        memset(buf + n, ' ', EXIT_FILE_SIZE - n);
        (void)!pwrite(fd, buf, EXIT_FILE_SIZE, 0);
        return;
    }
    /* write_exit_file: the form it always had, through a temporary file and a rename */
    int n = format_record(buf, sizeof buf, has_status, status, sig, NULL);
    char tmp[4096];
    if (n < 0 || snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) return;
    int t = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (t < 0) return;
    int ok = write(t, buf, n) == n;
    close(t);
    if (ok) rename(tmp, path);
}

/* ExitStatus.from_wait_status: a signal's death is 128 + signal */
static void decode(int wstatus, int *status, int *sig) {
    if (WIFSIGNALED(wstatus)) {
        *sig = WTERMSIG(wstatus);
        *status = 128 + *sig;
    } else {
        *sig = 0;
        *status = WEXITSTATUS(wstatus);
    }
}

/* The `oom_kill` line of memory.events (v2) or memory.oom_control (v1); 0 if unreadable. */
static long oom_count(const char *path) {
    if (path == NULL || path[0] == '\0') return 0;
    char buf[4096];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = '\0';
    for (char *line = buf; line != NULL && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (strncmp(line, "oom_kill ", 9) == 0) return strtol(line + 9, NULL, 10);
    return 0;
}

/* argv for the recorder: its own words, then `extra` */
static char **recorder_argv(char **recorder, int nrec, char **extra, int nextra) {
    char **argv = calloc(nrec + nextra + 1, sizeof *argv);
    if (argv == NULL) return NULL;
    memcpy(argv, recorder, nrec * sizeof *argv);
    memcpy(argv + nrec, extra, nextra * sizeof *argv);
    return argv;
}

/* argv[0] is the file to run (the helper's sealed interpreter, /proc/self/fd/N), argv[1..] its argv */
static void exec_recorder(char **argv) {
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    execv(argv[0], argv + 1);
}

static long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static int run_monitor(int argc, char **argv) {
    if (argc < 9) return 2;
    pid_t init_pid = (pid_t)atoi(argv[2]);
    int exit_fd = atoi(argv[3]);
    const char *exit_path = argv[4];
    const char *oom_file = argv[5];
    int wake_fd = atoi(argv[6]);
    int eventfd_kind = strcmp(argv[7], "eventfd") == 0;
    long reported = atol(argv[8]);
    char **recorder = NULL;
    int nrec = 0, next = 9, have_store = 0;
    struct store store = {0};
    if (argc > next + 4 && strcmp(argv[next], "--store") == 0) {
        store = (struct store){.root = argv[next + 1], .key = atoll(argv[next + 2]), .lock_file = argv[next + 3],
                               .lock_slot = atoll(argv[next + 4]), .init_pid = init_pid};
        have_store = 1;
        next += 5;
    }
    if (argc > next + 2 && strcmp(argv[next], "--") == 0) {
        recorder = argv + next + 1;
        nrec = argc - next - 1;
    }
    if (recorder == NULL) have_store = 0; /* the store's arguments come with the recorder they stand for */
    if (recorder == NULL) wake_fd = -1; /* nobody to tell: nothing to watch */
    if (wake_fd >= 0) fcntl(wake_fd, F_SETFD, FD_CLOEXEC);

    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, &old_mask);
    int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);

    int have_init = 0, init_wstatus = 0, reap_failed = 0, exit_written = 0;
    pid_t reporter = 0; /* the OOM recorder running, if any: one at a time */
    long pending = 0; /* a count grown while a recorder ran */
    long eager_until = 0;
    while (!have_init || reporter > 0) {
        for (;;) { /* reap whatever is ready: the init, reparented orphans, the recorder */
            int ws;
            pid_t pid = waitpid(-1, &ws, have_init ? 0 : WNOHANG);
            if (pid < 0 && errno == EINTR) continue;
            if (pid < 0) {
                if (!have_init) reap_failed = have_init = 1; /* ECHILD: the init is not ours */
                reporter = 0;
                break;
            }
            if (pid == 0) break;
            if (pid == init_pid) {
                have_init = 1;
                init_wstatus = ws;
                /* The exit file as the init is reaped, also while an OOM recorder still runs: a
                 * controller may hold the container's lock while it waits for this file
                 * (teardown.exit_status, from observe_exit), and the recorder waits for that
                 * lock. Written after the recorder, it came after both gave up: "unknown". */
                int status, sig;
                decode(ws, &status, &sig);
                write_exit_file(exit_fd, exit_path, 1, status, sig, NULL);
                exit_written = 1;
            } else if (pid == reporter) {
                reporter = 0;
            }
            if (have_init && reporter == 0) break;
        }
        if (have_init && reporter == 0) break;
        if (have_init) continue; /* the recorder still runs: the blocking wait above ends it */
        if (reporter == 0 && recorder != NULL) {
            long count = oom_count(oom_file);
            if (pending > count) count = pending;
            pending = 0;
            if (count > reported) {
                reported = count;
                char number[32];
                snprintf(number, sizeof number, "%ld", count);
                char *extra[] = {"oom", number};
                char **args = recorder_argv(recorder, nrec, extra, 2);
                pid_t pid = args != NULL ? fork() : -1;
                if (pid == 0) {
                    if (exit_fd >= 0) close(exit_fd); /* the exit file's lock is the waiter's */
                    if (have_store && store_oom(&store, count) >= 0) _exit(0);
                    exec_recorder(args);
                    _exit(127);
                }
                free(args);
                if (pid > 0) reporter = pid;
                eager_until = now_ms() + EAGER_MS;
            }
        }
        struct pollfd fds[2];
        int nfds = 0;
        if (sfd >= 0) fds[nfds++] = (struct pollfd){.fd = sfd, .events = POLLIN};
        if (wake_fd >= 0) fds[nfds++] = (struct pollfd){.fd = wake_fd, .events = eventfd_kind ? POLLIN : POLLPRI};
        int timeout = now_ms() < eager_until ? 10 : (sfd >= 0 ? OOM_RECHECK_MS : 100);
        if (poll(fds, nfds, timeout) < 0 && errno != EINTR) {
            struct timespec pause = {0, 10 * 1000 * 1000};
            nanosleep(&pause, NULL);
        }
        for (int i = 0; i < nfds; i++) {
            if (!fds[i].revents) continue;
            if (fds[i].fd == sfd) {
                struct signalfd_siginfo info;
                while (read(sfd, &info, sizeof info) == sizeof info) {}
            } else if (eventfd_kind) {
                uint64_t value;
                (void)!read(wake_fd, &value, sizeof value); /* drain; the kill is counted a moment later */
                eager_until = now_ms() + EAGER_MS;
            } else {
                char buf[4096]; /* reading re-arms POLLPRI on a kernfs file */
                if (pread(wake_fd, buf, sizeof buf, 0) < 0) { /* the cgroup is gone: stop polling it */
                    close(wake_fd);
                    wake_fd = -1;
                }
            }
        }
        if (reporter > 0) { /* note a growth now, report it when the running recorder is done */
            long count = oom_count(oom_file);
            if (count > reported && count > pending) pending = count;
        }
    }
    if (wake_fd >= 0) close(wake_fd);
    int status = 0, sig = 0;
    if (!reap_failed) decode(init_wstatus, &status, &sig);
    const char *reason = reap_failed ? NO_REAP_REASON : NULL;
    if (!exit_written) write_exit_file(exit_fd, exit_path, !reap_failed, status, sig, reason);
    if (recorder == NULL) return 0;
    long count = oom_count(oom_file); /* after the exit file, as Observer.exited */
    /* recorded.py's order: an OOM kill not yet reported, then the exit; the exit file's lock is
     * held meanwhile. On an error, the Python recorder does it all (it writes nothing twice). */
    if (have_store && (count <= reported || store_oom(&store, count) >= 0)
        && store_exited(&store, !reap_failed, status, sig, sig == SIGKILL && count > 0, reason) >= 0)
        return 0;
    char srep[32], scount[32], sstat[16], ssig[16];
    snprintf(srep, sizeof srep, "%ld", reported);
    snprintf(scount, sizeof scount, "%ld", count);
    if (reap_failed) strcpy(sstat, "none"); else snprintf(sstat, sizeof sstat, "%d", status);
    if (sig > 0) snprintf(ssig, sizeof ssig, "%d", sig); else strcpy(ssig, "none");
    char *extra[] = {"exited", srep, scount, sstat, ssig, (char *)(reason ? reason : "")};
    char **args = recorder_argv(recorder, nrec, extra, 6);
    if (args != NULL) exec_recorder(args); /* keeps the exit file's lock until the row is written */
    return 0;
}

static int run_keep(int argc, char **argv) {
    if (argc < 5) return 2;
    pid_t monitor_pid = (pid_t)atoi(argv[2]);
    int exit_fd = atoi(argv[3]);
    const char *exit_path = argv[4];
    int monitor_seen = 0, monitor_status = 0, orphan_seen = 0, orphan_status = 0;
    for (;;) {
        int ws;
        pid_t pid = waitpid(-1, &ws, 0);
        if (pid < 0) {
            if (errno == EINTR) continue;
            break; /* ECHILD */
        }
        if (pid == monitor_pid) {
            monitor_seen = 1;
            monitor_status = ws;
        } else { /* reparented from a dead monitor: its only child by then is the init */
            orphan_seen = 1;
            orphan_status = ws;
        }
    }
    int monitor_died = !monitor_seen || WIFSIGNALED(monitor_status);
    if (monitor_died && orphan_seen) {
        int status, sig;
        decode(orphan_status, &status, &sig);
        write_exit_file(exit_fd, exit_path, 1, status, sig, NULL);
    }
    return 0;
}

static int run_record(int argc, char **argv) {
    if (argc < 10) return 2;
    struct store s = {.root = argv[2], .key = atoll(argv[3]), .lock_file = argv[4], .lock_slot = atoll(argv[5]),
                      .init_pid = (pid_t)atoi(argv[6]), .now = argv[7][0] ? argv[7] : NULL};
    int wrote;
    if (strcmp(argv[8], "oom") == 0) {
        wrote = store_oom(&s, atol(argv[9]));
    } else if (strcmp(argv[8], "exited") == 0 && argc >= 13) {
        int known = strcmp(argv[9], "none") != 0, sig = strcmp(argv[10], "none") == 0 ? 0 : atoi(argv[10]);
        wrote = store_exited(&s, known, known ? atoi(argv[9]) : 0, sig, atoi(argv[11]), argv[12]);
    } else {
        return 2;
    }
    return wrote < 0 ? 2 : !wrote;
}

int main(int argc, char **argv) {
    /* argv[0] is the name ps and pstree show (monitor.name_process): corral-mon:ID, corral-keep:ID;
     * exec'd through a symlink of that name (waiting.py), the kernel already gave it */
    if (argc >= 1) prctl(PR_SET_NAME, argv[0], 0, 0, 0);
    const char *link = getenv("CORRAL_WAITER_LINK");
    if (link != NULL) {
        unlink(link);
        unsetenv("CORRAL_WAITER_LINK");
    }
    if (argc >= 2 && strcmp(argv[1], "monitor") == 0) return run_monitor(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "keep") == 0) return run_keep(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "record") == 0) return run_record(argc, argv);
    fprintf(stderr, "usage: corral-waiter monitor|keep|record ... (exec'd by corral's monitor)\n");
    return 2;
}
