"""The web view in a real browser (Debian's headless Chromium through Selenium) on a real lab."""
from __future__ import annotations

import os
import shutil

import pytest

from egovlab import lifecycle
from egovlab.topology import cleanup

from .conftest import SCENARIOS

pytestmark = [pytest.mark.emulation, pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="emulation needs root (CI runs as root)")]
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
RED = "rgb(214, 40, 40)"


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    assert CHROMIUM and CHROMEDRIVER, "setup.sh installs chromium and chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1600,1000", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log")),
                              options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_clicking_a_link_cuts_it_turns_it_red_and_changes_the_matrix(api_server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    prefix = "ew"
    cleanup.remove_lab(prefix)
    try:
        with api_server.client() as c:
            c.post("/api/v1/scenarios", json={"name": "mini", "yaml": (SCENARIOS / "mini.yml").read_text()})
            assert api_server.wait_job(c.put(f"/api/v1/labs/{prefix}", json={"scenario": "mini"}).json()
                                       )["state"] == "succeeded"
            assert api_server.wait_job(c.post(f"/api/v1/labs/{prefix}/probes/matrix").json())["state"] == "succeeded"
            sim = c.post("/api/v1/simulations", json={"scenario": "dongthap", "replications": 2, "horizon": "2d",
                                                      "peak_minutes": 2}).json()
            assert api_server.wait_job(sim)["state"] == "succeeded"
            utilisation = c.get(f"/api/v1/simulations/{sim['id']}").json()["result"]["peak"]["utilisation"]

        browser.get(f"{api_server.url}/#token={api_server.operator}")
        wait = WebDriverWait(browser, 120, poll_frequency=0.2)
        link = '#topology .link[data-link="town--core"]'
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, link).get_attribute("data-status") == "up")
        assert browser.find_element(By.CSS_SELECTOR, "#scenario-name").text == "mini"
        assert len(browser.find_elements(By.CSS_SELECTOR, "#topology .link")) == 4
        assert len(browser.find_elements(By.CSS_SELECTOR, "#topology circle")) == 5
        assert browser.execute_script("return location.hash") == ""  # the token left the address bar

        def cell(row: str, col: str):
            """The heat map cell of (row, col) as (reached, probed), or None before the matrix is drawn."""
            return browser.execute_script("""
                const t = document.querySelector('#matrix table'); if (!t) return null;
                const cols = [...t.tHead.rows[0].cells].map(c => c.textContent);
                const row = [...t.tBodies[0].rows].find(r => r.cells[0].textContent === arguments[0]);
                const td = row && row.cells[cols.indexOf(arguments[1])];
                return td && td.dataset.reached !== undefined ? [+td.dataset.reached, +td.dataset.probed] : null;
            """, row, col)

        wait.until(lambda d: cell("kind:district", "service:portal") is not None)
        reached, probed = cell("kind:district", "service:portal")
        assert reached > 0, "the district reaches the portal before the cut"
        first_job = browser.find_element(By.ID, "matrix").get_attribute("data-job")

        browser.find_element(By.CSS_SELECTOR, link).click()  # a real click on the drawn line
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, link).get_attribute("data-status") == "down")
        line = browser.find_element(By.CSS_SELECTOR, link)
        assert line.value_of_css_property("stroke") == RED
        with api_server.client("read-only") as c:
            assert list(c.get(f"/api/v1/labs/{prefix}").json()["links_down"]) == ["town--core"]
        # the page re-probes after a fault; the live feed redraws the matrix when the job is done
        wait.until(lambda d: d.find_element(By.ID, "matrix").get_attribute("data-job") != first_job)
        assert cell("kind:district", "service:portal") == [0, probed]
        others = browser.find_elements(By.CSS_SELECTOR, '#topology .link:not([data-link="town--core"])')
        assert {o.value_of_css_property("stroke") for o in others} == {"rgb(42, 157, 75)"}
        # the capacity chart: one bar per resource of the latest simulation, as long as its utilisation
        bars = browser.find_elements(By.CSS_SELECTOR, "#capacity rect")
        assert len(bars) == len(utilisation)
        shown = sorted(round(float(b.get_attribute("data-value")), 6) for b in bars)
        assert shown == sorted(round(100 * u["mean"], 6) for u in utilisation.values())
        assert not browser.find_element(By.ID, "message").text.startswith("POST")  # no error shown
    finally:
        lifecycle.stop(prefix)
    assert cleanup.leftovers(prefix) == {"bridges": [], "links": [], "processes": [], "ovs_shards": []}
