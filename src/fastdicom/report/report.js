// fastdicom report: draws the association sections from the JSON block on demand,
// filters findings, sorts and filters operation tables.  Vanilla JS, no library;
// every wire string reaches the page through textContent or setAttribute only.
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("fd-data").textContent);
  var S = D.strings;
  var SVGNS = "http://www.w3.org/2000/svg";
  var PAGE = 200, LADDER_FIRST = 150;
  // operation row fields (see report/__init__.py build_data)
  var F = {assoc: 0, mid: 1, cmd: 2, dir: 3, sop: 4, status: 5, stext: 6, cls: 7, t: 8, lat: 9,
           send: 10, proc: 11, resp: 12, think: 13, bytes: 14, frame: 15, inst: 16, pending: 17};

  function el(tag, attrs) {
    var e = document.createElement(tag);
    if (attrs) for (var k in attrs) if (attrs[k] !== null && attrs[k] !== undefined) e.setAttribute(k, attrs[k]);
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c === null || c === undefined) continue;
      e.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
    }
    return e;
  }
  function sv(tag, attrs, text) {
    var e = document.createElementNS(SVGNS, tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function ms(v) {
    if (v === null || v === undefined) return "";
    if (v < 1) return Math.round(v * 1000) + " µs";
    if (v < 1000) return v.toFixed(1) + " ms";
    return (v / 1000).toFixed(2) + " s";
  }
  function bytes(n) {
    if (!n) return "";
    var u = ["B", "KB", "MB", "GB"], i = 0;
    while (n >= 1024 && i < 3) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + " " + u[i];
  }
  function hex4(n) { return "0x" + ("000" + n.toString(16)).slice(-4); }

  // ---------------------------------------------------------------- findings
  var boxes = document.querySelectorAll("#finding-filters input");
  function applyFilters() {
    var on = {};
    boxes.forEach(function (b) { on[b.getAttribute("data-sev")] = b.checked; });
    document.querySelectorAll("li.finding").forEach(function (li) {
      li.style.display = on[li.getAttribute("data-sev")] ? "" : "none";
    });
  }
  boxes.forEach(function (b) { b.addEventListener("change", applyFilters); });
  document.querySelectorAll(".badges a.badge").forEach(function (a) {
    a.addEventListener("click", function () {
      var s = a.getAttribute("data-sev");
      boxes.forEach(function (b) { b.checked = b.getAttribute("data-sev") === s; });
      applyFilters();
    });
  });

  // ------------------------------------------------------------------ ladder
  function ladder(a, limit) {
    var W = 900, L = 190, R = 760, top = 46, step = 22;
    var pdus = a.pdus.slice(0, limit);
    var H = top + step * pdus.length + 20;
    var svg = sv("svg", {"class": "ladder", viewBox: "0 0 " + W + " " + H, role: "img",
                         "aria-label": "ladder diagram of association " + a.id});
    var defs = sv("defs", {});
    var m = sv("marker", {id: "arrow-" + a.id, viewBox: "0 0 10 10", refX: "10", refY: "5",
                          markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse"});
    m.appendChild(sv("path", {d: "M0,0 L10,5 L0,10 z", fill: "#37474f"}));
    defs.appendChild(m);
    svg.appendChild(defs);
    svg.appendChild(sv("text", {x: L, y: 14, "text-anchor": "middle", "class": "title"}, (a.calling || "?") + " (requestor)"));
    svg.appendChild(sv("text", {x: L, y: 28, "text-anchor": "middle", "class": "tick"}, a.client));
    svg.appendChild(sv("text", {x: R, y: 14, "text-anchor": "middle", "class": "title"}, (a.called || "?") + " (acceptor)"));
    svg.appendChild(sv("text", {x: R, y: 28, "text-anchor": "middle", "class": "tick"}, a.server));
    svg.appendChild(sv("line", {"class": "life", x1: L, x2: L, y1: 34, y2: H - 6}));
    svg.appendChild(sv("line", {"class": "life", x1: R, x2: R, y1: 34, y2: H - 6}));
    pdus.forEach(function (p, i) {
      var y = top + i * step + 10;
      var fromX = p[1] === 0 ? L : R, toX = p[1] === 0 ? R : L;
      var g = sv("g", {"class": "pdu"});
      g.appendChild(sv("line", {"class": "msg t" + p[2], x1: fromX, x2: toX, y1: y, y2: y,
                                "marker-end": "url(#arrow-" + a.id + ")"}));
      g.appendChild(sv("text", {x: (L + R) / 2, y: y - 4, "text-anchor": "middle"}, S[p[3]]));
      g.appendChild(sv("text", {x: 4, y: y + 4, "class": "time"}, "+" + ms(p[0] - a.start)));
      g.appendChild(sv("title", {}, "frame " + p[4] + ", " + p[5] + " bytes, " + S[p[3]]));
      svg.appendChild(g);
    });
    return svg;
  }

  function ladderBlock(a) {
    var box = el("div", {"class": "ladder-box"});
    var n = a.pdus.length;
    box.appendChild(el("h3", null, "Ladder diagram (" + n + " PDU" + (n === 1 ? "" : "s") +
                       (a.pdus_more ? ", " + a.pdus_more + " more not drawn" : "") + ")"));
    if (!n) { box.appendChild(el("p", {"class": "note"}, "No PDU recorded.")); return box; }
    var holder = el("div");
    holder.appendChild(ladder(a, LADDER_FIRST));
    box.appendChild(holder);
    if (n > LADDER_FIRST) {
      var b = el("button", {type: "button"}, "Show all " + n + " PDUs");
      b.addEventListener("click", function () {
        holder.replaceChildren(ladder(a, n));
        b.remove();
      });
      box.appendChild(b);
    }
    return box;
  }

  // ---------------------------------------------------------------- matrix
  function matrix(a) {
    var m = a.matrix, box = el("div");
    box.appendChild(el("h3", null, "Presentation contexts: proposed transfer syntaxes and outcome"));
    if (!m.rows.length) { box.appendChild(el("p", {"class": "note"}, "Negotiation not captured.")); return box; }
    var head = el("tr", null, el("th", null, "ID"), el("th", null, "abstract syntax"), el("th", null, "result"));
    m.syntaxes.forEach(function (s, i) { head.appendChild(el("th", {title: m.uids[i]}, s)); });
    head.appendChild(el("th", null, "PDVs"));
    var tb = el("tbody");
    var sym = {a: "✓", o: "○", r: "✗", u: "?", "": ""};
    var tip = {a: "accepted", o: "proposed, not chosen", r: "rejected", u: "no answer", "": "not proposed"};
    m.rows.forEach(function (r) {
      var tr = el("tr", null, el("td", {"class": "num"}, r[0]), el("td", null, r[1]),
                  el("td", null, r[2] + (r[3] ? ": " + r[3] : "")));
      r[4].forEach(function (c) { tr.appendChild(el("td", {"class": "c " + c, title: tip[c] + (c === "r" && r[3] ? " (" + r[3] + ")" : "")}, sym[c])); });
      tr.appendChild(el("td", {"class": "num"}, r[5] || ""));
      tb.appendChild(tr);
    });
    box.appendChild(el("table", {"class": "matrix"}, el("thead", null, head), tb));
    if (a.roles && a.roles.length) {
      var rt = el("tbody");
      a.roles.forEach(function (r) {
        rt.appendChild(el("tr", null, el("td", null, r.sop_class_uid),
          el("td", null, roleText(r.proposed_scu, r.proposed_scp)),
          el("td", null, roleText(r.accepted_scu, r.accepted_scp))));
      });
      box.appendChild(el("h3", null, "SCP/SCU role selection"));
      box.appendChild(el("table", {"class": "plain"}, el("thead", null, el("tr", null,
        el("th", null, "SOP class"), el("th", null, "proposed"), el("th", null, "accepted"))), rt));
    }
    return box;
  }
  function roleText(scu, scp) {
    if (scu === null && scp === null) return "no reply";
    var r = [];
    if (scu) r.push("SCU");
    if (scp) r.push("SCP");
    return r.length ? r.join("+") : "neither";
  }

  // ------------------------------------------------------------ operations
  var COLS = [
    {n: "ID", f: F.mid, num: true},
    {n: "command", f: F.cmd, str: true},
    {n: "by", f: F.dir, fmt: function (v) { return v === 0 ? "requestor" : "acceptor"; }},
    {n: "SOP class", f: F.sop, str: true},
    {n: "status", f: F.status, num: true, fmt: function (v, r) { return (v === null ? "" : hex4(v) + " ") + S[r[F.stext]]; }},
    {n: "at", f: F.t, num: true, fmt: function (v) { return v === null ? "" : (v / 1000).toFixed(3) + " s"; }},
    {n: "latency", f: F.lat, num: true, lat: true},
    {n: "SCU send", f: F.send, num: true, fmt: ms},
    {n: "SCP processing", f: F.proc, num: true, fmt: ms},
    {n: "response", f: F.resp, num: true, fmt: ms},
    {n: "think", f: F.think, num: true, fmt: ms},
    {n: "bytes", f: F.bytes, num: true, fmt: bytes},
    {n: "frame", f: F.frame, num: true}
  ];

  function opsTable(a) {
    var box = el("div", {"class": "ops-box"});
    var all = [];
    for (var i = a.ops[0]; i < a.ops[1]; i++) all.push(D.ops[i]);
    box.appendChild(el("h3", null, "Operations (" + all.length + ")"));
    if (!all.length) { box.appendChild(el("p", {"class": "note"}, "No operation.")); return box; }
    var maxLat = 0;
    all.forEach(function (r) { if (r[F.lat] > maxLat) maxLat = r[F.lat]; });
    var state = {key: null, dir: 1, text: "", cls: "", shown: PAGE};
    var input = el("input", {type: "search", placeholder: "filter: command, SOP class, status, UID", "class": "ops-filter", size: "36"});
    var sel = el("select", {"class": "ops-class"}, el("option", {value: ""}, "all statuses"));
    ["success", "pending", "warning", "failure", "cancel", "unanswered"].forEach(function (c) {
      sel.appendChild(el("option", {value: c}, c));
    });
    var count = el("span", {"class": "muted"});
    box.appendChild(el("div", {"class": "tools"}, input, sel, count));
    var headRow = el("tr");
    var ths = COLS.map(function (c, k) {
      var th = el("th", {"data-col": String(k), title: "sort by " + c.n}, c.n);
      th.addEventListener("click", function () {
        if (state.key === k) state.dir = -state.dir; else { state.key = k; state.dir = 1; }
        ths.forEach(function (t) { t.classList.remove("asc", "desc"); });
        th.classList.add(state.dir > 0 ? "asc" : "desc");
        render();
      });
      headRow.appendChild(th);
      return th;
    });
    var tbody = el("tbody");
    var table = el("table", {"class": "ops"}, el("thead", null, headRow), tbody);
    box.appendChild(table);
    var more = el("button", {type: "button"}, "Show more");
    box.appendChild(more);
    more.addEventListener("click", function () { state.shown += PAGE; render(); });
    input.addEventListener("input", function () { state.text = input.value.toLowerCase(); state.shown = PAGE; render(); });
    sel.addEventListener("change", function () { state.cls = sel.value; state.shown = PAGE; render(); });

    function cellText(c, r) {
      var v = r[c.f];
      if (c.str) return S[v];
      if (c.fmt) return c.fmt(v, r);
      return v === null || v === undefined ? "" : String(v);
    }
    function latCell(r) {
      var td = el("td", {"class": "lat num"}, ms(r[F.lat]));
      if (r[F.lat] !== null && maxLat > 0) {
        var bar = el("div", {"class": "latbar", title: "SCU send " + ms(r[F.send]) + ", SCP processing " + ms(r[F.proc]) + ", response " + ms(r[F.resp])});
        var scale = 150 / maxLat;
        [[F.send, "s-send"], [F.proc, "s-proc"], [F.resp, "s-resp"]].forEach(function (p) {
          var v = r[p[0]];
          if (v > 0) bar.appendChild(el("span", {"class": p[1], style: "width:" + Math.max(v * scale, 0.5).toFixed(1) + "px"}));
        });
        td.appendChild(bar);
      }
      return td;
    }
    function matches(r) {
      if (state.cls && S[r[F.cls]] !== state.cls) return false;
      if (!state.text) return true;
      var hay = (S[r[F.cmd]] + " " + S[r[F.sop]] + " " + S[r[F.stext]] + " " + S[r[F.inst]] + " " +
                 (r[F.status] === null ? "" : hex4(r[F.status])) + " " + r[F.mid]).toLowerCase();
      return hay.indexOf(state.text) >= 0;
    }
    function render() {
      var rows = all.filter(matches);
      if (state.key !== null) {
        var c = COLS[state.key], d = state.dir;
        rows.sort(function (x, y) {
          var a = x[c.f], b = y[c.f];
          if (c.str) { a = S[a]; b = S[b]; }
          if (a === null || a === undefined) return (b === null || b === undefined) ? 0 : 1;
          if (b === null || b === undefined) return -1;
          return a < b ? -d : a > b ? d : 0;
        });
      }
      var frag = document.createDocumentFragment();
      rows.slice(0, state.shown).forEach(function (r) {
        var tr = el("tr", {"class": S[r[F.cls]], "data-op": String(r[F.mid])});
        COLS.forEach(function (c) {
          tr.appendChild(c.lat ? latCell(r) : el("td", c.num ? {"class": "num"} : null, cellText(c, r)));
        });
        frag.appendChild(tr);
      });
      tbody.replaceChildren(frag);
      count.textContent = Math.min(rows.length, state.shown) + " of " + rows.length + " shown" +
        (rows.length < all.length ? " (" + all.length + " in all)" : "");
      more.style.display = rows.length > state.shown ? "" : "none";
    }
    render();
    return box;
  }

  // ------------------------------------------------------- association sections
  function fill(details) {
    var body = details.querySelector(".body");
    if (body.getAttribute("data-done")) return;
    body.setAttribute("data-done", "1");
    var a = D.assocs[Number(details.getAttribute("data-id"))];
    if (a.reason) body.appendChild(el("p", null, el("strong", null, "Outcome: "), a.reason));
    body.appendChild(el("p", {"class": "muted"}, "Capture " + (a.capture || "") + "; " + bytes(a.bytes) +
                        (a.duration !== null ? " in " + ms(a.duration) : "")));
    if (a.findings.length) {
      var ul = el("ul");
      a.findings.forEach(function (i) {
        var li = document.getElementById("finding-" + i);
        if (li) ul.appendChild(el("li", null, el("a", {href: "#finding-" + i}, li.querySelector(".ftitle").textContent)));
      });
      body.appendChild(el("h3", null, "Findings"));
      body.appendChild(ul);
    }
    body.appendChild(ladderBlock(a));
    body.appendChild(matrix(a));
    body.appendChild(opsTable(a));
  }
  var sections = document.querySelectorAll("details.assoc");
  sections.forEach(function (d) {
    d.addEventListener("toggle", function () { if (d.open) fill(d); });
  });
  function openHash() {
    var m = /^#assoc-(\d+)$/.exec(location.hash);
    if (m) {
      var d = document.getElementById("assoc-" + m[1]);
      if (d) { d.open = true; fill(d); }
    }
  }
  window.addEventListener("hashchange", openHash);
  openHash();
  if (sections.length <= 6) sections.forEach(function (d) { d.open = true; fill(d); });
  document.documentElement.setAttribute("data-ready", "1");
})();
