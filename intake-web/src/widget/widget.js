// Tandem widget loader. Paste on any site:
//   <script src="https://desk.example/widget.js" data-workspace="WORKSPACE-ID" async></script>
// It adds a button that opens Tandem's panel in an iframe served by Tandem itself, so nothing of
// the host page reaches the panel and nothing of the panel reaches the host page.
(function () {
  "use strict";
  if (window.__tandemWidget) return;
  var script = document.currentScript;
  if (!script || !script.src) return;
  window.__tandemWidget = true;
  var origin = new URL(script.src, window.location.href).origin;
  var workspace = script.getAttribute("data-workspace") || "";
  var label = script.getAttribute("data-label") || "Help";

  function start() {
    var frame = document.createElement("iframe");
    frame.id = "tandem-widget-frame";
    frame.title = "Help and messages";
    frame.hidden = true;
    frame.setAttribute("sandbox", "allow-scripts allow-forms allow-same-origin allow-popups allow-popups-to-escape-sandbox");
    frame.style.cssText = "position:fixed;right:20px;bottom:84px;width:370px;max-width:calc(100vw - 40px);" +
      "height:560px;max-height:calc(100vh - 110px);border:1px solid #cfd6de;border-radius:10px;" +
      "box-shadow:0 8px 30px rgba(0,0,0,.18);background:#fff;z-index:2147483646;";

    var button = document.createElement("button");
    button.id = "tandem-widget-button";
    button.type = "button";
    button.textContent = label;
    button.setAttribute("aria-controls", frame.id);
    button.setAttribute("aria-expanded", "false");
    button.style.cssText = "position:fixed;right:20px;bottom:20px;height:48px;min-width:48px;padding:0 20px;" +
      "border:0;border-radius:24px;background:#1f4e79;color:#fff;font:600 15px system-ui,sans-serif;" +
      "box-shadow:0 4px 14px rgba(0,0,0,.25);cursor:pointer;z-index:2147483647;";

    button.addEventListener("click", function () {
      if (!frame.src) {
        frame.src = origin + "/widget/panel?workspace=" + encodeURIComponent(workspace) +
          "&page=" + encodeURIComponent(window.location.href.slice(0, 500));
      }
      var open = frame.hidden;
      frame.hidden = !open;
      button.setAttribute("aria-expanded", open ? "true" : "false");
    });
    document.body.appendChild(frame);
    document.body.appendChild(button);
  }

  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start);
})();
