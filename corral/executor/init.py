"""The container's processes before they exec the user's program.

Forked by the monitor (corral.executor.monitor) from the pre-imported spawn
helper, so no interpreter starts here. Two stages, as in runc's nsexec:

- `namespaces_stage` joins the namespaces given by path, unshares the new ones
  (the user namespace first, waiting for the monitor to write its maps), then
  forks, because a new PID namespace applies to children only. Without a user
  namespace (nor a PID namespace joined by path) there is no such stage: the
  monitor forks the init straight into its new PID namespace and the init enters
  the others itself (`direct_stage`), one process and two hops fewer;
- `init_stage` is PID 1 of the new PID namespace: it sets up the rootfs (and,
  for `process.terminal`, the pty: pty.py), hostname, loopback and credentials, reports ready, blocks on the exec fifo
  until `start`, and execs. The seccomp filter (compiled by the controller) is
  loaded last before execve under no_new_privs, or else while the init still
  holds CAP_SYS_ADMIN, just before the credentials drop it.

`exec_stage` is the same in setns mode for `Container.exec`.

Every failure before exec is reported to the monitor as a message, with the
step that failed, and ends the process: the caller of create/exec sees it.
"""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import struct
from typing import Any, NoReturn

from corral.config import Config, Process
from corral.errors import ExecutorError
from corral.executor import credentials, fds, procfs, protocol, pty, rootfs, seccomp
from corral.executor.protocol import Console, CreateRequest, ExecForked, ExecRequest, Failed, Go, HooksDue, InitForked, InitReady, UsernsCreated
from corral.executor.seccomp import CompiledFilter
from corral.executor import syscalls as sc
from corral.executor import idmap, mountns, process_attrs

#: The init's name until it execs (execve resets it): how the executor tells
#: "still waiting on the exec fifo" from "the user's process runs".
INIT_COMM = "corral-init"

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1

#: Python ignores these; a program exec'd with them ignored would inherit that.
_RESET_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP)


class Step:
    """Names the step in progress, so that an error says where it happened."""

    def __init__(self) -> None:
        self.name = "starting"

    def __call__(self, name: str) -> None:
        self.name = name


def fail(sock: socket.socket, step: Step, exc: BaseException) -> NoReturn:
    try:
        protocol.send(sock, Failed(step.name, str(exc)))
    finally:
        os._exit(1)


def reset_signals() -> None:
    for sig in _RESET_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sh22x", b"lo", 0)
        flags = struct.unpack("16sh22x", fcntl.ioctl(s.fileno(), _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(s.fileno(), _SIOCSIFFLAGS, struct.pack("16sh22x", b"lo", flags | _IFF_UP))


def find_executable(name: str, env: tuple[str, ...], cwd: str) -> str:
    """Resolve argv[0] as execvp would, inside the container, before reporting ready:
    a missing program must fail `create`, not `start`."""
    if "/" in name:
        path = name if os.path.isabs(name) else os.path.join(cwd, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
        raise FileNotFoundError(f"executable {name!r} not found or not executable in the container")
    search = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    for entry in env:
        if entry.startswith("PATH="):
            search = entry[5:]
    for directory in search.split(":"):
        candidate = os.path.join(directory or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError(f"executable {name!r} not found in $PATH ({search}) in the container")


def install_stdio(fds: list[int]) -> None:
    for target, fd in enumerate(fds[:3]):
        if fd != target:
            os.dup2(fd, target)
    for fd in set(fds[:3]):  # a terminal is the same fd three times
        if fd > 2:
            os.close(fd)


def open_terminal(root_fd: int, process: Process, sock: socket.socket, step: Step, *, console: bool) -> list[int]:
    """`process.terminal`: a new pty of the container's devpts, its master sent up to the
    controller, its slave this process's controlling terminal; returns the new stdio.

    `console` (the init only) also binds the slave over /dev/console, as runc does.
    """
    step("allocating the terminal (the container's /dev/ptmx)")
    pair = pty.allocate(root_fd, process.console_size)
    try:
        if console:
            step("binding the terminal to /dev/console")
            rootfs.mount_console(root_fd, pair.slave)
        step("sending the terminal's master to the controller")
        protocol.send(sock, Console(pair.name), [pair.master])
    except BaseException:
        os.close(pair.slave)
        raise
    finally:
        os.close(pair.master)
    step("making the terminal the controlling terminal")
    pty.make_controlling(pair.slave)
    return [pair.slave] * 3


def become(process: Process, stdio: list[int], step: Step, config: Config | None = None) -> str:
    """The last steps before exec, shared by init and exec: find the program, drop to the
    process's credentials, enter its working directory, take its stdio. Returns the path."""
    step(f"looking up {process.args[0]!r}")
    executable = find_executable(process.args[0], process.env, process.cwd)
    step("setting the personality, I/O priority and scheduler (before capabilities drop)")
    process_attrs.apply(process, config)
    step("setting up the process's credentials")
    credentials.apply(process)
    step(f"changing to the working directory {process.cwd!r}")
    os.chdir(process.cwd)
    check_cwd(process.cwd)
    install_stdio(stdio)
    return executable


def check_cwd(cwd: str) -> None:
    """Refuse a working directory outside the container's root (CVE-2024-21626): a `cwd`
    such as /proc/self/fd/N resolves through a descriptor, which may be a host directory;
    the kernel then names it "(unreachable)/..." and glibc's getcwd fails with ENOENT."""
    try:
        where = os.getcwd()
    except OSError as exc:
        where = f"getcwd failed: {exc.strerror}"
    if not where.startswith("/"):
        raise ExecutorError(f"process.cwd {cwd!r} is outside the container's root ({where})")


def load_seccomp_privileged(seccomp_filter: CompiledFilter | None, process: Process, step: Step) -> None:
    """Without no_new_privs, the kernel takes a filter only from a process with
    CAP_SYS_ADMIN: load it before the credentials drop it, as the runtime spec says
    (and runc does). Every syscall from here to execve then passes the filter too."""
    if seccomp_filter is not None and not process.no_new_privileges:
        step("loading the seccomp filter (before dropping capabilities)")
        seccomp.load_bpf(seccomp_filter)


def load_seccomp_last(seccomp_filter: CompiledFilter | None, process: Process, step: Step) -> None:
    """With no_new_privs, the last thing before execve: the profile then only has to
    allow execve, not the set-up the init does on the program's behalf."""
    if seccomp_filter is not None and process.no_new_privileges:
        step("loading the seccomp filter")
        seccomp.load_bpf(seccomp_filter)
        step("executing the process")


def _env_dict(env: tuple[str, ...]) -> dict[str, str]:
    return dict(item.split("=", 1) for item in env if "=" in item)


def enter_namespaces(request: CreateRequest, step: Step, skip: frozenset[str] = frozenset()) -> None:
    """Join the namespaces given by path, then unshare the new ones but the cgroup
    namespace (the init's, once it is in its cgroups) and those in `skip`."""
    # Every path opened before the first setns, as runc's nsexec does: once in a joined
    # mount namespace, /proc/<pid>/ns/... names that namespace's processes, not ours.
    opened: list[tuple[str, str, int]] = []
    try:
        for ns_type, path in request.join:
            if ns_type in skip:
                continue
            step(f"opening the {ns_type} namespace at {path}")
            opened.append((ns_type, path, os.open(path, os.O_RDONLY | os.O_CLOEXEC)))
        for ns_type, path, fd in opened:
            step(f"joining the {ns_type} namespace at {path}")
            sc.setns(fd, sc.NAMESPACES[ns_type][0])
    finally:
        for _, _, fd in opened:
            os.close(fd)
    new = [t for t in request.new if t != "cgroup" and t not in skip]
    flags = 0
    for ns_type in new:
        flags |= sc.NAMESPACES[ns_type][0]
    if flags:
        step("creating namespaces " + ", ".join(new))
        sc.unshare(flags)


def forks_init_directly(request: CreateRequest) -> bool:
    """Whether the monitor can fork the init itself, without the namespaces stage between.

    A new PID namespace applies to children only: the monitor unshares it for its next
    child alone (and takes its own back), and the init enters the other namespaces
    itself, which saves a process, its exit and two hops of the sync protocol. Not with
    a user namespace, which must exist before the others so that it owns them (and its
    maps are written in between), nor with a PID namespace joined by path; nor with a new
    time namespace (like a PID namespace it applies to children only, and its offsets are
    written before the first one) or idmapped mounts (their trees are made in the
    runtime's namespaces by the stage before the init).
    """
    joined = {t for t, _ in request.join}
    return (
        "user" not in request.new
        and "time" not in request.new
        and not joined & {"user", "pid"}
        and not any(m.is_idmapped for m in request.config.mounts)
    )


def wait_for_cgroups(sock: socket.socket, step: Step) -> None:
    """Block until the monitor has put this process in the container's cgroups (its Go);
    exit quietly if it closed the socket instead. Then undumpable, as runc's nsexec."""
    step("waiting for the cgroups")
    if protocol.recv(sock) is None:
        os._exit(1)
    sc.prctl(sc.PR_SET_DUMPABLE, 0)


def direct_stage(request: CreateRequest, fifo_fd: int, sock: socket.socket, stdio: list[int]) -> NoReturn:
    """The init forked by the monitor into its new PID namespace (forks_init_directly)."""
    step = Step()
    try:
        wait_for_cgroups(sock, step)
        enter_namespaces(request, step, skip=frozenset({"pid"}))
    except BaseException as exc:
        fail(sock, step, exc)
    init_stage(request, fifo_fd, sock, stdio)


def namespaces_stage(request: CreateRequest, fifo_fd: int, sock: socket.socket, stdio: list[int]) -> NoReturn:
    """Join and create namespaces, then fork the init (PID 1 of a new PID namespace)."""
    step = Step()
    try:
        wait_for_cgroups(sock, step)
        idmapped: dict[int, int] = {}
        if any(m.is_idmapped for m in request.config.mounts):  # in the runtime's namespaces: idmap.py
            step("making the idmapped mounts' detached trees")
            idmapped = idmap.detached_trees(request.config)
        enter_namespaces(request, step)
        new = request.new
        if "user" in new:
            step("waiting for the uid/gid maps")
            protocol.send(sock, UsernsCreated(os.getpid()))
            if protocol.recv(sock) is None:
                os._exit(1)
            for setter in (os.setresgid, os.setresuid):
                try:
                    setter(0, 0, 0)
                except OSError:
                    pass  # container root is not mapped: the process's own user comes later
        if "time" in new and request.config.time_offsets:
            step("writing the time namespace's offsets (before its first process)")
            procfs.acquire()
            process_attrs.write_time_offsets(request.config.time_offsets)
        step("forking the init")
        gate_read, gate_write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(gate_write)
            os.read(gate_read, 1)  # returns when this stage has reported the PID and exited
            os.close(gate_read)
            init_stage(request, fifo_fd, sock, stdio, idmapped)
        os.close(gate_read)
        protocol.send(sock, InitForked(pid))
    except BaseException as exc:
        fail(sock, step, exc)
    os._exit(0)


def init_stage(
    request: CreateRequest, fifo_fd: int, sock: socket.socket, stdio: list[int], idmapped: dict[int, int] | None = None
) -> NoReturn:
    step = Step()
    extra = stdio[3:]  # Stdio.extra_fds: the program's 3, 4, ... (a terminal replaces only 0, 1, 2)
    try:
        step("naming the init")
        sc.prctl(sc.PR_SET_NAME, _comm_arg())
        config = request.config  # validated once, in the controller, when it was built
        new = set(request.new)
        step("opening a procfs of the container's PID namespace (every procfs write goes through it)")
        procfs.acquire()
        if "cgroup" in new:
            step("creating the cgroup namespace")
            sc.unshare(sc.CLONE_NEWCGROUP)
        mount_mode = mountns.mode(config)  # without a new one: no mount at all (mountns.py)
        if mount_mode == mountns.NEW:
            step("setting up the rootfs")
            rootfs.prepare(
                config,
                request.cgroup_paths,
                in_user_namespace="user" in new or any(t == "user" for t, _ in request.join),
                new_cgroupns="cgroup" in new,
                idmapped=idmapped,
            )
            for fd in (idmapped or {}).values():
                os.close(fd)
        if config.process.terminal:  # before pivot_root, and before `finish` may make the root unbindable
            where = config.root.path if mount_mode == mountns.NEW else "/"  # joined: its root is the rootfs
            root_fd = os.open(where, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                stdio = open_terminal(root_fd, config.process, sock, step, console=True)
            finally:
                os.close(root_fd)
        if config.hostname is not None:
            step(f"setting the hostname {config.hostname!r}")
            sc.sethostname(config.hostname)
        if config.domainname is not None:
            step(f"setting the domainname {config.domainname!r}")
            sc.setdomainname(config.domainname)
        if "network" in new:
            step("bringing up the loopback interface")
            loopback_up()
        step("writing the sysctls (through the host's procfs, before pivot_root)")
        rootfs.write_sysctls(config.sysctl)
        host_pid = create_hooks(request, sock, step)
        if mount_mode == mountns.NEW:
            step(f"pivot_root into {config.root.path}")
            rootfs.pivot(config.root.path)
            step("finishing the rootfs (read-only and masked paths)")
            rootfs.finish(config)
            step("reaching the exec fifo through /proc (the container needs proc mounted at /proc)")
            os.stat(rootfs.fd_path(fifo_fd))
        elif mount_mode == mountns.NONE:
            step(f"chroot into {config.root.path} (no mount namespace of its own: no pivot_root)")
            os.chdir(config.root.path)
            os.chroot(".")
            os.chdir("/")
        process = config.process
        seccomp_filter = request.seccomp  # compiled by the controller at create
        load_seccomp_privileged(seccomp_filter, process, step)
        executable = become(process, stdio, step, config)
        protocol.send(sock, InitReady())
    except BaseException as exc:
        fail(sock, step, exc)
    sock.close()
    try:
        fifo = procfs.reopen(fifo_fd, os.O_WRONLY)  # not the container's /proc; blocks until start
        if config.hooks.start_container and host_pid is not None:  # outcomes go up the fifo, then "0"
            from corral.executor import hooks  # imported before the fork (zygote.serve): not from the rootfs

            hooks.container_hooks(
                config, request.id, "startContainer", "created", host_pid,
                lambda outcome: os.write(fifo, hooks.fifo_line(outcome)), cwd=None,
            )
        os.write(fifo, b"0")
        reset_signals()
        # The program gets its stdio (and its extra fds) and nothing else. The fifo stays open,
        # close-on-exec: the kernel closes it at the execve, and that end-of-file tells `start`
        # the user's process runs (or, if execve fails, the exit closes it).
        if extra:
            [fifo] = fds.place_extra(extra, [fifo])
        fds.close_all_except([0, 1, 2, *range(3, 3 + len(extra)), fifo])
        args, env = list(process.args), _env_dict(process.env)
        load_seccomp_last(seccomp_filter, process, step)
        os.execve(executable, args, env)
    except BaseException as exc:
        os.write(2, f"corral init: {process.args[0]}: {exc}\n".encode(errors="replace"))
    os._exit(127)


def create_hooks(request: CreateRequest, sock: socket.socket, step: Step) -> int | None:
    """The hooks of `create`, before pivot_root: prestart and createRuntime (the monitor runs
    them, in the host's namespaces), then createContainer (here, in the container's
    namespaces, in the rootfs). Returns the init's host PID when the config has hooks."""
    config = request.config
    if not config.hooks:
        return None
    from corral.executor import hooks  # only for a config with hooks: imported by the helper then (zygote.serve)

    pid = hooks.host_pid()
    if config.hooks.prestart or config.hooks.create_runtime:
        step("waiting for the prestart and createRuntime hooks (the monitor runs them)")
        protocol.send(sock, HooksDue(pid))
        if not isinstance(protocol.recv(sock), Go):
            os._exit(1)  # a hook failed: the monitor reports it and kills this process
    if config.hooks.create_container:
        step("running the createContainer hooks")
        hooks.container_hooks(
            config, request.id, "createContainer", "creating", pid,
            lambda outcome: protocol.send(sock, hooks.to_message(outcome)), cwd=config.root.path,
        )
    return pid


def exec_stage(request: ExecRequest, sock: socket.socket, stdio: list[int], pidfd: int) -> NoReturn:
    """Join the running container (one setns through the init's pidfd), then fork and exec."""
    step = Step()
    try:
        affinity = request.process.exec_cpu_affinity
        if affinity is not None:
            step("setting the initial CPU affinity (execCPUAffinity.initial)")
            process_attrs.set_affinity(affinity.initial)
        step("waiting for the cgroups")
        if protocol.recv(sock) is None:
            os._exit(1)
        sc.prctl(sc.PR_SET_DUMPABLE, 0)  # before joining: the container must not reach into us
        step("opening a procfs (before joining: the container's /proc is not to be trusted)")
        procfs.acquire()
        flags = 0
        for ns_type in request.join:
            flags |= sc.NAMESPACES[ns_type][0]
        root_fd = None
        if "mount" not in request.join:  # the container's root is the init's chroot: take it too
            step("opening the container's root (no mount namespace to join)")
            root_fd = procfs.current().open_root_of(request.init_pid)
        if flags:
            step("joining the container's namespaces")
            sc.setns(pidfd, flags)
        os.close(pidfd)
        if root_fd is not None:
            step("chroot into the container's root")
            os.fchdir(root_fd)
            os.close(root_fd)
            os.chroot(".")
            os.chdir("/")
        step("forking the process")
        pid = os.fork()
        if pid == 0:
            if request.frozen:  # the monitor puts it into the frozen cgroup, then says Go
                step("waiting to be put into the frozen cgroup")
                if protocol.recv(sock) is None:
                    os._exit(1)
            _exec_process(request.process, request.seccomp, sock, stdio)
        protocol.send(sock, ExecForked(pid))
    except BaseException as exc:
        fail(sock, step, exc)
    os._exit(0)


def _exec_process(
    process: Process, seccomp_filter: CompiledFilter | None, sock: socket.socket, stdio: list[int]
) -> NoReturn:
    step = Step()
    extra = stdio[3:]  # Stdio.extra_fds: the program's 3, 4, ... (a terminal replaces only 0, 1, 2)
    try:
        if process.exec_cpu_affinity is not None:
            step("setting the final CPU affinity (execCPUAffinity.final)")
            process_attrs.set_affinity(process.exec_cpu_affinity.final)
        if process.terminal:  # joined the mount namespace: "/" is the container's
            root_fd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                stdio = open_terminal(root_fd, process, sock, step, console=False)
            finally:
                os.close(root_fd)
        load_seccomp_privileged(seccomp_filter, process, step)
        executable = become(process, stdio, step)
        reset_signals()
        report = sock.fileno()  # close-on-exec: it reports a failed execve
        if extra:
            sock.detach()
            [report] = fds.place_extra(extra, [report])
            sock = socket.socket(fileno=report)
        fds.close_all_except([0, 1, 2, *range(3, 3 + len(extra)), report])
        args, env = list(process.args), _env_dict(process.env)
        load_seccomp_last(seccomp_filter, process, step)
        os.execve(executable, args, env)
    except BaseException as exc:
        fail(sock, step, exc)


def _comm_arg() -> int:
    """PR_SET_NAME takes a pointer: keep the buffer alive in a module global."""
    global _COMM_BUFFER
    from corral.executor._syscalls import ffi

    _COMM_BUFFER = ffi.new("char[]", INIT_COMM.encode())
    return int(ffi.cast("unsigned long", _COMM_BUFFER))


_COMM_BUFFER: Any = None
