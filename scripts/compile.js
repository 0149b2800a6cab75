#!/usr/bin/env node
/**
 * Transpile-only build of the app, for `npm run synth` and cdktf.json's app: main.ts and
 * every file it imports (relative .ts and .json), one file at a time with TypeScript's
 * transpileModule, into dist/ with the layout `tsc -p tsconfig.json` gives. tsconfig sets
 * isolatedModules, which is what makes a file-by-file emit equal to tsc's; type-checking
 * is the lint stage's job (`tsc --noEmit`), and `npm run build` and the deploy scripts
 * still run full tsc.
 *
 * A warm run with no source change stats and hashes about 25 files and never loads
 * TypeScript; a change re-emits only the files whose content changed. The record of what
 * was emitted (source hash -> output) lives in dist/.compile.json (gitignored with dist/).
 *
 *   node scripts/compile.js      -> build if needed; prints nothing when up to date
 *   require("./compile").compile() -> { emitted: [files], loadedTypeScript: boolean }
 */
"use strict";
const crypto = require("node:crypto");
const fs = require("node:fs");
const path = require("node:path");

const ROOT = path.resolve(__dirname, "..");
const ENTRY = "main.ts";
const OUT_DIR = "dist";
const RECORD = path.join(OUT_DIR, ".compile.json");

const sha = (text) => crypto.createHash("sha256").update(text).digest("hex").slice(0, 16);

/**
 * Write by rename, so a concurrent `node dist/main.js` (parallel jest workers, a second
 * synth) reads the old file or the new one, never half of one.
 */
function writeAtomic(file, text) {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

/** Where tsc (rootDir ".", outDir "dist") puts the output of one source file. */
function outputOf(rel) {
  return path.join(OUT_DIR, rel.endsWith(".ts") ? rel.replace(/\.ts$/, ".js") : rel);
}

/** Everything the emit depends on besides the sources themselves. */
function buildKey(root) {
  const tsVersion = JSON.parse(
    fs.readFileSync(path.join(root, "node_modules/typescript/package.json"), "utf8"),
  ).version;
  return sha(
    fs.readFileSync(path.join(root, "tsconfig.json"), "utf8") +
      tsVersion +
      fs.readFileSync(path.join(root, "scripts/compile.js")),
  );
}

/** The recorded build is current: same key, every source unchanged, every output present. */
function upToDate(root, record, key) {
  if (!record || record.key !== key) return false;
  for (const [rel, hash] of Object.entries(record.sources)) {
    let text;
    try {
      text = fs.readFileSync(path.join(root, rel));
    } catch {
      return false;
    }
    if (sha(text) !== hash || !fs.existsSync(path.join(root, outputOf(rel)))) return false;
  }
  return true;
}

/** Compiler options from tsconfig.json, as tsc reads them. */
function compilerOptions(ts, root) {
  const file = path.join(root, "tsconfig.json");
  const read = ts.readConfigFile(file, ts.sys.readFile);
  if (read.error) throw new Error(ts.flattenDiagnosticMessageText(read.error.messageText, "\n"));
  const { options, errors } = ts.convertCompilerOptionsFromJson(read.config.compilerOptions, root);
  if (errors.length) throw new Error(ts.flattenDiagnosticMessageText(errors[0].messageText, "\n"));
  return options;
}

/** The relative imports of one source file, resolved to repo-relative paths. */
function localImports(ts, rel, text, root) {
  const found = [];
  for (const { fileName } of ts.preProcessFile(text, true, false).importedFiles) {
    if (!fileName.startsWith(".")) continue;
    const base = path.join(path.dirname(rel), fileName);
    const hit = [base, `${base}.ts`, path.join(base, "index.ts")].find(
      (c) => /\.(ts|json)$/.test(c) && fs.existsSync(path.join(root, c)),
    );
    if (!hit) throw new Error(`${rel}: cannot resolve import "${fileName}"`);
    found.push(hit);
  }
  return found;
}

/**
 * Builds dist/ from main.ts's import graph when anything changed.
 * @param {string} [root] repository root (default: this script's repository)
 * @returns {{emitted: string[], loadedTypeScript: boolean}}
 */
function compile(root = ROOT) {
  const key = buildKey(root);
  let record = null;
  try {
    record = JSON.parse(fs.readFileSync(path.join(root, RECORD), "utf8"));
  } catch {
    // no record yet: full build
  }
  if (upToDate(root, record, key)) return { emitted: [], loadedTypeScript: false };

  const ts = require(path.join(root, "node_modules/typescript"));
  const options = compilerOptions(ts, root);
  const previous = record && record.key === key ? record.sources : {};
  const sources = {};
  const emitted = [];
  const queue = [ENTRY];
  while (queue.length) {
    const rel = queue.pop();
    if (rel in sources) continue;
    const text = fs.readFileSync(path.join(root, rel), "utf8");
    sources[rel] = sha(text);
    const out = path.join(root, outputOf(rel));
    if (rel.endsWith(".ts")) queue.push(...localImports(ts, rel, text, root));
    if (previous[rel] === sources[rel] && fs.existsSync(out)) continue;
    fs.mkdirSync(path.dirname(out), { recursive: true });
    if (rel.endsWith(".json")) {
      // resolveJsonModule: tsc copies an imported JSON file to the same place under dist/
      writeAtomic(out, text);
    } else {
      const result = ts.transpileModule(text, {
        compilerOptions: options,
        fileName: path.join(root, rel),
        reportDiagnostics: true,
      });
      if (result.diagnostics && result.diagnostics.length) {
        const d = result.diagnostics[0];
        const line = d.file ? d.file.getLineAndCharacterOfPosition(d.start).line + 1 : "?";
        throw new Error(`${rel}:${line}: ${ts.flattenDiagnosticMessageText(d.messageText, " ")}`);
      }
      writeAtomic(out, result.outputText);
      if (result.sourceMapText) {
        // transpileModule names the source by its base name; tsc names it relative to the map
        const map = JSON.parse(result.sourceMapText);
        map.sources = [path.relative(path.dirname(out), path.join(root, rel)).split(path.sep).join("/")];
        writeAtomic(`${out}.map`, JSON.stringify(map));
      }
    }
    emitted.push(rel);
  }
  writeAtomic(path.join(root, RECORD), JSON.stringify({ key, sources }, null, 1));
  return { emitted, loadedTypeScript: true };
}

if (require.main === module) {
  try {
    const { emitted } = compile();
    if (emitted.length)
      process.stderr.write(`compile: ${emitted.length} file(s) transpiled to ${OUT_DIR}/\n`);
  } catch (e) {
    process.stderr.write(`compile: ${e.message}\n`);
    process.exit(1);
  }
}

module.exports = { compile };
