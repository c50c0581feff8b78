"""A Jupyter kernel manager that runs each kernel in a bubblewrap sandbox (autograding only).

The kernel sees, read-only, the Python installation, the virtual environment and the course
library, plus a private copy of the submission's folder without its notebooks (the notebook
being graded holds the hidden tests) in a size-limited tmpfs at /submission, and a private
/tmp. Nothing else of the machine exists inside: no solutions/, gradebook, exchange, other
students' folders or the rest of the repository. It has no network (a new, empty network
namespace), its own PID namespace (when the kernel ends, every process it started dies with
it), runs as a user id of its own that no other process has, without capabilities, under
rlimits on memory, CPU time, process count and file size, and with an environment reduced to
a short allow-list. Connection goes through unix sockets in a private directory
(transport "ipc"), since TCP to the host cannot leave the empty network namespace.

Beside each kernel runs its checker (grading/checker.py, class `Checker`), the process that runs
the notebook's graded test cells: sandboxed the same way under another user id of its own, with
nothing of the submission, the course or the machine but what Python needs, and a folder of its
own where it listens on a unix socket the kernel can reach. Unsandboxed, it is a plain child
process. It is started with the kernel and killed with it.

bubblewrap is Debian's `bubblewrap` package (`apt-get install bubblewrap`); it must run as
root here, because the kernel's unique user id is set with `setpriv` inside the sandbox.
"""
import json
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from jupyter_client.manager import AsyncKernelManager
from traitlets import Bool, Integer, Unicode

HERE = os.path.dirname(os.path.abspath(__file__))
STARTUP_FILE = os.path.join(HERE, "kernel_startup.py")
# Inside the sandbox.
WORKDIR = "/submission"
INPUT_DIR = "/run/submitted"  # the private copy, read-only; startup copies it to WORKDIR
STARTUP_IN_SANDBOX = "/run/grading/kernel_startup.py"
PACKAGE_IN_SANDBOX = "/run/checker/grading"  # grading/ itself, for the checker process
# The hidden tests' course secret (backprop.labchecks.secret): sent to the checker by the
# grader, never in any environment of the sandbox.
COURSE_SECRET_VARIABLE = "BACKPROP_COURSE_SECRET"
# Environment variables a kernel keeps (everything else of the grader's environment is dropped).
ENV_KEPT = ("JPY_", "OPENBLAS_", "OMP_", "MKL_", "NBGRADER_", "LANG", "LC_", "PYDEVD_")


class SandboxError(RuntimeError):
    """The sandbox cannot be set up on this machine; the message says what to do."""


def sandbox_problem():
    """Why kernels cannot be sandboxed here, or None when they can."""
    if shutil.which("bwrap") is None:
        return ("bubblewrap is not installed: `apt-get install bubblewrap` (Debian/Ubuntu), "
                "or set c.SandboxedKernelManager.sandbox = False to grade without a sandbox")
    if os.geteuid() != 0:
        return ("the sandbox gives every kernel a user id of its own, which needs root: run "
                "autograde as root in the grading machine or container, or set "
                "c.SandboxedKernelManager.sandbox = False to grade without a sandbox")
    for tool in ("setpriv", "prlimit"):
        if shutil.which(tool) is None:
            return f"`{tool}` (util-linux) is missing"
    return None


def _ancestors(path):
    """'/a/b/c' -> ['/a', '/a/b'] (the folders bubblewrap must create, readable, for a bind)."""
    parts = path.strip("/").split("/")[:-1]
    return ["/" + "/".join(parts[:i + 1]) for i in range(len(parts))]


def _mounts_for(paths):
    args, made = [], set()
    for path in paths:
        for folder in _ancestors(path):
            if folder not in made:
                made.add(folder)
                args += ["--perms", "0755", "--dir", folder]
        args += ["--ro-bind", path, path]
    return args


def _python_paths():
    """Folders the kernel's Python needs: the installation, the venv, the editable library."""
    import sys

    import backprop

    paths = {os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix),
             os.path.dirname(os.path.dirname(os.path.realpath(backprop.__file__)))}
    return sorted(p for p in paths if not p.startswith("/usr"))


def kill_user_processes(uid, signum=signal.SIGKILL):
    """Send `signum` to every process running as `uid` (the sandbox's own user id); how
    many got it."""
    killed = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as status:
                uids = next(line for line in status if line.startswith("Uid:")).split()[1:]
            if str(uid) in uids:
                os.kill(int(entry), signum)
                killed += 1
        except (OSError, StopIteration, ProcessLookupError):
            continue
    return killed


class Checker:
    """The process that runs a notebook's graded test cells (grading/checker.py), apart from
    its kernel: in a sandbox of its own (another user id, no files of the course, no network),
    or, unsandboxed, as a plain child process. Started with the kernel, killed with it."""

    def __init__(self, folder, command, uid=None, env=None):
        """Run `command` followed by the socket path, in `folder`, as `uid` if given."""
        self.folder, self.uid = folder, uid
        self.socket_path = os.path.join(folder, "checker.sock")
        self._errors = tempfile.TemporaryFile("w+")  # what it prints if it cannot start
        self.process = subprocess.Popen([*command, self.socket_path], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self._errors, env=env, cwd="/",
                                        text=True, bufsize=1, start_new_session=True)
        self._ready = False

    def alive(self):
        return self.process.poll() is None

    def _read_line(self, timeout):
        ready, _, _ = select.select([self.process.stdout], [], [], max(timeout, 0))
        return self.process.stdout.readline() if ready else None

    def wait_ready(self, timeout=60):
        if not self._ready:
            line = self._read_line(timeout)
            if not line:
                self._errors.seek(0)
                raise SandboxError("the grader's checker process did not start: "
                                   + self._errors.read()[-2000:])
            self._ready = True

    def submit(self, token, source, timeout, kind="test", answers=()):
        """Send a job: a graded test cell (`kind` "test"), which may read the kernel's values
        of the names in `answers` only, or a setup cell ("setup"), run in the checker's own
        namespace (see grading/checker.py)."""
        self.wait_ready()
        self.process.stdin.write(json.dumps({"kind": kind, "token": token, "source": source,
                                             "timeout": timeout,
                                             "answers": sorted(answers)}) + "\n")
        self.process.stdin.flush()

    def submit_context(self, token, secret, key, source, reference):
        """Send the hidden tests' context: the course secret, the grading key, the source
        notebook's path and the code of its setup and answer cells (None: not available)."""
        self.wait_ready()
        self.process.stdin.write(json.dumps({"kind": "context", "token": token,
                                             "secret": secret, "key": key, "source": source,
                                             "reference": reference}) + "\n")
        self.process.stdin.flush()

    def result(self, token, timeout):
        """The checker's report on job `token`, or None if it gave none in time: it is then
        interrupted (it may be waiting for a kernel that will not answer), given 5 s more,
        and killed."""
        report = self._report(token, timeout)
        if report is None:
            self.signal(signal.SIGINT)
            report = self._report(token, 5)
        if report is None:
            self.stop()
        return report

    def _report(self, token, timeout):
        deadline = time.monotonic() + timeout
        while line := self._read_line(deadline - time.monotonic()):
            report = json.loads(line)
            if report.get("token") == token:
                return report
        return None

    def signal(self, signum):
        if self.uid is not None:
            kill_user_processes(self.uid, signum)
        elif self.alive():
            self.process.send_signal(signum)

    def stop(self):
        """Kill it: its process group (bubblewrap and the checker inside, whose user id may not
        be set yet when it is stopped at once), then whatever still runs as its user id."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        self.signal(signal.SIGKILL)
        for stream in (self.process.stdin, self.process.stdout, self._errors):
            try:
                stream.close()
            except OSError:
                pass


class SandboxedKernelManager(AsyncKernelManager):
    """An AsyncKernelManager whose kernel runs under bubblewrap (see the module docstring)."""

    sandbox = Bool(True, help="Run each kernel in the sandbox (False: as nbgrader does, "
                              "with the grader's rights)").tag(config=True)
    memory_bytes = Integer(3 * 2**30, help="RLIMIT_AS of the kernel").tag(config=True)
    cpu_seconds = Integer(600, help="RLIMIT_CPU of each process of the kernel").tag(config=True)
    max_processes = Integer(64, help="RLIMIT_NPROC: processes and threads of the kernel's "
                                     "user, the kernel's own threads included").tag(config=True)
    file_bytes = Integer(64 * 2**20, help="RLIMIT_FSIZE: largest file it can write"
                         ).tag(config=True)
    workdir_bytes = Integer(256 * 2**20, help="size of the tmpfs holding /submission"
                            ).tag(config=True)
    tmp_bytes = Integer(64 * 2**20, help="size of the private /tmp").tag(config=True)
    uid_range = Unicode("200000-999999", help="user ids to draw each kernel's from"
                        ).tag(config=True)

    cell_timeout = None  # seconds, set by SandboxedExecute: the kernel's own watchdog
    checker = None  # the Checker that runs this kernel's notebook's graded test cells
    _checker_env = None
    _run_dir = None
    _input_dir = None
    _uid = None

    async def _async_pre_start_kernel(self, **kw):
        if self.sandbox:
            problem = sandbox_problem()
            if problem:
                raise SandboxError(f"cannot sandbox the grading kernel: {problem}")
            self._uid = self._draw_uid()
            self._run_dir = tempfile.mkdtemp(prefix="backprop-kernel-")
            os.chown(self._run_dir, self._uid, self._uid)
            os.chmod(self._run_dir, 0o711)  # the checker reaches its own folder inside
            self.transport = "ipc"
            self.ip = os.path.join(self._run_dir, "kernel")
            self.connection_file = os.path.join(self._run_dir, "kernel.json")
            self._input_dir = self._private_copy(kw.get("cwd") or os.getcwd())
            self.log.info("Sandbox %s (user id %d) for %s", self._run_dir, self._uid,
                          kw.get("cwd") or os.getcwd())
        return await super()._async_pre_start_kernel(**kw)

    @staticmethod
    def _private_copy(folder):
        """The submission's files without notebooks (the one graded holds hidden tests) and
        without what were symbolic links when the student handed the folder in: nbgrader
        copies autograded/<student>/<lab>/ from submitted/ following links, as the grader, so
        a link to the gradebook arrives there as a copy of it."""
        folder = os.path.abspath(folder)
        parts = folder.split(os.sep)
        submitted = os.sep.join(parts[:-3] + ["submitted"] + parts[-2:])
        copy = os.path.join(tempfile.mkdtemp(prefix="backprop-submission-"), "files")
        os.makedirs(copy)
        for root, folders, files in os.walk(folder):
            relative = os.path.relpath(root, folder)
            folders[:] = [f for f in folders if f != ".ipynb_checkpoints"
                          and not os.path.islink(os.path.join(root, f))]
            for name in files:
                path = os.path.join(root, name)
                original = os.path.join(submitted, relative, name)
                if (name.endswith(".ipynb") or os.path.islink(path)
                        or (os.path.isdir(submitted) and (os.path.islink(original)
                                                          or not os.path.isfile(original)))):
                    continue
                target = os.path.join(copy, relative, name)
                os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
                shutil.copyfile(path, target)
                os.chmod(target, 0o644)
        return copy

    def _draw_uid(self, besides=None):
        """A user id from uid_range, other than `besides`."""
        low, high = (int(n) for n in self.uid_range.split("-"))
        while (uid := random.randint(low, high)) == besides:
            pass
        return uid

    def _start_checker(self, env):
        """The checker process, in a folder only it can write to, where it listens on a unix
        socket the kernel can connect to."""
        package_parent = os.path.dirname(HERE)
        env = {k: v for k, v in env.items() if k.startswith(ENV_KEPT)}
        env.update(HOME="/tmp", PATH="/usr/bin:/bin", PYTHONDONTWRITEBYTECODE="1",
                   MPLCONFIGDIR="/tmp/matplotlib", MPLBACKEND="Agg")
        command = [sys.executable, "-m", "grading.checker"]
        self._stop_checker()  # a kernel started again gets a new checker, the old one stopped
        if not self.sandbox:
            folder = tempfile.mkdtemp(prefix="backprop-checker-")
            env["PYTHONPATH"] = package_parent
            self.checker = Checker(folder, command, env=env)
            return
        uid = self._draw_uid(besides=self._uid)
        self.log.info("Sandbox %s: checker user id %d", self._run_dir, uid)
        folder = os.path.join(self._run_dir, "checker")
        os.mkdir(folder)
        os.chown(folder, uid, uid)
        os.chmod(folder, 0o755)
        env["PYTHONPATH"] = os.path.dirname(PACKAGE_IN_SANDBOX)
        prefix = self._bwrap_prefix(
            ["--perms", "0755", "--dir", "/run/checker",
             "--ro-bind", HERE, PACKAGE_IN_SANDBOX, "--perms", "0755", "--dir", self._run_dir,
             "--bind", folder, folder, "--chdir", "/tmp"],
            uid)
        self.checker = Checker(folder, prefix + command, uid=uid, env=env)

    def _stop_checker(self):
        if self.checker is not None:
            self.checker.stop()
            shutil.rmtree(self.checker.folder, ignore_errors=True)
            self.checker = None

    def restart_checker(self):
        """A new checker (the old one hung or died); its namespace starts empty (the grader
        sends it the setup cells again)."""
        self._stop_checker()
        self._start_checker(self._checker_env)

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        self._checker_env = dict(kw.get("env") or os.environ)
        self._start_checker(self._checker_env)
        if self.sandbox:
            os.chown(self.connection_file, self._uid, self._uid)
            kernel_cmd = self._sandboxed(kernel_cmd)
            kw["cwd"] = "/"
            kw["stdout"] = subprocess.DEVNULL  # ipykernel's banner; errors go to stderr
            kw["env"] = {k: v for k, v in (kw.get("env") or os.environ).items()
                         if k.startswith(ENV_KEPT)}

            kw["env"].update(HOME="/tmp", USER="student", PATH="/usr/bin:/bin",
                             MPLCONFIGDIR="/tmp/matplotlib", PYTHONDONTWRITEBYTECODE="1")
        else:  # the same start-up code (the checker's server, exit(), the watchdog)
            kernel_cmd = [*kernel_cmd, f"--IPKernelApp.exec_files=['{STARTUP_FILE}']"]
            kw["env"] = {k: v for k, v in (kw.get("env") or os.environ).items()
                         if k != COURSE_SECRET_VARIABLE}  # the checker gets it, not the kernel
        if self.cell_timeout:
            kw["env"]["BACKPROP_CELL_TIMEOUT"] = str(self.cell_timeout)
        return await super()._async_launch_kernel(kernel_cmd, **kw)

    def _bwrap_prefix(self, mounts, uid):
        """bubblewrap and the limits around a command run as `uid`: namespaces, read-only
        /usr, Python and the library, private /tmp, then `mounts`."""
        etc = [p for p in ("/etc/ld.so.cache", "/etc/fonts", "/etc/localtime")
               if os.path.exists(p)]
        return [
            "bwrap", "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
            "--unshare-cgroup-try", "--die-with-parent", "--hostname", "grading",
            "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin",
            "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
            "--symlink", "usr/sbin", "/sbin",
            "--proc", "/proc", "--dev", "/dev",
            "--size", str(self.tmp_bytes), "--tmpfs", "/dev/shm", "--chmod", "1777", "/dev/shm",
            "--size", str(self.tmp_bytes), "--tmpfs", "/tmp", "--chmod", "1777", "/tmp",
            "--size", str(self.workdir_bytes), "--tmpfs", WORKDIR, "--chmod", "0777", WORKDIR,
            # after the tmpfs mounts, so that a repository cloned under /tmp stays visible
            *_mounts_for(etc + _python_paths()),
            "--perms", "0755", "--dir", "/run",
            *mounts,
            "prlimit", f"--as={self.memory_bytes}", f"--cpu={self.cpu_seconds}",
            f"--nproc={self.max_processes}", f"--fsize={self.file_bytes}", "--core=0", "--",
            "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs",
            "--inh-caps=-all", "--bounding-set=-all",
        ]

    def _sandboxed(self, kernel_cmd):
        mounts = ["--perms", "0755", "--dir", "/run/grading",
                  "--ro-bind", self._input_dir, INPUT_DIR,
                  "--ro-bind", STARTUP_FILE, STARTUP_IN_SANDBOX,
                  "--bind", self._run_dir, self._run_dir,
                  "--chdir", WORKDIR]
        return [
            *self._bwrap_prefix(mounts, self._uid),
            *kernel_cmd, f"--IPKernelApp.exec_files=['{STARTUP_IN_SANDBOX}']",
            # ipykernel would watch the host PID of its parent, which the PID namespace hides,
            # and quit at once; bubblewrap's --die-with-parent does that job instead.
            "--IPKernelApp.parent_handle=0",
        ]

    async def interrupt_kernel(self):
        """SIGINT to the kernel and its children only: jupyter_client signals the process
        group, whose leader here is bubblewrap, which does not pass SIGINT on."""
        if self._uid is None:
            return await super().interrupt_kernel()
        kill_user_processes(self._uid, signal.SIGINT)

    async def cleanup_resources(self, restart=False):
        """What nbclient calls after shutting the kernel down, and alone when the kernel was
        already dead: AsyncKernelManager binds this name to the base class's function, which
        would skip the checker and the sandbox's leftovers below."""
        await self._async_cleanup_resources(restart=restart)

    async def _async_cleanup_resources(self, restart=False):
        await super()._async_cleanup_resources(restart=restart)
        if not restart:
            self._stop_checker()
        if self._uid is not None and not restart:
            kill_user_processes(self._uid)  # anything that outlived the PID namespace
            for folder in (self._run_dir, os.path.dirname(self._input_dir or "")):
                if folder:
                    shutil.rmtree(folder, ignore_errors=True)
