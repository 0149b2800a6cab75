/**
 * The cluster's cross-cutting policy, applied once to every construct by one Aspect:
 *
 * - **Tags from one place.** {@link clusterTags} is the only tag source: the AWS
 *   provider's `default_tags` use it, and the aspect copies it into launch-template
 *   `tag_specifications` (instances, volumes, ENIs), which `default_tags` do not reach.
 * - **IMDSv2 required** on every launch template (`http_tokens = "required"`, hop limit
 *   1 unless set), and every EBS mapping encrypted.
 * - **Encryption defaults:** RDS storage, ElastiCache at rest + in transit, EFS, and
 *   CloudWatch log groups / Secrets Manager secrets with the cluster KMS key, filled in
 *   where a construct left them unset.
 * - **Guards:** explicitly switching any of the above off, or an ingress rule that
 *   opens port 22, fails synth with a {@link PolicyError} naming the resource.
 */
import { IAspect } from "cdktf";
import { IConstruct } from "constructs";
import { CloudwatchLogGroup } from "@cdktf/provider-aws/lib/cloudwatch-log-group";
import { DbInstance } from "@cdktf/provider-aws/lib/db-instance";
import { EfsFileSystem } from "@cdktf/provider-aws/lib/efs-file-system";
import { ElasticacheReplicationGroup } from "@cdktf/provider-aws/lib/elasticache-replication-group";
import {
  LaunchTemplate,
  LaunchTemplateBlockDeviceMappings,
  LaunchTemplateTagSpecifications,
} from "@cdktf/provider-aws/lib/launch-template";
import { SecretsmanagerSecret } from "@cdktf/provider-aws/lib/secretsmanager-secret";
import { SecurityGroup } from "@cdktf/provider-aws/lib/security-group";
import { VpcSecurityGroupIngressRule } from "@cdktf/provider-aws/lib/vpc-security-group-ingress-rule";
import { AirflowConfig } from "./config";

/** A policy violation found while synthesizing; printed as one line by main.ts. */
export class PolicyError extends Error {
  public constructor(path: string, problem: string) {
    super(`policy: ${path}: ${problem}`);
    this.name = "PolicyError";
  }
}

/**
 * The tags every taggable resource carries. The three base keys always win over
 * same-named keys in `config.tags`, so cost reports can rely on them.
 */
export function clusterTags(
  config: Pick<AirflowConfig, "namePrefix" | "env" | "tags">,
): Record<string, string> {
  return {
    ...config.tags,
    Project: config.namePrefix,
    Environment: config.env,
    ManagedBy: "cdktf",
  };
}

/** Props of {@link ClusterPolicyAspect}. */
export interface ClusterPolicyAspectProps {
  /** Tags for launch-template tag specifications (use {@link clusterTags}). */
  readonly tags: Record<string, string>;
  /**
   * KMS key ARN used where a log group or secret sets none.
   * @default undefined - no key is filled in (the state stack has no cluster key)
   */
  readonly kmsKeyArn?: string;
}

/** Resource types whose instances/volumes get the cluster tags at launch. */
const LAUNCH_TAGGED = ["instance", "volume", "network-interface"] as const;

const isFalse = (v: unknown): boolean => v === false || v === "false";

/** Applies the cluster policy; add it with `Aspects.of(stack).add(...)`. */
export class ClusterPolicyAspect implements IAspect {
  public constructor(private readonly props: ClusterPolicyAspectProps) {}

  public visit(node: IConstruct): void {
    if (node instanceof LaunchTemplate) this.launchTemplate(node);
    else if (node instanceof DbInstance) this.dbInstance(node);
    else if (node instanceof ElasticacheReplicationGroup) this.replicationGroup(node);
    else if (node instanceof EfsFileSystem) this.efs(node);
    else if (node instanceof CloudwatchLogGroup) this.logGroup(node);
    else if (node instanceof SecretsmanagerSecret) this.secret(node);
    else if (node instanceof VpcSecurityGroupIngressRule) this.ingressRule(node);
    else if (node instanceof SecurityGroup) this.securityGroup(node);
  }

  private launchTemplate(lt: LaunchTemplate): void {
    const path = lt.node.path;
    const md = lt.metadataOptionsInput;
    if (md?.httpTokens !== undefined && md.httpTokens !== "required") {
      throw new PolicyError(
        path,
        `metadata_options.http_tokens is "${md.httpTokens}"; IMDSv2 ("required") is mandatory`,
      );
    }
    if (md?.httpEndpoint === "disabled") {
      throw new PolicyError(
        path,
        "metadata_options.http_endpoint is disabled; nodes need IMDSv2 for their role",
      );
    }
    lt.putMetadataOptions({
      ...md,
      httpEndpoint: "enabled",
      httpTokens: "required",
      // 1 hop: only the instance itself, not containers behind a bridge, reaches IMDS.
      httpPutResponseHopLimit: md?.httpPutResponseHopLimit ?? 1,
    });

    const mappings = lt.blockDeviceMappingsInput;
    if (Array.isArray(mappings)) {
      const encrypted: LaunchTemplateBlockDeviceMappings[] = mappings.map((m) => {
        if (!m.ebs) return m;
        if (isFalse(m.ebs.encrypted)) {
          throw new PolicyError(
            path,
            `block device ${m.deviceName ?? "?"} has encrypted=false; EBS volumes must be encrypted`,
          );
        }
        return { ...m, ebs: { ...m.ebs, encrypted: "true" } };
      });
      lt.putBlockDeviceMappings(encrypted);
    }

    const specs = lt.tagSpecificationsInput;
    const existing: LaunchTemplateTagSpecifications[] = Array.isArray(specs) ? specs : [];
    const merged: LaunchTemplateTagSpecifications[] = LAUNCH_TAGGED.map((resourceType) => {
      const own = existing.find((s) => s.resourceType === resourceType)?.tags ?? {};
      return { resourceType, tags: { ...this.props.tags, ...own } };
    });
    const others = existing.filter(
      (s) => !(LAUNCH_TAGGED as readonly (string | undefined)[]).includes(s.resourceType),
    );
    lt.putTagSpecifications([...merged, ...others]);
  }

  private dbInstance(db: DbInstance): void {
    if (isFalse(db.storageEncryptedInput)) {
      throw new PolicyError(
        db.node.path,
        "storage_encrypted=false; the metadata DB must be encrypted at rest",
      );
    }
    db.storageEncrypted = true;
  }

  private replicationGroup(rg: ElasticacheReplicationGroup): void {
    if (isFalse(rg.atRestEncryptionEnabledInput) || isFalse(rg.transitEncryptionEnabledInput)) {
      throw new PolicyError(rg.node.path, "the broker must encrypt at rest and in transit");
    }
    rg.atRestEncryptionEnabled = "true";
    rg.transitEncryptionEnabled = true;
  }

  private efs(fs: EfsFileSystem): void {
    if (isFalse(fs.encryptedInput)) {
      throw new PolicyError(fs.node.path, "encrypted=false; EFS must be encrypted at rest");
    }
    fs.encrypted = true;
  }

  private logGroup(lg: CloudwatchLogGroup): void {
    if (this.props.kmsKeyArn && lg.kmsKeyIdInput === undefined) lg.kmsKeyId = this.props.kmsKeyArn;
  }

  private secret(s: SecretsmanagerSecret): void {
    if (this.props.kmsKeyArn && s.kmsKeyIdInput === undefined) s.kmsKeyId = this.props.kmsKeyArn;
  }

  private ingressRule(rule: VpcSecurityGroupIngressRule): void {
    const proto = rule.ipProtocolInput;
    const from = rule.fromPortInput;
    const to = rule.toPortInput;
    const allPorts = proto === "-1" || proto === "all";
    if (allPorts || (typeof from === "number" && typeof to === "number" && from <= 22 && 22 <= to)) {
      throw new PolicyError(
        rule.node.path,
        "ingress opens port 22 (or all ports); operators use SSM Session Manager, never SSH",
      );
    }
  }

  private securityGroup(sg: SecurityGroup): void {
    // Rules are separate vpc_security_group_*_rule resources so each carries its own
    // description and the guard above sees it; inline rules would bypass both.
    if (sg.ingressInput !== undefined || sg.egressInput !== undefined) {
      throw new PolicyError(
        sg.node.path,
        "inline ingress/egress blocks; use VpcSecurityGroupIngressRule/EgressRule",
      );
    }
  }
}
