/**
 * The leaf every module shares: its one error type reaches the user as one line, through
 * the real entry point.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { TerraformStack, Testing } from "cdktf";
import { PropError } from "../../modules/contract";
import { Network } from "../../modules/network";

const ROOT = path.join(__dirname, "../..");

describe("PropError", () => {
  it("GIVEN a construct refusing a prop WHEN thrown THEN one line names the construct path, field, value and what is allowed", () => {
    // GIVEN a /8, which the address plan cannot cut into subnets
    // WHEN
    const build = () =>
      new Network(new TerraformStack(Testing.app(), "stack"), "network", {
        resourcePrefix: "airflow-dev",
        region: "us-east-1",
        cidr: "10.0.0.0/8",
        azCount: 2,
        flowLogRetentionDays: 30,
      });
    // THEN
    expect(build).toThrow(PropError);
    expect(build).toThrow(
      /^stack\/network: cidr: got "10\.0\.0\.0\/8"; allowed: an IPv4 CIDR block from \/16 to \/24$/,
    );
  });

  it("GIVEN a construct refusing a prop inside main.ts WHEN the app runs THEN it prints that one line and exits 1, no stack trace", () => {
    // GIVEN the compiled app (npm run build) with the storage construct handed no subnets
    const preload = path.join(mkdtempSync(path.join(tmpdir(), "prop-error-")), "no-subnets.js");
    writeFileSync(
      preload,
      [
        `const storage = require(${JSON.stringify(path.join(ROOT, "dist/modules/storage"))});`,
        "const Real = storage.SharedStorage;",
        "storage.SharedStorage = class extends Real {",
        "  constructor(scope, id, props) { super(scope, id, { ...props, subnets: [] }); }",
        "};",
      ].join("\n"),
    );
    // WHEN
    const run = spawnSync("node", ["-r", preload, "dist/main.js"], {
      cwd: ROOT,
      env: { ...process.env, AIRFLOW_ENV: "dev", CDKTF_OUTDIR: mkdtempSync(path.join(tmpdir(), "out-")) },
      encoding: "utf8",
    });
    // THEN
    expect(run.status).toBe(1);
    const errors = run.stderr.split("\n").filter((l) => l && !l.startsWith("warning: "));
    expect(errors).toEqual(["airflow-dev/storage: subnets: got 0; allowed: 1 or more private subnets"]);
  });
});
