// Live video updates: the server's event stream when it has one, polling every 2 s otherwise
// (and whenever the stream is down, e.g. across a server restart). Updates are hints: every
// (re)connect re-reads the videos, so a missed event is never missed for good.

const POLL_MS = 2000;
const FINISHED = new Set(["completed", "failed", "cancelled"]);

export function isFinished(video) {
  return FINISHED.has(video.status);
}

// Watch `ids` (the unfinished videos on the page); `onUpdate(video)` gets each new state.
// `streamUrl` is the page's stream: /api/stream (all of mine) or /api/videos/{id}/stream.
export function watch(ids, onUpdate, { streamUrl = "/api/stream" } = {}) {
  const pending = new Set(ids);
  let source = null;
  let timer = null;
  let stopped = false;

  const deliver = (video) => {
    if (isFinished(video)) pending.delete(video.id);
    onUpdate(video);
  };

  async function pollOnce() {
    for (const id of [...pending]) {
      try {
        const response = await fetch(`/api/videos/${encodeURIComponent(id)}`, {
          headers: { accept: "application/json" },
          credentials: "same-origin",
        });
        if (response.status === 404) { pending.delete(id); continue; }
        if (!response.ok) continue;
        const json = await response.json();
        deliver(json.data);
      } catch {
        // The server is away (restarting?): try again on the next tick.
      }
    }
  }

  function schedule() {
    clearTimeout(timer);
    if (stopped) return;
    timer = setTimeout(async () => {
      if (!pending.size) {
        // Everything watched has finished: nothing left to hear about.
        if (source) source.close();
        return;
      }
      const streaming = source && source.readyState === EventSource.OPEN;
      if (!streaming && pending.size) await pollOnce();
      if (!streaming && source && source.readyState === EventSource.CLOSED) connect();
      schedule();
    }, POLL_MS);
  }

  function connect() {
    if (!("EventSource" in window)) return;
    if (source) source.close();
    source = new EventSource(streamUrl, { withCredentials: true });
    source.addEventListener("open", () => { pollOnce(); });
    source.addEventListener("video.update", (event) => {
      try {
        const data = JSON.parse(event.data);
        const video = { ...data, id: data.id || data.videoId };
        if (pending.has(video.id)) deliver(video);
      } catch {
        // A malformed event is ignored; polling still covers the video.
      }
    });
  }

  if (pending.size) {
    connect();
    schedule();
  }
  return {
    add(id) {
      pending.add(id);
      if (!source || source.readyState === EventSource.CLOSED) connect();
      schedule();
    },
    stop() { stopped = true; clearTimeout(timer); if (source) source.close(); },
  };
}

// An estimate of the time left from how fast progress has been rising.
export class Eta {
  constructor() { this.first = null; }
  update(progress) {
    const now = performance.now();
    if (this.first === null || progress < this.first.progress) {
      this.first = { progress, now };
      return "";
    }
    const gained = progress - this.first.progress;
    const elapsed = (now - this.first.now) / 1000;
    if (gained <= 0 || elapsed < 1) return "";
    const left = ((100 - progress) * elapsed) / gained;
    if (left < 1) return "Almost there…";
    return left < 90 ? `About ${Math.ceil(left)} s left` : `About ${Math.ceil(left / 60)} min left`;
  }
}
