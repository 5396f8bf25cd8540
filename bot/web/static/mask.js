// The /erase mask drawing page: paint over the photo, send the mask through Telegram's MainButton.
// No framework: one canvas shows the photo, one above it the strokes (translucent); the mask is
// drawn from the same strokes, white on black, at the photo's own pixel size.
"use strict";

(function () {
  const config = JSON.parse(document.getElementById("config").textContent);
  const texts = config.texts;
  const statusLine = document.getElementById("status");
  const tg = window.Telegram && window.Telegram.WebApp;

  function say(message, isError) {
    statusLine.textContent = message;
    statusLine.classList.toggle("error", Boolean(isError));
    statusLine.hidden = !message;
  }

  // Outside Telegram (or without initData) nothing can be proven to the server: say so.
  if (!tg || !tg.initData) {
    say(texts.outside, true);
    return;
  }

  const app = document.getElementById("app");
  const stage = document.getElementById("stage");
  const photoCanvas = document.getElementById("photo");
  const strokesCanvas = document.getElementById("strokes");
  const sizeInput = document.getElementById("size");
  const brushButton = document.getElementById("brush");
  const eraserButton = document.getElementById("eraser");
  const undoButton = document.getElementById("undo");
  const clearButton = document.getElementById("clear");
  const mainButton = tg.MainButton;

  const strokes = []; // {erase: bool, width: image px, points: [[x, y], ...]}
  let current = null;
  let erasing = false;
  let sending = false;
  let strokeColour = "#ff3b30";

  // --- theme ------------------------------------------------------------------------------

  function applyTheme() {
    const theme = tg.themeParams || {};
    const root = document.documentElement.style;
    // telegram-web-app.js sets these itself; when it could not load, the client's
    // themeParams are all there is.
    for (const [name, value] of Object.entries(theme)) {
      if (typeof value === "string") {
        root.setProperty("--tg-theme-" + name.replace(/_/g, "-"), value);
      }
    }
    // The theme's warning red: it reads as "this will change" and stands out on most photos
    // (the accent blue vanishes on a sky).
    strokeColour = theme.destructive_text_color || "#ff3b30";
    redrawStrokes();
  }

  // --- layout: the photo fitted into the visible viewport ---------------------------------

  function fit() {
    if (!photoCanvas.width) return;
    const viewport = tg.viewportStableHeight || tg.viewportHeight || window.innerHeight;
    const used = app.getBoundingClientRect().height - stage.getBoundingClientRect().height;
    const maxHeight = Math.max(120, viewport - used - 8);
    const maxWidth = Math.max(120, document.documentElement.clientWidth - 16);
    const scale = Math.min(maxWidth / photoCanvas.width, maxHeight / photoCanvas.height);
    const width = Math.floor(photoCanvas.width * scale);
    const height = Math.floor(photoCanvas.height * scale);
    for (const element of [photoCanvas, stage]) {
      element.style.width = width + "px";
      element.style.height = height + "px";
    }
  }

  // --- strokes ----------------------------------------------------------------------------

  function pathOf(context, stroke) {
    context.lineWidth = stroke.width;
    context.lineCap = "round";
    context.lineJoin = "round";
    context.beginPath();
    const [x0, y0] = stroke.points[0];
    context.moveTo(x0, y0);
    // A dot is a zero-length line: round caps make it a disc.
    if (stroke.points.length === 1) context.lineTo(x0 + 0.01, y0);
    for (const [x, y] of stroke.points.slice(1)) context.lineTo(x, y);
    context.stroke();
  }

  function paint(context, list, paintColour, eraseWith) {
    for (const stroke of list) {
      if (stroke.erase && eraseWith === null) {
        context.globalCompositeOperation = "destination-out";
        context.strokeStyle = "#000";
      } else {
        context.globalCompositeOperation = "source-over";
        context.strokeStyle = stroke.erase ? eraseWith : paintColour;
      }
      pathOf(context, stroke);
    }
    context.globalCompositeOperation = "source-over";
  }

  function redrawStrokes() {
    const context = strokesCanvas.getContext("2d");
    context.clearRect(0, 0, strokesCanvas.width, strokesCanvas.height);
    paint(context, strokes, strokeColour, null);
  }

  // Whether any painted pixel is left (strokes may all have been rubbed out).
  function painted() {
    if (!strokes.some((stroke) => !stroke.erase)) return false;
    const pixels = strokesCanvas
      .getContext("2d")
      .getImageData(0, 0, strokesCanvas.width, strokesCanvas.height).data;
    for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 127) return true;
    return false;
  }

  function changed() {
    redrawStrokes();
    undoButton.disabled = strokes.length === 0;
    clearButton.disabled = strokes.length === 0;
    if (sending) return;
    if (painted()) {
      mainButton.enable();
      mainButton.show();
    } else {
      mainButton.hide();
    }
  }

  function toImage(event) {
    const box = strokesCanvas.getBoundingClientRect();
    const scale = strokesCanvas.width / box.width;
    return [(event.clientX - box.left) * scale, (event.clientY - box.top) * scale];
  }

  function brushWidth() {
    // The slider is in screen pixels; strokes are kept in the photo's pixels.
    const box = strokesCanvas.getBoundingClientRect();
    return Number(sizeInput.value) * (strokesCanvas.width / box.width);
  }

  strokesCanvas.addEventListener("pointerdown", (event) => {
    if (sending || !event.isPrimary) return;
    event.preventDefault();
    strokesCanvas.setPointerCapture(event.pointerId);
    current = { erase: erasing, width: brushWidth(), points: [toImage(event)] };
    strokes.push(current);
    changed();
  });

  strokesCanvas.addEventListener("pointermove", (event) => {
    if (!current || !event.isPrimary) return;
    event.preventDefault();
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
    for (const each of events.length ? events : [event]) current.points.push(toImage(each));
    redrawStrokes();
  });

  function endStroke(event) {
    if (!current || !event.isPrimary) return;
    current = null;
    changed();
  }
  strokesCanvas.addEventListener("pointerup", endStroke);
  strokesCanvas.addEventListener("pointercancel", endStroke);

  function setTool(eraser) {
    erasing = eraser;
    brushButton.setAttribute("aria-pressed", String(!eraser));
    eraserButton.setAttribute("aria-pressed", String(eraser));
  }
  brushButton.addEventListener("click", () => setTool(false));
  eraserButton.addEventListener("click", () => setTool(true));
  undoButton.addEventListener("click", () => {
    strokes.pop();
    changed();
  });
  clearButton.addEventListener("click", () => {
    strokes.length = 0;
    changed();
  });

  // --- the mask and the upload -------------------------------------------------------------

  function maskBlob() {
    const mask = document.createElement("canvas");
    mask.width = photoCanvas.width;
    mask.height = photoCanvas.height;
    const context = mask.getContext("2d");
    context.fillStyle = "#000";
    context.fillRect(0, 0, mask.width, mask.height);
    paint(context, strokes, "#fff", "#000");
    // Two colours only: the antialiased rims of strokes are thresholded like the bot does.
    const image = context.getImageData(0, 0, mask.width, mask.height);
    const pixels = image.data;
    for (let i = 0; i < pixels.length; i += 4) {
      const value = pixels[i] >= 128 ? 255 : 0;
      pixels[i] = pixels[i + 1] = pixels[i + 2] = value;
      pixels[i + 3] = 255;
    }
    context.putImageData(image, 0, 0);
    return new Promise((resolve) => mask.toBlob(resolve, "image/png"));
  }

  function showError(message) {
    say(message, true);
    if (typeof tg.showAlert === "function") {
      try {
        tg.showAlert(message);
      } catch (error) {
        // Older clients: the status line says it.
      }
    }
  }

  async function errorOf(response) {
    try {
      const body = await response.json();
      if (body && body.error) return body.error;
    } catch (error) {
      // not our JSON (a proxy's page)
    }
    return texts.network;
  }

  async function submit() {
    if (sending || !painted()) return;
    sending = true;
    mainButton.showProgress(false);
    mainButton.disable();
    say(texts.sending, false);
    try {
      const form = new FormData();
      form.append("t", config.token);
      form.append("initData", tg.initData);
      form.append("mask", await maskBlob(), "mask.png");
      const response = await fetch("mask/submit?hl=" + config.lang, {
        method: "POST",
        body: form,
        credentials: "omit",
      });
      if (response.ok) {
        say("", false);
        tg.close();
        return;
      }
      showError(await errorOf(response));
    } catch (error) {
      showError(texts.network);
    } finally {
      sending = false;
      mainButton.hideProgress();
      mainButton.enable();
    }
  }

  // --- start ------------------------------------------------------------------------------

  async function loadPhoto() {
    const response = await fetch(
      "mask/photo?t=" + encodeURIComponent(config.token) + "&hl=" + config.lang,
      { headers: { "X-Telegram-Init-Data": tg.initData }, credentials: "omit" },
    );
    if (!response.ok) throw { refusal: await errorOf(response) };
    const url = URL.createObjectURL(await response.blob());
    try {
      const image = new Image();
      image.src = url;
      await image.decode();
      return image;
    } finally {
      URL.revokeObjectURL(url);
    }
  }

  async function start() {
    tg.ready();
    tg.expand();
    // A vertical swipe would otherwise close the app in the middle of a stroke.
    if (typeof tg.disableVerticalSwipes === "function") tg.disableVerticalSwipes();
    applyTheme();
    if (typeof tg.onEvent === "function") {
      tg.onEvent("themeChanged", applyTheme);
      tg.onEvent("viewportChanged", fit);
    }
    window.addEventListener("resize", fit);
    mainButton.setText(texts.submit);
    mainButton.hide();
    mainButton.onClick(submit);
    let image;
    try {
      image = await loadPhoto();
    } catch (error) {
      showError(error && error.refusal ? error.refusal : texts.network);
      return;
    }
    for (const canvas of [photoCanvas, strokesCanvas]) {
      canvas.width = image.naturalWidth;
      canvas.height = image.naturalHeight;
    }
    photoCanvas.getContext("2d").drawImage(image, 0, 0);
    say("", false);
    app.hidden = false;
    fit();
    changed();
    document.body.dataset.ready = "1"; // for tests and screenshots
  }

  start();
})();
