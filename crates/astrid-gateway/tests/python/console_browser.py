"""Drives the gateway's web console in headless Chromium (Playwright, PyPI) as a person would.

Environment: BASE_URL (the gateway), TOKEN (a device token), FILE (the file the scripted model
reads, which needs an approval), ELSEWHERE (the answer of a second turn sent past the page),
CHROMIUM (the browser binary). Prints one JSON object of what
the page showed; the Rust test (crates/astrid-daemon/tests/gateway_console.rs) judges it.
"""

import json
import os
import re
import sys
import urllib.request

from playwright.sync_api import expect, sync_playwright

from console_page import open_console

BASE = os.environ["BASE_URL"]
TOKEN = os.environ["TOKEN"]
ELSEWHERE = os.environ["ELSEWHERE"]
FILE = os.environ["FILE"]
TIMEOUT_MS = 60_000


def api(path: str, body=None):
    """The gateway's API as another client of the same principal (a second device, the CLI)."""
    req = urllib.request.Request(
        BASE + path,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"},
        method="GET" if body is None else "POST",
    )
    with urllib.request.urlopen(req, timeout=TIMEOUT_MS / 1000) as resp:
        return resp.read().decode()


def main() -> None:
    seen = {"console_errors": [], "dialogs": []}
    with sync_playwright() as p:
        browser, page = open_console(p, seen, BASE, TIMEOUT_MS)

        # A wrong token is refused where the person typed it.
        page.fill("#token", "astrid-device.default.0000.not-a-secret")
        page.click("#signin button[type=submit]")
        # Locator expectations, not `wait_for_function`: a predicate string would need `eval`,
        # which the console's Content-Security-Policy forbids (as it should).
        expect(page.locator("#signin-error")).not_to_have_text("", timeout=TIMEOUT_MS)
        seen["bad_token_error"] = page.text_content("#signin-error")
        seen["app_hidden_after_bad_token"] = page.is_hidden("#app")

        page.fill("#token", TOKEN)
        page.click("#signin button[type=submit]")
        page.wait_for_selector("#app", state="visible")
        seen["who"] = page.text_content("#who")

        page.fill("#input", "What does heron.txt say?")
        page.click("#send button[type=submit]")
        # tool-fs asks for the file twice (stat, then read): each approval is shown with the
        # kernel's rendering and answered with a click.
        approvals = []
        for _ in range(2):
            box = page.wait_for_selector(".approval:not(.answered)")
            approvals.append(box.inner_text())
            box.evaluate("b => b.classList.add('answered')")
            box.query_selector("button:text('Allow once')").click()
        seen["approvals"] = approvals
        expect(page.locator("#status")).to_have_text(re.compile(r"^done"), timeout=TIMEOUT_MS)
        seen["status"] = page.text_content("#status")
        seen["assistant_texts"] = page.eval_on_selector_all(
            "#messages li.assistant", "els => els.map(e => e.textContent)"
        )
        seen["tool_lines"] = page.eval_on_selector_all(
            "#messages li.tool", "els => els.map(e => e.textContent)"
        )
        seen["img_elements_in_messages"] = page.eval_on_selector_all(
            "#messages img", "els => els.length"
        )
        seen["injected_flag"] = page.evaluate("window.__pwned === undefined ? null : window.__pwned")

        # A turn on the same thread sent from elsewhere: the open tab says so when it ends and
        # shows its answer. Its own turn, whose last events the live feed may deliver after the
        # turn's stream ended, is not mistaken for one.
        thread = json.loads(api("/v1/threads"))["threads"][0]["id"]
        seen["elsewhere_stream"] = api(f"/v1/threads/{thread}/turns", {"input": "And elsewhere?"})
        expect(page.locator("#status")).to_have_text("a turn elsewhere ended", timeout=TIMEOUT_MS)
        expect(page.locator("#messages")).to_contain_text(ELSEWHERE, timeout=TIMEOUT_MS)
        seen["status_after_elsewhere"] = page.text_content("#status")

        # The thread is listed and found by search.
        page.wait_for_selector("#threads li")
        seen["threads"] = page.eval_on_selector_all(
            "#threads li", "els => els.map(e => e.textContent)"
        )
        page.fill("#q", "heron")
        page.click("#search button[type=submit]")
        page.wait_for_selector("#hits li")
        seen["hits"] = page.eval_on_selector_all("#hits li", "els => els.map(e => e.textContent)")

        # The "Agent & audit" view: capsules with their tools, the model (another one chosen
        # from the provider's live list), the audit chain with the approvals just given, and
        # its verification.
        page.click("#show-account")
        page.wait_for_selector("#capsules li")
        seen["chat_hidden_in_account"] = page.is_hidden("#app")
        seen["capsules"] = page.eval_on_selector_all(
            "#capsules li", "els => els.map(e => e.textContent)"
        )
        expect(page.locator("#model-pick option")).not_to_have_count(0, timeout=TIMEOUT_MS)
        seen["model_before"] = page.text_content("#model-current")
        page.select_option("#model-pick", "claude-sonnet-4-5")
        page.click("#model-form button[type=submit]")
        expect(page.locator("#model-current")).to_contain_text("chosen here", timeout=TIMEOUT_MS)
        seen["model_after"] = page.text_content("#model-current")
        seen["model_api"] = json.loads(api("/v1/model"))
        page.click("#model-reset")
        expect(page.locator("#model-current")).to_contain_text("operator", timeout=TIMEOUT_MS)
        page.wait_for_selector("#audit-rows tr")
        while page.is_enabled("#audit-more"):
            rows = page.locator("#audit-rows tr").count()
            page.click("#audit-more")
            expect(page.locator("#audit-rows tr")).not_to_have_count(rows, timeout=TIMEOUT_MS)
        seen["audit_rows"] = page.eval_on_selector_all(
            "#audit-rows tr", "els => els.map(e => e.textContent)"
        )
        page.click("#audit-verify")
        expect(page.locator("#audit-verdict")).not_to_have_text("", timeout=TIMEOUT_MS)
        seen["audit_verdict"] = page.text_content("#audit-verdict")
        page.click("#show-chat")
        page.wait_for_selector("#app", state="visible")

        # A reload keeps the tab signed in (sessionStorage); signing out forgets the token.
        page.reload()
        page.wait_for_selector("#app", state="visible")
        seen["signed_in_after_reload"] = page.is_visible("#app")
        page.click("#signout")
        page.wait_for_selector("#signin", state="visible")
        seen["token_after_signout"] = page.evaluate("sessionStorage.getItem('astrid-token')")
        browser.close()
    json.dump(seen, sys.stdout)


if __name__ == "__main__":
    main()
