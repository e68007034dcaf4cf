// A scene's takes: every earlier version of its narration, image and motion, each with "Use this take".

import {api, topicPath} from "./api.js";
import {h, replace} from "./dom.js";
import {versioned} from "./media.js";

const TITLES = {audio: "Narration takes", image: "Image takes", motion: "Motion takes"};

function when(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleString();
}

function preview(stage, take, n, i, url) {
  const label = `Scene ${n} ${stage === "audio" ? "narration" : stage} take ${i + 1}`;
  if (!url) return null;
  if (stage === "audio") return h("audio", {controls: true, preload: "none", src: url, "aria-label": label});
  if (url.endsWith(".mp4") || url.includes(".mp4?") || url.endsWith(".webm")) {
    return h("video", {src: url, muted: true, preload: "metadata", "aria-label": label, class: "thumb"});
  }
  return h("img", {src: url, alt: label, class: "thumb", loading: "lazy"});
}

/** The takes block of one card; `reload()` asks the service, `restore` is called for "Use this take". */
export class SceneTakes {
  constructor(slug, n, {onRestore, onError}) {
    this.slug = slug;
    this.n = n;
    this.onRestore = onRestore;
    this.onError = onError;
    this.busy = false;
    this.body = h("div", {class: "takes-body"});
    this.el = h("section", {class: "takes", "aria-label": `Scene ${n} takes`}, h("h3", {}, "Takes"), this.body);
    this.takes = null;
  }

  async reload(versions) {
    try {
      this.takes = await api("GET", topicPath(this.slug, `/scenes/${this.n}/takes`));
    } catch (err) {
      this.onError(err);
      return;
    }
    this.render(versions);
  }

  setBusy(busy) {
    this.busy = busy;
    this.el.querySelectorAll("button").forEach((b) => { b.disabled = busy; });
  }

  render(versions) {
    if (!this.takes) return;
    const lists = [];
    for (const stage of ["audio", "image", "motion"]) {
      const takes = this.takes[stage] || [];
      if (!takes.length) continue;
      const items = takes.map((take, i) => this.item(stage, take, i, versions));
      lists.push(h("h4", {id: `takes-${this.n}-${stage}`}, TITLES[stage]),
                 h("ul", {"aria-labelledby": `takes-${this.n}-${stage}`}, items));
    }
    replace(this.body, lists.length ? lists : h("p", {}, "No takes yet."));
  }

  item(stage, take, i, versions) {
    const url = take.current ? versioned(take.url, versions[stage]) : take.url;
    const seed = take.seed !== null && take.seed !== undefined ? `seed ${take.seed}` : "";
    const words = [`take ${i + 1}`, seed, when(take.created_at)].filter(Boolean).join(" · ");
    const action = take.current
      ? h("span", {class: "current"}, "in use")
      : h("button", {type: "button", disabled: this.busy, "aria-describedby": `take-${this.n}-${stage}-${i}`,
                     onclick: () => this.onRestore(stage, take.id)}, "Use this take");
    return h("li", {class: take.current ? "take current" : "take"}, preview(stage, take, this.n, i, url),
             h("span", {id: `take-${this.n}-${stage}-${i}`}, words), action);
  }
}
