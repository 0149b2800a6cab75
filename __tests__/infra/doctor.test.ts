import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  accessSync,
  constants,
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";

// Runs the real scripts/doctor.sh with PATH set to a temp dir of stand-in executables
// (shell scripts that only print a chosen version) plus symlinks to the real bash, node
// and the coreutils the script and scripts/lib.sh use. CACHE_DIR points at an empty temp
// dir, so the packer this checkout may have built does not answer for go.

const ROOT = path.resolve(__dirname, "../..");
/** Real programs the script needs besides the tools it checks. */
const REAL = ["bash", "node", "cat", "sha256sum", "cut", "dirname"];

/** Stand-in for one checked tool: a /bin/sh script that prints what the real tool would. */
type StandIn = { readonly name: string; readonly script: string };

function standIn(name: string, body: string): StandIn {
  return {
    name,
    script: `#!/bin/sh\n# test stand-in for ${name} (doctor.test.ts): prints a chosen version\n${body}\n`,
  };
}

const terraformStandIn = (version: string): StandIn =>
  standIn(
    "terraform",
    `[ "$2" = -json ] && { echo '{"terraform_version": "${version}", "platform": "linux_amd64"}'; exit 0; }\necho "Terraform v${version}"`,
  );
/** A Terraform without `version -json` (before 0.13): only the text form answers. */
const terraformTextOnlyStandIn = (version: string): StandIn =>
  standIn(
    "terraform",
    `[ "$2" = -json ] && { echo "flag provided but not defined: -json" >&2; exit 1; }\necho "Terraform v${version}"\necho "on linux_amd64"`,
  );
const awsStandIn = (version: string, sts = 'echo "unexpected call: aws $*" >&2; exit 3'): StandIn =>
  standIn(
    "aws",
    `[ "$1" = --version ] && { echo "aws-cli/${version} Python/3.12.6 Linux/6.8 exe/x86_64"; exit 0; }\n` +
      `[ "$1" = sts ] && { ${sts}; }\nexit 3`,
  );
const goStandIn = (version: string): StandIn =>
  standIn("go", `[ "$1 $2" = "env GOVERSION" ] && { echo "go${version}"; exit 0; }\nexit 3`);
const nodeStandIn = (version: string): StandIn => standIn("node", `echo "v${version}"`);
const ssmPluginStandIn = standIn("session-manager-plugin", 'echo "1.2.650.0"');
const jqStandIn = standIn("jq", 'echo "jq-1.7.1"');

const ALL_PRESENT: readonly StandIn[] = [
  terraformStandIn("1.11.4"),
  awsStandIn("2.17.0"),
  goStandIn("1.99.0"),
  ssmPluginStandIn,
  jqStandIn,
];

/** Absolute path of a real program on the test runner's PATH. */
function realBin(name: string): string {
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this dir
    }
  }
  throw new Error(`${name} is not on PATH; the doctor test needs it`);
}

type Run = { status: number | null; stdout: string; stderr: string; lines: string[] };

/** Runs scripts/doctor.sh with only the given stand-ins (+ the real programs) on PATH. */
function doctor(tools: readonly StandIn[], args: readonly string[] = ["--offline"], cacheDir?: string): Run {
  const dir = mkdtempSync(path.join(tmpdir(), "doctor-"));
  const bin = path.join(dir, "bin");
  mkdirSync(bin);
  for (const name of REAL) {
    if (!tools.some((t) => t.name === name)) symlinkSync(realBin(name), path.join(bin, name));
  }
  for (const tool of tools) {
    writeFileSync(path.join(bin, tool.name), tool.script);
    chmodSync(path.join(bin, tool.name), 0o755);
  }
  const run = spawnSync("bash", ["scripts/doctor.sh", ...args], {
    cwd: ROOT,
    encoding: "utf8",
    env: {
      PATH: bin,
      CACHE_DIR: cacheDir ?? path.join(dir, "cache"),
      AWS_SECRET_ACCESS_KEY: "stand-in-secret-never-printed",
    },
  });
  return { ...run, lines: run.stdout.split("\n").filter((l) => l !== "") };
}

/** The one output line of the check that mentions `subject` (fails the test unless exactly one). */
function lineFor(run: Run, subject: RegExp): string {
  const hits = run.lines.filter((l) => subject.test(l));
  expect(hits).toHaveLength(1);
  return hits[0];
}

/** The go version scripts/build-packer.sh needs, read from the files the doctor reads. */
function minGo(): string {
  const versions = [
    /MIN_GO=([0-9.]+)/.exec(readFileSync(path.join(ROOT, "scripts/build-packer.sh"), "utf8"))![1],
    ...["packer", "packer-plugin-amazon"].map(
      (m) =>
        /^go ([0-9.]+)$/m.exec(readFileSync(path.join(ROOT, `scripts/go-tools/${m}/go.mod`), "utf8"))![1],
    ),
  ];
  const parts = (v: string) => v.split(".").map(Number);
  return versions.reduce((a, b) => {
    const [x, y] = [parts(a), parts(b)];
    for (let i = 0; i < Math.max(x.length, y.length); i++) {
      if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) > (y[i] ?? 0) ? a : b;
    }
    return a;
  });
}

const without = (name: string) => ALL_PRESENT.filter((t) => t.name !== name);
const replacing = (tool: StandIn) => [...without(tool.name), tool];

describe("npm run doctor (scripts/doctor.sh)", () => {
  it("GIVEN every tool present WHEN run --offline THEN every check is ok, credentials are skipped as needing AWS, exit 0", () => {
    // WHEN
    const run = doctor(ALL_PRESENT);
    // THEN
    expect(run.stderr).toContain("all required checks passed");
    expect(run.status).toBe(0);
    expect(run.lines).toHaveLength(8);
    expect(run.lines.filter((l) => !l.startsWith("ok "))).toEqual([
      expect.stringMatching(/^skip +AWS credentials \(needs AWS\): skipped \(--offline\)/),
    ]);
    expect(lineFor(run, /terraform/)).toMatch(/^ok +terraform 1\.11\.4 \(>= 1\.10\)$/);
    expect(lineFor(run, /aws-cli/)).toMatch(/^ok +aws-cli 2\.17\.0 \(v2\)$/);
  });

  it.each([
    [
      "terraform",
      /^MISSING +terraform: not on PATH; fix: .*https:\/\/developer\.hashicorp\.com\/terraform\/install/,
    ],
    ["aws", /^MISSING +aws: not on PATH; fix: install AWS CLI v2, https:\/\/docs\.aws\.amazon\.com\/cli\//],
    [
      "session-manager-plugin",
      /^MISSING +session-manager-plugin: .*session_manager.*fix: https:\/\/docs\.aws\.amazon\.com\/systems-manager\/latest\/userguide\/session-manager-working-with-install-plugin\.html$/,
    ],
    [
      "go",
      /^MISSING +go: not on PATH and no packer built yet .*fix: install go >= [0-9.]+, https:\/\/go\.dev\/dl\//,
    ],
    ["jq", /^MISSING +jq: not on PATH; fix: apt-get install jq/],
  ])("GIVEN no %s on PATH WHEN run --offline THEN it is MISSING with its fix, exit 1", (name, line) => {
    // WHEN
    const run = doctor(without(name));
    // THEN
    expect(run.status).toBe(1);
    expect(run.lines.filter((l) => !/^(ok|skip) /.test(l))).toEqual([expect.stringMatching(line)]);
  });

  it.each([
    [
      "terraform 1.9.8 (version -json)",
      terraformStandIn("1.9.8"),
      /^TOO OLD +terraform 1\.9\.8, need >= 1\.10 .*use_lockfile.*; fix: https:\/\/developer\.hashicorp\.com\/terraform\/install$/,
    ],
    [
      "terraform 0.12.31 (text only, no -json)",
      terraformTextOnlyStandIn("0.12.31"),
      /^TOO OLD +terraform 0\.12\.31, need >= 1\.10 .*; fix: https:\/\/developer\.hashicorp\.com\/terraform\/install$/,
    ],
    [
      "AWS CLI v1",
      awsStandIn("1.45.11"),
      /^TOO OLD +aws: 'aws-cli\/1\.45\.11 .*', need AWS CLI v2 .*; fix: https:\/\/docs\.aws\.amazon\.com\/cli\//,
    ],
    [
      "go 1.20.14",
      goStandIn("1.20.14"),
      /^TOO OLD +go 1\.20\.14, need >= [0-9.]+ to build packer .*; fix: install go/,
    ],
    [
      "node 18.19.0",
      nodeStandIn("18.19.0"),
      /^TOO OLD +node 18\.19\.0, need >= 20 \(package.json engines\); fix: https:\/\/nodejs\.org\//,
    ],
  ])("GIVEN %s WHEN run --offline THEN it is TOO OLD with the fix, exit 1", (_what, tool, line) => {
    // WHEN
    const run = doctor(replacing(tool));
    // THEN
    expect(run.status).toBe(1);
    expect(run.lines.filter((l) => !/^(ok|skip) /.test(l))).toEqual([expect.stringMatching(line)]);
  });

  it.each([
    ["1.10.0", 0],
    ["1.10", 0],
    ["1.9.99", 1],
    ["2.0.0", 0],
  ])("GIVEN terraform %s WHEN compared with >= 1.10 THEN exit %d (numbers, not text)", (version, status) => {
    expect(doctor(replacing(terraformStandIn(version))).status).toBe(status);
  });

  it("GIVEN go exactly at build-packer.sh's minimum WHEN run THEN ok; one patch below THEN TOO OLD", () => {
    // GIVEN
    const min = minGo();
    const [major, minor, patch] = min.split(".").map(Number);
    const below = patch > 0 ? `${major}.${minor}.${patch - 1}` : `${major}.${minor - 1}.99`;
    // WHEN
    const atMin = doctor(replacing(goStandIn(min)));
    const belowMin = doctor(replacing(goStandIn(below)));
    // THEN
    expect(lineFor(atMin, / go \d/)).toBe(
      `ok       go ${min} (>= ${min}, builds packer: bash scripts/build-packer.sh)`,
    );
    expect(atMin.status).toBe(0);
    expect(lineFor(belowMin, / go \d/)).toMatch(new RegExp(`^TOO OLD +go ${below}, need >= ${min} `));
    expect(belowMin.status).toBe(1);
  });

  it.each([
    [
      "no go",
      without("go"),
      /^ok +packer 1\.16\.0 already built in \S*tools-[0-9a-f]{16}; no go >= [0-9.]+ here, .*: export PACKER=\S+\/tools-[0-9a-f]{16}\/packer PACKER_PLUGIN_PATH=\S+\/packer-plugins$/,
    ],
    [
      "go 1.99.0",
      ALL_PRESENT,
      /^ok +go 1\.99\.0 \(>= [0-9.]+\); packer 1\.16\.0 already built in \S*tools-[0-9a-f]{16}$/,
    ],
  ])(
    "GIVEN %s and the packer build-packer.sh caches WHEN run THEN the go/packer check is ok",
    (_what, tools, line) => {
      // GIVEN: the cache dir build-packer.sh would use (hash of the wrapper modules)
      const wrappers = [
        "packer/go.mod",
        "packer/go.sum",
        "packer-plugin-amazon/go.mod",
        "packer-plugin-amazon/go.sum",
      ];
      const hash = createHash("sha256");
      for (const w of wrappers) hash.update(readFileSync(path.join(ROOT, "scripts/go-tools", w)));
      const cache = mkdtempSync(path.join(tmpdir(), "doctor-cache-"));
      const built = path.join(cache, `tools-${hash.digest("hex").slice(0, 16)}`);
      mkdirSync(built);
      for (const t of [
        standIn("packer", 'echo "Packer v1.16.0"'),
        standIn("packer-plugin-amazon", "exit 0"),
      ]) {
        writeFileSync(path.join(built, t.name), t.script);
        chmodSync(path.join(built, t.name), 0o755);
      }
      // WHEN
      const run = doctor(tools, ["--offline"], cache);
      // THEN
      expect(lineFor(run, /packer \d/)).toMatch(line);
      expect(run.status).toBe(0);
    },
  );

  it.each([
    [
      "credentials",
      0,
      'printf "123456789012\\tarn:aws:sts::123456789012:assumed-role/dev/alice\\n"; exit 0',
      /^ok +AWS credentials \(needs AWS\): account 123456789012, arn:aws:sts::123456789012:assumed-role\/dev\/alice$/,
    ],
    [
      "no credentials",
      1,
      'echo "" >&2; echo "Unable to locate credentials. You can configure credentials by running \\"aws configure\\"." >&2; exit 253',
      /^MISSING +AWS credentials \(needs AWS\): aws sts get-caller-identity failed: Unable to locate credentials\..*; fix: set AWS_PROFILE=<profile> \(and aws sso login --profile <profile> for SSO\), or run aws configure$/,
    ],
  ])("GIVEN %s WHEN run without --offline THEN the STS line says so, exit %d", (_what, status, sts, line) => {
    // WHEN
    const run = doctor(replacing(awsStandIn("2.17.0", sts)), []);
    // THEN
    expect(lineFor(run, /AWS credentials/)).toMatch(line);
    expect(run.stdout + run.stderr).not.toContain("stand-in-secret-never-printed");
    expect(run.status).toBe(status);
  });

  it.each([["--bogus"], ["dev"], ["--offline=yes"]])(
    "GIVEN the unknown argument %s WHEN run THEN exit 2 with one line naming it and what is allowed",
    (arg) => {
      const run = doctor(ALL_PRESENT, [arg]);
      expect(run.status).toBe(2);
      expect(run.stdout).toBe("");
      expect(run.stderr).toBe(`error: unknown argument '${arg}'; allowed: --offline, --help\n`);
    },
  );

  it("GIVEN --help WHEN run THEN usage, no checks, exit 0", () => {
    const run = doctor([], ["--help"]);
    expect(run.status).toBe(0);
    expect(run.lines[0]).toMatch(/^usage: npm run doctor \[-- --offline\]/);
    expect(run.stdout).not.toMatch(/^(ok|MISSING|TOO OLD) /m);
  });

  it("GIVEN the stacks' required_version WHEN compared with the doctor's minimum THEN they are the same", () => {
    const stacks = /REQUIRED_TERRAFORM_VERSION = ">= ([0-9.]+)"/.exec(
      readFileSync(path.join(ROOT, "modules/contract.ts"), "utf8"),
    );
    const script = /^MIN_TERRAFORM=([0-9.]+)$/m.exec(
      readFileSync(path.join(ROOT, "scripts/doctor.sh"), "utf8"),
    );
    expect(stacks?.[1]).toBeDefined();
    expect(script?.[1]).toBe(stacks?.[1]);
  });
});
