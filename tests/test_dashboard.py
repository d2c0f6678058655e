"""The report API and the dashboard page, over real HTTP, in a real headless browser."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.browser import ARTIFACTS, chromium  # noqa: F401 (a fixture)
from tests.plugins.ray_cluster import ServiceUnderTest, example_request
from tests.polling import wait_for

APP = "content"
DOCS = Path(__file__).parent.parent / "docs"


def _traffic(svc: ServiceUnderTest, n: int) -> int:
    """n decisions of the content app, every other one rewarded."""
    with httpx.Client(base_url=svc.url, headers=svc.headers(), timeout=10) as http:
        before = http.get(f"/v1/apps/{APP}/report?resolution=minute&hours=1").json()
        for i in range(n):
            d = http.post(f"/v1/apps/{APP}/decisions", json=example_request(APP, i)).json()
            value = float(i % 2 == 0)
            http.post(f"/v1/apps/{APP}/rewards", json={"event_id": d["event_id"], "value": value})
    return before["window"]["all"]["decisions"]


def test_the_report_counts_joined_decisions_per_arm(banditrec_service: ServiceUnderTest) -> None:
    svc = banditrec_service
    before = _traffic(svc, 40)
    url = f"{svc.url}/v1/apps/{APP}/report?resolution=minute&hours=1"

    def counted() -> bool:
        report = httpx.get(url, headers=svc.headers()).json()
        return report["window"]["all"]["decisions"] >= before + 40

    wait_for(counted, 60, "the reporter to count the joined decisions")
    report = httpx.get(url, headers=svc.headers("decide")).json()  # any scope may read it
    assert report["mode"] == "online" and "learned" in report["window"]["arms"]
    buckets = report["buckets"]
    assert {"start", "all", "arms", "model_versions", "join_lag_s", "learner_lag_events"} <= set(
        buckets
    )
    assert sum(buckets["all"]["decisions"]) == report["window"]["all"]["decisions"]
    estimate = report["window"]["all"]["reward"]
    assert estimate["lower"] <= estimate["mean"] <= estimate["upper"]
    assert report["models"] and report["model_version"] >= 1
    assert httpx.get(url).status_code == 401
    other = httpx.get(url, headers=svc.headers("everything_channel"))
    assert other.status_code == 403
    assert httpx.get(url.replace("hours=1", "hours=100"), headers=svc.headers()).status_code == 422
    assert httpx.get(url.replace(APP, "nope"), headers=svc.headers()).status_code == 404
    visible = httpx.get(f"{svc.url}/v1/report", headers=svc.headers("everything_channel")).json()
    assert list(visible["apps"]) == ["channel"]
    metrics = httpx.get(f"{svc.url}/metrics").text
    assert f'banditrec_reward_sum_total{{app="{APP}",arm="learned"}}' in metrics
    # every metric the shipped Grafana dashboard queries is in the scrape
    grafana = (DOCS / "grafana" / "banditrec-dashboard.json").read_text()
    for name in set(re.findall(r"banditrec_[a-z_]+", grafana)) - {"banditrec"}:
        assert name in metrics, name


def test_the_dashboard_renders_in_a_browser(
    banditrec_service: ServiceUnderTest,
    chromium,  # noqa: F811
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    svc = banditrec_service
    before = _traffic(svc, 20)
    wait_for(
        lambda: (
            httpx.get(
                f"{svc.url}/v1/apps/{APP}/report?resolution=minute&hours=1", headers=svc.headers()
            ).json()["window"]["all"]["decisions"]
            >= before + 20
        ),
        60,
        "the reporter",
    )
    browser = chromium
    browser.get(svc.url + "/")  # redirects to the page
    assert browser.current_url.endswith("/dashboard")
    wait = WebDriverWait(browser, 30)
    status = browser.find_element(By.ID, "status")
    assert "API key" in status.text
    browser.find_element(By.ID, "key").send_keys(svc.keys["admin"])
    browser.find_element(By.CSS_SELECTOR, "#window option[value='minute:6']").click()
    browser.find_element(By.CSS_SELECTOR, "#key-form button").click()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, f"#apps li[data-app='{APP}']")))
    apps = [
        li.get_attribute("data-app") for li in browser.find_elements(By.CSS_SELECTOR, "#apps li")
    ]
    assert {"content", "channel", "send_time"} <= set(apps)
    browser.find_element(By.CSS_SELECTOR, f"#apps li[data-app='{APP}']").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "app-title"), APP))
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#reward-chart path.reward-line")))
    assert browser.find_elements(By.CSS_SELECTOR, "#reward-chart path.baseline-line")
    assert browser.find_elements(By.CSS_SELECTOR, "#traffic-chart rect.traffic-bar")
    arms = browser.find_elements(By.CSS_SELECTOR, "#arms-table tbody tr")
    assert "learned" in [a.get_attribute("data-arm") for a in arms]
    assert "joined decisions" in browser.find_element(By.ID, "app-summary").text
    assert browser.find_elements(By.CSS_SELECTOR, "#models-table tbody tr")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "dashboard.png"))
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
