// Suggestions for a scene's voice picker: voices the topic already uses, then common ones.
// Any name can be typed: the service checks it against the narration engine's own list
// (with the nearest names when it has none such) before any work.

const COMMON = [
  "ko-KR-InJoonNeural", "ko-KR-SunHiNeural", "ko-KR-HyunsuMultilingualNeural",
  "en-US-AriaNeural", "en-US-GuyNeural", "en-US-JennyNeural", "en-GB-SoniaNeural",
  "ja-JP-NanamiNeural", "ja-JP-KeitaNeural", "ko", "en", "en-us", "ja",
];
export const VOICE_LIST_ID = "voice-suggestions";

/** Fill the page's one <datalist> of voices from the topic (its scenes' voices and its default). */
export function suggestVoices(topic) {
  let list = document.getElementById(VOICE_LIST_ID);
  if (!list) {
    list = document.createElement("datalist");
    list.id = VOICE_LIST_ID;
    document.body.append(list);
  }
  const used = (topic.scenes || []).map((s) => s.voice).filter((v) => typeof v === "string" && v);
  const names = [...new Set([topic.options?.voice, ...used, ...COMMON].filter(Boolean))];
  if (list.childElementCount === names.length && [...list.options].every((o, i) => o.value === names[i])) return;
  list.replaceChildren(...names.map((name) => {
    const option = document.createElement("option");
    option.value = name;
    return option;
  }));
}
