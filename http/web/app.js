// Feed page of a clipmesh mirror: one clip per screen, newest first, read
// page by page from /api/v1/clips and filtered by the URL query (author,
// product or tag). Every string from the API reaches the page through
// textContent or an attribute value, never through HTML parsing, so a
// title such as <img src=x onerror=alert(1)> shows as typed.
'use strict';

const PAGE_SIZE_DEFAULT = 10;
const PAGE_SIZE_MAX = 50;
const QUERY_VALUE_MAX = 512;
const FILTER_KEYS = ['author', 'product', 'tag'];
const SHORT_KEY_CHARS = 8;
const MEDIA_PATH = '/api/v1/media/';

// Fraction of a clip that must be on screen before its video plays.
const PLAY_VISIBLE_RATIO = 0.6;

const dom = {};
const feed = {
	filter: {},
	pageSize: PAGE_SIZE_DEFAULT,
	cursor: null,
	done: false,
	loading: false,
	count: 0,
	// Aborted when the filter changes, which drops the requests in flight.
	view: new AbortController(),
};
let playObserver = null;
let moreObserver = null;

function el(tag, className, text) {
	const node = document.createElement(tag);
	if (className)
		node.className = className;
	if (text !== undefined)
		node.textContent = text;
	return node;
}

function str(value) {
	return typeof value === 'string' ? value : '';
}

function shortKey(key) {
	return str(key).slice(0, SHORT_KEY_CHARS) + '…';
}

// Reads the filter and page size from the URL query. Empty or oversized
// values are ignored, and the page size is clamped to 1..PAGE_SIZE_MAX.
function readQuery() {
	const query = new URLSearchParams(location.search);
	const filter = {};

	for (const key of FILTER_KEYS) {
		const value = query.get(key);
		if (value && value.length <= QUERY_VALUE_MAX)
			filter[key] = value;
	}
	feed.filter = filter;

	const size = Number.parseInt(query.get('limit') || '', 10);
	feed.pageSize = Number.isInteger(size) ?
		Math.min(Math.max(size, 1), PAGE_SIZE_MAX) : PAGE_SIZE_DEFAULT;
}

// Returns the page's own path with FILTER (an object of query values) as
// its query, for links that share a filter.
function filterHref(filter) {
	const query = new URLSearchParams(filter).toString();
	return location.pathname + (query ? '?' + query : '');
}

function filterLink(className, filter, text) {
	const link = el('a', className, text);
	link.href = filterHref(filter);
	link.dataset.filter = '';
	return link;
}

// Fetches URL and returns its JSON body, which must be an object. Throws
// an Error whose message is the API's {"error": ...} text, or the HTTP
// status when there is none.
async function fetchJson(url, signal) {
	const response = await fetch(url, {
		signal,
		headers: { Accept: 'application/json' },
	});
	let body = null;
	try {
		body = await response.json();
	} catch (err) {
		body = null;
	}
	if (response.ok && (body === null || typeof body !== 'object'))
		throw new Error('invalid JSON from ' + url);
	if (!response.ok) {
		const reason = body && typeof body.error === 'string' ?
			body.error : 'HTTP ' + response.status;
		throw new Error(reason);
	}
	return body;
}

function ratingElement(rating) {
	if (!Number.isInteger(rating) || rating < 1 || rating > 5)
		return null;
	const stars = el('span', 'clip-rating',
		'★'.repeat(rating) + '☆'.repeat(5 - rating));
	stars.setAttribute('role', 'img');
	stars.setAttribute('aria-label', rating + ' of 5 stars');
	return stars;
}

function dateElement(createdAt) {
	const date = new Date(str(createdAt));
	if (Number.isNaN(date.getTime()))
		return null;
	const time = el('time', 'clip-date', date.toLocaleDateString(undefined,
		{ year: 'numeric', month: 'short', day: 'numeric' }));
	time.dateTime = date.toISOString();
	return time;
}

// Picks the first video or image the mirror can serve from the clip's
// media list. Returns null when the clip has none.
function pickMedia(clip) {
	const items = Array.isArray(clip.media) ? clip.media : [];

	for (const item of items) {
		const type = str(item && item.type);
		if (!type.startsWith('video/') && !type.startsWith('image/'))
			continue;
		if (!str(item.url).startsWith(MEDIA_PATH))
			continue;
		return item;
	}
	return null;
}

function mediaNote(text) {
	return el('p', 'clip-note', text);
}

function videoElement(item, box) {
	const video = el('video', 'clip-video');

	video.muted = true;
	video.setAttribute('muted', '');
	video.playsInline = true;
	video.setAttribute('playsinline', '');
	video.controls = true;
	video.loop = true;
	video.preload = 'metadata';
	// Browsers report a missing file and an unsupported format alike
	// (Chromium 156 gives MEDIA_ERR_SRC_NOT_SUPPORTED for both), so the
	// message names both causes.
	video.addEventListener('error', () => {
		box.replaceChildren(mediaNote('This ' + str(item.type) +
			' video could not be played: this browser may not support ' +
			'its format, or the mirror could not serve it.'));
	});
	video.src = item.url;
	return video;
}

function mediaElement(clip, title) {
	const box = el('div', 'clip-media');
	const item = pickMedia(clip);

	if (!item) {
		box.append(mediaNote('This clip has no video or photo to show.'));
	} else if (item.complete !== true) {
		box.append(mediaNote('This mirror is still fetching the media ' +
			'of this clip. Reload the page later.'));
	} else if (str(item.type).startsWith('video/')) {
		box.append(videoElement(item, box));
	} else {
		const img = el('img', 'clip-photo');
		img.alt = title;
		img.decoding = 'async';
		img.loading = 'lazy';
		img.addEventListener('error', () => {
			box.replaceChildren(mediaNote('This photo could not be ' +
				'loaded from the mirror.'));
		});
		img.src = item.url;
		box.append(img);
	}
	return box;
}

function infoElement(clip, title) {
	const info = el('div', 'clip-info');

	const heading = el('h2', 'clip-title', title);
	heading.dir = 'auto';
	info.append(heading);

	const meta = el('p', 'clip-meta');
	const rating = ratingElement(clip.rating);
	const date = dateElement(clip.created_at);
	if (rating)
		meta.append(rating);
	if (date)
		meta.append(date);
	info.append(meta);

	const author = str(clip.author);
	const name = str(clip.author_name) || shortKey(author);
	const links = el('p', 'clip-links');
	const creator = filterLink('clip-creator', { author }, name);
	creator.title = 'Clips by ' + author;
	creator.dir = 'auto';
	const product = str(clip.product);
	const productLink = filterLink('clip-product', { product }, product);
	productLink.title = 'Clips about ' + product;
	links.append(creator, productLink);
	info.append(links);

	const text = str(clip.text);
	if (text) {
		const caption = el('p', 'clip-text', text);
		caption.dir = 'auto';
		info.append(caption);
	}

	const tags = Array.isArray(clip.tags) ? clip.tags.filter(str) : [];
	if (tags.length > 0) {
		const list = el('ul', 'clip-tags');
		for (const tag of tags) {
			const entry = el('li');
			entry.append(filterLink('clip-tag', { tag }, '#' + tag));
			list.append(entry);
		}
		info.append(list);
	}
	return info;
}

function clipElement(clip) {
	const title = str(clip.title);
	const article = el('article', 'clip');

	article.setAttribute('aria-label', title);
	article.dataset.id = str(clip.id);
	if (str(clip.lang))
		article.lang = clip.lang;
	article.append(mediaElement(clip, title), infoElement(clip, title));
	return article;
}

// Shows TEXT below the clips. FINAL marks the end of the feed or a failed
// page, which then becomes a snap position so the reader can scroll to it.
// Only final text may snap: Chromium keeps the snapped element in view when
// content is added, so a snapping "Loading…" line would scroll past every
// clip that arrives above it.
function setStatus(text, final, retry) {
	dom.status.replaceChildren(text);
	dom.status.classList.toggle('status-final', Boolean(final));
	if (retry) {
		const button = el('button', 'status-retry', 'Retry');
		button.type = 'button';
		button.addEventListener('click', () => loadPage());
		dom.status.append(' ', button);
	}
}

function pageUrl() {
	const query = new URLSearchParams(feed.filter);
	query.set('limit', String(feed.pageSize));
	if (feed.cursor)
		query.set('cursor', feed.cursor);
	return '/api/v1/clips?' + query.toString();
}

// NOTE: clips are never removed, so a long session keeps the element of
// every clip loaded so far. Videos out of view are paused.
function appendClips(clips) {
	for (const clip of clips) {
		if (!clip || typeof clip !== 'object')
			continue;
		const article = clipElement(clip);
		feed.count++;
		// The ARIA feed pattern: position in the feed, total unknown.
		article.setAttribute('aria-posinset', String(feed.count));
		article.setAttribute('aria-setsize', '-1');
		dom.feed.append(article);
		playObserver.observe(article);
	}
}

// Observes the end of the loaded clips anew, so that the observer reports
// its current position at once. An observer reports only changes, and it
// misses one when the reader scrolls back near the end in the same frame
// in which a page moved the end away.
function watchEnd() {
	moreObserver.unobserve(dom.sentinel);
	moreObserver.observe(dom.sentinel);
}

// Loads the next page of the feed unless one is loading or none is left.
async function loadPage() {
	if (feed.loading || feed.done)
		return;
	feed.loading = true;
	const signal = feed.view.signal;
	dom.feed.setAttribute('aria-busy', 'true');
	setStatus(feed.count ? 'Loading more clips…' : 'Loading clips…');

	let page;
	try {
		page = await fetchJson(pageUrl(), signal);
	} catch (err) {
		if (signal.aborted)
			return;
		feed.loading = false;
		dom.feed.setAttribute('aria-busy', 'false');
		const reason = err.message.replace(/\.$/, '');
		setStatus('Could not load clips: ' + reason + '.', true, true);
		return;
	}
	if (signal.aborted)
		return;

	appendClips(Array.isArray(page.clips) ? page.clips : []);
	const next = page.next_cursor;
	feed.cursor = typeof next === 'string' && next ? next : null;
	feed.done = feed.cursor === null;
	feed.loading = false;
	dom.feed.setAttribute('aria-busy', 'false');

	if (!feed.done) {
		setStatus('Scroll for more clips.');
		watchEnd();
	} else if (feed.count === 0) {
		setStatus(Object.keys(feed.filter).length ?
			'No clips match this filter.' :
			'This mirror has no clips yet.', true);
	} else {
		setStatus(feed.count === 1 ? 'End of the feed: 1 clip.' :
			'End of the feed: ' + feed.count + ' clips.', true);
	}
}

function filterPart(label, value) {
	const part = el('span', 'filter-part', label + ' ');
	const valueElement = el('span', 'filter-value', value);
	valueElement.dir = 'auto';
	part.append(valueElement);
	return part;
}

// Returns the creator part of the filter bar, showing the short key until
// the creator's display name and bio arrive.
function creatorPart(key, signal) {
	const part = filterPart('Creator', shortKey(key));
	const label = part.lastChild;

	fetchJson('/api/v1/creators/' + encodeURIComponent(key), signal)
		.then((creator) => {
			if (signal.aborted)
				return;
			if (str(creator.name))
				label.textContent = creator.name;
			if (str(creator.bio)) {
				const bio = el('span', 'filter-bio', creator.bio);
				bio.dir = 'auto';
				part.append(bio);
			}
		})
		.catch(() => {});	// the short key stays, and the feed still filters
	return part;
}

// Shows every filter of the URL query in the bar; the API applies all of
// them together.
function showFilter(signal) {
	const { author, product, tag } = feed.filter;
	const filtered = Boolean(author || product || tag);

	dom.filter.hidden = !filtered;
	if (filtered)
		dom.allClips.removeAttribute('aria-current');
	else
		dom.allClips.setAttribute('aria-current', 'page');

	dom.filter.replaceChildren();
	if (author)
		dom.filter.append(creatorPart(author, signal));
	if (product)
		dom.filter.append(filterPart('Product', product));
	if (tag)
		dom.filter.append(filterPart('Tag', '#' + tag));
}

// Rebuilds the feed for the filter in the current URL.
function resetFeed() {
	feed.view.abort();
	feed.view = new AbortController();
	readQuery();
	playObserver.disconnect();
	dom.feed.replaceChildren();
	feed.cursor = null;
	feed.done = false;
	feed.loading = false;
	feed.count = 0;
	window.scrollTo(0, 0);

	showFilter(feed.view.signal);
	loadPage();
}

function onPlayVisibility(entries) {
	for (const entry of entries) {
		const video = entry.target.querySelector('video');
		if (!video)
			continue;
		if (entry.intersectionRatio >= PLAY_VISIBLE_RATIO) {
			// Browsers may still block autoplay; the controls stay usable.
			video.play().catch(() => {});
		} else {
			video.pause();
		}
	}
}

function onLinkClick(event) {
	const link = event.target.closest('a[data-filter]');
	if (!link || event.button !== 0 || event.ctrlKey || event.metaKey ||
	    event.shiftKey || event.altKey)
		return;
	event.preventDefault();
	if (link.href !== location.href)
		history.pushState(null, '', link.href);
	resetFeed();
}

function start() {
	dom.feed = document.getElementById('feed');
	dom.status = document.getElementById('status');
	dom.sentinel = document.getElementById('sentinel');
	dom.filter = document.getElementById('filter');
	dom.allClips = document.getElementById('all-clips');
	dom.allClips.dataset.filter = '';

	playObserver = new IntersectionObserver(onPlayVisibility,
		{ threshold: [0, PLAY_VISIBLE_RATIO, 1] });
	// The next page loads when the end is less than two screen heights
	// below the visible area, so that it arrives before the reader reaches
	// the last clip.
	moreObserver = new IntersectionObserver((entries) => {
		if (entries.some((entry) => entry.isIntersecting))
			loadPage();
	}, { rootMargin: '0px 0px 200% 0px' });

	document.addEventListener('click', onLinkClick);
	window.addEventListener('popstate', resetFeed);
	resetFeed();
}

start();
