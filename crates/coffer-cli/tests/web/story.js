// The browser's story for tests/web.rs: argv is URL WRITER_TOKEN READER_TOKEN
// SCREENSHOT_DIR UPLOAD_FILE; CHROMIUM names the browser.
const { chromium } = require("playwright-core");
const assert = require("assert");
const [url, writer, reader, shots, upload] = process.argv.slice(2);

const errors = [];
let page;
(async () => {
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM, args: ["--no-sandbox"] });
  page = await browser.newPage();
  const shot = (name) => page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
  page.on("pageerror", (e) => errors.push(e.message));

  // Sign-in: a wrong token is refused, the right one lands on the pages.
  await page.goto(`${url}/ui/`);
  assert.ok(page.url().endsWith("/ui/login"), page.url());
  await page.fill("#token", "coffer_wrong");
  await page.click("button[type=submit]");
  await page.waitForSelector("#failed");
  await shot("1-sign-in-refused");
  await page.fill("#token", writer);
  await page.click("button[type=submit]");
  await page.waitForSelector("#listing");
  assert.match(await page.textContent("#who"), /browser \(write\)/);
  await shot("2-browse");

  // Browse to the object, its history and a diff.
  await page.click("#listing >> text=docs/");
  await page.waitForSelector("#listing >> text=notes.txt");
  await page.click("#listing >> text=notes.txt");
  await page.waitForSelector("#history");
  assert.strictEqual(await page.locator("#history tr[data-version]").count(), 2);
  await page.click("#compare");
  await page.waitForSelector("#diff pre.diff");
  const diff = await page.textContent("#diff");
  assert.ok(diff.includes("-line two") && diff.includes("+line 2") && diff.includes("+line three"), diff);
  await shot("3-history-and-diff");

  // Upload a new version, then tag it.
  await page.setInputFiles("#upload input[type=file]", upload);
  await page.click("#upload button");
  await page.waitForSelector("#flash.ok");
  assert.match(await page.textContent("#flash"), /stored version/);
  await page.waitForFunction(() => document.querySelectorAll("#history tr[data-version]").length === 3);
  await page.fill("#tag-form input[name=name]", "reviewed");
  await page.fill("#tag-form input[name=value]", "yes");
  await page.click("#tag-form button");
  await page.waitForSelector("#tags >> text=reviewed=yes");
  await shot("4-uploaded-and-tagged");

  // A change without the CSRF token is refused, and changes nothing.
  const forged = await page.evaluate(async () => {
    const r = await fetch("/api/v1/objects/docs/forged.txt", { method: "PUT", body: "x" });
    return r.status;
  });
  assert.strictEqual(forged, 403);

  // The audit page shows the upload and the tag, made as the token.
  await page.goto(`${url}/ui/#/audit?key=docs/notes.txt`);
  await page.waitForSelector("#audit >> text=tag");
  const audit = await page.textContent("#audit");
  assert.ok(audit.includes("token:browser") && audit.includes("put") && audit.includes("tag"), audit);
  await shot("5-audit");
  await page.goto(`${url}/ui/#/hooks`);
  await page.waitForSelector("#hooks");
  await page.goto(`${url}/ui/#/bundles`);
  await page.waitForSelector("#bundles");

  // Sign out; a read-only token's object page offers no changes.
  await page.click("#logout");
  await page.waitForSelector("#token");
  await page.fill("#token", reader);
  await page.click("button[type=submit]");
  await page.waitForSelector("#listing");
  await page.goto(`${url}/ui/#/object/docs/notes.txt`);
  await page.waitForSelector("#history");
  assert.strictEqual(await page.locator("#upload").count(), 0);
  assert.strictEqual(await page.locator("#tag-form").count(), 0);
  await shot("6-read-only");
  assert.deepStrictEqual(errors, []);
  await browser.close();
  console.log("web story done");
})().catch(async (e) => {
  const flash = page ? await page.textContent("#flash").catch(() => "") : "";
  console.error(e, { pageErrors: errors, flash });
  process.exit(1);
});
