import { Aspects, TerraformStack, Testing } from "cdktf";
import { CloudwatchLogGroup } from "@cdktf/provider-aws/lib/cloudwatch-log-group";
import { DbInstance } from "@cdktf/provider-aws/lib/db-instance";
import { EfsFileSystem } from "@cdktf/provider-aws/lib/efs-file-system";
import { LaunchTemplate, LaunchTemplateConfig } from "@cdktf/provider-aws/lib/launch-template";
import { SecretsmanagerSecret } from "@cdktf/provider-aws/lib/secretsmanager-secret";
import { SecurityGroup } from "@cdktf/provider-aws/lib/security-group";
import { VpcSecurityGroupIngressRule } from "@cdktf/provider-aws/lib/vpc-security-group-ingress-rule";
import { ClusterPolicyAspect, PolicyError, clusterTags } from "../../modules/policy-aspect";
import { bareStack, config, list } from "./helpers";

const KEY = "arn:aws:kms:us-east-1:123456789012:key/test";
const TAGS = clusterTags(config({ tags: { CostCenter: "data", Project: "ignored" } }));

function withPolicy(build: (stack: TerraformStack) => void): string {
  const stack = bareStack();
  build(stack);
  Aspects.of(stack).add(new ClusterPolicyAspect({ tags: TAGS, kmsKeyArn: KEY }));
  return Testing.synth(stack);
}

function template(overrides: Partial<LaunchTemplateConfig> = {}): string {
  return withPolicy(
    (s) => new LaunchTemplate(s, "lt", { name: "lt", imageId: "ami-0123456789abcdef0", ...overrides }),
  );
}

describe("clusterTags", () => {
  it("GIVEN user tags WHEN merged THEN they are kept but cannot override the base keys", () => {
    expect(TAGS).toEqual({ CostCenter: "data", Project: "airflow", Environment: "dev", ManagedBy: "cdktf" });
  });
});

describe("ClusterPolicyAspect on launch templates", () => {
  it("GIVEN a template without metadata options WHEN synthesized THEN IMDSv2 is required with hop limit 1", () => {
    expect(template()).toHaveResourceWithProperties(LaunchTemplate, {
      metadata_options: { http_endpoint: "enabled", http_tokens: "required", http_put_response_hop_limit: 1 },
    });
  });

  it("GIVEN a template with hop limit 2 WHEN synthesized THEN the hop limit is kept and IMDSv2 still required", () => {
    expect(template({ metadataOptions: { httpPutResponseHopLimit: 2 } })).toHaveResourceWithProperties(
      LaunchTemplate,
      {
        // The jest adapter matches only the top level partially; nested objects need objectContaining.
        metadata_options: expect.objectContaining({
          http_tokens: "required",
          http_put_response_hop_limit: 2,
        }),
      },
    );
  });

  it("GIVEN an unencrypted-by-omission EBS mapping WHEN synthesized THEN it is encrypted", () => {
    const synth = template({
      blockDeviceMappings: [{ deviceName: "/dev/xvda", ebs: { volumeSize: 30, volumeType: "gp3" } }],
    });
    expect(list(synth, "aws_launch_template")[0].block_device_mappings).toEqual([
      { device_name: "/dev/xvda", ebs: { encrypted: "true", volume_size: 30, volume_type: "gp3" } },
    ]);
  });

  it("GIVEN a role tag on instances WHEN synthesized THEN instances, volumes and ENIs carry the cluster tags plus it", () => {
    const synth = template({ tagSpecifications: [{ resourceType: "instance", tags: { Role: "worker" } }] });
    expect(list(synth, "aws_launch_template")[0].tag_specifications).toEqual([
      { resource_type: "instance", tags: { ...TAGS, Role: "worker" } },
      { resource_type: "volume", tags: TAGS },
      { resource_type: "network-interface", tags: TAGS },
    ]);
  });

  it.each<[string, Partial<LaunchTemplateConfig>, RegExp]>([
    [
      "IMDSv1 allowed",
      { metadataOptions: { httpTokens: "optional" } },
      /http_tokens is "optional"; IMDSv2 \("required"\) is mandatory/,
    ],
    ["IMDS disabled", { metadataOptions: { httpEndpoint: "disabled" } }, /http_endpoint is disabled/],
    [
      "an unencrypted volume",
      { blockDeviceMappings: [{ deviceName: "/dev/xvda", ebs: { encrypted: "false" } }] },
      /encrypted=false/,
    ],
  ])("GIVEN %s WHEN synthesized THEN a PolicyError names the template", (_n, overrides, message) => {
    expect(() => template(overrides)).toThrow(PolicyError);
    expect(() => template(overrides)).toThrow(message);
    expect(() => template(overrides)).toThrow(/^policy: test\/lt: /);
  });
});

describe("ClusterPolicyAspect encryption defaults and guards", () => {
  it("GIVEN data stores with encryption unset WHEN synthesized THEN it is switched on", () => {
    const synth = withPolicy((s) => {
      new DbInstance(s, "db", { instanceClass: "db.t4g.medium", engine: "mysql" });
      new EfsFileSystem(s, "efs", {});
    });
    expect(synth).toHaveResourceWithProperties(DbInstance, { storage_encrypted: true });
    expect(synth).toHaveResourceWithProperties(EfsFileSystem, { encrypted: true });
  });

  it("GIVEN log groups and secrets without a key WHEN synthesized THEN the cluster key is filled in, explicit keys kept", () => {
    const synth = withPolicy((s) => {
      new CloudwatchLogGroup(s, "lg", { name: "lg" });
      new SecretsmanagerSecret(s, "secret", { name: "s" });
      new SecretsmanagerSecret(s, "own", { name: "own", kmsKeyId: "alias/own" });
    });
    expect(synth).toHaveResourceWithProperties(CloudwatchLogGroup, { kms_key_id: KEY });
    expect(synth).toHaveResourceWithProperties(SecretsmanagerSecret, { name: "s", kms_key_id: KEY });
    expect(synth).toHaveResourceWithProperties(SecretsmanagerSecret, {
      name: "own",
      kms_key_id: "alias/own",
    });
  });

  it.each<[string, (s: TerraformStack) => void, RegExp]>([
    [
      "an unencrypted DB",
      (s) => new DbInstance(s, "db", { instanceClass: "db.t4g.medium", storageEncrypted: false }),
      /storage_encrypted=false/,
    ],
    ["an unencrypted EFS", (s) => new EfsFileSystem(s, "efs", { encrypted: false }), /EFS must be encrypted/],
    [
      "an SSH rule",
      (s) =>
        new VpcSecurityGroupIngressRule(s, "ssh", {
          securityGroupId: "sg-1",
          cidrIpv4: "10.0.0.0/8",
          ipProtocol: "tcp",
          fromPort: 22,
          toPort: 22,
        }),
      /opens port 22/,
    ],
    [
      "an all-ports rule",
      (s) =>
        new VpcSecurityGroupIngressRule(s, "all", {
          securityGroupId: "sg-1",
          cidrIpv4: "10.0.0.0/8",
          ipProtocol: "-1",
        }),
      /opens port 22 \(or all ports\)/,
    ],
    [
      "a port range spanning 22",
      (s) =>
        new VpcSecurityGroupIngressRule(s, "range", {
          securityGroupId: "sg-1",
          cidrIpv4: "10.0.0.0/8",
          ipProtocol: "tcp",
          fromPort: 1,
          toPort: 1024,
        }),
      /opens port 22/,
    ],
    [
      "inline security group rules",
      (s) =>
        new SecurityGroup(s, "inline", {
          name: "inline",
          ingress: [{ fromPort: 443, toPort: 443, protocol: "tcp", cidrBlocks: ["10.0.0.0/8"] }],
        }),
      /inline ingress\/egress blocks/,
    ],
  ])("GIVEN %s WHEN synthesized THEN synth fails with a PolicyError", (_n, build, message) => {
    expect(() => withPolicy(build)).toThrow(message);
  });
});
