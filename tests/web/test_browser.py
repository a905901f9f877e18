"""The web app in a real Chromium: what a person signs in to, clicks and reads."""

from __future__ import annotations

import csv
import io
import re
import secrets
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.web.conftest import (
    READ_ONLY_TOKEN,
    Site,
    SlowCsv,
    new_page,
    shoot,
    sign_in,
)

GOOD = "id,name\n1,Ada\n2,Grace\n"
#: Line 3's id is no integer, and would be a formula in a spreadsheet.
DIRTY = "id,name\n3,Alan\n=1+1,Eve\n4,Barbara\n"
SHOP = (
    '[columns]\nid = "integer"\n\n[sink]\nmode = "upsert"\nprimary_key = ["id"]\nmax_rejects = 5\n'
)


def has_table(site: Site, name: str) -> bool:
    row = site.db.conn.execute(
        "SELECT to_regclass(%s) IS NOT NULL", (f"{site.db.schema}.{name}",)
    ).fetchone()
    return bool(row and row[0])


def unused_job_name(site: Site, name: str) -> str:
    """``name``, or ``name`` with a suffix when the server's history (the machine's
    PostgreSQL keeps it between test runs) already has runs of a job so named."""
    row = site.db.conn.execute("SELECT to_regclass('csvpg.runs') IS NOT NULL").fetchone()
    if row and row[0]:
        taken = site.db.conn.execute("SELECT 1 FROM csvpg.runs WHERE job = %s", (name,))
        if taken.fetchone():
            return f"{name}-{secrets.token_hex(3)}"
    return name


@pytest.fixture(scope="module")
def shop(site: Site) -> str:
    name = unused_job_name(site, "shop")
    site.job(name, str(site.inbox), SHOP)
    site.job("broken", str(site.inbox), '[sink]\nmode = "apend"\n')
    return name


def test_sign_in_then_every_job_valid_or_not(browser: Any, site: Site, shop: str) -> None:
    page = new_page(browser, site)
    page.goto("/app/runs")
    assert "/app/sign-in" in page.url, "a page needs signing in first"
    shoot(page, "sign-in", full_page=False)
    page.fill("input[name=token]", "not-the-token")
    page.click("button:has-text('Sign in')")
    assert page.locator("[role=alert]").inner_text() == "That token is not this server's."
    sign_in(page)
    rows = page.locator("table.jobs tbody tr")
    assert rows.count() == 2
    broken = page.locator("tr", has_text="broken")
    assert "invalid" in broken.inner_text()
    assert "did you mean 'append'?" in broken.inner_text()
    assert "never run" in page.locator("tr", has_text=shop).inner_text()
    cookie = next(c for c in page.context.cookies() if c["name"] == "csvpg_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    shoot(page, "jobs")
    page.click("button:has-text('Sign out')")
    page.goto("/")
    assert "/app/sign-in" in page.url
    page.context.close()


def test_upload_two_files_run_and_read_the_rejects(
    operator: Any, site: Site, shop: str, tmp_path: Path
) -> None:
    page = operator
    (tmp_path / "good.csv").write_text(GOOD)
    (tmp_path / "dirty.csv").write_text(DIRTY)
    page.goto(f"/app/jobs/{shop}")
    page.set_input_files("#file-input", [str(tmp_path / "good.csv"), str(tmp_path / "dirty.csv")])
    page.wait_for_selector("#uploaded")
    assert page.locator(".uploads li.done").count() == 2
    assert sorted(p.name for p in site.inbox.iterdir()) == ["dirty.csv", "good.csv"]
    shoot(page, "job")

    page.click("#run")
    page.wait_for_url(re.compile(r"/app/runs/[0-9a-f]{32}$"))
    page.wait_for_selector("table.files", timeout=60_000)  # the live page gives way to it
    assert page.locator(".heading .status").first.inner_text() == "succeeded"
    files = page.locator("table.files").inner_text()
    assert "good.csv" in files and "dirty.csv" in files
    reject = page.locator("table.rejects tbody tr")
    assert reject.count() == 1
    cells = [c.strip() for c in reject.inner_text().split("\t")]
    assert cells[:4] == ["dirty.csv", "3", "id", "=1+1"]
    assert cells[-2:] == ["=1+1,Eve", "open"], "the line as the file has it; no replay yet"
    shoot(page, "run")

    with page.expect_download() as download:
        page.click("#rejects-csv")
    text = Path(download.value.path()).read_text(encoding="utf-8")
    (header, row) = list(csv.reader(io.StringIO(text)))
    assert header == ["file", "line", "column", "value", "reason", "raw"]
    assert row[1:4] == ["3", "id", "'=1+1"], "a formula is written as text"
    assert row[5] == "'=1+1,Eve\n" and "integer" in row[4]
    assert site.db.rows("good", order_by="id") == [(1, "Ada"), (2, "Grace")]
    assert site.db.count("dirty") == 2
    run_page = page.url

    page.goto(f"/app/runs?job={shop}&rejects=yes")  # the server's history is shared
    assert page.locator("table.runs tbody tr").count() == 1
    assert shop in page.locator("table.runs tbody").inner_text()
    shoot(page, "history")
    page.goto(f"/app/runs?job={shop}&rejects=no")
    assert "No run matches." in page.locator("table.runs").inner_text()

    # Fix the reject and replay it from the same page.
    page.goto(run_page)
    with page.expect_download() as download:
        page.click("#export-1")
    export = list(csv.reader(io.StringIO(Path(download.value.path()).read_text("utf-8"))))
    assert export[0] == ["csvpg_reject_id", "id", "name"]
    assert export[1][1:] == ["'=1+1", "Eve"], "formula-safe, in the file's own fields"
    fixed = tmp_path / "fixed.csv"
    fixed.write_text(f"csvpg_reject_id,id,name\n{export[1][0]},5,Eve\n")
    page.set_input_files("#fixed-1", str(fixed))
    page.click("#replay-1")
    page.wait_for_selector("#replay-of", timeout=60_000)
    assert run_page.rsplit("/", 1)[-1][:8] in page.locator("#replay-of").inner_text()
    assert site.db.count("dirty") == 3
    page.goto(run_page)
    totals = page.locator("section.totals").inner_text()
    assert re.search(r"Rejects open\s+0", totals) and re.search(r"Rejects resolved\s+1", totals)
    assert (
        page.locator("table.rejects tbody tr")
        .inner_text()
        .strip()
        .endswith(page.locator("table.rejects a").last.inner_text())
    ), "resolved by the replay run, linked"
    assert page.locator("#replay-1").count() == 0, "nothing left to fix"


def test_a_forced_dry_run_loads_and_rolls_back(operator: Any, site: Site, shop: str) -> None:
    page = operator
    (site.inbox / "good.csv").write_text(GOOD)  # as the upload left it, if it ran
    (site.inbox / "more.csv").write_text("id,name\n9,Niklaus\n")
    page.goto(f"/app/jobs/{shop}")
    page.check("input[name=force]")
    page.check("input[name=dry_run]")
    page.click("#run")
    page.wait_for_selector("table.files", timeout=60_000)
    assert page.locator(".heading .badge", has_text="dry run").count() == 1
    files = page.locator("table.files tbody").inner_text()
    assert "more.csv" in files and "good.csv" in files, "forced: the loaded files too"
    assert not has_table(site, "more"), "a dry run leaves no table"
    (site.inbox / "more.csv").unlink()


def test_check_shows_the_files_and_columns(operator: Any, site: Site, shop: str) -> None:
    page = operator
    (site.inbox / "good.csv").write_text(GOOD)
    page.goto(f"/app/jobs/{shop}")
    page.click("#check")
    plan = page.locator("#plan").inner_text()
    assert f"job {shop}: valid" in plan
    assert f"→ {site.db.schema}.good (upsert)" in plan
    assert "column 1: 'id' → id" in plan
    shoot(page, "check")

    elsewhere = site.jobs / "elsewhere.toml"
    elsewhere.write_text(
        '[job]\nname = "elsewhere"\n[database]\n'
        'dsn = "postgresql://etl:pw@127.0.0.1:1/erp?connect_timeout=2"\n'
        f'[source]\nurl = "{site.inbox}"\n'
    )
    page.goto("/app/jobs/elsewhere/check")
    problem = page.locator("#plan .p-problem").inner_text()
    assert "postgresql://etl:***@127.0.0.1:1/erp" in problem, "the job's own database"
    elsewhere.unlink()


def test_a_typo_is_refused_with_the_key_and_a_suggestion(
    operator: Any, site: Site, shop: str
) -> None:
    page = operator
    before = (site.jobs / f"{shop}.toml").read_text()
    page.goto(f"/app/jobs/{shop}")
    page.click("summary:has-text('Edit')")
    page.fill("textarea[name=text]", before.replace("primary_key", "primry_key"))
    page.click("#save")
    error = page.locator("#spec-error").inner_text()
    assert "unknown key 'sink.primry_key'" in error
    assert "did you mean 'primary_key'?" in error
    assert (site.jobs / f"{shop}.toml").read_text() == before, "nothing was saved"
    assert "primry_key" in page.locator("textarea[name=text]").input_value(), "the edit is kept"
    shoot(page, "edit-error")

    page.fill("textarea[name=text]", before.replace("max_rejects = 5", "max_rejects = 7"))
    page.click("#save")
    assert page.locator("[role=status]").inner_text() == "Saved."
    assert "max_rejects = 7" in (site.jobs / f"{shop}.toml").read_text()


def test_cancel_a_long_run(browser: Any, site: Site) -> None:
    page = new_page(browser, site)
    sign_in(page)
    with SlowCsv() as slow:
        site.job("slow", slow.url, '[sink]\ntable = "slow"\n')
        page.goto("/app/jobs/slow")
        page.click("#run")
        page.wait_for_selector("#progress .s-reading")
        read = page.locator("#progress tbody tr td.num").first
        expect(read).to_have_text(re.compile(r"^[1-9]"))  # bytes have arrived
        shoot(page, "live", full_page=False)
        page.emulate_media(color_scheme="dark")
        shoot(page, "live-dark", full_page=False)
        page.click("#cancel")
        assert page.locator("#confirm-cancel").is_visible()
        page.click("#confirm")
        page.wait_for_selector("table.files", timeout=60_000)
    assert page.locator(".heading .status").first.inner_text() == "cancelled"
    assert "cancelled" in page.locator("table.files").inner_text()
    assert not has_table(site, "slow"), "the cancelled file's new table rolled back"
    page.context.close()


def test_a_viewer_sees_but_cannot_change(browser: Any, site: Site, shop: str) -> None:
    page = new_page(browser, site)
    sign_in(page, READ_ONLY_TOKEN)
    assert page.locator(".role-viewer").inner_text() == "viewer"
    page.goto(f"/app/jobs/{shop}")
    assert page.locator("#spec").is_visible()
    for control in ("#run", "#save", "#file-input", "textarea"):
        assert page.locator(control).count() == 0, control
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    runs_before = len(site.app.state.server.live)
    for path in (f"/app/jobs/{shop}/run", f"/app/jobs/{shop}", f"/app/runs/{'0' * 32}/cancel"):
        answer = page.request.post(path, form={"csrf": csrf or "", "text": "x"})
        assert answer.status == 403, path
        assert "read-only" in answer.json()["detail"]
    answer = page.request.post(
        f"/app/jobs/{shop}/upload",
        multipart={"files": {"name": "x.csv", "mimeType": "text/csv", "buffer": b"id\n9\n"}},
        headers={"X-CSRF-Token": csrf or ""},
    )
    assert answer.status == 403
    assert len(site.app.state.server.live) == runs_before, "no run started"
    assert not (site.inbox / "x.csv").exists()
    page.context.close()


def test_api_docs_load_from_this_server_only(browser: Any, site: Site) -> None:
    page = new_page(browser, site)
    outside: list[str] = []
    local = (site.url, "blob:", "data:")
    page.on("request", lambda r: None if r.url.startswith(local) else outside.append(r.url))
    page.goto("/docs")
    page.wait_for_selector(".swagger-ui .info")
    assert "csvpg" in page.locator(".swagger-ui .info").inner_text()
    page.goto("/redoc")
    page.wait_for_selector("redoc h1, [role=main] h1, h1")
    assert outside == []
    page.context.close()


def test_secrets_are_masked_and_kept_on_save(browser: Any, site: Site) -> None:
    """On a laptop's screen: the job page of a job holding a webhook secret."""
    secret = "s3cr3t-" + site.db.schema
    hook = f'\n[[notify]]\nurl = "https://hooks.example/x?token={secret}"\nsecret = "{secret}"\n'
    path = site.job("vault", str(site.inbox), hook)
    page = new_page(browser, site, width=1280)
    sign_in(page)
    page.goto("/app/jobs/vault")
    assert secret not in page.content()
    assert 'secret = "***"' in page.locator("#spec").inner_text()
    page.click("summary:has-text('Edit')")
    text = page.locator("textarea[name=text]").input_value()
    assert secret not in text
    page.fill("textarea[name=text]", text.replace('name = "vault"', 'name = "vault"\n# checked'))
    page.click("#save")
    assert page.locator("[role=status]").inner_text() == "Saved."
    saved = path.read_text()
    assert "# checked" in saved and saved.count(secret) == 2, "the secret lines stayed"
    shoot(page, "job-laptop")
    page.goto("/")
    shoot(page, "jobs-laptop")
    page.context.close()


def test_a_failed_file_shows_its_message_hint_and_webhooks(
    operator: Any, site: Site, tmp_path: Path
) -> None:
    from tests.test_notify import Receiver

    folder = tmp_path / "strict"
    folder.mkdir()
    (folder / "dirty.csv").write_text(DIRTY)
    before = site.db.count("dirty") if has_table(site, "dirty") else None
    with Receiver() as receiver:
        site.job(
            "strict",
            str(folder),
            f'[columns]\nid = "integer"\n[sink]\nmax_rejects = 0\n\n'
            f'[[notify]]\nurl = "{receiver.url()}"\non = ["failed"]\n',
        )
        page = operator
        page.goto("/app/jobs/strict")
        page.click("#run")
        page.wait_for_selector("table.files", timeout=60_000)
        receiver.wait(1)
    assert page.locator(".heading .status").first.inner_text() == "failed"
    failure = page.locator("table.files tr.failure").inner_text()
    assert "dirty.csv" in page.locator("table.files").inner_text()
    assert "line 3" in failure and "hint:" in failure
    page.reload()  # the delivery is kept with the run
    hooks = page.locator("table.notifications tbody").inner_text()
    assert receiver.url() in hooks and "delivered" in hooks
    shoot(page, "run-failed")
    after = site.db.count("dirty") if has_table(site, "dirty") else None
    assert after == before, "the failed file's table is as it was"


def test_files_dropped_on_a_job_land_in_its_folder(
    operator: Any, site: Site, tmp_path: Path
) -> None:
    folder = site.jobs.parent / "dropbox"  # uploads go only to folders under the data root
    folder.mkdir()
    site.job("dropbox", str(folder))
    page = operator
    page.goto("/app/jobs/dropbox")
    dropped = page.evaluate_handle(
        """() => {
            const data = new DataTransfer();
            data.items.add(new File(["id,name\\n5,Linus\\n"], "first.csv", {type: "text/csv"}));
            data.items.add(new File(["id,name\\n6,Guido\\n"], "second.csv", {type: "text/csv"}));
            return data;
        }"""
    )
    page.dispatch_event(".drop", "drop", {"dataTransfer": dropped})
    page.wait_for_selector("#uploaded")
    assert page.locator(".uploads li.done").count() == 2
    assert {p.name: p.read_text() for p in folder.iterdir()} == {
        "first.csv": "id,name\n5,Linus\n",
        "second.csv": "id,name\n6,Guido\n",
    }


def test_a_record_sink_sends_a_test_record_and_its_rate_changes_while_it_runs(
    operator: Any, site: Site
) -> None:
    """Contacts sent to a webhook at a chosen rate: a test record first, then the run at
    1 record a second, raised from the live page so the rest go at once."""
    from tests.test_notify import Receiver

    folder = site.jobs.parent / "contacts"
    folder.mkdir()
    rows = "".join(f"{i},person {i}\n" for i in range(1, 31))
    (folder / "contacts.csv").write_text("id,name\n" + rows)
    page = operator
    with Receiver() as receiver:
        site.job(
            "contacts",
            str(folder),
            f'[sink]\nmode = "webhook"\n[sink.options]\nurl = "{receiver.url()}"\n'
            "rate_per_second = 1\n",
        )
        page.goto("/app/jobs/contacts")
        page.click("#test-record")
        expect(page.locator("#test-result")).to_contain_text("delivered")
        assert receiver.wait(1)[0].headers.get("X-Csvpg-Test") == "1"

        page.click("#run")
        page.wait_for_selector("#rate-form")
        receiver.wait(3, timeout=30)  # about one a second
        assert len(receiver.hits) < 1 + 30, "the rate held the records back"
        page.fill("#rate", "0")  # no limit
        page.click("#set-rate")
        page.wait_for_selector("table.files", timeout=30_000)  # well before 30 s at 1/s
        assert len(receiver.wait(31)) == 31
    assert page.locator(".heading .status").first.inner_text() == "succeeded"


def test_a_scheduled_job_shows_its_next_run(operator: Any, site: Site) -> None:
    folder = site.jobs.parent / "nightly"
    folder.mkdir()
    site.job("nightly", str(folder), '[schedule]\ncron = "0 2 * * *"\ntimezone = "UTC"\n')
    page = operator
    page.goto("/")
    row = page.locator("table.jobs tr", has_text="nightly")
    expect(row.locator("td.next-run")).to_contain_text("02:00")
