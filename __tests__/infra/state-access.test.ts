import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { ConfigError } from "../../modules/config";
import {
  arnLike,
  envsSharingStateBucket,
  stateAccessDenial,
  stateAccessOf,
} from "../../modules/state-access";
import { config } from "./helpers";

const ACCOUNT = "arn:aws:iam::123456789012";

describe("arnLike (IAM's ArnLike)", () => {
  it.each([
    [`${ACCOUNT}:role/deployer`, `${ACCOUNT}:role/deployer`, true],
    [`${ACCOUNT}:role/deployer`, `${ACCOUNT}:role/deployer2`, false],
    // `*` crosses the role path's slashes, but not the ARN's colons.
    [
      `${ACCOUNT}:role/aws-reserved/*`,
      `${ACCOUNT}:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_1a2b`,
      true,
    ],
    ["arn:aws:iam::*:role/deployer", `${ACCOUNT}:role/deployer`, true],
    ["arn:aws:iam::*", `${ACCOUNT}:role/deployer`, false],
    [`${ACCOUNT}:role/ci-?`, `${ACCOUNT}:role/ci-1`, true],
    [`${ACCOUNT}:role/ci-?`, `${ACCOUNT}:role/ci-12`, false],
    // `.` and `+` are literal, not regular-expression syntax.
    [`${ACCOUNT}:role/a.b`, `${ACCOUNT}:role/axb`, false],
    [`${ACCOUNT}:user/deployer`, `${ACCOUNT}:role/deployer`, false],
  ])("%s against %s is %s", (pattern, arn, want) => {
    expect(arnLike(pattern, arn)).toBe(want);
  });
});

describe("stateAccessDenial", () => {
  const dev = config({ stateAccessPrincipalArns: [`${ACCOUNT}:role/dev-*`] });
  const prod = config({ env: "prod", stateAccessPrincipalArns: [`${ACCOUNT}:role/prod`] });

  it("GIVEN every env restricted WHEN another env's deployer deploys THEN it is told which list lacks it", () => {
    const access = stateAccessOf([dev, prod]);
    expect(stateAccessDenial(access, "dev", `${ACCOUNT}:role/dev-ci`)).toBeUndefined();
    expect(stateAccessDenial(access, "dev", `${ACCOUNT}:role/prod`)).toBe(
      "stateAccessPrincipalArns of config/dev.json",
    );
    expect(stateAccessDenial(access, "dev", `${ACCOUNT}:root`)).toBeUndefined();
  });

  it("GIVEN an unrestricted env beside a restricted one WHEN its deployer deploys THEN nothing locks it out", () => {
    const access = stateAccessOf([dev, config({ env: "prod" })]);
    expect(access.bucketPrincipals).toBeUndefined();
    expect(access.unrestricted).toEqual(["prod"]);
    expect(stateAccessDenial(access, "prod", `${ACCOUNT}:role/anyone`)).toBeUndefined();
  });
});

describe("envsSharingStateBucket", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "airflow-envs-"));
  writeFileSync(path.join(dir, "dev.json"), "{}");
  writeFileSync(
    path.join(dir, "prod.json"),
    JSON.stringify({ stateAccessPrincipalArns: [`${ACCOUNT}:role/p`] }),
  );
  writeFileSync(path.join(dir, "other.json"), JSON.stringify({ namePrefix: "other" }));
  writeFileSync(path.join(dir, "aws-prices.json"), JSON.stringify({ note: "a price table, not an env" }));

  it("GIVEN env files of two name prefixes WHEN dev is synthesized THEN the envs of its bucket shape the policy", () => {
    expect(envsSharingStateBucket(config(), dir).map((c) => c.env)).toEqual(["dev", "prod"]);
  });

  it("GIVEN a broken env file beside WHEN dev is synthesized THEN its one-line error stops the synth", () => {
    writeFileSync(path.join(dir, "stage.json"), JSON.stringify({ stateAccessPrincipalArns: "everyone" }));
    expect(() => envsSharingStateBucket(config(), dir)).toThrow(ConfigError);
    expect(() => envsSharingStateBucket(config(), dir)).toThrow(
      /stage\.json: stateAccessPrincipalArns: got "everyone"/,
    );
  });
});
