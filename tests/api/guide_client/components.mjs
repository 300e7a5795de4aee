// What the guide's components (components/VideoCreator.tsx, VideoStatus.tsx, VideoList.tsx)
// compute from the data they get, without React: the same expressions, so a test can see what
// a user would see.
import { videoApi } from './videos.mjs';

// VideoCreator: the error line under the form. React renders a string; an object would throw
// ("Objects are not valid as a React child").
export function creatorErrorText(error) {
  return error?.response?.data?.error || 'Failed to create video. Please try again.';
}

// VideoStatus: react-query's refetchInterval.
export function refetchInterval(data) {
  // Stop polling if completed or failed
  if (data?.status === 'completed' || data?.status === 'failed') {
    return false;
  }
  return 5000; // Poll every 5 seconds
}

// VideoStatus: the heading.
export function statusText(video) {
  switch (video.status) {
    case 'queued':
      return 'Queued';
    case 'in_progress':
      return 'Generating...';
    case 'completed':
      return 'Completed';
    case 'failed':
      return 'Failed';
    default:
      return 'Unknown';
  }
}

// VideoStatus: the red box of a failed video.
export function failureText(video) {
  return video.status === 'failed' && video.error ? video.error.message : null;
}

// VideoList: the date on each card.
export function cardDate(video) {
  return new Date(video.created_at * 1000).toLocaleDateString();
}

// VideoStatus mounted on a video: fetch, then again after refetchInterval while it gives a
// number. The interval is scaled down to `intervalMs` for the test; `maxPolls` bounds a poll
// that would never stop (the bug a fifth status caused). `afterPoll` runs after each fetch.
export async function watchStatus(videoId, { intervalMs, maxPolls, afterPoll }) {
  const seen = [];
  for (let poll = 1; poll <= maxPolls; poll += 1) {
    const video = await videoApi.getVideo(videoId);
    seen.push(video.status);
    if (afterPoll) await afterPoll(video, poll);
    const next = refetchInterval(video);
    if (next === false) {
      return { stopped: true, polls: poll, seen, video };
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(next, intervalMs)));
  }
  return { stopped: false, polls: maxPolls, seen, video: null };
}
