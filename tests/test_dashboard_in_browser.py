"""The page at / in a real headless browser (Debian's chromium through its chromedriver)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from streams.producer import EventProducer
from tests.test_stream_state_end_to_end import EXPECTED_POSTS, publish_social_activity, settled, wait_until

pytestmark = pytest.mark.kafka


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    driver_path, chromium = shutil.which("chromedriver"), shutil.which("chromium")
    assert driver_path and chromium, "install Debian's chromium and chromium-driver (./dev test does)"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_the_page_shows_live_counters_a_signup_chart_and_the_top_posts(namespace, start_worker, browser) -> None:
    worker = start_worker()
    browser.get(worker.url + "/")
    WebDriverWait(browser, 30).until(lambda b: b.find_element(By.ID, "total-signups").text == "0")

    with EventProducer(namespace.settings()) as producer:
        publish_social_activity(producer)
    wait_until(lambda: settled(worker), [worker])
    signups, top = worker.get("/signups"), worker.get("/posts/top?limit=10")["posts"]

    WebDriverWait(browser, 30).until(lambda b: b.find_element(By.ID, "total-signups").text == "3")
    (today,) = signups["per_day"]
    assert browser.find_element(By.ID, "signups-today").text == str(signups["per_day"][today])
    assert browser.find_element(By.ID, "days-tracked").text == "1"
    assert browser.find_element(By.ID, "top-rate").text == f"{EXPECTED_POSTS['p2']['engagement_rate']:.2f}"

    bars = browser.find_elements(By.CSS_SELECTOR, "#signups-chart rect.bar")
    assert {bar.get_attribute("data-day"): int(bar.get_attribute("data-count")) for bar in bars} == signups["per_day"]
    assert all(float(bar.get_attribute("height")) > 0 for bar in bars)

    rows = browser.find_elements(By.CSS_SELECTOR, "#top-posts tbody tr")
    shown = [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")] for row in rows]
    assert shown == [
        [post["post_id"], str(post["views"]), str(post["likes"]), str(post["comments"]), str(post["shares"]),
         f"{post['engagement_rate']:.2f}"]
        for post in top
    ]
    assert [row[0] for row in shown] == ["p2", "p1"]
    assert "error" not in browser.find_element(By.ID, "status").get_attribute("class")
