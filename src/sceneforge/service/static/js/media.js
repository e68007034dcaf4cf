// A scene's media: the image, the motion clip as a loop (frames or video), the narration and its subtitles.

import {fileText} from "./api.js";
import {h, setAttr, setText} from "./dom.js";

const still = window.matchMedia("(prefers-reduced-motion: reduce)");

/** `url` with a version, so a re-made file at the same path is loaded again (and an old one is not shown). */
export function versioned(url, version) {
  if (!url) return null;
  return version ? `${url}${url.includes("?") ? "&" : "?"}v=${version}` : url;
}

/** Motion frames shown one after the other, over and over, on one <img>. */
class FrameLoop {
  constructor(img) {
    this.img = img;
    this.urls = [];
    this.timer = null;
    this.index = 0;
  }

  play(urls, fps) {
    if (urls.join("\n") === this.urls.join("\n")) return;
    this.stop();
    this.urls = urls;
    this.index = 0;
    urls.forEach((url) => { new Image().src = url; });  // preload, so the loop does not stutter
    setAttr(this.img, "src", urls[0]);
    if (urls.length < 2 || still.matches) return;
    this.timer = setInterval(() => {
      if (!this.img.isConnected) {
        this.stop();
        return;
      }
      this.index = (this.index + 1) % this.urls.length;
      this.img.src = this.urls[this.index];
    }, 1000 / Math.max(1, Math.min(60, fps || 16)));
  }

  stop() {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.urls = [];
  }
}

/** The visual part of a card: image (or a placeholder), motion loop, reference image. */
export class SceneMedia {
  constructor(n) {
    this.n = n;
    this.image = h("img", {alt: `Scene ${n} image`, hidden: true, decoding: "async"});
    this.noImage = h("p", {class: "placeholder"}, "No image yet");
    this.frames = h("img", {alt: `Scene ${n} motion`, class: "motion", hidden: true});
    this.video = h("video", {class: "motion", "aria-label": `Scene ${n} motion`, loop: true, muted: true,
                             autoplay: !still.matches, playsinline: true, hidden: true});
    this.loop = new FrameLoop(this.frames);
    this.el = h("div", {class: "visuals"}, h("figure", {}, this.image, this.noImage),
                h("figure", {class: "motion-box", hidden: true}, this.frames, this.video));
  }

  update(scene, versions, fps) {
    const urls = scene.urls || {};
    const image = versioned(urls.image, versions.image);
    setAttr(this.image, "src", image);
    this.image.hidden = !image;
    this.noImage.hidden = Boolean(image);
    const video = versioned(urls.motion_video, versions.motion);
    const frames = Array.isArray(urls.motion_frames) ? urls.motion_frames.map((u) => versioned(u, versions.motion)) : [];
    this.video.hidden = !video;
    setAttr(this.video, "src", video);
    if (video) this.video.muted = true;
    this.frames.hidden = Boolean(video) || frames.length === 0;
    if (!video && frames.length) this.loop.play(frames, fps);
    else this.loop.stop();
    this.el.querySelector(".motion-box").hidden = !video && frames.length === 0;
  }
}

/** "1\n00:00:00,000 --> ...\ntext\n\n2..." -> the text lines only. */
export function subtitleText(srt) {
  return srt.split(/\n\s*\n/).map((block) => block.split("\n")
    .filter((line) => line.trim() && !/^\d+$/.test(line.trim()) && !line.includes("-->")).join(" "))
    .filter(Boolean).join(" ");
}

/** The narration: an audio player, its duration and its subtitle text. */
export class SceneAudio {
  constructor(n) {
    this.audio = h("audio", {controls: true, preload: "metadata", "aria-label": `Scene ${n} narration`, hidden: true});
    this.duration = h("span", {class: "duration"});
    this.subtitle = h("p", {class: "subtitle"});
    this.subtitleUrl = null;
    this.el = h("div", {class: "narration"}, this.audio, h("p", {class: "meta"}, this.duration), this.subtitle);
  }

  update(scene, versions) {
    const urls = scene.urls || {};
    const audio = versioned(urls.audio, versions.audio);
    setAttr(this.audio, "src", audio);
    this.audio.hidden = !audio;
    const d = scene.audio_duration;
    setText(this.duration, typeof d === "number" ? `${d.toFixed(1)} s of narration` : "No narration yet");
    const srt = versioned(urls.subtitle, versions.audio);
    if (srt !== this.subtitleUrl) {
      this.subtitleUrl = srt;
      if (!srt) setText(this.subtitle, "");
      else fileText(srt).then((text) => { if (this.subtitleUrl === srt) setText(this.subtitle, subtitleText(text)); });
    }
  }
}
