// Headless Chromium (Debian's `chromium`, or MFR_CHROMIUM) driven by puppeteer-core, for the tests
// of pages mfr writes. A page is opened offline: any request that would leave the machine fails
// the test, as do console errors and uncaught exceptions in the page.
import fs from "node:fs";
import puppeteer, { type Browser, type Page } from "puppeteer-core";

export const chromiumPath = process.env.MFR_CHROMIUM ?? "/usr/bin/chromium";

export interface OpenPage {
  page: Page;
  /** Console errors, page exceptions and refused network requests, in order. */
  problems: string[];
  close(): Promise<void>;
}

let browser: Promise<Browser> | undefined;

function launch(): Promise<Browser> {
  if (!fs.existsSync(chromiumPath))
    throw new Error(`${chromiumPath} is missing: scripts/bootstrap.sh installs Debian's chromium`);
  // --no-sandbox: the tests run as root here, where Chromium's sandbox refuses to start.
  browser ??= puppeteer.launch({ executablePath: chromiumPath, headless: true, args: ["--no-sandbox"] });
  return browser;
}

/** Opens url (file: or a local http: server) in a fresh page of the shared browser. */
export async function openPage(
  url: string,
  o: { viewport?: { width: number; height: number } } = {},
): Promise<OpenPage> {
  const page = await (await launch()).newPage();
  const problems: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`exception: ${e instanceof Error ? e.message : String(e)}`));
  await page.setRequestInterception(true);
  page.on("request", (r) => {
    const u = new URL(r.url());
    const local =
      u.protocol === "file:" ||
      u.protocol === "data:" ||
      u.protocol === "blob:" ||
      u.hostname === "127.0.0.1";
    if (local) void r.continue();
    else {
      problems.push(`network: ${r.url()}`);
      void r.abort();
    }
  });
  if (o.viewport) await page.setViewport(o.viewport);
  await page.goto(url, { waitUntil: "load" });
  return { page, problems, close: () => page.close() };
}

/** Closes the shared browser (call once, after the file's last test). */
export async function closeBrowser(): Promise<void> {
  const b = browser;
  browser = undefined;
  if (b) await (await b).close();
}
