"""The real ``nmt serve`` process on 127.0.0.1 and a free port: HTTP from outside, abuse interleaved with good
requests, SIGTERM during a request, API keys and a request limit, and the page in headless Chromium (when
Chromium and its driver are installed; .ci/run installs them)."""

from __future__ import annotations

import http.client
import json
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
from test_app import run  # noqa: E402,F401  (the module's trained model fixture)
from test_cli import _env  # noqa: E402

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1 directly, whatever the proxy


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: bytes, ctype: str = "application/json", timeout: float = 60) -> tuple[int, object]:
    """POST ``body``; the status and the JSON answer. A server may answer an oversized body before reading it
    all (and close the connection): the answer is then read after the failed send."""
    host, port = url.split("//")[1].split("/")[0].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        try:
            conn.request("POST", "/" + url.split("/", 3)[3], body=body, headers={"Content-Type": ctype})
        except (BrokenPipeError, ConnectionResetError):
            pass
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


@pytest.fixture(scope="module")
def server(run: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, subprocess.Popen]]:  # noqa: F811
    tmp = tmp_path_factory.mktemp("server")
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "nmt", "serve", f"checkpoint={run}", f"port={port}", "threads=1",
                             "batch_wait_ms=5"], cwd=tmp, env=_env(tmp), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):  # up to 30 s to load
        try:
            with OPENER.open(f"{url}/health", timeout=1) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail(f"nmt serve did not start: {proc.communicate()[1][-2000:]}")
    yield url, proc
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


MALFORMED = [  # (body, content type, expected status)
    (b"{not json", "application/json", 400), (b"plain text", "text/plain", 415), (b"", "application/json", 422),
    (b'{"q": 5, "target": "yy"}', "application/json", 422), (b'{"q": "ka"}', "application/json", 422),
    (b'{"q": "ka", "target": "zz"}', "application/json", 400),
    (b'{"q": "\xff", "target": "yy"}', "application/json", 400),
    (b'{"q": "' + b"x" * 2500 + b'", "target": "yy"}', "application/json", 422), (b"[[[[", "application/json", 400),
    (b'{"q": "ka", "target": "yy", "alternatives": 99}', "application/json", 422),
    (b'{"q": "ka", "target": "yy", "format": "html"}', "application/json", 400),
    (b'{"q": "ka", "target": "yy"}' + b" " * 1_100_000, "application/json", 413),
]


def test_libretranslate_clients_as_people_use_them(server: tuple[str, subprocess.Popen]) -> None:
    """libretranslatepy posts a urlencoded form; others send multipart or only a query string."""
    libretranslatepy = pytest.importorskip("libretranslatepy")
    url, _ = server
    expected = _post(f"{url}/translate", b'{"q": "ka lo mi", "source": "xx", "target": "yy"}')[1]
    client = libretranslatepy.LibreTranslateAPI(url + "/")
    assert client.translate("ka lo mi", source="xx", target="yy") == expected["translatedText"]
    assert [lang["code"] for lang in client.languages()] == ["xx"]
    boundary = "nmtboundary"
    parts = "".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
                    for k, v in (("q", "ka lo mi"), ("source", "xx"), ("target", "yy")))
    status, body = _post(f"{url}/translate", (parts + f"--{boundary}--\r\n").encode(),
                         f"multipart/form-data; boundary={boundary}")
    assert status == 200 and body == expected
    status, body = _post(f"{url}/translate?q=ka+lo+mi&source=xx&target=yy", b"", "")
    assert status == 200 and body == expected


def test_good_and_malformed_requests_interleaved(server: tuple[str, subprocess.Popen]) -> None:
    url, proc = server
    status, expected = _post(f"{url}/translate", b'{"q": "ka lo mi", "target": "yy"}')
    assert status == 200
    rss_before = _rss_kib(proc.pid)
    rng = random.Random(0)
    for i in range(500):
        if i % 2:
            body, ctype, want = MALFORMED[rng.randrange(len(MALFORMED))]
            status, out = _post(f"{url}/translate", body, ctype)
            assert status == want and isinstance(out, dict) and out.get("error"), (body[:60], status, out)
        else:
            assert _post(f"{url}/translate", b'{"q": "ka lo mi", "target": "yy"}') == (200, expected)
    assert proc.poll() is None
    assert _rss_kib(proc.pid) < rss_before * 1.1 + 20_000  # flat: within 10% (and 20 MB of allocator slack)


def test_sigterm_finishes_the_request_in_flight_and_exits_zero(run: Path, tmp_path: Path) -> None:  # noqa: F811
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "nmt", "serve", f"checkpoint={run}", f"port={port}", "threads=1",
                             "batch_wait_ms=1500"], cwd=tmp_path, env=_env(tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                OPENER.open(f"{url}/health", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        answer: list = []
        worker = threading.Thread(target=lambda: answer.append(_post(f"{url}/translate",
                                                                     b'{"q": "ka lo", "target": "yy"}')))
        worker.start()
        time.sleep(0.5)  # the request waits in its 1.5 s batching window
        proc.send_signal(signal.SIGTERM)
        worker.join(30)
        assert proc.wait(30) == 0
        assert answer and answer[0][0] == 200 and isinstance(answer[0][1]["translatedText"], str)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_api_keys_against_the_real_server_and_its_output_never_shows_them(run: Path, tmp_path: Path  # noqa: F811
                                                                         ) -> None:
    """libretranslatepy sends its key as a form field; a bad or missing key is 403; past req_limit, 429."""
    port, key = _free_port(), "k-real-0c9e-secret"
    proc = subprocess.Popen([sys.executable, "-m", "nmt", "serve", f"checkpoint={run}", f"port={port}", "threads=1",
                             "api_keys_env=NMT_TEST_KEYS", "req_limit=4"], cwd=tmp_path,
                            env={**_env(tmp_path), "NMT_TEST_KEYS": f"{key},second-key"}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                OPENER.open(f"{url}/health", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        form = f"q=ka+lo&source=xx&target=yy&api_key={key}".encode()
        ok = _post(f"{url}/translate", form, "application/x-www-form-urlencoded")
        missing = _post(f"{url}/translate", b'{"q": "ka", "target": "yy"}')
        wrong = _post(f"{url}/translate?api_key=nope-{key[::-1]}", b'{"q": "ka", "target": "yy"}')
        libretranslatepy = pytest.importorskip("libretranslatepy")
        client = libretranslatepy.LibreTranslateAPI(url + "/", api_key=key)
        assert client.translate("ka lo", source="xx", target="yy") == ok[1]["translatedText"]
        codes = [_post(f"{url}/translate", form, "application/x-www-form-urlencoded")[0] for _ in range(3)]
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert ok[0] == 200 and missing[0] == wrong[0] == 403 and "error" in missing[1] and "error" in wrong[1]
    assert codes == [200, 200, 429]  # the fourth request of the minute was libretranslatepy's
    assert "2 API keys" in out and key not in out + err and key[::-1] not in out + err


def _browser():
    webdriver = pytest.importorskip("selenium.webdriver")
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (binary and driver):
        pytest.skip("chromium and chromium-driver are not installed (.ci/run installs them with apt-get)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1200,1000"):
        options.add_argument(arg)
    from selenium.webdriver.chrome.service import Service

    return webdriver.Chrome(service=Service(driver), options=options)


def _open_page(browser, url: str) -> None:
    """Load the page and wait until it has listed the served models."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url + "/")
    WebDriverWait(browser, 20).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#model option"))


def test_the_page_in_a_real_browser(server: tuple[str, subprocess.Popen], tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, _ = server
    browser = _browser()
    try:
        _open_page(browser, url)
        browser.find_element(By.ID, "source").send_keys("ka lo mi ne")
        browser.find_element(By.ID, "translate").click()
        WebDriverWait(browser, 30).until(lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-done"))
        _, out = _post(f"{url}/analyze", b'{"q": "ka lo mi ne"}')
        s, t = len(out["source_pieces"]), len(out["target_pieces"])
        assert browser.find_element(By.ID, "translation").text == out["translation"]
        assert len(browser.find_elements(By.CSS_SELECTOR, "#heatmap .cell")) == t * s
        assert len(browser.find_elements(By.CSS_SELECTOR, "#gates .gate")) == s
        shot = tmp_path / "serve.png"
        browser.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000
    finally:
        browser.quit()


def _translate_on(browser, by) -> None:
    """Click Translate and wait for the page to draw a new answer."""
    from selenium.webdriver.support.ui import WebDriverWait

    before = browser.find_element(by.TAG_NAME, "body").get_attribute("data-done")
    browser.find_element(by.ID, "translate").click()
    WebDriverWait(browser, 30).until(lambda b: b.find_element(by.TAG_NAME, "body").get_attribute("data-done") != before)


def test_the_page_steers_with_a_glossary_and_a_prefix_and_draws_the_alignment(
        server: tuple[str, subprocess.Popen]) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, _ = server
    browser = _browser()
    try:
        _open_page(browser, url)
        browser.find_element(By.ID, "source").send_keys("ne ru")
        browser.find_element(By.ID, "glossary").send_keys("ru = river")
        _translate_on(browser, By)
        _, held = _post(f"{url}/analyze", json.dumps({"q": "ne ru", "method": "beam", "glossary": {"ru": "river"},
                                                      "alignment": "hard"}).encode())
        assert browser.find_element(By.ID, "translation").text == held["translation"]
        assert "river" in held["translation"].split()
        links = browser.find_elements(By.CSS_SELECTOR, "#links line.link")
        assert len(links) == len(held["alignment"].split()) > 0
        assert len(browser.find_elements(By.CSS_SELECTOR, "#links text.word")) == len(
            held["source_words"]) + len(held["target_words"])
        first = int(held["alignment"].split()[0].split("-")[0])  # hover a source word: its links light up
        ActionChains(browser).move_to_element(browser.find_elements(By.CSS_SELECTOR, "#links text.src")[first]
                                              ).perform()
        lit = browser.find_elements(By.CSS_SELECTOR, "#links line.link.on")
        assert len(lit) == sum(p.split("-")[0] == str(first) for p in held["alignment"].split()) > 0

        browser.find_element(By.ID, "glossary").send_keys("\nnot a pair")
        browser.find_element(By.ID, "translate").click()
        WebDriverWait(browser, 10).until(lambda b: "glossary line 2" in b.find_element(By.ID, "status").text)

        browser.find_element(By.ID, "glossary").clear()
        browser.find_element(By.ID, "source").clear()
        browser.find_element(By.ID, "source").send_keys("ka lo mi")
        browser.find_element(By.ID, "prefix").send_keys("river")
        _translate_on(browser, By)
        _, started = _post(f"{url}/analyze", json.dumps({"q": "ka lo mi", "method": "greedy", "prefix": "river",
                                                         "alignment": "hard"}).encode())
        text = browser.find_element(By.ID, "translation").text
        assert text == started["translation"] and text.startswith("river")
        assert len(browser.find_elements(By.CSS_SELECTOR, "#links line.link")) == len(started["alignment"].split())
    finally:
        browser.quit()
