"""cffi (API mode) build script for corral.executor._seccomp: our binding of libseccomp.

Why libseccomp: it is what runc, crun, youki and podman use to turn a profile
into BPF (per-architecture syscall numbers, multiplexed syscalls such as
socketcall, 64-bit argument comparisons on 32-bit ABIs); a hand-written BPF
compiler would have to get all of that right again.

Why our own cffi binding rather than one from PyPI: `pyseccomp` (ctypes, ABI
mode; last release 0.1.2 in January 2021) copies libseccomp's constants by hand
instead of reading them from the header, and would add a ctypes import where
we already build a cffi extension; libseccomp's own Cython binding is not
published on PyPI by its project (Debian's python3-seccomp serves only the
system Python, not a virtualenv; `mephi42-seccomp` is one person's repackaging
of it). Ours is about twenty declarations, compiled at install against
Debian's libseccomp-dev, and takes every constant from seccomp.h, so it cannot
drift from the library it links.
"""

from cffi import FFI

ffibuilder = FFI()

ffibuilder.cdef(
    """
    typedef void *scmp_filter_ctx;
    typedef uint64_t scmp_datum_t;

    enum scmp_filter_attr {
        SCMP_FLTATR_ACT_DEFAULT,
        SCMP_FLTATR_ACT_BADARCH,
        SCMP_FLTATR_CTL_NNP,
        SCMP_FLTATR_CTL_TSYNC,
        SCMP_FLTATR_API_TSKIP,
        SCMP_FLTATR_CTL_LOG,
        SCMP_FLTATR_CTL_SSB,
        ...
    };

    enum scmp_compare {
        SCMP_CMP_NE,
        SCMP_CMP_LT,
        SCMP_CMP_LE,
        SCMP_CMP_EQ,
        SCMP_CMP_GE,
        SCMP_CMP_GT,
        SCMP_CMP_MASKED_EQ,
        ...
    };

    struct scmp_arg_cmp {
        unsigned int arg;
        enum scmp_compare op;
        scmp_datum_t datum_a;
        scmp_datum_t datum_b;
    };

    struct scmp_version {
        unsigned int major;
        unsigned int minor;
        unsigned int micro;
    };

    #define SCMP_ACT_KILL_PROCESS ...
    #define SCMP_ACT_KILL_THREAD ...
    #define SCMP_ACT_TRAP ...
    #define SCMP_ACT_NOTIFY ...
    #define SCMP_ACT_LOG ...
    #define SCMP_ACT_ALLOW ...
    #define __NR_SCMP_ERROR ...

    uint32_t corral_scmp_act_errno(uint32_t errno_ret);
    uint32_t corral_scmp_act_trace(uint32_t msg);

    const struct scmp_version *seccomp_version(void);
    unsigned int seccomp_api_get(void);

    scmp_filter_ctx seccomp_init(uint32_t def_action);
    void seccomp_release(scmp_filter_ctx ctx);
    uint32_t seccomp_arch_native(void);
    uint32_t seccomp_arch_resolve_name(const char *arch_name);
    int seccomp_arch_add(scmp_filter_ctx ctx, uint32_t arch_token);
    int seccomp_arch_remove(scmp_filter_ctx ctx, uint32_t arch_token);
    int seccomp_attr_set(scmp_filter_ctx ctx, enum scmp_filter_attr attr, uint32_t value);
    int seccomp_syscall_resolve_name(const char *name);
    int seccomp_rule_add_array(scmp_filter_ctx ctx, uint32_t action, int syscall,
                               unsigned int arg_cnt, const struct scmp_arg_cmp *arg_array);
    int seccomp_load(const scmp_filter_ctx ctx);
    int seccomp_export_bpf(const scmp_filter_ctx ctx, int fd);
    """
)

ffibuilder.set_source(
    "corral.executor._seccomp",
    r"""
    #include <seccomp.h>

    /* SCMP_ACT_ERRNO and SCMP_ACT_TRACE are function-like macros. */
    static uint32_t corral_scmp_act_errno(uint32_t errno_ret) {
        return SCMP_ACT_ERRNO(errno_ret);
    }
    static uint32_t corral_scmp_act_trace(uint32_t msg) {
        return SCMP_ACT_TRACE(msg);
    }
    """,
    libraries=["seccomp"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
