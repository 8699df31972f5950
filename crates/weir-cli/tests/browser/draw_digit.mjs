// Draws a "1" on weir serve's page in headless Chromium, presses Predict, waits for the
// answer, and saves a screenshot. Usage: node draw_digit.mjs URL SCREENSHOT.png
// Prints one JSON line: {"label": "...", "version": "...", "bars": N}.
import { chromium } from "playwright-core";

const [url, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--headless=new"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1000, height: 600 } });
  await page.goto(url);
  const pad = await page.locator("#pad").boundingBox();
  // A vertical stroke down the middle, as a "1" is drawn.
  await page.mouse.move(pad.x + 140, pad.y + 40);
  await page.mouse.down();
  for (let y = 40; y <= 240; y += 10) await page.mouse.move(pad.x + 140, pad.y + y);
  await page.mouse.up();
  await page.click("#predict");
  await page.waitForFunction(() => document.getElementById("label").textContent !== "–");
  const label = await page.textContent("#label");
  const version = await page.textContent("#version");
  const bars = await page.locator("#probabilities tr").count();
  await page.screenshot({ path: screenshot });
  console.log(JSON.stringify({ label, version, bars }));
} finally {
  await browser.close();
}
