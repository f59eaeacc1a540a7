// The observer in a real browser, on the chat demo (what `npm start` runs): crash session_ids from
// the page and watch its restart count go 0 -> 1 and the history show the exit and the restart;
// open a chat tab and watch its session appear in have_request. Screenshots go to
// test-output/browser/ (docs/images/observer*.png are copies). Needs /usr/bin/chromium: skipped
// loudly without it, failed in CI.
import t from 'tap';
import { sidTag } from '../lib/comet/sid_tag.js';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { CHROMIUM, launchBrowser } from './fixtures/browser.js';
import { buildClientBundle } from './fixtures/client_bundle.js';
import { projectRoot, startChatServer } from '../examples/chat/server.js';
import { startNode } from './fixtures/cluster.js';
import { RedisServer, requireRedis } from './fixtures/redis.js';

const root = projectRoot();
const outputDir = join(root, 'test-output', 'browser');

if (!existsSync(CHROMIUM)) {
  const reason = `${CHROMIUM} not found: the observer browser test did NOT run (apt-get install -y chromium)`;
  process.stderr.write(`\n*** ${process.env.CI ? 'FAILED (CI is set)' : 'SKIPPED'}: ${reason} ***\n\n`);
  if (process.env.CI) t.fail(`CI is set and ${reason}`);
  else void t.test('the observer in a browser', { skip: reason }, () => {});
} else {
  void t.test('the observer page: crash session_ids from it, restarts 0 -> 1, the exit and the restart in the history; a chat tab shows in have_request', async (t) => {
    const bundleDir = await buildClientBundle(t, root);
    const chat = await startChatServer({
      assets: { pageDir: join(root, 'examples', 'chat'), bundleDir },
      observer: { bundleDir, tickMs: 250 },
    });
    t.teardown(() => chat.close());
    const context = await launchBrowser(t, 'comet-observer-');
    const pageErrors: string[] = [];
    const newPage = async (): Promise<Page> => {
      const page = await context.newPage();
      await page.setViewportSize({ width: 1100, height: 900 });
      page.on('pageerror', (e) => pageErrors.push(e.message));
      return page;
    };
    mkdirSync(outputDir, { recursive: true });

    const obs = await newPage();
    await obs.goto(`${chat.url}observer`);
    await obs.waitForSelector('[data-testid=status][data-state=open]', { timeout: 10_000 });
    const ids = '[data-node="comet_sup/session_ids"]';
    await obs.waitForSelector(`${ids}[data-restarts="0"][data-status="running"]`, { timeout: 5000 });
    t.pass('session_ids shows restarts 0');
    t.ok(await obs.$('[data-node="comet_sup"] [data-node="comet_sup/connection_sup"] [data-node="comet_sup/connection_sup/connection"]'), 'the tree nests by path');

    await obs.selectOption(`${ids} > .row [data-testid=reason]`, 'kill');
    await obs.click(`${ids} > .row [data-action="crash"]`);
    await obs.waitForSelector(`${ids}[data-restarts="1"][data-status="running"]`, { timeout: 5000 });
    t.pass('after the crash, session_ids shows restarts 1');
    await obs.waitForSelector('[data-testid=history] li[data-kind=restart][data-path="comet_sup/session_ids"]', { timeout: 5000 });
    const exit = await obs.textContent('[data-testid=history] li[data-kind=exit][data-path="comet_sup/session_ids"]');
    t.match(exit, /reason: killed.*supervisor: restart/, 'the history shows the exit, its reason and what the supervisor did');
    const order = await obs.$$eval('[data-testid=history] li', (els) => els.map((e) => (e as HTMLElement).dataset.kind));
    t.ok(order.indexOf('restart') < order.indexOf('exit'), `newest first: ${order.join(', ')}`);

    const tab = await newPage();
    await tab.goto(chat.url);
    await tab.waitForSelector('[data-testid=status][data-state=connected]', { timeout: 10_000 });
    const sid = (await tab.getAttribute('[data-testid=status]', 'data-sid')) ?? '';
    t.ok(sid.length > 8, 'the chat tab has a session');
    await obs.waitForSelector(`[data-testid=sessions] tr[data-session="${sidTag(sid)}"][data-state="have_request"]`, { timeout: 5000 });
    t.pass('the chat tab\'s session shows in have_request');
    await obs.waitForSelector('[data-count=have_request] b:text("1")', { timeout: 5000 });
    t.notOk((await obs.content()).includes(sid), 'the page never shows the full sid');
    await obs.screenshot({ path: join(outputDir, 'observer.png'), fullPage: true });

    // sys:suspend from the page, then resume.
    await obs.click(`${ids} > .row [data-action="suspend"]`);
    await obs.waitForSelector(`${ids}[data-status="suspended"]`, { timeout: 5000 });
    t.pass('session_ids shows suspended');
    await obs.screenshot({ path: join(outputDir, 'observer-suspended.png'), clip: { x: 0, y: 0, width: 1100, height: 280 } });
    await obs.click(`${ids} > .row [data-action="resume"]`);
    await obs.waitForSelector(`${ids}[data-status="running"][data-restarts="1"]`, { timeout: 5000 });
    t.pass('resumed, it runs again, not restarted');
    t.same(pageErrors, [], 'no uncaught errors');
  });

  void t.test('on a cluster node: each node a row with its lease; another node stopped shows lapsed', async (t) => {
    if (!requireRedis(t, 'the observer of a cluster in a browser')) return;
    const bundleDir = await buildClientBundle(t, root);
    const redis = await RedisServer.start(t);
    const a = await startNode(t, redis.url, 'a', { observer: { bundleDir, tickMs: 250 } });
    const b = await startNode(t, redis.url, 'b');
    const aId = a.comet.cluster?.node ?? '';
    const bId = b.comet.cluster?.node ?? '';
    const context = await launchBrowser(t, 'comet-observer-');
    const page = await context.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.setViewportSize({ width: 1100, height: 900 });
    await page.goto(`${a.base}/observer`);
    await page.waitForSelector(`[data-testid=cluster] tr[data-cluster-node="${aId}"][data-lease="alive"][data-self="true"]`, { timeout: 10_000 });
    await page.waitForSelector(`[data-testid=cluster] tr[data-cluster-node="${bId}"][data-lease="alive"][data-self="false"]`, { timeout: 10_000 });
    t.pass('both nodes alive, A marked as this node');
    mkdirSync(outputDir, { recursive: true });
    await page.locator('[data-testid=cluster]').screenshot({ path: join(outputDir, 'observer-cluster.png') });
    await b.comet.close();
    await page.waitForSelector(`[data-testid=cluster] tr[data-cluster-node="${bId}"][data-lease="lapsed"]`, { timeout: 10_000 });
    t.pass('B stopped: lapsed');
    t.same(pageErrors, [], 'no uncaught errors');
  });
}
