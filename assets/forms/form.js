// leadgate website form: checks the fields before sending, sends in the background with a
// progress bar, and shows the answer in place. Without this script the form still works as a
// plain multipart POST, and the browser's own checks (required, maxlength, pattern) apply.
(function () {
  "use strict";

  var configNode = document.getElementById("leadgate-form-config");
  var form = document.getElementById("leadgate-form");
  if (!configNode || !form) {
    return;
  }
  var config;
  try {
    config = JSON.parse(configNode.textContent);
  } catch (error) {
    return;
  }
  var messages = config.messages;
  var BYTES_PER_MB = 1048576;
  // Loose on purpose ("something@host.tld"): the server's stricter check answers the rest.
  var EMAIL = /^[^\s@]+@[^\s@.]+(\.[^\s@.]+)+$/;

  // Inside the embed iframe: tell the parent page how tall the content is, so it can size the
  // frame. The root element's own scrollHeight never drops below the frame's height, so the
  // layout height of <html> is measured instead, which shrinks when the content does.
  var postHeight = function () {};
  if (window.parent !== window) {
    var lastHeight = -1;
    postHeight = function () {
      var height = Math.ceil(document.documentElement.getBoundingClientRect().height);
      if (height !== lastHeight) {
        lastHeight = height;
        window.parent.postMessage({ leadgateForm: config.form_id, height: height }, "*");
      }
    };
    if (window.ResizeObserver) {
      new ResizeObserver(postHeight).observe(document.documentElement);
    } else {
      window.addEventListener("resize", postHeight);
    }
    window.addEventListener("load", postHeight);
    postHeight();
  }

  // Fill the "{max}" and "{file}" placeholders as the server does: {max} first, so a file's
  // name is never searched for placeholders.
  function fill(template, max, file) {
    var text = String(template).split("{max}").join(String(max));
    if (file !== undefined) {
      text = text.split("{file}").join(file);
    }
    return text;
  }

  function megabytes(bytes) {
    return Math.ceil(bytes / BYTES_PER_MB);
  }

  // Characters as the server counts them (Unicode scalar values, not UTF-16 units).
  function length(text) {
    return Array.from(text).length;
  }

  function checkText(entry) {
    var value = entry.input.value.trim();
    if (value === "") {
      return entry.required ? messages.required : "";
    }
    if (entry.maxLength > 0 && length(value) > entry.maxLength) {
      return fill(messages.too_long, entry.maxLength);
    }
    if (entry.kind === "tel") {
      var digits = value.replace(/[^0-9]/g, "").length;
      if (digits < 10 || digits > 15) {
        return messages.phone;
      }
    }
    if (entry.kind === "email" && !EMAIL.test(value)) {
      return messages.email;
    }
    return "";
  }

  function chosenFiles(input) {
    var chosen = [];
    var list = input.files || [];
    for (var i = 0; i < list.length; i += 1) {
      if (list[i].name !== "" || list[i].size > 0) {
        chosen.push(list[i]);
      }
    }
    return chosen;
  }

  function checkFiles(entry) {
    var chosen = chosenFiles(entry.input);
    if (chosen.length === 0) {
      return entry.required ? messages.file_required : "";
    }
    if (chosen.length > entry.maxFiles) {
      return fill(messages.too_many_files, entry.maxFiles);
    }
    for (var i = 0; i < chosen.length; i += 1) {
      if (chosen[i].size > entry.maxBytes) {
        return fill(messages.file_too_large, megabytes(entry.maxBytes), chosen[i].name);
      }
    }
    return "";
  }

  function checkConsent(entry) {
    return entry.input.checked ? "" : messages.consent;
  }

  // Every checked control, in page order, and the same entries by the field's name.
  var entries = [];
  var byName = Object.create(null);
  function addEntry(entry) {
    if (entry.input && entry.error) {
      entries.push(entry);
      byName[entry.name] = entry;
    }
  }
  (config.fields || []).forEach(function (field) {
    addEntry({
      name: field.name,
      kind: field.input,
      required: field.required,
      maxLength: field.max_length,
      input: document.getElementById(field.id),
      error: document.getElementById(field.error_id),
      check: checkText,
    });
  });
  if (config.files) {
    addEntry({
      name: config.files.name,
      required: config.files.required,
      maxFiles: config.files.max_files,
      maxBytes: config.files.max_bytes,
      input: document.getElementById(config.files.id),
      error: document.getElementById(config.files.error_id),
      check: checkFiles,
    });
  }
  if (config.consent) {
    addEntry({
      name: config.consent.name,
      input: document.getElementById(config.consent.id),
      error: document.getElementById(config.consent.error_id),
      check: checkConsent,
    });
  }

  var submit = document.getElementById("lg-submit");
  var progress = document.getElementById("lg-progress");
  var general = document.getElementById("lg-form-error");
  var status = document.getElementById("lg-status");
  var success = document.getElementById("lg-success");
  var successText = document.getElementById("lg-success-message");
  var ok = document.getElementById("lg-ok");
  var note = document.getElementById("lg-note");
  var submitLabel = submit ? submit.textContent : "";
  var busy = false;

  if (ok) {
    ok.addEventListener("click", function () {
      window.location.reload();
    });
  }

  // Old browsers send the form the plain way; the server answers with a result page.
  if (!window.FormData || !window.XMLHttpRequest || !submit || !general || !success) {
    return;
  }
  // Our checks replace the browser's, so the messages are ours and sit next to the fields.
  form.noValidate = true;

  function showError(entry, text) {
    entry.error.textContent = text;
    if (text) {
      entry.input.setAttribute("aria-invalid", "true");
    } else {
      entry.input.removeAttribute("aria-invalid");
    }
  }

  function showGeneral(text) {
    general.textContent = text;
  }

  // Once a field shows an error, the error follows the field as it is corrected; a file
  // choice is checked at once, so a too large file is reported before sending.
  entries.forEach(function (entry) {
    var eventName = entry.check === checkText ? "input" : "change";
    entry.input.addEventListener(eventName, function () {
      if (entry.check === checkFiles || entry.error.textContent !== "") {
        showError(entry, entry.check(entry));
        postHeight();
      }
    });
  });

  function setBusy(sending) {
    busy = sending;
    submit.disabled = sending;
    submit.textContent = sending ? config.sending_label : submitLabel;
    if (sending) {
      form.setAttribute("aria-busy", "true");
    } else {
      form.removeAttribute("aria-busy");
    }
    if (progress) {
      progress.hidden = !sending;
      progress.value = 0;
    }
    if (status) {
      status.textContent = sending ? config.sending_label : "";
    }
  }

  function focusFirstInvalid() {
    for (var i = 0; i < entries.length; i += 1) {
      if (entries[i].error.textContent !== "") {
        entries[i].input.focus();
        return true;
      }
    }
    return false;
  }

  function showSuccess(text) {
    form.hidden = true;
    if (note) {
      note.hidden = true;
    }
    successText.textContent = text;
    success.hidden = false;
    ok.focus();
  }

  function failed(text) {
    showGeneral(text);
    submit.focus();
  }

  function answered(statusCode, responseText) {
    setBusy(false);
    var body = null;
    try {
      body = JSON.parse(responseText);
    } catch (error) {
      body = null;
    }
    if (!body || typeof body !== "object") {
      failed(messages.network);
      return;
    }
    if (statusCode >= 200 && statusCode < 300 && body.status === "ok") {
      showSuccess(typeof body.message === "string" && body.message ? body.message : config.success_message);
      return;
    }
    var placed = false;
    var unplaced = [];
    var errors = body.errors && typeof body.errors === "object" ? body.errors : {};
    Object.keys(errors).forEach(function (name) {
      var text = String(errors[name]);
      if (byName[name]) {
        showError(byName[name], text);
        placed = true;
      } else {
        unplaced.push(text);
      }
    });
    if (unplaced.length > 0) {
      showGeneral(unplaced.join(" "));
    } else if (!placed) {
      showGeneral(typeof body.message === "string" && body.message ? body.message : messages.network);
    }
    if (!focusFirstInvalid()) {
      submit.focus();
    }
  }

  function send() {
    var request = new XMLHttpRequest();
    request.open("POST", form.getAttribute("action") || window.location.href);
    request.setRequestHeader("Accept", "application/json");
    if (request.upload && progress) {
      request.upload.addEventListener("progress", function (event) {
        if (event.lengthComputable && event.total > 0) {
          progress.value = Math.round((event.loaded / event.total) * 100);
        } else {
          progress.removeAttribute("value");
        }
      });
      request.upload.addEventListener("load", function () {
        progress.value = 100;
      });
    }
    request.addEventListener("load", function () {
      answered(request.status, request.responseText);
    });
    var networkFailure = function () {
      setBusy(false);
      failed(messages.network);
    };
    request.addEventListener("error", networkFailure);
    request.addEventListener("timeout", networkFailure);
    request.addEventListener("abort", networkFailure);
    var data = new FormData(form);
    setBusy(true);
    request.send(data);
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (busy) {
      return;
    }
    showGeneral("");
    var invalid = false;
    entries.forEach(function (entry) {
      var text = entry.check(entry);
      showError(entry, text);
      invalid = invalid || text !== "";
    });
    if (invalid) {
      focusFirstInvalid();
      return;
    }
    send();
  });
})();
