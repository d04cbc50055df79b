/* Ripple website snippet: pageviews, share clicks and conversions, no cookies.
 * <script defer src="https://collector.example/ripple.js" data-site="acme.com"></script>
 * Share buttons: <a data-ripple-share="bluesky" href="...">; conversions:
 * ripple('conversion', {goal: 'signup', value: 0}). The session id is random, kept in
 * sessionStorage (one tab, gone when it closes); never a cookie, never derived from the IP.
 * URLs are sent without their #fragment and with only their utm_* query parameters (tokens
 * in query strings are personal data); an automated browser (navigator.webdriver) says so. */
(function (w, d) {
  "use strict";
  var script = d.currentScript || d.querySelector("script[data-site][src*='ripple.js']");
  if (!script || w.__ripple) return;
  w.__ripple = 1;
  var site = script.getAttribute("data-site");
  var endpoint = script.getAttribute("data-endpoint") || new URL(script.src, location.href).origin + "/e";
  var NETWORKS = ["facebook", "x", "linkedin", "bluesky", "mastodon", "reddit", "whatsapp",
    "telegram", "pinterest", "email", "copy_link", "other"];
  var memorySession = null;
  var lastUrl = null;

  function rand(bytes) {
    var a = new Uint8Array(bytes), s = "";
    (w.crypto || w.msCrypto).getRandomValues(a);
    for (var i = 0; i < a.length; i++) s += (a[i] < 16 ? "0" : "") + a[i].toString(16);
    return s;
  }

  function session() {
    try {
      var s = w.sessionStorage.getItem("ripple_session");
      if (!s) { s = rand(16); w.sessionStorage.setItem("ripple_session", s); }
      return s;
    } catch (e) { // storage blocked: one id for this page's life
      return memorySession || (memorySession = rand(16));
    }
  }

  function pageUrl(href) {
    try {
      var u = new URL(href, location.href), kept = [];
      u.search.replace(/^\?/, "").split("&").forEach(function (p) {
        if (p.split("=")[0].toLowerCase().indexOf("utm_") === 0) kept.push(p);
      });
      return u.origin + u.pathname + (kept.length ? "?" + kept.join("&") : "");
    } catch (e) {
      return String(href).split("#")[0].split("?")[0];
    }
  }

  function send(ev) {
    ev.site = site;
    ev.session = session();
    ev.nonce = rand(12); // per event: a retried request keeps its ids
    ev.url = pageUrl(ev.url || location.href);
    if (navigator.webdriver) ev.automated = true; // the collector keeps it out as a bot
    var body = JSON.stringify(ev);
    try { // text/plain: a CORS-safelisted type, so no preflight
      if (navigator.sendBeacon && navigator.sendBeacon(endpoint, body)) return;
    } catch (e) { /* fall through to fetch */ }
    if (w.fetch) {
      w.fetch(endpoint, { method: "POST", body: body, keepalive: true, credentials: "omit",
        mode: "cors", headers: { "Content-Type": "text/plain" } })["catch"](function () {});
    }
  }

  function utm(search) {
    var p = new URLSearchParams(search), out = {};
    ["source", "medium", "campaign", "content", "term"].forEach(function (k) {
      var v = p.get("utm_" + k);
      out[k] = v ? v.toLowerCase() : null;
    });
    return out;
  }

  function pageview(referrer) {
    var url = location.href.split("#")[0];
    if (url === lastUrl) return; // replaceState to the same page, hash changes
    var previous = lastUrl;
    lastUrl = url;
    // The previous page of this site is a page URL too: cleaned like one.
    send({ kind: "pageview", url: location.href,
      referrer: (previous === null ? referrer : pageUrl(previous)) || null, utm: utm(location.search) });
  }

  // Single-page apps: later views have the previous page as their referrer.
  ["pushState", "replaceState"].forEach(function (name) {
    var original = history[name];
    history[name] = function () {
      var result = original.apply(this, arguments);
      pageview(null);
      return result;
    };
  });
  w.addEventListener("popstate", function () { pageview(null); });

  d.addEventListener("click", function (e) {
    var el = e.target && e.target.closest ? e.target.closest("[data-ripple-share]") : null;
    if (!el) return;
    var network = (el.getAttribute("data-ripple-share") || "").toLowerCase();
    send({ kind: "share_click", network: NETWORKS.indexOf(network) >= 0 ? network : "other",
      url: el.getAttribute("data-ripple-url") || location.href });
  }, true);

  function api(command, props) {
    props = props || {};
    if (command === "conversion") {
      var value = Number(props.value);
      send({ kind: "conversion", goal: String(props.goal || ""), value: isFinite(value) ? value : 0 });
    } else if (command === "pageview") {
      lastUrl = null;
      pageview(d.referrer);
    }
  }
  // Calls made before the snippet loaded: window.ripple = window.ripple || function () {
  // (window.ripple.q = window.ripple.q || []).push(arguments) }
  var queued = (w.ripple && w.ripple.q) || [];
  w.ripple = api;
  pageview(d.referrer);
  for (var i = 0; i < queued.length; i++) api(queued[i][0], queued[i][1]);
})(window, document);
