"""The web console opened in headless Chromium, as the browser tests share it.

The page records what would betray injected script (dialogs) and the browser's console errors
into `seen`, the dict the test prints for the Rust side to judge.
"""

import os


def open_console(playwright, seen: dict, base: str, timeout_ms: int):
    """Launches CHROMIUM, opens the console at `base`; returns (browser, page)."""
    browser = playwright.chromium.launch(
        executable_path=os.environ["CHROMIUM"],
        args=["--no-sandbox", "--disable-background-networking"],
    )
    page = browser.new_page()
    page.set_default_timeout(timeout_ms)
    seen.setdefault("console_errors", [])
    seen.setdefault("dialogs", [])
    page.on(
        "console",
        lambda m: seen["console_errors"].append(m.text) if m.type == "error" else None,
    )
    # An injected script would most likely announce itself with a dialog.
    page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
    page.goto(base + "/")
    return browser, page
