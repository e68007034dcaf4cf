// The first page: every topic with its status and progress (kept fresh), and the "New topic" form.

import {api, errorLines, errorText} from "./api.js";
import {h, replace, setText} from "./dom.js";
import {isBusy} from "./scene-state.js";

const EXAMPLE = JSON.stringify({topic: "My topic", scenes: [
  {script: "The first line of narration.", image_prompt: "what the first image shows"},
  {script: "The second line.", image_prompt: "what the second image shows"},
]}, null, 2);

function topicHref(slug) {
  return `#/t/${encodeURIComponent(slug)}`;
}

function row(t) {
  const {done = 0, total = 0} = t.progress || {};
  const busy = isBusy(t.status);
  return h("li", {class: "topic-row", dataset: {status: t.status}},
    h("a", {href: topicHref(t.slug)}, t.topic),
    h("span", {class: `badge ${t.status}`}, t.status),
    busy || total ? h("progress", {max: Math.max(1, total), value: Math.min(done, Math.max(1, total)),
                                   "aria-label": `Progress of ${t.topic}`}) : null,
    total ? h("span", {class: "meta"}, `${done}/${total}`) : null,
    t.error ? h("p", {class: "error"}, t.error) : null);
}

/** The topics list and the form; polls the list (faster while a topic has a job). */
export class TopicsPage {
  constructor(root) {
    this.root = root;
    this.timer = null;
    this.alive = true;
    this.list = h("ul", {class: "topics", "aria-label": "Topics"});
    this.count = h("p", {role: "status", class: "meta"}, "Loading topics…");
    this.build();
  }

  build() {
    this.text = h("textarea", {id: "new-scenes", rows: 10, spellcheck: false, placeholder: EXAMPLE,
                               "aria-describedby": "new-problems"});
    this.file = h("input", {type: "file", id: "new-file", accept: ".json,application/json", onchange: () => this.load()});
    this.problems = h("ul", {class: "problems", "aria-label": "Problems"});
    this.problemBox = h("div", {id: "new-problems", role: "alert"});
    this.submit = h("button", {type: "submit", class: "primary"}, "Create topic");
    const form = h("form", {class: "new-topic", onsubmit: (e) => { e.preventDefault(); this.send(); }},
      h("div", {class: "field"}, h("label", {for: "new-scenes"}, "Scenes (JSON)"), this.text),
      h("div", {class: "field"}, h("label", {for: "new-file"}, "Or choose a scene file"), this.file),
      this.problemBox, h("div", {class: "row"}, this.submit));
    replace(this.root,
      h("h1", {}, "Topics"),
      h("section", {"aria-labelledby": "topics-title"}, h("h2", {id: "topics-title", class: "sr-only"}, "All topics"),
        this.count, this.list),
      h("section", {class: "new", "aria-labelledby": "new-title"}, h("h2", {id: "new-title"}, "New topic"),
        h("p", {class: "meta"}, "A scene file: a list of scenes, or {\"topic\", \"scenes\"}; each scene has a ",
          h("code", {}, "script"), " and an ", h("code", {}, "image_prompt"), "."), form));
  }

  start() {
    this.poll();
    return this;
  }

  destroy() {
    this.alive = false;
    clearTimeout(this.timer);
  }

  async poll() {
    let busy = false;
    try {
      const topics = await api("GET", "/api/topics");
      busy = topics.some((t) => isBusy(t.status));
      replace(this.list, topics.map(row));
      setText(this.count, topics.length ? `${topics.length} topic${topics.length === 1 ? "" : "s"}` : "No topics yet.");
    } catch (err) {
      setText(this.count, `Cannot list the topics: ${errorText(err)}`);
    }
    if (this.alive) this.timer = setTimeout(() => this.poll(), busy ? 1000 : 5000);
  }

  async load() {
    const file = this.file.files[0];
    if (!file) return;
    this.text.value = await file.text();
    this.showProblems([]);
  }

  showProblems(lines) {
    replace(this.problems, lines.map((line) => h("li", {}, line)));
    replace(this.problemBox, lines.length ? [h("p", {}, "The scene file has problems:"), this.problems] : []);
    this.text.setAttribute("aria-invalid", lines.length ? "true" : "false");
  }

  async send() {
    const body = this.text.value.trim();
    if (!body) {
      this.showProblems(["Paste a scene file's JSON or choose a file."]);
      return;
    }
    this.submit.disabled = true;
    try {
      const made = await api("POST", "/api/topics", body, {headers: {"Content-Type": "application/json"}});
      this.showProblems([]);
      location.hash = topicHref(made.slug);
    } catch (err) {
      this.showProblems(errorLines(err));
      this.text.focus();
    } finally {
      this.submit.disabled = false;
    }
  }
}
