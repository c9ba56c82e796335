// The page: read the fields, ask the server (POST /api/derive, /api/check, /api/download), show the answer.
// User text and server text go into the page only through textContent; the only HTML made from a
// string is KaTeX's rendering of LaTeX that derive produced. katex.render() builds DOM nodes and
// sets their sizes through element.style, which the page's Content-Security-Policy allows.

const DEBOUNCE_MS = 400;
const $ = (id) => document.getElementById(id);

const state = {
  timer: 0,
  controller: null, // AbortController of the derivation in flight
  seq: 0, // number of the latest derivation asked for; older answers are dropped
  request: null, // the request behind the result shown
  result: null, // the result shown
  stepsFor: null, // the result whose steps are rendered
};

// ----- talking to the server -----

async function post(path, body, signal) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    signal,
  });
  return response;
}

async function errorOf(response) {
  try {
    const data = await response.json();
    if (data && typeof data.error === "string") return data.error;
  } catch (_) {
    // not JSON: fall through
  }
  return `the server answered HTTP ${response.status}`;
}

function fields() {
  return {
    expr: $("expr").value,
    wrt: $("wrt").value,
    shapes: $("shapes").value,
    symmetric: $("symmetric").value,
    diagonal: $("diagonal").value,
    layout: $("layout").value || null,
  };
}

// ----- math -----

function tex(element, latex, display) {
  element.replaceChildren();
  try {
    katex.render(latex, element, { displayMode: display, throwOnError: true });
  } catch (_) {
    const code = document.createElement("code");
    code.className = "tex-fallback";
    code.textContent = latex;
    element.replaceChildren(code);
  }
}

// A sentence with $inline math$: text parts as text, math parts through KaTeX.
function sentence(element, text) {
  const parts = text.split(/\$([^$]+)\$/);
  parts.forEach((part, i) => {
    if (i % 2 === 0) {
      if (part) element.append(document.createTextNode(part));
    } else {
      const span = document.createElement("span");
      span.className = "math inline";
      tex(span, part, false);
      element.append(span);
    }
  });
}

// ----- the derivation -----

function setError(message) {
  const error = $("error");
  error.textContent = message || "";
  error.hidden = !message;
  $("answer").classList.toggle("stale", Boolean(message));
}

function setBusy(busy, text) {
  $("result").setAttribute("aria-busy", String(busy));
  $("status").textContent = text;
  $("status").hidden = !text;
}

function schedule() {
  clearTimeout(state.timer);
  state.timer = setTimeout(derive, DEBOUNCE_MS);
}

async function derive() {
  clearTimeout(state.timer);
  const request = fields();
  if (state.controller) state.controller.abort();
  if (!request.expr.trim() || !request.wrt.trim()) {
    state.controller = null;
    setError("");
    setBusy(false, "Type an expression and the variable to differentiate by.");
    return;
  }
  const controller = new AbortController();
  const seq = ++state.seq;
  state.controller = controller;
  setBusy(true, "Deriving and proving…");
  try {
    const response = await post("/api/derive", request, controller.signal);
    if (seq !== state.seq) return;
    if (!response.ok) {
      setError(await errorOf(response));
      setBusy(false, state.result ? "The result below is for the last expression that worked." : "");
      return;
    }
    const result = await response.json();
    if (seq !== state.seq) return;
    setError("");
    show(request, result);
    setBusy(false, "");
  } catch (e) {
    if (e.name === "AbortError") return;
    if (seq === state.seq) {
      setError(`no answer from the server (${e.message})`);
      setBusy(false, "");
    }
  }
}

function shapeText(sizes) {
  return Object.entries(sizes)
    .map(([name, dims]) => `${name} ${dims.length ? dims.join("×") : "scalar"}`)
    .join(", ");
}

function badge(element, ok, yes, no) {
  mark(element, ok ? "ok" : "bad", ok ? yes : no);
}

function mark(element, kind, text) {
  element.textContent = text;
  element.className = `badge ${kind}`;
}

// 90 -> "⁻⁹⁰": the exponent of a probabilistic proof's error bound, 2^-bits.
function minusPower(bits) {
  const digits = "⁰¹²³⁴⁵⁶⁷⁸⁹";
  return `⁻${String(bits).replace(/[0-9]/g, (c) => digits[Number(c)])}`;
}

// The proof's badge: [kind, text]. Only an exact proof says "exactly"; a probabilistic one states its bound.
function proofBadge(proof) {
  if (proof.status === "proven") {
    if (proof.exact) return ["ok", "✓ proven exactly"];
    if (proof.bits !== null) return ["ok", `✓ proven with probability ≥ 1 − 2${minusPower(proof.bits)}`];
    return ["ok", "✓ proven with high probability"];
  }
  if (proof.status === "refuted") return ["bad", "✗ refuted"];
  if (proof.status === "no matrix form") return ["none", "no matrix form"];
  return ["warn", `⚠ ${proof.status}`]; // "not finished", "unproven"
}

function list(element, items, prefix) {
  element.replaceChildren();
  for (const text of items) {
    const item = document.createElement("li");
    item.textContent = prefix + text;
    element.append(item);
  }
  element.hidden = items.length === 0;
}

function show(request, result) {
  state.request = request;
  state.result = result;
  $("answer").hidden = false;
  $("what").textContent = `The ${result.kind_name} of ${result.expr} by ${result.wrt.join(" and ")}`;
  if (result.latex !== null) {
    tex($("form"), result.latex, true);
  } else {
    $("form").textContent = result.text;
  }
  $("form-text").textContent = result.text;
  $("latex-source").textContent = result.latex ?? "";
  $("convention").textContent = result.convention;
  list($("notes"), result.notes, "Note: ");
  list($("conventions"), result.conventions, "");
  const proof = result.proof;
  mark($("proof-badge"), ...proofBadge(proof));
  const unproven = proof.status === "not finished" || proof.status === "unproven";
  const caveat = unproven ? "The matrix form above comes from the rules but is not proven: " : "";
  $("proof-text").textContent =
    `${caveat}${proof.method} (${proof.entries} entries at the small sizes ${shapeText(proof.sizes)}, ` +
    `${proof.seconds.toFixed(2)} s)`;
  const numeric = result.numeric;
  if (numeric === null) {
    badge($("numeric-badge"), false, "", "not run");
    $("numeric-text").textContent = "there is no generated code to check";
  } else {
    badge($("numeric-badge"), numeric.ok, "✓ agrees", numeric.ran ? "✗ differs" : "not run");
    $("numeric-text").textContent = numeric.text;
  }
  for (const button of document.querySelectorAll("#answer .actions button")) {
    button.disabled = result.latex === null;
  }
  $("action-status").textContent = "";
  state.stepsFor = null;
  if ($("steps").open) renderSteps();
}

function renderSteps() {
  const result = state.result;
  if (!result || state.stepsFor === result) return;
  const body = $("steps-body");
  body.replaceChildren();
  for (const section of result.steps) {
    const part = document.createElement("section");
    const title = document.createElement("h3");
    title.textContent = section.title;
    part.append(title);
    for (const block of section.blocks) {
      for (const line of block.lines) {
        if (block.math) {
          const div = document.createElement("div");
          div.className = "math display";
          tex(div, line, true);
          part.append(div);
        } else {
          const p = document.createElement("p");
          sentence(p, line);
          part.append(p);
        }
      }
    }
    body.append(part);
  }
  state.stepsFor = result;
}

// ----- downloads and copying -----

function say(text) {
  $("action-status").textContent = text;
}

async function download(format) {
  if (!state.request) return;
  say(`Preparing the .${format}…`);
  try {
    const response = await post("/api/download", { ...state.request, format });
    if (!response.ok) {
      say(await errorOf(response));
      return;
    }
    const disposition = response.headers.get("content-disposition") || "";
    const match = /filename="([A-Za-z0-9_.]+)"/.exec(disposition);
    const name = match ? match[1] : `${state.result.name}.${format}`;
    const url = URL.createObjectURL(await response.blob());
    const link = document.createElement("a");
    link.href = url;
    link.download = name;
    link.hidden = true;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    say(`Downloaded ${name}`);
  } catch (e) {
    say(`The download failed (${e.message})`);
  }
}

async function copyLatex() {
  const latex = state.result && state.result.latex;
  if (!latex) return;
  try {
    await navigator.clipboard.writeText(latex);
    say("Copied the LaTeX");
  } catch (_) {
    const area = document.createElement("textarea");
    area.value = latex;
    area.className = "offscreen";
    document.body.append(area);
    area.select();
    const copied = document.execCommand("copy");
    area.remove();
    say(copied ? "Copied the LaTeX" : "Copying is blocked here: select the text under LaTeX of the result");
  }
}

// ----- check my answer -----

async function checkClaim() {
  const claim = $("claim").value;
  if (!claim.trim()) return;
  const verdict = $("verdict");
  verdict.hidden = false;
  $("verdict-mark").textContent = "…";
  $("verdict-mark").className = "mark";
  $("verdict-text").textContent = "Checking…";
  $("mistake").hidden = true;
  $("counterexample").hidden = true;
  try {
    const response = await post("/api/check", { ...fields(), claim });
    if (!response.ok) {
      $("verdict-mark").textContent = "!";
      $("verdict-mark").className = "mark error";
      $("verdict-text").textContent = await errorOf(response);
      return;
    }
    const result = await response.json();
    $("verdict-mark").textContent = result.ok ? "✓" : "✗";
    $("verdict-mark").className = `mark ${result.ok ? "ok" : "bad"}`;
    // The mistake gets its own line below; the message is the line the command prints.
    const suffix = result.mistake ? `; it looks like ${result.mistake}` : "";
    const trimmed = suffix && result.message.endsWith(suffix);
    $("verdict-text").textContent = trimmed ? result.message.slice(0, -suffix.length) : result.message;
    if (result.mistake) {
      $("mistake").hidden = false;
      $("mistake").textContent = `It looks like ${result.mistake}.`;
    }
    const cx = result.counterexample;
    if (cx) {
      $("counterexample").hidden = false;
      $("cx-entry").textContent = cx.entry.length ? `(${cx.entry.join(", ")}) at ${sizesText(result.sizes)}` : "the value";
      $("cx-claimed").textContent = cx.claimed;
      $("cx-correct").textContent = cx.correct;
    }
  } catch (e) {
    $("verdict-mark").textContent = "!";
    $("verdict-mark").className = "mark error";
    $("verdict-text").textContent = `no answer from the server (${e.message})`;
  }
}

function sizesText(sizes) {
  const parts = Object.entries(sizes).map(([k, v]) => `${k}=${v}`);
  return parts.length ? parts.join(", ") : "the given sizes";
}

// ----- examples and start-up -----

function useExample(example) {
  $("expr").value = example.expr;
  $("wrt").value = example.wrt;
  $("shapes").value = example.shapes;
  $("layout").value = "";
  $("symmetric").value = example.symmetric;
  $("diagonal").value = example.diagonal;
  if (example.shapes || example.symmetric || example.diagonal) $("options").open = true;
  $("claim").value = "";
  $("verdict").hidden = true;
  derive();
}

function showExamples(examples) {
  const list = $("examples");
  list.replaceChildren();
  for (const example of examples) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "example";
    button.textContent = example.label;
    button.title = `${example.expr}  by ${example.wrt}`;
    button.addEventListener("click", () => useExample(example));
    item.append(button);
    list.append(item);
  }
}

async function start() {
  $("ask").addEventListener("submit", (e) => {
    e.preventDefault();
    derive();
  });
  for (const id of ["expr", "wrt", "shapes", "symmetric", "diagonal"]) {
    $(id).addEventListener("input", schedule);
  }
  $("layout").addEventListener("change", derive);
  $("check-form").addEventListener("submit", (e) => {
    e.preventDefault();
    checkClaim();
  });
  $("steps").addEventListener("toggle", () => {
    if ($("steps").open) renderSteps();
  });
  for (const button of document.querySelectorAll("button.download")) {
    button.addEventListener("click", () => download(button.dataset.format));
  }
  $("copy").addEventListener("click", copyLatex);
  try {
    const response = await fetch("/api/info");
    const info = await response.json();
    $("version").textContent = info.version;
    $("katex-version").textContent = info.katex;
    showExamples(info.examples);
  } catch (e) {
    setError(`cannot reach the server (${e.message})`);
  }
  document.body.dataset.ready = "true";
  if ($("expr").value && $("wrt").value) derive();
}

start();
