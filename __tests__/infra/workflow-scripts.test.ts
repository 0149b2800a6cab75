/**
 * `npm run deploy|ui|destroy` up to the point where they would change AWS: bad input is
 * one clear line, and the account and protection checks run against a moto server
 * (real STS and EC2 APIs; moto stands in for the account).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";

const ROOT = path.join(__dirname, "../..");
const MOTO_PORT = 56100;
const venvBin = path.join(
  spawnSync("bash", ["-c", 'source scripts/lib.sh && echo "$VENV_DIR"'], {
    cwd: ROOT,
    encoding: "utf8",
  }).stdout.trim(),
  "bin",
);
// Only what the scripts need: node/npx and terraform from wherever this machine has them,
// the test venv's AWS CLI, the system's jq and coreutils. No session-manager-plugin, and
// no credentials from the machine.
const tools = mkdtempSync(path.join(tmpdir(), "airflow-tools-"));
for (const tool of ["node", "npx", "terraform"]) {
  const found = spawnSync("bash", ["-c", `command -v ${tool}`], { encoding: "utf8" }).stdout.trim();
  if (!found) throw new Error(`${tool} is not installed (npm run doctor says how to get it)`);
  symlinkSync(found, path.join(tools, tool));
}
const PATH = `${tools}:${venvBin}:/usr/bin:/bin`;
const awsEnv = {
  PATH,
  AWS_ACCESS_KEY_ID: "testing",
  AWS_SECRET_ACCESS_KEY: "testing",
  AWS_DEFAULT_REGION: "us-east-1",
  AWS_CONFIG_FILE: "/dev/null",
  AWS_SHARED_CREDENTIALS_FILE: "/dev/null",
  AWS_MAX_ATTEMPTS: "1",
  AWS_ENDPOINT_URL: `http://127.0.0.1:${MOTO_PORT}`,
};

function script(name: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const base = { ...process.env };
  for (const k of ["AWS_PROFILE", "AIRFLOW_ENV", "AIRFLOW_ACCOUNT_ID"]) delete base[k];
  const r = spawnSync("bash", [`scripts/${name}.sh`, ...args], {
    cwd: ROOT,
    env: { ...base, ...awsEnv, ...env },
    encoding: "utf8",
  });
  const errors = r.stderr.split("\n").filter((l) => l.startsWith("error:") || /^[A-Z_]+: got/.test(l));
  return { status: r.status, errors };
}

let moto: ChildProcess;
beforeAll(async () => {
  moto = spawn(path.join(venvBin, "moto_server"), ["-H", "127.0.0.1", "-p", String(MOTO_PORT)], {
    stdio: "ignore",
  });
  for (let i = 0; i < 100; i++) {
    const up = spawnSync("curl", ["-fsS", "-o", "/dev/null", `http://127.0.0.1:${MOTO_PORT}/moto-api/`]);
    if (up.status === 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("moto server did not start");
}, 30_000);
afterAll(() => moto?.kill());

describe("workflow scripts refuse bad input with one line", () => {
  it.each([
    [
      "deploy",
      ["dev", "--force"],
      "error: unknown option '--force'; allowed: --auto-approve (usage: npm run deploy -- <env> [--auto-approve])",
    ],
    ["deploy", [], "error: usage: npm run deploy -- <env> [--auto-approve]"],
    [
      "destroy",
      ["dev", "prod"],
      "error: one env only, got 'dev' and 'prod' (usage: npm run destroy -- <env> [--auto-approve])",
    ],
    ["ui", ["dev", "prod"], "error: usage: npm run ui -- <env>"],
    ["destroy", ["Dev!"], "error: env: got 'Dev!'; allowed: the name of a config/<env>.json file, e.g. dev"],
    ["ui", ["nope"], 'AIRFLOW_ENV: got "nope"; no config/nope.json; allowed: dev, prod'],
  ])("%s %j", (name, args, line) => {
    const r = script(name, args);
    expect(r.status).not.toBe(0);
    expect(r.errors).toEqual([line]);
  });
});

describe("workflow scripts against an account (moto)", () => {
  it("GIVEN no reachable credentials WHEN deploying THEN it says how to get them", () => {
    const r = script("deploy", ["dev"], { AWS_ENDPOINT_URL: "http://127.0.0.1:9" });
    expect(r.errors).toEqual([
      "error: no AWS credentials: set AWS_PROFILE (aws sso login --profile ...) or run aws configure",
    ]);
  });

  it("GIVEN a config pinned to another account WHEN deploying THEN nothing deploys into the wrong account", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "airflow-config-"));
    writeFileSync(path.join(dir, "dev.json"), JSON.stringify({ accountId: "999999999999" }));
    const r = script("deploy", ["dev"], { AIRFLOW_CONFIG_DIR: dir });
    expect(r.errors).toEqual([
      "error: config/dev.json accountId is 999999999999, but the credentials are for account 123456789012",
    ]);
  });

  it("GIVEN a deployer outside the env's stateAccessPrincipalArns WHEN deploying THEN it stops before the bucket policy locks it out", () => {
    const aws = (...args: string[]) =>
      JSON.parse(spawnSync("aws", [...args, "--output", "json"], { env: awsEnv, encoding: "utf8" }).stdout);
    // A role with a path: the assumed-role session ARN drops it, the bucket policy sees it.
    aws(
      "iam",
      "create-role",
      "--role-name",
      "deployer",
      "--path",
      "/ci/",
      "--assume-role-policy-document",
      "{}",
    );
    const creds = aws(
      "sts",
      "assume-role",
      "--role-arn",
      "arn:aws:iam::123456789012:role/ci/deployer",
      "--role-session-name",
      "alice",
    ).Credentials;
    const dir = mkdtempSync(path.join(tmpdir(), "airflow-config-"));
    writeFileSync(
      path.join(dir, "dev.json"),
      JSON.stringify({ stateAccessPrincipalArns: ["arn:aws:iam::123456789012:role/deployer"] }),
    );
    const r = script("deploy", ["dev"], {
      AIRFLOW_CONFIG_DIR: dir,
      AWS_ACCESS_KEY_ID: creds.AccessKeyId,
      AWS_SECRET_ACCESS_KEY: creds.SecretAccessKey,
      AWS_SESSION_TOKEN: creds.SessionToken,
    });
    expect(r.errors).toEqual([
      "error: the caller arn:aws:iam::123456789012:role/ci/deployer is not in the stateAccessPrincipalArns of config/dev.json, so the state bucket policy would deny it this env's state: add it (wildcards allowed) or deploy as a listed principal",
    ]);
  });

  it("GIVEN an env that keeps a final snapshot WHEN destroyed THEN its cluster key outlives the stack, disabled", () => {
    const aws = (...args: string[]) =>
      JSON.parse(
        spawnSync("aws", [...args, "--output", "json"], { env: awsEnv, encoding: "utf8" }).stdout || "{}",
      );
    const key = aws("kms", "create-key").KeyMetadata.KeyId;
    aws("kms", "create-alias", "--alias-name", "alias/airflow-stage", "--target-key-id", key);
    // Terraform stands in as what `cdktf destroy` does to the key: schedule its deletion.
    const fake = mkdtempSync(path.join(tmpdir(), "airflow-fake-npx-"));
    const npx = path.join(fake, "npx");
    writeFileSync(
      npx,
      `#!/bin/bash\nif [ "$1 $2" = "cdktf destroy" ]; then aws kms schedule-key-deletion --key-id ${key} --pending-window-in-days 7 >/dev/null; exit; fi\nexec ${path.join(tools, "npx")} "$@"\n`,
      { mode: 0o755 },
    );
    const dir = mkdtempSync(path.join(tmpdir(), "airflow-config-"));
    // Outside dev with deletion protection off: destroyable, and finalSnapshot stays true.
    writeFileSync(path.join(dir, "stage.json"), JSON.stringify({ deletionProtection: false }));
    const r = script("destroy", ["stage", "--auto-approve"], {
      AIRFLOW_CONFIG_DIR: dir,
      PATH: `${fake}:${PATH}`,
    });
    expect(r.status).toBe(0);
    expect(aws("kms", "describe-key", "--key-id", key).KeyMetadata.KeyState).toBe("Disabled");
  });

  it("GIVEN prod (deletion protection) WHEN destroying THEN it refuses before touching anything and says how", () => {
    const r = script("destroy", ["prod"]);
    expect(r.status).toBe(1);
    expect(r.errors).toEqual([
      expect.stringMatching(
        /^error: prod has deletionProtection: true, .*set "deletionProtection": false in config\/prod\.json and run npm run deploy -- prod first/,
      ),
    ]);
  });

  it("GIVEN the default UI access (port forward) WHEN the Session Manager plugin is missing THEN it names the plugin and where to get it", () => {
    const r = script("ui", ["dev"]);
    expect(r.errors).toEqual([
      expect.stringMatching(
        /^error: session-manager-plugin is not installed: the Session Manager plugin, https:\/\/docs\.aws\.amazon\.com\/.*\(npm run doctor checks every prerequisite\)$/,
      ),
    ]);
  });
});
