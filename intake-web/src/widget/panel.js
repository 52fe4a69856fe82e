// The widget panel's script: tabs, and the messenger (start a chat, read it live over
// server-sent events, send, end). Every text is put into the page as text, never as HTML.
(function () {
  "use strict";
  var body = document.body;
  var workspace = body.getAttribute("data-workspace");
  var hostPage = body.getAttribute("data-page") || "";
  var storageKey = "tandem-chat:" + workspace;
  var $ = function (id) { return document.getElementById(id); };

  // Tabs
  var tabs = document.querySelectorAll("nav [role=tab]");
  function show(name) {
    tabs.forEach(function (t) {
      var on = t.getAttribute("data-tab") === name;
      t.setAttribute("aria-selected", on ? "true" : "false");
      $("tab-" + t.getAttribute("data-tab")).hidden = !on;
    });
  }
  tabs.forEach(function (t) { t.addEventListener("click", function () { show(t.getAttribute("data-tab")); }); });
  show(body.getAttribute("data-tab") || "chat");

  // Messenger
  var chat = null;      // {id, token}
  var lastSeq = 0;
  var ended = false;
  var streaming = false;

  function error(text) { $("chat-error").textContent = text || ""; }

  function remember() {
    try { sessionStorage.setItem(storageKey, JSON.stringify(chat)); } catch (e) { /* private mode */ }
  }

  function forget() {
    try { sessionStorage.removeItem(storageKey); } catch (e) { /* private mode */ }
  }

  function request(method, path, payload) {
    var headers = { "X-Tandem-Widget": "1", "Content-Type": "application/json" };
    if (chat) headers["X-Chat-Token"] = chat.token;
    return fetch(path, { method: method, headers: headers, credentials: "same-origin", body: JSON.stringify(payload || {}) })
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (data) {
          if (!r.ok) throw new Error((data.error && data.error.message) || ("the server answered " + r.status));
          return data;
        });
      });
  }

  function chatPath(suffix) {
    return "/widget/chats/" + encodeURIComponent(chat.id) + suffix + "?workspace=" + encodeURIComponent(workspace);
  }

  function append(m) {
    if (m.seq <= lastSeq) return;
    lastSeq = m.seq;
    var li = document.createElement("li");
    li.className = m.author.type;
    li.setAttribute("data-seq", String(m.seq));
    if (m.author.type !== "system") {
      var who = document.createElement("span");
      who.className = "who";
      who.textContent = m.author_name;
      li.appendChild(who);
    }
    li.appendChild(document.createTextNode(m.text));
    $("chat-log").appendChild(li);
    $("chat-log").scrollTop = $("chat-log").scrollHeight;
  }

  function markEnded() {
    ended = true;
    forget();
    $("chat-send-form").hidden = true;
    $("chat-end").hidden = true;
    $("chat-ended").hidden = false;
  }

  function live() {
    $("chat-start").hidden = true;
    $("chat-live").hidden = false;
    stream();
  }

  // Server-sent events read with fetch, so the token travels in a header, not in the URL.
  function stream() {
    if (streaming || ended || !chat) return;
    streaming = true;
    fetch(chatPath("/events") + "&after=" + lastSeq, { headers: { "X-Chat-Token": chat.token }, credentials: "same-origin" })
      .then(function (r) {
        if (r.status === 404) { forget(); throw new Error("gone"); }
        if (!r.ok || !r.body) throw new Error("the server answered " + r.status);
        var reader = r.body.getReader();
        var decoder = new TextDecoder();
        var buffer = "";
        function pump() {
          return reader.read().then(function (step) {
            if (step.done) return;
            buffer += decoder.decode(step.value, { stream: true });
            var cut;
            while ((cut = buffer.indexOf("\n\n")) >= 0) {
              handle(buffer.slice(0, cut));
              buffer = buffer.slice(cut + 2);
            }
            return pump();
          });
        }
        return pump();
      })
      .catch(function () { /* reconnect below */ })
      .then(function () {
        streaming = false;
        if (!ended && chat) setTimeout(stream, 1000);
      });
  }

  function handle(block) {
    var name = "message";
    var data = "";
    block.split("\n").forEach(function (line) {
      if (line.indexOf("event:") === 0) name = line.slice(6).trim();
      else if (line.indexOf("data:") === 0) data += line.slice(5).replace(/^ /, "");
    });
    if (!data) return;
    var value;
    try { value = JSON.parse(data); } catch (e) { return; }
    if (name === "message") append(value);
    if (name === "chat" && value.status === "ended") markEnded();
  }

  $("chat-start-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    error("");
    var payload = {
      workspace: workspace,
      name: $("chat-name") ? $("chat-name").value : "",
      email: $("chat-email") ? $("chat-email").value : null,
      text: $("chat-first").value,
      page: hostPage
    };
    $("chat-start-button").disabled = true;
    request("POST", "/widget/chats", payload)
      .then(function (data) {
        chat = { id: data.chat.id, token: data.token };
        remember();
        (data.messages || []).forEach(append);
        live();
      })
      .catch(function (e) { error(e.message); })
      .then(function () { $("chat-start-button").disabled = false; });
  });

  $("chat-send-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var text = $("chat-text").value;
    if (!text.trim() || !chat) return;
    error("");
    $("chat-send").disabled = true;
    request("POST", chatPath("/messages"), { text: text })
      .then(function (m) { $("chat-text").value = ""; append(m); })
      .catch(function (e) { error(e.message); })
      .then(function () { $("chat-send").disabled = false; });
  });

  $("chat-end").addEventListener("click", function () {
    if (!chat) return;
    request("POST", chatPath("/end"), {})
      .then(function () { markEnded(); })
      .catch(function (e) { error(e.message); });
  });

  // A chat started earlier in this tab carries on after a reload.
  try { chat = JSON.parse(sessionStorage.getItem(storageKey) || "null"); } catch (e) { chat = null; }
  if (chat && chat.id && chat.token) live();
  else chat = null;
})();
