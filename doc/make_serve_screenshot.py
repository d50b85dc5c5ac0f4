"""The README's screenshot of `deepvis serve`: the page in headless Chromium after the same
keys as doc/toolbox-bus-deconv.png, the pointer resting on a unit tile.

Run: python doc/make_serve_screenshot.py doc/serve-page.png
Needs chromium and chromedriver (apt: chromium chromium-driver) and selenium.
"""
from __future__ import annotations

import pathlib
import shutil
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from deepvis import load_model  # noqa: E402
from deepvis.toolbox.keys import parse_keys  # noqa: E402
from deepvis.toolbox.session import Session, static_files_for  # noqa: E402
from deepvis.web import geometry  # noqa: E402
from deepvis.web.server import Hub, ServerThread  # noqa: E402
from doc.make_bus_image import draw_bus  # noqa: E402

KEYS = "o*4 down right*4 b b b"


def main(out: str) -> None:
    import cv2
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    model = load_model("efficientnet-lite0")
    with tempfile.TemporaryDirectory() as folder:
        cv2.imwrite(f"{folder}/bus.png", cv2.cvtColor(draw_bus(), cv2.COLOR_RGB2BGR))
        server = ServerThread(Hub(model, folder))
        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--window-size=1520,1480", "--force-device-scale-factor=1"):
            options.add_argument(arg)
        driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
        try:
            driver.get(server.url)
            chain = ActionChains(driver)
            named = {"down": Keys.ARROW_DOWN, "right": Keys.ARROW_RIGHT}
            for name in parse_keys(KEYS):
                chain.send_keys(named.get(name, name))
            chain.perform()
            deadline = time.monotonic() + 120
            while not driver.execute_script(
                    "return deepvis.header && deepvis.header.settled && deepvis.header.keys == "
                    f"{len(parse_keys(KEYS))}"):
                assert time.monotonic() < deadline, "the page did not settle"
                time.sleep(0.1)
            session = Session(model, static_files_for(model.settings, folder))
            for _ in range(4):
                session.state.handle("sel_layer_right")
            x, y = geometry.tile_grid(session.state, session.drawer).centre(13)
            frame = driver.find_element(By.ID, "frame")
            ActionChains(driver).move_to_element_with_offset(
                frame, x - frame.size["width"] // 2, y - frame.size["height"] // 2).perform()
            time.sleep(1.0)
            driver.save_screenshot(out)
        finally:
            driver.quit()
            server.stop()
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "doc/serve-page.png")
