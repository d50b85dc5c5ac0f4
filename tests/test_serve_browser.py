"""`deepvis serve` in a real headless Chromium (Debian's chromium and chromedriver, through
selenium): the page loads, keys give the frame `deepvis render` writes, a click selects a
unit, hovering names it, an upload changes the input, and two pages keep their own states.
Skipped where chromium, chromedriver or selenium are missing."""
import base64
import shutil
import time

import cv2
import numpy as np
import pytest

pytest.importorskip("aiohttp")
webdriver = pytest.importorskip("selenium.webdriver")

from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

from deepvis import load_model  # noqa: E402
from deepvis.cli import main as cli  # noqa: E402
from deepvis.toolbox.keys import parse_keys  # noqa: E402
from deepvis.web import geometry  # noqa: E402
from deepvis.web.server import Hub, ServerThread  # noqa: E402
from tests.test_toolbox_render import outlined_unit, region  # noqa: E402

SELENIUM_KEYS = {"left": Keys.ARROW_LEFT, "right": Keys.ARROW_RIGHT, "up": Keys.ARROW_UP,
                 "down": Keys.ARROW_DOWN, "esc": Keys.ESCAPE, "pgup": Keys.PAGE_UP,
                 "pgdn": Keys.PAGE_DOWN}


def _find(*names):
    return next((path for path in map(shutil.which, names) if path), None)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    skdata = pytest.importorskip("skimage.data")
    folder = tmp_path_factory.mktemp("pages")
    cv2.imwrite(str(folder / "a_cat.png"), cv2.cvtColor(skdata.chelsea(), cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(folder / "b_coffee.png"), cv2.cvtColor(skdata.coffee(), cv2.COLOR_RGB2BGR))
    return folder


@pytest.fixture(scope="module")
def lite():
    return load_model("efficientnet-lite0")


@pytest.fixture(scope="module")
def server(lite, images):
    srv = ServerThread(Hub(lite, images))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser():
    chromium, driver = _find("chromium", "chromium-browser"), _find("chromedriver")
    if chromium is None or driver is None:
        pytest.skip("chromium and chromedriver are not installed (apt: chromium chromium-driver)")
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1600,1300", "--force-device-scale-factor=1",
                "--force-color-profile=srgb"):
        options.add_argument(arg)
    drv = webdriver.Chrome(service=Service(driver), options=options)
    yield drv
    drv.quit()


def wait(browser, script, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = browser.execute_script("return " + script)
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {script}")


def settled(browser, keys):
    return wait(browser, f"deepvis.header && deepvis.header.settled && deepvis.header.keys == {keys}"
                " && deepvis.header")


def open_page(browser, server):
    browser.get(server.url)
    settled(browser, 0)
    assert browser.execute_script("return deepvis.errors") == []


def press(browser, keys):
    names = parse_keys(keys)
    chain = ActionChains(browser)
    for name in names:
        chain.send_keys(SELENIUM_KEYS.get(name, name))
    chain.perform()
    return len(names)


def canvas(browser) -> np.ndarray:
    """The page's canvas, read back as the browser holds it."""
    url = browser.execute_script("return deepvis.frameDataURL()")
    data = np.frombuffer(base64.b64decode(url.split(",", 1)[1]), np.uint8)
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def render_cli(tmp_path, images, keys):
    out = tmp_path / f"render-{abs(hash(keys))}.png"
    assert cli(["render", "--model", "efficientnet-lite0", "--input", str(images),
                "--keys", keys, "--out", str(out)]) == 0
    return cv2.cvtColor(cv2.imread(str(out)), cv2.COLOR_BGR2RGB)


def click_at(browser, x, y):
    element = browser.find_element(By.ID, "frame")
    size = element.size
    ActionChains(browser).move_to_element_with_offset(
        element, x - size["width"] // 2, y - size["height"] // 2).click().perform()


def test_page_loads_and_keys_give_the_render_frame(browser, server, images, tmp_path):
    open_page(browser, server)
    hello = browser.execute_script("return deepvis.hello")
    assert (hello["width"], hello["height"]) == (1500, 930)
    assert hello["inputs"] == ["a_cat.png", "b_coffee.png"]
    assert len(browser.find_elements(By.CSS_SELECTOR, "#thumbs img")) == 2
    # the key sequence of test_toolbox_render's back-pane test: block03, deconv
    keys = "o*3 down b b b"
    header = settled(browser, press(browser, keys))
    assert header["state"]["back"] == "deconv" and header["state"]["layer"] == "block03"
    shown = canvas(browser)
    expected = render_cli(tmp_path, images, keys)
    assert shown.shape == expected.shape
    assert np.array_equal(shown, expected)          # lossless PNG pieces: exactly the pixels
    assert browser.execute_script("return deepvis.errors") == []


def test_click_on_a_tile_selects_that_unit_and_hover_names_it(browser, server, lite, images):
    open_page(browser, server)
    settled(browser, press(browser, "o*4"))                        # block04: 40 tiles
    from deepvis.toolbox.session import Session, static_files_for
    session = Session(lite, static_files_for(lite.settings, images))
    for _ in range(4):
        session.state.handle("sel_layer_right")
    grid = geometry.tile_grid(session.state, session.drawer)
    unit = 2 * grid.cols + 3
    x, y = grid.centre(unit)
    click_at(browser, x, y)
    header = wait(browser, f"deepvis.header && deepvis.header.state.unit == {unit} "
                           "&& deepvis.header.settled && deepvis.header")
    assert header["state"]["layer"] == "block04" and header["state"]["cursor"] == "bottom"
    assert outlined_unit(region(canvas(browser), "caffevis_layers"), grid.cols) == unit
    x, y = grid.centre(unit + 1)
    ActionChains(browser).move_by_offset(x - grid.centre(unit)[0], 0).perform()
    text = wait(browser, "document.getElementById('hover').textContent")
    assert text.startswith(f"block04 unit {unit + 1} at (") and "activation" in text
    # clicking a layer name selects that layer
    top, left, bottom, right = geometry.layer_boxes(session.state, session.drawer)[1]
    click_at(browser, (left + right) // 2, (top + bottom) // 2)
    wait(browser, "deepvis.header.state.layer == 'block01' && deepvis.header.state.cursor == 'top'")


def test_upload_changes_the_input(browser, server, tmp_path):
    open_page(browser, server)
    pattern = np.zeros((80, 120, 3), np.uint8)
    pattern[:, 60:] = (255, 0, 0)                                   # BGR: blue on the right
    path = tmp_path / "blue.png"
    cv2.imwrite(str(path), pattern)
    browser.find_element(By.ID, "upload").send_keys(str(path))
    wait(browser, "deepvis.header.input.name == 'blue.png' && deepvis.header.settled")
    shown = region(canvas(browser), "input")
    square = cv2.cvtColor(pattern[:, 20:100], cv2.COLOR_BGR2RGB)
    assert np.array_equal(shown, cv2.resize(square, shown.shape[1::-1]))
    assert len(browser.find_elements(By.CSS_SELECTOR, "#thumbs img")) == 3
    browser.find_elements(By.CSS_SELECTOR, "#thumbs img")[1].click()     # back to the coffee
    wait(browser, "deepvis.header.input.name == 'b_coffee.png'")


def test_two_pages_keep_independent_states(browser, server, images, tmp_path):
    open_page(browser, server)
    first = browser.current_window_handle
    settled(browser, press(browser, "o o down right"))
    browser.switch_to.new_window("tab")
    open_page(browser, server)
    settled(browser, press(browser, "e down b"))
    second_frame = canvas(browser)
    browser.switch_to.window(first)
    header = settled(browser, 4)
    assert (header["state"]["layer"], header["state"]["unit"]) == ("block02", 1)
    assert np.array_equal(canvas(browser), render_cli(tmp_path, images, "o o down right"))
    assert np.array_equal(second_frame, render_cli(tmp_path, images, "e down b"))


def test_drop_an_image_and_download_a_pane(browser, server, tmp_path):
    open_page(browser, server)
    pattern = np.zeros((50, 50, 3), np.uint8)
    pattern[:25] = (0, 255, 0)                                      # green on top
    png = cv2.imencode(".png", pattern)[1].tobytes()
    browser.execute_script("""
        const bytes = Uint8Array.from(atob(arguments[0]), (c) => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], "dropped.png", {type: "image/png"}));
        document.dispatchEvent(new DragEvent("drop", {dataTransfer: transfer, bubbles: true}));
        """, base64.b64encode(png).decode())
    wait(browser, "deepvis.header.input.name == 'dropped.png' && deepvis.header.settled")
    shown = region(canvas(browser), "input")
    assert np.array_equal(shown, cv2.resize(cv2.cvtColor(pattern, cv2.COLOR_BGR2RGB),
                                            shown.shape[1::-1]))
    # the pane buttons save PNGs cut from the canvas: catch the link the button clicks
    browser.execute_script("""
        window.saved = null;
        HTMLAnchorElement.prototype.click = function () {
          const name = this.download;
          fetch(this.href).then((r) => r.blob()).then((blob) => {
            const reader = new FileReader();
            reader.onload = () => { window.saved = [name, reader.result]; };
            reader.readAsDataURL(blob);
          });
        };""")
    button = next(b for b in browser.find_elements(By.CSS_SELECTOR, "#pane-downloads button")
                  if b.text == "input")
    button.click()
    name, url = wait(browser, "window.saved")
    assert name.startswith("deepvis-input-") and name.endswith(".png")
    saved = cv2.imdecode(np.frombuffer(base64.b64decode(url.split(",", 1)[1]), np.uint8), 1)
    assert np.array_equal(cv2.cvtColor(saved, cv2.COLOR_BGR2RGB), shown)


def test_page_works_with_the_token_and_not_without(browser, lite, images):
    from deepvis.web.server import token_for
    token = token_for("0.0.0.0")
    srv = ServerThread(Hub(lite, images), host="0.0.0.0", token=token)
    try:
        base = f"http://127.0.0.1:{srv.port}/"
        browser.get(base)
        assert "needs its token" in browser.find_element(By.TAG_NAME, "body").text
        browser.get(f"{base}?token={token}")
        settled(browser, 0)
        # the script and style came with the cookie, the thumbnails with the token
        wait(browser, "[...document.querySelectorAll('#thumbs img')].every("
                      "(img) => img.complete && img.naturalWidth > 0)")
        assert browser.execute_script(
            "return getComputedStyle(document.body).backgroundColor") == "rgb(51, 51, 51)"
    finally:
        srv.stop()


def test_browser_requests_for_paths_outside_the_folders_are_refused(browser, server, images):
    secret = images.parent / "secret-beside-inputs.png"
    cv2.imwrite(str(secret), np.full((8, 8, 3), 7, np.uint8))
    base = server.url
    browser.get(base + "files/input/a_cat.png")                     # positive control
    assert browser.execute_script("return document.images.length && "
                                  "document.images[0].naturalWidth") == 451
    for path in ("files/input/..%2f" + secret.name, "files/input/%2e%2e%2f" + secret.name,
                 "files/input/../" + secret.name, "files/input/%2e%2e/%2e%2e/etc/passwd"):
        browser.get(base + path)
        assert browser.execute_script("return document.images.length") == 0, path
        text = browser.find_element(By.TAG_NAME, "body").text
        assert "Forbidden" in text or "Not Found" in text or "only plain" in text, (path, text)
