// The playground's stand-in for telegram-web-app.js (bot/playground): window.Telegram.WebApp as
// a Telegram client provides it, with initData signed by the playground for "You". The
// MainButton, close() and showAlert() are the playground page's, which hosts this page in a frame.
"use strict";

(function () {
  const host = window.parent !== window ? window.parent : null;
  const tell = (message) => host && host.postMessage({ playground: true, ...message }, location.origin);
  const button = { text: "", visible: false, active: true, progress: false };
  const handlers = [];
  const show = () => tell({ playground: "main-button", ...button });

  const MainButton = {
    setText(text) { button.text = String(text); show(); return MainButton; },
    show() { button.visible = true; show(); return MainButton; },
    hide() { button.visible = false; show(); return MainButton; },
    enable() { button.active = true; show(); return MainButton; },
    disable() { button.active = false; show(); return MainButton; },
    showProgress() { button.progress = true; show(); return MainButton; },
    hideProgress() { button.progress = false; show(); return MainButton; },
    onClick(handler) { handlers.push(handler); return MainButton; },
    offClick(handler) {
      const index = handlers.indexOf(handler);
      if (index >= 0) handlers.splice(index, 1);
      return MainButton;
    },
    get text() { return button.text; },
    get isVisible() { return button.visible; },
    get isActive() { return button.active; },
  };

  window.addEventListener("message", (event) => {
    if (event.source !== host || !event.data || event.data.playground !== "main-button-pressed") {
      return;
    }
    if (button.visible && button.active && !button.progress) handlers.forEach((h) => h());
  });

  const height = () => window.innerHeight;
  window.Telegram = {
    WebApp: {
      initData: __INIT_DATA__,
      initDataUnsafe: {},
      version: "8.0",
      platform: "web",
      colorScheme: "light",
      themeParams: {
        bg_color: "#ffffff", text_color: "#000000", hint_color: "#707579",
        link_color: "#3390ec", button_color: "#3390ec", button_text_color: "#ffffff",
        secondary_bg_color: "#f4f4f5", destructive_text_color: "#e53935",
      },
      get viewportHeight() { return height(); },
      get viewportStableHeight() { return height(); },
      isExpanded: true,
      MainButton,
      ready() {},
      expand() {},
      close() { tell({ playground: "close" }); },
      showAlert(text) { tell({ playground: "alert", text: String(text) }); },
      onEvent() {},
      offEvent() {},
      disableVerticalSwipes() {},
    },
  };
})();
