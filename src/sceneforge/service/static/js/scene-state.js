// Each scene's live state, worked out from the topic's events (replayed from the start, then live).
//
// A state is {phase, stage, note}: phase is one of "done", "queued", "making", "ready",
// "failed", "cancelled", "interrupted"; `words(state)` is what the card says.

export const STAGE_WORDS = {audio: "narration", image: "image", motion: "motion"};
const WAITING = new Set(["queued", "making", "ready"]);

/** The states of `count` scenes before any event: as the topic's status says. */
export function initialStates(count, topic) {
  const busy = topic.status === "queued" || topic.status === "running";
  return Array.from({length: count}, () => ({phase: busy ? "queued" : "done", stage: null, note: ""}));
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

/** The lines of a job's error that name a scene: {n: line}. */
function linesByScene(error) {
  const found = {};
  for (const line of String(error || "").split("\n")) {
    const match = /^scene (\d+)\b/.exec(line.trim());
    if (match) found[Number(match[1])] = (found[Number(match[1])] ? `${found[Number(match[1])]}; ` : "") + line.trim();
  }
  return found;
}

function settle(states, status, error) {
  const named = linesByScene(error);
  const anyNamed = Object.keys(named).length > 0;
  states.forEach((state, i) => {
    if (named[i + 1] && state.phase !== "failed") {
      states[i] = {phase: "failed", stage: state.stage, note: named[i + 1]};
    } else if (WAITING.has(state.phase)) {
      if (status === "failed" && !anyNamed && state.phase !== "ready") {
        states[i] = {phase: "failed", stage: null, note: String(error || "the job failed")};
      } else if (status === "cancelled" || status === "interrupted") {
        states[i] = {phase: state.phase === "ready" ? "done" : status, stage: null, note: ""};
      } else {
        states[i] = {phase: "done", stage: null, note: ""};
      }
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
    case "scene_failed":
      states[i] = {phase: "failed", stage, note: String(data.reason || ""), active: {}};
      break;
    default:
      break;
  }
}
