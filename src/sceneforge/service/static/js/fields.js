// A scene's editable fields (Script, Image prompt, Motion prompt, Voice) and its Save button.
// A field the user is changing is never overwritten by a live update.

import {h} from "./dom.js";
import {VOICE_LIST_ID} from "./voices.js";

const FIELDS = [
  {name: "script", label: "Script", multiline: true, required: true},
  {name: "image_prompt", label: "Image prompt", multiline: true, required: true},
  {name: "motion_prompt", label: "Motion prompt", multiline: true, hint: "empty: the image prompt"},
  {name: "voice", label: "Voice", hint: "empty: the topic's voice"},
];

function control(n, field) {
  const id = `scene-${n}-${field.name}`;
  const attrs = {id, name: field.name, placeholder: field.hint || false, spellcheck: field.multiline};
  const input = field.multiline
    ? h("textarea", {...attrs, rows: field.name === "motion_prompt" ? 2 : 3})
    : h("input", {...attrs, type: "text", list: VOICE_LIST_ID, autocomplete: "off"});
  return {input, el: h("div", {class: `field field-${field.name}`}, h("label", {for: id}, field.label), input)};
}

/** The form of one card. `onSave(changes)` gets only the fields that differ from the scene. */
export class SceneFields {
  constructor(n, {onSave}) {
    this.inputs = {};
    this.saved = {};
    const parts = FIELDS.map((field) => {
      const {input, el} = control(n, field);
      this.inputs[field.name] = input;
      return el;
    });
    this.save = h("button", {type: "submit", class: "primary"}, "Save");
    this.el = h("form", {class: "fields", onsubmit: (e) => {
      e.preventDefault();
      onSave(this.changes());
    }}, parts, h("div", {class: "row"}, this.save));
  }

  /** Show the scene's values, except in fields the user changed and has not saved. */
  update(scene, topic) {
    for (const [name, input] of Object.entries(this.inputs)) {
      const value = typeof scene[name] === "string" ? scene[name] : "";
      const edited = name in this.saved && input.value !== this.saved[name];
      if (!edited) input.value = value;
      this.saved[name] = value;
    }
    this.inputs.voice.placeholder = topic.options?.voice ? `the topic's: ${topic.options.voice}` : "the topic's voice";
  }

  /** {field: new value} for what the user changed; an emptied optional field is removed (null). */
  changes() {
    const out = {};
    for (const field of FIELDS) {
      const value = field.multiline ? this.inputs[field.name].value : this.inputs[field.name].value.trim();
      if (value === (this.saved[field.name] || "")) continue;
      out[field.name] = value === "" && !field.required ? null : value;
    }
    return out;
  }

  setBusy(busy) {
    this.save.disabled = busy;
  }
}
