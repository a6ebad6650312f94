"""cffi (API mode) build script for corral.executor._syscalls.

API mode: compiled once at install, so that importing the bindings costs about
a millisecond, where the ABI mode's cdef parsing costs ~25 ms in every process
(the init and the spawn helper start fresh). The C side is only thin wrappers
for calls glibc does not export (pivot_root, capget/capset, openat2,
seccomp, bpf); the logic stays in Python. The new mount API (fsopen, fsconfig, fsmount)
and fstatfs's filesystem type serve `procfs`: a procfs corral made itself.
"""

from cffi import FFI

ffibuilder = FFI()

ffibuilder.cdef(
    """
    #define CLONE_NEWNS ...
    #define CLONE_NEWUTS ...
    #define CLONE_NEWIPC ...
    #define CLONE_NEWUSER ...
    #define CLONE_NEWPID ...
    #define CLONE_NEWNET ...
    #define CLONE_NEWCGROUP ...
    #define CLONE_NEWTIME ...

    #define MS_RDONLY ...
    #define MS_NOSUID ...
    #define MS_NODEV ...
    #define MS_NOEXEC ...
    #define MS_SYNCHRONOUS ...
    #define MS_REMOUNT ...
    #define MS_MANDLOCK ...
    #define MS_DIRSYNC ...
    #define MS_NOATIME ...
    #define MS_NODIRATIME ...
    #define MS_BIND ...
    #define MS_MOVE ...
    #define MS_REC ...
    #define MS_SILENT ...
    #define MS_UNBINDABLE ...
    #define MS_PRIVATE ...
    #define MS_SLAVE ...
    #define MS_SHARED ...
    #define MS_RELATIME ...
    #define MS_STRICTATIME ...
    #define MS_LAZYTIME ...

    #define MNT_DETACH ...
    #define MNT_FORCE ...
    #define UMOUNT_NOFOLLOW ...

    #define PR_SET_PDEATHSIG ...
    #define PR_SET_DUMPABLE ...
    #define PR_SET_KEEPCAPS ...
    #define PR_SET_NAME ...
    #define PR_SET_NO_NEW_PRIVS ...
    #define PR_CAPBSET_READ ...
    #define PR_CAPBSET_DROP ...
    #define PR_CAP_AMBIENT ...
    #define PR_CAP_AMBIENT_RAISE ...
    #define PR_CAP_AMBIENT_CLEAR_ALL ...
    #define PR_SET_CHILD_SUBREAPER ...

    #define RESOLVE_NO_XDEV ...
    #define RESOLVE_NO_MAGICLINKS ...
    #define RESOLVE_NO_SYMLINKS ...
    #define RESOLVE_BENEATH ...
    #define RESOLVE_IN_ROOT ...

    #define FSOPEN_CLOEXEC ...
    #define FSMOUNT_CLOEXEC ...
    #define FSCONFIG_CMD_CREATE ...
    #define PROC_SUPER_MAGIC ...

    #define SECCOMP_FILTER_FLAG_TSYNC ...
    #define SECCOMP_FILTER_FLAG_LOG ...
    #define SECCOMP_FILTER_FLAG_SPEC_ALLOW ...

    #define BPF_PROG_TYPE_CGROUP_DEVICE ...
    #define BPF_CGROUP_DEVICE ...
    #define BPF_F_ALLOW_MULTI ...
    #define BPF_DEVCG_ACC_MKNOD ...
    #define BPF_DEVCG_ACC_READ ...
    #define BPF_DEVCG_ACC_WRITE ...
    #define BPF_DEVCG_DEV_BLOCK ...
    #define BPF_DEVCG_DEV_CHAR ...

    int unshare(int flags);
    int setns(int fd, int nstype);
    int mount(const char *source, const char *target, const char *filesystemtype,
              unsigned long mountflags, const void *data);
    int umount2(const char *target, int flags);
    int sethostname(const char *name, size_t len);
    int prctl(int option, unsigned long arg2, unsigned long arg3, unsigned long arg4,
              unsigned long arg5);

    int corral_pivot_root(const char *new_root, const char *put_old);
    int corral_capget(int pid, uint32_t *data);
    int corral_capset(int pid, const uint32_t *data);
    int corral_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode,
                       uint64_t resolve);
    int corral_fsopen(const char *fsname, unsigned int flags);
    int corral_fsconfig_create(int fsfd);
    int corral_fsmount(int fsfd, unsigned int flags, unsigned int attr_flags);
    long corral_fstatfs_type(int fd);
    int corral_seccomp_set_filter(unsigned int flags, const void *filter, unsigned short len);
    int corral_bpf_prog_load(unsigned int prog_type, const void *insns, unsigned int insn_cnt,
                             const char *license, unsigned int log_level, char *log_buf,
                             unsigned int log_size);
    int corral_bpf_prog_attach(int prog_fd, int target_fd, unsigned int attach_type,
                               unsigned int flags);
    int corral_bpf_prog_detach(int prog_fd, int target_fd, unsigned int attach_type);
    int corral_bpf_prog_query(int target_fd, unsigned int attach_type, uint32_t *ids,
                              uint32_t *count);
    int corral_bpf_prog_get_fd_by_id(uint32_t id);

    int setdomainname(const char *name, size_t len);
    int personality(unsigned long persona);
    int corral_ioprio_set(int which, int who, int ioprio);
    int corral_sched_setattr(int pid, uint32_t policy, uint64_t flags, int32_t nice,
                             uint32_t priority, uint64_t runtime, uint64_t deadline,
                             uint64_t period);
    int corral_open_tree(int dfd, const char *path, unsigned int flags);
    int corral_move_mount(int from_dfd, const char *from_path, int to_dfd, const char *to_path,
                          unsigned int flags);
    int corral_mount_setattr(int dfd, const char *path, unsigned int flags, uint64_t attr_set,
                             uint64_t attr_clr, uint64_t userns_fd);
    """
)

ffibuilder.set_source(
    "corral.executor._syscalls",
    r"""
    #define _GNU_SOURCE
    #include <sched.h>
    #include <stdint.h>
    #include <string.h>
    #include <unistd.h>
    #include <sys/mount.h>
    #include <sys/personality.h>
    #include <sys/prctl.h>
    #include <sys/syscall.h>
    #include <sys/vfs.h>
    #include <linux/magic.h>
    #include <linux/capability.h>
    #include <linux/openat2.h>
    #include <linux/filter.h>
    #include <linux/seccomp.h>
    #include <linux/bpf.h>

    #ifndef CLONE_NEWTIME
    #define CLONE_NEWTIME 0x00000080
    #endif

    static int corral_ioprio_set(int which, int who, int ioprio) {
        return (int) syscall(SYS_ioprio_set, which, who, ioprio);
    }

    /* struct sched_attr of sched_setattr(2), spelled out: older glibc has none, newer
       ones declare it in <sched.h> under the same name. */
    struct corral_sched_attr {
        uint32_t size;
        uint32_t sched_policy;
        uint64_t sched_flags;
        int32_t sched_nice;
        uint32_t sched_priority;
        uint64_t sched_runtime;
        uint64_t sched_deadline;
        uint64_t sched_period;
    };

    static int corral_sched_setattr(int pid, uint32_t policy, uint64_t flags, int32_t nice,
                                    uint32_t priority, uint64_t runtime, uint64_t deadline,
                                    uint64_t period) {
        struct corral_sched_attr attr;
        memset(&attr, 0, sizeof(attr));
        attr.size = sizeof(attr);
        attr.sched_policy = policy;
        attr.sched_flags = flags;
        attr.sched_nice = nice;
        attr.sched_priority = priority;
        attr.sched_runtime = runtime;
        attr.sched_deadline = deadline;
        attr.sched_period = period;
        return (int) syscall(SYS_sched_setattr, pid, &attr, 0);
    }

    static int corral_open_tree(int dfd, const char *path, unsigned int flags) {
        return (int) syscall(SYS_open_tree, dfd, path, flags);
    }

    static int corral_move_mount(int from_dfd, const char *from_path, int to_dfd,
                                 const char *to_path, unsigned int flags) {
        return (int) syscall(SYS_move_mount, from_dfd, from_path, to_dfd, to_path, flags);
    }

    /* struct mount_attr of mount_setattr(2) (Linux 5.12), spelled out as above. */
    struct corral_mount_attr {
        uint64_t attr_set;
        uint64_t attr_clr;
        uint64_t propagation;
        uint64_t userns_fd;
    };

    static int corral_mount_setattr(int dfd, const char *path, unsigned int flags,
                                    uint64_t attr_set, uint64_t attr_clr, uint64_t userns_fd) {
        struct corral_mount_attr attr;
        memset(&attr, 0, sizeof(attr));
        attr.attr_set = attr_set;
        attr.attr_clr = attr_clr;
        attr.userns_fd = userns_fd;
        return (int) syscall(SYS_mount_setattr, dfd, path, flags, &attr, sizeof(attr));
    }

    static int corral_pivot_root(const char *new_root, const char *put_old) {
        return (int) syscall(SYS_pivot_root, new_root, put_old);
    }

    /* data: effective, permitted, inheritable for words 0 and 1 (6 values). */
    static int corral_capget(int pid, uint32_t *data) {
        struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, pid };
        struct __user_cap_data_struct caps[2];
        int ret = (int) syscall(SYS_capget, &header, caps);
        for (int i = 0; i < 2; i++) {
            data[i * 3 + 0] = caps[i].effective;
            data[i * 3 + 1] = caps[i].permitted;
            data[i * 3 + 2] = caps[i].inheritable;
        }
        return ret;
    }

    static int corral_capset(int pid, const uint32_t *data) {
        struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, pid };
        struct __user_cap_data_struct caps[2];
        for (int i = 0; i < 2; i++) {
            caps[i].effective = data[i * 3 + 0];
            caps[i].permitted = data[i * 3 + 1];
            caps[i].inheritable = data[i * 3 + 2];
        }
        return (int) syscall(SYS_capset, &header, caps);
    }

    static int corral_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode,
                              uint64_t resolve) {
        struct open_how how;
        memset(&how, 0, sizeof(how));
        how.flags = flags;
        how.mode = mode;
        how.resolve = resolve;
        return (int) syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
    }

    /* The new mount API (Linux 5.2), through syscall(2) so that an older glibc builds too. */
    #ifndef FSOPEN_CLOEXEC
    #define FSOPEN_CLOEXEC 0x00000001
    #endif
    #ifndef FSMOUNT_CLOEXEC
    #define FSMOUNT_CLOEXEC 0x00000001
    #endif
    #ifndef FSCONFIG_CMD_CREATE
    #define FSCONFIG_CMD_CREATE 6
    #endif

    static int corral_fsopen(const char *fsname, unsigned int flags) {
        return (int) syscall(SYS_fsopen, fsname, flags);
    }

    static int corral_fsconfig_create(int fsfd) {
        return (int) syscall(SYS_fsconfig, fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0);
    }

    static int corral_fsmount(int fsfd, unsigned int flags, unsigned int attr_flags) {
        return (int) syscall(SYS_fsmount, fsfd, flags, attr_flags);
    }

    /* The filesystem's magic number (statfs.f_type) of what `fd` (O_PATH is enough) is on. */
    static long corral_fstatfs_type(int fd) {
        struct statfs buf;
        if (fstatfs(fd, &buf) == -1)
            return -1;
        return (long) buf.f_type;
    }

    /* filter: `len` struct sock_filter, as libseccomp's seccomp_export_bpf writes them. */
    static int corral_seccomp_set_filter(unsigned int flags, const void *filter,
                                         unsigned short len) {
        struct sock_fprog prog = { len, (struct sock_filter *) filter };
        return (int) syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
    }

    /* bpf(2): one union bpf_attr per command, zeroed first (the kernel refuses
       non-zero bytes past the fields a command uses). */
    static int corral_bpf(int cmd, union bpf_attr *attr) {
        return (int) syscall(SYS_bpf, cmd, attr, sizeof(*attr));
    }

    /* insns: `insn_cnt` struct bpf_insn (8 bytes each); the returned fd is O_CLOEXEC. */
    static int corral_bpf_prog_load(unsigned int prog_type, const void *insns,
                                    unsigned int insn_cnt, const char *license,
                                    unsigned int log_level, char *log_buf,
                                    unsigned int log_size) {
        union bpf_attr attr;
        memset(&attr, 0, sizeof(attr));
        attr.prog_type = prog_type;
        attr.insns = (uint64_t) (uintptr_t) insns;
        attr.insn_cnt = insn_cnt;
        attr.license = (uint64_t) (uintptr_t) license;
        attr.log_level = log_level;
        attr.log_buf = (uint64_t) (uintptr_t) log_buf;
        attr.log_size = log_size;
        return corral_bpf(BPF_PROG_LOAD, &attr);
    }

    static int corral_bpf_prog_attach(int prog_fd, int target_fd, unsigned int attach_type,
                                      unsigned int flags) {
        union bpf_attr attr;
        memset(&attr, 0, sizeof(attr));
        attr.target_fd = target_fd;
        attr.attach_bpf_fd = prog_fd;
        attr.attach_type = attach_type;
        attr.attach_flags = flags;
        return corral_bpf(BPF_PROG_ATTACH, &attr);
    }

    static int corral_bpf_prog_detach(int prog_fd, int target_fd, unsigned int attach_type) {
        union bpf_attr attr;
        memset(&attr, 0, sizeof(attr));
        attr.target_fd = target_fd;
        attr.attach_bpf_fd = prog_fd;
        attr.attach_type = attach_type;
        return corral_bpf(BPF_PROG_DETACH, &attr);
    }

    /* ids: room for *count program ids; *count becomes how many are attached. */
    static int corral_bpf_prog_query(int target_fd, unsigned int attach_type, uint32_t *ids,
                                     uint32_t *count) {
        union bpf_attr attr;
        memset(&attr, 0, sizeof(attr));
        attr.query.target_fd = target_fd;
        attr.query.attach_type = attach_type;
        attr.query.prog_ids = (uint64_t) (uintptr_t) ids;
        attr.query.prog_cnt = *count;
        int ret = corral_bpf(BPF_PROG_QUERY, &attr);
        *count = attr.query.prog_cnt;
        return ret;
    }

    static int corral_bpf_prog_get_fd_by_id(uint32_t id) {
        union bpf_attr attr;
        memset(&attr, 0, sizeof(attr));
        attr.prog_id = id;
        return corral_bpf(BPF_PROG_GET_FD_BY_ID, &attr);
    }
    """,
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
