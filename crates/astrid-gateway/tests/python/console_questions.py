"""Answers capsules' questions in the gateway's web console, in headless Chromium (Playwright).

Environment: BASE_URL (the gateway), TOKEN (a device token), SECRET (the credential to type when
a question asks for one), CHROMIUM (the browser binary). The Rust test
(crates/astrid-daemon/tests/gateway_questions.rs) asks four questions one after another: a
text question (answered "release-7"), a choice (the second option), a credential (SECRET), and
a text question asking to be declined. Prints one JSON object of what the page showed.
"""

import json
import os

from playwright.sync_api import expect, sync_playwright

from console_page import open_console

BASE = os.environ["BASE_URL"]
TOKEN = os.environ["TOKEN"]
SECRET = os.environ["SECRET"]
TIMEOUT_MS = 120_000


def main() -> None:
    seen = {"prompts": []}
    with sync_playwright() as p:
        browser, page = open_console(p, seen, BASE, TIMEOUT_MS)
        page.fill("#token", TOKEN)
        page.click("#signin button[type=submit]")
        page.wait_for_selector("#app", state="visible")

        for _ in range(4):
            box = page.wait_for_selector("form.question:not(.seen)")
            box.evaluate("b => b.classList.add('seen')")
            text = box.inner_text()
            seen["prompts"].append(text)
            if box.query_selector("input[type=radio]"):
                box.query_selector_all("input[type=radio]")[1].check()
                box.query_selector("button[type=submit]").click()
            elif "Please decline" in text:
                box.query_selector("button:text('Decline')").click()
            elif box.query_selector("input[type=password]"):
                field = box.query_selector("input[type=password]")
                seen["secret_input_type"] = field.get_attribute("type")
                seen["secret_note"] = text
                field.fill(SECRET)
                box.query_selector("button[type=submit]").click()
            else:
                seen["img_elements_in_questions"] = len(box.query_selector_all("img"))
                box.query_selector("input[type=text]").fill("release-7")
                box.query_selector("button[type=submit]").click()
            # The form is replaced by what was answered once the gateway took it. (Locator
            # expectations: a predicate string would need `eval`, which the console's
            # Content-Security-Policy forbids.)
            expect(page.locator("form.question.seen button")).to_have_count(0, timeout=TIMEOUT_MS)

        seen["after"] = page.eval_on_selector_all("form.question", "fs => fs.map(f => f.innerText)")
        seen["secret_on_page"] = SECRET in page.content()
        seen["injected_flag"] = page.evaluate("window.__pwned === undefined ? null : window.__pwned")
        browser.close()
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
