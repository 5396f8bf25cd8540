// The playground's chat page: a Telegram-like client for the local Bot API (bot/playground).
// The server keeps the chat; this page long-polls it and draws it again whenever it changes.
"use strict";

(function () {
  const config = JSON.parse(document.getElementById("config").textContent);
  const state = {
    room: "private", lang: config.lang, version: "", poll: null, replyTo: null,
    bubbles: new Map(), // message id -> {json, element}
    atBottom: true, // follow new messages (and photos as they load) unless scrolled up
  };
  const $ = (id) => document.getElementById(id);
  const messages = $("messages");
  const textBox = $("text");
  const fileInput = $("file");

  function t(key) {
    return config.texts[state.lang][key] || key;
  }

  // --- words and switches ------------------------------------------------------------------

  function applyTexts() {
    document.documentElement.lang = state.lang;
    document.title = t("playground_title");
    for (const element of document.querySelectorAll("[data-text]")) {
      element.textContent = t(element.dataset.text);
    }
    textBox.placeholder = t("playground_placeholder");
    $("attach").title = t("playground_attach");
    for (const button of document.querySelectorAll("#langs button")) {
      button.setAttribute("aria-pressed", String(button.dataset.lang === state.lang));
    }
    for (const button of document.querySelectorAll("#rooms button")) {
      button.setAttribute("aria-pressed", String(button.dataset.room === state.room));
    }
    const group = state.room === "group";
    $("chat-title").textContent = group ? t("playground_group_title") : config.bot.name;
    $("chat-subtitle").textContent = group
      ? t("playground_group_members") : "@" + config.bot.username;
    $("chat-avatar").textContent = group ? "G" : config.bot.name.charAt(0);
    $("chat-avatar").classList.toggle("group", group);
    $("sender-box").hidden = !group;
    const first = messages.firstElementChild;
    if (first && first.classList.contains("service")) first.replaceWith(hint());
    else messages.prepend(hint());
  }

  async function setLang(lang) {
    state.lang = lang;
    applyTexts();
    await post("/playground/api/lang", { lang });
  }

  function setRoom(room) {
    if (room === state.room) return;
    state.room = room;
    state.version = "";
    state.bubbles.clear();
    messages.replaceChildren();
    clearReply();
    applyTexts();
    poll();
  }

  // --- reading the chat --------------------------------------------------------------------

  async function poll() {
    if (state.poll) state.poll.abort();
    const controller = new AbortController();
    state.poll = controller;
    while (!controller.signal.aborted) {
      try {
        const response = await fetch(
          "/playground/api/chat?room=" + state.room + "&version=" + state.version,
          { signal: controller.signal },
        );
        if (!response.ok) throw new Error("HTTP " + response.status);
        const chat = await response.json();
        if (controller.signal.aborted) return;
        state.version = chat.version;
        render(chat.messages);
      } catch (error) {
        if (controller.signal.aborted) return;
        await new Promise((resolve) => setTimeout(resolve, 1000)); // the server restarts
      }
    }
  }

  // What to try first, at the top of the chat like Telegram's "What can this bot do?".
  function hint() {
    const line = document.createElement("div");
    line.className = "service";
    const words = document.createElement("span");
    words.textContent = t("playground_hint");
    line.append(words);
    return line;
  }

  function render(list) {
    const nearBottom = state.atBottom;
    const seen = new Map();
    const elements = [];
    let added = false;
    for (const bubble of list) {
      const json = state.lang + state.room + JSON.stringify(bubble);
      let cached = state.bubbles.get(bubble.id);
      if (!cached || cached.json !== json) {
        added = added || !cached;
        cached = { json, element: drawBubble(bubble) };
      }
      seen.set(bubble.id, cached);
      elements.push(cached.element);
    }
    state.bubbles = seen;
    messages.replaceChildren(hint(), ...elements);
    if (nearBottom || added) messages.scrollTop = messages.scrollHeight;
  }

  function drawBubble(bubble) {
    const line = document.createElement("div");
    line.className = "line " + (bubble.sender === "you" ? "out" : "in");
    line.dataset.id = bubble.id;
    line.dataset.sender = bubble.sender;
    const stack = document.createElement("div");
    stack.className = "stack";
    const box = document.createElement("div");
    box.className = "bubble" + (bubble.photo ? " has-photo" : "");
    if (state.room === "group" && bubble.sender !== "you") {
      const name = document.createElement("div");
      name.className = "name " + bubble.sender;
      name.textContent = bubble.name;
      box.append(name);
    }
    if (bubble.reply_to) {
      const quote = document.createElement("div");
      quote.className = "quote";
      const who = document.createElement("b");
      who.textContent = bubble.reply_to.name;
      quote.append(who, document.createTextNode(bubble.reply_to.preview));
      quote.addEventListener("click", () => {
        const target = messages.querySelector('[data-id="' + bubble.reply_to.id + '"]');
        if (target) target.scrollIntoView({ block: "center", behavior: "smooth" });
      });
      box.append(quote);
    }
    if (bubble.photo) {
      const image = document.createElement("img");
      image.className = "photo";
      image.src = bubble.photo;
      image.alt = "";
      image.addEventListener("load", () => {
        if (state.atBottom) messages.scrollTop = messages.scrollHeight;
      });
      image.addEventListener("click", () => window.open(bubble.photo, "_blank"));
      box.append(image);
    }
    if (bubble.document) {
      const link = document.createElement("a");
      link.className = "document";
      link.href = bubble.document.url;
      link.download = bubble.document.name;
      const icon = document.createElement("span");
      icon.className = "icon";
      icon.textContent = "⬇";
      const label = document.createElement("span");
      label.textContent = bubble.document.name;
      const size = document.createElement("small");
      size.textContent = formatSize(bubble.document.size);
      label.append(size);
      link.append(icon, label);
      box.append(link);
    }
    const body = document.createElement("div");
    body.className = "body";
    body.append(withEntities(bubble.text, bubble.entities));
    const meta = document.createElement("span");
    meta.className = "meta";
    if (bubble.edited) meta.append(t("playground_edited") + " ");
    const replyButton = document.createElement("button");
    replyButton.type = "button";
    replyButton.className = "reply-button";
    replyButton.textContent = "↩ " + t("playground_reply");
    replyButton.addEventListener("click", () => startReply(bubble));
    meta.append(replyButton);
    if (bubble.text) {
      body.append(meta);
      box.append(body);
    } else {
      box.append(meta);
    }
    stack.append(box);
    if (bubble.buttons.length) stack.append(drawKeyboard(bubble));
    line.append(stack);
    return line;
  }

  function drawKeyboard(bubble) {
    const keyboard = document.createElement("div");
    keyboard.className = "keyboard";
    for (const row of bubble.buttons) {
      const line = document.createElement("div");
      line.className = "row";
      for (const button of row) {
        const element = document.createElement("button");
        element.type = "button";
        element.className = "inline-button " + button.kind;
        element.textContent = button.text;
        element.addEventListener("click", () => pressed(bubble, button, element));
        line.append(element);
      }
      keyboard.append(line);
    }
    return keyboard;
  }

  // Telegram's entities, whose offsets count UTF-16 units: exactly what JS strings index.
  const TAGS = {
    bold: "b", italic: "i", underline: "u", strikethrough: "s", code: "code", pre: "pre",
    blockquote: "blockquote", expandable_blockquote: "blockquote", spoiler: "span",
    text_link: "a", url: "a",
  };

  function withEntities(text, entities) {
    const fragment = document.createDocumentFragment();
    const marks = (entities || []).filter((entity) => TAGS[entity.type]);
    const cuts = new Set([0, text.length]);
    for (const entity of marks) {
      cuts.add(entity.offset);
      cuts.add(entity.offset + entity.length);
    }
    const points = [...cuts].sort((a, b) => a - b);
    for (let i = 0; i + 1 < points.length; i++) {
      const [start, end] = [points[i], points[i + 1]];
      let node = document.createTextNode(text.slice(start, end));
      const covering = marks
        .filter((entity) => entity.offset <= start && entity.offset + entity.length >= end)
        .sort((a, b) => a.length - b.length);
      for (const entity of covering) {
        const element = document.createElement(TAGS[entity.type]);
        if (entity.type === "spoiler") element.className = "spoiler";
        if (element.tagName === "A") {
          const href = entity.url || text.slice(entity.offset, entity.offset + entity.length);
          if (/^https?:\/\//i.test(href)) {
            element.href = href;
            element.target = "_blank";
            element.rel = "noopener noreferrer";
          }
        }
        element.append(node);
        node = element;
      }
      fragment.append(node);
    }
    return fragment;
  }

  function formatSize(bytes) {
    if (bytes >= 1024 * 1024) return (bytes / 1024 / 1024).toFixed(1) + " MB";
    return Math.max(1, Math.round(bytes / 1024)) + " KB";
  }

  // --- acting ------------------------------------------------------------------------------

  function person() {
    return state.room === "group" ? $("sender").value : "you";
  }

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    return response.json();
  }

  async function pressed(bubble, button, element) {
    if (button.kind === "web_app") {
      openMiniApp(button.value, button.text);
      return;
    }
    if (button.kind === "url") {
      window.open(button.value, "_blank", "noopener");
      return;
    }
    if (button.kind !== "callback") return;
    element.disabled = true;
    try {
      const answer = await post("/playground/api/press", {
        room: state.room, person: person(), message_id: bubble.id, data: button.value,
      });
      if (answer.ok && answer.answer && answer.answer.text) toast(answer.answer.text);
      if (!answer.ok) showError(answer.error);
    } finally {
      element.disabled = false;
    }
  }

  function toast(words) {
    const box = $("toast");
    box.textContent = words;
    box.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { box.hidden = true; }, 3500);
  }

  function showError(words) {
    const box = $("error");
    box.textContent = words || "";
    box.hidden = !words;
  }

  function startReply(bubble) {
    state.replyTo = bubble.id;
    $("reply-preview").textContent = bubble.name + ": " + (bubble.text || (bubble.photo ? "🖼" : "📎"));
    $("reply-bar").hidden = false;
    textBox.focus();
  }

  function clearReply() {
    state.replyTo = null;
    $("reply-bar").hidden = true;
  }

  function clearAttachment() {
    fileInput.value = "";
    $("attachment-bar").hidden = true;
    $("as-file").checked = false;
  }

  async function send() {
    const words = textBox.value.trim();
    const file = fileInput.files[0];
    if (!words && !file) {
      showError(t("playground_nothing_to_send"));
      return;
    }
    const form = new FormData();
    form.append("room", state.room);
    form.append("person", person());
    form.append("text", words);
    if (state.replyTo !== null) form.append("reply_to", String(state.replyTo));
    if (file) {
      form.append("image", file, file.name);
      form.append("as_file", $("as-file").checked ? "1" : "0");
    }
    $("send").disabled = true;
    try {
      const response = await fetch("/playground/api/send", { method: "POST", body: form });
      const answer = await response.json();
      if (!answer.ok) {
        showError(answer.error);
        return;
      }
      showError("");
      textBox.value = "";
      clearReply();
      clearAttachment();
    } catch (error) {
      showError(String(error));
    } finally {
      $("send").disabled = false;
      textBox.focus();
    }
  }

  // --- the Mini App overlay: a stand-in for the Telegram client around the page ----------------

  const overlay = $("overlay");
  const frame = $("mini-app");
  const mainButton = $("main-button");

  function openMiniApp(url, title) {
    $("overlay-title").textContent = title.replace(/^\W+\s*/u, "") || t("miniapp_title");
    mainButton.hidden = true;
    frame.src = url;
    overlay.hidden = false;
  }

  function closeMiniApp() {
    overlay.hidden = true;
    frame.src = "about:blank";
  }

  window.addEventListener("message", (event) => {
    if (event.source !== frame.contentWindow || !event.data || !event.data.playground) return;
    const message = event.data;
    if (message.playground === "main-button") {
      mainButton.textContent = message.progress ? "…" : message.text;
      mainButton.hidden = !message.visible;
      mainButton.disabled = !message.active || message.progress;
    } else if (message.playground === "close") {
      closeMiniApp();
    } else if (message.playground === "alert") {
      toast(message.text);
    }
  });

  mainButton.addEventListener("click", () => {
    frame.contentWindow.postMessage({ playground: "main-button-pressed" }, location.origin);
  });
  $("overlay-close").addEventListener("click", closeMiniApp);

  // --- wiring ------------------------------------------------------------------------------

  for (const button of document.querySelectorAll("#rooms button")) {
    button.addEventListener("click", () => setRoom(button.dataset.room));
  }
  for (const button of document.querySelectorAll("#langs button")) {
    button.addEventListener("click", () => setLang(button.dataset.lang));
  }
  messages.addEventListener("scroll", () => {
    state.atBottom = messages.scrollHeight - messages.scrollTop - messages.clientHeight < 80;
  });
  $("send").addEventListener("click", send);
  textBox.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    }
  });
  fileInput.addEventListener("change", () => {
    const file = fileInput.files[0];
    $("attachment-bar").hidden = !file;
    $("attachment-name").textContent = file ? "🖼 " + file.name : "";
    textBox.focus();
  });
  $("attachment-cancel").addEventListener("click", clearAttachment);
  $("reply-cancel").addEventListener("click", clearReply);

  applyTexts();
  poll();
})();
