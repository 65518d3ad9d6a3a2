// The shared app page: posts the form, follows the run (Server-Sent Events), shows the outcome.
// Everything a run returns is inserted with textContent, never as HTML.
(function () {
  "use strict";

  var configElement = document.getElementById("mantle-config");
  if (!configElement) return;
  var config = JSON.parse(configElement.textContent);

  var STATUS_TEXT = {
    queued: "Queued: your request will start in a moment…",
    running: "Working on it…",
    succeeded: "Done.",
  };
  var ENDED = ["succeeded", "failed", "blocked", "cancelled"];

  function byId(id) { return document.getElementById(id); }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-Mantle-Page": config.page_token },
      body: JSON.stringify(body),
    });
  }

  async function problem(response) {
    // The one error shape of the API: {"detail": [{"loc", "msg", "type"}]}.
    var detail = [];
    try { detail = (await response.json()).detail || []; } catch (e) { detail = []; }
    var first = detail[0] || {};
    var text;
    if (response.status === 429) {
      var wait = response.headers.get("Retry-After");
      text = first.msg || ("Too many requests. Please try again in " + wait + " seconds.");
    } else if (response.status === 404) {
      text = "This link is no longer available.";
    } else if (response.status === 410) {
      text = "This link has expired.";
    } else if (response.status === 403 && first.type === "page_expired") {
      text = "This page has expired. Reload it and try again.";
    } else if (response.status === 403 && first.type === "access_code") {
      text = "This link needs its access code again. Reload the page to enter it.";
    } else if (response.status === 413) {
      text = "What you entered is too long.";
    } else if (response.status === 422) {
      text = "Please check the highlighted fields.";
    } else {
      text = "Something went wrong. Please try again in a moment.";
    }
    return { status: response.status, text: text, detail: detail };
  }

  // -- the access code gate ----------------------------------------------------------------
  var gate = byId("mantle-access");
  if (gate) {
    gate.addEventListener("submit", async function (event) {
      event.preventDefault();
      var error = byId("mantle-code-error");
      error.hidden = true;
      try {
        var response = await post(config.access_url, { code: byId("mantle-code").value });
        if (response.ok) { window.location.reload(); return; }
        var found = await problem(response);
        error.textContent = response.status === 403 ? "That code is not right." : found.text;
      } catch (e) {
        error.textContent = "Could not reach the server. Check your connection and try again.";
      }
      error.hidden = false;
    });
    return;
  }

  // -- the form ----------------------------------------------------------------------------
  var form = byId("mantle-form");
  var button = byId("mantle-submit");
  var statusBox = byId("mantle-status");
  var statusText = byId("mantle-status-text");
  var progress = byId("mantle-progress");
  var result = byId("mantle-result");
  var stream = null;

  function collect() {
    var inputs = {};
    config.fields.forEach(function (field) {
      var element = form.elements[field.name];
      if (field.kind === "checkbox") { inputs[field.name] = element.checked; return; }
      var value = element.value;
      if (field.kind === "number" || field.kind === "choice") {
        if (value === "") return;
        inputs[field.name] = field.kind === "number" ? Number(value) : value;
        return;
      }
      inputs[field.name] = value;
    });
    return inputs;
  }

  function clearFieldErrors() {
    form.querySelectorAll(".field-error").forEach(function (p) { p.hidden = true; p.textContent = ""; });
    form.querySelectorAll("[aria-invalid]").forEach(function (el) { el.removeAttribute("aria-invalid"); });
  }

  function showFieldErrors(detail) {
    detail.forEach(function (item) {
      var loc = item.loc || [];
      var name = loc[0] === "body" && loc[1] === "inputs" ? loc[2] : null;
      var target = name !== null ? byId("e-" + name) : null;
      if (!target) return;
      target.textContent = item.msg;
      target.hidden = false;
      var input = byId("f-" + name);
      if (input) input.setAttribute("aria-invalid", "true");
    });
  }

  function setStatus(kind, text) {
    statusBox.hidden = false;
    statusBox.className = "status status-" + kind;
    statusText.textContent = text;
  }

  // Text streamed by a model block, shown as it arrives (as text) until the final outputs replace it.
  function showPartial(delta) {
    var live = result.querySelector("[data-streaming]");
    if (!live) {
      result.replaceChildren();
      var box = document.createElement("div");
      box.className = "output";
      live = document.createElement("div");
      live.className = "output-value";
      live.setAttribute("data-streaming", "");
      box.appendChild(live);
      result.appendChild(box);
    }
    live.textContent += delta;
    result.hidden = false;
  }

  function showOutputs(outputs) {
    result.replaceChildren();
    var known = config.outputs.length ? config.outputs : Object.keys(outputs).map(function (name) {
      return { name: name, label: name };
    });
    known.forEach(function (output) {
      if (!(output.name in outputs)) return;
      var value = outputs[output.name];
      var box = document.createElement("div");
      box.className = "output";
      if (known.length > 1) {
        var heading = document.createElement("h2");
        heading.textContent = output.label;
        box.appendChild(heading);
      }
      var text = document.createElement("div");
      text.className = "output-value";
      text.setAttribute("data-output", output.name);
      text.textContent = typeof value === "string" ? value : JSON.stringify(value, null, 2);
      box.appendChild(text);
      var copy = document.createElement("button");
      copy.type = "button";
      copy.className = "copy";
      copy.textContent = "Copy";
      copy.addEventListener("click", function () {
        navigator.clipboard.writeText(text.textContent).then(function () { copy.textContent = "Copied"; });
      });
      box.appendChild(copy);
      result.appendChild(box);
    });
    result.hidden = false;
  }

  function render(view) {
    var total = view.progress ? view.progress.total : 0;
    progress.hidden = !total || ENDED.indexOf(view.status) >= 0;
    if (total) { progress.max = total; progress.value = view.progress.done; }
    if (view.status === "waiting") {
      setStatus("waiting", view.waiting_for === "review"
        ? "Waiting for review: a person checks this before you see it. This page updates when they decide."
        : "Working on it…");
    } else if (view.status === "succeeded") {
      setStatus("done", STATUS_TEXT.succeeded);
      showOutputs(view.outputs || {});
    } else if (view.error) {
      setStatus(view.status === "blocked" ? "blocked" : "error", view.error.message);
    } else {
      setStatus("busy", STATUS_TEXT[view.status] || STATUS_TEXT.running);
    }
    if (ENDED.indexOf(view.status) >= 0) finish();
  }

  function finish() {
    if (stream) { stream.close(); stream = null; }
    button.disabled = false;
  }

  function follow(run) {
    stream = new EventSource(run.events_url);
    stream.addEventListener("state", function (event) { render(JSON.parse(event.data)); });
    stream.addEventListener("partial", function (event) { showPartial(JSON.parse(event.data).delta); });
    stream.addEventListener("finished", function (event) { render(JSON.parse(event.data)); });
    stream.addEventListener("error", async function () {
      if (!stream || stream.readyState !== EventSource.CLOSED) return; // it reconnects by itself
      stream = null;
      var response = await fetch(run.status_url, { credentials: "same-origin" });
      if (response.ok) { render(await response.json()); return; }
      setStatus("error", (await problem(response)).text);
      finish();
    });
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    if (stream) { stream.close(); stream = null; }
    clearFieldErrors();
    result.hidden = true;
    result.replaceChildren();
    button.disabled = true;
    setStatus("busy", "Starting…");
    var response;
    try {
      response = await post(config.runs_url, { inputs: collect() });
    } catch (e) {
      setStatus("error", "Could not reach the server. Check your connection and try again.");
      finish();
      return;
    }
    if (!response.ok) {
      var found = await problem(response);
      if (found.status === 422) showFieldErrors(found.detail);
      setStatus(found.status === 429 ? "limited" : "error", found.text);
      finish();
      return;
    }
    var run = await response.json();
    render(run);
    if (ENDED.indexOf(run.status) < 0) follow(run);
  });
})();
