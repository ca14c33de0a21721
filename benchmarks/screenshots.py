"""Screenshots of each app tab into docs/screenshots/ (and a README block), with Debian's chromium.

    python benchmarks/screenshots.py

Starts `python app.py` on a free local port, runs a comparison and an NFE sweep, opens the Train
tab, and saves compare.png, sweep.png and train.png.
"""

from __future__ import annotations

import shutil
import time

from app_process import ROOT, running_app

OUT = ROOT / "docs" / "screenshots"


def main() -> None:
    with running_app() as (_, url):
        from playwright.sync_api import expect, sync_playwright

        OUT.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run"])
            page = browser.new_page(viewport={"width": 1400, "height": 1150})
            page.goto(url)
            expect(page.locator("#load-status")).to_contain_text("rewards:", timeout=120_000)
            page.locator("#compare-button").click()
            expect(page.locator("#scores")).to_contain_text("Teacher @ 50", timeout=120_000)
            page.screenshot(path=str(OUT / "compare.png"), full_page=True)
            page.get_by_role("tab", name="NFE sweep").click()
            page.locator("#sweep-button").click()
            expect(page.locator("#sweep-scores")).to_contain_text("RATS @ 8", timeout=120_000)
            time.sleep(2)
            page.screenshot(path=str(OUT / "sweep.png"), full_page=True)
            page.get_by_role("tab", name="Train").click()
            expect(page.locator("#train-estimate")).to_contain_text("Estimated time", timeout=60_000)
            page.screenshot(path=str(OUT / "train.png"), full_page=True)
            browser.close()
    block = "\n".join(f"![{name} tab](docs/screenshots/{name}.png)" for name in ("compare", "sweep", "train"))
    (ROOT / "docs" / "results" / "screenshots.md").write_text(
        "Screenshots taken with `python benchmarks/screenshots.py`:\n\n" + block + "\n")
    print(f"saved to {OUT}")


if __name__ == "__main__":
    main()
