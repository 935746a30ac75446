// Browser test of the mirror's feed page: drives Debian's chromium through
// playwright-core against a running mirror that serves the page and the
// HTTP API, and publishes one more clip through the creator's home.
//
// Environment:
//   BASE_URL      the mirror's HTTP address, e.g. http://127.0.0.1:8080
//   CLIPMESH      the clipmesh binary
//   CREATOR_HOME  home of the creator node the mirror replicates, with the
//                 four sample clips published by ALICE with display name
//                 ALICE_NAME
//   ALICE_NAME    the display name of the sample clips' creator
//   SAMPLES       the samples folder (clips.tsv and the media files)
//   ARTIFACTS     folder for the screenshots
//   CHROMIUM      the browser, default /usr/bin/chromium
//
// Prints one "ok N - ..." line per check and "N passed, N failed" at the
// end; exits 1 on the first failed check.
'use strict';

const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { chromium } = require('playwright-core');

const env = {};
for (const name of ['BASE_URL', 'CLIPMESH', 'CREATOR_HOME', 'ALICE_NAME',
	'SAMPLES', 'ARTIFACTS']) {
	if (!process.env[name]) {
		console.error(`feed_test: ${name} is not set`);
		process.exit(2);
	}
	env[name] = process.env[name];
}
env.CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

// Deadlines are generous because sanitizer builds on a busy machine are
// slow. A passing run goes on as soon as each condition holds.
const API_DEADLINE_MS = 120000;
const PAGE_DEADLINE_MS = 30000;
const PLAY_DEADLINE_MS = 30000;

const XSS_TITLE = '<img src=x onerror=alert(1)>';
const XSS_TEXT = '<script>alert(2)</script><b>bold?</b>';
const XSS_TAG = '<i>tag</i>';
const XSS_PRODUCT = 'gtin:2000000005058';

const DESKTOP = { viewport: { width: 1280, height: 800 } };
const PHONE = {
	viewport: { width: 390, height: 844 },
	deviceScaleFactor: 2,
	isMobile: true,
	hasTouch: true,
};

let checks = 0;

function pass(what) {
	checks++;
	console.log(`ok ${checks} - ${what}`);
}

class CheckFailed extends Error {}

function check(condition, what) {
	if (!condition)
		throw new CheckFailed(what);
}

function equal(actual, expected, what) {
	check(JSON.stringify(actual) === JSON.stringify(expected),
		`${what}: got ${JSON.stringify(actual)}, ` +
		`expected ${JSON.stringify(expected)}`);
}

// Reads samples/clips.tsv into [{file, product, title, rating, lang}].
function readSamples() {
	const lines = fs.readFileSync(path.join(env.SAMPLES, 'clips.tsv'),
		'utf8').trim().split('\n');
	const columns = lines.shift().split('\t');
	return lines.map((line) => {
		const fields = line.split('\t');
		const row = {};
		columns.forEach((name, i) => { row[name] = fields[i]; });
		row.rating = Number(row.rating);
		return row;
	});
}

function clipmesh(...args) {
	return execFileSync(env.CLIPMESH, ['--home', env.CREATOR_HOME, ...args],
		{ encoding: 'utf8' }).trim();
}

// Polls CONDITION (an async function) every 200 ms until it returns a
// truthy value, and returns that value. Fails after TIMEOUT ms, naming
// WHAT and the last value or error seen, so a condition may throw to say
// why it is not met yet.
async function poll(what, condition, timeout) {
	const deadline = Date.now() + timeout;
	let last;
	for (;;) {
		try {
			const value = await condition();
			if (value)
				return value;
			last = value;
		} catch (err) {
			last = err.message;
		}
		if (Date.now() > deadline) {
			throw new CheckFailed(`timed out after ${timeout / 1000}s ` +
				`waiting for ${what} (last: ${JSON.stringify(last)})`);
		}
		await new Promise((resolve) => setTimeout(resolve, 200));
	}
}

async function getJson(route) {
	const response = await fetch(env.BASE_URL + route);
	if (!response.ok)
		throw new Error(`GET ${route}: HTTP ${response.status}`);
	return response.json();
}

// Waits until the mirror's API lists exactly COUNT clips, each with all
// its media complete, and returns them.
function mirrorClips(count) {
	return poll(`${count} clips with complete media in the API`, async () => {
		const page = await getJson('/api/v1/clips?limit=50');
		const complete = page.clips.every((clip) =>
			clip.media.every((item) => item.complete));
		return page.clips.length === count && complete ? page.clips : null;
	}, API_DEADLINE_MS);
}

// Waits until FN (run in the page with ARG) returns a truthy value.
async function waitInPage(page, what, fn, arg, timeout = PAGE_DEADLINE_MS) {
	try {
		const handle = await page.waitForFunction(fn, arg, { timeout });
		return handle.jsonValue();
	} catch (err) {
		throw new CheckFailed(`timed out after ${timeout / 1000}s waiting ` +
			`for ${what} on ${page.url()}`);
	}
}

function titlesOnPage(page) {
	return page.$$eval('article.clip .clip-title',
		(nodes) => nodes.map((node) => node.textContent));
}

function waitForClipCount(page, count) {
	return waitInPage(page, `${count} clips on the page`, (n) =>
		document.querySelectorAll('article.clip').length === n &&
		document.getElementById('feed').getAttribute('aria-busy') === 'false',
	count);
}

// Records what must never happen on a page: dialogs, uncaught errors and
// console errors (which include Content-Security-Policy violations).
function watch(page, problems) {
	page.on('dialog', async (dialog) => {
		problems.push(`dialog: ${dialog.type()} ${dialog.message()}`);
		await dialog.dismiss();
	});
	page.on('pageerror', (err) => problems.push(`page error: ${err}`));
	page.on('console', (message) => {
		if (message.type() !== 'error')
			return;
		// Chromium requests /favicon.ico by itself, and the page has none.
		if (/\/favicon\.ico$/.test(message.location().url || ''))
			return;
		problems.push(`console error: ${message.text()}`);
	});
}

function article(page, title) {
	return page.locator('article.clip', {
		has: page.locator('.clip-title', { hasText: title }),
	});
}

// Scrolls the clip titled TITLE into view and waits until its video plays
// by itself (muted autoplay) past 0.5 s. Returns the video's duration.
async function checkAutoplay(page, title) {
	const clip = article(page, title);
	await clip.scrollIntoViewIfNeeded();
	await clip.evaluate((node) => node.scrollIntoView());
	const video = clip.locator('video');
	await poll(`the video of "${title}" to play past 0.5 s`, () =>
		video.evaluate((v) => !v.paused && v.currentTime > 0.5),
	PLAY_DEADLINE_MS);
	const state = await video.evaluate((v) => ({
		muted: v.muted,
		controls: v.controls,
		playsInline: v.playsInline,
		duration: v.duration,
	}));
	check(state.muted, `video of "${title}" autoplays muted`);
	check(state.controls, `video of "${title}" shows controls`);
	check(state.playsInline, `video of "${title}" plays inline`);
	return state.duration;
}

// Seeks the video of TITLE to the middle and checks that it plays on
// from there. Seeking beyond the buffered part needs Range requests.
async function checkSeek(page, title, duration) {
	const video = article(page, title).locator('video');
	const target = Math.max(1, Math.min(duration / 2, duration - 2));
	const seekableEnd = await video.evaluate((v) =>
		v.seekable.length ? v.seekable.end(v.seekable.length - 1) : 0);
	check(seekableEnd >= target,
		`video of "${title}" is seekable to ${target.toFixed(1)} s ` +
		`(seekable up to ${seekableEnd.toFixed(1)} s)`);

	await video.evaluate((v, t) => { v.currentTime = t; }, target);
	const reached = await poll(`"${title}" to play on after seeking to ` +
		`${target.toFixed(1)} s`, () => video.evaluate((v, t) =>
		!v.seeking && !v.paused && v.currentTime > t + 0.3 &&
		v.currentTime < t + 5 ? v.currentTime : 0, target),
	PLAY_DEADLINE_MS);
	return { target, reached };
}

async function checkSamples(page, samples, problems) {
	const response = await page.goto(env.BASE_URL + '/');
	const policy = response.headers()['content-security-policy'] || '';
	check(policy.includes("default-src 'self'"),
		`the page is served with a Content-Security-Policy, got "${policy}"`);
	await waitForClipCount(page, samples.length);
	const titles = await titlesOnPage(page);
	equal([...titles].sort(), samples.map((s) => s.title).sort(),
		'titles on the page');
	pass(`page shows the ${samples.length} sample clips' titles`);

	for (const sample of samples) {
		const clip = article(page, sample.title);
		equal(await clip.locator('.clip-rating').getAttribute('aria-label'),
			`${sample.rating} of 5 stars`, `rating of "${sample.title}"`);
		equal(await clip.locator('.clip-product').textContent(),
			sample.product, `product of "${sample.title}"`);
		equal(await clip.locator('.clip-creator').textContent(),
			env.ALICE_NAME, `creator of "${sample.title}"`);
		equal(await clip.getAttribute('lang'), sample.lang,
			`language of "${sample.title}"`);
	}
	pass('each clip shows its rating, product, creator and language');

	const ranges = [];
	page.on('response', (response) => {
		if (response.url().includes('/api/v1/media/') &&
		    response.status() === 206)
			ranges.push(response.url());
	});

	const videos = samples.filter((s) => /\.(mp4|webm)$/.test(s.file));
	for (const sample of videos) {
		const duration = await checkAutoplay(page, sample.title);
		pass(`video of "${sample.title}" (${sample.file}) plays muted ` +
			'when scrolled into view');
		const others = await page.$$eval('video', (list) =>
			list.filter((v) => !v.paused).length);
		equal(others, 1, 'videos playing at once');

		const seek = await checkSeek(page, sample.title, duration);
		pass(`"${sample.title}" plays on from ${seek.target.toFixed(1)} s ` +
			`after a seek (reached ${seek.reached.toFixed(1)} s of ` +
			`${duration.toFixed(1)} s)`);
	}
	check(ranges.length > 0, 'the browser fetched media with Range ' +
		'requests answered 206');
	pass(`media was served with Range requests (${ranges.length} ` +
		'responses 206)');

	const photos = samples.filter((s) => /\.jpe?g$/.test(s.file));
	for (const sample of photos) {
		const img = article(page, sample.title).locator('img.clip-photo');
		await img.scrollIntoViewIfNeeded();
		await poll(`the photo of "${sample.title}" to load`, () =>
			img.evaluate((node) => node.complete && node.naturalWidth > 0),
		PAGE_DEADLINE_MS);
		pass(`photo of "${sample.title}" is shown`);
	}
	equal(problems, [], 'errors and dialogs on the page');
}

// Opens the page with a page size of 1 and scrolls to the end until the
// whole feed has loaded, page by page.
async function checkPaging(page, count) {
	const cursors = [];
	page.on('request', (request) => {
		const url = new URL(request.url());
		if (url.pathname === '/api/v1/clips' && url.searchParams.get('cursor'))
			cursors.push(url.searchParams.get('cursor'));
	});
	await page.goto(env.BASE_URL + '/?limit=1');
	await waitInPage(page, 'the first clip', () =>
		document.querySelectorAll('article.clip').length >= 1);
	await poll('the whole feed to load while scrolling', async () => {
		await page.evaluate(() => {
			const clips = document.querySelectorAll('article.clip');
			clips[clips.length - 1].scrollIntoView();
		});
		const state = await page.evaluate(() => ({
			clips: document.querySelectorAll('article.clip').length,
			status: document.getElementById('status').textContent,
		}));
		if (!state.status.startsWith('End of the feed'))
			throw new Error(`${state.clips} clips, status "${state.status}"`);
		return true;
	}, PAGE_DEADLINE_MS);
	const ids = await page.$$eval('article.clip',
		(nodes) => nodes.map((node) => node.dataset.id));
	equal(ids.length, count, 'clips loaded with a page size of 1');
	equal(new Set(ids).size, count, 'distinct clips loaded');
	equal(cursors.length, count - 1, 'page requests with a cursor');
	pass(`feed loads ${count} clips one page at a time by cursor while ` +
		'scrolling');
}

async function checkProductFilter(page, samples) {
	const sample = samples.find((s) => s.file.endsWith('.webm')) ||
		samples[0];
	await page.goto(env.BASE_URL + '/');
	await waitForClipCount(page, samples.length);

	await article(page, sample.title).locator('.clip-product').click();
	await waitForClipCount(page, 1);
	equal(new URL(page.url()).searchParams.get('product'), sample.product,
		'product in the URL after clicking it');
	equal(await titlesOnPage(page), [sample.title], 'titles after filtering');
	equal(await page.locator('#filter').textContent(),
		`Product ${sample.product}`, 'filter bar');
	check(await page.locator('#all-clips').isVisible(),
		'"All clips" is visible while filtered');
	pass(`clicking product ${sample.product} shows only its clip`);

	await page.reload();
	await waitForClipCount(page, 1);
	equal(await titlesOnPage(page), [sample.title], 'titles after reload');
	pass('the filtered URL shows the same clip when opened again');

	await page.locator('#all-clips').click();
	await waitForClipCount(page, samples.length);
	equal(new URL(page.url()).search, '', 'query after "All clips"');
	check(await page.locator('#filter').isHidden(),
		'filter bar is hidden without a filter');
	pass('"All clips" clears the filter');

	await page.goBack();
	await waitForClipCount(page, 1);
	equal(await titlesOnPage(page), [sample.title], 'titles after going back');
	pass('going back in history restores the product filter');
}

async function checkHostileClip(page, samples, problems) {
	clipmesh('key', 'new', 'bob');
	const photo = samples.find((s) => /\.jpe?g$/.test(s.file));
	clipmesh('publish', path.join(env.SAMPLES, photo.file), '--as', 'bob',
		'--product', XSS_PRODUCT, '--title', XSS_TITLE, '--text', XSS_TEXT,
		'--tag', XSS_TAG, '--rating', '1');
	await mirrorClips(samples.length + 1);

	await page.goto(env.BASE_URL + '/');
	await waitForClipCount(page, samples.length + 1);
	const injected = await page.evaluate(() => ({
		imgX: document.querySelectorAll('img[src="x"]').length,
		handlers: document.querySelectorAll('[onerror]').length,
		scripts: document.scripts.length,
		bold: document.querySelectorAll('.clip-info b, .clip-info i').length,
	}));
	equal(injected, { imgX: 0, handlers: 0, scripts: 1, bold: 0 },
		'elements created from clip text');
	equal((await titlesOnPage(page)).sort(),
		[XSS_TITLE, ...samples.map((s) => s.title)].sort(),
		'titles with the hostile clip');

	const clip = article(page, XSS_TITLE);
	await clip.scrollIntoViewIfNeeded();
	equal(await clip.locator('.clip-text').textContent(), XSS_TEXT,
		'text of the hostile clip');
	equal(await clip.locator('.clip-tag').textContent(), '#' + XSS_TAG,
		'tag of the hostile clip');
	await poll('the hostile clip\'s photo to load', () =>
		clip.locator('img.clip-photo').evaluate((node) =>
			node.complete && node.naturalWidth > 0), PAGE_DEADLINE_MS);
	equal(problems, [], 'errors and dialogs on the page');
	pass('a clip titled <img src=x onerror=alert(1)> shows the literal ' +
		'text and fires no dialog');
	return clip;
}

async function checkCreatorFilter(page, samples, hostileClip) {
	const bob = hostileClip.locator('.clip-creator');
	const shortName = await bob.textContent();
	check(/^[0-9a-f]{8}…$/.test(shortName),
		`creator without a profile shows a short key, got "${shortName}"`);
	await bob.click();
	await waitForClipCount(page, 1);
	equal(await titlesOnPage(page), [XSS_TITLE], 'titles of bob\'s clips');
	check(/^[0-9a-f]{64}$/.test(new URL(page.url()).searchParams
		.get('author') || ''), 'author key in the URL');
	pass('clicking a creator without a profile shows only their clip');

	await page.locator('#all-clips').click();
	await waitForClipCount(page, samples.length + 1);
	await article(page, samples[0].title).locator('.clip-creator').click();
	await waitForClipCount(page, samples.length);
	equal((await titlesOnPage(page)).sort(),
		samples.map((s) => s.title).sort(), 'titles of alice\'s clips');
	await waitInPage(page, 'the creator\'s name in the filter bar',
		(name) => document.getElementById('filter').textContent
			.startsWith('Creator ' + name), env.ALICE_NAME);
	pass(`clicking creator "${env.ALICE_NAME}" shows only their clips`);

	const both = new URL(page.url());
	both.searchParams.set('product', samples[0].product);
	await page.goto(both.href);
	await waitForClipCount(page, 1);
	equal(await titlesOnPage(page), [samples[0].title],
		'titles with a creator and a product filter');
	await waitInPage(page, 'both filters in the filter bar',
		([name, product]) => {
			const text = document.getElementById('filter').textContent;
			return text.startsWith('Creator ' + name) &&
				text.endsWith('Product ' + product);
		}, [env.ALICE_NAME, samples[0].product]);
	pass('a creator and a product filter in the URL apply together');
}

// Opens the page filtered by a creator key that is not hex. Whether the
// mirror rejects the key or finds no clips, the page must show a message
// and no clip.
async function checkBadFilter(context) {
	const page = await context.newPage();
	await page.goto(env.BASE_URL + '/?author=not-a-key');
	await waitInPage(page, 'the final status for an invalid creator key',
		() => document.getElementById('status').classList
			.contains('status-final'));
	const status = await page.locator('#status').textContent();
	check(status === 'No clips match this filter.' ||
		/^Could not load clips: .+\. Retry$/.test(status),
		`status for an invalid creator key: "${status}"`);
	equal(await page.locator('article.clip').count(), 0,
		'clips for an invalid creator key');
	equal(await page.locator('#filter').textContent(), 'Creator not-a-ke…',
		'filter bar for an invalid creator key');
	await page.close();
	pass(`an invalid creator key shows "${status}" and no clip`);
}

async function checkLayout(page, name) {
	await page.goto(env.BASE_URL + '/');
	await waitInPage(page, 'the first clip', () =>
		document.querySelectorAll('article.clip').length >= 1);
	const layout = await page.evaluate(() => {
		const first = document.querySelector('article.clip');
		const box = first.getBoundingClientRect();
		const media = first.querySelector('.clip-media')
			.getBoundingClientRect();
		return {
			overflowX: document.documentElement.scrollWidth > innerWidth,
			clipTop: Math.round(box.top),
			clipHeight: Math.round(box.height),
			viewportHeight: innerHeight,
			mediaVisible: media.height > innerHeight / 3 &&
				media.top >= 0 && media.bottom <= innerHeight,
		};
	});
	equal(layout.overflowX, false, `${name}: horizontal overflow`);
	equal(layout.clipTop, 0, `${name}: top of the newest clip`);
	equal(layout.clipHeight, layout.viewportHeight,
		`${name}: clip height against viewport height`);
	check(layout.mediaVisible, `${name}: media fills most of the clip`);

	fs.mkdirSync(env.ARTIFACTS, { recursive: true });
	const file = path.join(env.ARTIFACTS, `feed-${name}.png`);
	await page.screenshot({ path: file });
	pass(`${name} layout: one clip per screen, no overflow (${file})`);
}

async function main() {
	const samples = readSamples();
	await mirrorClips(samples.length);
	await poll(`the API to name the samples' creator "${env.ALICE_NAME}"`,
		async () => {
			const page = await getJson('/api/v1/clips?limit=50');
			return page.clips.every((clip) =>
				clip.author_name === env.ALICE_NAME);
		}, API_DEADLINE_MS);
	pass(`the API lists the ${samples.length} sample clips with their media`);

	const args = ['--mute-audio'];
	// Chromium refuses to start as root unless its sandbox is off.
	if (process.getuid && process.getuid() === 0)
		args.push('--no-sandbox');
	const browser = await chromium.launch({
		executablePath: env.CHROMIUM,
		args,
	});
	try {
		const problems = [];
		const desktop = await browser.newContext(DESKTOP);
		const page = await desktop.newPage();
		watch(page, problems);

		await checkSamples(page, samples, problems);
		await checkPaging(page, samples.length);
		await checkProductFilter(page, samples);
		await checkLayout(page, 'desktop');
		const hostileClip = await checkHostileClip(page, samples, problems);
		await checkCreatorFilter(page, samples, hostileClip);
		await checkBadFilter(desktop);

		const phone = await browser.newContext(PHONE);
		const phonePage = await phone.newPage();
		watch(phonePage, problems);
		await checkLayout(phonePage, 'phone');

		equal(problems, [], 'errors and dialogs on the pages');
		pass('no dialog, page error or console error on any page');
	} finally {
		await browser.close();
	}
	console.log(`${checks} passed, 0 failed`);
}

main().catch((err) => {
	const reason = err instanceof CheckFailed ? err.message : err.stack;
	console.error(`FAIL: ${reason}`);
	console.log(`${checks} passed, 1 failed`);
	process.exit(1);
});
