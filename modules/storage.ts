/**
 * Shared storage for DAGs and plugins: an encrypted EFS file system (regional, or One
 * Zone to halve the cost), automatic backups, files moved to Infrequent Access after 30
 * days without access (as the seed configured) and back on first access, mount targets
 * in the private subnets, and an access point that maps every client to the `airflow`
 * user (uid/gid 50000) rooted at `/airflow`.
 *
 * The access point creates `/airflow` (owner 50000, mode 0755); the node bootstrap
 * creates `dags/` and `plugins/` under it on first mount (EFS cannot pre-create
 * sub-directories). The file-system policy refuses any mount without TLS, so nodes
 * mount with `-o tls,accesspoint=<id>` (amazon-efs-utils).
 *
 * A One Zone file system has its only mount target in one AZ, and its DNS name resolves
 * only there, so `clientSubnets` is that AZ's subnet alone: the node groups launch there
 * (no cross-AZ mount, no cross-AZ data charge; an outage of that AZ takes the DAGs away
 * from every node anyway).
 */
import { Construct } from "constructs";
import { DataAwsIamPolicyDocument } from "@cdktf/provider-aws/lib/data-aws-iam-policy-document";
import { EfsAccessPoint } from "@cdktf/provider-aws/lib/efs-access-point";
import { EfsBackupPolicy } from "@cdktf/provider-aws/lib/efs-backup-policy";
import { EfsFileSystem } from "@cdktf/provider-aws/lib/efs-file-system";
import { EfsFileSystemPolicy } from "@cdktf/provider-aws/lib/efs-file-system-policy";
import { EfsMountTarget } from "@cdktf/provider-aws/lib/efs-mount-target";
import { SecurityGroup } from "@cdktf/provider-aws/lib/security-group";
import { Subnet } from "@cdktf/provider-aws/lib/subnet";
import { AIRFLOW_USER, HasId, PropError, assertIntIn } from "./contract";

/** Props of {@link SharedStorage}. */
export interface SharedStorageProps {
  /** `<namePrefix>-<env>`. */
  readonly resourcePrefix: string;
  /** Private subnets, one per AZ; a One Zone file system uses the `oneZoneSubnet`th. */
  readonly subnets: readonly Subnet[];
  /** The EFS security group (2049 only from the Airflow nodes). */
  readonly securityGroup: SecurityGroup;
  /** Cluster KMS key ARN. */
  readonly kmsKeyArn: string;
  /**
   * One Zone storage in the AZ of one subnet (cheaper; nodes launch only in that AZ).
   * @default false
   */
  readonly oneZone?: boolean;
  /**
   * Index in `subnets` of the One Zone file system's subnet; only with `oneZone`.
   * @default 0
   */
  readonly oneZoneSubnet?: number;
}

/** EFS file system, mount targets and the airflow access point. */
export class SharedStorage extends Construct {
  /** The file system. */
  public readonly fileSystem: EfsFileSystem;
  /** Access point (uid/gid 50000, root `/airflow`). */
  public readonly accessPoint: EfsAccessPoint;
  /** Mount targets (one per private subnet, or one for One Zone). */
  public readonly mountTargets: readonly EfsMountTarget[];
  /** The private subnets with a mount target: nodes that mount the file system launch only here. */
  public readonly clientSubnets: readonly HasId[];

  public constructor(scope: Construct, id: string, props: SharedStorageProps) {
    super(scope, id);
    if (props.subnets.length === 0)
      throw new PropError(this, "subnets", props.subnets.length, "1 or more private subnets");
    const p = props.resourcePrefix;
    const oneZone = props.oneZone ?? false;
    if (!oneZone && props.oneZoneSubnet !== undefined) {
      throw new PropError(this, "oneZoneSubnet", props.oneZoneSubnet, "omitted unless oneZone is true");
    }
    assertIntIn(this, "oneZoneSubnet", props.oneZoneSubnet, 0, props.subnets.length - 1);
    const mountSubnets = oneZone ? [props.subnets[props.oneZoneSubnet ?? 0]] : props.subnets;
    this.clientSubnets = mountSubnets;

    this.fileSystem = new EfsFileSystem(this, "fs", {
      creationToken: `${p}-dags`,
      encrypted: true,
      kmsKeyId: props.kmsKeyArn,
      availabilityZoneName: oneZone ? mountSubnets[0].availabilityZone : undefined,
      performanceMode: "generalPurpose",
      // Elastic throughput: DAG syncs are bursty and small; no credits to run out of.
      throughputMode: "elastic",
      lifecyclePolicy: [
        { transitionToIa: "AFTER_30_DAYS" },
        { transitionToPrimaryStorageClass: "AFTER_1_ACCESS" },
      ],
      tags: { Name: `${p}-dags` },
    });
    new EfsBackupPolicy(this, "backup", {
      fileSystemId: this.fileSystem.id,
      backupPolicy: { status: "ENABLED" },
    });

    this.mountTargets = mountSubnets.map(
      (s, i) =>
        new EfsMountTarget(this, `mount-${i}`, {
          fileSystemId: this.fileSystem.id,
          subnetId: s.id,
          securityGroups: [props.securityGroup.id],
        }),
    );

    this.accessPoint = new EfsAccessPoint(this, "airflow", {
      fileSystemId: this.fileSystem.id,
      posixUser: { uid: AIRFLOW_USER.uid, gid: AIRFLOW_USER.gid },
      rootDirectory: {
        path: "/airflow",
        creationInfo: { ownerUid: AIRFLOW_USER.uid, ownerGid: AIRFLOW_USER.gid, permissions: "0755" },
      },
      tags: { Name: `${p}-airflow` },
    });

    // Only through a mount target (i.e. from inside the VPC, past the EFS security
    // group) and only over TLS.
    const policy = new DataAwsIamPolicyDocument(this, "policy-doc", {
      statement: [
        {
          sid: "MountThroughMountTargets",
          principals: [{ type: "AWS", identifiers: ["*"] }],
          actions: ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"],
          resources: [this.fileSystem.arn],
          condition: [
            { test: "Bool", variable: "elasticfilesystem:AccessedViaMountTarget", values: ["true"] },
          ],
        },
        {
          sid: "DenyWithoutTls",
          effect: "Deny",
          principals: [{ type: "AWS", identifiers: ["*"] }],
          actions: ["*"],
          resources: [this.fileSystem.arn],
          condition: [{ test: "Bool", variable: "aws:SecureTransport", values: ["false"] }],
        },
      ],
    });
    new EfsFileSystemPolicy(this, "policy", { fileSystemId: this.fileSystem.id, policy: policy.json });
  }
}
