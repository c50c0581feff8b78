# Run by every sandboxed grading kernel before the notebook's first cell (IPKernelApp.exec_files;
# see grading/sandbox.py). Everything here is defined inside one function so that the notebook's
# namespace gets nothing but what IPython itself puts there.
def _grading_startup():
    import builtins
    import os
    import shutil
    import sys
    import threading

    import numpy
    import backprop
    import backprop.checks
    try:  # per-lab check modules, where the course has them: restored like checks
        import backprop.labchecks  # noqa: F401
    except ImportError:
        pass

    # The private copy of the student's folder becomes the working directory.
    source, work = "/run/submitted", "/submission"
    for name in os.listdir(source) if os.path.isdir(source) else []:
        here, there = os.path.join(source, name), os.path.join(work, name)
        if os.path.isdir(here):
            shutil.copytree(here, there)
        else:
            shutil.copyfile(here, there)
    os.chdir(work)

    ip = get_ipython()  # noqa: F821 (IPython's, in the namespace exec_files runs in)

    # An audit hook sees every compile() and open(), the hidden tests' source and file among
    # them, and cannot be removed once added: the first hook, this one, refuses any other.
    def refuse_audit_hooks(event, args):
        if event == "sys.addaudithook":
            raise RuntimeError("sys.addaudithook is not allowed while grading")
    sys.addaudithook(refuse_audit_hooks)
    # Taken now, before student code can replace them (os is not restored before a test).
    read_test, remove_test = builtins.open, os.remove

    # exit() / quit() in a cell would shut the kernel down and fail the whole submission;
    # sys.exit() already only stops its own cell. Both now stop their cell with an error.
    def refuse_exit(*args, **kwargs):
        raise SystemExit("exit() does nothing while grading: this cell stops, the next run")
    ip.ask_exit = refuse_exit

    # What a test cell must find as it was before any student code ran.
    modules = {name: module for name, module in sys.modules.items()
               if name == "numpy" or name == "backprop" or name.startswith("backprop.")}
    pristine = {name: dict(vars(module)) for name, module in modules.items()}
    pristine_builtins = dict(vars(builtins))
    hooks = {name: list(getattr(ip, name)) for name in
             ("input_transformers_cleanup", "input_transformers_post", "ast_transformers")}

    def restore():
        sys.settrace(None)
        sys.setprofile(None)
        threading.settrace(None)
        threading.setprofile(None)
        # Names replaced get their first value back; names added stay (NumPy adds its lazily
        # imported submodules to its namespace).
        for name, module in modules.items():
            sys.modules[name] = module
            vars(module).update(pristine[name])
        vars(builtins).update(pristine_builtins)
        for name, saved in hooks.items():
            getattr(ip, name)[:] = saved
        ip.CustomTB = None
        ip.custom_exceptions = ()

    def graded_test(path):
        """%graded_test FILE: run a test cell's code, which the grader put in FILE just now.
        The file is deleted before any student code can run, the code is compiled under a
        name with no source behind it (no linecache entry, no input history), so a function
        of the student's that the test calls cannot read the test's text."""
        path = path.strip()
        restore()  # first: builtins (open, compile) as they were before any student code
        with read_test(path, encoding="utf-8") as handle:
            code = compile(handle.read(), "<test cell>", "exec")
        remove_test(path)
        try:
            exec(code, ip.user_ns)
        finally:
            restore()

    ip.register_magic_function(graded_test, "line")

    # `%graded_test FILE` goes straight to the magic: an input transformer an answer cell
    # registered cannot blank or rewrite it.
    transform_cell = ip.transform_cell

    def transform_cell_unless_test(raw_cell):
        if raw_cell.startswith("%graded_test ") and "\n" not in raw_cell.strip():
            ip.ast_transformers[:] = hooks["ast_transformers"]  # applied after this
            return f"get_ipython().run_line_magic('graded_test', {raw_cell[13:].strip()!r})\n"
        return transform_cell(raw_cell)
    ip.transform_cell = transform_cell_unless_test

    # A cell still running one second after the grader's interrupt (code that ignores SIGINT
    # or swallows KeyboardInterrupt in a bare `except:`) is stopped by SIGALRM: it raises
    # KeyboardInterrupt in the notebook's own code every 50 ms until the cell ends, so that
    # one stuck cell costs only its own tests, not every cell after it.
    import signal
    limit = float(os.environ.get("BACKPROP_CELL_TIMEOUT") or 0)

    def in_notebook_code(frame):
        name = frame.f_code.co_filename if frame is not None else ""
        return name == "<test cell>" or name.startswith(("/tmp/ipykernel_", "<ipython-input"))

    def on_alarm(signum, frame):
        if in_notebook_code(frame):
            raise KeyboardInterrupt("the cell ran past the time limit and ignored the interrupt")

    def arm(*args):
        signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, limit + 1, 0.05)

    def disarm(*args):
        signal.setitimer(signal.ITIMER_REAL, 0)

    if limit > 0:
        ip.events.register("pre_run_cell", arm)
        ip.events.register("post_run_cell", disarm)


_grading_startup()
del _grading_startup
