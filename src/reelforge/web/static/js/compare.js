// Two videos of one lineage, side by side, driven by one set of controls so they stay in sync.

export function start() {
  const videos = [...document.querySelectorAll("#compare video")];
  if (videos.length !== 2) return;
  const [lead, follower] = videos;
  const play = document.getElementById("sync-play");
  const seek = document.getElementById("sync-seek");
  const time = document.getElementById("sync-time");
  const label = play.querySelector("span");
  let dragging = false;

  const duration = () => Math.max(lead.duration || 0, follower.duration || 0);
  const setAll = (t) => { for (const v of videos) v.currentTime = Math.min(t, (v.duration || t) - 0.001); };

  play.addEventListener("click", async () => {
    if (lead.paused) {
      if (lead.ended || follower.ended) setAll(0);
      follower.currentTime = lead.currentTime;
      await Promise.all(videos.map((v) => v.play().catch(() => {})));
    } else {
      for (const v of videos) v.pause();
    }
  });
  const state = () => {
    const playing = !lead.paused;
    label.textContent = playing ? "Pause" : "Play";
    play.setAttribute("aria-label", playing ? "Pause both" : "Play both");
  };
  lead.addEventListener("play", state);
  lead.addEventListener("pause", state);
  lead.addEventListener("ended", () => { follower.pause(); state(); });

  lead.addEventListener("timeupdate", () => {
    // Nudge the follower back when it drifts: both clocks run, but not in lockstep.
    if (!lead.paused && Math.abs(follower.currentTime - lead.currentTime) > 0.15 && !follower.ended) {
      follower.currentTime = lead.currentTime;
    }
    if (!dragging && duration()) seek.value = String(Math.round((lead.currentTime / duration()) * 1000));
    time.textContent = `${lead.currentTime.toFixed(1)} s / ${duration().toFixed(1)} s`;
  });
  seek.addEventListener("input", () => {
    dragging = true;
    const t = (Number(seek.value) / 1000) * duration();
    setAll(t);
    time.textContent = `${t.toFixed(1)} s / ${duration().toFixed(1)} s`;
  });
  seek.addEventListener("change", () => { dragging = false; });
  for (const v of videos) v.addEventListener("loadedmetadata", () => { time.textContent = `0.0 s / ${duration().toFixed(1)} s`; });
}
