"""The grading sandbox's parts, each alone and fast (the grading pipeline test runs them all
together on a whole class): the output cap, the private copy of a submission, and a kernel's
confinement."""
import asyncio
import os
import shutil
import subprocess
import sys

import nbformat
import pytest

from notebooks import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT))
from grading.preprocessors import LimitOutputBytes  # noqa: E402
from grading.sandbox import SandboxedKernelManager, sandbox_problem  # noqa: E402


def test_one_huge_line_is_cut_to_the_byte_limit():
    cell = nbformat.v4.new_code_cell("print('x' * 30_000_000)")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="x" * 30_000_000)]
    cut, _ = LimitOutputBytes(max_bytes=1000).preprocess_cell(cell, {}, 0)
    assert 1000 <= len(cut.outputs[0].text) < 1200
    assert "output cut" in cut.outputs[0].text


def test_the_private_copy_leaves_out_notebooks_and_what_were_links(tmp_path):
    submitted = tmp_path / "submitted" / "ada" / "lab"
    graded = tmp_path / "autograded" / "ada" / "lab"
    for folder in (submitted, graded):
        folder.mkdir(parents=True)
        (folder / "lab.ipynb").write_text("{}")
        (folder / "data.csv").write_text("1,2")
    (tmp_path / "gradebook.db").write_text("secret")
    (submitted / "notes.txt").symlink_to(tmp_path / "gradebook.db")
    (graded / "notes.txt").write_text("secret")  # nbgrader's copy follows the link
    copy = SandboxedKernelManager._private_copy(str(graded))
    try:
        assert sorted(os.listdir(copy)) == ["data.csv"]
    finally:
        shutil.rmtree(os.path.dirname(copy))


async def _run_in_kernel(code):
    km = SandboxedKernelManager(kernel_name="python3")
    await km.start_kernel(cwd=str(REPO_ROOT))
    uid = km._uid
    kc = km.client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=60)
        reply = await kc.execute_interactive(code, timeout=60, output_hook=lambda msg: None)
    finally:
        kc.stop_channels()
        await km.shutdown_kernel(now=True)
    return reply, uid


@pytest.mark.skipif(bool(sandbox_problem()), reason=f"no sandbox here: {sandbox_problem()}")
def test_a_sandboxed_kernel_sees_no_repository_no_network_and_leaves_no_process():
    code = ("import os, socket, subprocess\n"
            "assert not os.path.exists('/work') or 'solutions' not in os.listdir("
            f"{str(REPO_ROOT)!r})\n"
            "try:\n"
            "    socket.create_connection(('127.0.0.1', 22), timeout=1)\n"
            "    raise AssertionError('reached the host')\n"
            "except OSError:\n"
            "    pass\n"
            "subprocess.Popen(['setsid', 'sleep', '300'])\n")
    reply, uid = asyncio.run(_run_in_kernel(code))
    assert reply["content"]["status"] == "ok", reply["content"]
    left = subprocess.run(["ps", "-o", "pid=", "-u", str(uid)], capture_output=True, text=True)
    assert not left.stdout.strip(), f"processes of the sandbox's user are left: {left.stdout}"
