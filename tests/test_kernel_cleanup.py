"""The grading kernel manager cleans up after a kernel that died on its own.

nbclient shuts a live kernel down (which cleans up), but for a kernel already dead (a student's
code that killed it) it only calls `cleanup_resources()`. AsyncKernelManager binds that name to
its base class's function, so the sandbox's own cleanup (the checker process, the sandbox user's
processes, its folders) must be reached from it too, or the checker outlives the kernel.
"""
import asyncio
import os
import signal
import sys
import time

import pytest

from notebooks import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT))
from grading.sandbox import SandboxedKernelManager  # noqa: E402


def _gone(process, seconds=10):
    deadline = time.monotonic() + seconds
    while process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    return process.poll() is not None


@pytest.mark.parametrize("how", ["died", "shut down"])
def test_the_checker_goes_with_its_kernel(how):
    async def run():
        manager = SandboxedKernelManager(sandbox=False)
        await manager.start_kernel(cwd=str(REPO_ROOT))
        checker = manager.checker.process
        assert checker.poll() is None, "the checker did not start with the kernel"
        if how == "died":
            os.kill(manager.provisioner.process.pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while await manager.is_alive() and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            assert not await manager.is_alive()
            await manager.cleanup_resources()  # all nbclient does for a dead kernel
        else:
            await manager.shutdown_kernel(now=True)
        return manager, checker

    manager, checker = asyncio.run(run())
    assert _gone(checker), f"the checker (pid {checker.pid}) outlived a kernel that {how}"
    assert manager.checker is None
