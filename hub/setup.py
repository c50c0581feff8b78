#!/usr/bin/python3
"""A class hub for Backprop Lab: JupyterHub, nbgrader's multi-user mode, accounts from a roster.

Run as root with Debian's /usr/bin/python3 (the Makefile's `make hub`, `make hub-env`,
`make hub-stop` call it). Subcommands:

  env     the course environment, once per machine: a venv from /usr/bin/python3 at
          PREFIX/env (JupyterHub, JupyterLab, nbgrader, ipywidgets, and the library `backprop`
          installed, not editable, from this repository), readable by every account, and
          configurable-http-proxy from npm at PREFIX/proxy. A no-op when nothing changed.
  up      everything of one class, then (re)start its hub: accounts from the roster, the
          course directory owned by the grader account, nbgrader's exchange, the students'
          nbgrader configuration, the formgrader service, the one sudo rule through which the
          formgrader gets a submission autograded in the sandbox (as root). Re-runnable: new
          roster rows become accounts, existing accounts and class work are left as they are.
  stop    stop the class's hub (and the servers and service it started).
  remove  stop it and delete the class: its accounts (userdel -r), files, sudo rule, command.

Where things are (defaults; docs/instructors.md, "A class on JupyterHub", explains them):
  /opt/backprop-lab/env, /opt/backprop-lab/proxy   course environment, proxy (root, 0755)
  /srv/backprop-lab/hub.json                       this class's settings (written by `up`)
  /srv/backprop-lab/course                         the instructors' course directory (grader, 0700)
  /srv/backprop-lab/code                           nbgrader config and grading/ that root runs
  /srv/backprop-lab/exchange                       nbgrader's exchange (root, 1777)
  /srv/backprop-lab/etc/jupyter                    the students' nbgrader_config.py
  /srv/backprop-lab/hub                            hub state, jupyterhub.log, pid file (root, 0700)
  /srv/backprop-lab/initial-passwords.csv          generated passwords of new accounts (root, 0600)
  /srv/backprop-lab/course-secret                  the course secret of the hidden tests (root, 0600)
  /usr/local/sbin/backprop-autograde               the root command; /etc/sudoers.d/backprop-autograde
"""
import argparse
import csv
import grp
import hashlib
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

HUB_DIR = Path(__file__).resolve().parent
REPO = HUB_DIR.parent
COURSE_ID = "backprop-lab"
PROXY_PACKAGE = "configurable-http-proxy@5"  # npm, major version pinned
ACCOUNT_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
ROLES = ("student", "instructor")
# nbgrader's lab extensions and server extensions that students must not get (the course-list
# needs formgrader's service API; create-assignment edits nbgrader metadata).
STUDENT_HIDDEN_LAB = ["@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment",
                      "@jupyter/nbgrader:course-list"]
STUDENT_HIDDEN_SERVER = ["nbgrader.server_extensions.formgrader",
                         "nbgrader.server_extensions.course_list"]
# No language servers are installed: jupyter_lsp's search for them only slows every start.
UNUSED_SERVER = ["jupyter_lsp"]


class SetupError(Exception):
    """What stops the set-up, said in one message."""


def run(command, **kwargs):
    kwargs.setdefault("check", True)
    try:
        return subprocess.run(command, **kwargs)
    except subprocess.CalledProcessError as failed:
        output = (failed.stderr or failed.stdout or "")
        output = output.decode() if isinstance(output, bytes) else output
        raise SetupError(f"`{' '.join(map(str, command))}` failed (exit {failed.returncode})"
                         + (f":\n{output.strip()[-2000:]}" if output.strip() else "")) from None


# -- the course environment --------------------------------------------------------------------
def env_fingerprint():
    digest = hashlib.sha256(PROXY_PACKAGE.encode())
    files = [HUB_DIR / "requirements.txt", REPO / "pyproject.toml",
             *sorted((REPO / "lib").rglob("*.py"))]
    for path in files:
        digest.update(str(path.relative_to(REPO)).encode() + path.read_bytes())
    return digest.hexdigest()


def build_env(prefix):
    """PREFIX/env and PREFIX/proxy, rebuilt only when hub/requirements.txt, the library or the
    proxy's version changed."""
    prefix = Path(prefix)
    env, proxy = prefix / "env", prefix / "proxy"
    stamp, fingerprint = env / ".backprop-lab-env", env_fingerprint()
    if stamp.is_file() and stamp.read_text().strip() == fingerprint and proxy_command(prefix):
        write_student_jupyter_config(env)
        print(f"course environment up to date: {env}")
        return
    if shutil.which("npm") is None:
        raise SetupError("npm is missing (configurable-http-proxy comes from npm): "
                         "apt-get install npm")
    os.umask(0o022)  # every account reads and runs the environment
    prefix.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    if not (env / "bin" / "python").exists():
        print(f"creating {env} from /usr/bin/python3")
        run(["/usr/bin/python3", "-m", "venv", str(env)])
    pip = [str(env / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    print("installing JupyterHub, JupyterLab, nbgrader and the library (pip)")
    with tempfile.TemporaryDirectory() as source:
        # The library's package only, so that pip's build leaves nothing in the clone.
        for name in ("pyproject.toml", "README.md", "LICENSE"):
            shutil.copy2(REPO / name, Path(source) / name)
        shutil.copytree(REPO / "lib", Path(source) / "lib",
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        run(pip + ["-r", str(HUB_DIR / "requirements.txt"), source])
        run(pip + ["--no-deps", "--force-reinstall", source])  # the library as it is now
    print(f"installing {PROXY_PACKAGE} (npm)")
    proxy.mkdir(exist_ok=True)
    run(["npm", "install", "--prefix", str(proxy), "--no-audit", "--no-fund", "--silent",
         PROXY_PACKAGE], stdout=subprocess.DEVNULL)
    write_student_jupyter_config(env)
    stamp.write_text(fingerprint + "\n")
    print(f"course environment ready in {time.monotonic() - started:.0f} s: {env}")


def proxy_command(prefix):
    path = Path(prefix) / "proxy" / "node_modules" / ".bin" / "configurable-http-proxy"
    return str(path) if path.exists() else None


def write_student_jupyter_config(env):
    """Every JupyterLab of the environment is a student's: nbgrader's Assignments tab and
    Validate, no formgrader, Create Assignment or course list (JupyterLab's page_config and
    jupyter_server's config, both read from the environment's etc/jupyter). The formgrader
    service turns them back on in its own, higher-priority, configuration folder."""
    etc = Path(env) / "etc" / "jupyter"
    (etc / "labconfig").mkdir(parents=True, exist_ok=True)
    (etc / "jupyter_server_config.d").mkdir(parents=True, exist_ok=True)
    write_json(etc / "labconfig" / "page_config.json",
               {"disabledExtensions": {name: True for name in STUDENT_HIDDEN_LAB}})
    # conf.d files are read in name order: this one after nbgrader's own nbgrader.json.
    # JupyterLab's own settings for every user: no question about fetching Jupyter news.
    settings = Path(env) / "share" / "jupyter" / "lab" / "settings"
    settings.mkdir(parents=True, exist_ok=True)
    write_json(settings / "overrides.json",
               {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false"}})
    # No extension manager (nobody installs extensions into the shared environment; it runs
    # yarn at start), no update or news checks (no calls out of the machine).
    write_json(etc / "jupyter_server_config.d" / "zz-backprop-lab-student.json",
               {"ServerApp": {"jpserver_extensions": {
                   n: False for n in STUDENT_HIDDEN_SERVER + UNUSED_SERVER}},
                "LabApp": {"extension_manager": "readonly", "news_url": None,
                           "check_for_updates_class": "jupyterlab.NeverCheckForUpdate"}})


def write_json(path, data, mode=0o644):
    Path(path).write_text(json.dumps(data, indent=2) + "\n")
    os.chmod(path, mode)


# -- the roster ---------------------------------------------------------------------------------
def read_roster(path, groups):
    """[{id, first_name, last_name, email, role}], or SetupError naming every bad row, one
    line each."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
            header = rows[0].keys() if rows else []
    except FileNotFoundError:
        raise SetupError(f"roster {path} not found (columns: id,first_name,last_name,email,role;"
                         " see hub/roster.example.csv)") from None
    missing = {"id", "role"} - set(header)
    if missing:
        raise SetupError(f"{path}: no column {', '.join(sorted(missing))} (columns: "
                         "id,first_name,last_name,email,role; see hub/roster.example.csv)")
    problems, people, seen = [], [], set()
    ours = set()
    for group in groups:
        try:
            ours.update(grp.getgrnam(group).gr_mem)
        except KeyError:
            pass
    for line, row in enumerate(rows, start=2):
        who = (row.get("id") or "").strip()
        role = (row.get("role") or "").strip().lower()
        problem = None
        if not ACCOUNT_NAME.fullmatch(who):
            problem = (f"id {who!r} is not an account name (lower-case letters, digits, _ and -, "
                       "first a letter or _, at most 32)")
        elif role not in ROLES:
            problem = f"role {role!r} of {who} is neither student nor instructor"
        elif who in seen:
            problem = f"{who} is listed twice"
        elif account_exists(who) and who not in ours:
            problem = (f"an account {who} exists on this machine and is not one of this class "
                       f"(not in {' or '.join(groups)}): choose another id")
        if problem:
            problems.append(f"{path} line {line}: {problem}")
            continue
        seen.add(who)
        people.append({"id": who, "role": role,
                       **{k: (row.get(k) or "").strip() for k in
                          ("first_name", "last_name", "email")}})
    if problems:
        raise SetupError("the roster has rows that cannot become accounts (nothing was changed):\n"
                         + "\n".join(problems))
    if not people:
        raise SetupError(f"{path} lists nobody")
    return people


def account_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def ensure_group(name):
    if not group_exists(name):
        run(["groupadd", name])


def group_exists(name):
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def ensure_accounts(people, settings):
    """useradd for new roster rows (home 0700, a generated password, recorded for root only);
    existing ones keep their password and files."""
    passwords = Path(settings["root"]) / "initial-passwords.csv"
    new = []
    for person in people:
        group = settings["groups"][person["role"]]
        name = person["id"]
        if not account_exists(name):
            comment = " ".join(filter(None, (person["first_name"], person["last_name"])))
            run(["useradd", "--create-home", "--shell", "/bin/bash", "--groups", group,
                 "--comment", comment.replace(":", " ") or name, name])
            new.append((name, secrets.token_urlsafe(9)))
        else:
            run(["usermod", "--append", "--groups", group, name])
        os.chmod(pwd.getpwnam(name).pw_dir, 0o700)
    if new:
        run(["chpasswd"], input="".join(f"{n}:{p}\n" for n, p in new), text=True)
        fresh = not passwords.exists()
        with open(os.open(passwords, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "a") as out:
            if fresh:
                out.write("id,initial_password\n")
            out.writelines(f"{n},{p}\n" for n, p in new)
        os.chmod(passwords, 0o600)
        print(f"{len(new)} new account(s); their initial passwords: {passwords} (root only)")


def ensure_grader(settings):
    name = settings["grader"]
    if not account_exists(name):
        run(["useradd", "--system", "--create-home", "--home-dir", f"/home/{name}",
             "--shell", "/usr/sbin/nologin", "--comment", f"nbgrader {COURSE_ID}", name])
    os.chmod(pwd.getpwnam(name).pw_dir, 0o700)
    return pwd.getpwnam(name)


# -- the class's folders ------------------------------------------------------------------------
def make_dir(path, mode, owner=None):
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if path.is_symlink():
        raise SetupError(f"{path} is a symbolic link; the class's folders must be real ones")
    if owner is not None:
        os.chown(path, owner.pw_uid, owner.pw_gid)
    os.chmod(path, mode)


def chown_tree(path, owner):
    for folder, folders, files in os.walk(path):
        for name in [folder, *(os.path.join(folder, n) for n in folders + files)]:
            os.lchown(name, owner.pw_uid, owner.pw_gid)


def install_code(settings, grader):
    """{root}/code: the repository's nbgrader_config.py and grading/, and the class's config on
    top of them; owned by root, readable by the grader: what the root autograde command runs
    must not be writable by the account that asks for it."""
    code = Path(settings["code"])
    make_dir(code, 0o750)
    os.chown(code, 0, grader.pw_gid)
    shutil.rmtree(code / "grading", ignore_errors=True)
    shutil.copytree(REPO / "grading", code / "grading",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(REPO / "nbgrader_config.py", code / "backprop_nbgrader_config.py")
    shutil.copy2(HUB_DIR / "course_nbgrader_config.py", code / "nbgrader_config.py")
    # The repository's config creates this folder; here it must exist already (root-owned).
    make_dir(code / ".nbgrader" / "exchange", 0o755)
    for folder, folders, files in os.walk(code):
        for name in folders:
            os.chmod(os.path.join(folder, name), 0o755)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o644)


def install_course_secret(settings):
    """{root}/course-secret: the class's course secret (root, 0600), from which autograding
    draws the hidden tests' inputs (docs/instructors.md, "The course secret"); made once and
    kept on re-runs, so a regrade draws what the first grading drew."""
    path = Path(settings["root"]) / "course-secret"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32) + "\n")
    os.chown(path, 0, 0)
    os.chmod(path, 0o600)


def install_course(settings, grader, people, labs):
    """{root}/course, the grader's: solutions/ (labs not there yet are copied from the
    repository; ones already there are the instructors' and stay), their release generated
    with nbgrader, the roster's students in the gradebook."""
    course = Path(settings["course"])
    make_dir(course, 0o700, grader)
    make_dir(course / "solutions", 0o755, grader)
    make_dir(course / ".nbgrader", 0o700, grader)  # the gradebook
    config = course / "nbgrader_config.py"
    config.write_text(
        '"""The class\'s nbgrader configuration (hub/course_nbgrader_config.py), kept with the\n'
        'grading code where the grader account cannot change what root runs."""\n'
        "c = get_config()  # noqa: F821\n"
        f'load_subconfig("{settings["code"]}/nbgrader_config.py")  # noqa: F821\n')
    os.chown(config, grader.pw_uid, grader.pw_gid)
    added = []
    for lab in labs:
        target = course / "solutions" / lab
        if not target.exists():
            shutil.copytree(REPO / "solutions" / lab, target,
                            ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
            chown_tree(target, grader)
        if not (course / "labs" / lab).exists():  # its student version and gradebook entry
            as_grader(settings, ["nbgrader", "generate_assignment", lab, "--force"])
            added.append(lab)
    students = course / ".roster-students.csv"
    with open(students, "w", newline="") as out:
        writer = csv.DictWriter(out, ["id", "first_name", "last_name", "email"])
        writer.writeheader()
        writer.writerows({k: p[k] for k in writer.fieldnames}
                         for p in people if p["role"] == "student")
    os.chown(students, grader.pw_uid, grader.pw_gid)
    as_grader(settings, ["nbgrader", "db", "student", "import", students.name])
    return added


def grader_env(settings):
    grader = pwd.getpwnam(settings["grader"])
    return {"PATH": f"{settings['env']}/bin:/usr/bin:/bin", "HOME": grader.pw_dir,
            "USER": grader.pw_name, "LANG": "C.UTF-8", "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1"}


def as_grader(settings, command):
    run(["runuser", "-u", settings["grader"], "--", "env", "-i",
         *(f"{k}={v}" for k, v in grader_env(settings).items()),
         f"{settings['env']}/bin/{command[0]}", *command[1:]],
        cwd=settings["course"], capture_output=True, text=True)


def install_exchange(settings, grader):
    """nbgrader's exchange, as its release and submit make it (nbgrader/exchange/default):
    the root 0777 (here root-owned with the sticky bit, so nobody removes another's entries),
    the course's folder 0755, outbound 0755, inbound 2733 (anyone drops a submission in, nobody
    lists it), feedback 0711 (files reachable only by their hashed names). Created here, owned
    by the grader, so that no student can claim the course's name before the first release."""
    exchange = Path(settings["exchange"])
    make_dir(exchange, 0o1777)
    os.chown(exchange, 0, 0)
    course = exchange / COURSE_ID
    make_dir(course, 0o755, grader)
    make_dir(course / "outbound", 0o755, grader)
    make_dir(course / "inbound", 0o2733, grader)
    make_dir(course / "feedback", 0o711, grader)


def install_jupyter_configs(settings):
    """The students' nbgrader_config.py ({root}/etc/jupyter, on JUPYTER_CONFIG_PATH of every
    server the hub spawns) and the formgrader service's own Jupyter configuration folder."""
    etc = Path(settings["student_config"])
    make_dir(etc.parent, 0o755)
    make_dir(etc, 0o755)
    (etc / "nbgrader_config.py").write_text(
        '"""nbgrader for the students of this class hub (written by hub/setup.py)."""\n'
        "c = get_config()  # noqa: F821\n"
        f'c.CourseDirectory.course_id = "{COURSE_ID}"\n'
        f'c.Exchange.root = "{settings["exchange"]}"\n'
        "# The courses a user sees are those of their hub groups (nbgrader-<course>).\n"
        'c.Authenticator.plugin_class = "nbgrader.auth.JupyterHubAuthPlugin"\n')
    os.chmod(etc / "nbgrader_config.py", 0o644)
    grader_etc = Path(settings["grader_config"])  # the grader's own server's (Jupyter writes)
    grader = pwd.getpwnam(settings["grader"])
    make_dir(grader_etc, 0o755, grader)
    make_dir(grader_etc / "labconfig", 0o755, grader)
    # Terminals run bash: the grader account's login shell is nologin.
    write_json(grader_etc / "jupyter_server_config.json",
               {"ServerApp": {"jpserver_extensions": {n: True for n in STUDENT_HIDDEN_SERVER},
                              "terminado_settings": {"shell_command": ["/bin/bash"]}}})
    write_json(grader_etc / "labconfig" / "page_config.json",
               {"disabledExtensions": {name: False for name in STUDENT_HIDDEN_LAB}})


def install_autograde_command(settings):
    """The root command the formgrader's Autograde goes through, and the one sudo rule that
    lets the grader account (only) run it."""
    if shutil.which("visudo") is None:
        print("installing sudo (apt-get)")
        run(["apt-get", "install", "-y", "-qq", "sudo"], stdout=subprocess.DEVNULL)
    command = Path(settings["autograde_command"])
    source = (HUB_DIR / "autograde.py").read_text()
    command.write_text(f"#!{settings['env']}/bin/python3 -I\n"
                       f'SETTINGS = "{settings["root"]}/hub.json"\n' + source)
    os.chown(command, 0, 0)
    os.chmod(command, 0o755)
    rule = (f"# written by Backprop Lab's hub/setup.py: the formgrader service of {COURSE_ID}\n"
            f"# asks for sandboxed autograding (which needs root) through this command only.\n"
            f"{settings['grader']} ALL=(root) NOPASSWD: {command}\n")
    sudoers = Path(settings["sudoers"])
    with tempfile.NamedTemporaryFile("w", dir="/etc/sudoers.d", prefix=".backprop-",
                                     delete=False) as draft:
        draft.write(rule)
    os.chmod(draft.name, 0o440)
    check = subprocess.run(["visudo", "-c", "-q", "-f", draft.name], capture_output=True,
                           text=True)
    if check.returncode != 0:
        os.unlink(draft.name)
        raise SetupError(f"visudo rejected the sudo rule: {check.stdout}{check.stderr}")
    os.replace(draft.name, sudoers)


# -- settings, start and stop -------------------------------------------------------------------
def free_port(ip="127.0.0.1"):
    with socket.socket() as sock:
        sock.bind((ip, 0))
        return sock.getsockname()[1]


def class_settings(args):
    root = str(Path(args.root).resolve())
    name = args.name
    return {
        "name": name, "course_id": COURSE_ID, "root": root, "prefix": args.prefix,
        "env": f"{args.prefix}/env", "proxy": proxy_command(args.prefix),
        "ip": args.ip, "port": args.port,
        "hub_port": free_port(), "proxy_api_port": free_port(), "service_port": free_port(),
        "grader": args.grader,
        "groups": {"student": f"{name}-students", "instructor": f"{name}-instructors"},
        "course": f"{root}/course", "code": f"{root}/code", "exchange": f"{root}/exchange",
        "student_config": f"{root}/etc/jupyter", "grader_config": f"{root}/grader-jupyter",
        "state": f"{root}/hub", "log": f"{root}/hub/jupyterhub.log",
        "autograde_command": f"/usr/local/sbin/{name}-autograde",
        "sudoers": f"/etc/sudoers.d/{name}-autograde",
    }


def load_settings(root):
    path = Path(root) / "hub.json"
    if not path.is_file():
        raise SetupError(f"no class hub set up at {root} ({path} missing)")
    return json.loads(path.read_text())


def hub_pid(settings):
    """The hub's process id while it runs (a zombie, which nobody may reap here, is not)."""
    try:
        pid = int((Path(settings["state"]) / "jupyterhub.pid").read_text())
        with open(f"/proc/{pid}/stat") as status:
            return None if status.read().rsplit(")", 1)[1].split()[0] == "Z" else pid
    except (OSError, ValueError, IndexError):
        return None


def start_hub(settings):
    """Start JupyterHub in the background; its login page's URL once it answers."""
    state = Path(settings["state"])
    shutil.copy2(HUB_DIR / "jupyterhub_config.py", state / "jupyterhub_config.py")
    command = [f"{settings['env']}/bin/jupyterhub", "-f", str(state / "jupyterhub_config.py")]
    write_unit_file(settings, command)
    with open(settings["log"], "ab") as log:
        process = subprocess.Popen(command, cwd=state, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True,
                                   env={"PATH": f"{settings['env']}/bin:/usr/bin:/bin",
                                        "LANG": "C.UTF-8", "HOME": "/root"})
    (state / "jupyterhub.pid").write_text(f"{process.pid}\n")
    url = f"http://{settings['ip'] or '127.0.0.1'}:{settings['port']}/hub/login"
    deadline = time.monotonic() + 240  # the formgrader service may take 120 s on a busy machine
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stop_leftovers(settings)
            raise SetupError(f"JupyterHub exited ({process.returncode}); the end of its log "
                             f"{settings['log']}:\n{tail(settings['log'])}")
        try:
            with urllib.request.urlopen(url, timeout=3):
                return url
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    raise SetupError(f"JupyterHub did not answer at {url} within 240 s; see {settings['log']}")


def write_unit_file(settings, command):
    """A systemd unit for the class's hub, for machines that run systemd (start at boot with
    `systemctl enable --now`); `make hub` itself starts the hub directly."""
    unit = Path(settings["state"]) / f"{settings['name']}-hub.service"
    unit.write_text(
        "[Unit]\n"
        f"Description=Backprop Lab class hub ({settings['root']})\n"
        "After=network.target\n\n"
        "[Service]\n"
        f"WorkingDirectory={settings['state']}\n"
        f"Environment=PATH={settings['env']}/bin:/usr/bin:/bin LANG=C.UTF-8\n"
        f"ExecStart={' '.join(command)}\n"
        "KillMode=mixed\nRestart=on-failure\n\n"
        "[Install]\nWantedBy=multi-user.target\n")


def tail(path, chars=3000):
    try:
        return Path(path).read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


def stop_leftovers(settings):
    """What a hub that died leaves running: its proxy (pid file) and the processes of the
    class's accounts (the formgrader service, servers: all started in sessions of their own)."""
    try:
        os.kill(int((Path(settings["state"]) / "jupyterhub-proxy.pid").read_text()),
                signal.SIGTERM)
    except (OSError, ValueError):
        pass
    names = [*settings.get("people", []), settings["grader"]]
    kill_processes_of({pwd.getpwnam(n).pw_uid for n in names if account_exists(n)})


def stop_hub(settings, quiet=False):
    pid = hub_pid(settings)
    if pid is None:
        if not quiet:
            print(f"no hub running for {settings['root']}")
        return
    os.kill(pid, signal.SIGTERM)  # JupyterHub stops the servers, the service and the proxy
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and hub_pid(settings):
        time.sleep(0.2)
    if hub_pid(settings):
        os.killpg(pid, signal.SIGKILL)
    stop_leftovers(settings)
    print(f"hub of {settings['root']} stopped")


def processes_of(uids):
    """Live processes (zombies aside) of the user ids `uids`."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as status:
                    state = status.read().rsplit(")", 1)[1].split()[0]
                if os.stat(f"/proc/{entry}").st_uid in uids and state != "Z":
                    found.append(int(entry))
            except (OSError, IndexError):
                pass
    return found


def kill_processes_of(uids):
    deadline = time.monotonic() + 10
    while (pids := processes_of(uids)) and time.monotonic() < deadline:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.2)


def remove_class(settings):
    stop_hub(settings, quiet=True)
    stop_leftovers(settings)
    names = [*settings.get("people", []), settings["grader"]]
    for name in names:
        if account_exists(name):
            run(["userdel", "--remove", name], capture_output=True)
    for group in settings["groups"].values():
        if group_exists(group):
            run(["groupdel", group])
    for path in (settings["autograde_command"], settings["sudoers"]):
        if os.path.lexists(path):
            os.unlink(path)
    shutil.rmtree(settings["root"], ignore_errors=True)
    print(f"class hub {settings['root']} removed: {len(names)} accounts, its files and sudo rule")


# -- commands -----------------------------------------------------------------------------------
def command_up(args):
    for tool in ("useradd", "runuser", "chpasswd", "bwrap"):
        if shutil.which(tool) is None:
            raise SetupError(f"`{tool}` is missing" + (
                ": apt-get install bubblewrap (the autograding sandbox)" if tool == "bwrap"
                else ""))
    build_env(args.prefix)
    started = time.monotonic()
    settings = class_settings(args)
    people = read_roster(args.roster, list(settings["groups"].values()))  # before any change
    previous = Path(settings["root"]) / "hub.json"
    if previous.is_file():
        stop_hub(json.loads(previous.read_text()), quiet=True)
    settings["people"] = [p["id"] for p in people]
    settings["students"] = [p["id"] for p in people if p["role"] == "student"]
    settings["instructors"] = [p["id"] for p in people if p["role"] == "instructor"]
    make_dir(settings["root"], 0o755)
    os.chown(settings["root"], 0, 0)
    make_dir(settings["state"], 0o700)
    for group in settings["groups"].values():
        ensure_group(group)
    ensure_accounts(people, settings)
    grader = ensure_grader(settings)
    write_json(previous, settings, 0o640)  # the roster's ids: for root and the grader only
    os.chown(previous, 0, grader.pw_gid)
    install_code(settings, grader)
    install_course_secret(settings)
    install_exchange(settings, grader)
    install_jupyter_configs(settings)
    install_autograde_command(settings)
    labs = args.labs or sorted(p.name for p in (REPO / "solutions").iterdir() if p.is_dir())
    added = install_course(settings, grader, people, labs)
    if added:
        print(f"course directory {settings['course']}: {len(added)} lab(s) generated")
    url = start_hub(settings)
    print(f"class hub up in {time.monotonic() - started:.0f} s: {url} "
          f"({len(settings['students'])} students, {len(settings['instructors'])} instructors)\n"
          f"log: {settings['log']}; stop: make hub-stop (or hub/setup.py stop --root "
          f"{settings['root']})")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["env", "up", "stop", "remove"])
    parser.add_argument("--prefix", default="/opt/backprop-lab",
                        help="where the course environment and the proxy are installed")
    parser.add_argument("--root", default="/srv/backprop-lab", help="the class's folder")
    parser.add_argument("--roster", default="roster.csv")
    parser.add_argument("--ip", default="", help="address the hub listens on ('' = all)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--name", default="backprop",
                        help="prefix of the class's groups, command and sudo rule")
    parser.add_argument("--grader", default=f"grader-{COURSE_ID}",
                        help="the account that owns the course directory and runs formgrader")
    parser.add_argument("--labs", nargs="*", help="labs to put in the course (default: all)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("hub/setup.py must run as root (it creates accounts and a system-wide "
              "environment): sudo make hub", file=sys.stderr)
        return 2
    if args.name and not ACCOUNT_NAME.fullmatch(args.name):
        print(f"--name {args.name!r} must look like an account name", file=sys.stderr)
        return 2
    try:
        if args.command == "env":
            build_env(args.prefix)
        elif args.command == "up":
            command_up(args)
        elif args.command == "stop":
            stop_hub(load_settings(args.root))
        else:
            remove_class(load_settings(args.root))
    except SetupError as problem:
        print(f"hub/setup.py {args.command}: {problem}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
