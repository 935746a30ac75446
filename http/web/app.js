// Placeholder: lists the newest clips' titles from the API.
"use strict";
fetch("/api/v1/clips?limit=20")
	.then((r) => r.json())
	.then((page) => {
		const list = document.getElementById("clips");
		for (const clip of page.clips) {
			const item = document.createElement("li");
			item.textContent = clip.title;
			list.appendChild(item);
		}
	});
