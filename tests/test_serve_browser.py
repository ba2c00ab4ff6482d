"""The service's page in a real browser (Debian's chromium driven by Playwright): draw, upload, verdict, siting."""

from __future__ import annotations

import base64
import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import shapely

from serve_helpers import Server

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)"
)
SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
REJECT_RGB = (0xC6, 0x28, 0x28)  # the 不予准入 badge's colour (app.css)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve-browser")
    running = Server(folder, env={"THREELINES_CACHE": str(folder / "cache"), "THREELINES_TOKEN": ""})
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="zh-CN")
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    opened.goto(f"{server.url}/")
    opened.wait_for_selector("body[data-ready=true]", timeout=60_000)
    yield opened
    context.close()
    assert errors == []  # no script error on the page


def red_line_point(server) -> shapely.Point:
    import httpx

    red = httpx.get(f"{server.url}/v1/layers/redline", timeout=60).json()
    return shapely.from_geojson(json.dumps(red["features"][0]["geometry"])).point_on_surface()


def screen_point(page, lon: float, lat: float) -> tuple[float, float]:
    """Where a lon/lat lies on the screen (page pixels)."""
    return tuple(page.evaluate(
        """([lat, lon]) => { const p = map.latLngToContainerPoint([lat, lon]);
           const box = map.getContainer().getBoundingClientRect(); return [p.x + box.left, p.y + box.top]; }""",
        [lat, lon],
    ))  # fmt: skip


def test_page_shows_the_jurisdiction_layers(page):
    assert page.inner_text("#jurisdiction") == "南昌县三线一单 (sample)"
    counts = page.evaluate("Object.fromEntries(Object.entries(overlays).map(([k, v]) => [k, v.getLayers().length]))")
    assert counts == {"units": 47, "quality": 4, "caps": 3, "redline": 32, "county": 1}
    assert "优先保护单元" in page.inner_text(".legend")
    assert page.locator(".leaflet-control-scale-line").count() == 1


def test_draw_a_polygon_over_a_red_line_and_pick_c2614(page, server):
    point = red_line_point(server)
    page.evaluate(f"map.setView([{point.y}, {point.x}], 16)")
    page.wait_for_timeout(300)
    x, y = screen_point(page, point.x, point.y)
    page.click("#draw-polygon")
    for dx, dy in ((-50, -50), (50, -50), (50, 50)):
        page.mouse.click(x + dx, y + dy)
        page.wait_for_timeout(250)
    page.mouse.dblclick(x - 50, y + 50)
    assert page.inner_text("#footprint-status") == "已画出: Polygon, 4 个顶点"
    page.fill("#industry", "2614")  # the searchable list offers the class by its code
    page.wait_for_function("document.querySelectorAll('#industry-list option').length > 0", timeout=20_000)
    offered = page.eval_on_selector_all("#industry-list option", "options => options.map(o => o.value)")
    assert offered[0] == "C2614 有机化学原料制造"
    page.fill("#industry", offered[0])
    page.click("#screen")
    page.wait_for_selector("#badge.reject", timeout=60_000)
    assert page.inner_text("#badge") == "不予准入"
    assert "占用生态保护红线" in page.inner_text("#triggers")
    # The overlap with the red line is highlighted on the map, and the downloads are ready.
    page.wait_for_function("evidence.getLayers().length > 0", timeout=60_000)
    pieces = page.evaluate("evidence.getLayers()[0].getLayers().map(l => l.feature.properties.piece)")
    assert "overlap" in pieces
    page.wait_for_function("document.getElementById('dl-html').href.startsWith('blob:')", timeout=60_000)
    assert page.get_attribute("#dl-json", "href").startswith("blob:")


def test_drop_a_zipped_shapefile_on_the_map(page, tmp_path):
    p02 = pyogrio.read_dataframe(SAMPLE / "projects" / "P02.geojson")[["id", "name", "industry", "geometry"]]
    pyogrio.write_dataframe(p02, tmp_path / "site.shp")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for ending in ("shp", "shx", "dbf", "prj", "cpg"):
            archive.write(tmp_path / f"site.{ending}", f"site.{ending}")
    page.evaluate(
        """(data) => { const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
           const transfer = new DataTransfer(); transfer.items.add(new File([bytes], "site.zip", {type: "application/zip"}));
           map.getContainer().dispatchEvent(new DragEvent("drop", {dataTransfer: transfer, bubbles: true, cancelable: true})); }""",
        base64.b64encode(buffer.getvalue()).decode(),
    )  # fmt: skip
    page.wait_for_selector("#badge.reject", timeout=60_000)
    assert page.inner_text("#footprint-status") == "已选文件: site.zip"
    assert "湿地生态旅游度假村项目" in page.inner_text("#summary")
    assert "南昌县水源涵养林生态保护红线03" in page.inner_text("#triggers")


def test_siting_tab_colours_the_zones(page):
    page.click("[data-tab=siting]")
    page.fill("#siting-industry", "C2614")
    page.click("#siting")
    page.wait_for_selector("#siting-summary td", timeout=120_000)
    fills = page.evaluate("zonesLayer.getLayers()[0].getLayers().map(l => l.options.fillColor)")
    assert {"#c62828", "#ef6c00"} <= set(fills)  # reject and conditional zones
    assert "不予准入" in page.inner_text("#siting-summary")
    # Clicking a zone shows its rules.
    page.evaluate(
        "zonesLayer.getLayers()[0].getLayers().find(l => l.feature.properties.rules.includes('chem-in-park')).openPopup()"
    )
    popup = page.inner_text(".leaflet-popup-content")
    assert popup.startswith("有条件准入")
    assert "chem-in-park · 有条件准入 · 化工项目位于合规园区" in popup


def test_screenshot_is_not_blank_and_shows_the_badge_colour(page, server, tmp_path):
    from PIL import Image

    point = red_line_point(server)
    feature = {"type": "Feature", "properties": {}, "geometry": json.loads(shapely.to_geojson(point.buffer(0.002)))}
    page.evaluate("(geometry) => { state.footprint = geometry; }", feature["geometry"])
    page.fill("#industry", "C2614")
    page.click("#screen")
    page.wait_for_selector("#badge.reject", timeout=60_000)
    page.locator("#badge").scroll_into_view_if_needed()
    page.screenshot(path=tmp_path / "page.png")
    pixels = np.asarray(Image.open(tmp_path / "page.png").convert("RGB")).reshape(-1, 3)
    assert len(np.unique(pixels, axis=0)) > 100  # a map and a panel, not a blank page
    badge = np.all(np.abs(pixels.astype(int) - REJECT_RGB) <= 3, axis=1).sum()
    assert badge > 500  # the red 不予准入 badge is there


def test_english_switch(page):
    page.click("#lang")
    assert page.inner_text("#title") == "Three lines, one list: site screening"
    assert "Priority protection unit" in page.inner_text(".legend")
