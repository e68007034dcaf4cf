// The review page: a topics list at #/ and a topic at #/t/<slug>, drawn from the public API.

import {keepToken, setTokenPrompt, token} from "./api.js";
import {TopicPage} from "./topic.js";
import {TopicsPage} from "./topics.js";

const main = document.getElementById("main");
const connection = document.getElementById("connection");
const dialog = document.getElementById("token-dialog");
let view = null;

/** Ask for the token in the page's dialog; resolves with what was typed. */
function promptToken(wrong) {
  const form = dialog.querySelector("form");
  const input = dialog.querySelector("input");
  dialog.querySelector(".wrong").hidden = !wrong;
  input.value = "";
  return new Promise((resolve) => {
    form.onsubmit = (e) => {
      e.preventDefault();
      const value = input.value.trim();
      if (!value) return;
      dialog.close();
      resolve(value);
    };
    dialog.oncancel = (e) => e.preventDefault();  // nothing works without it: keep asking
    dialog.showModal();
    input.focus();
  });
}

function route() {
  if (view) view.destroy();
  connection.textContent = "";
  const match = /^#\/t\/(.+)$/.exec(location.hash);
  if (match) {
    view = new TopicPage(main, decodeURIComponent(match[1]), connection);
  } else {
    view = new TopicsPage(main);
    document.title = "sceneforge";
  }
  view.start();
  main.focus({preventScroll: true});
}

setTokenPrompt(promptToken);
if (token()) keepToken(token());  // the /files cookie again, for this browser session
window.addEventListener("hashchange", route);
route();
