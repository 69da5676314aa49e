// leadgate form embed: put <script src="https://<gateway>/forms/<form>/embed.js" async></script>
// where the form should appear; the form is inserted right after that tag, in an iframe that
// takes the form's height.
(function () {
  "use strict";

  var formId = "__LEADGATE_FORM_ID__";
  var title = "__LEADGATE_FORM_TITLE__";
  var MARK = "data-leadgate-embed";

  function pathOf(src) {
    try {
      return decodeURIComponent(new URL(src, window.location.href).pathname);
    } catch (error) {
      return "";
    }
  }

  // document.currentScript is set while a classic script runs, async ones included; the search
  // by address covers loaders that inject the tag in ways that leave it unset.
  function findScript() {
    var current = document.currentScript;
    if (current && current.src && !current.hasAttribute(MARK)) {
      return current;
    }
    var wanted = "/forms/" + formId + "/embed.js";
    var scripts = document.getElementsByTagName("script");
    for (var i = 0; i < scripts.length; i += 1) {
      var script = scripts[i];
      if (script.src && !script.hasAttribute(MARK) && pathOf(script.src) === wanted) {
        return script;
      }
    }
    return null;
  }

  var script = findScript();
  if (!script) {
    return;
  }
  script.setAttribute(MARK, "");
  var origin;
  try {
    origin = new URL(script.src, window.location.href).origin;
  } catch (error) {
    return;
  }

  var frame = document.createElement("iframe");
  frame.src = origin + "/forms/" + encodeURIComponent(formId) + "?embed=1";
  frame.title = title;
  frame.setAttribute("loading", "lazy");
  frame.style.display = "block";
  frame.style.width = "100%";
  frame.style.height = "480px";
  frame.style.border = "0";

  window.addEventListener("message", function (event) {
    if (event.origin !== origin || event.source !== frame.contentWindow) {
      return;
    }
    var data = event.data;
    if (!data || typeof data !== "object" || data.leadgateForm !== formId) {
      return;
    }
    var height = Number(data.height);
    if (isFinite(height) && height > 0) {
      frame.style.height = Math.ceil(height) + "px";
    }
  });

  // A tag placed in <head> cannot show anything there: the form then goes to the end of <body>.
  function place() {
    if (script.parentNode && script.parentNode !== document.head) {
      script.parentNode.insertBefore(frame, script.nextSibling);
    } else if (document.body) {
      document.body.appendChild(frame);
    }
  }
  if (script.parentNode === document.head && !document.body) {
    document.addEventListener("DOMContentLoaded", place);
  } else {
    place();
  }
})();
