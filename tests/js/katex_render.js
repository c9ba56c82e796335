// Renders every piece of LaTeX read from stdin with KaTeX, strictly, as the web page and a
// Markdown renderer would: a JSON list of [display, tex, where]. Prints a JSON object with the
// number rendered and the failures. Usage: node katex_render.js path/to/katex.min.js < pieces.json
"use strict";
const katex = require(process.argv[2]);
const pieces = JSON.parse(require("fs").readFileSync(0, "utf8"));
const bad = [];
for (const [display, tex, where] of pieces) {
  try {
    katex.renderToString(tex, { displayMode: display, throwOnError: true, strict: "error" });
  } catch (e) {
    bad.push(`${where}: ${e.message} in ${tex.slice(0, 120)}`);
  }
}
console.log(JSON.stringify({ version: katex.version, rendered: pieces.length - bad.length, bad }));
