/* Operations dashboard: sign in, then follow `monitoring_update` on the /monitoring namespace.
 *
 * The credential lives in sessionStorage only (never in the URL). Every section always shows something:
 * its figures, an explicit empty state, or an error; the status line says whether updates are live,
 * reconnecting or stale, with the time of the last one. */
(function () {
  "use strict";

  var STORE = "voice-backend.dashboard.credential";
  var INTERVAL_S = 2;
  var CHART_DAYS = 14;
  var CHART_REFRESH_MS = 60000;
  var FIRST_UPDATE_GRACE_MS = 10000;
  var RECENT_LIMIT = 20;
  var FILTERED_REFRESH_MS = 5000;

  var state = {
    credential: null,
    socket: null,
    payload: null,
    lastAt: null,
    connection: "signed-out",
    detail: "",
    tab: "live",
    usage: null,
    usageError: null,
    usageAt: 0,
    usageLoading: false,
    transcriptSid: null,
    signedInAt: 0,
    filters: null,  // {tenant_id, status, since}: Recent calls then come from GET /api/calls with them
    filtered: null,  // the last page GET /api/calls answered for `filters`
    filteredError: null,
    filteredAt: 0,
    filteredLoading: false,
  };

  function $(id) { return document.getElementById(id); }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (key) {
        if (key === "text") node.textContent = attrs[key];
        else if (key === "className") node.className = attrs[key];
        else node.setAttribute(key, attrs[key]);
      });
    }
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  var SVG_NS = "http://www.w3.org/2000/svg";
  function svg(tag, attrs) {
    var node = document.createElementNS(SVG_NS, tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") node.textContent = attrs[key];
      else node.setAttribute(key, attrs[key]);
    });
    return node;
  }

  // ----- formatting ---------------------------------------------------------------------------------------

  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function clock(date) { return pad(date.getHours()) + ":" + pad(date.getMinutes()) + ":" + pad(date.getSeconds()); }
  function fromUnix(seconds) { return seconds == null ? null : new Date(seconds * 1000); }

  function duration(seconds) {
    if (seconds == null || isNaN(seconds)) return "—";
    var s = Math.max(0, Math.round(seconds));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    if (h) return h + "h " + pad(m) + "m";
    if (m) return m + "m " + pad(r) + "s";
    return r + "s";
  }

  function when(seconds) {
    var date = fromUnix(seconds);
    if (!date) return "—";
    var today = new Date();
    var sameDay = date.toDateString() === today.toDateString();
    return (sameDay ? "" : date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate()) + " ") + clock(date);
  }

  function number(value, digits) {
    if (value == null || isNaN(value)) return "—";
    return Number(value).toLocaleString(undefined, { maximumFractionDigits: digits == null ? 0 : digits });
  }

  function ms(value) { return value == null ? "—" : number(value, value < 10 ? 1 : 0) + " ms"; }

  function statusClass(value) {
    var v = String(value || "").toLowerCase();
    if (["live", "in-progress", "completed", "ok", "serving", "configured", "connected"].indexOf(v) >= 0) return "ok";
    if (["ringing", "queued", "connecting", "switching", "ending", "draining", "initiated"].indexOf(v) >= 0) return "warn";
    if (["failed", "busy", "no-answer", "canceled", "error", "no"].indexOf(v) >= 0) return "bad";
    return "";
  }

  function formatCell(kind, value) {
    if (kind === "seconds") return duration(value);
    if (kind === "ms") return ms(value);
    if (kind === "time") return when(value);
    if (kind === "number") return number(value, 2);
    if (value == null || value === "") return "—";
    return String(value);
  }

  function badge(text) { return el("span", { className: "badge " + statusClass(text), text: text == null ? "—" : String(text) }); }

  // ----- tables that update in place (rows keyed, so focus and selection survive updates) ------------------

  /* spec: {caption, columns: [{key, label, kind, num}], key: row => id, empty, extra: (row, tr) => void} */
  function syncTable(container, rows, spec) {
    var wrap = container.querySelector(":scope > .table-wrap");
    var empty = container.querySelector(":scope > .empty");
    if (!rows || rows.length === 0) {
      if (wrap) wrap.remove();
      if (!empty) { empty = el("p", { className: "empty" }); container.appendChild(empty); }
      empty.textContent = spec.empty;
      return;
    }
    if (empty) empty.remove();
    var signature = spec.columns.map(function (c) { return c.key; }).join("|");
    if (wrap && wrap.getAttribute("data-columns") !== signature) { wrap.remove(); wrap = null; }
    if (!wrap) {
      var head = el("tr", null, spec.columns.map(function (c) {
        return el("th", { scope: "col", className: c.num ? "num" : "", text: c.label });
      }));
      if (spec.extra) head.appendChild(el("th", { scope: "col", text: spec.extraLabel || "" }));
      var table = el("table", null, [
        spec.caption ? el("caption", { className: "muted", text: spec.caption }) : null,
        el("thead", null, [head]),
        el("tbody"),
      ]);
      wrap = el("div", { className: "table-wrap", "data-columns": signature }, [table]);
      container.appendChild(wrap);
    }
    var body = wrap.querySelector("tbody");
    var existing = {};
    Array.prototype.forEach.call(body.children, function (tr) { existing[tr.getAttribute("data-key")] = tr; });
    var seen = {};
    rows.forEach(function (row, index) {
      var key = String(spec.key(row, index));
      seen[key] = true;
      var tr = existing[key];
      if (!tr) {
        tr = el("tr", { "data-key": key });
        spec.columns.forEach(function (c) { tr.appendChild(el("td", { className: c.num ? "num" : "", "data-label": c.label })); });
        if (spec.extra) tr.appendChild(el("td", { "data-label": spec.extraLabel || "" }));
      }
      spec.columns.forEach(function (c, i) {
        var td = tr.children[i];
        var value = row[c.key];
        if (c.kind === "status") {
          var text = value == null ? "—" : String(value);
          if (td.textContent !== text) td.replaceChildren(badge(value));
        } else {
          var shown = formatCell(c.kind, value);
          if (td.textContent !== shown) td.textContent = shown;
        }
      });
      if (spec.extra) spec.extra(row, tr, tr.lastElementChild);
      if (body.children[index] !== tr) body.insertBefore(tr, body.children[index] || null);
    });
    Object.keys(existing).forEach(function (key) { if (!seen[key]) existing[key].remove(); });
  }

  // ----- status line -------------------------------------------------------------------------------------

  function setConnection(connection, detail) {
    state.connection = connection;
    state.detail = detail || "";
    renderStatus();
  }

  function renderStatus() {
    var status = $("status");
    var text;
    var shown = state.connection;
    var last = state.lastAt ? "last update " + clock(state.lastAt) : "no update yet";
    if (state.connection === "signed-out") text = "Signed out";
    else if (state.connection === "connecting") text = "Connecting… (" + last + ")";
    else if (state.connection === "reconnecting") text = "Reconnecting… (" + last + ")" + (state.detail ? " — " + state.detail : "");
    else if (state.connection === "error") text = "Error: " + state.detail + " (" + last + ")";
    else {
      var age = state.lastAt ? (Date.now() - state.lastAt.getTime()) / 1000 : Infinity;
      if (!state.lastAt) {
        text = "Live, waiting for the first update";
      } else if (age > INTERVAL_S * 3 + 2) {
        shown = "stale";
        text = "No update for " + duration(age) + " (" + last + ")";
      } else {
        text = "Live · updated " + clock(state.lastAt);
      }
    }
    status.setAttribute("data-state", shown);
    $("status-text").textContent = text;
    $("sum-updated").textContent = state.lastAt ? clock(state.lastAt) : "—";
    var banner = $("banner");
    var waited = state.signedInAt && Date.now() - state.signedInAt > FIRST_UPDATE_GRACE_MS;
    if (state.credential && !state.payload && waited) {
      banner.hidden = false;
      banner.textContent = "No figures received yet" + (state.detail ? ": " + state.detail : "") + ". Still trying.";
    } else if (state.connection === "reconnecting" || shown === "stale") {
      banner.hidden = false;
      banner.textContent = "Live updates are interrupted; the figures below are from " + (state.lastAt ? clock(state.lastAt) : "—") + ". Reconnecting automatically.";
    } else {
      banner.hidden = true;
    }
  }

  // ----- sign-in -----------------------------------------------------------------------------------------

  function authHeaders() {
    var c = state.credential || "";
    return c.indexOf("usr_") === 0 ? { "x-api-key": c } : { Authorization: "Bearer " + c };
  }

  function api(path) {
    return fetch(path, { headers: authHeaders(), cache: "no-store", credentials: "omit" }).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (body) {
        if (!response.ok) {
          var error = new Error((body && body.message) || "HTTP " + response.status);
          error.status = response.status;
          error.code = body && body.error;
          throw error;
        }
        return body;
      });
    });
  }

  function showSignIn(message) {
    $("app").hidden = true;
    $("signin").hidden = false;
    $("sign-out").hidden = true;
    var error = $("signin-error");
    error.hidden = !message;
    error.textContent = message || "";
    $("signin-button").disabled = false;
    $("credential").focus();
  }

  function signIn(credential, quiet) {
    state.credential = credential;
    $("signin-button").disabled = true;
    if (!quiet) $("signin-error").hidden = true;
    setConnection("connecting");
    return api("/api/monitoring/snapshot").then(function (payload) {
      try { sessionStorage.setItem(STORE, credential); } catch (e) { /* storage disabled: this page only */ }
      $("credential").value = "";
      $("signin").hidden = true;
      $("app").hidden = false;
      $("sign-out").hidden = false;
      $("signin-button").disabled = false;
      state.signedInAt = Date.now();
      render(payload);
      connect();
      $("main").focus();
    }, function (error) {
      state.credential = null;
      setConnection("signed-out");
      var message;
      if (error.status === 401) message = "This key or token was not accepted (" + error.message + ").";
      else if (error.status === 403) message = "This account is not an admin: the dashboard needs the admin role.";
      else if (error.status === 429) message = "Too many requests: try again in a minute.";
      else if (error.status) message = "The service answered " + error.status + ": " + error.message;
      else message = "The service could not be reached: " + error.message;
      if (quiet && (error.status === 401 || error.status === 403)) {
        try { sessionStorage.removeItem(STORE); } catch (e) { /* ignore */ }
      }
      showSignIn(message);
    });
  }

  function signOut(message) {
    if (state.socket) { state.socket.off(); state.socket.disconnect(); state.socket = null; }
    try { sessionStorage.removeItem(STORE); } catch (e) { /* ignore */ }
    state.credential = null;
    state.payload = null;
    state.lastAt = null;
    state.usage = null;
    state.usageAt = 0;
    state.filtered = null;
    state.filteredAt = 0;
    setConnection("signed-out");
    showSignIn(message);
  }

  // ----- live updates ------------------------------------------------------------------------------------

  var REFUSED = ["Admin role required", "Invalid or expired authentication token", "Authentication required: pass auth: {token}"];

  function connect() {
    if (typeof io !== "function") { setConnection("error", "the Socket.IO client did not load"); return; }
    var socket = io("/monitoring", {
      auth: { token: state.credential },
      transports: ["websocket"],
      reconnectionDelay: 1000,
      reconnectionDelayMax: 10000,
    });
    state.socket = socket;
    socket.on("connect", function () {
      setConnection("live");
      socket.emit("start_monitoring", { interval_s: INTERVAL_S }, function (ack) {
        if (ack && ack.ok === false) setConnection("error", ack.message || ack.error);
      });
    });
    socket.on("monitoring_update", function (payload) {
      if (state.connection !== "live") setConnection("live");
      render(payload);
    });
    socket.on("monitoring_error", function (body) { setConnection("error", (body && body.message) || "refused"); });
    socket.on("connect_error", function (error) {
      var message = (error && error.message) || "connection failed";
      if (REFUSED.indexOf(message) >= 0) { signOut("The live view refused this credential: " + message + "."); return; }
      setConnection("reconnecting", message);
    });
    socket.on("disconnect", function (reason) {
      if (reason === "io client disconnect") return;
      setConnection("reconnecting", reason === "io server disconnect" ? "the server closed the connection" : reason);
      if (reason === "io server disconnect") setTimeout(function () { if (state.socket === socket) socket.connect(); }, 1000);
    });
    socket.io.on("reconnect_attempt", function (attempt) { setConnection("reconnecting", "attempt " + attempt); });
  }

  // ----- rendering ---------------------------------------------------------------------------------------

  function render(payload) {
    state.payload = payload;
    state.lastAt = new Date();
    renderStatus();
    renderSummary(payload);
    renderLive(payload);
    renderRecent(payload);
    loadFiltered(false);
    renderUsageToday(payload);
    renderHealth(payload);
    if (state.tab === "usage") maybeLoadUsage(false);
  }

  function sum(obj) { return Object.keys(obj || {}).reduce(function (t, k) { return t + (obj[k] || 0); }, 0); }

  function renderSummary(p) {
    $("sum-instances").textContent = number(p.instance_count);
    $("sum-calls").textContent = number((p.totals || {}).active_calls || (p.active_calls || []).length);
    $("sum-streams").textContent = number((p.totals || {}).live_streams || (p.live_streams || []).length);
    $("sum-connections").textContent = number(sum(p.connections));
  }

  function sectionFor(container, key, title) {
    var section = container.querySelector('[data-figure="' + key + '"]');
    if (!section) {
      section = el("section", { className: "block", "data-figure": key, "aria-label": title }, [el("h2", { text: title }), el("div", { className: "rows" })]);
      container.appendChild(section);
    }
    return section;
  }

  function renderLive(p) {
    var container = $("live-tables");
    var figures = p.figures || [];
    var wanted = {};
    figures.forEach(function (figure) {
      wanted[figure.key] = true;
      var section = sectionFor(container, figure.key, figure.title);
      var rows = p[figure.key] || [];
      var total = (p.totals || {})[figure.key];
      var heading = figure.title + (total != null ? " (" + total + ")" : "");
      if (section.firstChild.textContent !== heading) section.firstChild.textContent = heading;
      syncTable(section.lastChild, rows, {
        columns: figure.columns.map(function (c) {
          return { key: c.key, label: c.label, kind: c.kind, num: c.kind === "seconds" || c.kind === "ms" || c.kind === "number" };
        }),
        key: function (row, i) {
          var id = row.call_sid || row.session_id || row.id || i;
          return (row.instance || "") + "/" + id;
        },
        empty: figure.empty || "Nothing right now.",
      });
    });
    var none = container.querySelector(":scope > .empty");
    if (!figures.length && !none) {
      container.appendChild(el("p", { className: "empty", text: "No feature reports live figures on these instances." }));
    } else if (figures.length && none) {
      none.remove();
    }
    Array.prototype.forEach.call(container.querySelectorAll("[data-figure]"), function (section) {
      if (!wanted[section.getAttribute("data-figure")]) section.remove();
    });
    var connections = Object.keys(p.connections || {}).sort().map(function (ns) {
      return { namespace: ns, count: p.connections[ns] };
    });
    var perInstance = (p.instances || []).length > 1;
    syncTable($("connections"), connections, {
      caption: perInstance ? "All instances together; each instance's own counts are on the Health tab." : null,
      columns: [{ key: "namespace", label: "Namespace or route" }, { key: "count", label: "Clients", kind: "number", num: true }],
      key: function (row) { return row.namespace; },
      empty: "No connection figures.",
    });
  }

  // ----- Recent calls: the live payload's last 20, or GET /api/calls with the filters ----------------------

  function maskPhone(value) {
    if (!value) return null;
    var text = String(value).trim();
    if (/^\+[0-9]{8,}$/.test(text)) return text.slice(0, 2) + "•".repeat(text.length - 6) + text.slice(-4);
    if (text.length <= 4) return "•".repeat(text.length);
    return "•".repeat(text.length - 2) + text.slice(-2);
  }

  /* A GET /api/calls item as the dashboard shows a call (the same shape as the payload's recent_calls). */
  function callRow(call) {
    var live = call.relay_status === "live" && call.ended_at == null;
    var length = call.duration_s;
    if (length == null && call.started_at != null) length = (call.ended_at != null ? call.ended_at : Date.now() / 1000) - call.started_at;
    return {
      call_sid: call.call_sid,
      tenant_id: call.tenant_id,
      caller: maskPhone(call.from_number),
      status: live ? "live" : call.status,
      duration_s: length,
      updated_at: call.updated_at,
    };
  }

  function readFilters() {
    var f = { tenant_id: $("filter-tenant").value.trim(), status: $("filter-status").value, since: $("filter-since").value };
    return f.tenant_id || f.status || f.since ? f : null;
  }

  function filtersQuery(f) {
    var params = new URLSearchParams({ limit: String(RECENT_LIMIT) });
    if (f.tenant_id) params.set("tenant_id", f.tenant_id);
    if (f.status) params.set("status", f.status);
    if (f.since) params.set("since", f.since + "T00:00:00Z");
    return params.toString();
  }

  function applyFilters() {
    state.filters = readFilters();
    state.filtered = null;
    state.filteredError = null;
    state.filteredAt = 0;
    renderRecent(state.payload || {});
    loadFiltered(true);
  }

  function loadFiltered(force) {
    var wanted = state.filters;
    if (!wanted || !state.credential || (state.filteredLoading && !force)) return;
    if (!force && Date.now() - state.filteredAt < FILTERED_REFRESH_MS) return;
    state.filteredLoading = true;
    state.filteredAt = Date.now();
    api("/api/calls?" + filtersQuery(wanted)).then(function (page) {
      if (state.filters !== wanted) return;
      state.filtered = page;
      state.filteredError = null;
    }, function (error) {
      if (state.filters !== wanted) return;
      state.filteredError = error.status === 400 ? "these filters are not valid (" + error.message + ")" : error.message;
    }).then(function () {
      if (state.filters === wanted) state.filteredLoading = false;
      renderRecent(state.payload || {});
    });
  }

  function renderRecent(p) {
    var container = $("recent");
    var filtered = state.filters != null;
    var title = filtered ? "Calls matching the filters" : "Last " + RECENT_LIMIT + " calls";
    if ($("recent-title").textContent !== title) $("recent-title").textContent = title;
    var note = "";
    var rows;
    if (filtered) {
      if (state.filteredError) {
        $("recent-note").textContent = "";
        setMessage(container, "Could not load the calls: " + state.filteredError + ".");
        return;
      }
      if (!state.filtered) {
        $("recent-note").textContent = "";
        setMessage(container, "Fetching the calls that match…");
        return;
      }
      rows = state.filtered.items.map(callRow);
      if (state.filtered.total > rows.length) note = "Showing the " + rows.length + " most recently updated of " + state.filtered.total + " matching calls.";
      else note = rows.length + (rows.length === 1 ? " matching call." : " matching calls.");
    } else {
      if (p.errors && p.errors.recent_calls) {
        $("recent-note").textContent = "";
        setMessage(container, "Recent calls are unavailable right now (" + p.errors.recent_calls + ").");
        return;
      }
      rows = p.recent_calls || [];
    }
    if ($("recent-note").textContent !== note) $("recent-note").textContent = note;
    syncTable(container, rows, {
      columns: [
        { key: "call_sid", label: "Call" },
        { key: "tenant_id", label: "Tenant" },
        { key: "caller", label: "Caller" },
        { key: "status", label: "Status", kind: "status" },
        { key: "duration_s", label: "Duration", kind: "seconds", num: true },
        { key: "updated_at", label: "Updated", kind: "time" },
      ],
      key: function (row) { return row.call_sid; },
      empty: filtered ? "No calls match these filters." : "No calls recorded yet.",
      extraLabel: "Transcript",
      extra: function (row, tr, td) {
        tr.classList.toggle("selected", row.call_sid === state.transcriptSid);
        if (!td.firstChild) {
          var button = el("button", { type: "button", className: "link", "data-sid": row.call_sid, "aria-controls": "transcript", text: "View" });
          button.setAttribute("aria-label", "View the transcript of call " + row.call_sid);
          button.addEventListener("click", function () { showTranscript(row.call_sid, button); });
          td.appendChild(button);
        }
      },
    });
  }

  function setMessage(container, text) {
    var wrap = container.querySelector(":scope > .table-wrap");
    if (wrap) wrap.remove();
    var empty = container.querySelector(":scope > .empty");
    if (!empty) { empty = el("p", { className: "empty" }); container.appendChild(empty); }
    empty.textContent = text;
  }

  var ROLES = { user: "Caller", assistant: "Agent", tool: "Tool", dtmf: "Key press", system: "Service" };

  function showTranscript(sid, opener) {
    state.transcriptSid = sid;
    var section = $("transcript");
    var body = $("transcript-body");
    section.hidden = false;
    section.opener = opener;
    $("transcript-title").textContent = "Transcript of " + sid;
    body.replaceChildren(el("p", { className: "muted", text: "Fetching the transcript…" }));
    Array.prototype.forEach.call($("recent").querySelectorAll("tr[data-key]"), function (tr) {
      tr.classList.toggle("selected", tr.getAttribute("data-key") === sid);
    });
    api("/api/calls/" + encodeURIComponent(sid)).then(function (call) {
      if (state.transcriptSid !== sid) return;
      var meta = [
        "Status " + (call.status || "—"),
        "duration " + duration(call.duration_s),
        call.end_reason ? "ended: " + call.end_reason : null,
        call.tenant_id ? "tenant " + call.tenant_id : null,
      ].filter(Boolean).join(" · ");
      var items = call.transcript || [];
      var list = items.length
        ? el("ol", null, items.map(function (item) {
            var text = item.text + (item.interrupted ? " (interrupted)" : "");
            var who = (ROLES[item.role] || item.role) + (item.latency_ms != null ? " · " + item.latency_ms + " ms" : "");
            return el("li", null, [el("span", { className: "role", text: who }), el("span", { text: text })]);
          }))
        : el("p", { className: "empty", text: "No transcript stored for this call." });
      body.replaceChildren(el("p", { className: "meta", text: meta }), list);
      $("transcript-title").focus();
    }, function (error) {
      if (state.transcriptSid !== sid) return;
      var text = error.status === 404 ? "This call is not in the database." : "Could not load the transcript: " + error.message;
      body.replaceChildren(el("p", { className: "error", text: text }));
    });
  }

  function closeTranscript() {
    var section = $("transcript");
    section.hidden = true;
    state.transcriptSid = null;
    Array.prototype.forEach.call($("recent").querySelectorAll("tr.selected"), function (tr) { tr.classList.remove("selected"); });
    if (section.opener && document.body.contains(section.opener)) section.opener.focus();
  }

  function renderUsageToday(p) {
    var container = $("usage-today");
    if (p.errors && p.errors.usage_today) {
      setMessage(container, "Usage is unavailable right now (" + p.errors.usage_today + ").");
      return;
    }
    var rows = (p.usage_today || []).map(function (row) {
      return {
        service: row.service,
        requests: row.requests,
        audio_minutes: (row.audio_seconds || 0) / 60,
        characters: row.characters,
        cost: "$" + Number(row.cost_usd || 0).toFixed(row.cost_usd && row.cost_usd < 0.01 ? 6 : 4),
      };
    });
    syncTable(container, rows, {
      columns: [
        { key: "service", label: "Service" },
        { key: "requests", label: "Requests", kind: "number", num: true },
        { key: "audio_minutes", label: "Audio (min)", kind: "number", num: true },
        { key: "characters", label: "Characters", kind: "number", num: true },
        { key: "cost", label: "Cost (USD)", num: true },
      ],
      key: function (row) { return row.service; },
      empty: "No metered usage today.",
    });
  }

  function maybeLoadUsage(force) {
    if (!state.credential || state.usageLoading) return;
    if (!force && state.usageAt && Date.now() - state.usageAt < CHART_REFRESH_MS) return;
    state.usageLoading = true;
    if (!state.usage) $("usage-chart").replaceChildren(el("p", { className: "muted", text: "Fetching usage by day…" }));
    api("/api/monitoring/usage?days=" + CHART_DAYS).then(function (data) {
      state.usage = data;
      state.usageError = null;
      state.usageAt = Date.now();
    }, function (error) {
      state.usageError = error.message;
      state.usageAt = Date.now();
    }).then(function () {
      state.usageLoading = false;
      renderChart();
    });
  }

  function renderChart() {
    var container = $("usage-chart");
    if (state.usageError && !state.usage) {
      var retry = el("button", { type: "button", className: "quiet", text: "Retry" });
      retry.addEventListener("click", function () { maybeLoadUsage(true); });
      container.replaceChildren(el("p", { className: "error", text: "Could not load usage: " + state.usageError }), retry);
      return;
    }
    if (!state.usage) return;
    var metric = $("chart-metric").value;
    var data = state.usage;
    var scale = metric === "audio_seconds" ? 1 / 60 : 1;
    var series = data.services.map(function (s, i) {
      return { name: s.service, cls: "s" + (i % 8), values: s[metric].map(function (v) { return v * scale; }) };
    });
    var totals = data.days.map(function (_, d) { return series.reduce(function (t, s) { return t + s.values[d]; }, 0); });
    var max = Math.max.apply(null, totals.concat([0]));
    if (!series.length || max === 0) {
      container.replaceChildren(el("p", { className: "empty", text: "No metered usage in the last " + data.days.length + " days." }));
      return;
    }
    // Drawn at the width it is shown at, so its text stays readable on a phone.
    var W = Math.max(300, Math.min(960, container.clientWidth || 720)), H = W < 500 ? 200 : 260;
    var left = 48, right = 8, top = 12, bottom = 28;
    var plotW = W - left - right, plotH = H - top - bottom;
    var band = plotW / data.days.length, bar = Math.max(2, band * 0.7);
    var label = { requests: "requests", cost_usd: "USD", audio_seconds: "minutes" }[metric];
    var chart = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": "Usage per day by service, in " + label + ", last " + data.days.length + " days; the same figures are in the table below." });
    [0, 0.5, 1].forEach(function (f) {
      var y = top + plotH - f * plotH;
      chart.appendChild(svg("line", { x1: left, x2: W - right, y1: y, y2: y, class: f === 0 ? "axis" : "grid" }));
      chart.appendChild(svg("text", { x: left - 6, y: y + 4, "text-anchor": "end", text: metric === "cost_usd" ? "$" + (max * f).toFixed(2) : number(max * f, max < 10 ? 1 : 0) }));
    });
    data.days.forEach(function (day, d) {
      var x = left + d * band + (band - bar) / 2;
      var y = top + plotH;
      series.forEach(function (s) {
        var h = (s.values[d] / max) * plotH;
        if (h <= 0) return;
        y -= h;
        var rect = svg("rect", { x: x.toFixed(1), y: y.toFixed(1), width: bar.toFixed(1), height: Math.max(h, 0.5).toFixed(1), class: s.cls });
        rect.appendChild(svg("title", { text: day + " · " + s.name + ": " + number(s.values[d], 4) + " " + label }));
        chart.appendChild(rect);
      });
      var step = Math.max(1, Math.ceil(44 / band));
      if ((data.days.length - 1 - d) % step === 0) {  // counted back from today, which is always labelled
        chart.appendChild(svg("text", { x: (left + d * band + band / 2).toFixed(1), y: H - 8, "text-anchor": "middle", text: day.slice(5) }));
      }
    });
    var legend = el("ul", { className: "legend" }, series.map(function (s) {
      return el("li", null, [el("span", { className: "swatch " + s.cls, "aria-hidden": "true" }), document.createTextNode(s.name)]);
    }));
    var rows = data.days.map(function (day, d) {
      return el("tr", null, [el("th", { scope: "row", text: day })].concat(series.map(function (s) {
        return el("td", { className: "num", text: number(s.values[d], 4) });
      })));
    });
    var table = el("div", { className: "table-scroll" }, [el("table", null, [
      el("thead", null, [el("tr", null, [el("th", { scope: "col", text: "Day (UTC)" })].concat(series.map(function (s) {
        return el("th", { scope: "col", className: "num", text: s.name });
      })))]),
      el("tbody", null, rows),
    ])]);
    var details = el("details", null, [el("summary", { text: "Figures as a table" }), table]);
    var note = state.usageError ? el("p", { className: "error", text: "Refresh failed (" + state.usageError + "); showing the figures from " + clock(new Date(state.usageAt)) + "." }) : null;
    container.replaceChildren(el("div", { className: "chart" }, [chart]), legend, details);
    if (note) container.appendChild(note);
  }

  function renderHealth(p) {
    var providers = Object.keys(p.provider_status || {}).map(function (name) {
      var s = p.provider_status[name];
      return {
        provider: name,
        configured: s.configured ? "configured" : "unconfigured",
        requests: s.requests,
        errors: s.errors,
        error_rate: s.requests ? (s.error_rate * 100).toFixed(1) + " %" : "—",
        latency: s.latency_ms && s.latency_ms.p50 != null ? ms(s.latency_ms.p50) + " / " + ms(s.latency_ms.p99) : "—",
        last_error: s.last_error ? s.last_error + " (" + when(s.last_error_at) + ")" : "none",
      };
    });
    syncTable($("providers"), providers, {
      columns: [
        { key: "provider", label: "Provider" },
        { key: "configured", label: "Set up", kind: "status" },
        { key: "requests", label: "Requests", kind: "number", num: true },
        { key: "errors", label: "Errors", kind: "number", num: true },
        { key: "error_rate", label: "Error rate", num: true },
        { key: "latency", label: "p50 / p99", num: true },
        { key: "last_error", label: "Last error" },
      ],
      key: function (row) { return row.provider; },
      empty: "No provider figures.",
    });
    var instances = (p.instances || []).map(function (i) {
      var lag = i.event_loop_lag_ms || {};
      return {
        instance: i.instance + (i.this ? " (this one)" : ""),
        id: i.instance,
        version: i.version,
        state: i.draining ? "draining" : "serving",
        uptime: duration(i.uptime_s),
        lag: lag.p50 == null ? "—" : ms(lag.p50) + " / " + ms(lag.p99),
        lag_max: lag.max,
        connections: sum(i.connections),
        age: duration(i.age_s),
      };
    });
    syncTable($("instances"), instances, {
      caption: p.scope === "cluster" ? "Every instance reporting through Redis." : "This process only (no REDIS_URL).",
      columns: [
        { key: "instance", label: "Instance" },
        { key: "version", label: "Version" },
        { key: "state", label: "State", kind: "status" },
        { key: "uptime", label: "Uptime", num: true },
        { key: "lag", label: "Loop lag p50 / p99", num: true },
        { key: "lag_max", label: "Max", kind: "ms", num: true },
        { key: "connections", label: "Clients", kind: "number", num: true },
        { key: "age", label: "Report age", num: true },
      ],
      key: function (row) { return row.id; },
      empty: "No instance is reporting.",
    });
    var jobs = $("jobs");
    if (p.errors && p.errors.jobs) setMessage(jobs, "Job figures are unavailable right now (" + p.errors.jobs + ").");
    else if (!p.jobs) setMessage(jobs, "No job figures.");
    else {
      syncTable(jobs, [p.jobs], {
        columns: [
          { key: "queued", label: "Queued", kind: "number", num: true },
          { key: "running", label: "Running", kind: "number", num: true },
          { key: "failed", label: "Failed (24 h)", kind: "number", num: true },
        ],
        key: function () { return "jobs"; },
        empty: "",
      });
    }
    var problems = Object.keys(p.errors || {});
    var panel = $("panel-health");
    var note = panel.querySelector(".problems");
    if (problems.length) {
      if (!note) { note = el("p", { className: "error problems", role: "status" }); panel.insertBefore(note, panel.firstChild); }
      note.textContent = "Some figures could not be read: " + problems.map(function (k) { return k + " (" + p.errors[k] + ")"; }).join(", ") + ".";
    } else if (note) {
      note.remove();
    }
  }

  // ----- tabs (WAI-ARIA tabs pattern: arrows, Home and End move between tabs) ----------------------------

  function selectTab(name, focus) {
    state.tab = name;
    Array.prototype.forEach.call(document.querySelectorAll('[role="tab"]'), function (tab) {
      var selected = tab.id === "tab-" + name;
      tab.setAttribute("aria-selected", selected ? "true" : "false");
      tab.tabIndex = selected ? 0 : -1;
      $(tab.getAttribute("aria-controls")).hidden = !selected;
      if (selected && focus) tab.focus();
    });
    if (name === "usage") {
      if (state.usage) renderChart();  // drawn at the width the panel now has
      maybeLoadUsage(false);
    }
  }

  function setupTabs() {
    var tabs = Array.prototype.slice.call(document.querySelectorAll('[role="tab"]'));
    tabs.forEach(function (tab, index) {
      tab.addEventListener("click", function () { selectTab(tab.id.slice(4), false); });
      tab.addEventListener("keydown", function (event) {
        var next = null;
        if (event.key === "ArrowRight") next = tabs[(index + 1) % tabs.length];
        else if (event.key === "ArrowLeft") next = tabs[(index - 1 + tabs.length) % tabs.length];
        else if (event.key === "Home") next = tabs[0];
        else if (event.key === "End") next = tabs[tabs.length - 1];
        if (next) { event.preventDefault(); selectTab(next.id.slice(4), true); }
      });
    });
  }

  // ----- start -------------------------------------------------------------------------------------------

  function start() {
    setupTabs();
    $("signin-form").addEventListener("submit", function (event) {
      event.preventDefault();
      var value = $("credential").value.trim();
      if (!value) { showSignIn("Enter an admin API key or token."); return; }
      signIn(value, false);
    });
    $("sign-out").addEventListener("click", function () { signOut(null); });
    $("transcript-close").addEventListener("click", closeTranscript);
    $("recent-filters").addEventListener("submit", function (event) { event.preventDefault(); applyFilters(); });
    $("filter-status").addEventListener("change", applyFilters);
    $("filter-since").addEventListener("change", applyFilters);
    $("filter-clear").addEventListener("click", function () {
      $("recent-filters").reset();
      applyFilters();
    });
    $("chart-metric").addEventListener("change", renderChart);
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && !$("transcript").hidden) closeTranscript();
    });
    setInterval(renderStatus, 1000);
    var resizing = null;
    window.addEventListener("resize", function () {
      clearTimeout(resizing);
      resizing = setTimeout(function () { if (state.tab === "usage" && state.usage) renderChart(); }, 150);
    });
    var saved = null;
    try { saved = sessionStorage.getItem(STORE); } catch (e) { saved = null; }
    if (saved) signIn(saved, true);
    else showSignIn(null);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
