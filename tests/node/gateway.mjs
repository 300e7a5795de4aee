// The official Node SDK (npm `openai`) against a live Reelforge /v1 gateway.
//
// Run by tests/api/test_gateway_node.py, which starts the server, makes the users and passes
// their keys: REELFORGE_URL, ADA_KEY (no limits), BOB_KEY (a quota of one video) and
// CAROL_KEY (for the create rate limit). This script only drives the SDK and prints what it
// saw as one JSON object; the Python test asserts on it.
import OpenAI from "openai";

const { REELFORGE_URL, ADA_KEY, BOB_KEY, CAROL_KEY } = process.env;
const baseURL = `${REELFORGE_URL}/v1`;
// How long a video may take to finish before the script gives up (rendering is real).
const FINISH_DEADLINE_MS = 180_000;

function describe(error) {
  return {
    class: error.constructor.name,
    isAPIError: error instanceof OpenAI.APIError,
    status: error.status ?? null,
    code: error.code ?? null,
    param: error.param ?? null,
    type: error.type ?? null,
    message: error.message,
    retryAfter: error.headers?.get("retry-after") ?? null,
    shouldRetry: error.headers?.get("x-should-retry") ?? null,
  };
}

async function failure(call) {
  try {
    await call();
  } catch (error) {
    return describe(error);
  }
  return null;
}

// A client whose requests to the server are counted: what the SDK's retry policy really
// sends (the SDK also calls fetch on a `data:` URL of its own, to probe multipart support).
function counted(options) {
  const calls = [];
  const client = new OpenAI({
    ...options,
    fetch: (url, init) => {
      const target = new URL(url);
      if (target.protocol.startsWith("http")) {
        calls.push(`${init?.method ?? "GET"} ${target.pathname}`);
      }
      return fetch(url, init);
    },
  });
  return { client, calls };
}

// Polls as the SDKs' own poll helpers do: at the interval the server asks for.
async function finished(client, id) {
  const intervals = [];
  const deadline = Date.now() + FINISH_DEADLINE_MS;
  for (;;) {
    const { data, response } = await client.videos.retrieve(id).withResponse();
    if (data.status === "completed" || data.status === "failed") {
      return { video: data, intervals };
    }
    const interval = Number(response.headers.get("openai-poll-after-ms"));
    intervals.push(interval);
    if (Date.now() > deadline) {
      throw new Error(`${id} is still ${data.status} after ${FINISH_DEADLINE_MS} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, interval || 1000));
  }
}

async function bytesOf(response) {
  return Buffer.from(await response.arrayBuffer());
}

const report = {};
const ada = new OpenAI({ baseURL, apiKey: ADA_KEY, maxRetries: 0 });

const created = await ada.videos.create({
  prompt: "a red fox in the snow",
  model: "sora-2",
  size: "720x1280",
  seconds: "4",
});
report.created = created;
report.retrieved = await ada.videos.retrieve(created.id);
const { video: done, intervals } = await finished(ada, created.id);
report.completed = done;
report.pollIntervals = intervals;

const video = await ada.videos.downloadContent(created.id);
const videoBytes = await bytesOf(video);
report.video = {
  type: video.headers.get("content-type"),
  length: videoBytes.length,
  box: videoBytes.subarray(4, 8).toString("latin1"),
};
const thumbnail = await ada.videos.downloadContent(created.id, { variant: "thumbnail" });
const thumbnailBytes = await bytesOf(thumbnail);
report.thumbnail = {
  type: thumbnail.headers.get("content-type"),
  riff: thumbnailBytes.subarray(0, 4).toString("latin1"),
  webp: thumbnailBytes.subarray(8, 12).toString("latin1"),
};

report.remix = await ada.videos.remix(created.id, { prompt: "the same fox at night" });

// Delete while iterating: each page's last video is gone before the next page is asked for.
report.clips = [];
for (let i = 0; i < 5; i += 1) {
  report.clips.push((await ada.videos.create({ prompt: `clip ${i}` })).id);
}
report.seen = [];
report.deletions = [];
for await (const listed of ada.videos.list({ limit: 2 })) {
  report.seen.push(listed.id);
  report.deletions.push(await ada.videos.delete(listed.id));
}
report.left = (await ada.videos.list()).data.map((v) => v.id);

report.errors = {
  badValue: await failure(() => ada.videos.create({ prompt: "a fox", seconds: "7" })),
  unknownParameter: await failure(() => ada.videos.create({ prompt: "a fox", duration: 8 })),
  notFound: await failure(() => ada.videos.retrieve(`video_${"0".repeat(48)}`)),
  wrongKey: await failure(() =>
    new OpenAI({ baseURL, apiKey: "rf_wrong", maxRetries: 0 }).videos.list(),
  ),
};

// Over quota, with the SDK's default retries: it must not retry.
const bob = counted({ baseURL, apiKey: BOB_KEY });
await bob.client.videos.create({ prompt: "bob's only video" });
report.quota = await failure(() => bob.client.videos.create({ prompt: "one more" }));
report.quotaCalls = bob.calls;

// Over the create rate limit (no retries here: a retry would wait out the window).
const carol = new OpenAI({ baseURL, apiKey: CAROL_KEY, maxRetries: 0 });
report.rateLimited = null;
report.acceptedBeforeRateLimit = 0;
while (report.rateLimited === null && report.acceptedBeforeRateLimit < 100) {
  try {
    const made = await carol.videos.create({ prompt: `carol ${report.acceptedBeforeRateLimit}` });
    report.acceptedBeforeRateLimit += 1;
    await carol.videos.delete(made.id);
  } catch (error) {
    report.rateLimited = describe(error);
  }
}

console.log(JSON.stringify(report));
