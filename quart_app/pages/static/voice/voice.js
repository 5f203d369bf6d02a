/* Voice to-do assistant: sign in with e-mail or phone and a PIN on the /voice namespace, then talk (MediaRecorder)
 * or type; the conversation, the spoken reply and the live to-do list follow.
 *
 * The mic button records while held (pointer or Space) and toggles on a short press or click (pointer, Space,
 * Enter). Socket.IO lives at /socket.io/ at the root even when this page is served under APP_ROUTE_PREFIX. The
 * session token from a PIN sign-in is kept in memory only, so a reconnect (server restart, network blip) signs
 * in again without asking for the PIN. */
(function () {
  "use strict";

  var SOCKET_PATH = "/socket.io";
  var HOLD_MS = 350; // a press longer than this is "hold to talk"; shorter toggles
  var MAX_RECORD_MS = 115000; // the server refuses over 120 s
  var READY = "Connected! Ready to authenticate.";

  var state = {
    socket: null,
    token: null,
    user: null,
    pending: false,
    recorder: null,
    chunks: [],
    recordStart: 0,
    pressStart: 0,
    pressing: false,
    toggled: false,
    stream: null,
    timer: null,
    replyUrl: null,
  };

  function $(id) { return document.getElementById(id); }

  function setStatus(kind, text) {
    $("status").dataset.state = kind;
    $("status-text").textContent = text;
  }

  function showAuthError(text) {
    var box = $("auth-error");
    box.textContent = text || "";
    box.hidden = !text;
  }

  // ----- conversation and list -----------------------------------------------------------------------

  function addLog(kind, who, text) {
    var item = document.createElement("li");
    item.className = kind;
    var label = document.createElement("span");
    label.className = "who-said";
    label.textContent = who;
    item.appendChild(label);
    item.appendChild(document.createTextNode(text));
    $("log").appendChild(item);
    $("log-empty").hidden = true;
    item.scrollIntoView({ block: "nearest" });
  }

  function renderTodos(items) {
    var list = $("todos");
    list.textContent = "";
    (items || []).forEach(function (todo) {
      var item = document.createElement("li");
      if (todo.done) item.className = "done";
      var title = document.createElement("span");
      title.className = "title";
      title.textContent = todo.title;
      item.appendChild(title);
      if (todo.done) item.appendChild(tag("done", ""));
      if (todo.due_date) item.appendChild(tag("due " + todo.due_date, ""));
      if (todo.priority) item.appendChild(tag(todo.priority + " priority", todo.priority));
      list.appendChild(item);
    });
    $("todos-empty").hidden = (items || []).length > 0;
  }

  function tag(text, kind) {
    var node = document.createElement("span");
    node.className = "tag" + (kind ? " " + kind : "");
    node.textContent = text;
    return node;
  }

  // ----- socket ----------------------------------------------------------------------------------------

  function connect() {
    var socket = io("/voice", {
      path: SOCKET_PATH,
      // Re-read on every (re)connect: a signed-in page reconnects with its session token.
      auth: function (cb) { cb(state.token ? { token: state.token } : {}); },
      reconnectionDelayMax: 5000,
    });
    state.socket = socket;

    socket.on("connect", function () { setStatus("connecting", "Connected, waiting for the server…"); });
    socket.on("status", function (data) {
      $("auth-button").disabled = false;
      if (state.token) return; // a signed-in page reconnected with its token: `authenticated` follows
      if (state.user) signedOut("The connection was reset. Please sign in again.");
      setStatus("connected", (data && data.message) || READY);
    });
    socket.on("disconnect", function (reason) {
      endPending();
      stopRecording(false);
      $("auth-button").disabled = true;
      if (reason === "io client disconnect") return;
      setStatus("reconnecting", "Connection lost. Reconnecting…");
    });
    socket.on("connect_error", function (err) {
      var message = (err && err.message) || "";
      if (state.token && /invalid or expired/i.test(message)) {
        // The session ended (expired, or the PIN changed): sign in again.
        state.token = null;
        signedOut("Your session has ended. Please sign in again.");
      }
      setStatus("error", "Cannot reach the server. Retrying…");
    });
    socket.io.on("reconnect_attempt", function (attempt) {
      setStatus("reconnecting", "Reconnecting… (attempt " + attempt + ")");
    });

    socket.on("authenticated", function (data) {
      if (data.token) state.token = data.token;
      state.user = data.user;
      $("who").textContent = data.user.name;
      renderTodos(data.todos);
      $("auth").hidden = true;
      $("voice").hidden = false;
      $("pin").value = "";
      showAuthError("");
      setStatus("signed-in", "Connected and signed in.");
      setBusy(false);
    });
    socket.on("auth_error", function (data) {
      var text = (data && data.message) || "Sign-in failed.";
      if (data && data.retry_after) text += " Try again in " + data.retry_after + " s.";
      showAuthError(text);
      $("auth-button").disabled = false;
      $("pin").focus();
    });
    socket.on("transcript", function (data) {
      addLog("you", "You said", data.text || "(nothing heard)");
    });
    socket.on("response", function (data) {
      addLog("assistant", "Assistant", data.text || "");
      if (data.audio) play(data.audio, data.mime);
      endPending();
    });
    socket.on("todos", function (data) { renderTodos(data.items); });
    socket.on("error", function (data) {
      var message = (data && data.message) || "Something went wrong.";
      if (data && data.code === "not_authenticated") signedOut("Please sign in again.");
      else addLog("problem", "Problem", message);
      endPending();
    });
  }

  function signedOut(message) {
    state.user = null;
    $("voice").hidden = true;
    $("auth").hidden = false;
    showAuthError(message);
  }

  function play(audio, mime) {
    if (state.replyUrl) URL.revokeObjectURL(state.replyUrl);
    state.replyUrl = URL.createObjectURL(new Blob([audio], { type: mime || "audio/mpeg" }));
    var player = $("player");
    player.src = state.replyUrl;
    var started = player.play();
    if (started && started.catch) started.catch(function () { /* autoplay refused: the controls remain */ });
  }

  // ----- requests --------------------------------------------------------------------------------------

  function setBusy(busy) {
    state.pending = busy;
    $("send").disabled = busy;
    var mic = $("mic");
    if (!state.recorder) {
      mic.disabled = busy;
      mic.dataset.state = busy ? "busy" : "idle";
      $("mic-label").textContent = busy ? "Thinking…" : "Hold to talk";
    }
    $("mic-state").textContent = busy ? "Working on it…" : "";
  }

  function endPending() { if (state.pending) setBusy(false); }

  function sendText(event) {
    event.preventDefault();
    var text = $("text").value.trim();
    if (!text || state.pending || !state.socket || !state.socket.connected) return;
    addLog("you", "You typed", text);
    $("text").value = "";
    setBusy(true);
    state.socket.emit("text", { text: text });
  }

  function authenticate(event) {
    event.preventDefault();
    var user = $("user").value.trim(), pin = $("pin").value;
    if (!user || !pin) {
      showAuthError("Enter your e-mail or phone and your PIN.");
      (user ? $("pin") : $("user")).focus();
      return;
    }
    if (!state.socket || !state.socket.connected) {
      showAuthError("Not connected yet. Please wait a moment.");
      return;
    }
    showAuthError("");
    $("auth-button").disabled = true;
    state.socket.emit("authenticate", { user: user, pin: pin });
  }

  // ----- recording -------------------------------------------------------------------------------------

  function recorderType() {
    var wanted = ["audio/webm;codecs=opus", "audio/webm", "audio/ogg;codecs=opus", "audio/mp4"];
    if (!window.MediaRecorder || !MediaRecorder.isTypeSupported) return "";
    for (var i = 0; i < wanted.length; i++) if (MediaRecorder.isTypeSupported(wanted[i])) return wanted[i];
    return "";
  }

  function startRecording() {
    if (state.recorder || state.pending) return;
    if (!navigator.mediaDevices || !window.MediaRecorder) {
      addLog("problem", "Problem", "This browser cannot record audio here; type your request instead.");
      return;
    }
    var mic = $("mic");
    mic.dataset.state = "recording";
    mic.setAttribute("aria-pressed", "true");
    $("mic-label").textContent = "Listening… release or press to stop";
    navigator.mediaDevices.getUserMedia({ audio: true }).then(function (stream) {
      var type = recorderType();
      var recorder = type ? new MediaRecorder(stream, { mimeType: type }) : new MediaRecorder(stream);
      state.stream = stream;
      state.recorder = recorder;
      state.chunks = [];
      recorder.ondataavailable = function (e) { if (e.data && e.data.size) state.chunks.push(e.data); };
      recorder.onstop = function () { finishRecording(recorder); };
      recorder.start(250);
      state.recordStart = Date.now();
      tick();
      state.timer = setInterval(tick, 250);
      if (state.stopWhenReady) { state.stopWhenReady = false; stopRecording(true); }
    }).catch(function (err) {
      resetMic();
      addLog("problem", "Problem", "The microphone is not available (" + (err && err.name || "error") + ").");
    });
  }

  function tick() {
    var seconds = (Date.now() - state.recordStart) / 1000;
    var mic = $("mic");
    mic.dataset.seconds = seconds.toFixed(1);
    $("mic-state").textContent = "Recording " + seconds.toFixed(0) + " s";
    if (seconds * 1000 >= MAX_RECORD_MS) stopRecording(true);
  }

  function stopRecording(send) {
    state.toggled = false;
    if (!state.recorder) {
      if ($("mic").dataset.state === "recording") {
        if (send) state.stopWhenReady = true; // getUserMedia has not answered yet
        else resetMic();
      }
      return;
    }
    state.sendOnStop = send;
    if (state.recorder.state !== "inactive") state.recorder.stop();
  }

  function finishRecording(recorder) {
    var type = recorder.mimeType || "audio/webm";
    var blob = new Blob(state.chunks, { type: type });
    if (state.stream) state.stream.getTracks().forEach(function (t) { t.stop(); });
    state.stream = null;
    state.recorder = null;
    clearInterval(state.timer);
    resetMic();
    if (!state.sendOnStop || !blob.size || !state.socket || !state.socket.connected) return;
    setBusy(true);
    blob.arrayBuffer().then(function (buffer) {
      state.socket.emit("audio", { audio: buffer, mime: type });
    });
  }

  function resetMic() {
    var mic = $("mic");
    mic.dataset.state = "idle";
    mic.setAttribute("aria-pressed", "false");
    $("mic-label").textContent = "Hold to talk";
    $("mic-state").textContent = "";
  }

  function recording() { return $("mic").dataset.state === "recording"; }

  // A press starts recording (or, while a toggled recording runs, stops it); its release stops a held one.
  function pressDown() {
    if (state.pressing) return;
    state.pressing = true;
    state.pressStart = Date.now();
    if (recording()) { state.pressing = false; stopRecording(true); return; }
    startRecording();
  }

  function pressUp() {
    if (!state.pressing) return;
    state.pressing = false;
    if (!recording()) return;
    if (Date.now() - state.pressStart >= HOLD_MS) stopRecording(true);
    else state.toggled = true; // a click: keep recording until the next press
  }

  function bindMic() {
    var mic = $("mic");
    mic.addEventListener("pointerdown", function (e) {
      if (e.button !== 0 || mic.disabled) return;
      e.preventDefault();
      mic.focus();
      if (mic.setPointerCapture) mic.setPointerCapture(e.pointerId);
      pressDown();
    });
    mic.addEventListener("pointerup", function () { pressUp(); });
    mic.addEventListener("pointercancel", function () { pressUp(); });
    mic.addEventListener("keydown", function (e) {
      if (e.key === " " || e.key === "Spacebar") {
        e.preventDefault(); // no click from Space: handled here, hold or toggle
        if (!e.repeat) pressDown();
      } else if (e.key === "Enter") {
        e.preventDefault();
        if (e.repeat) return;
        if (recording()) stopRecording(true); else startRecording();
      }
    });
    mic.addEventListener("keyup", function (e) {
      if (e.key === " " || e.key === "Spacebar") { e.preventDefault(); pressUp(); }
    });
    // Clicks from assistive technology (no pointer, no key we handled) toggle.
    mic.addEventListener("click", function (e) {
      if (e.detail !== 0 || state.pressing) return;
      if (recording()) stopRecording(true); else startRecording();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    $("auth-form").addEventListener("submit", authenticate);
    $("text-form").addEventListener("submit", sendText);
    bindMic();
    if (typeof io !== "function") {
      setStatus("error", "The Socket.IO client did not load. Reload the page.");
      return;
    }
    connect();
  });
})();
