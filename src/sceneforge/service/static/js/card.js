// One scene's card: a region named "Scene N" with its media, state, fields, re-rolls and takes.

import {errorText} from "./api.js";
import {gpuText} from "./gpu.js";
import {h, setAttr, setText} from "./dom.js";
import {SceneFields} from "./fields.js";
import {SceneAudio, SceneMedia} from "./media.js";
import {words} from "./scene-state.js";
import {SceneTakes} from "./takes.js";

const REGENERATE = [["audio", "Regenerate narration"], ["image", "Regenerate image"], ["motion", "Regenerate motion"]];

function hasMotion(scene, topic) {
  const options = topic.options || {};
  return Boolean(scene.urls?.motion_frames || scene.urls?.motion_video || options.motion
                 || (options.stages || []).includes("motion"));
}

/** The card of scene `n`; `actions` are the topic page's: save, regenerate, restore, reference. */
export class SceneCard {
  constructor(slug, n, actions) {
    this.n = n;
    this.actions = actions;
    this.status = h("p", {role: "status", class: "state"});
    this.alert = h("p", {role: "alert", class: "error"});
    this.media = new SceneMedia(n);
    this.audio = new SceneAudio(n);
    this.gpu = h("p", {class: "meta gpu"});
    this.fields = new SceneFields(n, {onSave: (changes) => this.run(() => actions.save(n, changes))});
    this.takes = new SceneTakes(slug, n, {onRestore: (stage, id) => this.run(() => actions.restore(n, stage, id)),
                                          onError: (err) => this.showError(err)});
    this.el = h("section", {class: "card", "aria-label": `Scene ${n}`},
                h("header", {class: "card-head"}, h("h2", {}, `Scene ${n}`), this.status),
                this.alert, this.media.el, this.audio.el, this.gpu, this.fields.el, this.rolls(), this.reference(),
                this.takes.el);
  }

  reference() {
    const n = this.n;
    this.refImage = h("img", {alt: `Scene ${n} reference image`, class: "ref", hidden: true});
    this.refNote = h("span", {class: "meta"}, "No reference image");
    this.refInput = h("input", {type: "file", id: `scene-${n}-reference`, accept: "image/png,image/jpeg,image/webp",
                                class: "file", onchange: () => {
                                  const file = this.refInput.files[0];
                                  this.refInput.value = "";
                                  if (file) this.run(() => this.actions.reference(n, file));
                                }});
    this.refRemove = h("button", {type: "button", hidden: true, onclick: () => this.run(() => this.actions.reference(n, null))},
                       "Remove reference");
    return h("div", {class: "reference"}, this.refImage,
             h("div", {}, this.refNote, h("label", {for: `scene-${n}-reference`, class: "file-label"}, "Reference image"),
               this.refInput, this.refRemove));
  }

  rolls() {
    const n = this.n;
    this.seed = h("span", {class: "seed"});
    this.motionSeed = h("span", {class: "seed"});
    this.newSeed = h("input", {type: "number", id: `scene-${n}-new-seed`, min: "0", step: "1", inputmode: "numeric",
                               placeholder: "random"});
    this.buttons = REGENERATE.map(([stage, label]) => h("button", {type: "button", dataset: {stage},
                                                                   onclick: () => this.regenerate(stage)}, label));
    return h("div", {class: "rolls"}, h("p", {class: "meta"}, this.seed, " ", this.motionSeed),
             h("div", {class: "field seed-field"}, h("label", {for: `scene-${n}-new-seed`}, "Seed for the next re-roll"),
               this.newSeed),
             h("div", {class: "row"}, this.buttons));
  }

  regenerate(stage) {
    const typed = this.newSeed.value.trim();
    const seed = stage !== "audio" && typed !== "" ? Number(typed) : undefined;
    this.run(async () => {
      await this.actions.regenerate(this.n, stage, seed);
      this.newSeed.value = "";
    });
  }

  /** Run an action; its error goes on the card, in words. */
  async run(action) {
    setText(this.alert, "");
    try {
      await action();
    } catch (err) {
      this.showError(err);
    }
  }

  showError(err) {
    setText(this.alert, errorText(err));
  }

  update(scene, topic, versions) {
    const fps = topic.options?.motion_fps;
    this.media.update(scene, versions, fps);
    this.audio.update(scene, versions);
    setText(this.gpu, gpuText(scene.gpu_seconds, scene.gpu_cost));
    this.gpu.hidden = !this.gpu.textContent;
    this.fields.update(scene, topic);
    setText(this.seed, typeof scene.image_seed === "number" ? `seed ${scene.image_seed}` : "");
    setText(this.motionSeed, typeof scene.motion_seed === "number" ? `motion seed ${scene.motion_seed}` : "");
    const ref = scene.urls?.reference || null;
    const shown = ref || topic.reference_url || null;
    setAttr(this.refImage, "src", shown);
    this.refImage.hidden = !shown;
    setText(this.refNote, ref ? "" : shown ? "The topic's reference image" : "No reference image");
    this.refRemove.hidden = !ref;
    this.buttons[2].hidden = !hasMotion(scene, topic);
  }

  setState(state) {
    setText(this.status, words(state));
    this.el.dataset.state = state.phase;
  }

  setBusy(busy) {
    this.fields.setBusy(busy);
    this.takes.setBusy(busy);
    for (const b of [...this.buttons, this.refRemove]) b.disabled = busy;
    this.refInput.disabled = busy;
  }
}
