"""Linux's names and numbers that a config may use: capabilities, rlimits, namespaces, sysctls.

Kept apart from the dataclasses and from validation because both the config
layer (to refuse a name the kernel would refuse) and the executor (to turn a
name into the number that capset() or setrlimit() takes) need the same table;
the executor sits above the config, so the tables live here.

Standard library only: the container's init imports this in a fresh interpreter.
"""

from __future__ import annotations

import errno
import resource

NAMESPACE_TYPES: tuple[str, ...] = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")

#: Linux capability names and their bit numbers (linux/capability.h), for capset
#: and PR_CAPBSET_DROP. A name the running kernel does not know (a number above
#: /proc/sys/kernel/cap_last_cap) is the executor's to report, not the config's.
CAPABILITIES: dict[str, int] = {
    "CAP_CHOWN": 0,
    "CAP_DAC_OVERRIDE": 1,
    "CAP_DAC_READ_SEARCH": 2,
    "CAP_FOWNER": 3,
    "CAP_FSETID": 4,
    "CAP_KILL": 5,
    "CAP_SETGID": 6,
    "CAP_SETUID": 7,
    "CAP_SETPCAP": 8,
    "CAP_LINUX_IMMUTABLE": 9,
    "CAP_NET_BIND_SERVICE": 10,
    "CAP_NET_BROADCAST": 11,
    "CAP_NET_ADMIN": 12,
    "CAP_NET_RAW": 13,
    "CAP_IPC_LOCK": 14,
    "CAP_IPC_OWNER": 15,
    "CAP_SYS_MODULE": 16,
    "CAP_SYS_RAWIO": 17,
    "CAP_SYS_CHROOT": 18,
    "CAP_SYS_PTRACE": 19,
    "CAP_SYS_PACCT": 20,
    "CAP_SYS_ADMIN": 21,
    "CAP_SYS_BOOT": 22,
    "CAP_SYS_NICE": 23,
    "CAP_SYS_RESOURCE": 24,
    "CAP_SYS_TIME": 25,
    "CAP_SYS_TTY_CONFIG": 26,
    "CAP_MKNOD": 27,
    "CAP_LEASE": 28,
    "CAP_AUDIT_WRITE": 29,
    "CAP_AUDIT_CONTROL": 30,
    "CAP_SETFCAP": 31,
    "CAP_MAC_OVERRIDE": 32,
    "CAP_MAC_ADMIN": 33,
    "CAP_SYSLOG": 34,
    "CAP_WAKE_ALARM": 35,
    "CAP_BLOCK_SUSPEND": 36,
    "CAP_AUDIT_READ": 37,
    "CAP_PERFMON": 38,
    "CAP_BPF": 39,
    "CAP_CHECKPOINT_RESTORE": 40,
}

#: The capability sets of a process (capabilities(7)), in the order of the OCI
#: `process.capabilities` object.
CAPABILITY_SETS: tuple[str, ...] = ("bounding", "effective", "inheritable", "permitted", "ambient")

#: The rlimits this Python can set (name -> resource number), so that a name in
#: the config is one the init can pass to resource.setrlimit() as it is.
RLIMITS: dict[str, int] = {
    name: getattr(resource, name) for name in dir(resource) if name.startswith("RLIMIT_")
}

#: "No limit" for an rlimit in OCI JSON (a uint64). Python's setrlimit() spells
#: it resource.RLIM_INFINITY (-1): the init must translate.
RLIMIT_UNLIMITED: int = 2**64 - 1

DEVICE_TYPES: tuple[str, ...] = ("c", "b", "u", "p")
DEVICE_RULE_TYPES: tuple[str, ...] = ("a", "c", "b")
ROOTFS_PROPAGATIONS: tuple[str, ...] = (
    "private",
    "rprivate",
    "slave",
    "rslave",
    "shared",
    "rshared",
    "unbindable",
    "runbindable",
)

UINT32_MAX = 2**32 - 1
UINT64_MAX = 2**64 - 1
INT64_MAX = 2**63 - 1
HOST_NAME_MAX = 64  # bytes, as sethostname(2) takes them
MAX_ID_MAP_RANGES = 340  # lines in /proc/<pid>/uid_map since Linux 4.15

#: Resource ranges of the kernel. Outside them the kernel either clamps the value without a
#: word (cpu.shares: sched_group_set_shares() clamps to MIN_SHARES..MAX_SHARES, which is why
#: runc reads the file back and fails) or refuses it at start with a bare EINVAL (CFS
#: bandwidth in tg_set_cfs_bandwidth(), pids.max in pids_max_write()); corral refuses both
#: when the config is read, naming the field. Cgroup v2 maps shares 2..262144 onto
#: cpu.weight 1..10000, its own whole range.
CPU_SHARES_MIN = 2  # MIN_SHARES, kernel/sched/sched.h
CPU_SHARES_MAX = 1 << 18  # MAX_SHARES
CFS_PERIOD_MIN_US = 1_000  # min_cfs_quota_period: 1 ms (it bounds the quota too)
CFS_PERIOD_MAX_US = 1_000_000  # max_cfs_quota_period: 1 s
CFS_QUOTA_MAX_US = (1 << 44) - 1  # max_cfs_runtime: MAX_BW (2^(64 - BW_SHIFT) - 1) microseconds
PID_MAX_LIMIT = 4 * 1024 * 1024  # include/linux/threads.h, 64-bit: the largest pids.max
BLKIO_WEIGHT_MIN = 10  # CFQ_WEIGHT_LEGACY_MIN; v2 maps 10..1000 onto io.weight 1..10000
BLKIO_WEIGHT_MAX = 1000
#: mknod(2) takes a 32-bit device number, 12 bits of major and 20 of minor (new_valid_dev());
#: a larger one is EINVAL, or an OverflowError in os.makedev() above 2^31.
DEVICE_MAJOR_BITS = 12
DEVICE_MINOR_BITS = 20

#: sysctls that belong to the IPC namespace (runc's list); `net.*` belongs to the
#: network namespace, `kernel.domainname` to the UTS namespace; all others would
#: change the host's value and are refused.
IPC_SYSCTLS: frozenset[str] = frozenset(
    {
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    }
)


# ---- seccomp (linux.seccomp): the names the runtime spec gives libseccomp's values

#: Every action of the runtime spec. SCMP_ACT_KILL is libseccomp's name for
#: SCMP_ACT_KILL_THREAD.
SECCOMP_ACTIONS: tuple[str, ...] = (
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
)

#: The actions that carry a number (errno for ERRNO, a message for the tracer for TRACE).
SECCOMP_ACTIONS_WITH_ERRNO: frozenset[str] = frozenset({"SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"})

#: What ERRNO and TRACE return when errnoRet is left out (the spec's default, runc's too).
SECCOMP_DEFAULT_ERRNO: int = errno.EPERM

SECCOMP_OPERATORS: tuple[str, ...] = (
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
)

SECCOMP_ARCHITECTURES: tuple[str, ...] = (
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_LOONGARCH64",
)

#: Filter flags corral honours (seccomp(2)'s SECCOMP_FILTER_FLAG_*).
SECCOMP_FLAGS: tuple[str, ...] = (
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
)
#: In the spec, but only meaningful with user notification, which is not supported yet.
SECCOMP_NOTIFY_FLAGS: frozenset[str] = frozenset({"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"})

#: seccomp(2) compares at most six syscall arguments.
SECCOMP_MAX_ARG_INDEX = 5
#: errnoRet is 16 bits in the filter's return value (SECCOMP_RET_DATA); more would be cut.
SECCOMP_ERRNO_MAX = 0xFFFF


# ---- mount options (mounts[].options, linux.rootfsPropagation): the mount(2) flags they set

#: mount(2)'s MS_* flags (linux/mount.h, a stable kernel ABI), so that the option table
#: below is data the config layer and `corral.features()` can read without the
#: executor's cffi extension; a unit test checks them against the extension's.
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_REC = 16384
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25

#: option -> (clears the flag?, flag)
FLAG_OPTIONS: dict[str, tuple[bool, int]] = {
    "defaults": (False, 0),
    "ro": (False, MS_RDONLY),
    "rw": (True, MS_RDONLY),
    "nosuid": (False, MS_NOSUID),
    "suid": (True, MS_NOSUID),
    "nodev": (False, MS_NODEV),
    "dev": (True, MS_NODEV),
    "noexec": (False, MS_NOEXEC),
    "exec": (True, MS_NOEXEC),
    "sync": (False, MS_SYNCHRONOUS),
    "async": (True, MS_SYNCHRONOUS),
    "dirsync": (False, MS_DIRSYNC),
    "remount": (False, MS_REMOUNT),
    "mand": (False, MS_MANDLOCK),
    "nomand": (True, MS_MANDLOCK),
    "atime": (True, MS_NOATIME),
    "noatime": (False, MS_NOATIME),
    "diratime": (True, MS_NODIRATIME),
    "nodiratime": (False, MS_NODIRATIME),
    "relatime": (False, MS_RELATIME),
    "norelatime": (True, MS_RELATIME),
    "strictatime": (False, MS_STRICTATIME),
    "nostrictatime": (True, MS_STRICTATIME),
    "lazytime": (False, MS_LAZYTIME),
    "nolazytime": (True, MS_LAZYTIME),
    "bind": (False, MS_BIND),
    "rbind": (False, MS_BIND | MS_REC),
}

#: mount_setattr(2) attributes (linux/mount.h): the recursive options of runtime-spec 1.2,
#: applied to the whole tree of a mount with AT_RECURSIVE (Linux 5.12), as runc does.
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8

#: option -> (clears the attribute?, attribute)
RECURSIVE_OPTIONS: dict[str, tuple[bool, int]] = {
    "rro": (False, MOUNT_ATTR_RDONLY),
    "rrw": (True, MOUNT_ATTR_RDONLY),
    "rnosuid": (False, MOUNT_ATTR_NOSUID),
    "rsuid": (True, MOUNT_ATTR_NOSUID),
    "rnodev": (False, MOUNT_ATTR_NODEV),
    "rdev": (True, MOUNT_ATTR_NODEV),
    "rnoexec": (False, MOUNT_ATTR_NOEXEC),
    "rexec": (True, MOUNT_ATTR_NOEXEC),
}

PROPAGATION_OPTIONS: dict[str, int] = {
    "private": MS_PRIVATE,
    "rprivate": MS_PRIVATE | MS_REC,
    "shared": MS_SHARED,
    "rshared": MS_SHARED | MS_REC,
    "slave": MS_SLAVE,
    "rslave": MS_SLAVE | MS_REC,
    "unbindable": MS_UNBINDABLE,
    "runbindable": MS_UNBINDABLE | MS_REC,
}
