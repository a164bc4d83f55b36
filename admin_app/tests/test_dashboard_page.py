"""/dashboard/: the staff page. Access rules with Django's client; the page itself in headless Chromium."""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from decimal import Decimal
from pathlib import Path

from django.contrib.staticfiles.testing import StaticLiveServerTestCase
from django.test import override_settings, tag
from PIL import Image as PILImage

from auth_app.models import User
from billing_app.models import Account, UsageRecord
from image_app.models import Image
from techbirdsfly.cache import cache_counts, get_or_compute
from techbirdsfly.testing import LiveTestCase

from .factories import PASSWORD, make_user
from .test_cache_api import AdminTestCase

# The bar colours of dashboard.js, in the order it gives them to the apps.
BLUE, GREEN = (0x25, 0x63, 0xEB), (0x16, 0xA3, 0x4A)


def colours_of(png: bytes) -> dict[tuple[int, int, int], int]:
    image = PILImage.open(io.BytesIO(png)).convert("RGB")
    return {colour: n for n, colour in image.getcolors(image.width * image.height)}


def near(colours: dict[tuple[int, int, int], int], target: tuple[int, int, int], tolerance: int = 40) -> int:
    """Pixels within ``tolerance`` of ``target`` on every channel (lines are antialiased)."""
    return sum(n for c, n in colours.items() if all(abs(a - b) <= tolerance for a, b in zip(c, target, strict=True)))


class DashboardAccessTests(AdminTestCase):
    def test_anonymous_is_sent_to_the_admin_login(self):
        response = self.client.get("/dashboard/")
        self.assertEqual(response.status_code, 302)
        self.assertEqual(response["Location"], "/admin/login/?next=/dashboard/")

    def test_non_staff_is_sent_to_the_admin_login(self):
        self.client.force_login(make_user())
        response = self.client.get("/dashboard/")
        self.assertEqual(response.status_code, 302)
        self.assertTrue(response["Location"].startswith("/admin/login/"))

    def test_staff_sees_the_page_with_local_assets_only(self):
        self.client.force_login(self.staff)
        response = self.client.get("/dashboard/")
        self.assertEqual(response.status_code, 200)
        html = response.content.decode()
        self.assertIn('src="/static/admin_app/dashboard.js"', html)
        self.assertIn('href="/static/admin_app/dashboard.css"', html)
        self.assertNotRegex(html, r"""(?:src|href)=["']https?://""")

    def test_the_page_has_a_content_security_policy_of_its_own_origin_only(self):
        self.client.force_login(self.staff)
        policy = self.client.get("/dashboard/")["Content-Security-Policy"]
        directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
        self.assertEqual(directives["default-src"], "'none'")
        self.assertEqual(directives["script-src"], "'self'")  # no 'unsafe-inline', no other origin
        self.assertEqual(directives["frame-ancestors"], "'none'")

    def test_favicon(self):
        response = self.client.get("/favicon.ico")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response["Content-Type"], "image/svg+xml")
        self.assertIn(b"<svg", response.content)
        self.client.force_login(self.staff)
        page = self.client.get("/dashboard/").content.decode()
        self.assertIn('rel="icon" href="/static/admin_app/favicon.svg"', page)

    def test_data_needs_a_staff_session(self):
        self.assertEqual(self.client.get("/dashboard/data").status_code, 401)
        # A Bearer token is not a session: the page's JSON takes the login cookie only.
        bearer = self.client.get("/dashboard/data", HTTP_AUTHORIZATION=f"Bearer {self.staff_token}")
        self.assertEqual(bearer.status_code, 401)
        self.client.force_login(make_user())
        self.assertEqual(self.client.get("/dashboard/data").status_code, 403)

    def test_data_for_staff(self):
        self.client.force_login(self.staff)
        response = self.client.get("/dashboard/data")
        self.assertEqual(response.status_code, 200)
        self.assertIn("no-cache", response["Cache-Control"])
        body = response.json()
        self.assertEqual(set(body), {"analytics", "cache"})
        self.assertIn("users", body["analytics"]["data"])
        self.assertEqual(body["cache"]["redis"]["status"], "up")


def _browser_missing() -> str | None:
    missing = [name for name in ("chromium", "chromedriver") if shutil.which(name) is None]
    if not missing:
        return None
    return f"{' and '.join(missing)} not installed (Debian: apt-get install chromium chromium-driver)"


@tag("browser")
@override_settings(SESSION_COOKIE_SECURE=False, CSRF_COOKIE_SECURE=False)  # the live server speaks plain HTTP
class DashboardBrowserTests(LiveTestCase, StaticLiveServerTestCase):
    """The page in a real headless Chromium: login, charts drawn, and refreshing by itself."""

    @classmethod
    def setUpClass(cls) -> None:
        missing = _browser_missing()
        if missing and not os.environ.get("CI"):
            cls.skipTest(cls, missing)  # CI installs both (.ci/run); there the test must run
        super().setUpClass()
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium") or "chromium"
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        for flag in (
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-dev-shm-usage",
            "--window-size=1400,1300",
            "--force-device-scale-factor=1",
        ):
            options.add_argument(flag)
        service = Service(executable_path=shutil.which("chromedriver") or "chromedriver")
        cls.browser = webdriver.Chrome(options=options, service=service)
        cls.browser.set_page_load_timeout(30)
        # Every page records the Content-Security-Policy violations it meets, from its first script on.
        cls.browser.execute_cdp_cmd(
            "Page.addScriptToEvaluateOnNewDocument",
            {
                "source": "window.cspViolations = [];"
                "document.addEventListener('securitypolicyviolation',"
                " (e) => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));"
            },
        )

    @classmethod
    def tearDownClass(cls) -> None:
        if hasattr(cls, "browser"):
            cls.browser.quit()
        super().tearDownClass()

    def setUp(self) -> None:
        super().setUp()  # LiveTestCase: the private Redis running and empty, breakers closed
        self.staff = User.objects.create_user("dashboard-staff@example.com", PASSWORD, is_staff=True)
        owner = make_user()
        account = Account.objects.create(owner=owner, name="Acme")
        UsageRecord.objects.create(account=account, metric_id="api.call", units=1200, amount=Decimal("1.2000"))
        UsageRecord.objects.create(account=account, metric_id="image.generate", units=300, amount=Decimal("12.0000"))
        for status in ["queued", "running", "completed", "completed", "failed"]:
            Image.objects.create(owner=owner, prompt="a bird", width=64, height=64, status=status)
        # Some reads, so that every app has a hit ratio and keys to draw. The counters belong to the
        # process and earlier tests counted too: the page must show what they had plus these reads.
        self.before = cache_counts()
        for app, kind in [("auth", "auth.profile"), ("billing", "billing.usage"), ("user", "user.preferences")]:
            for n in range(3):
                for _ in range(1 + n):
                    get_or_compute(kind, f"{app}:browser-test:{n}", lambda: {"n": 1})

    def wait_for(self, script: str, timeout: float = 20):
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.browser, timeout, poll_frequency=0.1).until(lambda d: d.execute_script(script))

    def canvas_ink(self, canvas_id: str) -> int:
        """Pixels the page drew on a canvas (the canvas starts fully transparent)."""
        return self.browser.execute_script(
            """const c = document.getElementById(arguments[0]);
               const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
               let n = 0; for (let i = 3; i < px.length; i += 4) if (px[i] > 0) n++; return n;""",
            canvas_id,
        )

    def log_in(self, refresh: int = 1) -> None:
        from selenium.webdriver.common.by import By

        browser = self.browser
        browser.get(f"{self.live_server_url}/dashboard/?refresh={refresh}")
        self.assertIn("/admin/login/", browser.current_url)  # anonymous: to the login first
        browser.find_element(By.NAME, "username").send_keys(self.staff.email)
        browser.find_element(By.NAME, "password").send_keys(PASSWORD)
        browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
        self.wait_for("return location.pathname === '/dashboard/'")

    def layout(self) -> dict:
        """Overflow of the page, and each chart's drawn width against its card's content width."""
        return self.browser.execute_script(
            """const root = document.documentElement;
               const charts = [...document.querySelectorAll('.charts canvas')].map((c) => {
                 const card = c.closest('figure'), style = getComputedStyle(card);
                 const inner = card.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
                 return {id: c.id, css: c.getBoundingClientRect().width, inner: inner,
                         backing: c.width / (window.devicePixelRatio || 1)};
               });
               return {scrollWidth: root.scrollWidth, clientWidth: root.clientWidth,
                       scrollbar: window.innerWidth - root.clientWidth, charts: charts,
                       axes: window.dashboardAxes};"""
        )

    def test_the_page_works_under_its_content_security_policy_and_the_policy_holds(self):
        from selenium.webdriver.common.by import By

        self.browser.get_log("browser")  # drop what earlier tests logged
        self.log_in(refresh=1)
        self.wait_for("return window.dashboardRenders >= 2")  # data fetched and drawn, twice
        self.assertEqual(self.browser.find_element(By.ID, "users-total").text, "2")
        self.assertGreater(self.canvas_ink("chart-keys"), 500)
        self.assertEqual(self.browser.execute_script("return window.cspViolations"), [])
        console = [entry["message"] for entry in self.browser.get_log("browser")]
        self.assertEqual([m for m in console if "Content Security Policy" in m], [], console)
        # The policy is in force: a script injected into the page does not run, and is reported.
        ran = self.browser.execute_script(
            """const s = document.createElement('script');
               s.textContent = 'window.injectedRan = true;';
               document.body.appendChild(s);
               return window.injectedRan === true;"""
        )
        self.assertFalse(ran)
        self.wait_for("return window.cspViolations.length > 0", timeout=5)
        self.assertTrue(self.browser.execute_script("return window.cspViolations[0].startsWith('script-src')"))

    def test_charts_fill_their_cards_at_both_widths_with_distinct_axis_labels(self):
        self.log_in(refresh=1)
        self.wait_for("return window.dashboardRenders >= 2")  # the reads/s line has a point
        try:
            for width in (1400, 420):
                with self.subTest(width=width):
                    self.browser.set_window_size(width, 1000)
                    # Redrawn at the new size: every canvas's pixels match its box again.
                    self.wait_for(
                        "return [...document.querySelectorAll('.charts canvas')].every("
                        "(c) => Math.abs(c.width / (window.devicePixelRatio || 1) - c.clientWidth) <= 1)"
                    )
                    page = self.layout()
                    self.assertLessEqual(page["scrollWidth"], page["clientWidth"], f"horizontal overflow: {page}")
                    self.assertEqual(len(page["charts"]), 6)
                    for chart in page["charts"]:
                        self.assertGreaterEqual(chart["css"], 0.9 * chart["inner"], chart)
                        self.assertGreaterEqual(chart["backing"], 0.9 * chart["inner"], chart)
                    self.assertEqual(len(page["axes"]), 6, page["axes"])
                    for chart, labels in page["axes"].items():
                        self.assertEqual(len(labels), len(set(labels)), f"{chart} repeats a label: {labels}")
                        self.assertGreaterEqual(len(labels), 2, chart)
        finally:
            self.browser.set_window_size(1400, 1300)

    def test_every_cache_table_column_shows_at_420_px_without_scrolling(self):
        self.log_in(refresh=60)
        self.wait_for("return document.querySelectorAll('#apps tbody tr').length === 5")
        hint = "return getComputedStyle(document.querySelector('.scroll-hint')).display !== 'none'"
        try:
            self.browser.set_window_size(420, 1000)
            table = self.browser.execute_script(
                """const wrap = document.querySelector('.table-wrap'), box = wrap.getBoundingClientRect();
                   const last = document.querySelector('#apps thead th:last-child').getBoundingClientRect();
                   return {scrollWidth: wrap.scrollWidth, clientWidth: wrap.clientWidth,
                           lastRight: last.right, wrapRight: box.right};"""
            )
            self.assertLessEqual(table["scrollWidth"], table["clientWidth"], f"the table scrolls: {table}")
            self.assertLessEqual(table["lastRight"], table["wrapRight"] + 0.5, f"memory column cut off: {table}")
            self.assertFalse(self.browser.execute_script(hint))
            # Wider than the screen (figures in the millions, say): the page says it scrolls.
            self.browser.execute_script(
                "document.querySelector('#apps').style.minWidth = '900px'; window.dispatchEvent(new Event('resize'));"
            )
            self.wait_for(hint)
        finally:
            self.browser.set_window_size(1400, 1300)

    def test_login_charts_and_refresh(self):
        from selenium.webdriver.common.by import By

        browser = self.browser
        self.log_in(refresh=1)
        self.assertEqual(browser.find_element(By.ID, "dashboard").get_attribute("data-refresh-seconds"), "1")
        self.wait_for("return window.dashboardRenders >= 1")

        self.assertEqual(browser.find_element(By.ID, "users-total").text, "2")
        self.assertEqual(browser.find_element(By.ID, "images-total").text, "5")
        self.assertEqual(browser.find_element(By.ID, "usage-units").text, "1,500")
        self.assertEqual(browser.find_element(By.ID, "redis-status").text.split()[:2], ["Redis", "up"])
        rows = {r.get_attribute("data-app"): r.text.split() for r in browser.find_elements(By.CSS_SELECTOR, "#apps tr")}
        hits, misses = self.before["billing"]["hits"] + 3, self.before["billing"]["misses"] + 3
        self.assertEqual(rows["billing"][1:3], [f"{hits:,}", f"{misses:,}"])  # with the reads above
        self.assertEqual(rows["billing"][4], f"{100 * hits / (hits + misses):.1f}%")
        for canvas in ("chart-hit-ratio", "chart-keys", "chart-memory", "chart-usage", "chart-images", "chart-reads"):
            self.assertGreater(self.canvas_ink(canvas), 500, canvas)

        # It refreshes by itself: new keys appear without a reload.
        keys_before = rows["image"][5]
        for n in range(7):
            get_or_compute("image.metadata", f"image:browser-test:{n}", lambda: {"n": 1})
        renders = browser.execute_script("return window.dashboardRenders")
        self.wait_for(f"return window.dashboardRenders > {renders}", timeout=15)
        row = browser.find_element(By.CSS_SELECTOR, "#apps tr[data-app=image]").text.split()
        self.assertEqual(int(row[5]) - int(keys_before), 7)
        self.assertEqual(browser.execute_script("return document.getElementById('error').hidden"), True)
        # The reads-per-second line needs two refreshes with reads between them.
        renders = browser.execute_script("return window.dashboardRenders")
        get_or_compute("image.metadata", "image:browser-test:0", lambda: {"n": 1})
        self.wait_for(f"return window.dashboardRenders > {renders + 1}", timeout=15)

        # What a person sees: the charts' bars are on the screenshot, in the colours of their apps.
        png = browser.get_screenshot_as_png()
        path = Path(os.environ.get("DASHBOARD_SCREENSHOT") or tempfile.mkstemp(prefix="dashboard-", suffix=".png")[1])
        path.write_bytes(png)
        page = PILImage.open(io.BytesIO(png)).convert("RGB")
        self.assertGreater(len(set(page.getdata())), 50, f"a near-blank page: {path}")
        for canvas in ("chart-hit-ratio", "chart-keys", "chart-usage", "chart-images"):
            colours = colours_of(browser.find_element(By.ID, canvas).screenshot_as_png)
            with self.subTest(canvas=canvas):
                self.assertGreater(colours.get(BLUE, 0), 100, f"no blue bar on {canvas}: {path}")
                self.assertGreater(colours.get(GREEN, 0), 100, f"no green bar on {canvas}: {path}")
        colours = colours_of(browser.find_element(By.ID, "chart-reads").screenshot_as_png)
        # The legend's swatch is 100 pixels; the rest is the hits/s line drawn across the chart.
        self.assertGreater(near(colours, BLUE), 400, f"no hits/s line: {path}")
