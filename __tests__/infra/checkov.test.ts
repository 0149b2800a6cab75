import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { App, TerraformStack } from "cdktf";
import { CloudwatchLogGroup } from "@cdktf/provider-aws/lib/cloudwatch-log-group";
import { AwsProvider } from "@cdktf/provider-aws/lib/provider";
import { checkovSkips, skipCheckov, skipShortLogRetention } from "../../modules/checkov";
import { bareStack } from "./helpers";

describe("skipCheckov", () => {
  it("GIVEN skips on a resource WHEN synthesized to disk THEN they sit under its // key beside cdktf's metadata", () => {
    // GIVEN
    const outdir = mkdtempSync(path.join(tmpdir(), "checkov-skip-"));
    const app = new App({ outdir });
    const stack = new TerraformStack(app, "s");
    new AwsProvider(stack, "aws", { region: "us-east-1" });
    const group = new CloudwatchLogGroup(stack, "lg", { name: "lg", retentionInDays: 30 });
    // WHEN
    skipShortLogRetention(group, 30);
    skipCheckov(group, "CKV_AWS_158", "a reason long enough to mean something");
    app.synth();
    // THEN
    const json = JSON.parse(readFileSync(path.join(outdir, "stacks", "s", "cdk.tf.json"), "utf8"));
    const comment = json.resource.aws_cloudwatch_log_group.lg["//"];
    expect(comment.metadata.path).toBe("s/lg");
    expect(comment.checkov.skip).toEqual([
      { id: "CKV_AWS_158", comment: "a reason long enough to mean something" },
      {
        id: "CKV_AWS_338",
        comment: "retention is config logRetentionDays (30); set 365+ where a year of logs is required",
      },
    ]);
  });

  it("GIVEN the same check skipped twice WHEN recorded THEN the later reason replaces the earlier", () => {
    const group = new CloudwatchLogGroup(bareStack(), "lg", { name: "lg" });
    skipCheckov(group, "CKV_AWS_158", "first reason, long enough");
    skipCheckov(group, "CKV_AWS_158", "second reason, long enough");
    expect(checkovSkips(group)).toEqual([{ id: "CKV_AWS_158", comment: "second reason, long enough" }]);
  });

  it.each([
    [365, []],
    [3653, []],
    [90, ["CKV_AWS_338"]],
  ])("GIVEN retention %d WHEN skipShortLogRetention THEN skips %j", (days, ids) => {
    const group = new CloudwatchLogGroup(bareStack(), "lg", { name: "lg" });
    skipShortLogRetention(group, days);
    expect(checkovSkips(group).map((s) => s.id)).toEqual(ids);
  });

  it.each([
    ["CKV_AWS_X", "a perfectly good reason", /id: got .*; allowed: a checkov check id/],
    ["ckv_aws_18", "a perfectly good reason", /id: got .*; allowed: a checkov check id/],
    ["CKV_AWS_18", "because", /reason: got .*; allowed: a real reason/],
    ["CKV_AWS_18", "          ", /reason: got .*; allowed: a real reason/],
  ])("GIVEN id %s and reason %j WHEN recorded THEN it is refused", (id, reason, message) => {
    const group = new CloudwatchLogGroup(bareStack(), "lg", { name: "lg" });
    expect(() => skipCheckov(group, id, reason)).toThrow(message);
  });
});
