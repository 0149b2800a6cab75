import { configWarnings } from "../../modules/warnings";
import { config } from "./helpers";

describe("config warnings", () => {
  const quiet = {
    accountId: "123456789012",
    notificationEmail: "team@example.com",
    uiAllowedCidrs: ["203.0.113.0/24"],
    certificateArn: "arn:aws:acm:us-east-1:123456789012:certificate/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b",
    stateAccessPrincipalArns: ["arn:aws:iam::123456789012:role/deployer"],
  };

  it("GIVEN a config with nothing surprising WHEN checked THEN there is no warning", () => {
    expect(configWarnings(config(quiet), "config/dev.json")).toEqual([]);
  });

  // GIVEN one surprising choice WHEN checked THEN exactly one line names the field and the fix
  it.each([
    [
      "no uiAllowedCidrs",
      { uiAllowedCidrs: [] },
      /^config\/dev\.json: uiAllowedCidrs is empty, .*`npm run ui -- dev`/,
    ],
    [
      "a UI open to CIDRs over plain HTTP (dev only: refused elsewhere)",
      { certificateArn: undefined },
      /^config\/dev\.json: uiAllowedCidrs is set without certificateArn, so the UI login travels over plain HTTP/,
    ],
    [
      "no notificationEmail",
      { notificationEmail: undefined },
      /^config\/dev\.json: notificationEmail is not set, so DAG_1 mails no outcome/,
    ],
    [
      "no account id",
      { accountId: undefined },
      /^config\/dev\.json: accountId is not set, so the state bucket is named "airflow-tfstate-us-east-1-[0-9a-f]{10}", which any AWS account could own/,
    ],
    [
      "an unpinned AMI outside dev",
      { env: "stage" },
      /^config\/dev\.json: ami is not pinned, .*set ami\.gitRevision \(or ami\.id\)/,
    ],
    [
      "One Zone EFS outside dev",
      { env: "stage", ami: { gitRevision: "c8e1283" }, efs: { oneZone: true } },
      /^config\/dev\.json: efs\.oneZone is true, so every node runs in the file system's one AZ/,
    ],
    [
      "unrestricted state outside dev",
      { env: "stage", ami: { gitRevision: "c8e1283" }, stateAccessPrincipalArns: undefined },
      /^config\/dev\.json: stateAccessPrincipalArns is not set, so any principal of the account .* can read this env's Terraform state/,
    ],
  ])("%s", (_name, change, line) => {
    const warnings = configWarnings(config({ ...quiet, ...change }), "config/dev.json");
    expect(warnings).toEqual([expect.stringMatching(line)]);
  });

  it.each([{ ami: { gitRevision: "c8e1283" } }, { ami: { id: "ami-0123456789abcdef0" } }])(
    "GIVEN a pinned AMI outside dev (%j) WHEN checked THEN it is not flagged",
    (ami) => {
      expect(configWarnings(config({ ...quiet, env: "stage", ...ami }), "config/dev.json")).toEqual([]);
    },
  );
});
