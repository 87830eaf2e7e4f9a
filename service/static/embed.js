// One-snippet embed for research portals:
//
//   <div id="hansard"></div>
//   <script src="https://SEARCH-HOST/embed.js" data-target="#hansard" data-q="HS2" data-house="lords"></script>
//
// Renders the compact search page (/embed) in an iframe inside the target
// element (or just after the script when there is none). data-q and the
// filters (data-house, data-party, data-speaker, data-section, data-date_from,
// data-date_to, data-mode, data-sort) set the starting search; data-height
// the frame's height in pixels (default 640). The host must list the portal's
// origin in HANSARD_ALLOWED_ORIGINS, or the browser refuses to show the frame.
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script) return;
  var origin = new URL(script.src, location.href).origin;
  var names = ["q", "house", "party", "speaker", "section", "date_from", "date_to", "mode", "sort"];
  var params = new URLSearchParams();
  names.forEach(function (name) {
    var value = script.getAttribute("data-" + name);
    if (value) params.set(name, value);
  });
  var frame = document.createElement("iframe");
  frame.src = origin + "/embed" + (params.toString() ? "?" + params : "");
  frame.title = "Search Hansard";
  frame.loading = "lazy";
  frame.style.width = "100%";
  frame.style.height = (parseInt(script.getAttribute("data-height"), 10) || 640) + "px";
  frame.style.border = "1px solid #d9d6cc";
  frame.style.borderRadius = "6px";
  var selector = script.getAttribute("data-target");
  var target = selector && document.querySelector(selector);
  if (target) target.appendChild(frame);
  else script.parentNode.insertBefore(frame, script.nextSibling);
})();
