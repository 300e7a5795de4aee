// The guide's front end, step by step, against a live Reelforge: prints what it saw as JSON
// (tests/api/test_guide_client.py starts the server and checks the report).
//
// Environment: NEXT_PUBLIC_API_URL (…/api), GUIDE_EMAIL and GUIDE_PASSWORD (an account),
// EMULATOR_URL and EMULATOR_KEY (the upstream stand-in, to hold videos in progress).
import axios from 'axios';
import apiClient, { localStorage } from './client.mjs';
import { videoApi } from './videos.mjs';
import {
  cardDate,
  creatorErrorText,
  failureText,
  statusText,
  watchStatus,
} from './components.mjs';

const apiUrl = process.env.NEXT_PUBLIC_API_URL;
const report = {};

// What VideoCreator shows for a failed call, and what it was given to show.
async function failure(call) {
  try {
    await call();
    return null;
  } catch (error) {
    const data = error.response?.data;
    return {
      status: error.response?.status ?? null,
      shown: creatorErrorText(error),
      errorType: typeof data?.error,
      code: data?.code ?? null,
      field: data?.field ?? null,
    };
  }
}

function card(video) {
  return { id: video.id, status: video.status, created_at: video.created_at, date: cardDate(video) };
}

async function upstreamLatency(seconds) {
  await axios.put(
    `${process.env.EMULATOR_URL}/_emulator/faults`,
    { latency_seconds: seconds },
    { headers: { Authorization: `Bearer ${process.env.EMULATOR_KEY}` } }
  );
}

// Signing in is not in the guide's client; the app keeps the token where client.ts reads it.
const signedIn = await apiClient.post('/auth/token', {
  email: process.env.GUIDE_EMAIL,
  password: process.env.GUIDE_PASSWORD,
});
localStorage.setItem('auth_token', signedIn.data.data.access_token);

report.errors = {
  blank: await failure(() => videoApi.create({ prompt: '   ' })),
  quality: await failure(() => videoApi.create({ prompt: 'a fox', quality: 'ultra' })),
  unknown: await failure(() => apiClient.post('/videos', { prompt: 'a fox', style: 'noir' })),
  missing: await failure(() => videoApi.getVideo('video_0000000000000000')),
};

const created = await videoApi.create({
  prompt: 'a lighthouse at dusk',
  size: '1280x720',
  seconds: '4',
  quality: 'standard',
});
report.created = created;
const watched = await watchStatus(created.id, { intervalMs: 200, maxPolls: 1500 });
report.watched = {
  stopped: watched.stopped,
  seen: [...new Set(watched.seen)],
  heading: watched.video && statusText(watched.video),
  video: watched.video,
};
const done = watched.video;
const download = await apiClient.get(new URL(done.file_url, apiUrl).href, {
  responseType: 'arraybuffer',
});
const bytes = Buffer.from(download.data);
const guideLink = await apiClient.get(videoApi.getDownloadUrl(done.id), {
  responseType: 'arraybuffer',
});
report.download = {
  status: download.status,
  type: download.headers['content-type'],
  bytes: bytes.length,
  box: bytes.subarray(4, 8).toString('latin1'),
  guideLinkSameBytes: Buffer.compare(Buffer.from(guideLink.data), bytes) === 0,
};

// From here on, upstream holds every video in progress: nothing else renders, and a video
// cancelled below cannot have finished first.
await upstreamLatency(3600);
const remix = await videoApi.remix(done.id, { prompt: 'the same lighthouse, at night' });
report.remix = remix;
const more = [];
for (const prompt of ['a red kite', 'a paper boat']) {
  more.push(await videoApi.create({ prompt, quality: 'high' }));
}
report.more = more;

report.pages = [];
for (const offset of [0, 2, 4]) {
  report.pages.push((await videoApi.listVideos(2, offset)).map(card));
}
report.pagination = (await apiClient.get('/videos?limit=2&offset=2')).data.pagination;
report.cards = (await videoApi.listVideos()).map(card);

const doomed = await videoApi.create({ prompt: 'a sandcastle at high tide' });
const cancelled = await watchStatus(doomed.id, {
  intervalMs: 200,
  maxPolls: 20,
  // Cancelled elsewhere (another tab, the CLI) while this status view is open.
  afterPoll: async (video, poll) => {
    if (poll === 1) await apiClient.post(`/videos/${video.id}/cancel`);
  },
});
report.cancelled = {
  stopped: cancelled.stopped,
  polls: cancelled.polls,
  seen: cancelled.seen,
  heading: cancelled.video && statusText(cancelled.video),
  shown: cancelled.video && failureText(cancelled.video),
  video: cancelled.video,
};

await videoApi.deleteVideo(remix.id);
report.deleted = {
  get: await failure(() => videoApi.getVideo(remix.id)),
  listed: (await videoApi.listVideos()).map((video) => video.id),
};

process.stdout.write(JSON.stringify(report));
