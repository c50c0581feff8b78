"""Headless Chromium for the tests that drive the course in a browser (tests/test_browser.py,
tests/test_hub.py): Debian's `chromium` package, driven by Playwright's Python package through
``executable_path`` (Playwright never downloads a browser here)."""
import contextlib
import shutil
import socket

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# The flags a headless Chromium needs on a machine without a network or a display: no sandbox
# (CI runs as root), no GPU, and none of its background connections to Google's services.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]
VALIDATE_SUCCESS = "Success! Your notebook passes all the tests."


@contextlib.contextmanager
def headless_chromium(timeout_ms):
    """A running headless Chromium (Playwright's Browser), closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=CHROMIUM_ARGS, timeout=timeout_ms)
        try:
            yield chromium
        finally:
            chromium.close()


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def press_validate(page, timeout_ms):
    """Press nbgrader's Validate button on the notebook on screen; the text of its dialog."""
    page.locator(".validate-button").get_by_text("Validate", exact=True).click()
    dialog = page.locator(".jp-Dialog")
    dialog.get_by_text("Validation Results").wait_for(timeout=timeout_ms)
    return dialog.locator(".jp-Dialog-body").inner_text().strip()
