// A topic's page: its status, one card per scene, the preview; kept live by the event stream.

import {api, errorText, topicPath} from "./api.js";
import {SceneCard} from "./card.js";
import {h, replace, setAttr, setText} from "./dom.js";
import {gpuText} from "./gpu.js";
import {versioned} from "./media.js";
import {applyEvent, initialStates, isBusy, STAGE_WORDS} from "./scene-state.js";
import {EventStream} from "./stream.js";
import {suggestVoices} from "./voices.js";

const REFRESH_KINDS = new Set(["scene_done", "scene_failed", "take_restored", "scene_edited", "preview_done",
  "compose_done", "status"]);
const CONNECTION = {connecting: "connecting…", live: "live", reconnecting: "reconnecting…", closed: "not live"};

function jobWords(topic) {
  const job = topic.job || {};
  if (job.kind === "preview") return "the preview";
  if (job.kind === "compose") return "the final video";
  if (job.kind === "regenerate") return `scene ${job.scene}'s ${STAGE_WORDS[job.stage] || job.stage}`;
  return "";
}

function statusWords(topic) {
  const what = jobWords(topic);
  if (topic.status === "running") return what ? `running: ${what}` : "running";
  if (topic.status === "queued") return what ? `queued: ${what}` : "queued";
  return topic.status;
}

/** "5 scenes · 23.4 s of narration · changed 11:02". */
function summary(topic) {
  const count = topic.scenes.length;
  const spoken = topic.scenes.reduce((sum, s) => sum + (typeof s.audio_duration === "number" ? s.audio_duration : 0), 0);
  const changed = new Date(topic.updated_at);
  const gpu = gpuText(topic.gpu_seconds_total, topic.gpu_cost_total);
  return [`${count} scene${count === 1 ? "" : "s"}`, spoken ? `${spoken.toFixed(1)} s of narration` : "",
          gpu ? `${gpu} in all (re-rolls included)` : "",
          Number.isNaN(changed.getTime()) ? "" : `changed ${changed.toLocaleString()}`].filter(Boolean).join(" · ");
}

/** The topic page for `slug`, drawn into `root`; `destroy()` stops its stream. */
export class TopicPage {
  constructor(root, slug, connection) {
    this.root = root;
    this.slug = slug;
    this.connection = connection;
    this.cards = [];
    this.states = [];
    this.versions = [];
    this.topic = null;
    this.replayUntil = 0;
    this.pendingTakes = new Set();
    this.refreshTimer = null;
    this.build();
  }

  build() {
    this.title = h("h1", {}, this.slug);
    this.status = h("p", {role: "status", class: "topic-status"});
    this.progress = h("progress", {max: 1, value: 0, "aria-label": "Progress"});
    this.progressText = h("span", {class: "meta"});
    this.error = h("p", {role: "alert", class: "error"});
    this.summary = h("p", {class: "meta"});
    this.previewButton = h("button", {type: "button", class: "primary", onclick: () => this.act(() =>
      api("POST", topicPath(this.slug, "/preview")))}, "Render preview");
    this.composeButton = h("button", {type: "button", onclick: () => this.act(() =>
      api("POST", topicPath(this.slug, "/compose")))}, "Render final video");
    this.finalVideo = h("video", {controls: true, preload: "metadata", "aria-label": "Final video", hidden: true});
    this.cover = h("img", {alt: "Cover", class: "sheet", hidden: true});
    this.cancelButton = h("button", {type: "button", onclick: () => this.act(() =>
      api("POST", topicPath(this.slug, "/cancel")))}, "Cancel");
    this.previewVideo = h("video", {controls: true, preload: "metadata", "aria-label": "Preview video", hidden: true});
    this.sheet = h("img", {alt: "Contact sheet", class: "sheet", hidden: true});
    this.previewNote = h("p", {class: "meta"}, "No preview yet: render one when the scenes look right.");
    this.grid = h("div", {class: "cards"});
    replace(this.root,
      h("p", {class: "back"}, h("a", {href: "#/"}, "← All topics")),
      h("section", {class: "topic-head", "aria-label": "Topic"},
        h("div", {class: "head-main"}, this.title,
          h("div", {class: "row"}, this.status, this.progress, this.progressText), this.summary),
        h("div", {class: "row actions"}, this.previewButton, this.composeButton, this.cancelButton), this.error),
      this.grid,
      h("section", {class: "preview", "aria-label": "Preview"}, h("h2", {}, "Preview"), this.previewNote,
        h("div", {class: "preview-media"}, this.previewVideo, this.sheet, this.finalVideo, this.cover)));
  }

  async start() {
    let topic;
    try {
      topic = await api("GET", topicPath(this.slug));
    } catch (err) {
      setText(this.error, err.status === 404 ? `There is no topic ${this.slug}.` : errorText(err));
      return;
    }
    this.replayUntil = topic.last_event_id || 0;
    this.states = initialStates(topic);
    this.show(topic);
    // The answer holds each scene's state as of its last event: follow the stream from there (no replay).
    this.stream = new EventStream(this.slug, {after: this.replayUntil, onEvent: (e) => this.onEvent(e),
                                              onState: (s) => setText(this.connection, CONNECTION[s] || s)}).start();
  }

  destroy() {
    if (this.stream) this.stream.stop();
    clearTimeout(this.refreshTimer);
  }

  /** Draw the topic (cards made or re-made when the number of scenes changed). */
  show(topic) {
    this.topic = topic;
    document.title = `${topic.topic} · sceneforge`;
    setText(this.title, topic.topic);
    setText(this.summary, summary(topic));
    suggestVoices(topic);
    if (this.cards.length !== topic.scenes.length) {
      this.cards = topic.scenes.map((s) => new SceneCard(this.slug, s.n, this.cardActions()));
      this.versions = topic.scenes.map(() => ({}));
      while (this.states.length < topic.scenes.length) this.states.push({phase: "done", stage: null, note: ""});
      this.states.length = topic.scenes.length;
      replace(this.grid, this.cards.map((c) => c.el));
      this.cards.forEach((card) => card.takes.reload(this.versions[card.n - 1]));
    }
    topic.scenes.forEach((scene, i) => this.cards[i].update(scene, topic, this.versions[i]));
    this.showStatus(topic);
    this.showPreview(topic.preview_urls || {});
    this.states.forEach((state, i) => this.cards[i].setState(state));
  }

  showStatus(topic) {
    const busy = isBusy(topic.status);
    setText(this.status, statusWords(topic));
    this.status.dataset.status = topic.status;
    this.root.dataset.status = topic.status;
    const {done = 0, total = 0} = topic.progress || {};
    this.progress.hidden = !total;
    this.progress.max = Math.max(1, total);
    this.progress.value = Math.min(done, Math.max(1, total));
    setText(this.progressText, total ? `${done} of ${total} steps` : "");
    setText(this.error, topic.status === "failed" && topic.error ? `The last job failed: ${topic.error}` : "");
    this.previewButton.disabled = busy;
    this.composeButton.disabled = busy;
    this.cancelButton.disabled = !busy;
    this.cards.forEach((card) => card.setBusy(busy));
  }

  showPreview(urls) {
    const video = versioned(urls.preview, this.previewVersion);
    const sheet = versioned(urls.contact_sheet, this.previewVersion);
    setAttr(this.previewVideo, "src", video);
    setAttr(this.sheet, "src", sheet);
    this.previewVideo.hidden = !video;
    const final = versioned(urls.final, this.composeVersion);
    const cover = versioned(urls.cover, this.composeVersion);
    setAttr(this.finalVideo, "src", final);
    setAttr(this.cover, "src", cover);
    this.finalVideo.hidden = !final;
    this.cover.hidden = !cover;
    this.sheet.hidden = !sheet;
    this.previewNote.hidden = Boolean(video || sheet || final);
  }

  onEvent(event) {
    if (event.kind === "deleted") {
      setText(this.error, "This topic was deleted.");
      return;
    }
    applyEvent(this.states, event);
    const i = (event.scene || 0) - 1;
    if (this.cards[i]) this.cards[i].setState(this.states[i]);
    if (event.kind === "status" && event.data && this.topic) {
      this.showStatus({...this.topic, status: event.data.status, error: event.data.error, job: event.data.job || {},
                       progress: event.data.progress || this.topic.progress});
      this.states.forEach((state, j) => this.cards[j] && this.cards[j].setState(state));
    }
    if (event.id <= this.replayUntil) return;  // caught up with the state fetched at the start
    this.track(event);
    if (REFRESH_KINDS.has(event.kind)) this.refreshSoon();
  }

  /** Note which files changed (their URLs get a new version) and which scenes' takes to reload. */
  track(event) {
    const versions = this.versions[(event.scene || 0) - 1];
    if (versions && event.stage && (event.kind === "scene_done" || event.kind === "take_restored")) {
      versions[event.stage] = event.id;
      this.pendingTakes.add(event.scene);
    }
    if (event.kind === "preview_done") this.previewVersion = event.id;
    if (event.kind === "compose_done") this.composeVersion = event.id;
  }

  refreshSoon() {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => this.refresh(), 120);
  }

  async refresh() {
    let topic;
    try {
      topic = await api("GET", topicPath(this.slug));
    } catch (err) {
      if (err.status === 404) setText(this.error, "This topic was deleted.");
      return;
    }
    this.show(topic);
    for (const n of this.pendingTakes) this.cards[n - 1]?.takes.reload(this.versions[n - 1]);
    this.pendingTakes.clear();
  }

  async act(action) {
    setText(this.error, "");
    try {
      await action();
    } catch (err) {
      setText(this.error, errorText(err));
    }
  }

  cardActions() {
    const scene = (n, rest = "") => topicPath(this.slug, `/scenes/${n}${rest}`);
    return {
      save: async (n, changes) => {
        if (!Object.keys(changes).length) throw new Error("Nothing changed: edit a field first.");
        await api("PATCH", scene(n), changes);
      },
      regenerate: (n, stage, seed) => api("POST", scene(n, "/regenerate"), seed === undefined ? {stage} : {stage, seed}),
      restore: async (n, stage, id) => {
        const takes = await api("POST", scene(n, `/takes/${stage}/${encodeURIComponent(id)}/restore`));
        this.cards[n - 1].takes.takes = takes;
      },
      reference: async (n, file) => {
        if (file === null) return api("PATCH", scene(n), {reference_image: null});
        const made = await api("POST", topicPath(this.slug, "/references"), file);
        return api("PATCH", scene(n), {reference_image: made.reference_image});
      },
    };
  }
}
