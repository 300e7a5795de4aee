// The studio's service worker: installability, and an offline page instead of the browser's
// error when a page can't be reached. Nothing else is cached: every page and API answer is
// one person's, so they always come from the server.
const CACHE = "reelforge-offline-{{ version }}";
const OFFLINE = "/offline";
const PRECACHE = [OFFLINE, {{ assets | tojson }}].flat();

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches.open(CACHE).then((cache) => cache.addAll(PRECACHE)).then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter((n) => n !== CACHE).map((n) => caches.delete(n))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.mode === "navigate") {
    event.respondWith(fetch(request).catch(() => caches.match(OFFLINE)));
    return;
  }
  const url = new URL(request.url);
  if (request.method === "GET" && PRECACHE.includes(url.pathname + url.search)) {
    event.respondWith(fetch(request).catch(() => caches.match(request)));
  }
});
