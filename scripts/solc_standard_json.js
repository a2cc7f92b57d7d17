// Runs the solc npm module (solcjs) on a standard-JSON input file and writes the output file.
// Used instead of the solcjs CLI, whose stdout is cut short when the output is large.
// Usage: node solc_standard_json.js INPUT.json OUTPUT.json BASE_DIR [INCLUDE_DIR ...]
"use strict";
const fs = require("fs");
const path = require("path");

const [inputPath, outputPath, ...searchDirs] = process.argv.slice(2);
const solc = require(require.resolve("solc", { paths: searchDirs }));

function findImports(importPath) {
  for (const dir of searchDirs) {
    const candidate = path.join(dir, importPath);
    if (fs.existsSync(candidate)) return { contents: fs.readFileSync(candidate, "utf8") };
  }
  return { error: `import not found: ${importPath}` };
}

const input = fs.readFileSync(inputPath, "utf8");
fs.writeFileSync(outputPath, solc.compile(input, { import: findImports }));
