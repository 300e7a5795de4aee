// The gallery: scrub a card's spritesheet under the pointer, filters that apply themselves,
// and cards of unfinished videos that follow their video live.
import { watch } from "./live.js";

const COLUMNS = 5;
const ROWS = 5;
const FRAMES = COLUMNS * ROWS;

function scrubbable(media) {
  const sheet = media.dataset.sprite;
  const layer = media.querySelector(".scrub");
  const line = media.querySelector(".scrub-line");
  if (!sheet || !layer) return;
  let loaded = false;
  const show = (clientX) => {
    if (!loaded) {
      layer.style.backgroundImage = `url("${sheet}")`;
      loaded = true;
    }
    const box = media.getBoundingClientRect();
    const fraction = Math.min(0.999, Math.max(0, (clientX - box.left) / box.width));
    const frame = Math.floor(fraction * FRAMES);
    const col = frame % COLUMNS;
    const row = Math.floor(frame / COLUMNS);
    layer.style.backgroundPosition = `${(col / (COLUMNS - 1)) * 100}% ${(row / (ROWS - 1)) * 100}%`;
    line.style.width = `${fraction * 100}%`;
    media.classList.add("scrubbing");
  };
  const hide = () => media.classList.remove("scrubbing");
  media.addEventListener("pointermove", (event) => show(event.clientX));
  media.addEventListener("pointerdown", (event) => show(event.clientX));
  media.addEventListener("pointerleave", hide);
  media.addEventListener("pointercancel", hide);
  media.addEventListener("pointerup", (event) => { if (event.pointerType !== "mouse") hide(); });
}

const LABELS = { queued: "Queued", in_progress: "Rendering", completed: "Ready", failed: "Failed", cancelled: "Cancelled" };

function update(card, video) {
  const previous = card.dataset.status;
  card.dataset.status = video.status;
  const pill = card.querySelector('[data-role="status"]');
  if (pill) {
    pill.className = `pill ${video.status}`;
    pill.textContent = LABELS[video.status] || video.status;
  }
  const bar = card.querySelector('[data-role="progress"]');
  if (bar) bar.value = video.progress;
  const text = card.querySelector('[data-role="progress-text"]');
  // The vendor's queue counts from 0 (next); people count from 1. A card has little room.
  if (text) {
    text.textContent = video.queue_position != null
      ? `Queue #${video.queue_position + 1}`
      : `${video.progress} %`;
  }
  if (video.status !== previous && ["completed", "failed", "cancelled"].includes(video.status)) {
    const holder = card.querySelector(".placeholder");
    if (video.status === "completed" && video.downloads && video.downloads.thumbnail && holder) {
      const img = document.createElement("img");
      img.alt = "";
      img.src = video.downloads.thumbnail;
      holder.replaceWith(img);
    } else if (holder) {
      if (bar) bar.remove();
      if (text) text.textContent = video.status === "failed"
        ? (video.error && video.error.message) || "Generation failed"
        : LABELS[video.status];
    }
  }
}

export function start() {
  for (const select of document.querySelectorAll("[data-autosubmit]")) {
    select.addEventListener("change", () => select.form.requestSubmit());
  }
  for (const media of document.querySelectorAll(".card .media[data-sprite]")) scrubbable(media);
  const cards = new Map([...document.querySelectorAll(".card[data-video-id]")].map((c) => [c.dataset.videoId, c]));
  const unfinished = [...cards.values()]
    .filter((c) => ["queued", "in_progress"].includes(c.dataset.status))
    .map((c) => c.dataset.videoId);
  if (!unfinished.length) return;
  watch(unfinished, (video) => {
    const card = cards.get(video.id);
    if (card) update(card, video);
  });
}
