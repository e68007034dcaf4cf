// Each scene's live state: as GET /api/topics/{slug} gives it (scene.state, worked out by the service
// from the events up to the answer's last_event_id), then kept up to date from the live events.
//
// A state is {phase, stage, note}: phase is one of "done", "queued", "making", "ready",
// "failed", "cancelled", "interrupted"; `words(state)` is what the card says.

export const STAGE_WORDS = {audio: "narration", image: "image", motion: "motion"};
const WAITING = new Set(["queued", "making", "ready"]);

/** Whether a topic with this status has a job queued or running (the one place the page decides it). */
export function isBusy(status) {
  return status === "queued" || status === "running";
}

/** The scenes' states as the topic's answer gives them (as its status says, for a scene without one). */
export function initialStates(topic) {
  const busy = isBusy(topic.status);
  return topic.scenes.map((scene) => {
    const state = scene.state;
    if (!state) return {phase: busy ? "queued" : "done", stage: null, note: ""};
    const active = state.phase === "making" ? {[state.stage]: state.note} : {};
    return {phase: state.phase, stage: state.stage, note: state.note || "", failure: state.failure || null, active};
  });
}

/** What a card says for a state. */
export function words(state) {
  const stage = STAGE_WORDS[state.stage] || state.stage || "";
  switch (state.phase) {
    case "queued": return "queued";
    case "making": {
      const active = Object.entries(state.active || {[state.stage]: state.note});
      return `making ${active.map(([st, note]) => `${STAGE_WORDS[st] || st}${note ? ` ${note}` : ""}`).join(" and ")}`;
    }
    case "ready": return `${stage} ready`;
    case "failed": return `failed${stage ? ` (${stage})` : ""}: ${state.note || "no reason given"}`;
    case "cancelled": return "cancelled";
    case "interrupted": return "interrupted (the service stopped; it resumes on restart)";
    default: return "done";
  }
}

/** The job ended: every scene still waiting is done, cancelled, interrupted, or failed with the job
 * (when no scene failed on its own: a scene_failed event says which scene failed, never the error's words). */
function settle(states, status, error) {
  const anyFailed = states.some((state) => state.phase === "failed");
  states.forEach((state, i) => {
    if (!WAITING.has(state.phase)) return;
    if (status === "failed" && !anyFailed && state.phase !== "ready") {
      const message = String(error || "the job failed");
      states[i] = {phase: "failed", stage: null, note: message,
                   failure: {stage: null, kind: "job", message, retryable: false}};
    } else if ((status === "cancelled" || status === "interrupted") && state.phase !== "ready") {
      states[i] = {phase: status, stage: null, note: ""};
    } else {
      states[i] = {phase: "done", stage: null, note: ""};
    }
  });
}

function onStatus(states, data) {
  const job = data.job || {};
  if (data.status === "queued") {
    if (job.kind === "regenerate" && states[job.scene - 1]) {
      states[job.scene - 1] = {phase: "queued", stage: job.stage, note: ""};
    } else if (job.kind !== "preview") {
      states.forEach((_, i) => { states[i] = {phase: "queued", stage: null, note: ""}; });
    }
  } else if (data.status !== "running") {
    settle(states, data.status, data.error);
  }
}

function percent(data) {
  const value = Number(data.value);
  const max = Number(data.max);
  return max > 0 && value >= 0 ? `${Math.min(100, Math.round((100 * value) / max))}%` : "";
}

/** The scene's state once `stage` is no longer being made: another stage still in the works, or ready. */
function without(state, stage) {
  const active = {...(state.active || {})};
  delete active[stage];
  const left = Object.keys(active);
  if (left.length) return {phase: "making", stage: left[0], note: active[left[0]], active};
  return {phase: "ready", stage, note: "", active};
}

function making(state, stage, note) {
  const active = {...(state.active || {}), [stage]: note};
  return {phase: "making", stage, note, active};
}

/** Apply one event to `states` (an array, scene n at n - 1). */
export function applyEvent(states, event) {
  const data = event.data || {};
  if (event.kind === "status") {
    onStatus(states, data);
    return;
  }
  const i = (event.scene || 0) - 1;
  if (!states[i]) return;
  const stage = event.stage || null;
  const state = states[i].phase === "making" ? states[i] : {...states[i], active: {}};
  if (states[i].phase === "failed" && event.kind !== "scene_failed") return;  // its reason stays until the next job
  switch (event.kind) {
    case "scene_started":
      states[i] = making(state, stage, "");
      break;
    case "job_progress":
      states[i] = making(state, stage, percent(data));
      break;
    case "scene_retried":
      states[i] = making(state, stage, `(trying again: ${data.reason || "it failed"})`);
      break;
    case "scene_done":
    case "scene_cached":
      if (states[i].phase !== "failed") states[i] = without(state, stage);
      break;
    case "scene_failed": {
      const error = data.error || {};
      const note = String(data.reason || error.message || "");
      states[i] = {phase: "failed", stage, note, active: {},
                   failure: {stage, kind: error.type || "error", message: note, retryable: Boolean(error.retryable)}};
      break;
    }
    default:
      break;
  }
}
