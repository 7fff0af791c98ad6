"""`escbot sandbox --demo` in a real browser: cards arrive, buttons, modals, threads and
`/agent` reach the bot's own listeners, and the page shows what the bot sent back."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from bot.sandbox.demo import OPERATOR, STRANGER
from tests.support.sandbox_browser import ARTIFACTS, SandboxProcess, browser_page, sandbox

__all__ = ["browser_page", "sandbox"]  # fixtures

DOCS_SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "images" / "sandbox.png"
WAIT = 60_000  # ms: demo agents start, then escalate (a loaded machine is slow)


def card(page: Page, text: str) -> Locator:
    return page.locator("#messages .msg", has_text=text).first


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


@pytest.mark.timeout(300)
def test_the_sandbox_in_a_browser(sandbox: SandboxProcess, browser_page: Page) -> None:
    page = browser_page
    page.goto(sandbox.url)
    page.select_option("#who", OPERATOR.user_id)
    expect(page.locator("#channel-title")).to_have_text("#triage")

    # A card arrives, is approved and changes in place.
    refund = card(page, "Approval needed: refund")
    expect(refund).to_be_visible(timeout=WAIT)
    shot(page, "01-card-arrived")
    refund.get_by_role("button", name="Approve", exact=True).click()
    expect(refund).to_contain_text("Approved by @olivia", timeout=WAIT)
    expect(refund.get_by_role("button", name="Reject")).to_have_count(0)
    shot(page, "02-approved")

    # Rejected with a comment through the modal; an empty comment is refused first.
    reply = card(page, "Approval needed: support-reply")
    expect(reply).to_be_visible(timeout=WAIT)
    reply.get_by_role("button", name="Reject", exact=True).click()
    modal = page.locator("#modal")
    expect(modal).to_be_visible(timeout=WAIT)
    modal.locator("#modal-submit").click()
    expect(modal.locator(".bk-error:not(:empty)")).to_have_count(1, timeout=WAIT)
    shot(page, "03-reject-modal-error")
    modal.locator("textarea").fill("Too vague: give the tracking number")
    modal.locator("#modal-submit").click()
    expect(modal).to_be_hidden(timeout=WAIT)
    expect(reply).to_contain_text("Rejected by @olivia", timeout=WAIT)
    expect(reply).to_contain_text("Too vague: give the tracking number")
    shot(page, "04-rejected")

    # A reply in the refund card's thread reaches the agent, which answers there.
    refund.locator(".thread-link").click()
    thread = page.locator("#thread")
    expect(thread).to_be_visible()
    page.fill("#thread-composer", "Please double-check the address")
    page.press("#thread-composer", "Enter")
    expect(thread.locator(".msg.person .reaction")).to_have_count(1, timeout=WAIT)
    expect(thread.locator(".msg.bot", has_text="Please double-check the address")).to_have_count(
        1, timeout=WAIT
    )
    shot(page, "05-thread")
    if os.environ.get("UPDATE_DOCS_SCREENSHOT"):
        shutil.copyfile(ARTIFACTS / "05-thread.png", DOCS_SCREENSHOT)
    page.click("#thread-close")

    # A button with a confirmation asks first; "Cancel" sends nothing.
    spike = card(page, "Exception: research")
    expect(spike).to_be_visible(timeout=WAIT)
    expect(spike).to_contain_text("cost-spike")
    spike.get_by_role("button", name="Terminate", exact=True).click()
    dialog = page.locator("#confirm")
    expect(dialog).to_be_visible()
    shot(page, "06-confirm")
    dialog.locator("#confirm-deny").click()
    expect(dialog).to_be_hidden()
    expect(spike.get_by_role("button", name="Terminate", exact=True)).to_be_enabled()

    # `/agent kill demo-1`: the announcement in the channel.
    page.fill("#composer", "/agent kill demo-1 demo over")
    page.press("#composer", "Enter")
    announcement = page.locator("#messages .msg.bot", has_text="demo-1 killed by @olivia")
    expect(announcement).to_be_visible(timeout=WAIT)
    expect(announcement).to_contain_text("demo over")
    shot(page, "07-killed")

    # A stranger is refused, and nothing changes.
    page.select_option("#who", STRANGER.user_id)
    page.fill("#composer", "/agent kill demo-2")
    page.press("#composer", "Enter")
    refusal = page.locator("#messages .msg.private", has_text="🚫")
    expect(refusal).to_be_visible(timeout=WAIT)
    expect(refusal).to_contain_text("Nothing was changed")
    expect(page.locator("#messages .msg", has_text="demo-2 killed")).to_have_count(0)
    shot(page, "08-stranger-refused")

    # Every block the bot sent in all of this was drawn (none shown as JSON).
    for channel in page.locator("#channel-list .channel").all():
        name = channel.inner_text().split()[1]
        channel.click()
        expect(page.locator("#channel-title")).to_have_text(f"#{name}")
        assert page.locator(".bk-unknown").count() == 0

    assert sandbox.stop() == 0, sandbox.log()  # Ctrl-C: a clean stop
